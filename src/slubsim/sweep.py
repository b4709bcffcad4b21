"""Parameter sweeps: replay one parsed trace under many configurations.

The trace is parsed once into a store on disk; every configuration (one point
of the grid of ``--vary`` values) is an independent replay, so configurations
run in parallel -- on local processes by default (``concurrent.futures``) or on
a Dask ``distributed`` cluster (``Client.get_executor()`` speaks the same
Executor API).  Within one configuration the replay is sequential: caches share
CPUs, RCU and the page allocator, so splitting them would change the answer.
Results are one row per (configuration, cache), identical whatever executor ran
them (rows are ordered by configuration, then cache).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from .analysis import rows_from_result
from .errors import SlubsimUsageError
from .replay import ReplayOptions, check_setting, replay, split_setting
from .trace.store import EventStore

_STORE_CACHE: dict[str, EventStore] = {}


def parse_vary(items: list[str] | tuple[str, ...]) -> dict[str, list[int]]:
    """``["sheaf_capacity=4,8,16"]`` -> ``{"sheaf_capacity": [4, 8, 16]}``."""
    out: dict[str, list[int]] = {}
    for item in items:
        key, vals = split_setting(item, "--vary", "KEY=V1,V2,...")
        try:
            values = [int(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise SlubsimUsageError(f"--vary {key}: values must be integers") from None
        if not values:
            raise SlubsimUsageError(f"--vary {key}: give one or more values")
        for v in values:
            check_setting("--vary", key, v)
        out[key] = sorted(set(values))
    if not out:
        raise SlubsimUsageError("nothing to sweep: give at least one --vary KEY=V1,V2")
    return out


def grid(vary: dict[str, list[int]]) -> list[dict[str, int]]:
    keys = sorted(vary)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(vary[k] for k in keys))
    ]


def run_config(
    store_path: str,
    config: dict[str, int],
    kernel: str | None,
    caches: list[str],
    costs: dict[str, float] | None = None,
    policy: str = "fixed",
) -> list[dict[str, Any]]:
    """One configuration (runs in a worker; the store is opened once per process)."""
    store = _STORE_CACHE.get(store_path)
    if store is None:
        # metadata only: each replay streams the store in record batches
        store = _STORE_CACHE[store_path] = EventStore.open(store_path)
    opts = ReplayOptions(
        kernel=kernel, caches=list(caches), overrides=dict(config), validate=False, policy=policy
    )
    result = replay(store, opts)
    return rows_from_result(result, config, costs)


def sweep(
    store_path: str | Path,
    vary: dict[str, list[int]],
    kernel: str | None = None,
    caches: list[str] | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    costs: dict[str, float] | None = None,
    policies: tuple[str, ...] = ("fixed",),
) -> list[dict[str, Any]]:
    """Run every configuration of the grid (times every policy); rows in grid
    order, then cache order."""
    jobs = [(cfg, pol) for pol in policies for cfg in grid(vary)]
    path = str(Path(store_path).resolve())
    names = list(caches or [])
    results: list[list[dict[str, Any]] | None] = [None] * len(jobs)
    if executor is None:
        for i, (cfg, pol) in enumerate(jobs):
            results[i] = run_config(path, cfg, kernel, names, costs, pol)
            if progress is not None:
                progress(i + 1, len(jobs))
    else:
        futs: list[Future[list[dict[str, Any]]]] = [
            executor.submit(run_config, path, cfg, kernel, names, costs, pol) for cfg, pol in jobs
        ]
        for done, (i, f) in enumerate(enumerate(futs), start=1):
            results[i] = f.result()
            if progress is not None:
                progress(done, len(jobs))
    rows: list[dict[str, Any]] = []
    for part in results:
        assert part is not None
        rows.extend(part)
    return rows


def write_rows(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Rows to Parquet (pandas/polars read it directly) or JSON by extension."""
    p = Path(path)
    if p.suffix == ".json":
        import json

        p.write_text(json.dumps(rows, indent=1) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), str(p), compression="zstd")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise SlubsimUsageError(f"{p}: no such results file")
    if p.suffix == ".json":
        import json

        rows: list[dict[str, Any]] = json.loads(p.read_text())
        return rows
    import pyarrow.parquet as pq

    try:
        table_rows: list[dict[str, Any]] = pq.read_table(str(p)).to_pylist()
    except Exception as e:
        raise SlubsimUsageError(f"{p}: not a sweep results file ({e})") from None
    return table_rows
