"""Runnable scenarios that answer the design questions of the 2023 RFC review
(``shared/spec/rfc-v2-review-2023-11-28.txt``): ``slubsim scenario NAME``.

1. ``cpu-partial`` -- does SLUB still need per-CPU partial slabs beside a
   percpu array?  The same real workload (the embedded sample trace) under
   ``rfc-pca`` with cpu partial lists on and off (``cpu_partial=0``) and under
   ``7.3`` (no cpu partial lists at all): slow-path rate, list_lock traffic,
   slabs.
2. ``migration`` -- a task reserves objects (RFC: ``kmem_cache_prefill_percpu_array``
   on its CPU; 7.3: ``kmem_cache_prefill_sheaf``, a sheaf the task holds), is
   migrated with probability ``p`` before it uses them, then allocates:
   how many allocations are served by the reserve, and where the reserve ends up.
3. ``irq`` -- an interrupt allocates and frees while the task on that CPU holds
   the per-CPU lock (array spinlock / sheaf local_trylock): the bypass rate and
   the extra cost per interrupt allocation (cost model of ``slubsim.analysis``).
"""

from __future__ import annotations

import random
from typing import Any

from .analysis import estimate_ns_per_1k
from .cache import KmemCache
from .kernel import Kernel, KernelConfig
from .machine import Machine

SCENARIOS = ("cpu-partial", "migration", "irq")


def _agg(result: dict[str, Any]) -> dict[str, float]:
    allocs = slow = lists = ops = slabs = 0.0
    for c in result["caches"].values():
        k = c["counters"]
        allocs += c["events"].get("alloc", 0) + c["events"].get("alloc_bulk", 0)
        slow += k.get("alloc_slowpath", 0)
        ops += c["metrics"]["ops"]
        lists += c["metrics"]["list_lock_per_1k"] * c["metrics"]["ops"] / 1000.0
        slabs += c["memory"]["slabs_peak"]
    return {
        "alloc_slowpath_rate": slow / allocs if allocs else 0.0,
        "list_lock_per_1k": lists / ops * 1000.0 if ops else 0.0,
        "slabs_peak_sum": slabs,
        "ops": ops,
    }


def cpu_partial() -> dict[str, Any]:
    from .cli import sample_trace
    from .replay import ReplayOptions, replay
    from .trace.ingest import ingest

    store = ingest(sample_trace())
    runs = {
        "rfc-pca, cpu partial on": ReplayOptions(kernel="rfc-pca"),
        "rfc-pca, cpu_partial=0": ReplayOptions(kernel="rfc-pca", overrides={"cpu_partial": 0}),
        "6.12 (no array)": ReplayOptions(kernel="6.12"),
        "7.3 (sheaves, no cpu partial)": ReplayOptions(kernel="7.3"),
    }
    out = {name: _agg(replay(store, opt)) for name, opt in runs.items()}
    return {"scenario": "cpu-partial", "trace": "embedded sample (mixed-4cpu cut)", "runs": out}


def _reserve_cache(version: str, cpus: int) -> tuple[Kernel, KmemCache]:
    cfg = KernelConfig(pca_opt_in={"maple_node": 32})
    k = Kernel(Machine(cpus=cpus), version=version, config=cfg)
    kw: dict[str, Any] = {"sheaf_capacity": 32} if version == "7.3" else {}
    return k, k.kmem_cache_create("maple_node", size=256, **kw)


def migration(
    p: float = 0.3, rounds: int = 2000, reserve: int = 8, cpus: int = 4, seed: int = 1
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for version in ("rfc-pca", "7.3"):
        rng = random.Random(seed)
        k, s = _reserve_cache(version, cpus)
        served = migrated = 0
        live: list[tuple[int, int]] = []
        for _ in range(rounds):
            cpu = rng.randrange(cpus)
            use_cpu = cpu
            if rng.random() < p:
                use_cpu = (cpu + 1 + rng.randrange(cpus - 1)) % cpus
                migrated += 1
            if version == "rfc-pca":
                s.layer.prefill_percpu_array(cpu, reserve)  # type: ignore[attr-defined]
                before = s.stats()["alloc_cpu_cache"]
                objs = [s.alloc(use_cpu) for _ in range(reserve)]
                served += s.stats()["alloc_cpu_cache"] - before
            else:
                sh = s.prefill_sheaf(reserve, cpu=cpu)
                assert sh is not None
                objs = [s.alloc_from_sheaf(sh, cpu=use_cpu) for _ in range(reserve)]
                served += sum(1 for o in objs if o)
                s.return_sheaf(sh, cpu=use_cpu)
            live.extend((o, use_cpu) for o in objs if o)
            while len(live) > 64:  # the tree frees old nodes later, anywhere
                o, c = live.pop(rng.randrange(len(live)))
                s.free(o, c)
        arrays: list[list[int]] = getattr(s.layer, "arrays", [])
        stranded = sum(len(a) for a in arrays)
        k.validate()
        st = s.stats()
        out[version] = {
            "migrations": migrated,
            "reserve_served_fraction": served / (rounds * reserve),
            "alloc_slowpath": st["alloc_slowpath"],
            "objects_left_in_other_cpus_arrays": stranded,
        }
    return {
        "scenario": "migration",
        "migrate_probability": p,
        "reserve": reserve,
        "rounds": rounds,
        "runs": out,
    }


def irq(q: float = 0.2, ops: int = 20000, cpus: int = 2, seed: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for version in ("rfc-pca", "7.3"):
        rng = random.Random(seed)
        k, s = _reserve_cache(version, cpus)
        base = dict(s.stats())
        irq_allocs = bypass = 0
        held: list[tuple[int, int]] = []
        for _ in range(ops):
            cpu = rng.randrange(cpus)
            p = s.alloc(cpu)
            held.append((p, cpu))
            if rng.random() < q:
                irq_allocs += 1
                before = dict(s.stats())
                with s.cpu_lock_held(cpu):
                    x = s.alloc(cpu, context="irq")
                    s.free(x, cpu, context="irq")
                after = s.stats()
                hit = "alloc_cpu_cache" if version == "rfc-pca" else "alloc_fastpath"
                if after[hit] == before[hit]:
                    bypass += 1
            if len(held) > 100:
                o, c = held.pop(0)
                s.free(o, c)
        k.validate()
        st = s.stats()
        delta = {key: st[key] - base.get(key, 0) for key in st}
        ns = estimate_ns_per_1k(delta, s.barn_lock, s.list_lock, ops + 2 * irq_allocs)
        out[version] = {
            "irq_allocs": irq_allocs,
            "bypass_rate": bypass / irq_allocs if irq_allocs else 0.0,
            "alloc_slowpath": delta["alloc_slowpath"],
            "est_ns_per_1k_ops": ns,
        }
    return {"scenario": "irq", "irq_probability": q, "ops": ops, "runs": out}


def run(name: str) -> dict[str, Any]:
    if name == "cpu-partial":
        return cpu_partial()
    if name == "migration":
        return migration()
    if name == "irq":
        return irq()
    from .errors import SlubsimUsageError

    raise SlubsimUsageError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
