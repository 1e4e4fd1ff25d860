#!/usr/bin/env python3
"""Derived corpora for the block types the fetched files do not hold (Q5_K, Q3_K, Q2_K, IQ4_XS,
IQ4_NL): real weights quantized with llama.cpp's own quantizer (PyPI libgguf 0.2.2, whose
`quantize_rows` is llama.cpp's code), written as raw streams of blocks.

    make_quant_corpora.py CACHE_DIR

Sources (both real, trained weights; nothing synthetic):
  * gemma-embd: Gemma 3 270M's token embedding, stored in the fetched GGUF as Q8_0 (8-bit, so its
    dequantized values are the trained weights to within half a step of 1/127 of each 32-block's
    largest): the first 65,536 rows, the first 512 of their 640 columns (K-quant rows must be a
    multiple of 256 long).
  * minilm-ffn: all-MiniLM-L6-v2's six FFN down-projection matrices (384 x 1536, F32 as trained).

Each output is `<source>.<type>`: the rows quantized with no importance matrix (what
`llama-quantize` does without --imatrix); and `quant-<type>.gguf`, the tensors of both sources in
that type in one GGUF file, which `weightzip bench` measures per type and whole
(scripts/results.sh). One file per type, not per source: a file holding the same weights in
IQ4_NL and IQ4_XS repeats 16-byte runs of grid indices, which a whole-file zstd -19 finds and no
real model file has. The bytes are deterministic; scripts/fetch_corpora.sh pins their SHA-256.
"""
import json
import os
import struct
import sys

import gguf
import libgguf as L
import numpy as np

TYPES = {
    "q5_k": L.GGMLQuantizationType.Q5_K,
    "q3_k": L.GGMLQuantizationType.Q3_K,
    "q2_k": L.GGMLQuantizationType.Q2_K,
    "iq4_xs": L.GGMLQuantizationType.IQ4_XS,
    "iq4_nl": L.GGMLQuantizationType.IQ4_NL,
}


def safetensors_f32(path):
    """The F32 tensors of a safetensors file, by name."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, t in header.items():
            if name == "__metadata__" or t["dtype"] != "F32":
                continue
            start, end = t["data_offsets"]
            f.seek(base + start)
            out[name] = np.frombuffer(f.read(end - start), dtype=np.float32).reshape(t["shape"])
        return out


def gemma_embedding(cache):
    r = gguf.GGUFReader(f"{cache}/gemma-3-270m-q4_k_m.gguf")
    (t,) = [t for t in r.tensors if t.name == "token_embd.weight"]
    assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0
    x = L.dequantize_rows(np.asarray(t.data[:65536]), L.GGMLQuantizationType.Q8_0)
    return [np.ascontiguousarray(x[:, :512])]


def minilm_ffn(cache):
    w = safetensors_f32(f"{cache}/all-minilm-l6-v2.safetensors")
    return [np.ascontiguousarray(w[f"encoder.layer.{i}.output.dense.weight"]) for i in range(6)]


def main():
    cache = sys.argv[1]
    sources = (("gemma-embd", gemma_embedding(cache)), ("minilm-ffn", minilm_ffn(cache)))
    for name, qtype in TYPES.items():
        container = f"{cache}/quant-{name}.gguf"
        w = gguf.GGUFWriter(container + ".tmp", "weightzip-corpus")
        w.add_string("general.name", f"real weights quantized to {name} by llama.cpp's quantizer")
        for source, matrices in sources:
            path = f"{cache}/{source}.{name}"
            with open(path + ".tmp", "wb") as f:
                for i, m in enumerate(matrices):
                    q = L.quantize_rows(m, qtype)
                    f.write(q.tobytes())
                    w.add_tensor(f"{source}.{i}", q, raw_shape=q.shape, raw_dtype=qtype)
            os.replace(path + ".tmp", path)
            print(path)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(container + ".tmp", container)
        print(container)


if __name__ == "__main__":
    main()
