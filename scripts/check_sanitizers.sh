#!/usr/bin/env bash
# Runs the library under the dynamic checkers that do not fit the ordinary `cargo test`:
#
#   scripts/check_sanitizers.sh [miri|valgrind|asan-python|all]...     (default: all)
#
# miri         cargo +nightly miri test: the library's unit tests (but the zstd baselines'), and
#              tests/miri_smoke.rs (the C ABI's pointer handling, the archive's raw allocation,
#              every rANS decoder on valid and damaged frames), with WZ_SIMD=scalar (Miri has no AVX-512) and isolation off
#              (the tests read the environment and tests/data). Installs the miri and rust-src
#              components of the nightly toolchain when missing. zstd (C) cannot run under Miri,
#              so the grouped and f32 methods and archives' extra frames are not covered here.
# valgrind     memcheck on the C examples (make -C c_examples builds them): roundtrip on the bf16
#              fixture, gguf_loader --compress on the Qwen GGUF fixture, then gguf_loader loading
#              that archive, each with 1 and 2 threads, with the CPU's best kernels (valgrind
#              reports no AVX-512, so that is AVX2) and with WZ_SIMD=scalar ($VG_SIMD picks). Fails on any memcheck
#              error and on "definitely" or "indirectly lost" blocks; "still reachable" (the worker
#              pool's threads and their stacks, alive until exit by design) and "possibly lost"
#              (pointers into those thread stacks) are reported, not failed.
# asan-python  builds libweightzip with AddressSanitizer (nightly: RUSTFLAGS=-Zsanitizer=address)
#              into target/asan, then runs tests/python/test_archive.py on both GGUF fixtures in
#              a python3 with the compiler's ASan runtime LD_PRELOADed and WEIGHTZIP_LIBRARY naming the
#              instrumented library (leak detection off: CPython does not free everything at exit);
#              then checks that the setup reports a deliberate overflow (a 4 KiB buffer passed as
#              8 KiB to wz_decompress), so a silent pass means something.
#
# Exit status: 0 when every selected check passed. Logs: target/sanitizers/*.log.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOGS=$ROOT/target/sanitizers
mkdir -p "$LOGS"

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(all)
[ "${checks[0]}" != all ] || checks=(miri valgrind asan-python)

failed=()
note() { printf '== %s\n' "$*"; }

run_miri() {
    if ! cargo +nightly miri --version >/dev/null 2>&1; then
        note "installing the miri and rust-src components of the nightly toolchain"
        rustup component add --toolchain nightly miri rust-src || return 1
    fi
    # stdin from /dev/null: cargo-miri probes rustc with input on stdin, and stray input breaks it.
    cargo +nightly miri setup </dev/null >"$LOGS/miri-setup.log" 2>&1 || { cat "$LOGS/miri-setup.log"; return 1; }
    local status=0
    export WZ_SIMD=scalar MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
    note "miri: library unit tests (log $LOGS/miri-lib.log)"
    # The baseline module (zstd and the paper's method, for benchmarks) calls C and is skipped;
    # $MIRI_SKIP adds more test-name filters to skip.
    # every_bit_pattern_roundtrips (65,536 values through three decoders) takes more than 15
    # minutes under Miri, and roundtrip_skewed_and_uniform (three table scales, truncated streams)
    # more than 10 even with its streams cut to 3,000 symbols there; tests/miri_smoke.rs decodes
    # the same code paths (every rANS decoder, valid and damaged frames) on smaller inputs.
    local skip=(--skip baseline:: --skip every_bit_pattern_roundtrips --skip roundtrip_skewed_and_uniform)
    for f in ${MIRI_SKIP:-}; do skip+=(--skip "$f"); done
    cargo +nightly miri test --lib </dev/null -- "${skip[@]}" >"$LOGS/miri-lib.log" 2>&1 || status=1
    grep -E '^test result|^error|Undefined Behavior|unsupported operation' "$LOGS/miri-lib.log" | head -20
    note "miri: tests/miri_smoke.rs (log $LOGS/miri-smoke.log)"
    cargo +nightly miri test --test miri_smoke </dev/null >"$LOGS/miri-smoke.log" 2>&1 || status=1
    grep -E '^test result|^error|Undefined Behavior|unsupported operation' "$LOGS/miri-smoke.log" | head -20
    unset WZ_SIMD MIRIFLAGS
    return $status
}

# vg LOG PROGRAM ARGS...: memcheck, failing on errors and on definite/indirect leaks; prints the
# leak and error summary.
vg() {
    local log=$1
    shift
    valgrind --tool=memcheck --leak-check=full --show-leak-kinds=all \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
        --log-file="$log" "$@" >"$log.out" 2>&1
    local s=$?
    local summary
    summary=$(grep -E '^==[0-9]+== +(definitely lost|indirectly lost|possibly lost|still reachable):|ERROR SUMMARY' "$log" |
        sed -E 's/^==[0-9]+== +//; s/ \(suppressed.*//' | tr '\n' ';')
    printf '   %-28s exit %s  %s\n' "$(basename "$log" .log)" "$s" "$summary"
    return $s
}

run_valgrind() {
    command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; return 1; }
    note "building the C examples (make -C c_examples)"
    make -C c_examples all >"$LOGS/valgrind-build.log" 2>&1 || { tail -20 "$LOGS/valgrind-build.log"; return 1; }
    local B=$ROOT/c_examples/build status=0 tmp
    tmp=$(mktemp -d)
    local fixture=$ROOT/tests/data/minilm-l6-ffn01.bf16 gguf=$ROOT/tests/data/qwen25coder15b-q4km-mini.gguf
    # VG_SIMD: which kernels ("best": what the CPU reports under valgrind, whose CPUID hides
    # AVX-512, so AVX2; "scalar": WZ_SIMD=scalar).
    for simd in ${VG_SIMD:-best scalar}; do
        if [ "$simd" = scalar ]; then export WZ_SIMD=scalar; else unset WZ_SIMD; fi
        note "valgrind memcheck, kernels: $simd"
        for t in 1 2; do
            vg "$LOGS/vg-roundtrip-$simd-t$t.log" "$B/roundtrip" "$fixture" $t || status=1
        done
        rm -f "$tmp/q.wz"
        vg "$LOGS/vg-loader-compress-$simd.log" "$B/gguf_loader" --compress "$gguf" "$tmp/q.wz" || status=1
        for t in 1 2; do
            vg "$LOGS/vg-loader-$simd-t$t.log" "$B/gguf_loader" "$tmp/q.wz" "$gguf" --threads $t || status=1
        done
    done
    unset WZ_SIMD
    rm -rf "$tmp"
    return $status
}

run_asan_python() {
    local rt
    rt=$(${CC:-cc} -print-file-name=libasan.so)
    [ -f "$rt" ] || { echo "no ASan runtime (libasan.so) for ${CC:-cc}"; return 1; }
    note "building libweightzip with -Zsanitizer=address into target/asan (log $LOGS/asan-build.log)"
    # The target triple keeps RUSTFLAGS off the build scripts and proc macros, which must not
    # be instrumented.
    RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" CARGO_TARGET_DIR=$ROOT/target/asan \
        cargo +nightly build --release --lib --target x86_64-unknown-linux-gnu >"$LOGS/asan-build.log" 2>&1 ||
        { tail -20 "$LOGS/asan-build.log"; return 1; }
    local lib=$ROOT/target/asan/x86_64-unknown-linux-gnu/release/libweightzip.so
    # grep reads all of nm's output (no -q): with pipefail, nm killed by SIGPIPE would fail the test.
    nm -D "$lib" | grep __asan_ >/dev/null || { echo "$lib is not instrumented"; return 1; }
    note "python3 tests/python/test_archive.py under ASan (runtime $rt; log $LOGS/asan-python.log)"
    LD_PRELOAD=$rt WEIGHTZIP_LIBRARY=$lib \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=1:halt_on_error=1:verify_asan_link_order=0 \
        python3 tests/python/test_archive.py "$ROOT/tests/data/qwen25coder15b-q4km-mini.gguf" \
        "$ROOT/tests/data/minilm-l6-q4_k_m.gguf" \
        >"$LOGS/asan-python.log" 2>&1
    local s=$?
    tail -3 "$LOGS/asan-python.log"
    grep 'ERROR: AddressSanitizer' "$LOGS/asan-python.log" >/dev/null && s=1
    # The setup must catch a real overflow: a 4 KiB buffer passed to wz_decompress as 8 KiB (a
    # caller's bug) must be reported inside the library.
    note "self-check: an overflow through ctypes is reported (log $LOGS/asan-probe.log)"
    LD_PRELOAD=$rt WEIGHTZIP_LIBRARY=$lib ASAN_OPTIONS=detect_leaks=0 python3 - >"$LOGS/asan-probe.log" 2>&1 <<'PY'
import ctypes, sys
sys.path.insert(0, "python")
import weightzip as wz
frame = wz.compress(bytes(range(256)) * 32, "bf16")
dst = ctypes.create_string_buffer(4096)
src = ctypes.create_string_buffer(frame, len(frame))
wz._lib.wz_decompress(dst, 8192, src, len(frame), None)
PY
    if grep 'ERROR: AddressSanitizer: heap-buffer-overflow' "$LOGS/asan-probe.log" >/dev/null; then
        echo "   the deliberate overflow was reported: ASan is active in libweightzip"
    else
        echo "   the deliberate overflow was NOT reported: the ASan setup does not work"
        s=1
    fi
    return $s
}

for c in "${checks[@]}"; do
    case $c in
        miri) run_miri || failed+=(miri) ;;
        valgrind) run_valgrind || failed+=(valgrind) ;;
        asan-python) run_asan_python || failed+=(asan-python) ;;
        *) echo "unknown check '$c' (miri, valgrind, asan-python, all)" >&2; exit 2 ;;
    esac
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "check_sanitizers: FAILED: ${failed[*]} (logs in $LOGS)"
    exit 1
fi
echo "check_sanitizers: all passed (${checks[*]})"
