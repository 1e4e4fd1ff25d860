#!/usr/bin/env bash
# Writes the seed corpus of every fuzz target to fuzz/seeds/<target>/ (or $1/<target>/): frames of
# every kind and method, small GGUF and safetensors files, truncated real headers and archives, all
# cut from the fixtures in tests/data by fuzz/seeds.rs. The seeds are generated, not committed
# (a few MB); scripts/fuzz.sh runs this when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fuzz/seeds}
case $out in /*) ;; *) out=$PWD/$out ;; esac
WZ_FUZZ_SEED_DIR=$out cargo test --release --test fuzz_smoke -- --ignored --exact write_seed_corpora --nocapture
