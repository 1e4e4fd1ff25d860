#!/usr/bin/env python3
"""Compares two runs of `weightzip bench --json` (for example docs/results.json against a fresh
run of scripts/results.sh with WZ_RESULTS_DIR elsewhere):

    scripts/compare_results.py OLD.json NEW.json

Ratios are deterministic (same commit and format: the coded bytes are the same), so every ratio
must be equal; a difference means the output changed and the exit status is 1. Speeds are not:
for each method of each table it prints NEW/OLD for decompression and compression MB/s at one
thread and at all threads, then the median and the range of those quotients over all tables,
which is what "matches within noise" means on a shared machine. Tables present in one run only
are listed and otherwise ignored.
"""
import json
import os
import statistics
import sys

SPEEDS = ("decompress_mbps_1t", "decompress_mbps_nt", "compress_mbps_1t", "compress_mbps_nt")


def load(path):
    with open(path) as f:
        runs = json.load(f)
    tables = {}
    for t in runs:
        key = (os.path.basename(t["file"]), t["domain"])
        tables[key] = {m["name"]: m for m in t["methods"]}
        for b in t.get("bounds") or []:
            tables[key][b["name"]] = b
    return tables


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    old, new = load(sys.argv[1]), load(sys.argv[2])
    ratio_changes = []
    quotients = {s: [] for s in SPEEDS}
    print(f"{'file · domain · method':<72} {'ratio':>8}  " + "  ".join(f"{s.replace('_mbps', ''):>14}" for s in SPEEDS))
    for key in sorted(old.keys() & new.keys()):
        for name in sorted(old[key].keys() & new[key].keys()):
            a, b = old[key][name], new[key][name]
            if abs(a["ratio"] - b["ratio"]) > 1e-9:
                ratio_changes.append((key, name, a["ratio"], b["ratio"]))
            cells = []
            for s in SPEEDS:
                x, y = a.get(s), b.get(s)
                if x and y:
                    q = y / x
                    quotients[s].append(q)
                    cells.append(f"{q:14.2f}")
                else:
                    cells.append(f"{'':>14}")
            label = f"{key[0]} · {key[1]} · {name}"
            print(f"{label[:72]:<72} {b['ratio']:8.4f}  " + "  ".join(cells))
    for key in sorted(old.keys() ^ new.keys()):
        print(f"only in {'the old' if key in old else 'the new'} run: {key[0]} · {key[1]}")
    print()
    print("speed NEW/OLD over all tables and methods: median [min, max] (count)")
    for s, qs in quotients.items():
        if qs:
            print(f"  {s:<20} {statistics.median(qs):.2f} [{min(qs):.2f}, {max(qs):.2f}] ({len(qs)})")
    if ratio_changes:
        print(f"\n{len(ratio_changes)} ratios differ:")
        for key, name, a, b in ratio_changes:
            print(f"  {key[0]} · {key[1]} · {name}: {a:.6f} -> {b:.6f}")
        return 1
    print("\nevery ratio is identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
