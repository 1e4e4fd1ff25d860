#!/usr/bin/env python3
"""Two builds of the `weightzip` tool side by side, end to end, in one run: for each model file,
`compress` (to a file) and `decompress` (to /dev/null) with each binary, alternating OLD and NEW
so that the machine's load falls on both alike, at each thread count and SIMD cap asked for.
Prints the median wall time of each (and MB/s of the original file), NEW/OLD speed, and checks
that both binaries wrote the same archive bytes.

    scripts/compare_binaries.py OLD_BINARY NEW_BINARY [--reps N] [--threads 1,0] [--simd native,avx2] FILE...

Use it before and after a change that must not cost speed (a refactor, a new codec path).
"""

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, env):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", default="1,0", help="comma-separated thread counts (0 = all cores)")
    ap.add_argument("--simd", default="native", help="comma-separated WZ_SIMD caps: native, avx512, avx2, scalar")
    a = ap.parse_args()
    bins = {"old": os.path.abspath(a.old), "new": os.path.abspath(a.new)}
    print(f"old: {bins['old']}\nnew: {bins['new']}\nreps: {a.reps} (medians), alternating old/new\n")
    print(f"{'file':<40} {'op':<10} {'thr':>3} {'simd':>6} {'old s':>8} {'new s':>8} {'old MB/s':>9} {'new MB/s':>9} {'new/old':>8}")
    tmp = tempfile.mkdtemp(prefix="wz-compare-")
    quotients = []
    for f in a.files:
        size = os.path.getsize(f)
        name = os.path.basename(f)
        for simd in a.simd.split(","):
            env = dict(os.environ)
            env.pop("WZ_SIMD", None)
            if simd != "native":
                env["WZ_SIMD"] = simd
            for threads in a.threads.split(","):
                out = {k: os.path.join(tmp, f"{k}.wz") for k in bins}
                times = {(k, op): [] for k in bins for op in ("compress", "decompress")}
                for _ in range(a.reps):
                    for k, b in bins.items():
                        times[(k, "compress")].append(
                            run([b, "compress", f, "-o", out[k], "--force", "--threads", threads], env))
                    for k, b in bins.items():
                        times[(k, "decompress")].append(
                            run([b, "decompress", out[k], "-o", "/dev/null", "--force", "--threads", threads], env))
                if sha(out["old"]) != sha(out["new"]):
                    print(f"{name}: the two binaries wrote different archives", file=sys.stderr)
                    sys.exit(1)
                for op in ("compress", "decompress"):
                    o, n = statistics.median(times[("old", op)]), statistics.median(times[("new", op)])
                    quotients.append(o / n)
                    print(f"{name[:40]:<40} {op:<10} {threads:>3} {simd:>6} {o:8.3f} {n:8.3f} "
                          f"{size / o / 1e6:9.1f} {size / n / 1e6:9.1f} {o / n:8.3f}")
                for p in out.values():
                    os.remove(p)
    os.rmdir(tmp)
    q = sorted(quotients)
    print(f"\nnew/old speed over all rows: median {statistics.median(q):.3f}, range [{q[0]:.3f}, {q[-1]:.3f}]; "
          "archives identical")


if __name__ == "__main__":
    main()
