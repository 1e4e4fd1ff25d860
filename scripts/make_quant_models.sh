#!/usr/bin/env bash
# Whole GGUF files in the quantization presets people download besides Q4_K_M, made from real F32
# weights by llama.cpp's own llama-quantize (built by scripts/build_llama_cpp.sh):
#
#   scripts/make_quant_models.sh CACHE_DIR LLAMA_DIR
#
# all-MiniLM-L6-v2 (from scripts/fetch_corpora.sh CACHE_DIR minilm) is converted to an F32 GGUF
# (scripts/minilm_f32_gguf.py) and quantized to Q5_K_M and IQ4_XS without an importance matrix:
# minilm-l6-q5_k_m.gguf (Q5_K, Q6_K, Q5_1, Q8_0, F32 tensors) and minilm-l6-iq4_xs.gguf (IQ4_XS,
# IQ4_NL, Q8_0, F32). Its 384-wide matrices cannot take 256-weight blocks, so llama-quantize gives
# them its fallback types, as it does for any such model. And, for llama.cpp's greedy-token test
# only (tests/llama.rs), Gemma 3 270M requantized from its Q4_K_M file to the same two presets
# (gemma-3-270m-requant-*.gguf): a generative model in those types, but its weights went through
# Q4_K first, so no ratio is reported on it. The files are deterministic and pinned.
set -euo pipefail
D=${1:?cache dir}
LLAMA_DIR=${2:?llama.cpp dir (scripts/build_llama_cpp.sh)}
HERE=$(cd "$(dirname "$0")" && pwd)
Q=$LLAMA_DIR/build/bin/llama-quantize
[ -x "$Q" ] || { echo "no $Q: run scripts/build_llama_cpp.sh" >&2; exit 2; }
"$HERE/fetch_corpora.sh" "$D" minilm >/dev/null
"$HERE/fetch_corpora.sh" "$D" gemma >/dev/null
declare -A PIN=(
  [Q5_K_M]=fcd76d758ad0117ae884a2600e29033646f72a0daa4295d13ad7f519c69642fd
  [IQ4_XS]=d01e75a1d49041014b2f2429492c1b67d9d296d72a90cdba37f194e4a100d71b
)
F32=$D/minilm-l6-f32.gguf
# llama-quantize's output goes to a log, shown when it fails.
quantize() {
  LD_LIBRARY_PATH=$LLAMA_DIR/build/bin "$Q" "$@" > "$D/llama-quantize.log" 2>&1 ||
    { cat "$D/llama-quantize.log" >&2; echo "llama-quantize $* failed" >&2; exit 1; }
}
for t in Q5_K_M IQ4_XS; do
  out=$D/minilm-l6-$(echo $t | tr 'A-Z' 'a-z').gguf
  if ! { [ -f "$out" ] && echo "${PIN[$t]}  $out" | sha256sum -c --quiet - 2>/dev/null; }; then
    # The F32 file is remade every time: a stale one would only show as a digest mismatch.
    python3 -c "from importlib.metadata import version as v; import numpy; assert v('gguf') == '0.19.0'" 2>/dev/null ||
      python3 -m pip install -q gguf==0.19.0 numpy
    python3 "$HERE/minilm_f32_gguf.py" "$D/all-minilm-l6-v2.safetensors" "$F32"
    quantize "$F32" "$out.tmp" $t 2
    mv "$out.tmp" "$out"
  fi
  echo "${PIN[$t]}  $out" | sha256sum -c --quiet - || { echo "sha256 mismatch: $out" >&2; exit 1; }
  echo "ok $out"
done
declare -A REQ=(
  [Q5_K_M]=de0ca6e0d6daf8ca15f25a000dd7c1d4d6e05ad136029d9403ec0ff913682d1c
  [IQ4_XS]=d6cb488ffe9cd75d50531c8687b2624bfbf26703082e0df9fdc55ee1a0e6e04c
)
for t in Q5_K_M IQ4_XS; do
  out=$D/gemma-3-270m-requant-$(echo $t | tr 'A-Z' 'a-z').gguf
  if ! { [ -f "$out" ] && echo "${REQ[$t]}  $out" | sha256sum -c --quiet - 2>/dev/null; }; then
    quantize --allow-requantize "$D/gemma-3-270m-q4_k_m.gguf" "$out.tmp" $t 2
    mv "$out.tmp" "$out"
  fi
  echo "${REQ[$t]}  $out" | sha256sum -c --quiet - || { echo "sha256 mismatch: $out" >&2; exit 1; }
  echo "ok $out"
done
