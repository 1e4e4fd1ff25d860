#!/usr/bin/env bash
# Whole-file archive figures for one model file, as the closing notes quote them: compression and
# restore through the CLI (wall time, MB/s, peak memory from /usr/bin/time -v), byte-identity by
# sha256, and in the same run the time the machine takes to merely copy the file (cp), which bounds
# any restore to that file system.
#
# usage: scripts/measure_archive.sh MODEL [WORKDIR] [THREADS]
#   WORKDIR (default /dev/shm/wz-measure) receives MODEL.wz and the restored copy; use a tmpfs to
#   measure the codec rather than the disk, or a disk directory to measure what a user sees.
set -euo pipefail
MODEL=${1:?model file}
W=${2:-/dev/shm/wz-measure}
T=${3:-2}
WZ=${WZ:-$(dirname "$0")/../target/release/weightzip}
[ -x "$WZ" ] || { echo "build first: cargo build --release" >&2; exit 1; }
mkdir -p "$W"
name=$(basename "$MODEL")
arc="$W/$name.wz"; back="$W/$name.restored"; copy="$W/$name.copy"
rm -f "$arc" "$back" "$copy"
size=$(stat -c %s "$MODEL")
cat "$MODEL" > /dev/null   # page-cache the input, as every run below then finds it

run() { # label, command...: prints seconds, MB/s of the model's size, peak RSS
  local label=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" 2> "$log" > /dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  local secs; secs=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
  printf '%-34s %8.2f s %9.1f MB/s   peak RSS %8.1f MB\n' "$label" "$secs" \
    "$(echo "$size $secs" | awk '{print $1 / 1e6 / $2}')" "$(echo "$rss" | awk '{print $1 / 1024}')"
  rm -f "$log"
}

echo "$MODEL: $size bytes; $T threads; work dir $W ($(df -T "$W" | awk 'NR == 2 {print $2}'))"
run "cp (the file system's copy speed)" cp "$MODEL" "$copy"
rm -f "$copy"
run "weightzip compress" "$WZ" compress --threads "$T" "$MODEL" -o "$arc"
run "weightzip decompress" "$WZ" decompress --threads "$T" "$arc" -o "$back"
run "weightzip verify (SHA-256 of all)" "$WZ" verify --threads "$T" "$arc"
echo "archive: $(stat -c %s "$arc") bytes, ratio $(echo "$size $(stat -c %s "$arc")" | awk '{printf "%.4f", $1 / $2}')"
a=$(sha256sum < "$MODEL" | cut -c1-64); b=$(sha256sum < "$back" | cut -c1-64)
echo "sha256 original $a"
echo "sha256 restored $b"
[ "$a" = "$b" ] && echo "restore is byte-identical" || { echo "RESTORE DIFFERS" >&2; exit 1; }
rm -f "$back"
