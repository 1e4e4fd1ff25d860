#!/usr/bin/env python3
"""Writes the tensors of one type from a model file, concatenated in file order, as a raw stream:
what `weightzip compress --kind` takes and what the end-to-end restore benchmark
(scripts/bench_restore.sh) decodes. Standard library only.

    extract_stream.py MODEL.gguf q4k|q6k OUT      GGUF tensors of ggml type Q4_K or Q6_K
    extract_stream.py MODEL.safetensors bf16 OUT  safetensors tensors of dtype BF16
"""
import json
import struct
import sys

GGML = {"q4k": (12, 144, 256), "q6k": (14, 210, 256)}  # ggml type id, block bytes, block values


def gguf_table(data):
    """A GGUF file's tensor table: (data section offset, [(offset in the data section, ggml type,
    dims)]). Shared with scripts/peers.py."""
    if data[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    at = 24

    def string(at):
        (n,) = struct.unpack_from("<Q", data, at)
        return data[at + 8 : at + 8 + n].decode(), at + 8 + n

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def value(t, at):
        if t == 8:
            return string(at)[1]
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, at)
            at += 12
            for _ in range(n):
                at = value(et, at)
            return at
        return at + sizes[t]

    alignment = 32
    for _ in range(n_kv):
        key, at = string(at)
        (t,) = struct.unpack_from("<I", data, at)
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", data, at + 4)
        at = value(t, at + 4)
    infos = []
    for _ in range(n_tensors):
        name, at = string(at)
        (nd,) = struct.unpack_from("<I", data, at)
        dims = struct.unpack_from("<%dQ" % nd, data, at + 4)
        t, off = struct.unpack_from("<IQ", data, at + 4 + 8 * nd)
        at += 4 + 8 * nd + 12
        infos.append((off, t, dims))
    return (at + alignment - 1) // alignment * alignment, infos


def gguf_tensors(f, ggml_type):
    data = f.read()
    try:
        base, infos = gguf_table(data)
    except ValueError as e:
        sys.exit(str(e))
    tid, block, per = GGML[ggml_type]
    for off, t, dims in sorted(infos):
        if t == tid:
            n = 1
            for d in dims:
                n *= d
            yield data[base + off : base + off + n // per * block]


def safetensors_tensors(f):
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    data = f.read()
    for _, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if t["dtype"] == "BF16":
            a, b = t["data_offsets"]
            yield data[a:b]


def main():
    path, kind, out = sys.argv[1:4]
    with open(path, "rb") as f:
        parts = list(safetensors_tensors(f) if kind == "bf16" else gguf_tensors(f, kind))
    if not parts:
        sys.exit(f"{path}: no {kind} tensors")
    with open(out, "wb") as o:
        for p in parts:
            o.write(p)


if __name__ == "__main__":
    main()
