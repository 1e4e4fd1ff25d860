#!/usr/bin/env python3
"""Made the golden frames and archives in this directory, once, and wrote MANIFEST.

These files are the format's promise (docs/FORMAT.md, "Golden files"): every later library must
decode each of them to the SHA-256 in MANIFEST. They are never re-made while the format versions
stay the same; this script is kept to show where their bytes came from, not to be run again.

Every input is cut from the committed real fixtures in tests/data (all-MiniLM-L6-v2 as a Q4_K_M
GGUF and as a raw bf16 stream): bf16, f16 and f32 values; Q4_K, Q6_K, Q8_0 and Q5_0 blocks copied
verbatim from the GGUF; Q4_0, Q4_1 and Q5_1 blocks made from the GGUF's F32 position embeddings by
gguf-py's quantizer (llama.cpp's reference quantization for those types); GGUF metadata bytes for
the generic path. The archives hold a small GGUF written with gguf-py and a small safetensors file
written by hand, both from the same real tensors.

q5_k.wzf came later (document revision 5, when kind q5_k was added), not from this script: the
first 200 blocks (35,200 bytes) of tests/data/minilm-l6-ffn-down0.q5_k (real Q5_K blocks, see
scripts/make_quant_corpora.py) compressed with `weightzip compress --kind q5_k`; likewise
iq4_nl.wzf (the first 36,000 bytes of tests/data/minilm-l6-ffn-down0.iq4_nl) and iq4_xs.wzf (the
first 73,984, past the 64 KiB under which a frame may go to the generic path), q3_k.wzf (the first
77,000 bytes of tests/data/minilm-l6-ffn-down0.q3_k) and q2_k.wzf (the first 75,600 of .q2_k).
bf16-ctx.wzf came at revision 6 (method 6): the first 196,608 bytes of tests/data/minilm-l6-ffn01.bf16
compressed with `weightzip compress --kind bf16 --row-len 384 --chunk-size 65536`, and f32-ctx.wzf:
the first 98,304 bytes of the Q4_K_M GGUF's F32 position_embd.weight (64 rows of 384) compressed
with `weightzip compress --kind f32 --row-len 384 --chunk-size 65536`.
bf16-signed.wzf and f32-signed.wzf came at revision 7 (the header flag SIGN_IN_SYMBOL): every 1-D F32
tensor of the Q4_K_M GGUF (norm weights and biases, 30,720 values) in file order, concatenated,
compressed with `weightzip compress --kind f32`, and the same values rounded to bf16 (to nearest,
ties to even) with `weightzip compress --kind bf16`.
bytes-delta.wzf came then too (the header flag DELTA): tests/data/minilm-position-ids.i64 compressed
with `weightzip compress --kind bytes`.
bf16-ctx-signs.wzf and f32-ctx-signs.wzf came at revision 10 (the header flag COLUMN_SIGNS): the
inputs of bf16-ctx.wzf and f32-ctx.wzf compressed with the same commands by the revision-10
writer, which flips the signs of the columns that lean negative (flags 5).

Usage: python3 tests/golden/make.py WEIGHTZIP_BINARY   (needs numpy and gguf==0.19.0)
"""

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
WZ = sys.argv[1]

gguf_path = os.path.join(DATA, "minilm-l6-q4_k_m.gguf")
reader = GGUFReader(gguf_path)
tensors = {t.name: t for t in reader.tensors}
gguf_bytes = open(gguf_path, "rb").read()
raw_bf16 = open(os.path.join(DATA, "minilm-l6-ffn01.bf16"), "rb").read()
st_file = open(os.path.join(DATA, "minilm-l6-layer0-bf16.safetensors"), "rb").read()
st_data = st_file[8 + struct.unpack("<Q", st_file[:8])[0] :]


def tensor_bytes(name, n):
    t = tensors[name]
    start = int(t.data_offset)
    return gguf_bytes[start : start + n]


pos = np.frombuffer(tensor_bytes("position_embd.weight", 4 * 49152), dtype="<f4").reshape(192, 256)
bf16_vals = np.frombuffer(raw_bf16[:4096], dtype="<u2")
as_f32 = (bf16_vals.astype(np.uint32) << 16).view(np.float32)

inputs = {
    # name: (kind, bytes, chunk size or 0)
    "bf16": ("bf16", raw_bf16[:4096], 0),
    # Three chunks at the smallest chunk size: FFN weights, then the embeddings' LayerNorm and
    # position rows (another distribution, so another table), then FFN weights again: a chunk
    # table, several tables, paired decoding and a pair's tail.
    "bf16-3chunks": ("bf16", raw_bf16[:65536] + st_data[:65536] + raw_bf16[65536 : 65536 + 8192], 65536),
    "f16": ("f16", as_f32.astype("<f2").tobytes(), 0),
    "f32": ("f32", tensor_bytes("position_embd.weight", 4096), 0),
    # Quantized data gains 3-10%, so it needs some KiB before coding pays for the tables.
    "q4_k": ("q4_k", tensor_bytes("blk.0.ffn_down.weight", 400 * 144), 0),
    "q6_k": ("q6_k", tensor_bytes("blk.2.ffn_down.weight", 300 * 210), 0),
    "q8_0": ("q8_0", tensor_bytes("token_embd.weight", 600 * 34), 0),
    "q5_0": ("q5_0", tensor_bytes("blk.0.attn_k.weight", 900 * 22), 0),
    "q4_0": ("q4_0", quants.quantize(pos, Q.Q4_0).tobytes(), 0),
    "q4_1": ("q4_1", quants.quantize(pos, Q.Q4_1).tobytes(), 0),
    "q5_1": ("q5_1", quants.quantize(pos, Q.Q5_1).tobytes(), 0),
    "bytes": ("bytes", gguf_bytes[:4096], 0),
    # Too small for coding to pay: a stored frame.
    "stored": ("bytes", b"weightzip golden", 0),
    # The smallest coded frame: one zstd chunk (a test vector in docs/FORMAT.md).
    "grouped-abc": ("bytes", b"abc" * 22, 0),
    "empty": ("bf16", b"", 0),
}


def small_gguf(path):
    w = GGUFWriter(path, "bert")
    w.add_uint32("golden.count", 3)
    w.add_string("golden.note", "cut from all-MiniLM-L6-v2 Q4_K_M")
    for name, ty, n, shape in [
        ("blk.0.ffn_down.weight", Q.Q4_K, 8 * 144, (2, 1024)),
        ("token_embd.weight", Q.Q8_0, 24 * 34, (2, 384)),
        ("blk.0.attn_k.weight", Q.Q5_0, 24 * 22, (2, 384)),
    ]:
        raw = np.frombuffer(tensor_bytes(name, n), dtype=np.uint8).reshape(shape[0], -1)
        w.add_tensor(name, raw, raw_dtype=ty)
    w.add_tensor("position_embd.weight", np.ascontiguousarray(pos[:4]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenizer_gguf(path):
    # small.gguf's tensors under a SentencePiece-like tokenizer: 3,500 tokens, a score per token
    # falling by one from token to token, token types nearly all 1 (normal), as Gemma's and
    # Llama's GGUF files carry them; over 64 KiB of key/values, so the writer splits them.
    w = GGUFWriter(path, "bert")
    w.add_uint32("golden.count", 3)
    n = 3500
    w.add_token_list([("tok%d%s" % (i, "x" * (i % 5))).encode() for i in range(n)])
    w.add_token_scores([-1000.0] * 4 + [-float(i) for i in range(n - 4)])
    w.add_token_types([3 if i < 4 else 1 for i in range(n)])
    for name, ty, nb, shape in [
        ("blk.0.ffn_down.weight", Q.Q4_K, 8 * 144, (2, 1024)),
        ("token_embd.weight", Q.Q8_0, 24 * 34, (2, 384)),
    ]:
        raw = np.frombuffer(tensor_bytes(name, nb), dtype=np.uint8).reshape(shape[0], -1)
        w.add_tensor(name, raw, raw_dtype=ty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tiny_safetensors(path):
    write_safetensors(path, [("w", "BF16", [8], raw_bf16[:16])], None)


def small_safetensors(path):
    parts = [
        ("encoder.weight", "BF16", [32, 64], raw_bf16[:4096]),
        ("encoder.bias", "F32", [256], pos[0].astype("<f4").tobytes()),
        ("position_ids", "I64", [8], np.arange(8, dtype="<i8").tobytes()),
    ]
    write_safetensors(path, parts, {"format": "pt"})


def write_safetensors(path, parts, metadata):
    header, data = ({"__metadata__": metadata} if metadata else {}), b""
    for name, dtype, shape, b in parts:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


manifest = []
with tempfile.TemporaryDirectory() as tmp:
    for name, (kind, raw, chunk) in inputs.items():
        src = os.path.join(tmp, name)
        open(src, "wb").write(raw)
        out = os.path.join(HERE, name + ".wzf")
        cmd = [WZ, "compress", "--kind", kind, src, "-o", out, "--force"]
        if chunk:
            cmd += ["--chunk-size", str(chunk)]
        subprocess.run(cmd, check=True)
        manifest.append((name + ".wzf", len(raw), hashlib.sha256(raw).hexdigest()))
    for name, make in [
        ("small.gguf", small_gguf),
        ("small.safetensors", small_safetensors),
        ("tiny.safetensors", tiny_safetensors),
    ]:
        src = os.path.join(tmp, name)
        make(src)
        out = os.path.join(HERE, name + ".wza")
        subprocess.run([WZ, "compress", src, "-o", out, "--force"], check=True)
        raw = open(src, "rb").read()
        manifest.append((name + ".wza", len(raw), hashlib.sha256(raw).hexdigest()))

    # Added at revision 8: small.gguf again, its extra bytes as a GGUF split (extra method 1),
    # made by the revision-8 writer while it still split every GGUF whose key/values parse. The
    # released writer keeps extra bytes under 64 KiB in one zstd frame when that is smaller (here
    # by 30 bytes), so running this line today gives method 0; the file is kept as it was made.
    # small.gguf.wza above is the revision-1 archive (method 0) and is never re-made.
    src = os.path.join(tmp, "small.gguf")
    small_gguf(src)
    subprocess.run([WZ, "compress", src, "-o", os.path.join(HERE, "small-split.gguf.wza"), "--force"], check=True)
    raw = open(src, "rb").read()
    manifest.append(("small-split.gguf.wza", len(raw), hashlib.sha256(raw).hexdigest()))

    # Added at revision 9: a GGUF with a tokenizer, written by the revision-9 writer, which stores
    # its extra bytes as a GGUF split with numeric columns (extra method 2).
    src = os.path.join(tmp, "tokenizer.gguf")
    tokenizer_gguf(src)
    subprocess.run([WZ, "compress", src, "-o", os.path.join(HERE, "tokenizer-columns.gguf.wza"), "--force"], check=True)
    raw = open(src, "rb").read()
    manifest.append(("tokenizer-columns.gguf.wza", len(raw), hashlib.sha256(raw).hexdigest()))

with open(os.path.join(HERE, "MANIFEST"), "w") as f:
    f.write("# file, bytes it decodes to, SHA-256 of those bytes (see make.py and docs/FORMAT.md)\n")
    for row in manifest:
        f.write("%s %d %s\n" % row)
