"""Machine-independent replay cost: instructions per event, counted by
valgrind (callgrind), compiled and pure.

Wall-clock speed on a shared 2-core VM varies by 2x between runs; instruction
counts do not (to a few per mille).  Each figure is the difference between a
process that replays twice and one that replays once, divided by the events,
so start-up, imports and ingest cancel out.

    python benchmarks/bench_instructions.py [STORE.parquet | TRACE]   # default: the embedded sample

Needs ``valgrind`` on PATH; takes a few minutes (pure Python under callgrind
is ~50x slower than native).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys
from slubsim.trace.store import EventStore
from slubsim.replay import ReplayOptions, replay
st = EventStore.open(sys.argv[1])
for _ in range(int(sys.argv[3])):
    replay(st, ReplayOptions(kernel=sys.argv[2], validate=False))
"""


def instructions(store: Path, kernel: str, runs: int, pure: bool) -> int:
    env = dict(os.environ)
    env.pop("SLUBSIM_PURE", None)
    if pure:
        env["SLUBSIM_PURE"] = "1"
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            CHILD,
            str(store),
            kernel,
            str(runs),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    m = re.search(r"Collected : (\d+)", out)
    if m is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(m.group(1))


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    import slubsim
    from slubsim.cli import sample_trace
    from slubsim.trace.ingest import ingest
    from slubsim.trace.store import EventStore

    arg = Path(sys.argv[1]) if len(sys.argv) > 1 else sample_trace()
    with tempfile.TemporaryDirectory() as tmp:
        if arg.suffix == ".parquet":
            store_path = arg
        else:
            store_path = Path(tmp) / "store.parquet"
            ingest(arg, out=store_path)
        n = EventStore.open(store_path).n
        print(f"slubsim {slubsim.__version__}; compiled available: {slubsim.COMPILED}")
        print(f"store: {arg} ({n:,} events)")
        for kernel in ("7.3", "6.12"):
            per = {}
            for pure in (False, True) if slubsim.COMPILED else (True,):
                one = instructions(store_path, kernel, 1, pure)
                two = instructions(store_path, kernel, 2, pure)
                per[pure] = (two - one) / n
            line = f"  replay {kernel:<4}"
            if False in per:
                line += f"  compiled {per[False]:8,.0f} instructions/event"
            line += f"  pure {per[True]:8,.0f} instructions/event"
            if False in per:
                line += f"  (pure/compiled {per[True] / per[False]:.2f}x)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
