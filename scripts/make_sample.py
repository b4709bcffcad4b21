"""Cut a small real trace out of a shared bundle (the embedded sample and the
test fixtures).  Usage:

    python scripts/make_sample.py BUNDLE OUTDIR LINES [--from-marker TEXT]

Keeps the ftrace header, then LINES event lines starting at the first line that
contains the marker text (default: the workload start); copies the bundle's
geometry (slab_stats.json without counter snapshots) and the machine part of
meta.json.
"""

from __future__ import annotations

import argparse
import json
import lzma
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("lines", type=int)
    ap.add_argument("--from-marker", default="LAB_PHASE workload_start")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    header: list[str] = []
    body: list[str] = []
    started = False
    with lzma.open(a.bundle / "trace.txt.xz", "rt") as f:
        for line in f:
            if line.startswith("#"):
                if not started:
                    header.append(line)
                continue
            if not started and a.from_marker in line:
                started = True
            if started:
                body.append(line)
                if len(body) >= a.lines:
                    break
    n = len(body)
    header = [
        h.replace(h.split(":", 1)[1], f" {n}/{n}   #P:" + h.rsplit("#P:", 1)[1])
        if "entries-in-buffer" in h
        else h
        for h in header
    ]
    with lzma.open(a.out / "trace.txt.xz", "wt", preset=9) as f:
        f.writelines(header + body)
    meta = json.loads((a.bundle / "meta.json").read_text())
    keep = (
        "run",
        "kernel_release",
        "kernel_version",
        "kernel_flavor",
        "vcpus",
        "numa_nodes",
        "workload",
        "trace_clock",
    )
    small = {k: meta[k] for k in keep if k in meta}
    small["cut"] = {"from_marker": a.from_marker, "lines": n, "of_bundle": a.bundle.name}
    (a.out / "meta.json").write_text(json.dumps(small, indent=1) + "\n")
    stats = json.loads((a.bundle / "slab_stats.json").read_text())
    geo = {d: {"names": v["names"], "config": v["config"]} for d, v in stats.items()}
    (a.out / "slab_stats.json").write_text(json.dumps(geo, separators=(",", ":")) + "\n")
    print(f"{a.out}: {n} lines")


if __name__ == "__main__":
    main()
