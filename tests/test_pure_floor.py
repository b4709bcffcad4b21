"""benchmarks/pure_floor.py's floor loop does the bookkeeping it claims
(the figure it prints bounds a pure replay's speed only if it does)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from slubsim.trace.events import OP_ALLOC, OP_FREE
from slubsim.trace.store import EventStore

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _floor_module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("pure_floor", BENCH / "pure_floor.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def _store(rows: list[tuple[int, int, int, int]]) -> EventStore:
    op, cpu, cache, obj = (np.array(col) for col in zip(*rows, strict=True))
    n = len(rows)
    cols = {
        "ts": np.arange(n, dtype=np.float64),
        "cpu": cpu.astype(np.int16),
        "op": op.astype(np.int8),
        "cache": cache.astype(np.int32),
        "obj": obj.astype(np.int64),
    }
    return EventStore(cols, {"caches": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]})


def test_floor_loop_counts_live_frees_only() -> None:
    mod = _floor_module()
    rows = [
        (OP_ALLOC, 0, 0, 0),
        (OP_ALLOC, 1, 1, 1),
        (OP_FREE, 1, 0, 0),  # freed on another CPU: counted there
        (OP_FREE, 1, 0, 0),  # double free: not live, not counted
        (OP_FREE, 0, 1, 7),  # never allocated: not counted
        (OP_ALLOC, 0, 0, 2),
    ] + [(OP_ALLOC, 0, 0, 10 + i) for i in range(40)]  # past one sheaf: a refill
    rate, done = mod.floor_loop(_store(rows), capacity=32)
    assert rate > 0
    assert done == {"allocs": 43, "frees": 1, "live": 42}
