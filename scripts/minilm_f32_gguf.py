#!/usr/bin/env python3
"""all-MiniLM-L6-v2 as an F32 GGUF (llama.cpp's "bert" architecture), the input llama.cpp's
llama-quantize needs to make the whole-file Q5_K_M and IQ4_XS corpora (scripts/make_quant_models.sh).

    minilm_f32_gguf.py MODEL.safetensors OUT.gguf

The key/values are those of the committed fixture tests/data/minilm-l6-q4_k_m.gguf (the same
model converted by llama.cpp's tools, then quantized), with the file type set to all-F32; the
tensors are the safetensors file's F32 weights as trained, under llama.cpp's names, in the
fixture's order. Needs numpy and gguf==0.19.0.
"""
import json
import os
import struct
import sys

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "data", "minilm-l6-q4_k_m.gguf")

# Hugging Face BERT names -> llama.cpp's.
LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
TOP = {
    "embeddings.word_embeddings.weight": "token_embd.weight",
    "embeddings.position_embeddings.weight": "position_embd.weight",
    "embeddings.token_type_embeddings.weight": "token_types.weight",
    "embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "embeddings.LayerNorm.bias": "token_embd_norm.bias",
}


def llama_name(hf):
    if hf in TOP:
        return TOP[hf]
    if hf.startswith("encoder.layer."):
        rest = hf[len("encoder.layer."):]
        i, rest = rest.split(".", 1)
        part, kind = rest.rsplit(".", 1)
        if part in LAYER:
            return f"blk.{i}.{LAYER[part]}.{kind}"
    return None


def read_f32(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        out = {}
        for name, t in header.items():
            if name == "__metadata__" or t["dtype"] != "F32":
                continue
            start, end = t["data_offsets"]
            f.seek(8 + n + start)
            out[name] = np.frombuffer(f.read(end - start), dtype=np.float32).reshape(t["shape"])
        return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    weights = {llama_name(k): v for k, v in read_f32(src).items() if llama_name(k)}
    fixture = gguf.GGUFReader(FIXTURE)
    w = gguf.GGUFWriter(dst + ".tmp", "bert")
    for key, field in fixture.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.STRING:
            w.add_string(key, bytes(field.parts[field.data[0]]).decode())
        elif vtype == gguf.GGUFValueType.ARRAY:
            raise SystemExit(f"unexpected array key {key}")
        else:
            w.add_key_value(key, field.parts[field.data[0]][0].item(), vtype)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in fixture.tensors:
        w.add_tensor(t.name, np.ascontiguousarray(weights.pop(t.name)))
    assert not weights, f"tensors not in the fixture: {sorted(weights)}"
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
