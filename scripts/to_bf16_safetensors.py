#!/usr/bin/env python3
"""Convert the F32 tensors of a .safetensors file to BF16 (or F16) by round-to-nearest-even.

This is what `model.to(torch.bfloat16)` does, and how the project builds its bf16 corpus from the
real all-MiniLM-L6-v2 F32 checkpoint (no registry ships a real LLM natively in bf16). Other
tensors are copied as they are. Output is deterministic (sorted keys, compact JSON, 8-byte padding).

usage: to_bf16_safetensors.py IN.safetensors OUT.safetensors [bf16|f16]   (needs numpy; default bf16)

f16 is what `model.half()` does (numpy's float32 -> float16 cast rounds to nearest even).
"""
import json
import os
import struct
import sys

import numpy as np


def f32_to_bf16_rne(x):
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[np.isnan(x)] = 0x7FC0  # a quiet NaN, as torch produces
    return r


def main(src, dst, target="bf16"):
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        out_hdr, blobs, off = {}, [], 0
        if "__metadata__" in hdr:
            out_hdr["__metadata__"] = hdr["__metadata__"]
        for name in sorted(k for k in hdr if k != "__metadata__"):
            t = hdr[name]
            s, e = t["data_offsets"]
            f.seek(base + s)
            b = f.read(e - s)
            dtype = t["dtype"]
            if dtype == "F32" and target == "bf16":
                b = f32_to_bf16_rne(np.frombuffer(b, dtype="<f4")).astype("<u2").tobytes()
                dtype = "BF16"
            elif dtype == "F32" and target == "f16":
                b = np.frombuffer(b, dtype="<f4").astype("<f2").tobytes()
                dtype = "F16"
            out_hdr[name] = {"dtype": dtype, "shape": t["shape"], "data_offsets": [off, off + len(b)]}
            blobs.append(b)
            off += len(b)
    h = json.dumps(out_hdr, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in ("bf16", "f16")):
        sys.exit(__doc__)
    main(*sys.argv[1:])
