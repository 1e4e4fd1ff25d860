#!/usr/bin/env bash
# Load time (start to a ready llama_context, and start to the first token) and peak memory of llama.cpp running a
# model from its original GGUF and from its weightzip archive, at 1 and 2 threads, with c_examples/llama_from_archive.
#
#   scripts/llama_bench.sh LLAMA_DIR MODEL.gguf [ARCHIVE] [-- EXAMPLE ARGS...]
#
#   LLAMA_DIR   a llama.cpp build (scripts/build_llama_cpp.sh CACHE_DIR gives CACHE_DIR/llama.cpp)
#   ARCHIVE     default MODEL.gguf.wz next to the model, else in $TMPDIR; made with `weightzip compress` if missing
#   EXAMPLE ARGS  what to compute; default: --generate 33 "def fibonacci(n):" (greedy tokens: the first gives the
#                 time to first token, the 32 after it the tok_s column, generation speed).
#                 For an embedding model: -- --embed INPUT...
#   REPS=3      runs per row (env); the row shows the medians. THREADS="1 2" (env).
#
# Every row is one loader (see c_examples/llama_from_archive.cpp): "file" on the original GGUF (page-cached: both
# files are read once first, and one untimed run warms up), with llama.cpp's defaults and with --no-repack (the
# settings the "tensors" loader runs with) and with --no-mmap (how llama.cpp reads an archive), then "tensors" and
# "memfd" on the archive, and "file(patched)": llama.cpp's own loader on the archive's path, which needs the weightzip
# patch scripts/build_llama_cpp.sh applies (defaults: repacking on; an archive is read as under --no-mmap). Peak memory is /usr/bin/time -v's
# "Maximum resident set size" of the same run, which counts the model's mapped file pages as well as its heap.
set -euo pipefail
LLAMA_DIR=${1:?usage: llama_bench.sh LLAMA_DIR MODEL.gguf [ARCHIVE] [-- ARGS...]}
MODEL=${2:?usage: llama_bench.sh LLAMA_DIR MODEL.gguf [ARCHIVE] [-- ARGS...]}
shift 2
ARCHIVE=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then ARCHIVE=$1; shift; fi
[ "${1:-}" = "--" ] && shift
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--generate 33 "def fibonacci(n):")
REPS=${REPS:-3}
THREADS=${THREADS:-1 2}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXE=$ROOT/c_examples/build/llama_from_archive
make -s -C "$ROOT/c_examples" llama LLAMA_DIR="$LLAMA_DIR" >&2
if [ -z "$ARCHIVE" ]; then
  ARCHIVE=$MODEL.wz
  if [ ! -f "$ARCHIVE" ] && ! [ -w "$(dirname "$MODEL")" ]; then ARCHIVE=${TMPDIR:-/tmp}/$(basename "$MODEL").wz; fi
fi
[ -f "$ARCHIVE" ] || "$ROOT/target/release/weightzip" compress "$MODEL" -o "$ARCHIVE" >&2
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian: apt-get install time)" >&2; exit 1; }

cat "$MODEL" "$ARCHIVE" > /dev/null                        # into the page cache
"$EXE" "$MODEL" --threads 1 "${ARGS[@]}" > /dev/null 2>&1  # and one untimed run

# One run: prints "load_ms first_token_ms max_rss_kib gen_tok_s".
one() {
  local err
  err=$(/usr/bin/time -v "$EXE" "$@" "${ARGS[@]}" 2>&1 >/dev/null) || { echo "run failed: $*" >&2; echo "$err" >&2; exit 1; }
  local timing rss
  timing=$(grep '^timing:' <<<"$err")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' <<<"$err")
  echo "$(sed 's/.* load_ms=\([0-9.]*\) first_token_ms=\([0-9.]*\).*/\1 \2/' <<<"$timing") $rss" \
    "$(sed 's/.* gen_tok_s=\([0-9.]*\).*/\1/' <<<"$timing")"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-42s %-17s %7s %9s %15s %12s %9s\n' model loader threads load_ms first_token_ms max_rss_MiB tok_s
for t in $THREADS; do
  while read -r label path flags; do
    rows=$(for _ in $(seq "$REPS"); do one "$path" --threads "$t" $flags; done)
    printf '%-42s %-17s %7s %9.1f %15.1f %12.0f %9.2f\n' "$(basename "$path")" "$label" "$t" \
      "$(cut -d' ' -f1 <<<"$rows" | median)" "$(cut -d' ' -f2 <<<"$rows" | median)" \
      "$(cut -d' ' -f3 <<<"$rows" | median | awk '{ print $1 / 1024 }')" \
      "$(cut -d' ' -f4 <<<"$rows" | median)"
  done <<EOF
file $MODEL --loader file
file,--no-repack $MODEL --loader file --no-repack
file,--no-mmap $MODEL --loader file --no-mmap
tensors $ARCHIVE --loader tensors
memfd $ARCHIVE --loader memfd
file(patched) $ARCHIVE --loader file
EOF
done
