"""Fidelity against the real kernel: compare the model's SLUB_STATS deltas with
the kernel's over exactly the same window of events.

A bundle's trace carries ``LAB_READ before|after <sysfs dir> <attr>`` markers
written right after each sysfs read of the kernel's counters; ``slab_stats.json``
holds the values read.  The replay samples the model's counter of that cache at
the same markers, so both deltas cover the same events.

Warm-up: apart from ``boot-*`` runs, the kernel's state when tracing started is
unknown (sheaves, barns and partial slabs hold objects the model never saw).
The replay rebuilds the slabs that were in use when tracing began from the
traced pointers (``pretrace="reconstruct"``, slubsim.pretrace; under 6.12 also
the CPUs' cpu slabs, from the kernel's cumulative counters, and cpu partial
lists, from sysfs ``slabs_cpu_partial``), sets sheaves, barns and node partial
lists from the kernel's counters off boot (including the number of sheaf
structs, ``sheaf_alloc - sheaf_free``: the missing ones become empty spares,
then empty barn sheaves; where kfree_rcu sheaves hide the CPUs' sheaves,
from the balance with them counted in, less what the replay has waiting for a
grace period; where prefilled sheaves do, barns and node partial lists only),
and compares deltas only.  The lab reads a cache's counters one after another
and they move in between (the reads allocate and free): the fast paths are
taken back to the cache's first read by the traced events, and a second
replay starts the sheaves from all of them taken back by the first replay's
own movement -- on boot-traced bundles too (``second_pass``).  To show how
much of the remaining difference comes from the warm-up, the validation is
also run with ``pretrace="ignore"``: counters whose agreement changes between
the two runs are warm-up sensitive.

State: the lab also reads each cache's state files (``slabs``, ``objects``,
partial lists, cpu slabs; :data:`STATE_ATTRS`) at markers of their own; the
model's files are read at the same markers and compared as text, and their
totals' change between the first and the last read as numbers (off boot the
kernel's totals include slabs the trace never shows, so the change is what
the two share; at boot the first read shows what the warm-up left).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bundle import BundleMeta
from .errors import SlubsimUsageError
from .kernel import GENERATIONS, VERSION_ALIASES
from .pretrace import remote_free_test
from .replay import Replayer, ReplayOptions
from .stats import STAT_ITEMS_612
from .trace.events import F_IRQ
from .trace.store import EventStore

KEY_COUNTERS = (
    "alloc_fastpath",
    "alloc_slowpath",
    "free_fastpath",
    "free_slowpath",
    "sheaf_refill",
    "sheaf_flush",
    "barn_get",
    "barn_get_fail",
    "barn_put",
    "alloc_slab",
    "free_slab",
)


#: the 6.12 counters the traces determine (the lineage issue's list): fast and
#: slow paths, slabs made and freed, cpu partial and deactivation paths, node
#: partial list traffic
_CLASSIC_PATHS = (
    "alloc_fastpath",
    "alloc_slowpath",
    "free_fastpath",
    "free_slowpath",
    "alloc_slab",
    "free_slab",
    "alloc_from_partial",
    "free_add_partial",
    "free_remove_partial",
)
CLASSIC_COUNTERS = tuple(
    item
    for item in STAT_ITEMS_612
    if item in _CLASSIC_PATHS or item.startswith(("cpu_partial_", "deactivate_"))
)

#: the sysfs files of a cache's state (not counters) the lab reads beside the
#: counters (``state_before``/``state_after`` in slab_stats.json), compared as
#: file contents at the same markers: slabs and objects as ``show_slab_objects``
#: counts them (objects in per-CPU caches count as in use), the node partial
#: lists, and under 6.12 the cpu slabs and cpu partial lists
STATE_ATTRS = (
    "slabs",
    "total_objects",
    "objects",
    "partial",
    "objects_partial",
    "cpu_slabs",
    "slabs_cpu_partial",
)


def rel_error(model: int, kernel: int) -> float:
    """|model - kernel| / max(kernel, 1): a zero kernel delta is exact only at 0."""
    return abs(model - kernel) / max(abs(kernel), 1)


def per_cpu_before(
    bundle: str | Path,
) -> tuple[dict[str, dict[str, dict[int, int]]], dict[str, int]]:
    """The kernel's cumulative per-CPU SLUB_STATS read before the workload
    (``slab_before.tsv[.xz]``, ``C<n>=`` fields): cache dir -> counter -> CPU
    -> value; and each cache's ``sheaf_capacity``.  Empty without the file."""
    import lzma

    path = Path(bundle)
    f = path / "slab_before.tsv.xz"
    opener: Any = lzma.open
    if not f.is_file():
        f, opener = path / "slab_before.tsv", open
        if not f.is_file():
            return {}, {}
    per: dict[str, dict[str, dict[int, int]]] = defaultdict(dict)
    cap: dict[str, int] = {}
    with opener(f, "rt") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("@"):
                continue
            cache, attr, fields = parts[0], parts[1], parts[2].split()
            if attr == "sheaf_capacity" and fields and fields[0].isdigit():
                cap[cache] = int(fields[0])
            elif fields and fields[0].isdigit():
                per[cache][attr] = {
                    int(x[1 : x.index("=")]): int(x[x.index("=") + 1 :])
                    for x in fields[1:]
                    if x.startswith("C") and "=" in x
                }
    return per, cap


def rcu_sheaves_untraced(store: EventStore, kstats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per cache (sysfs dir) with sheaves: the rcu sheaves the kernel's counters
    say were filled over the window of its ``free_rcu_sheaf`` reads
    (``Δfree_rcu_sheaf // sheaf_capacity``: kfree_rcu hands a sheaf to
    call_rcu when it fills) against the ``rcu_free_sheaf`` completions the
    trace shows in that window.  The two differ by the sheaves in flight at
    the window's ends (a few per CPU); a larger shortfall is kprobe hits the
    recorder missed -- a kprobe hit while another probe's handler runs on
    that CPU is dropped.  The replay infers them from the trace alone
    (:mod:`slubsim.rcu_align`); this is the check from the counters."""
    import numpy as np

    from .trace.events import OP_RCU_SHEAF

    win: dict[str, list[int]] = {}
    for mk in store.meta.get("markers", []):
        rd = mk.get("read")
        if rd and rd["attr"] == "free_rcu_sheaf":
            w = win.setdefault(rd["cache"], [-1, -1])
            w[0 if rd["when"] == "before" else 1] = int(mk["row"])
    dir_of = {int(i["id"]): (i.get("sysfs_dir") or i["name"]) for i in store.caches}
    traced: dict[str, int] = defaultdict(int)
    base = 0
    for b in store.iter_batches(("op", "cache"), 1 << 16):
        for j in np.flatnonzero(b["op"] == OP_RCU_SHEAF).tolist():
            d = dir_of.get(int(b["cache"][j]), "")
            span = win.get(d)
            if span is not None and span[0] <= base + j < span[1]:
                traced[d] += 1
        base += len(b["op"])
    out: dict[str, dict[str, int]] = {}
    for d, (lo, hi) in win.items():
        info = kstats.get(d) or {}
        try:
            cap = int((info.get("config") or {}).get("sheaf_capacity") or 0)
            delta = int(((info.get("stats") or {}).get("free_rcu_sheaf") or {})["delta"])
        except (KeyError, TypeError, ValueError):
            continue
        if cap <= 0 or lo < 0 or hi < 0 or not (delta // cap or traced.get(d)):
            continue
        out[d] = {"filled_by_counters": delta // cap, "traced": traced.get(d, 0)}
    return out


def _cache_ids(store: EventStore) -> dict[str, int]:
    """Store cache id by sysfs dir and by name (the markers use either)."""
    ids: dict[str, int] = {}
    for info in store.caches:
        for n in (info.get("sysfs_dir"), info["name"]):
            if n:
                ids.setdefault(n, int(info["id"]))
    return ids


def _has_prefills(st: dict[str, dict[int, int]]) -> bool:
    """Whether a cache's per-CPU counters show prefilled sheaves (whose
    allocations no counter sees)."""
    return any(any(st.get(i, {}).values()) for i in ("sheaf_prefill_fast", "sheaf_prefill_slow"))


def _barn_full(
    st: dict[str, dict[int, int]], cpus: set[int], cpu_node: dict[int, int]
) -> dict[int, int]:
    """Full sheaves in each node's barn by the counters: each barn_put put
    one in, each barn_get took one out (by the CPUs of that node; key
    ``-1 - nid``)."""
    barn: dict[int, int] = {}
    for cpu in cpus:
        key = -1 - cpu_node.get(cpu, 0)
        barn[key] = (
            barn.get(key, 0)
            + st.get("barn_put", {}).get(cpu, 0)
            - st.get("barn_get", {}).get(cpu, 0)
        )
    return barn


def traced_until_first_read(
    store: EventStore, dirs: set[str] | None = None, sheaf_frees_only: bool = False
) -> dict[str, dict[int, tuple[int, int]]]:
    """Objects allocated and freed on each CPU, per cache (sysfs dir), from the
    trace's start up to the cache's first "before" read: what the trace saw
    before the kernel's cumulative counters were read.  ``dirs`` limits the
    caches (default: all read).  ``sheaf_frees_only``: leave out the frees
    that bypass the CPU's sheaves on a NUMA machine (an object of another
    node's memory, slubsim.pretrace.remote_free_test; the bundle's node
    memory map in the store) -- for what the sheaves held at the start."""
    import numpy as np

    from .trace.events import (
        OP_ALLOC,
        OP_ALLOC_BULK,
        OP_ALLOC_FROM_SHEAF,
        OP_FREE,
        OP_FREE_BULK,
        OP_KFREE_BULK,
    )

    first_read: dict[str, int] = {}
    for mk in store.meta.get("markers", []):
        rd = mk.get("read")
        if rd and rd["when"] == "before" and rd["cache"] not in first_read:
            first_read[rd["cache"]] = int(mk["row"])
    ids = _cache_ids(store)
    wanted = {
        d: (ids[d], row)
        for d, row in first_read.items()
        if d in ids and (dirs is None or d in dirs)
    }
    if not wanted:
        return {}
    last = max(row for _, row in wanted.values())
    traced: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    limit = {cid: row for cid, row in wanted.values()}
    remote = None
    if sheaf_frees_only:
        mach = store.meta.get("machine") or {}
        remote = remote_free_test(mach.get("cpu_nodes") or [], mach.get("mem_ranges"))
    cols = ("cpu", "op", "cache", "size") + (("ptr",) if remote is not None else ())
    base = 0
    for b in store.iter_batches(cols, 1 << 16):
        m = len(b["op"])
        if base >= last:
            break
        rows = np.arange(base, base + m)
        cache = b["cache"].astype(np.int64)
        lim = np.array([limit.get(int(c), -1) for c in range(int(cache.max()) + 2)])[cache]
        op = b["op"]
        early = rows < lim
        sel = early & np.isin(op, (OP_ALLOC, OP_ALLOC_FROM_SHEAF, OP_ALLOC_BULK))
        n = np.where(op == OP_ALLOC_BULK, b["size"], 1)
        for c, cpu, k in zip(
            cache[sel].tolist(), b["cpu"][sel].tolist(), n[sel].tolist(), strict=True
        ):
            traced[(c, cpu)][0] += k
        sel = early & np.isin(op, (OP_FREE, OP_FREE_BULK, OP_KFREE_BULK))
        if remote is not None:
            for c, cpu, p in zip(
                cache[sel].tolist(), b["cpu"][sel].tolist(), b["ptr"][sel].tolist(), strict=True
            ):
                if not remote(cpu, p):
                    traced[(c, cpu)][1] += 1
        else:
            for c, cpu in zip(cache[sel].tolist(), b["cpu"][sel].tolist(), strict=True):
                traced[(c, cpu)][1] += 1
        base += m
    out: dict[str, dict[int, tuple[int, int]]] = {}
    for d, (cid, _) in wanted.items():
        out[d] = {cpu: (a, f) for (c, cpu), (a, f) in traced.items() if c == cid}
    return out


#: per-CPU counters of the sheaf balance moved by one traced event each: the
#: ops that move them (fast paths; a kfree_rcu to the rcu sheaf)
_TRACED_ITEMS = {
    "alloc_fastpath": "alloc",
    "free_fastpath": "free",
    "free_rcu_sheaf": "kfree_rcu",
}


def traced_during_reads(store: EventStore) -> dict[str, dict[str, dict[int, int]]]:
    """Per cache (sysfs dir) and per counter of :data:`_TRACED_ITEMS`: the
    traced events of the cache on each CPU from its first "before" read to
    that counter's own "before" read.  The lab reads a cache's attributes one
    after another, and the reads themselves allocate and free (a seq_file
    page from kmalloc-4k and a kmalloc-96 object freed by kfree_rcu, on the
    reading CPU, per read): counters read later have moved since the first
    read, where the warm-up sets the model's sheaves."""
    import numpy as np

    from .trace.events import OP_ALLOC, OP_FREE, OP_KFREE_RCU

    first: dict[str, int] = {}
    at: dict[str, dict[str, int]] = defaultdict(dict)
    for mk in store.meta.get("markers", []):
        rd = mk.get("read")
        if not rd or rd["when"] != "before":
            continue
        first.setdefault(rd["cache"], int(mk["row"]))
        if rd["attr"] in _TRACED_ITEMS:
            at[rd["cache"]].setdefault(rd["attr"], int(mk["row"]))
    ids = _cache_ids(store)
    # (cache id, kind) -> list of (first row, read row, dir, attr)
    spans: dict[tuple[int, str], list[tuple[int, int, str, str]]] = defaultdict(list)
    for d, attrs in at.items():
        if d not in ids:
            continue
        for attr, row in attrs.items():
            if row > first[d]:
                spans[(ids[d], _TRACED_ITEMS[attr])].append((first[d], row, d, attr))
    if not spans:
        return {}
    lo = min(a for v in spans.values() for a, _, _, _ in v)
    hi = max(b for v in spans.values() for _, b, _, _ in v)
    ops = {"alloc": OP_ALLOC, "free": OP_FREE, "kfree_rcu": OP_KFREE_RCU}
    out: dict[str, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    base = 0
    for b in store.iter_batches(("cpu", "op", "cache", "flags"), 1 << 16):
        m = len(b["op"])
        if base >= hi:
            break
        if base + m > lo:
            rows = np.arange(base, base + m)
            for (cid, kind), lst in spans.items():
                sel = (
                    (b["cache"] == cid)
                    & (b["op"] == ops[kind])
                    & ((b["flags"] & np.uint8(~F_IRQ & 0xFF)) == 0)
                )
                if not sel.any():
                    continue
                for a, z, d, attr in lst:
                    w = sel & (rows >= a) & (rows < z)
                    if w.any():
                        cpus, counts = np.unique(b["cpu"][w], return_counts=True)
                        row_out = out[d][attr]
                        for cpu, k in zip(cpus.tolist(), counts.tolist(), strict=True):
                            row_out[cpu] = row_out.get(cpu, 0) + k
        base += m
    return {d: dict(v) for d, v in out.items()}


def _at_first_read(
    per: dict[str, dict[str, dict[int, int]]],
    traced: dict[str, dict[str, dict[int, int]]] | None,
) -> dict[str, dict[str, dict[int, int]]]:
    """``per`` with the counters of :data:`_TRACED_ITEMS` taken back to the
    cache's first read by the traced events in between
    (:func:`traced_during_reads`)."""
    if not traced:
        return per
    out: dict[str, dict[str, dict[int, int]]] = {}
    for cache, st in per.items():
        tr = traced.get(cache)
        if not tr:
            out[cache] = st
            continue
        st2 = dict(st)
        for attr, by_cpu in tr.items():
            if attr in st2:
                st2[attr] = {u: v - by_cpu.get(u, 0) for u, v in st2[attr].items()}
        out[cache] = st2
    return out


def cpus_allocating_before(bundle: str | Path, store: EventStore) -> dict[str, set[int]]:
    """CPUs that had allocated from each cache before tracing began: the
    kernel's cumulative alloc_fastpath + alloc_slowpath of the CPU at the
    cache's first "before" read exceeds the allocations the trace shows on
    that CPU up to that read.  Under 6.12 such a CPU holds a cpu slab when the
    trace starts (``___slab_alloc`` always leaves one; nothing in the traced
    workloads flushes them), which slubsim.pretrace installs."""
    per, _ = per_cpu_before(bundle)
    if not per:
        return {}
    traced = traced_until_first_read(store, set(per))
    out: dict[str, set[int]] = {}
    for d, seen in traced.items():
        st = per[d]
        cpus = set(st.get("alloc_fastpath", {})) | set(st.get("alloc_slowpath", {}))
        out[d] = {
            cpu
            for cpu in cpus
            if st.get("alloc_fastpath", {}).get(cpu, 0) + st.get("alloc_slowpath", {}).get(cpu, 0)
            > seen.get(cpu, (0, 0))[0]
        }
    return out


def _balance(g: Callable[[str, int], int], cap: int, cpu: int, rcu: bool = False) -> int:
    """Objects into ``cpu``'s sheaves less objects out, by its counters
    ``g(item, cpu)``: refills, fast-path frees and full sheaves from the barn
    in; fast-path allocations, flushes and full sheaves to the barn out --
    with ``rcu``, kfree_rcu into its rcu sheaves in too (a completed rcu
    sheaf leaves by barn_put, or barn_put_fail and a flush)."""
    n = (
        g("sheaf_refill", cpu)
        + g("free_fastpath", cpu)
        + cap * g("barn_get", cpu)
        - g("alloc_fastpath", cpu)
        - g("sheaf_flush", cpu)
        - cap * g("barn_put", cpu)
    )
    return n + g("free_rcu_sheaf", cpu) if rcu else n


def sheaf_occupancy_before(
    bundle: str | Path,
    cpu_node: dict[int, int] | None = None,
    traced: dict[str, dict[str, dict[int, int]]] | None = None,
) -> dict[str, dict[int, int]]:
    """Objects each CPU's main + spare sheaves held when tracing began, per
    cache directory, from the kernel's cumulative per-CPU SLUB_STATS read
    before the trace (``slab_before.tsv[.xz]``, ``C<n>=`` fields):

        sheaf_refill + free_fastpath + capacity * barn_get
      - alloc_fastpath - sheaf_flush - capacity * barn_put

    (objects into a CPU's sheaves minus objects out; a barn transfer moves a
    full sheaf), with the fast-path counters taken back to the cache's first
    read by ``traced`` (:func:`traced_during_reads`: the reads of its other
    attributes allocate and free; read unadjusted, kmalloc-4k's reading CPU
    held 14-17 objects in sheaves of 4 and was left out). kfree_rcu sheaves and
    prefilled sheaves move objects no counter sees, so a cache whose balance is
    negative or above two sheaves on some CPU has no CPU keys. Keys
    ``-1 - nid`` hold the full sheaves in node ``nid``'s barn (barn_put - barn_get of
    its CPUs; ``cpu_node`` maps CPUs to nodes, default node 0) -- for a cache
    without CPU keys only when its counters close with the rcu sheaves counted
    in (:func:`_counters_close`; forkfiles maple_node: 10 full sheaves, without
    which the model made 141 slabs in the window where the kernel made 96).
    Empty when the bundle has no per-CPU reads."""
    cpu_node = cpu_node or {}
    per, cap = per_cpu_before(bundle)
    per = _at_first_read(per, traced)
    out: dict[str, dict[int, int]] = {}
    for cache, st in per.items():
        c = cap.get(cache, 0)
        if not c:
            continue

        def g(item: str, cpu: int, st: dict[str, dict[int, int]] = st) -> int:
            return st.get(item, {}).get(cpu, 0)

        cpus = set().union(*(v.keys() for v in st.values()))
        occ = {cpu: _balance(g, c, cpu) for cpu in cpus}
        barn = _barn_full(st, cpus, cpu_node)
        if occ and all(0 <= n <= 2 * c for n in occ.values()):
            out[cache] = occ | barn
        elif barn and all(n >= 0 for n in barn.values()) and _counters_close(st, cpus, c):
            # the CPUs' sheaves unknown, the barns still counted
            out[cache] = barn
    return out


def rcu_balance_before(
    bundle: str | Path,
    cpu_node: dict[int, int] | None = None,
    traced: dict[str, dict[str, dict[int, int]]] | None = None,
    occupancy: dict[str, dict[int, int]] | None = None,
) -> dict[str, dict[int, int]]:
    """For a cache :func:`sheaf_occupancy_before` (its result ``occupancy``,
    computed here when not given) gives no CPU keys because
    kfree_rcu sheaves hide them (some CPU freed by kfree_rcu; no prefilled
    sheaves, whose allocations no counter sees): per CPU, the objects its
    sheaves held with the rcu ones counted in --

        sheaf_refill + free_fastpath + free_rcu_sheaf + capacity * barn_get
      - alloc_fastpath - sheaf_flush - capacity * barn_put

    (main + spare + ``rcu_free`` + sheaves waiting for a grace period; a
    completed rcu sheaf left by barn_put or barn_put_fail + flush) -- and, at
    key ``-1000 - cpu``, its cumulative free_rcu_sheaf; keys ``-1 - nid`` the
    barns' full sheaves as there.  The replay knows which of those objects
    wait for a grace period (:meth:`slubsim.replay.Replayer.rcu_pending`),
    which gives the CPUs' main + spare (the ``rcu_free`` fill the trace
    cannot show: free_rcu_sheaf modulo the capacity of what it did not see).
    Example: the lab's own sysfs reads kfree_rcu a kmalloc-96 object each, so
    at its first read 8 rcu sheaves of it were waiting (547 objects freed,
    one sheaf completed)."""
    cpu_node = cpu_node or {}
    per, cap = per_cpu_before(bundle)
    per = _at_first_read(per, traced)
    have = occupancy if occupancy is not None else sheaf_occupancy_before(bundle, cpu_node, traced)
    out: dict[str, dict[int, int]] = {}
    for cache, st in per.items():
        c = cap.get(cache, 0)
        if not c or any(k >= 0 for k in have.get(cache, {})):
            continue

        def g(item: str, cpu: int, st: dict[str, dict[int, int]] = st) -> int:
            return st.get(item, {}).get(cpu, 0)

        cpus = set().union(*(v.keys() for v in st.values()))
        if not any(g("free_rcu_sheaf", u) for u in cpus):
            continue
        if _has_prefills(st):
            continue
        occ: dict[int, int] = _barn_full(st, cpus, cpu_node)
        for u in cpus:
            occ[u] = _balance(g, c, u, rcu=True)
            occ[-1000 - u] = g("free_rcu_sheaf", u)
        out[cache] = occ
    return out


def _counters_close(st: dict[str, dict[int, int]], cpus: set[int], cap: int) -> bool:
    """Whether a cache's cumulative per-CPU counters leave no object
    unaccounted for when kfree_rcu sheaves are counted in: objects into a
    CPU's sheaves (refills, fast-path frees, kfree_rcu, full sheaves from the
    barn) less objects out (fast-path allocations, flushes, full sheaves to
    the barn) are at most what its main and spare sheaves -- with kfree_rcu,
    also its rcu_free sheaf and one rcu sheaf in flight -- hold, and not
    negative.  Allocations from prefilled
    sheaves move objects out that no counter sees: a cache with prefills is
    taken as closing.  (kmalloc-96 at its first read: the lab's own reads of
    the caches before it freed 547 objects by kfree_rcu, 8 sheaves of them
    still waiting for a grace period -- :func:`rcu_balance_before` counts
    those out.)"""

    def g(item: str, cpu: int) -> int:
        return st.get(item, {}).get(cpu, 0)

    if _has_prefills(st):
        return True
    for u in cpus:
        held = _balance(g, cap, u, rcu=True)
        rcu = 2 * cap if g("free_rcu_sheaf", u) else 0
        if not 0 <= held <= 2 * cap + rcu:
            return False
    return True


def sheaves_before(bundle: str | Path) -> dict[str, int]:
    """Sheaf structs each cache had when tracing began: the kernel's
    cumulative ``sheaf_alloc - sheaf_free`` over all CPUs, read before the
    trace (``slab_before.tsv[.xz]``), per cache directory.  Empty without the
    file."""
    per, _ = per_cpu_before(bundle)
    return {
        cache: sum(st["sheaf_alloc"].values()) - sum(st.get("sheaf_free", {}).values())
        for cache, st in per.items()
        if "sheaf_alloc" in st
    }


def cpu_partial_before(state: dict[str, Any]) -> dict[int, int]:
    """Slabs on each CPU's partial list before the trace, from a 6.12 cache's
    sysfs ``slabs_cpu_partial`` in ``state_before`` (``"96(12) C0=24(3)
    C1=40(5)"``: objects(slabs) in all, then per CPU): CPU -> slabs."""
    out: dict[int, int] = {}
    for f in str(state.get("slabs_cpu_partial") or "").split()[1:]:
        if f.startswith("C") and "=" in f and f.endswith(")") and "(" in f:
            try:
                out[int(f[1 : f.index("=")])] = int(f[f.index("(") + 1 : -1])
            except ValueError:
                continue
    return out


def sheaves_at_start(
    occupancy: dict[str, dict[int, int]], traced: dict[str, dict[int, tuple[int, int]]]
) -> dict[str, dict[int, int]]:
    """Objects each CPU's sheaves held when tracing began: the occupancy the
    counters give at the cache's first read (:func:`sheaf_occupancy_before`)
    less what the trace shows the CPU freeing to them minus allocating from
    them before that read (refills and flushes in between are not traced;
    none is assumed)."""
    out: dict[str, dict[int, int]] = {}
    for d, occ in occupancy.items():
        seen = traced.get(d, {})
        out[d] = {
            cpu: max(n - (seen.get(cpu, (0, 0))[1] - seen.get(cpu, (0, 0))[0]), 0)
            for cpu, n in occ.items()
            if cpu >= 0
        }
    return out


def partial_before(state: dict[str, Any], objs_per_slab: int) -> dict[int, tuple[int, int, int]]:
    """Node partial lists before the trace, from a cache's sysfs ``state_before``
    (``partial``, ``objects_partial`` and ``slabs``, ``"8 N0=5 N1=3"``): node ->
    (partial slabs, free objects in them, all its slabs; -1 when not read)."""

    def per_node(v: Any) -> dict[int, int]:
        f = str(v or "").split()
        nodes = {int(x[1 : x.index("=")]): int(x[x.index("=") + 1 :]) for x in f[1:] if "=" in x}
        if not nodes and f and f[0].isdigit():
            nodes = {0: int(f[0])}
        return nodes

    slabs, used = per_node(state.get("partial")), per_node(state.get("objects_partial"))
    total = per_node(state.get("slabs"))
    return {
        nid: (k, k * objs_per_slab - used.get(nid, 0), total.get(nid, -1))
        for nid, k in slabs.items()
    }


def _warm_with_rcu(
    rp: Replayer,
    s: Any,
    bal: dict[int, int],
    partial: dict[int, tuple[int, int, int]] | None,
) -> bool:
    """At a cache's first read: from :func:`rcu_balance_before`'s per-CPU
    balance, less what the model has waiting for a grace period and the
    ``rcu_free`` fill the trace did not show (the kernel's free_rcu_sheaf
    beyond the model's, modulo the capacity), each CPU's main + spare; when
    every CPU's lies within two sheaves, fill the ``rcu_free`` sheaves and
    set the sheaves, barns and node partial lists.  False (nothing set) when
    the counters do not add up so."""
    cap = s.sheaf_capacity
    items = s.stat_items
    if not cap or "free_rcu_sheaf" not in items:
        return False
    fr = items.index("free_rcu_sheaf")
    online = set(rp.machine.online_cpus())
    top_up: dict[int, int] = {}
    occ: dict[int, int] = {}
    for cpu, held in bal.items():
        if cpu < 0 or cpu not in online:
            continue
        unseen = bal.get(-1000 - cpu, 0) - s.stat[cpu][fr]
        if unseen < 0:
            return False
        top_up[cpu] = unseen % cap
        occ[cpu] = held - rp.rcu_pending(s, cpu) - top_up[cpu]
        if not 0 <= occ[cpu] <= 2 * cap:
            return False
    for cpu, n in sorted(top_up.items()):
        rp.top_up_rcu_free(s, cpu, n)
    rp.sync_sheaf_occupancy(s, occ)
    rp.sync_barn_full(s, {-1 - k: n for k, n in bal.items() if -1000 < k < 0})
    if partial:
        rp.sync_node_partial(s, partial)
    return True


#: the per-CPU counters of the sheaf balance (:func:`sheaf_occupancy_before`)
_BALANCE_ITEMS = (
    "alloc_fastpath",
    "free_fastpath",
    "free_rcu_sheaf",
    "sheaf_refill",
    "sheaf_flush",
    "barn_get",
    "barn_put",
)


def _probe(probe: dict[str, dict[str, Any]], rp: Replayer, s: Any, d: str, attr: str) -> None:
    """At a "before" read of cache dir ``d``: at its first, the model's raw
    balance counters, sheaf fill and rcu objects waiting, per CPU; at the read
    of a balance counter, that counter's raw value per CPU."""
    cpus = rp.machine.online_cpus()
    items = s.stat_items
    if d not in probe:
        if rp.cpu_sheaf_objects(s, cpus[0]) < 0:
            return
        probe[d] = {
            "first": {c: {i: s.stat[c][items.index(i)] for i in _BALANCE_ITEMS} for c in cpus},
            "sheaves": {c: rp.cpu_sheaf_objects(s, c) for c in cpus},
            "pending": {c: rp.rcu_pending(s, c) for c in cpus},
            "read": {},
        }
    rec = probe[d]["read"]
    if attr in _BALANCE_ITEMS and attr not in rec:
        rec[attr] = {c: s.stat[c][items.index(attr)] for c in cpus}


def occupancy_at_first_read(
    bundle: str | Path, probe: dict[str, dict[str, Any]]
) -> dict[str, dict[int, int]]:
    """Each CPU's main + spare sheaves at its cache's first read, from the
    kernel's counters each taken back to that read by the model's own
    movement of it between the two reads (``probe``, filled by a first
    replay): refills, flushes and barn exchanges move during the lab's reads
    too, and no event shows them.  The plain balance where it lies within two
    sheaves on every CPU, else (a cache with kfree_rcu and no prefilled
    sheaves) the one with the rcu sheaves counted in less the objects the
    model had waiting for a grace period.  Only caches where this differs
    from the sheaves the first replay had there."""
    per, cap = per_cpu_before(bundle)
    out: dict[str, dict[int, int]] = {}
    for d, pr in probe.items():
        st = per.get(d)
        c = cap.get(d, 0)
        if not st or not c:
            continue

        def k(item: str, cpu: int, st: dict[str, dict[int, int]] = st, pr: Any = pr) -> int:
            first = int(pr["first"][cpu][item])
            moved = int(pr["read"].get(item, {}).get(cpu, first))
            return st.get(item, {}).get(cpu, 0) - (moved - first)

        plain: dict[int, int] = {}
        rcu: dict[int, int] = {}
        for cpu in pr["first"]:
            plain[cpu] = _balance(k, c, cpu)
            rcu[cpu] = _balance(k, c, cpu, rcu=True) - pr["pending"][cpu]
        if all(0 <= n <= 2 * c for n in plain.values()):
            occ = plain
        elif not _has_prefills(st) and all(0 <= n <= 2 * c for n in rcu.values()):
            occ = rcu
        else:
            continue
        if occ != pr["sheaves"]:
            out[d] = occ
    return out


def _collect(
    store: EventStore,
    pretrace: str,
    kernel: str | None,
    rcu_mode: str | None = None,
    warm_sheaves: float = 0.0,
    warm_first_use: bool = False,
    lockstep: bool = False,
    warm_occupancy: dict[str, dict[int, int]] | None = None,
    warm_partial: dict[str, dict[int, tuple[int, int, int]]] | None = None,
    pretrace_cpus: dict[str, set[int]] | None = None,
    pretrace_cpu_partial: dict[str, dict[int, int]] | None = None,
    pretrace_cpu_partial_unseen: bool = False,
    pretrace_sheaves: dict[str, dict[int, int]] | None = None,
    hit_path: bool | None = None,
    warm_sheaf_count: dict[str, int] | None = None,
    sheaves_adopted: dict[str, int] | None = None,
    warm_rcu: dict[str, dict[int, int]] | None = None,
    probe: dict[str, dict[str, Any]] | None = None,
    sync_bottom: bool = True,
    states: dict[tuple[str, str], dict[str, str]] | None = None,
) -> tuple[
    dict[tuple[str, str], dict[str, int]], dict[str, int], Replayer, dict[str, dict[str, Any]]
]:
    """Replay and sample the model's counters at every LAB_READ marker (and,
    into ``states``, the contents of its :data:`STATE_ATTRS` files); with
    ``lockstep``, also check each allocation's object (slubsim.lockstep); with
    ``warm_occupancy`` (cache dir -> CPU -> objects), set each cache's per-CPU
    sheaves to it at the cache's first "before" read, before any window opens
    -- a difference made under what the trace has shown, or on top where the
    model's sheaves are its own since boot (``sync_bottom`` False; see
    :meth:`slubsim.sheaves.SheavesLayer.sync_cpu_occupancy`)."""
    samples: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    dir_tracks: dict[str, Any] = {}
    synced: set[str] = set()
    rcu_synced: set[str] = set()

    def on_marker(mk: dict[str, Any], rp: Replayer) -> None:
        rd = mk.get("read")
        if rd is None:
            return
        d, attr = rd["cache"], rd["attr"]
        if not dir_tracks:
            for cid, t in rp.tracks.items():
                info = rp.store.caches[cid]
                dir_tracks.setdefault(info.get("sysfs_dir") or info["name"], t)
        track = dir_tracks.get(d)
        if warm_rcu and rd["when"] == "before" and d in warm_rcu and d not in rcu_synced:
            rcu_synced.add(d)  # (the sheaf-struct count below follows, as for the others)
            if track is not None:
                _warm_with_rcu(rp, track.model, warm_rcu[d], (warm_partial or {}).get(d))
        if warm_occupancy and rd["when"] == "before" and d not in synced:
            synced.add(d)
            if track is not None and d in warm_occupancy:
                occ = warm_occupancy[d]
                # (after sheaves filled from the pointers at the start too: the
                # trace does not show refills and flushes before this read)
                rp.sync_sheaf_occupancy(
                    track.model, {c: n for c, n in occ.items() if c >= 0}, bottom=sync_bottom
                )
                rp.sync_barn_full(track.model, {-1 - k: n for k, n in occ.items() if k < 0})
                if warm_partial and d in warm_partial:
                    rp.sync_node_partial(track.model, warm_partial[d])
            if track is not None and warm_sheaf_count and d in warm_sheaf_count:
                n = rp.sync_sheaf_count(track.model, warm_sheaf_count[d])
                if n and sheaves_adopted is not None:
                    sheaves_adopted[d] = n
        if probe is not None and track is not None and rd["when"] == "before":
            _probe(probe, rp, track.model, d, attr)
        if track is None:
            value = 0
        else:
            s = track.model
            items = s.stat_items
            if attr not in items:
                if states is not None and attr in STATE_ATTRS:
                    states.setdefault((d, attr), {})[rd["when"]] = s.sysfs_read(attr).strip()
                return
            idx = items.index(attr)
            value = sum(rp.model_stat(s, c, idx) for c in rp.machine.online_cpus())
        samples[(d, attr)][rd["when"]] = value

    rp = Replayer(
        store,
        ReplayOptions(
            kernel=kernel,
            pretrace=pretrace,
            on_marker=on_marker,
            rcu_mode=rcu_mode,
            warm_sheaves=warm_sheaves,
            warm_on_first_use=warm_first_use,
            lockstep=lockstep,
            pretrace_cpus=pretrace_cpus or {},
            pretrace_cpu_partial=pretrace_cpu_partial or {},
            pretrace_cpu_partial_unseen=pretrace_cpu_partial_unseen,
            pretrace_sheaves=pretrace_sheaves or {},
            hit_path=hit_path,
        ),
    )
    result = rp.run()
    events = {(c["sysfs_dir"] or name): c["metrics"]["ops"] for name, c in result["caches"].items()}
    steps = {name: c["lockstep"] for name, c in result["caches"].items() if "lockstep" in c}
    return samples, events, rp, steps


def validate_bundle(
    bundle: str | Path,
    store: EventStore | None = None,
    kernel: str | None = None,
    rcu_mode: str | None = None,
    warm_sheaves: float = 0.0,
    warm_first_use: bool = False,
    warm_from_counters: bool | None = None,
    pretrace: str = "reconstruct",
    sheaves_from_pointers: bool = True,
    hit_path: bool | None = None,
    sheaf_count_from_counters: bool = True,
    second_pass: bool | None = None,
) -> dict[str, Any]:
    """Validate one bundle; the JSON-ready result of ``slubsim validate``.

    ``second_pass``: the lab reads a cache's counters one after another, and
    between its first read and a counter's own read the counter moves --
    by the reads themselves, which allocate and free, and by the refills,
    flushes and barn exchanges that follow.  A first replay measures its own
    movement of each counter between the two reads; when the kernel's
    counters taken back so (:func:`occupancy_at_first_read`) give other
    sheaves at a cache's first read than the first replay had there, the
    bundle is replayed again from those -- on boot-traced bundles too, where
    the first replay starts no cache from the counters (boot-mixed
    kmalloc-96: 28 objects in CPU 0's sheaves by the counters, 32 replayed;
    with 28, CPU 0 takes the kernel's 53rd barn sheaf and its rcu sheaves
    reach the barn as the kernel's did).  Default (None): on unless
    ``warm_from_counters`` is False.

    ``hit_path``: :attr:`slubsim.replay.ReplayOptions.hit_path` (results do
    not depend on it).

    ``pretrace``: how the replay meets the objects and slabs that existed
    before tracing began (:data:`slubsim.constants.PRETRACE_POLICIES`).  With
    ``"reconstruct"`` and counter warm-up, ``sheaves_from_pointers`` also puts
    into each CPU's sheaves at the start the objects the trace shows it
    handing out from them (slubsim.pretrace.discover_sheaves), as many as the
    counters say it held (:func:`sheaves_at_start`); the counts are synced
    again at the first read.

    ``warm_from_counters`` sets each cache's per-CPU sheaves, at its first
    "before" read, to the occupancy the kernel's own cumulative counters imply
    (:func:`sheaf_occupancy_before`).  Default (None): on for bundles not
    traced from boot, whose starting state the trace cannot show; off for
    boot-traced ones, where the replay has built that state itself (there the
    balance, which misses boot-time paths before the trace, was measured to
    disagree with the replayed state on CPU 0 and to cost exact counters).

    ``warm_sheaves`` starts every CPU's main sheaf that full (0..1) instead of
    empty, for traces that did not start at boot (see :mod:`slubsim.replay`).
    """
    from .trace.ingest import ingest

    path = Path(bundle)
    meta = BundleMeta.load(path)
    version = kernel or VERSION_ALIASES.get(meta.kernel_version, meta.kernel_version)
    if version not in GENERATIONS:
        return {
            "bundle": str(path),
            "kernel": meta.kernel_version,
            "skipped": (
                f"recorded on Linux {meta.kernel_version}: no model of that generation yet "
                f"(available: {', '.join(sorted(GENERATIONS))})"
            ),
        }
    stats_file = path / "slab_stats.json"
    if not stats_file.is_file():
        raise SlubsimUsageError(f"{path}: no slab_stats.json (the kernel's counters)")
    kstats: dict[str, Any] = json.loads(stats_file.read_text())
    if store is None:
        store = ingest(path)
    if second_pass is None:
        second_pass = warm_from_counters is not False  # no counters asked for: none
    if warm_from_counters is None:
        warm_from_counters = not meta.traced_from_boot
    # (the lab's reads move counters between a cache's first read and theirs)
    during = traced_during_reads(store) if warm_from_counters else None
    occupancy = (
        sheaf_occupancy_before(path, dict(enumerate(meta.cpu_nodes)), during)
        if warm_from_counters
        else {}
    )
    warm_rcu = (
        rcu_balance_before(path, dict(enumerate(meta.cpu_nodes)), during, occupancy)
        if warm_from_counters
        else {}
    )
    sheaf_count = sheaves_before(path) if warm_from_counters and sheaf_count_from_counters else {}
    adopted: dict[str, int] = {}
    partial = {
        d: partial_before(info.get("state_before") or {}, int(info["config"]["objs_per_slab"]))
        for d, info in kstats.items()
        if (d in occupancy or d in warm_rcu) and (info.get("config") or {}).get("objs_per_slab")
    }
    pretrace_cpus = cpus_allocating_before(path, store) if pretrace == "reconstruct" else None
    pretrace_sheaves = (
        sheaves_at_start(
            occupancy, traced_until_first_read(store, set(occupancy), sheaf_frees_only=True)
        )
        if pretrace == "reconstruct" and sheaves_from_pointers
        else None
    )

    states: dict[tuple[str, str], dict[str, str]] = {}

    def replay(
        occ: dict[str, dict[int, int]],
        part: dict[str, dict[int, tuple[int, int, int]]],
        probe: dict[str, dict[str, Any]] | None,
    ) -> tuple[dict[tuple[str, str], dict[str, int]], dict[str, int], Replayer, dict[str, Any]]:
        adopted.clear()
        states.clear()
        return _collect(
            store,
            pretrace,
            version,
            rcu_mode,
            warm_sheaves,
            warm_first_use,
            lockstep=True,
            warm_occupancy=occ,
            warm_partial=part,
            pretrace_cpus=pretrace_cpus,
            pretrace_cpu_partial={
                d: cpu_partial_before(info.get("state_before") or {}) for d, info in kstats.items()
            },
            pretrace_cpu_partial_unseen=not meta.traced_from_boot,
            pretrace_sheaves=pretrace_sheaves,
            hit_path=hit_path,
            warm_sheaf_count=sheaf_count,
            sheaves_adopted=adopted,
            warm_rcu=warm_rcu,
            probe=probe,
            sync_bottom=not meta.traced_from_boot,
            states=states,
        )

    probe: dict[str, dict[str, Any]] = {}
    samples, events, rp, steps = replay(occupancy, partial, probe if second_pass else None)
    corrected = occupancy_at_first_read(path, probe) if second_pass else {}
    if corrected:
        # the kernel's counters taken back to each cache's first read by the
        # first replay's own movement: replay again from those sheaves (the
        # barns, node partial lists and sheaf counts as before)
        for d, occ in corrected.items():
            occupancy[d] = {k: n for k, n in occupancy.get(d, {}).items() if k < 0} | occ
            info = kstats.get(d) or {}
            if (
                warm_from_counters
                and d not in partial
                and (info.get("config") or {}).get("objs_per_slab")
            ):
                partial[d] = partial_before(
                    info.get("state_before") or {}, int(info["config"]["objs_per_slab"])
                )
        samples, events, rp, steps = replay(occupancy, partial, None)
    samples_ign, _, _, _ = _collect(
        store,
        "ignore",
        version,
        rcu_mode,
        warm_sheaves,
        warm_first_use,
        warm_occupancy=occupancy,
        warm_partial=partial,
        hit_path=hit_path,
        warm_sheaf_count=sheaf_count,
    )
    stat_items = rp.generation.stat_items
    caches: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for d, info in kstats.items():
        names = info.get("names") or [d]
        name = next((n for n in names if n in _trace_names(store)), names[0])
        counters: dict[str, Any] = {}
        for item in stat_items:
            st = (info.get("stats") or {}).get(item)
            if st is None:
                continue
            s = samples.get((d, item), {})
            si = samples_ign.get((d, item), {})
            if "before" not in s or "after" not in s:
                continue  # never read inside the trace
            model = s["after"] - s["before"]
            model_ign = si.get("after", 0) - si.get("before", 0)
            kern = int(st["delta"])
            err = rel_error(model, kern)
            counters[item] = {
                "kernel": kern,
                "model": model,
                "rel_error": err,
                "model_pretrace_ignored": model_ign,
            }
            rows.append(
                {
                    "cache": name,
                    "sysfs_dir": d,
                    "counter": item,
                    "kernel": kern,
                    "model": model,
                    "diff": model - kern,
                    "rel_error": err,
                    "events": events.get(d, 0),
                    "warmup_sensitive": (err == 0) != (rel_error(model_ign, kern) == 0),
                }
            )
        if counters:
            caches[name] = {
                "sysfs_dir": d,
                "aliases": [n for n in names if n != name],
                "events": events.get(d, 0),
                "counters": counters,
                "state": _state_compared(info, states, d),
            }

    def summary(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel)
        return {
            "counters_compared": n,
            "exact": sum(r["rel_error"] == 0 for r in sel),
            "within_1pct": sum(r["rel_error"] <= 0.01 for r in sel),
            "within_5pct": sum(r["rel_error"] <= 0.05 for r in sel),
        }

    key_busy = [r for r in rows if r["counter"] in KEY_COUNTERS and r["events"] >= 5000]
    checked = sum(v["checked"] for v in steps.values())
    same = sum(v["same_object"] for v in steps.values())
    # caches whose first traced allocation already differs were allocating from
    # slabs used before the trace began (state the trace cannot show)
    started = [v for v in steps.values() if v["checked"] and v["in_step_prefix"] > 0]
    s_checked = sum(v["checked"] for v in started)
    s_same = sum(v["same_object"] for v in started)
    sheaf_checked = sum(v["sheaf_returns"]["checked"] for v in steps.values())
    sheaf_same = sum(v["sheaf_returns"]["same_size"] for v in steps.values())
    # kprobe hits the recorder saw missed (slubsim record bundles; None: not recorded)
    profile = meta.raw.get("kprobe_profile")
    kprobe_missed = (
        {ev: int(p.get("missed", 0)) for ev, p in profile.items() if p.get("missed")}
        if isinstance(profile, dict)
        else None
    )
    return {
        "bundle": str(path),
        "kernel": rp.generation.name,
        "recorded_kernel": meta.kernel_version,
        "cpus": meta.cpus,
        "caches": caches,
        "summary": summary(rows),
        "summary_key_counters_busy_caches": summary(key_busy),
        **(
            {
                "summary_classic_counters_busy_caches": summary(
                    [r for r in rows if r["counter"] in CLASSIC_COUNTERS and r["events"] >= 5000]
                )
            }
            if "cpu_partial_alloc" in stat_items
            else {}
        ),
        # the state files (slabs, objects, partial lists ...) at the first
        # and last read: where the model's state stands against the kernel's
        # -- at the first read, what the warm-up left
        "summary_state": state_summary(caches),
        "summary_state_busy_caches": state_summary(caches, 5000),
        "kprobe_missed": kprobe_missed,
        # rcu sheaves filled (counters) vs completions traced, per cache dir
        "rcu_sheaves": rcu_sheaves_untraced(store, kstats),
        # the traced kernel's delayed frees out of its classic kvfree_rcu
        # batch whose object the model had put in an rcu sheaf (it placed the
        # object on the other node): one of the model's own batched objects
        # freed instead, or none left to free (Replayer._resolve)
        "rcu_batch_frees": {
            "substituted": int(rp.warnings.get("rcu_completion_substituted", 0)),
            "skipped": int(rp.warnings.get("rcu_completion_skipped", 0)),
        },
        # allocations the traced kernel made while an interrupt on the same CPU
        # freed objects (it returned a fresh slab's first object right after
        # them): replayed before those frees (TraceFacts._irq_moves)
        "allocs_during_irq": int(rp.warnings.get("alloc_during_irq_replayed_first", 0)),
        "lockstep": {
            "what": "allocations where the model handed out the kernel's object (slab-paired)",
            "checked": checked,
            "same_object": same,
            "share": same / checked if checked else 1.0,
            "caches_fully_in_step": sum(
                1 for v in steps.values() if v["checked"] and v["first_divergence"] is None
            ),
            "caches_checked": sum(1 for v in steps.values() if v["checked"]),
            "caches_started_in_step": len(started),
            "share_in_caches_started_in_step": s_same / s_checked if s_checked else 1.0,
            # traced returns of prefilled sheaves where the model's sheaf held
            # the kernel's count (the return_sheaf kprobe's size)
            "sheaf_returns": {
                "checked": sheaf_checked,
                "same_size": sheaf_same,
                "share": sheaf_same / sheaf_checked if sheaf_checked else 1.0,
            },
            "caches": {
                n: v for n, v in steps.items() if v["checked"] or v["sheaf_returns"]["checked"]
            },
        },
        "warmup": {
            "policy": (
                "rebuild the slabs in use when tracing began from the traced pointers "
                "(slubsim.pretrace); compare deltas"
                if pretrace == "reconstruct"
                else f"{pretrace} objects freed before their allocation; compare deltas"
            ),
            "pretrace_policy": pretrace,
            "pretrace_slabs": (
                rp.pretrace_plan.summary() if rp.pretrace_plan is not None else None
            ),
            "warm_sheaves": warm_sheaves,
            "warm_first_use": warm_first_use,
            "warm_from_counters": warm_from_counters,
            "caches_warmed_from_counters": sorted(occupancy),
            # sheaves at the first read from the counters taken back to it by
            # a first replay, where they differed (cache dir -> CPU -> objects)
            "second_pass": {d: {str(c): n for c, n in o.items()} for d, o in corrected.items()},
            # empty spare / barn sheaves the kernel's sheaf_alloc - sheaf_free
            # says existed and the model had not made (cache dir -> sheaves)
            "sheaves_adopted_from_counters": adopted,
            # slabs given back where the sheaves' objects were counted twice
            # beside the partial slabs made up from sysfs (cache dir -> slabs;
            # SheavesLayer._trim_warm_slabs)
            "slabs_given_back": {
                (rp.store.caches[cid].get("sysfs_dir") or rp.store.caches[cid]["name"]): n
                for cid, t in sorted(rp.tracks.items())
                if (n := getattr(t.model.layer, "warm_slabs_given_back", 0))
            },
            # nodes whose every slab the kernel had partial, where the model's
            # own slabs were kept and its full ones made partial (cache dir ->
            # [nodes, slabs made partial]; SheavesLayer._all_partial)
            "all_partial_nodes_kept": {
                (rp.store.caches[cid].get("sysfs_dir") or rp.store.caches[cid]["name"]): [
                    n,
                    int(getattr(t.model.layer, "warm_slabs_reopened", 0)),
                ]
                for cid, t in sorted(rp.tracks.items())
                if (n := getattr(t.model.layer, "warm_nodes_kept", 0))
            },
            # rcu sheaves run at a traced completion because the kernel had run
            # them by then (slubsim.rcu_align.overdue_bounds)
            "rcu_sheaves_run_overdue": int(rp.warnings.get("rcu_sheaf_overdue_completed", 0)),
            "pretrace_objects": rp.pretrace_objects,
            "counters_sensitive_to_warmup": sum(r["warmup_sensitive"] for r in rows),
            "summary_with_pretrace_ignored": summary(
                [
                    dict(
                        r,
                        rel_error=rel_error(
                            caches[r["cache"]]["counters"][r["counter"]]["model_pretrace_ignored"],
                            r["kernel"],
                        ),
                    )
                    for r in rows
                ]
            ),
        },
        "rows": rows,
    }


def state_number(text: str) -> int | None:
    """The total a state file shows: its first number, or for
    ``slabs_cpu_partial`` (``"84(8) C1=42(4) ..."``) the slabs in parentheses
    (the objects before them are an estimate, slabs x objects / 2); None if
    the text holds no number."""
    head = text.split(" ", 1)[0]
    if "(" in head:
        head = head.split("(", 1)[1].rstrip(")")
    try:
        return int(head)
    except ValueError:
        return None


def _state_compared(
    info: dict[str, Any], states: dict[tuple[str, str], dict[str, str]], d: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per :data:`STATE_ATTRS` file the lab read: ``{"before"|"after":
    {"kernel": text, "model": text}}`` -- the kernel's file contents from
    ``state_before``/``state_after`` and the model's at the same marker -- and,
    read at both, ``"delta"``: the change of its total (:func:`state_number`)
    between them, ``{"kernel": int, "model": int}``.  Off boot the kernel's
    state holds what the trace never shows (slabs full of objects allocated
    before it and never freed in it), so the change is what the two share."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for attr in STATE_ATTRS:
        got = states.get((d, attr), {})
        row: dict[str, dict[str, Any]] = {
            when: {"kernel": str(kv[attr]), "model": got[when]}
            for when in ("before", "after")
            if when in got and attr in (kv := info.get(f"state_{when}") or {})
        }
        if "before" in row and "after" in row:
            delta: dict[str, int] = {}
            for who in ("kernel", "model"):
                a = state_number(row["before"][who])
                b = state_number(row["after"][who])
                if a is not None and b is not None:
                    delta[who] = b - a
            if len(delta) == 2:
                row["delta"] = delta
        if row:
            out[attr] = row
    return out


def state_summary(caches: dict[str, Any], min_events: int = 0) -> dict[str, dict[str, int]]:
    """How many state files the model read as the kernel did, at the first
    ("before") and the last ("after") read, and how many changed between them
    as the kernel's did (``"delta"``: exact, within 5 % by :func:`rel_error`),
    over the caches with at least ``min_events`` events:
    ``{"before"|"after": {"compared": n, "same": n}, "delta": {"compared": n,
    "exact": n, "within_5pct": n}}``."""
    out = {w: {"compared": 0, "same": 0} for w in ("before", "after")}
    out["delta"] = {"compared": 0, "exact": 0, "within_5pct": 0}
    for c in caches.values():
        if c.get("events", 0) < min_events:
            continue
        for row in (c.get("state") or {}).values():
            for when in ("before", "after"):
                if when in row:
                    out[when]["compared"] += 1
                    out[when]["same"] += row[when]["kernel"] == row[when]["model"]
            if "delta" in row:
                err = rel_error(row["delta"]["model"], row["delta"]["kernel"])
                out["delta"]["compared"] += 1
                out["delta"]["exact"] += err == 0
                out["delta"]["within_5pct"] += err <= 0.05
    return out


def _trace_names(store: EventStore) -> set[str]:
    return {c["name"] for c in store.caches}
