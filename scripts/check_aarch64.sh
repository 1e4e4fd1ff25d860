#!/usr/bin/env bash
# Opt-in: cross-builds libweightzip for aarch64 Linux and runs it under qemu-user: the library's
# Rust tests (those that run the library itself; the ones that drive host tools, the host CLI or
# a host Python are skipped), then the C example and the C roundtrip program linked against the
# aarch64 shared library, on the committed fixtures.
#
#   scripts/check_aarch64.sh [CARGO TEST FILTER...]
#
# Needs: the Rust target (rustup target add aarch64-unknown-linux-gnu), and Debian's
# gcc-aarch64-linux-gnu and qemu-user (installed from apt when missing). On aarch64 the decoders
# run their portable scalar paths (the vector kernels are x86-64 only); under qemu their speed says
# nothing about real hardware, so this script checks correctness only.
set -euo pipefail
cd "$(dirname "$0")/.."
T=aarch64-unknown-linux-gnu
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi
rustup target list --installed | grep -x "$T" >/dev/null || rustup target add "$T"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

echo "check_aarch64: building for $T"
cargo build --release --target "$T" -p weightzip

# The library's own tests. Skipped: tests that build or run host programs (the C examples with the
# host compiler, the host CLI, host Python on the aarch64 library, nm on the host build) or that
# re-run their own binary with WZ_SIMD caps (an x86-64 matter, and the re-run would not go through
# qemu).
skip=(--skip c_example --skip c_roundtrip --skip gguf_loader --skip header_compiles --skip python
      --skip cli_ --skip exported --skip header_functions --skip kernel_decodes_the_same)
cargo test --release --target "$T" -p weightzip \
  --test roundtrip --test archive --test archive_corruption --test corruption --test format --test golden \
  --test quantized --test float_codecs --test entropy --test c_api --test c_api_archive --test changing_files \
  --test safetensors_archive --test allocation_limits --test fuzz_smoke --test header \
  "$@" -- "${skip[@]}"
cargo test --release --target "$T" -p weightzip --lib "$@"

# The C programs, cross-compiled against the aarch64 shared library, run under qemu.
lib=target/$T/release
ln -sf libweightzip.so "$lib/libweightzip.so.0" # the SONAME, as c_examples/Makefile links it
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c99 -Wall -Werror -O2 -Iinclude -L"$lib" -lweightzip -Wl,-rpath,"$PWD/$lib")
aarch64-linux-gnu-gcc c_examples/example.c "${flags[@]}" -o "$out/example"
aarch64-linux-gnu-gcc tests/c/roundtrip.c "${flags[@]}" -o "$out/roundtrip"
run() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"; }
run "$out/example" tests/data/qwen25coder15b-q4km-mini.gguf "$out/q.wz"
run "$out/example" tests/data/minilm-l6-layer0-bf16.safetensors "$out/s.wz"
run "$out/roundtrip" tests/data/minilm-l6-ffn01.bf16 1
file "$lib/libweightzip.so"
echo "check_aarch64: OK"
