"""Ingest and replay throughput on the largest shared trace (or the embedded
sample when ../shared is absent), each beside a reference measured in the same
run:

* decompression alone (xz -> lines), MB/s and lines/s;
* the baseline parser: one ``re`` match per line extracting the fields
  (the ~0.38 M lines/s/core figure of the project brief);
* slubsim ingest (parse + resolve into the columnar store), lines/s and the
  ratio to the baseline;
* replay of the store through the 7.3 and 6.12 models, events/s, with the
  mypyc-compiled hot path (when installed compiled) and pure Python
  (``SLUBSIM_PURE=1``, in a subprocess), and the compiled/pure ratio;
* peak RSS of the benchmark process.

Run: python benchmarks/bench_trace.py [TRACE_OR_BUNDLE]
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import slubsim
from slubsim.cli import sample_trace
from slubsim.replay import ReplayOptions, replay
from slubsim.trace.ingest import find_trace_file, ingest
from slubsim.trace.io import iter_lines
from slubsim.trace.store import EventStore

BASELINE = re.compile(
    r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): call_site=(\S+) ptr=(\S+)"
    r"(?: name=(\S+))?(?: bytes_req=(\d+) bytes_alloc=(\d+) gfp_flags=(\S+) node=(-?\d+))?"
)


def largest_shared() -> Path | None:
    root = Path(__file__).resolve().parents[2] / "shared" / "traces"
    if not root.is_dir():
        return None
    bundles = [
        d
        for d in root.iterdir()
        if (d / "trace.txt.xz").is_file() and not d.name.startswith("v612-")  # 7.3 model
    ]
    return max(bundles, key=lambda d: (d / "trace.txt.xz").stat().st_size) if bundles else None


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else (largest_shared() or sample_trace())
    f = find_trace_file(target) if target.is_dir() else target
    print(f"trace: {f} ({f.stat().st_size / 1e6:.1f} MB compressed)")

    t = time.perf_counter()
    n = 0
    nbytes = 0
    for _, line in iter_lines(f):
        n += 1
        nbytes += len(line) + 1
    dt_dec = time.perf_counter() - t
    rate = n / dt_dec / 1e6
    print(
        f"decompress+split      {n:>10,} lines  {dt_dec:6.2f} s  {rate:6.2f} M lines/s"
        f"  {nbytes / dt_dec / 1e6:6.1f} MB/s"
    )

    t = time.perf_counter()
    hits = 0
    for _, line in iter_lines(f):
        m = BASELINE.match(line)
        if m:
            m.groups()
            hits += 1
    dt_re = time.perf_counter() - t
    rate = n / dt_re / 1e6
    print(
        f"baseline re loop      {n:>10,} lines  {dt_re:6.2f} s  {rate:6.2f} M lines/s"
        f"  ({hits:,} events matched)"
    )

    t = time.perf_counter()
    store = ingest(target)
    dt_in = time.perf_counter() - t
    rate = n / dt_in / 1e6
    print(
        f"slubsim ingest        {n:>10,} lines  {dt_in:6.2f} s  {rate:6.2f} M lines/s"
        f"  ({dt_re / dt_in:.2f}x baseline; {store.n:,} events)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.parquet"
        store.write(path)
        mode = "compiled" if slubsim.COMPILED else f"pure ({slubsim.PURE_REASON})"
        env = dict(os.environ, SLUBSIM_PURE="1")
        for kernel in ("7.3", "6.12"):
            native = replay_rate(store, kernel)
            pure = float(
                subprocess.run(
                    [sys.executable, __file__, "--replay-rate", str(path), kernel],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            print(
                f"replay {kernel:<4} {mode:<9}  {store.n:>10,} events  "
                f"{native / 1e6:6.2f} M events/s"
                f"  | pure {pure / 1e6:5.2f} M events/s  ({native / pure:.2f}x)"
            )
    # Linux reports ru_maxrss in KiB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB (this process: ingest + the compiled replays)")


def replay_rate(store: EventStore, kernel: str) -> float:
    """Events/s of the replay event loop (best of 2, no final invariant check)."""
    best = min(
        replay(store, ReplayOptions(kernel=kernel, validate=False))["trace"]["replay_seconds"]
        for _ in range(2)
    )
    return store.n / best

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--replay-rate":
        print(replay_rate(EventStore.read(sys.argv[2]), sys.argv[3]))
    else:
        main()
