#!/usr/bin/env python3
"""weightzip next to its peers, on the project's corpora, in one run: ZipNN (its byte API), OpenZL
(its default graph and the best graph built here from its Python API) and zstd -3. Run it through
scripts/peers.sh, which installs the pinned peers into a venv of their own and builds the library.

    peers.py [--reps N] [--markdown OUT.md] [--json OUT.json] FILE...

Every file is split into data domains (its tensors of one dtype or ggml type, concatenated in file
order) and each method codes each domain as one stream, on one thread; the whole-file rows add the
file's other bytes (headers, metadata). Ratios are original bytes over coded bytes; MB/s are of
original bytes, medians of --reps runs, in memory. Every method's output is decoded and compared
with its input: a mismatch stops the run.

How each peer is run, and why:
* ZipNN 0.5.4, `ZipNN(input_format="byte", bytearray_dtype=..., threads=1)`, for float domains (it
  has no mode for quantized blocks). Its module imports torch and safetensors.torch at load time
  and its byte API uses neither, so both are stubbed (the issue's "without dependencies"). Its
  `compress` rewrites the buffer it is given in place (measured: the bytes object's hash changes),
  so each call gets a fresh copy, made outside the timed region.
* OpenZL 0.3.0, frames of 1 MiB (what its bf16 graph was measured with in issue 16; frames of
  16 or 64 MiB gain it 0.0001 in ratio on MiniLM bf16). "OpenZL default": its generic `Compress`
  graph. "OpenZL best": the smallest of the default and the graphs built here for the type: floats split by `BFloat16Deconstruct` /
  `Float16Deconstruct` / `Float32Deconstruct` into exponents (FSE) and sign+mantissa, the latter
  through zstd or cut into byte lanes (`TransposeSplit`) each through OpenZL's entropy graph;
  ggml blocks cut into structs of the block's size and split into byte lanes, each through the
  entropy graph. For a whole GGUF or safetensors file, "best" is the sum of each domain's
  best and the rest of the file through the default graph: one graph per type.
* zstd -3 (python-zstandard), one frame per domain, as `weightzip bench` runs it.
* weightzip through its Python binding (ctypes, the library built by peers.sh): `compress(stream,
  kind)` per domain, in memory; whole files as archives, `compress_file` and `restore_file` between
  files of a temporary directory, so their MB/s include writing the output (to the page cache).
"""
import argparse
import hashlib
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from unittest import mock

import numpy as np

# Before zipnn is imported: see the module docstring.
for _m in ("torch", "safetensors", "safetensors.torch"):
    sys.modules.setdefault(_m, mock.MagicMock(name=_m))

import openzl.ext as zl  # noqa: E402
import zstandard  # noqa: E402
from zipnn import ZipNN  # noqa: E402

import weightzip  # noqa: E402
from extract_stream import gguf_table  # noqa: E402  (this script's directory is on sys.path)
from weightzip._types import GGML_TYPES  # noqa: E402

OPENZL_FRAME = 1 << 20
# weightzip kinds of ggml types and safetensors dtypes (anything else: "bytes").
WZ_KIND = {
    "F32": "f32", "F16": "f16", "BF16": "bf16", "Q4_K": "q4_k", "Q6_K": "q6_k", "Q8_0": "q8_0",
    "Q5_0": "q5_0", "Q5_1": "q5_1", "Q4_0": "q4_0", "Q4_1": "q4_1", "Q5_K": "q5_k",
    "IQ4_NL": "iq4_nl", "IQ4_XS": "iq4_xs", "Q3_K": "q3_k", "Q2_K": "q2_k",
}
ZIPNN_DTYPE = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}
FLOAT_SPLIT = {"BF16": (2, "BFloat16Deconstruct"), "F16": (2, "Float16Deconstruct"), "F32": (4, "Float32Deconstruct")}


# ---- the corpora: domains of a file ----

def safetensors_domains(data):
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    doms = {}
    for _, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = t["data_offsets"]
        doms.setdefault(t["dtype"], []).append(data[base + a:base + b])
    return {k: b"".join(v) for k, v in doms.items()}, base


def gguf_domains(data):
    base, infos = gguf_table(data)
    doms = {}
    for off, t, dims in sorted(infos):
        name, per, block, _ = GGML_TYPES[t]
        n = 1
        for d in dims:
            n *= d
        doms.setdefault(name, []).append(data[base + off:base + off + n // per * block])
    return {k: b"".join(v) for k, v in doms.items()}, base


def domains_of(path, data):
    if data[:4] == b"GGUF":
        return gguf_domains(data)
    return safetensors_domains(data)


# ---- the methods: (compress, decompress) pairs over whole streams ----

def timed(f, reps):
    out, times = None, []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def run_method(name, compress, decompress, data, reps, fresh_input=None):
    """Ratio and 1-thread MB/s of one method on one stream; checks the roundtrip."""
    times = []
    coded = None
    for _ in range(reps):
        src = fresh_input() if fresh_input else data
        t0 = time.perf_counter()
        coded = compress(src)
        times.append(time.perf_counter() - t0)
    ct = statistics.median(times)
    back, dt = timed(lambda: decompress(coded), reps)
    if bytes(back) != data:
        raise SystemExit("%s: decoded bytes differ from the input" % name)
    size = sum(len(c) for c in coded) if isinstance(coded, list) else len(coded)
    return {"name": name, "bytes": len(data), "coded": size, "ratio": len(data) / size,
            "compress_mbps": len(data) / ct / 1e6, "decompress_mbps": len(data) / dt / 1e6}


def weightzip_method(kind):
    return ("weightzip", lambda d: weightzip.compress(d, kind=kind, threads=1),
            lambda c: weightzip.decompress(c, threads=1))


def zstd_method():
    cctx = zstandard.ZstdCompressor(level=3)
    dctx = zstandard.ZstdDecompressor()
    return ("zstd -3", cctx.compress, dctx.decompress)


def zipnn_method(dtype):
    z = ZipNN(input_format="byte", bytearray_dtype=ZIPNN_DTYPE[dtype], threads=1)
    return ("ZipNN", z.compress, z.decompress)


def openzl_compressor(graph):
    """An OpenZL compressor: "default", or a graph of this script's: (float dtype, how the sign
    and mantissa go) or ("blocks", block bytes)."""
    c = zl.Compressor()
    if graph == "default":
        g = zl.graphs.Compress()(c)
    elif graph[0] == "blocks":
        lanes = zl.nodes.TransposeSplit()(c, zl.graphs.Entropy()(c))
        g = zl.nodes.ConvertSerialToStruct(graph[1])(c, lanes)
    else:
        dtype, sign_frac = graph
        width, node = FLOAT_SPLIT[dtype]
        if sign_frac == "zstd":
            rest = zl.graphs.Zstd(compression_level=3)(c)
        else:  # the sign+mantissa struct's bytes as lanes, each entropy-coded
            rest = zl.nodes.TransposeSplit()(c, zl.graphs.Entropy()(c))
        split = getattr(zl.nodes, node)()(c, rest, zl.graphs.Fse()(c))
        to_num = zl.nodes.ConvertSerialToNumLE16() if width == 2 else zl.nodes.ConvertSerialToNumLE32()
        g = to_num(c, split)
    c.select_starting_graph(g)
    return c


def openzl_method(label, graph, unit):
    c = openzl_compressor(graph)
    cctx = zl.CCtx()
    cctx.ref_compressor(c)
    cctx.set_parameter(zl.CParam.StickyParameters, 1)
    cctx.set_parameter(zl.CParam.FormatVersion, zl.MAX_FORMAT_VERSION)
    dctx = zl.DCtx()
    # Frames of 1 MiB, cut at a whole number of elements or blocks.
    frame = OPENZL_FRAME // unit * unit

    def compress(data):
        arr = np.frombuffer(data, dtype=np.uint8)
        # bytes(): the returned buffer is the context's and the next call overwrites it.
        return [bytes(cctx.compress([zl.Input(zl.Type.Serial, arr[i:i + frame])])) for i in range(0, len(arr), frame)]

    def decompress(frames):
        return b"".join(dctx.decompress(f)[0].content.as_bytes() for f in frames)

    return (label, compress, decompress)


def domain_methods(dtype, data):
    kind = WZ_KIND.get(dtype, "bytes")
    ms = [weightzip_method(kind), zstd_method()]
    if dtype in ZIPNN_DTYPE:
        ms.append(zipnn_method(dtype))
    ms.append(openzl_method("OpenZL default", "default", 1))
    if dtype in FLOAT_SPLIT:
        width = FLOAT_SPLIT[dtype][0]
        ms.append(openzl_method("OpenZL exponent FSE, rest zstd", (dtype, "zstd"), width))
        ms.append(openzl_method("OpenZL exponent FSE, rest byte lanes", (dtype, "lanes"), width))
    elif dtype in WZ_KIND:
        block = next(v for v in GGML_TYPES.values() if v[0] == dtype)[2]
        ms.append(openzl_method("OpenZL block byte lanes", ("blocks", block), block))
    return ms


def measure_domain(dtype, data, reps):
    rows = []
    for name, comp, decomp in domain_methods(dtype, data):
        fresh = (lambda: bytearray(data)) if name == "ZipNN" else None
        if len(data) % (2 if dtype in ("BF16", "F16") else 4) and name == "ZipNN":
            continue
        rows.append(run_method(name, comp, decomp, data, reps, fresh))
        print("  %-8s %-16s %.4f  %7.1f MB/s compress  %7.1f MB/s decompress" % (
            dtype, name, rows[-1]["ratio"], rows[-1]["compress_mbps"], rows[-1]["decompress_mbps"]), file=sys.stderr)
    graphs = [r for r in rows if r["name"].startswith("OpenZL")]
    best = min(graphs, key=lambda r: r["coded"])
    rows.append(dict(best, name="OpenZL best (%s)" % best["name"][len("OpenZL "):]))
    return rows


def measure_whole(path, data, domains, base, per_domain, reps):
    """Whole-file rows: the weightzip archive and zstd -3 / OpenZL default on the file's bytes;
    OpenZL best as the sum of its per-domain best and the rest through its default graph."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src, arc, out = (os.path.join(tmp, n) for n in ("in", "in.wz", "out"))
        with open(src, "wb") as f:
            f.write(data)

        def compress_file():
            weightzip.compress_file(src, arc, threads=1, overwrite=True)
            return os.path.getsize(arc)

        size, ct = timed(compress_file, reps)
        _, dt = timed(lambda: weightzip.restore_file(arc, out, threads=1, overwrite=True), reps)
        with open(out, "rb") as f:
            if hashlib.sha256(f.read()).digest() != hashlib.sha256(data).digest():
                raise SystemExit("%s: the archive restored other bytes" % path)
        rows.append({"name": "weightzip archive", "bytes": len(data), "coded": size, "ratio": len(data) / size,
                     "compress_mbps": len(data) / ct / 1e6, "decompress_mbps": len(data) / dt / 1e6})
    for name, comp, decomp in (zstd_method(), openzl_method("OpenZL default", "default", 1)):
        rows.append(run_method(name, comp, decomp, data, reps))
    # The rest of the file: its header (metadata, tensor index) and the padding between tensors
    # (zeros in every file here), through the default graph.
    rest_bytes = data[:base] + bytes(len(data) - base - sum(len(d) for d in domains.values()))
    rest = len(rest_bytes)
    parts = [next(r for r in rows_ if r["name"].startswith("OpenZL best")) for rows_ in per_domain.values()]
    coded = sum(p["coded"] for p in parts)
    ctime = sum(p["bytes"] / p["compress_mbps"] for p in parts)
    dtime = sum(p["bytes"] / p["decompress_mbps"] for p in parts)
    if rest > 0:
        r = run_method("rest", *openzl_method("rest", "default", 1)[1:], rest_bytes, reps)
        coded += r["coded"]
        ctime += r["bytes"] / r["compress_mbps"]
        dtime += r["bytes"] / r["decompress_mbps"]
    rows.append({"name": "OpenZL best (graph per type)", "bytes": len(data), "coded": coded,
                 "ratio": len(data) / coded, "compress_mbps": len(data) / ctime, "decompress_mbps": len(data) / dtime})
    return rows


def markdown(results):
    out = []
    for f in results:
        out.append("### %s\n" % f["file"])
        out.append("| domain | MB | method | ratio | vs weightzip | compress MB/s | decompress MB/s |")
        out.append("|---|---|---|---|---|---|---|")
        for dom in f["domains"] + [{"domain": "whole file", "rows": f["whole"]}]:
            rows = dom["rows"]
            ours = rows[0]["ratio"]
            for r in rows:
                out.append("| %s | %.1f | %s | %.4f | %.4f | %.0f | %.0f |" % (
                    dom["domain"], r["bytes"] / 1e6, r["name"], r["ratio"], r["ratio"] / ours,
                    r["compress_mbps"], r["decompress_mbps"]))
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-domain", type=int, default=1 << 20,
                    help="domains smaller than this get no row of their own (they count in the whole file)")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    a = ap.parse_args()
    results = []
    for path in a.files:
        with open(path, "rb") as f:
            data = f.read()
        domains, base = domains_of(path, data)
        print("%s" % os.path.basename(path), file=sys.stderr)
        per_domain = {}
        for dtype, stream in sorted(domains.items(), key=lambda kv: -len(kv[1])):
            per_domain[dtype] = measure_domain(dtype, stream, a.reps)
        whole = measure_whole(path, data, domains, base, per_domain, a.reps)
        for r in whole:
            print("  whole    %-28s %.4f" % (r["name"], r["ratio"]), file=sys.stderr)
        results.append({"file": os.path.basename(path), "bytes": len(data), "whole": whole,
                        "domains": [{"domain": k, "rows": v} for k, v in per_domain.items() if len(domains[k]) >= a.min_domain]})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    md = markdown(results)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md + "\n")
    else:
        print(md)


if __name__ == "__main__":
    main()
