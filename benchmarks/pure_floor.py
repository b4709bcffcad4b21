"""How fast can a pure-Python replay be?  The floor under issue #7's
"pure no slower than 3x compiled" target, measured.

The target pairs two ratios: compiled replay of the 7.3 model at >= 1.5x a
minimal dict-and-list sheaf loop (``bench_trace.reference_loop``), and pure
replay at >= 1/3 of compiled.  Together they ask the pure replay for at least
half the reference loop's speed -- while doing, per event, everything the
reference loop does and the bookkeeping a counter-exact replay cannot skip.

This script measures that bookkeeping's cost in plain Python with the
cheapest structures there are (``floor_loop``): the reference loop, plus

* the event's cache: one sheaf per (cache, CPU), not one per CPU;
* the per-CPU stat counter of the path taken (``ALLOC_FASTPATH`` /
  ``FREE_FASTPATH``), as SLUB_STATS keeps them;
* the cache's live-object count (the memory curve's input);
* the object's state (a free of an object that is not live is reported,
  not replayed -- a double free must not put an object in a sheaf twice);

and nothing else: no node or slab of the object, no barn limits, no memory
curve, no rcu or prefilled sheaves, no validation.  It is a floor for the
*cost* of a pure replay, so an upper bound on its *speed*: if the compiled
replay runs more than 3x faster than this loop, no pure-Python replay of the
model can meet the target, however it is written.

For each trace it prints, measured in one process alternating run by run
(this VM's speed drifts; best of each): the reference loop, the floor loop
and the compiled replay from memory; then the pure replay (``SLUBSIM_PURE=1``,
its own process) and the rate the target asks of it.

Run: python benchmarks/pure_floor.py [--rounds N] [TRACE_OR_BUNDLE ...]
     (default: every shared 7.3 bundle, else the embedded sample)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import slubsim
from slubsim.cli import sample_trace
from slubsim.replay import Replayer, ReplayOptions
from slubsim.trace.events import OP_ALLOC, OP_FREE
from slubsim.trace.ingest import ingest
from slubsim.trace.store import EventStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trace import largest_shared, reference_loop, replay_stats


def floor_loop(store: EventStore, capacity: int = 32) -> tuple[float, dict[str, int]]:
    """Events/s of the reference loop plus the bookkeeping no counter-exact
    replay can skip (module docstring); the structures are the cheapest there
    are (lists indexed by dense ids, a bytearray of object states).  Also
    returns what it counted (allocations, frees, objects live at the end) so
    a test can see it did the work.  Its loop is the reference loop's body
    written out again with the additions: a helper shared by the two would
    put a call per event into both measurements."""
    total = 0
    elapsed = 0.0
    ncache = len(store.caches) + 1
    ncpu = 256
    nobj = 0  # grown per batch, outside the clock
    sheaves: list[list[int]] = [[] for _ in range(ncache * ncpu)]
    barns: list[list[list[int]]] = [[] for _ in range(ncache)]
    stat_alloc = [0] * (ncache * ncpu)
    stat_free = [0] * (ncache * ncpu)
    nlive = [0] * ncache
    addr: list[int] = [0] * max(nobj, 1)
    state = bytearray(max(nobj, 1))
    slab: list[int] = []
    nxt = 1
    for b in store.iter_batches(("op", "cpu", "cache", "obj"), 1 << 20):
        ops: list[int] = b["op"].tolist()
        cpus: list[int] = b["cpu"].tolist()
        caches: list[int] = b["cache"].tolist()
        objs: list[int] = b["obj"].tolist()
        top = max(objs, default=-1) + 1
        if top > len(addr):  # (outside the clock)
            addr.extend([0] * (top - len(addr)))
            state.extend(bytes(top - len(state)))
        t = time.perf_counter()
        for op, cpu, c, o in zip(ops, cpus, caches, objs, strict=True):
            if c < 0 or o < 0:
                continue
            if op == OP_ALLOC:
                j = c * ncpu + cpu
                m = sheaves[j]
                if not m:
                    barn = barns[c]
                    if barn:
                        m = sheaves[j] = barn.pop()
                    else:
                        for _ in range(capacity):
                            if slab:
                                m.append(slab.pop())
                            else:
                                m.append(nxt)
                                nxt += 1
                addr[o] = m.pop()
                state[o] = 1
                stat_alloc[j] += 1
                nlive[c] += 1
            elif op == OP_FREE:
                if state[o] != 1:
                    continue  # not live: reported, not replayed
                state[o] = 0
                j = c * ncpu + cpu
                m = sheaves[j]
                if len(m) >= capacity:
                    barns[c].append(m)
                    m = sheaves[j] = []
                m.append(addr[o])
                stat_free[j] += 1
                nlive[c] -= 1
        elapsed += time.perf_counter() - t
        total += len(ops)
    done = {"allocs": sum(stat_alloc), "frees": sum(stat_free), "live": sum(nlive)}
    return total / elapsed, done


def _pair_child(path: str, rounds: int) -> None:
    """In a fresh process: reference, floor and compiled replay alternated
    ``rounds`` times over the store in memory; best of each."""
    store = EventStore.read(path)
    ref = flo = 0.0
    best = float("inf")
    for _ in range(rounds):
        ref = max(ref, reference_loop(store))
        flo = max(flo, floor_loop(store)[0])
        rp = Replayer(store, ReplayOptions(kernel="7.3", validate=False))
        best = min(best, rp.run()["trace"]["replay_seconds"])
        del rp
    print(json.dumps({"events": store.n, "reference": ref, "floor": flo, "replay": store.n / best}))


def measure(target: Path, tmp: Path, rounds: int) -> None:
    out = tmp / f"{target.name}.parquet"
    store = ingest(target)
    store.write(out)
    n = store.n
    del store
    got = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--pair-child", str(out), str(rounds)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    pure = replay_stats(out, "7.3", pure=True, memory=True)["rate"]
    ref, flo, rep = got["reference"], got["floor"], got["replay"]
    mode = "compiled" if slubsim.COMPILED else "pure*"
    print(f"{target.name}: {n:,} events")
    print(f"  reference loop          {ref / 1e6:6.2f} M events/s")
    print(
        f"  floor loop              {flo / 1e6:6.2f} M events/s  ({flo / ref:.2f}x reference:"
        " the cheapest pure loop with a replay's bookkeeping)"
    )
    print(f"  replay 7.3 {mode:<9}    {rep / 1e6:6.2f} M events/s  ({rep / ref:.2f}x reference)")
    print(
        f"  replay 7.3 pure         {pure / 1e6:6.2f} M events/s  (compiled {rep / pure:.1f}x pure;"
        f" the target asks >= {rep / 3 / 1e6:.2f} M events/s;"
        f" even the floor loop is {rep / flo:.1f}x slower than compiled)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("traces", nargs="*", help="traces or bundles (default: shared 7.3 bundles)")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    targets = [Path(t) for t in a.traces]
    if not targets:
        big = largest_shared()
        if big is None:
            targets = [sample_trace()]
        else:
            targets = sorted(
                d
                for d in big.parent.iterdir()
                if (d / "trace.txt.xz").is_file() and not d.name.startswith("v612-")
            )
    print(
        f"slubsim {slubsim.__version__}; hot path "
        + ("compiled" if slubsim.COMPILED else f"pure ({slubsim.PURE_REASON})")
    )
    with tempfile.TemporaryDirectory() as tmp:
        for t in targets:
            measure(t, Path(tmp), a.rounds)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--pair-child":
        _pair_child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
