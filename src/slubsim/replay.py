"""Replay an event store through the model of one allocator generation.

Each trace event runs on its CPU (and requested node) against the model cache
it maps to; the model's own addresses stand in for the traced pointers.  The
result is one JSON-ready dict (the schema shared by replay, validate and
sweep; see :func:`result_schema_doc`).

Decisions (documented, tested):

* **Objects allocated before the trace** (their free is the first event seen):
  ``pretrace="materialize"`` (default) allocates them on the CPU that will free
  them before replay starts, then flushes every per-CPU cache and barn and
  takes the counter baseline there; ``"reconstruct"`` rebuilds the slabs that
  were in use when tracing began from the traced pointers (slubsim.pretrace:
  objects first seen as frees are with users, the others leave in the order of
  their first allocation; 6.12 cpu slabs and cpu partial lists where known)
  without moving a counter; ``"ignore"`` skips their frees.  Either way the
  count is reported.
* **Grace periods** (``rcu_mode``): ``"trace"`` (default when replaying under
  the generation that recorded the trace with its own sheaf capacities) -- each
  ``rcu_free_sheaf`` event completes, on the event's CPU, the oldest in-flight
  rcu sheaf of that cache the model queued on that CPU (a CPU invokes its own
  callbacks in order; the traced kernels have no callback offloading), else
  the oldest queued anywhere; the classic kvfree_rcu batches drain
  every ``gp_interval`` seconds of trace time.  ``"periodic"`` (default for
  what-if runs, and for traces without ``rcu_free_sheaf`` events) -- one full
  grace period every ``gp_interval`` seconds (default 0.03 s).
* **Frees that happened before the lab kprobes were active** (boot traces:
  kfree_rcu and bulk frees are untraced there): a pointer allocated again
  before the probes fired is freed plainly just before, on the reallocating
  CPU (the reuse shows the free had completed); an object live when they
  started and allocated again later without a traced free (ingest flag
  ``F_EARLY``) is freed plainly, on the reallocating CPU, at the row where they
  started (not as ``kfree_rcu``: its rcu sheaf would wait for a completion the
  trace never shows).  An allocation before them at a call site that, once
  they run, allocates from prefilled sheaves (ingest flag ``F_PREFILLED``)
  comes from a prefilled sheaf of an inferred session (``_prefilled_alloc``).
* **kfree_rcu completions**: when the traced kernel shows the delayed free of
  a kfree_rcu'd object (``free_bulk name=(fault)`` or ``kfree`` from the
  kvfree_rcu batch) and the model put that object in its own classic batch, it
  is freed at that moment; objects the model sent to an rcu sheaf are skipped.
  Without such events the classic batches drain at every grace period.
* **Generations without the prefilled-sheaf API** (6.12): a prefill and a
  return are not replayed and each allocation from a prefilled sheaf becomes a
  plain allocation.
* **alloc_bulk** hands out anonymous model objects; frees bound to that bulk
  (ingest decided which) release them LIFO.
* **Internal sheaf allocations** of the traced kernel appear as kmalloc events
  and are replayed as such; the model does not generate them (spec §16.4).
"""

from __future__ import annotations

import gc
import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from .bundle import pointer_node
from .cache import KmemCache
from .constants import NUMA_NO_NODE, PAGE_SIZE, PRETRACE_POLICIES
from .errors import SlabError, SlubsimUsageError
from .geometry import sheaf_struct_size
from .kernel import Kernel, KernelConfig, resolve_version
from .kmalloc import kmalloc_size_roundup
from .lockstep import CacheLockstep
from .machine import Machine
from .pcpu import HIT_NONE, HIT_SHEAVES
from .pretrace import PretracePlan, RemoteFree, remote_free_test
from .pretrace import plan as plan_pretrace
from .rcu_align import missed_completions, overdue_bounds
from .sheaf import Sheaf
from .sheaves import SheavesLayer
from .slab import Slab
from .sysfs_import import create_from_sysfs
from .trace.events import (
    F_BULK_BOUND,
    F_EARLY,
    F_FAILED,
    F_IMPLICIT,
    F_IRQ,
    F_PREFILLED,
    F_PRETRACE,
    F_RCU_COMPLETION,
    OP_ALLOC,
    OP_ALLOC_BULK,
    OP_ALLOC_FROM_SHEAF,
    OP_FREE,
    OP_FREE_BULK,
    OP_KFREE_BULK,
    OP_KFREE_RCU,
    OP_LARGE_ALLOC,
    OP_LARGE_FREE,
    OP_MARKER,
    OP_NAMES,
    OP_PREFILL,
    OP_RCU_SHEAF,
    OP_REFILL_SHEAF,
    OP_RETURN_SHEAF,
)
from .trace.store import EventStore

#: ``--set`` keys: what they change
OVERRIDE_KEYS: dict[str, str] = {
    "sheaf_capacity": "sheaf capacity of every replayed cache that has sheaves",
    "barn_max_full": "MAX_FULL_SHEAVES of every barn",
    "barn_max_empty": "MAX_EMPTY_SHEAVES of every barn",
    "min_partial": "min_partial of every replayed cache",
    "cpu_partial": "cpu_partial objects of every replayed cache (6.12-based generations)",
    "pca_capacity": "percpu array size of the opted-in caches (rfc-pca generations)",
    "cpus": "number of CPUs of the model machine",
    "nodes": "number of NUMA nodes of the model machine",
}


def split_setting(item: str, option: str, form: str) -> tuple[str, str]:
    """``KEY=VALUE`` of a ``--set``/``--vary`` item; the key must be one of
    :data:`OVERRIDE_KEYS` (the error lists them)."""
    if "=" not in item:
        raise SlubsimUsageError(f"{option} expects {form}, got {item!r}")
    key, val = item.split("=", 1)
    key = key.strip()
    if key not in OVERRIDE_KEYS:
        raise SlubsimUsageError(
            f"unknown {option} key {key!r}; valid keys: {', '.join(OVERRIDE_KEYS)}"
        )
    return key, val


def check_setting(option: str, key: str, value: int) -> int:
    """Range check of one override value (counts >= 0; cpus, nodes >= 1)."""
    if value < 0 or (key in ("cpus", "nodes") and value < 1):
        raise SlubsimUsageError(f"{option} {key}: {value} is out of range")
    return value


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``["sheaf_capacity=32", ...]`` -> dict; unknown keys list the valid ones."""
    out: dict[str, int] = {}
    for item in items:
        key, val = split_setting(item, "--set", "KEY=VALUE")
        try:
            value = int(val)
        except ValueError:
            raise SlubsimUsageError(f"--set {key}: {val!r} is not an integer") from None
        out[key] = check_setting("--set", key, value)
    return out


#: recorded generations whose CPUs allocate from a cpu slab (pointer order of
#: fresh slabs is index order; see slubsim.pretrace)
CPU_SLAB_GENERATIONS = ("6.12",)


@dataclass
class ReplayOptions:
    kernel: str | None = None  # None: the generation that recorded the trace
    caches: list[str] = field(default_factory=list)  # any name, alias or sysfs dir
    overrides: dict[str, int] = field(default_factory=dict)
    pretrace: str = "materialize"
    gp_interval: float = 0.03
    rcu_mode: str | None = None  # "trace" | "periodic" | None (choose, see module doc)
    #: per-CPU main sheaves at trace start: fill fraction (0 = empty)
    warm_sheaves: float = 0.0
    #: adaptive capacity policy ("fixed", "bonwick", "uma"; see slubsim.policies)
    policy: str = "fixed"
    #: the first allocation of each cache on each CPU finds its per-CPU cache
    #: already filled (refilled silently: counters untouched), as a kernel that
    #: had been running before tracing started would
    warm_on_first_use: bool = False
    validate: bool = True
    #: replay 7.3 sheaf hits in slubsim.hitpath: None = when it is compiled
    #: (as Python it is no faster than the full model), True = also as Python
    #: (tests), False = every event through the full model; same results
    hit_path: bool | None = None
    #: check per allocation that the model hands out the object the kernel did
    #: (slab by slab; see slubsim.lockstep) -- reads the traced pointers
    lockstep: bool = False
    #: pretrace="reconstruct": cache (name or sysfs dir) -> trace CPUs that had
    #: allocated from it before tracing began (under 6.12: held a cpu slab)
    pretrace_cpus: dict[str, set[int]] = field(default_factory=dict)
    #: pretrace="reconstruct": cache -> trace CPU -> slabs on its cpu partial
    #: list when tracing began (sysfs ``slabs_cpu_partial``)
    pretrace_cpu_partial: dict[str, dict[int, int]] = field(default_factory=dict)
    #: pretrace="reconstruct": those counts were read when tracing began (not
    #: later, as in a trace from boot), so slabs on a CPU's list that no traced
    #: pointer touches are made up to them (slubsim.pretrace.plan)
    pretrace_cpu_partial_unseen: bool = False
    #: pretrace="reconstruct": cache -> trace CPU -> objects its main + spare
    #: sheaves held when tracing began (7.x; which ones: slubsim.pretrace)
    pretrace_sheaves: dict[str, dict[int, int]] = field(default_factory=dict)
    #: rows per record batch read from the store (memory: ~40 bytes a row)
    batch_rows: int = 1 << 16
    progress: Callable[[int, int], None] | None = None
    #: called at every marker row with (marker dict, replayer)
    on_marker: Callable[[dict[str, Any], Replayer], None] | None = None


#: the store columns the replay loop reads
_REPLAY_COLUMNS: tuple[str, ...] = (
    "ts",
    "cpu",
    "op",
    "cache",
    "obj",
    "size",
    "node",
    "flags",
    "aux",
)

#: per-cache event counts of the result: name -> the ops it counts
EVENT_KINDS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("alloc", (OP_ALLOC,)),
    ("free", (OP_FREE,)),
    ("kfree_rcu", (OP_KFREE_RCU,)),
    ("free_bulk", (OP_FREE_BULK, OP_KFREE_BULK)),
    ("alloc_bulk", (OP_ALLOC_BULK,)),  # objects, not calls
    ("prefill_sheaf", (OP_PREFILL,)),
    ("alloc_from_sheaf", (OP_ALLOC_FROM_SHEAF,)),
    ("return_sheaf", (OP_RETURN_SHEAF,)),
)


_NOPS = 16  # > every OP_* value

#: events the full model replays on their own cache and CPU only (what the
#: hit path knows of other caches, and of that cache's other CPUs' main
#: sheaves, stays true); a kfree_rcu of another cache's object is checked
_OWN_CACHE_OPS: Final = frozenset(
    (
        OP_ALLOC,
        OP_FREE,
        OP_ALLOC_FROM_SHEAF,
        OP_PREFILL,
        OP_RETURN_SHEAF,
        OP_REFILL_SHEAF,
        OP_ALLOC_BULK,
        OP_KFREE_RCU,
    )
)

#: the column types of slubsim.hitpath.HitPath.run's typed memoryviews
_HIT_DTYPES: dict[str, Any] = {
    "op": np.int8,
    "cache": np.int32,
    "cpu": np.int16,
    "obj": np.int32,
    "flags": np.uint8,
    "ts": np.float64,
}


#: prefill count of an inferred session when the probes never showed the
#: cache's own (see Replayer._prefilled_alloc)
PREFILL_DEFAULT: Final = 3


def _irq_move_masks(store: EventStore, ncaches: int) -> np.ndarray[Any, Any] | None:
    """Per store cache id, the mask of a kernel slab's address (order from the
    bundle's geometry, else 0) -- for :meth:`TraceFacts._irq_moves`, on traces
    of a kernel with cpu slabs, whose fresh slabs hand out object 0 first; else
    None."""
    try:
        major = int(str(store.meta.get("kernel_version") or "").split(".")[0])
    except ValueError:
        return None
    if major >= 7 or ncaches <= 0:
        return None
    masks = np.full(ncaches, ~np.uint64(PAGE_SIZE - 1), dtype=np.uint64)
    for c in store.caches:
        cid = int(c["id"])
        try:
            order = int((c.get("config") or {}).get("order") or 0)
        except (TypeError, ValueError):
            order = 0
        if 0 <= cid < ncaches:
            masks[cid] = ~np.uint64((PAGE_SIZE << order) - 1)
    return masks


class TraceFacts:
    """What the replay needs to know about the whole trace before its first
    event, gathered in one streaming pass over the store (vectorised, one
    record batch at a time): machine shape, time span, rcu evidence, the
    rows with pre-trace objects and late-bound early frees, and the event
    counts per cache."""

    def __init__(self) -> None:
        self.n = 0
        self.cpus = 1
        self.ncaches = 0
        self.nobj = 0
        self.ts_first = 0.0
        self.ts_last = 0.0
        self.has_rcu_sheaf_events = False
        self.has_rcu_completions = False
        self.has_prefilled_guess = False  # F_PREFILLED rows (inferred prefilled sheaves)
        #: row -> (cache, obj, cpu) of early frees replayed (plainly) at that row
        self.early: dict[int, list[tuple[int, int, int]]] = {}
        #: (cache, obj, cpu) of every row freeing a pre-trace object, in order
        self.pretrace: list[tuple[int, int, int]] = []
        #: rows per (cache, op); objects of alloc_bulk calls per cache
        self.per_op: np.ndarray[Any, Any] = np.zeros((0, _NOPS), dtype=np.int64)
        self.bulk_objects: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int64)
        #: inferred prefilled-sheaf sessions (F_PREFILLED rows): first row ->
        #: allocations in the session, and the rows of their last allocations
        #: (see :meth:`_segment_prefilled`)
        self.pf_first: dict[int, int] = {}
        self.pf_last: set[int] = set()
        #: allocations the traced kernel made while an interrupt freed objects
        #: on the same CPU (see :meth:`_irq_moves`): (the irq's rows, the
        #: allocation's row), by row; the replay takes the allocation first
        self.irq_moves: list[tuple[list[int], int]] = []
        self._irq_prev: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] = (
            np.zeros(0, dtype=np.int16),
            np.zeros(0, dtype=bool),
        )

    @classmethod
    def scan(cls, store: EventStore, rows: int) -> TraceFacts:
        f = cls()
        f.ncaches = max((int(c["id"]) for c in store.caches), default=-1) + 1
        f.per_op = np.zeros((f.ncaches, _NOPS), dtype=np.int64)
        f.bulk_objects = np.zeros(f.ncaches, dtype=np.int64)
        cols: tuple[str, ...] = ("ts", "cpu", "op", "cache", "obj", "size", "flags", "aux")
        # slab masks per cache, for traces of a kernel with cpu slabs (below 7)
        masks = _irq_move_masks(store, f.ncaches)
        if masks is not None:
            cols += ("ptr",)
        seen = np.zeros(0, dtype=np.uint64)  # kernel slabs met so far
        first = True
        pf_open: dict[int, list[int]] = {}  # trace CPU -> [cache, first row, allocs, last row]
        for b in store.iter_batches(cols, rows):
            m = len(b["op"])
            if not m:
                continue
            f.n += m
            if first:
                f.ts_first = float(b["ts"][0])
                first = False
            f.ts_last = float(b["ts"][-1])
            f.cpus = max(f.cpus, int(b["cpu"].max()) + 1)
            f.nobj = max(f.nobj, int(b["obj"].max()) + 1)
            op, cache, flags = b["op"], b["cache"], b["flags"]
            f.has_rcu_sheaf_events |= bool((op == OP_RCU_SHEAF).any())
            f.has_rcu_completions |= bool((flags & F_RCU_COMPLETION).any())
            pf = (flags & F_PREFILLED) != 0
            if pf_open or pf.any():
                f.has_prefilled_guess = True
                f._segment_prefilled(f.n - m, b["cpu"], op, cache, pf, pf_open)
            for j in np.flatnonzero(flags & F_EARLY).tolist():
                f.early.setdefault(int(b["aux"][j]), []).append(
                    (int(cache[j]), int(b["obj"][j]), int(b["cpu"][j]))
                )
            for j in np.flatnonzero(flags & F_PRETRACE).tolist():
                f.pretrace.append((int(cache[j]), int(b["obj"][j]), int(b["cpu"][j])))
            if masks is not None:
                seen = f._irq_moves(f.n - m, b, masks, seen, rows)
            valid = (cache >= 0) & (cache < f.ncaches)
            key = cache[valid].astype(np.int64) * _NOPS + op[valid]
            f.per_op += np.bincount(key, minlength=f.ncaches * _NOPS).reshape(f.ncaches, _NOPS)
            bulk = valid & (op == OP_ALLOC_BULK)
            if bulk.any():
                f.bulk_objects += np.bincount(
                    cache[bulk], weights=b["size"][bulk], minlength=f.ncaches
                ).astype(np.int64)
        for sess in pf_open.values():
            f._close_prefilled(sess)
        return f

    def _irq_moves(
        self,
        base: int,
        b: dict[str, np.ndarray[Any, Any]],
        masks: np.ndarray[Any, Any],
        seen: np.ndarray[Any, Any],
        rows: int,
    ) -> np.ndarray[Any, Any]:
        """Find, in one batch (rows from ``base``), the allocations a 6.12
        kernel made while an interrupt on the same CPU freed objects; returns
        the kernel slabs met so far, this batch's included.

        An allocation's tracepoint fires when it returns, so the frees of an
        interrupt taken during it (a slow path with interrupts enabled:
        ``new_slab`` with GFP_KERNEL, where rcu_core runs its callbacks on
        irq exit) come first in the trace.  Replayed in that order they feed
        the CPU's cpu slab or partial list before the allocation, which then
        takes one of them.  The proof that they came during it: the
        allocation returned object 0 of a slab the trace never showed before
        (a fresh slab: with free objects at hand the kernel would have used
        them), right after a run of irq-context frees on its CPU (no other
        event of the CPU between).  Such a run and its allocation are listed
        in :attr:`irq_moves`; the replay takes the allocation first
        (``Replayer._batches``).  (v612-boot-mixed-4cpu shmem_inode_cache at
        9.054067 and v612-mixed-4cpu at 9.627719: the model took a freed inode
        where the kernel made a new slab, and parted from the kernel's objects
        there -- 89.8 % and 92.6 % of allocations in step; 100 % with this.)"""
        ptr, op, cache, flags, cpu = b["ptr"], b["op"], b["cache"], b["flags"], b["cpu"]
        plain_irq = ((flags & F_IRQ) != 0) & (op == OP_FREE)
        plain_irq &= (flags & np.uint8(0xFF & ~(F_IRQ | F_PRETRACE))) == 0
        # the walk back may reach into the previous batch's last rows
        prev_cpu, prev_irq = self._irq_prev
        off = len(prev_cpu)
        cpu_all = np.concatenate((prev_cpu, cpu)) if off else cpu
        irq_all = np.concatenate((prev_irq, plain_irq)) if off else plain_irq
        keep = max(rows // 2, 1)
        self._irq_prev = (cpu_all[-keep:], irq_all[-keep:])
        has = (ptr != 0) & (cache >= 0) & (cache < len(masks))
        has &= (op == OP_ALLOC) | (op == OP_FREE)
        idx = np.flatnonzero(has)
        if not len(idx):
            return seen
        slabs = ptr[idx] & masks[cache[idx]]
        uniq, firsts = np.unique(slabs, return_index=True)
        new = ~np.isin(uniq, seen, assume_unique=True)
        j = idx[firsts[new]]
        fresh = j[(op[j] == OP_ALLOC) & (flags[j] == 0) & (ptr[j] == uniq[new])]
        seen = np.union1d(seen, uniq)
        per_cpu: dict[int, np.ndarray[Any, Any]] = {}
        for a in np.sort(fresh + off).tolist():  # (by row: the replay applies them in order)
            c = int(cpu_all[a])
            mine = per_cpu.get(c)
            if mine is None:
                mine = per_cpu[c] = np.flatnonzero(cpu_all == c)
            k = int(np.searchsorted(mine, a)) - 1
            run: list[int] = []
            while k >= 0 and irq_all[mine[k]]:
                run.append(int(mine[k]))
                k -= 1
            # (a move spanning more than half a batch is not made:
            # Replayer._batches keeps each move within one batch)
            if run and a - run[-1] < keep:
                first = base - off
                self.irq_moves.append(([first + r for r in reversed(run)], first + a))
        return seen

    def _segment_prefilled(
        self,
        base: int,
        cpu: np.ndarray[Any, Any],
        op: np.ndarray[Any, Any],
        cache: np.ndarray[Any, Any],
        pf: np.ndarray[Any, Any],
        open_: dict[int, list[int]],
    ) -> None:
        """Cut the F_PREFILLED allocations of one batch (rows from ``base``)
        into sessions: one session is a run of such allocations of one cache
        on one CPU with no other event of that CPU between them (decision:
        kmem_cache_prefill_sheaf, the allocations and kmem_cache_return_sheaf
        run back to back under the maple tree's lock; on boot-mixed-4cpu,
        once the probes show the sessions, 6,046 of 6,046 pairs of
        consecutive prefilled allocations of a CPU with nothing between them
        were of one session, and 3,540 of 3,552 pairs with other events
        between them of two).  ``open_`` carries the sessions still open
        across batches."""
        pf_rows = np.flatnonzero(pf)
        last_pf = int(pf_rows[-1]) if len(pf_rows) else -1
        for j in np.flatnonzero(op != OP_MARKER).tolist():
            if j > last_pf and not open_:
                break
            k = int(cpu[j])
            sess = open_.get(k)
            if pf[j]:
                c = int(cache[j])
                if sess is not None and sess[0] == c:
                    sess[2] += 1
                    sess[3] = base + j
                    continue
                if sess is not None:
                    self._close_prefilled(sess)
                open_[k] = [c, base + j, 1, base + j]
            elif sess is not None:
                self._close_prefilled(sess)
                del open_[k]

    def _close_prefilled(self, sess: list[int]) -> None:
        self.pf_first[sess[1]] = sess[2]
        self.pf_last.add(sess[3])

    def events_of(self, cache: int) -> dict[str, int]:
        """The result's ``events`` dict of one cache (non-zero kinds only)."""
        out: dict[str, int] = {}
        for kind, ops in EVENT_KINDS:
            if kind == "alloc_bulk":
                v = int(self.bulk_objects[cache])
            else:
                v = sum(int(self.per_op[cache, o]) for o in ops)
            if v:
                out[kind] = v
        return out


class CacheTrack:
    """Per-cache replay bookkeeping (events, memory curve)."""

    __slots__ = (
        "area",
        "cached_peak",
        "events",
        "last_cached",
        "last_pages",
        "last_sheaves",
        "last_slabs",
        "last_ts",
        "model",
        "page_area",
        "seg_ts",
        "sheaf_area",
        "sheaves_peak",
        "slab_area",
        "store_id",
    )

    def __init__(self, model: KmemCache, store_id: int) -> None:
        self.model = model
        self.store_id = store_id
        self.events: dict[str, int] = {}
        self.cached_peak = 0
        self.last_cached = 0
        self.area = 0.0
        self.last_ts = -1.0
        self.sheaves_peak = 0
        self.last_sheaves = 0
        self.sheaf_area = 0.0
        self.last_slabs = 0
        self.slab_area = 0.0
        self.last_pages = 0
        self.page_area = 0.0
        self.seg_ts = -1.0  # since when sheaves/slabs/pages have their last_* values

    def hit_state(self) -> tuple[int, int, float, float, int, int] | None:
        """For slubsim.hitpath, in one call: ``(nlive, inuse_total, area,
        last_ts, last_cached, cached_peak)``, or None when the hit path may
        not take this cache's events now (destroyed, pfmemalloc slabs, or a
        memory-curve change pending: the replay loop's inline ``_sample`` case
        fails)."""
        s = self.model
        if (
            s.destroyed
            or s.pfmemalloc_slabs
            or self.last_ts < 0.0
            or s.nr_pages != self.last_pages
            or len(s.slabs) != self.last_slabs
            or s.nr_sheaves != self.last_sheaves
        ):
            return None
        return (s.nlive, s.inuse_total, self.area, self.last_ts, self.last_cached, self.cached_peak)

    def hit_write_back(
        self,
        nlive: int,
        inuse_total: int,
        area: float,
        last_ts: float,
        last_cached: int,
        cached_peak: int,
    ) -> None:
        """The values slubsim.hitpath mirrored, back into the model."""
        self.model.nlive = nlive
        self.model.inuse_total = inuse_total
        self.area = area
        self.last_ts = last_ts
        self.last_cached = last_cached
        self.cached_peak = cached_peak

    def close_segment(self, ts: float) -> None:
        """Add the sheaves/slabs/pages held since ``seg_ts`` up to ``ts``."""
        if self.seg_ts >= 0.0:
            dt = ts - self.seg_ts
            self.sheaf_area += self.last_sheaves * dt
            self.slab_area += self.last_slabs * dt
            self.page_area += self.last_pages * dt
            self.seg_ts = ts


class Replayer:
    def __init__(self, store: EventStore, options: ReplayOptions | None = None) -> None:
        self.store = store
        self.opt = options or ReplayOptions()
        if self.opt.pretrace not in PRETRACE_POLICIES:
            raise SlubsimUsageError(
                "pretrace policy must be one of " + ", ".join(repr(p) for p in PRETRACE_POLICIES)
            )
        meta = store.meta
        version = self.opt.kernel or str(meta.get("kernel_version") or "7.3")
        try:
            self.generation = resolve_version(version)
        except SlubsimUsageError:
            if self.opt.kernel is None:
                raise SlubsimUsageError(
                    f"the trace was recorded on Linux {version}, which has no model yet; "
                    f"choose one with --kernel (available: 7.3)"
                ) from None
            raise
        mach = meta.get("machine") or {}
        self.facts = TraceFacts.scan(store, self.opt.batch_rows)
        cpus_trace = self.facts.cpus
        cpus = self.opt.overrides.get("cpus", max(int(mach.get("cpus", 1)), cpus_trace))
        nodes = self.opt.overrides.get("nodes", int(mach.get("nodes", 1)))
        cpu_nodes = mach.get("cpu_nodes")
        if "cpus" in self.opt.overrides or "nodes" in self.opt.overrides or not cpu_nodes:
            cpu_nodes = None
        elif len(cpu_nodes) < cpus:
            cpu_nodes = list(cpu_nodes) + [0] * (cpus - len(cpu_nodes))
        self.machine = Machine(cpus=cpus, nodes=nodes, cpu_nodes=cpu_nodes)
        #: the traced machine's node memory (bundle dmesg): a traced pointer's node
        self.mem_ranges: list[list[int]] = (
            list(mach.get("mem_ranges") or []) if cpu_nodes is not None else []
        )
        self.kernel = Kernel(self.machine, version=self.generation.name, config=KernelConfig())
        self.cpu_of = self._cpu_map(cpus_trace, cpus)
        self.warnings: dict[str, int] = defaultdict(int)
        self.imposed: dict[str, list[str]] = {}
        self.tracks: dict[int, CacheTrack] = {}
        self._build_caches()
        # cache index -> track (None: not replayed), for the replay loop
        self.track_of: list[CacheTrack | None] = [
            self.tracks.get(i) for i in range(self.facts.ncaches)
        ]
        for cid, tr in self.tracks.items():
            tr.events = self.facts.events_of(cid)
        from .policies import CapacityPolicy, PolicyState

        self.policy_states: dict[int, PolicyState] = {}
        if self.opt.policy != "fixed":
            pol = CapacityPolicy(self.opt.policy)
            for cid, tr in self.tracks.items():
                self.policy_states[cid] = PolicyState(pol, tr.model)
        self.baseline: dict[int, list[list[int]]] = {}
        self.hidden: dict[int, list[list[int]]] = {}
        self.addr: list[int] = []
        self.pretrace_objects = 0
        self.pretrace_plan: PretracePlan | None = None
        self.lockstep: dict[int, CacheLockstep] = {}
        #: rows replayed (or skipped) on the hit path (slubsim.hitpath)
        self.hit_rows = 0
        #: rows the hit path handed to the full model, by op name
        self.hit_stops: dict[str, int] = {}
        #: sheaf exchanges replayed on the hit path (slubsim.hitpath.EXCHANGES)
        self.hit_exchanges: dict[str, int] = {}

    # ----------------------------------------------------------------- setup
    @staticmethod
    def _cpu_map(cpus_trace: int, cpus: int) -> list[int]:
        """Trace CPU -> model CPU (folded modulo when the model has fewer)."""
        return [c % cpus for c in range(max(cpus_trace, 1))]

    def _wanted(self, info: dict[str, Any]) -> bool:
        if not self.opt.caches:
            return True
        names = {info["name"], *(info.get("aliases") or [])}
        if info.get("sysfs_dir"):
            names.add(info["sysfs_dir"])
        return bool(names & set(self.opt.caches))

    def _build_caches(self) -> None:
        k = self.kernel
        known: set[str] = set()
        for info in self.store.caches:
            if not self._wanted(info):
                continue
            known.add(info["name"])
            name = info["name"]
            if name.startswith("?"):
                self.warnings["unresolved_cache_events_skipped"] += 1
                continue
            cfg = info.get("config")
            same_gen = self.generation.name == str(self.store.meta.get("kernel_version"))
            if cfg:
                if not same_gen:
                    # another generation derives its own tunables from the geometry
                    cfg = {
                        key: v
                        for key, v in cfg.items()
                        if key not in ("sheaf_capacity", "cpu_partial", "min_partial")
                    }
                s, imposed = create_from_sysfs(k, name, list(info.get("aliases") or []), cfg)
                if imposed:
                    self.imposed[name] = imposed
            elif name in k.by_name:
                s = k.by_name[name]
            else:
                size = int(info.get("size") or info.get("object_size") or 8)
                s = k.kmem_cache_create(name, size=size, flags={"SLAB_NO_MERGE"})
            ov = self.opt.overrides
            kw: dict[str, int] = {}
            if "sheaf_capacity" in ov and s.sheaf_capacity:
                kw["sheaf_capacity"] = ov["sheaf_capacity"]
            for key in ("min_partial", "barn_max_full", "barn_max_empty", "pca_capacity"):
                if key in ov:
                    kw[key] = ov[key]
            if "cpu_partial" in ov and hasattr(s.layer, "set_cpu_partial") and not s.debug:
                kw["cpu_partial"] = ov["cpu_partial"]
            if kw:
                s.reconfigure(**kw)
            self.tracks[info["id"]] = CacheTrack(s, info["id"])
        if self.opt.caches:
            all_names = {
                n
                for info in self.store.caches
                for n in [info["name"], info.get("sysfs_dir"), *(info.get("aliases") or [])]
                if n
            }
            missing = [c for c in self.opt.caches if c not in all_names]
            if missing:
                raise SlubsimUsageError(
                    f"no cache named {', '.join(missing)} in this trace; it has: "
                    + ", ".join(sorted(info["name"] for info in self.store.caches)[:40])
                )

    # ---------------------------------------------------------------- replay
    def run(self) -> dict[str, Any]:
        """Replay every event; the store is read in record batches (see
        :meth:`_batches`), so memory follows the live objects, not the trace.
        The cyclic garbage collector is off meanwhile: the model's objects
        live for the whole run and hold no cycles to collect, and its
        generation-0 passes over them cost ~3 % of a replay."""
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if gc_was_on:
                gc.enable()

    def _run(self) -> dict[str, Any]:
        facts = self.facts
        n = self.store.n
        self.addr = [0] * facts.nobj
        mode = self.opt.rcu_mode
        if mode is None:
            what_if = bool(
                {"sheaf_capacity", "barn_max_full", "barn_max_empty"} & set(self.opt.overrides)
            ) or (self.generation.name != str(self.store.meta.get("kernel_version")))
            mode = "trace" if facts.has_rcu_sheaf_events and not what_if else "periodic"
        if mode not in ("trace", "periodic"):
            raise SlubsimUsageError("rcu_mode must be 'trace' or 'periodic'")
        self.rcu_mode = mode
        #: traced rcu_free_sheaf row -> completions the trace lost just before
        #: it on its CPU (-1: a sheaf from before the trace; slubsim.rcu_align)
        self.rcu_lost: dict[int, int] = {}
        #: traced rcu_free_sheaf row -> the time before which the kernel had
        #: run every sheaf its CPU submitted (slubsim.rcu_align.overdue_bounds)
        self.rcu_overdue: dict[int, float] = {}
        if mode == "trace":
            self.rcu_lost, self.rcu_overdue = self._rcu_completions()
        # the traced kernel's delayed frees of kfree_rcu'd objects drive the
        # model's classic kvfree_rcu batch when there are any
        self.drain_by_trace = facts.has_rcu_completions
        #: trace objects the model kfree_rcu'd into a classic kvfree_rcu batch
        #: -> their model addresses, until the traced kernel frees them (only
        #: those: the rest go to rcu sheaves, whose completions are traced by
        #: sheaf, so the dict follows the batches, not the trace's length)
        self.rcu_addr: dict[int, int] = {}
        self.has_prefill = all(tr.model.layer.has_prefill for tr in self.tracks.values())
        #: the prefilled sheaf of each session inferred for F_PREFILLED
        #: allocations (before the lab kprobes) by (cache, cpu); each cache's
        #: most common prefill count as the probes showed
        self.pf_sessions: dict[tuple[int, int], Sheaf] = {}
        self.pf_count: dict[int, int] = {
            int(c): int(v["count"])
            for c, v in (self.store.meta.get("prefill_sessions") or {}).items()
        }
        #: cache -> allocations of a session -> its usual prefill count
        self.pf_count_by_allocs: dict[int, dict[int, int]] = {
            int(c): {int(n): int(k) for n, k in (v.get("by_allocs") or {}).items()}
            for c, v in (self.store.meta.get("prefill_sessions") or {}).items()
        }
        self.kprobe_row = int(self.store.meta.get("kprobe_row", -1))
        if facts.has_prefilled_guess and self.kprobe_row >= 0:
            # the hit path stops there: the last inferred sessions end
            facts.early.setdefault(self.kprobe_row, [])
        self.next_gp = facts.ts_first + self.opt.gp_interval
        self.bulk_pool: dict[int, list[int]] = {}
        self.sheaves: dict[int, Sheaf] = {}
        self.warmed: set[tuple[int, int]] = set()
        t0 = time.perf_counter()

        if self.opt.pretrace == "reconstruct":
            self.pretrace_plan = self._plan_pretrace()
            # objects of the caches rebuilt from pointers are all placed (a
            # later pre-trace-flagged free of a pointer seen before is an
            # untraced reallocation, not a pre-trace object)
            self._materialize(skip_caches=set(self.pretrace_plan.slabs))
            self._install_pretrace(self.pretrace_plan)
        elif self.opt.pretrace == "materialize":
            self._materialize()
        if self.opt.warm_sheaves > 0:
            self._warm_sheaves(self.opt.warm_sheaves)
        self._take_baseline()
        hp, arrays = self._hit_path()
        kept: dict[str, list[Any]] = {}
        for base, b in self._batches():
            if arrays:
                # the hit path reads the arrays; the rows it leaves to the
                # model are copied into the lists as they come (HitPath.run):
                # converting every row would cost more than the hits.  The
                # lists are kept from batch to batch (a fresh 2^16-row list
                # per column costs its allocation and every element's
                # decref); rows not copied in are never read
                views: dict[str, Any] = {
                    name: np.ascontiguousarray(col, dtype=_HIT_DTYPES.get(name, col.dtype)).data
                    for name, col in b.items()
                }
                m = len(b["op"])
                if not kept:
                    kept = {name: [0.0] * m if name == "ts" else [0] * m for name in b}
                for name, lst in kept.items():
                    if len(lst) > m:
                        del lst[m:]
                    elif len(lst) < m:
                        lst.extend([0.0 if name == "ts" else 0] * (m - len(lst)))
                cols = kept
            else:
                views = {}
                cols = {name: col.tolist() for name, col in b.items()}
            if hp is not None:
                hp.invalidate(-1, -1)
            self._replay_rows(base, cols, hp, views)
            if self.opt.progress is not None:
                self.opt.progress(base + len(b["op"]), n)
        if hp is not None:
            hp.invalidate(-1, -1)  # every mirrored value back into the model
            self.hit_rows = int(hp.handled())
            self.hit_stops = {OP_NAMES.get(o, str(o)): n for o, n in hp.stop_counts().items()}
            self.hit_exchanges = dict(hp.exchanges())
        self._end_prefilled_sessions()
        for sh in self.sheaves.values():  # prefilled sheaves still out at the end
            self.warnings["sheaves_out_at_end"] += 1
            del sh
        self.kernel.synchronize_rcu()
        self.elapsed = time.perf_counter() - t0
        if self.opt.validate:
            self.kernel.validate()
        return self.result()

    def _batches(self) -> Iterator[tuple[int, dict[str, np.ndarray[Any, Any]]]]:
        """(first row, columns) record batches that never split a bulk call:
        the rows of a trailing ``free_bulk``/``kfree_bulk`` group are carried
        into the next batch."""
        base = 0
        carry: dict[str, np.ndarray[Any, Any]] | None = None
        cols = _REPLAY_COLUMNS + (("ptr",) if self.opt.lockstep else ())
        moves = self.facts.irq_moves
        mv = 0  # next move not yet applied
        for b in self.store.iter_batches(cols, self.opt.batch_rows):
            if carry is not None:
                b = {c: np.concatenate((carry[c], b[c])) for c in cols}
                carry = None
            ops = b["op"]
            m = len(ops)
            k = m
            if m and int(ops[-1]) in (OP_FREE_BULK, OP_KFREE_BULK):
                aux = b["aux"]
                same = (ops == ops[-1]) & (aux == aux[-1])
                # start of the trailing run of rows of that group
                breaks = np.flatnonzero(~same)
                k = int(breaks[-1]) + 1 if len(breaks) else 0
            # an irq move across the batch's end goes whole to the next one
            # (moves are by allocation row and span less than half a batch)
            cut = True
            while cut:
                cut = False
                j = mv
                while j < len(moves) and moves[j][1] < base + k + self.opt.batch_rows:
                    if moves[j][0][0] < base + k <= moves[j][1]:
                        k = moves[j][0][0] - base
                        cut = True
                    j += 1
            if k < m:
                carry = {c: b[c][k:] for c in cols}
                b = {c: b[c][:k] for c in cols}
            n = len(b["op"])
            if n:
                mv = self._apply_irq_moves(base, b, mv)
                b["flags"] = b["flags"] & np.uint8(~F_IRQ & 0xFF)
                yield base, b
                base += n
        if carry is not None and len(carry["op"]):
            self._apply_irq_moves(base, carry, mv)
            carry["flags"] = carry["flags"] & np.uint8(~F_IRQ & 0xFF)
            yield base, carry

    def _apply_irq_moves(self, base: int, b: dict[str, np.ndarray[Any, Any]], mv: int) -> int:
        """Reorder the batch at ``base``: each allocation of
        ``TraceFacts.irq_moves`` within it before the irq's frees it came
        during, at the first one's row and time (the frees follow in their
        order, each a row later; no other row moves).  Returns the index of
        the first move beyond the batch."""
        moves = self.facts.irq_moves
        end = base + len(b["op"])
        perm: np.ndarray[Any, Any] | None = None
        stamp: list[tuple[int, float]] = []
        while mv < len(moves) and moves[mv][1] < end:
            run, a = moves[mv]
            mv += 1
            if run[0] < base:
                continue  # (cannot happen: batches never split a move)
            if perm is None:
                perm = np.arange(len(b["op"]))
            pos = [r - base for r in run] + [a - base]
            perm[pos] = [a - base] + [r - base for r in run]
            stamp.append((run[0] - base, float(b["ts"][run[0] - base])))
            self.warnings["alloc_during_irq_replayed_first"] += 1
        if perm is not None:
            for c in list(b):
                b[c] = b[c][perm]
            for i, t in stamp:
                b["ts"][i] = t
        return mv

    def _replay_rows(
        self, base: int, cols: dict[str, list[Any]], hp: Any, views: dict[str, Any]
    ) -> None:
        """The replay loop over one batch of pre-resolved events (row ``base + i``)."""
        # the batch's columns; with the compiled hit path (``views``: the
        # arrays it reads) only the rows it leaves to the model are filled in
        ptr_l: list[int] = cols.get("ptr", [])
        ts_l: list[float] = cols["ts"]
        cpu_l: list[int] = cols["cpu"]
        op_l: list[int] = cols["op"]
        cache_l: list[int] = cols["cache"]
        obj_l: list[int] = cols["obj"]
        size_l: list[int] = cols["size"]
        node_l: list[int] = cols["node"]
        flags_l: list[int] = cols["flags"]
        aux_l: list[int] = cols["aux"]
        k = self.kernel
        track_of = self.track_of
        cpu_of = self.cpu_of
        addr = self.addr
        warn = self.warnings
        markers = self.store.meta.get("markers", [])
        trace_rcu = self.rcu_mode == "trace"
        rcu_lost = self.rcu_lost
        rcu_overdue = self.rcu_overdue
        rcu = k.rcu
        drain_by_trace = self.drain_by_trace
        gp_interval = self.opt.gp_interval
        next_gp = self.next_gp
        early = self.facts.early
        has_prefill = self.has_prefill
        bulk_pool = self.bulk_pool
        sheaves = self.sheaves
        policy_states = self.policy_states
        warm_first = self.opt.warm_on_first_use
        warmed = self.warmed
        lockstep = self.opt.lockstep
        ntracks = len(track_of)
        n = len(op_l)
        i = 0
        hp_from = 0  # the hit path's next row (the one before went to the model)
        early_rows: list[int] = []  # rows of this batch with pre-trace work
        if hp is not None:
            hp.bind(views or cols, cols if views else None, addr, self.rcu_addr, sheaves)
            if early:
                early_rows = sorted(r - base for r in early if base <= r < base + n)
        e = 0
        while i < n:
            if hp is not None and i >= hp_from:
                while e < len(early_rows) and early_rows[e] < i:
                    e += 1
                # a tick only drains the classic kvfree_rcu batches when RCU
                # sheaves complete from the trace: with none pending (the hit
                # path adds none) the hit path moves next_gp past it itself
                gp_step = (
                    gp_interval if trace_rcu and (drain_by_trace or not k.kvfree_rcu_cpu) else 0.0
                )
                i = hp.run(i, early_rows[e] if e < len(early_rows) else n, next_gp, gp_step)
                next_gp = hp.gp_tick()
                if i >= n:
                    break
                hp_from = i + 1
                # row i goes to the full model: the hit path forgets what that
                # may change (see slubsim.hitpath): an event of one cache on one
                # CPU changes that cache's counts and that CPU's sheaves; gp
                # ticks, pre-trace frees, markers with a hook, bulk, large
                # kmalloc and flagged frees may reach any cache
                op = op_l[i]
                if ts_l[i] >= next_gp or (e < len(early_rows) and early_rows[e] == i):
                    hp.invalidate(-1, -1)
                elif (op in _OWN_CACHE_OPS and not (op == OP_FREE and flags_l[i])) or (
                    op == OP_RCU_SHEAF and trace_rcu
                ):
                    hp.invalidate(cache_l[i], cpu_of[cpu_l[i]])
                elif op != OP_MARKER or self.opt.on_marker is not None:
                    hp.invalidate(-1, -1)
            op = op_l[i]
            c = cache_l[i]
            cpu = cpu_of[cpu_l[i]]
            ts = ts_l[i]
            if ts >= next_gp:
                if trace_rcu:
                    if not drain_by_trace:
                        k._drain_kvfree_rcu()
                else:
                    k.synchronize_rcu(drain_kvfree=not drain_by_trace)
                next_gp = ts + gp_interval
            if early and base + i in early:
                for e_cache, e_obj, e_cpu in early.pop(base + i):
                    a = addr[e_obj]
                    et = track_of[e_cache] if 0 <= e_cache < ntracks else None
                    if a and et is not None:
                        addr[e_obj] = 0
                        # a plain free on the reusing CPU, not a kfree_rcu: its
                        # rcu sheaf would wait for a completion the trace never
                        # shows (see F_EARLY)
                        et.model.replay_free(a, cpu_of[e_cpu])
                if base + i == self.kprobe_row:
                    self._end_prefilled_sessions()
            tr = track_of[c] if 0 <= c < ntracks else None
            if op <= OP_FREE:  # OP_ALLOC (0) or OP_FREE (1): the bulk of every trace
                if tr is None:
                    i += 1
                    continue
                s = tr.model
                if warm_first and (c, cpu) not in warmed:
                    warmed.add((c, cpu))
                    self._silent_warm(s, cpu)
                fl = flags_l[i]
                if op == OP_ALLOC:
                    if fl & F_FAILED:
                        warn["traced_failed_alloc"] += 1
                    elif fl & F_PREFILLED:
                        a = self._prefilled_alloc(s, c, cpu, base + i)
                        if a:
                            addr[obj_l[i]] = a
                            if lockstep:
                                self._lockstep(c, s, a, ptr_l[i], ts, cpu, "prefilled")
                        else:
                            warn["model_alloc_failed"] += 1
                    else:
                        a = s.replay_alloc(cpu, node_l[i])
                        if a:
                            addr[obj_l[i]] = a
                            if lockstep:
                                self._lockstep(c, s, a, ptr_l[i], ts, cpu, "alloc")
                        else:
                            warn["model_alloc_failed"] += 1
                else:
                    if not fl:  # the common case: a traced object freed
                        o = obj_l[i]
                        a = addr[o]
                        if a:
                            addr[o] = 0
                            s.replay_free(a, cpu)
                        else:
                            warn["free_without_model_object"] += 1
                    else:
                        a = self._resolve(obj_l[i], fl, size_l[i], cpu, s)
                        if a:
                            if fl & F_RCU_COMPLETION:
                                k.kfree_unchecked(a, cpu)
                            else:
                                s.replay_free(a, cpu)
            elif op == OP_MARKER:
                if self.opt.on_marker is not None:
                    self.next_gp = next_gp
                    rcu.now = ts  # (Rcu.queued_at of sheaves a hook submits)
                    self.opt.on_marker(markers[aux_l[i]], self)
                i += 1
                continue
            elif op == OP_LARGE_ALLOC:
                a = k.kmalloc(max(size_l[i], 8193), cpu=cpu)
                if a:
                    addr[obj_l[i]] = a
                i += 1
                continue
            elif op == OP_LARGE_FREE:
                a = addr[obj_l[i]]
                if a:
                    k.kfree(a, cpu=cpu)
                    addr[obj_l[i]] = 0
                else:
                    warn["large_free_without_alloc"] += 1
                i += 1
                continue
            elif op == OP_RCU_SHEAF:
                if trace_rcu:
                    lost = rcu_lost.get(base + i, 0) if rcu_lost else 0
                    if lost < 0:
                        warn["rcu_sheaf_event_before_trace"] += 1
                    elif tr is not None:
                        for _ in range(lost):  # the completions the trace lost
                            if k.rcu.run_one(tr.model, cpu=cpu, strict=True):
                                warn["rcu_sheaf_lost_event_completed"] += 1
                        if not k.rcu.run_one(tr.model, cpu=cpu):
                            warn["rcu_sheaf_event_without_model_sheaf"] += 1
                        if rcu_overdue:
                            bound = rcu_overdue.get(base + i)
                            if bound is not None:
                                ran = rcu.run_overdue(tr.model, cpu, bound)
                                if ran:  # (sheaves, like the lost ones above)
                                    warn["rcu_sheaf_overdue_completed"] += ran
                else:
                    k.synchronize_rcu(drain_kvfree=not drain_by_trace)
                i += 1
                continue
            elif tr is None:  # filtered out or unresolved cache
                i += 1
                continue
            elif op == OP_KFREE_RCU:
                a = self._resolve(obj_l[i], flags_l[i], size_l[i])
                if a and hp is not None and not tr.model.is_live(a):
                    # not this cache's live object after all: Kernel.kfree_rcu
                    # acts on whichever cache holds it (or reports it), and the
                    # hit path forgot only this cache on this CPU
                    hp.invalidate(-1, -1)
                if a:
                    rcu.now = ts  # (Rcu.queued_at of the sheaf it may submit)
                    k.kfree_rcu(a, cpu=cpu)
                    if a in k.kvfree_rcu_cpu:
                        # in the classic batch: the traced kernel's later
                        # kfree_bulk of it (F_RCU_COMPLETION) frees it there
                        self.rcu_addr[obj_l[i]] = a
                    elif self.rcu_addr:
                        self.rcu_addr.pop(obj_l[i], None)  # an earlier lifetime's
            elif op in (OP_FREE_BULK, OP_KFREE_BULK):
                s = tr.model
                group = aux_l[i]
                j = i
                objs: list[int] = []
                done: list[int] = []  # delayed frees of kfree_rcu'd objects
                while j < n and op_l[j] == op and aux_l[j] == group:
                    cj = cache_l[j]
                    tj = track_of[cj] if 0 <= cj < ntracks else None
                    if tj is not None:
                        fj = flags_l[j]
                        a = self._resolve(obj_l[j], fj, size_l[j], cpu, tj.model)
                        if a:
                            (done if fj & F_RCU_COMPLETION else objs).append(a)
                    j += 1
                if objs:
                    if op == OP_FREE_BULK:
                        s.free_bulk(objs, cpu)
                    else:
                        k.kfree_bulk(objs, cpu=cpu)
                if done:
                    k.kfree_bulk_unchecked(done, cpu)
                for jj in range(i, j):
                    cj = cache_l[jj]
                    t2 = track_of[cj] if 0 <= cj < ntracks else None
                    if t2 is not None:
                        self._sample(t2, ts_l[jj])
                i = j
                continue
            elif op == OP_ALLOC_BULK:
                if not flags_l[i] & F_FAILED:
                    got = tr.model.alloc_bulk(size_l[i], cpu)
                    if len(got) != size_l[i]:
                        warn["model_alloc_failed"] += 1
                    bulk_pool[base + i] = got
            elif op == OP_PREFILL:
                if not has_prefill:
                    warn["prefill_translated_to_plain_allocs"] += 1
                elif not flags_l[i] & F_FAILED:
                    sh = tr.model.prefill_sheaf(size_l[i], cpu)
                    if sh is not None:
                        sheaves[aux_l[i]] = sh
                    else:
                        warn["model_prefill_failed"] += 1
            elif op == OP_ALLOC_FROM_SHEAF:
                s = tr.model
                sh2 = sheaves.get(aux_l[i])
                if flags_l[i] & F_FAILED:
                    warn["traced_failed_alloc"] += 1
                elif sh2 is None:
                    if has_prefill:
                        warn["alloc_from_unknown_sheaf"] += 1
                    a = s.replay_alloc(cpu, node_l[i])
                    if a:
                        addr[obj_l[i]] = a
                        if lockstep:
                            self._lockstep(c, s, a, ptr_l[i], ts, cpu, "alloc_from_sheaf")
                else:
                    a = s.alloc_from_sheaf(sh2, cpu)
                    if a:
                        addr[obj_l[i]] = a
                        if lockstep:
                            self._lockstep(c, s, a, ptr_l[i], ts, cpu, "alloc_from_sheaf")
                    else:
                        warn["model_sheaf_empty"] += 1
            elif op == OP_RETURN_SHEAF:
                sh2 = sheaves.pop(aux_l[i], None)
                if sh2 is not None:
                    if lockstep and size_l[i] >= 0:  # the kprobe's size: the kernel's sheaf's
                        ls = self.lockstep.get(c)
                        if ls is None:
                            ls = self.lockstep[c] = CacheLockstep()
                        ls.check_sheaf(len(sh2.objects), size_l[i], ts, cpu)
                    tr.model.return_sheaf(sh2, cpu)
                elif has_prefill:
                    warn["return_of_unknown_sheaf"] += 1
            elif op == OP_REFILL_SHEAF:
                warn["refill_sheaf_skipped"] += 1
            # the common case of _sample inlined: no sheaf, slab or page changed
            sm = tr.model
            last = tr.last_ts
            if (
                last >= 0.0
                and sm.nr_pages == tr.last_pages
                and len(sm.slabs) == tr.last_slabs
                and sm.nr_sheaves == tr.last_sheaves
            ):
                cached = sm.inuse_total - sm.nlive
                tr.area += tr.last_cached * (ts - last)
                tr.last_ts = ts
                tr.last_cached = cached
                if cached > tr.cached_peak:
                    tr.cached_peak = cached
            else:
                self._sample(tr, ts)
            if policy_states:
                ps = policy_states.get(c)
                if ps is not None:
                    ps.step(tr.model)
            i += 1
        self.next_gp = next_gp

    def _hit_path(self) -> tuple[Any, bool]:
        """The hit path (slubsim.hitpath) over this replay's caches, or None:
        disabled, no cache it can take (7.3 sheaves, 6.12 cpu slabs: a layer's
        ``hit_kind``), or a per-event hook (lockstep, first-use warming,
        capacity policies) that it would bypass; and whether it is compiled."""
        if (
            self.opt.hit_path is False
            or self.opt.lockstep
            or self.opt.warm_on_first_use
            or self.policy_states
        ):
            return None, False
        kinds = {getattr(tr.model.layer, "hit_kind", HIT_NONE) for tr in self.tracks.values()}
        kinds.discard(HIT_NONE)
        if not kinds:
            return None, False
        hitpath = importlib.import_module("slubsim.hitpath")
        if not hitpath.COMPILED and self.opt.hit_path is None:
            return None, False
        skip_markers = self.opt.on_marker is None
        hp = hitpath.HitPath(
            self.track_of,
            self.cpu_of,
            self.machine.nr_cpus,
            skip_markers,
            self.has_prefill,
            self.drain_by_trace,
            # one loop per replay: the 6.12 cpu slabs' when no cache has 7.3
            # sheaves (a generation's caches share one layer class)
            classic=HIT_SHEAVES not in kinds,
        )
        return hp, bool(hitpath.COMPILED)

    def _lockstep(
        self, c: int, s: KmemCache, a: int, k: int, ts: float, cpu: int, what: str
    ) -> None:
        ls = self.lockstep.get(c)
        if ls is None:
            ls = self.lockstep[c] = CacheLockstep()
        ls.check(s.slab_of(a), a, k, ts, cpu, what)

    def _resolve(
        self, o: int, fl: int, size: int, cpu: int = 0, cache: KmemCache | None = None
    ) -> int:
        """Model address for the object ``o`` of ``cache`` freed on ``cpu``
        with ingest flags ``fl`` (0 = nothing to free); ``size`` is the bound
        alloc_bulk row for ``F_BULK_BOUND``."""
        if fl & F_RCU_COMPLETION:
            # the traced kernel freed a kfree_rcu'd object from its classic
            # batch now: if the model put it in its own batch, free it here too
            a = self.rcu_addr.pop(o, 0)
            if a and self.kernel.kvfree_rcu_take(a):
                return a
            # Decision: the model put this one in an rcu sheaf (it placed the
            # object on another node than the kernel did, or the object's
            # model address was batched under another trace object), so one
            # of the model's own batched objects of the cache goes instead,
            # the longest-queued first: the model's batches drain when the
            # kernel's do, rather than keeping objects the kernel never batched
            # until the end of the trace
            if cache is not None:
                a = self.kernel.kvfree_rcu_take_oldest(cache, cpu)
                if a:
                    self.warnings["rcu_completion_substituted"] += 1
                    return a
            self.warnings["rcu_completion_skipped"] += 1
            return 0
        if fl & F_EARLY:
            return 0  # freed already, at the row where the kprobes started
        if fl & F_BULK_BOUND:
            pool = self.bulk_pool.get(size)
            if pool:
                return pool.pop()
            self.warnings["bulk_bound_free_without_object"] += 1
            return 0
        a = self.addr[o]
        if a:
            self.addr[o] = 0
            return a
        if fl & F_PRETRACE:
            self.warnings["pretrace_free_ignored"] += 1
        elif fl & F_IMPLICIT:
            self.warnings["implicit_free_without_object"] += 1
        else:
            self.warnings["free_without_model_object"] += 1
        return 0

    def _prefilled_alloc(self, s: KmemCache, c: int, cpu: int, row: int) -> int:
        """An allocation the ingester inferred came from a prefilled sheaf
        (``F_PREFILLED``: before the lab kprobes, at a call site that used
        prefilled sheaves once they ran).  Models the caller's
        kmem_cache_prefill_sheaf / kmem_cache_alloc_from_sheaf /
        kmem_cache_return_sheaf session, whose calls the trace does not show:
        the sessions are the runs of such allocations of the cache on one CPU
        with no other event of that CPU between them
        (:meth:`TraceFacts._segment_prefilled`); each takes a sheaf at its
        first allocation and gives it back after its last.  Its prefill count
        is the most common one of the probed sessions with as many
        allocations (else of all of them), and never below the session's
        allocations (decision: once the probes show them, a session never
        allocates more than it prefilled -- boot-mixed-4cpu maple_node: counts
        3, 5 and 7, 1 to 3 allocations).  A generation without the prefill API allocates
        plainly, as for a traced prefill."""
        if not self.has_prefill:
            self.warnings["prefill_translated_to_plain_allocs"] += 1
            return s.replay_alloc(cpu, NUMA_NO_NODE)
        key = (c, cpu)
        sh = self.pf_sessions.get(key)
        n = self.facts.pf_first.get(row)
        if n is not None and sh is not None:  # (cannot happen: the last one ended it)
            del self.pf_sessions[key]
            s.return_sheaf(sh, cpu)
            sh = None
        if sh is None:
            count = self.pf_count.get(c, PREFILL_DEFAULT)
            if n is not None:
                count = self.pf_count_by_allocs.get(c, {}).get(n, count)
            sh = s.prefill_sheaf(max(count, n or 0), cpu)
            if sh is None:
                self.warnings["model_prefill_failed"] += 1
                return s.replay_alloc(cpu, NUMA_NO_NODE)
            self.pf_sessions[key] = sh
        a = s.alloc_from_sheaf(sh, cpu)
        if row in self.facts.pf_last:
            del self.pf_sessions[key]
            s.return_sheaf(sh, cpu)
        if not a:
            self.warnings["model_sheaf_empty"] += 1
            a = s.replay_alloc(cpu, NUMA_NO_NODE)
        return a

    def _end_prefilled_sessions(self) -> None:
        """Give back every inferred prefilled sheaf still out (the lab kprobes
        start here: from now on the trace shows the sessions)."""
        for (c, cpu), sh in self.pf_sessions.items():
            tr = self.track_of[c]
            if tr is not None:
                tr.model.return_sheaf(sh, cpu)
        self.pf_sessions.clear()

    def _rcu_completions(self) -> tuple[dict[int, int], dict[int, float]]:
        """Per traced rcu_free_sheaf row, the completions the trace lost just
        before it on its CPU, or -1 for one of a sheaf submitted before the
        trace (:func:`slubsim.rcu_align.missed_completions`; rows without
        either are left out) -- single-node machines only: there every
        ``capacity``-th kfree_rcu of a cache on a CPU submits its rcu sheaf;
        and the time before which every sheaf of its CPU had run
        (:func:`slubsim.rcu_align.overdue_bounds`; rows without one left out)."""
        caps = {
            cid: tr.model.sheaf_capacity
            for cid, tr in self.tracks.items()
            if tr.model.sheaf_capacity and isinstance(tr.model.layer, SheavesLayer)
        }
        if not caps:
            return {}, {}
        wanted = np.array(sorted(caps), dtype=np.int64)
        # the submissions only feed the alignment, which is single-node only
        align = self.machine.nr_nodes == 1
        filled: dict[tuple[int, int], int] = defaultdict(int)
        subs: dict[tuple[int, int], list[float]] = defaultdict(list)
        comps: dict[tuple[int, int], list[float]] = defaultdict(list)
        rows: dict[tuple[int, int], list[int]] = defaultdict(list)
        base = 0
        for b in self.store.iter_batches(("ts", "cpu", "op", "cache"), self.opt.batch_rows):
            op, cache = b["op"], b["cache"]
            ops = ((op == OP_KFREE_RCU) | (op == OP_RCU_SHEAF)) if align else (op == OP_RCU_SHEAF)
            sel = np.flatnonzero(ops & np.isin(cache, wanted))
            for j, o, c, cpu, ts in zip(
                sel.tolist(),
                op[sel].tolist(),
                cache[sel].tolist(),
                b["cpu"][sel].tolist(),
                b["ts"][sel].tolist(),
                strict=True,
            ):
                key = (c, cpu)
                if o == OP_KFREE_RCU:
                    filled[key] += 1
                    if filled[key] % caps[c] == 0:
                        subs[key].append(ts)
                else:
                    comps[key].append(ts)
                    rows[key].append(base + j)
            base += len(op)
        out: dict[int, int] = {}
        overdue: dict[int, float] = {}
        for key, done in comps.items():
            for r, bound in zip(rows[key], overdue_bounds(done), strict=True):
                if bound is not None:
                    overdue[r] = bound
            if not align:
                continue
            for r, lost in zip(rows[key], missed_completions(subs[key], done), strict=True):
                if lost:
                    out[r] = lost
        return out, overdue

    def _plan_pretrace(self) -> PretracePlan:
        """The pre-trace slabs of every replayed non-debug cache (slubsim.pretrace)."""
        geometry = {
            cid: (tr.model.order, tr.model.size, tr.model.objects)
            for cid, tr in self.tracks.items()
            if not tr.model.debug
        }
        recorded = str(self.store.meta.get("kernel_version") or "")
        before: dict[int, set[int]] = {}
        partial: dict[int, dict[int, int]] = {}
        sheaves: dict[int, dict[int, tuple[int, int]]] = {}
        for cid in geometry:
            info = self.store.caches[cid]
            names = [n for n in (info.get("sysfs_dir"), info["name"]) if n]
            for n in names:
                if n in self.opt.pretrace_cpus:
                    before[cid] = set(self.opt.pretrace_cpus[n])
                    break
            for n in names:
                if n in self.opt.pretrace_cpu_partial:
                    partial[cid] = dict(self.opt.pretrace_cpu_partial[n])
                    break
            model = self.tracks[cid].model
            cap = model.sheaf_capacity
            if cap and isinstance(model.layer, SheavesLayer):
                for n in names:
                    if n in self.opt.pretrace_sheaves:
                        sheaves[cid] = {
                            cpu: ((k - cap, cap) if k > cap else (k, 0))
                            for cpu, k in self.opt.pretrace_sheaves[n].items()
                            if 0 < k <= 2 * cap
                        }
                        break
        return plan_pretrace(
            self.store,
            geometry,
            self.opt.batch_rows,
            per_cpu_slab=recorded in CPU_SLAB_GENERATIONS,
            cpus_before=before,
            cpu_partial_before=partial,
            unseen_cpu_partial=self.opt.pretrace_cpu_partial_unseen,
            sheaves_before=sheaves,
            remote_free=self._remote_free_test(),
        )

    def _install_pretrace(self, p: PretracePlan) -> None:
        """Build the planned pre-trace slabs in the model (no counter moves):
        partial ones on their node's partial list in order of first use, each
        CPU's first-allocation slab as its cpu slab where the generation has
        one; pair them for the lockstep check; bind the objects first seen as
        frees to their model addresses."""
        nobj = 0
        for cid, slabs in p.slabs.items():
            tr = self.tracks[cid]
            s = tr.model
            ls = None
            if self.opt.lockstep:
                ls = self.lockstep.setdefault(cid, CacheLockstep())
            by_kbase: dict[int, Slab] = {}
            for ps in slabs:
                cpu = self.cpu_of[ps.cpu]
                nid = (
                    self.machine.cpu_mem_node[cpu]
                    if ps.unseen
                    else self._pretrace_node(ps.kbase, cpu)
                )
                slab = s.adopt_slab(cpu, nid, ps.free_order, ps.in_sheaf)
                if slab is None:
                    self.warnings["pretrace_slab_without_memory"] += 1
                    continue
                by_kbase[ps.kbase] = slab
                if ls is not None and not ps.unseen:
                    ls.pair(slab, ps.kbase)
                for i, o in ps.bound:
                    if i < slab.objects and not self.addr[o]:
                        self.addr[o] = slab.object_at(i)
                        nobj += 1
            if cid in p.sheaves:
                self._install_sheaves(s, by_kbase, p.sheaves[cid])
            taken: set[int] = set()
            keep = {ps.kbase: ps.slab_keep for ps in slabs}
            for tcpu, kbase in sorted(p.cpu_slab.get(cid, {}).items()):
                slab_or_none = by_kbase.get(kbase)
                if (
                    slab_or_none is not None
                    and kbase not in taken
                    and s.layer.install_cpu_slab(
                        self.cpu_of[tcpu], slab_or_none, keep.get(kbase, 0)
                    )
                ):
                    taken.add(kbase)
            for tcpu, chain in sorted(p.cpu_partial.get(cid, {}).items()):
                for kbase in reversed(chain):  # the head is pushed last
                    slab_or_none = by_kbase.get(kbase)
                    if (
                        slab_or_none is not None
                        and kbase not in taken
                        and s.layer.install_cpu_partial(self.cpu_of[tcpu], slab_or_none)
                    ):
                        taken.add(kbase)
            for ps in slabs:
                slab_or_none = by_kbase.get(ps.kbase)
                if slab_or_none is None or ps.kbase in taken or not slab_or_none.freelist:
                    continue
                n = s.nodes[slab_or_none.nid]
                assert n is not None
                n.add_partial(slab_or_none, True)
        self.pretrace_objects += nobj

    def _remote_free_test(self) -> RemoteFree | None:
        """For slubsim.pretrace.discover_sheaves: whether a traced free on a
        trace CPU bypasses its sheaves (slubsim.pretrace.remote_free_test,
        with the model CPU's nearest node with memory)."""
        m = self.machine
        if m.nr_nodes < 2:
            return None
        return remote_free_test([m.cpu_mem_node[c] for c in self.cpu_of], self.mem_ranges)

    def _pretrace_node(self, kbase: int, cpu: int) -> int:
        """Node of a rebuilt pre-trace slab: where the kernel slab's memory is
        (its pointer and the bundle's node memory map) when that is known and
        modelled, else the node of the CPU that first used it.  Decides which
        frees are remote (7.x ``can_free_to_pcs``, 6.12 ``node_match``)."""
        if self.mem_ranges:
            nid = pointer_node(kbase, self.mem_ranges)
            m = self.machine
            if 0 <= nid < m.nr_nodes and m.node_has_memory[nid]:
                return nid
        return self.machine.cpu_mem_node[cpu]

    def _install_sheaves(
        self,
        s: KmemCache,
        by_kbase: dict[int, Slab],
        per_cpu: dict[int, tuple[list[int], list[int]]],
    ) -> None:
        """Put the objects found in the CPUs' sheaves at the start
        (pretrace.discover_sheaves) into ``s``'s sheaves; what a layer cannot
        take goes back to its slab's freelist."""
        span = PAGE_SIZE << s.order

        def addr(k: int) -> int:
            kb = k & ~(span - 1)
            m = by_kbase.get(kb)
            return m.base + (k - kb) if m is not None else 0

        for tcpu, (main, spare) in sorted(per_cpu.items()):
            ma = [addr(k) for k in main]
            sa = [addr(k) for k in spare]
            if all(ma) and all(sa) and s.layer.install_sheaves(self.cpu_of[tcpu], ma, sa):
                continue
            for a in ma + sa:  # not taken: back to its slab, free
                if a:
                    slab = s.slab_of(a)
                    slab.freelist.insert(0, a)
                    slab.inuse -= 1
                    s.inuse_total -= 1
            self.warnings["pretrace_sheaf_not_installed"] += 1

    def _materialize(self, skip_caches: set[int] | None = None) -> None:
        """Allocate the objects freed before they are allocated in the trace,
        on the CPU that frees them, then empty every per-CPU cache and barn
        (``skip_caches``: caches whose pre-trace slabs were rebuilt)."""
        n = 0
        for c, o, cpu in self.facts.pretrace:
            tr = self.tracks.get(c)
            if tr is None or self.addr[o] or (skip_caches is not None and c in skip_caches):
                continue
            a = tr.model.alloc(self.cpu_of[cpu])
            if a:
                self.addr[o] = a
                n += 1
        self.pretrace_objects += n
        if n:
            for tr in self.tracks.values():
                s = tr.model
                s.flush_all()
                s.layer.submit_partial_rcu_sheaves(0)
            self.kernel.rcu.barrier()
            for tr in self.tracks.values():
                tr.model.layer.shrink_node_caches(0)

    def _warm_sheaves(self, fraction: float) -> None:
        """Start every CPU's main sheaf ``fraction`` full (a steady state the
        kernel had when tracing began, which the trace does not show): refill
        it through the normal path, then hold the objects handed out as
        pre-existing live objects."""
        held = 0
        for tr in self.tracks.values():
            s = tr.model
            cap = s.sheaf_capacity
            if not cap:
                continue
            take = cap - round(cap * fraction)
            for cpu in self.machine.online_cpus():
                for _ in range(max(take, 0) if fraction < 1 else 0):
                    if s.alloc(cpu):
                        held += 1
                if fraction >= 1:
                    objs = [s.alloc(cpu) for _ in range(cap)]
                    for a in objs:
                        if a:
                            s.free(a, cpu)
        self.warm_objects = held

    def sync_sheaf_occupancy(
        self, s: KmemCache, occupancy: dict[int, int], bottom: bool = True
    ) -> int:
        """Set ``s``'s per-CPU sheaves to the kernel's occupancy (CPU -> objects);
        see :meth:`SheavesLayer.sync_cpu_occupancy`.  0 without sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer):
            return 0
        return layer.sync_cpu_occupancy(occupancy, bottom)

    def sync_sheaf_count(self, s: KmemCache, want: int) -> int:
        """Top ``s``'s sheaf structs up to the kernel's count; see
        :meth:`SheavesLayer.sync_sheaf_count`.  0 without sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer):
            return 0
        return layer.sync_sheaf_count(want)

    def sync_node_partial(self, s: KmemCache, want: dict[int, tuple[int, int, int]]) -> int:
        """Shape ``s``'s node partial lists (node -> (partial slabs, free
        objects, all slabs)); see :meth:`SheavesLayer.sync_node_partial`
        (objects no traced pointer is bound to are the made-up users).
        0 without sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer):
            return 0
        bound = set(self.addr)
        return layer.sync_node_partial(want, lambda a: a not in bound)

    def rcu_pending(self, s: KmemCache, cpu: int) -> int:
        """Objects ``cpu`` freed by kfree_rcu that wait for a grace period in
        ``s``; see :meth:`SheavesLayer.rcu_pending`.  0 without sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer):
            return 0
        return layer.rcu_pending(cpu)

    def cpu_sheaf_objects(self, s: KmemCache, cpu: int) -> int:
        """Objects in ``cpu``'s main and spare sheaves of ``s``; -1 without
        sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer) or not layer.has_sheaves:
            return -1
        return layer.cpu_sheaf_objects(cpu)

    def top_up_rcu_free(self, s: KmemCache, cpu: int, n: int) -> int:
        """Put ``n`` objects into ``cpu``'s ``rcu_free`` sheaf of ``s``; see
        :meth:`SheavesLayer.top_up_rcu_free`.  0 without sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer):
            return 0
        return layer.top_up_rcu_free(cpu, n)

    def sync_barn_full(self, s: KmemCache, full: dict[int, int]) -> int:
        """Set ``s``'s barns to ``full[nid]`` full sheaves; see
        :meth:`SheavesLayer.sync_barn_full`.  0 without sheaves."""
        layer = s.layer
        if not isinstance(layer, SheavesLayer):
            return 0
        return layer.sync_barn_full(full)

    def _silent_warm(self, s: KmemCache, cpu: int) -> None:
        """Fill ``cpu``'s per-CPU cache of ``s`` as if before the trace: one
        allocation and its free, whose counter increments are booked as
        pre-trace activity (subtracted from every reported delta)."""
        saved = [list(row) for row in s.stat]
        locks = (s.list_lock, s.barn_lock)
        a = s.alloc(cpu)
        if a:
            s.free(a, cpu)
        hidden = self.hidden.setdefault(id(s), [[0] * len(row) for row in s.stat])
        for c, (row, old) in enumerate(zip(s.stat, saved, strict=True)):
            h = hidden[c]
            for i, (v, o) in enumerate(zip(row, old, strict=True)):
                if v != o:
                    h[i] += v - o
        s.list_lock, s.barn_lock = locks

    def model_stat(self, s: KmemCache, cpu: int, idx: int) -> int:
        """A counter as the traced workload moved it (pre-trace warm-up removed)."""
        h = self.hidden.get(id(s))
        return s.stat[cpu][idx] - (h[cpu][idx] if h is not None else 0)

    def _take_baseline(self) -> None:
        for cid, tr in self.tracks.items():
            self.baseline[cid] = [list(row) for row in tr.model.stat]
            tr.model.list_lock = 0
            tr.model.barn_lock = 0
            tr.model.pages_peak = tr.model.nr_pages
            tr.model.slabs_peak = len(tr.model.slabs)

    @staticmethod
    def _sample(tr: CacheTrack, ts: float) -> None:
        """The memory curve after one event of ``tr``'s cache at ``ts``.

        Objects cached (in slabs' inuse but not live) change with nearly every
        event and are integrated every time; sheaves, slabs and pages change
        only on slow paths, so their integrals are closed at change points
        (:meth:`CacheTrack.close_segment`) -- the same sums, far fewer steps."""
        s = tr.model
        cached = s.inuse_total - s.nlive
        last = tr.last_ts
        sheaves = s.nr_sheaves
        slabs = len(s.slabs)
        pages = s.nr_pages
        if last < 0.0:  # the cache's first event opens every integral
            tr.seg_ts = ts
        else:
            tr.area += tr.last_cached * (ts - last)
            if sheaves == tr.last_sheaves and slabs == tr.last_slabs and pages == tr.last_pages:
                tr.last_ts = ts
                tr.last_cached = cached
                if cached > tr.cached_peak:
                    tr.cached_peak = cached
                return
            tr.close_segment(ts)
        tr.last_ts = ts
        tr.last_cached = cached
        tr.last_sheaves = sheaves
        tr.last_slabs = slabs
        tr.last_pages = pages
        if cached > tr.cached_peak:
            tr.cached_peak = cached
        if sheaves > tr.sheaves_peak:
            tr.sheaves_peak = sheaves

    # --------------------------------------------------------------- results
    def counters_delta(self, tr: CacheTrack) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        s = tr.model
        base = self.baseline.get(tr.store_id)
        online = self.machine.online_cpus()
        totals: dict[str, int] = {}
        per_cpu: dict[str, dict[str, int]] = {}
        for idx, item in enumerate(s.stat_items):
            tot = 0
            pc: dict[str, int] = {}
            for c in online:
                v = self.model_stat(s, c, idx) - (base[c][idx] if base else 0)
                tot += v
                if v:
                    pc[str(c)] = v
            totals[item] = tot
            per_cpu[item] = pc
        return totals, per_cpu

    def result(self) -> dict[str, Any]:
        meta = self.store.meta
        span = self.facts.ts_last - self.facts.ts_first
        caches: dict[str, Any] = {}
        for cid, tr in sorted(self.tracks.items(), key=lambda kv: -sum(kv[1].events.values())):
            info = self.store.caches[cid]
            s = tr.model
            counters, per_cpu = self.counters_delta(tr)
            ev = dict(tr.events)
            ops = sum(ev.values())
            cached_final = s.inuse_total - s.nlive
            g = counters.get
            allocs = g("alloc_fastpath", 0) + g("alloc_slowpath", 0)
            frees = g("free_fastpath", 0) + g("free_slowpath", 0)
            # a hit is served by the CPU's own sheaves / array / cpu slab without
            # the barn, the slab lists or the slow path; rates are per traced op
            n_alloc = ev.get("alloc", 0) + ev.get("alloc_bulk", 0)
            n_free = ev.get("free", 0) + ev.get("free_bulk", 0) + ev.get("kfree_rcu", 0)
            if "alloc_cpu_sheaf" in counters and s.sheaf_capacity:
                # 6.18: the classic counters also count sheaf refills and flushes
                alloc_miss = max(n_alloc - g("alloc_cpu_sheaf", 0), 0)
                free_miss = max(n_free - g("free_cpu_sheaf", 0) - g("free_rcu_sheaf", 0), 0)
            else:
                alloc_miss = g("alloc_slowpath", 0)
                free_miss = g("free_slowpath", 0)
            alloc_miss += g("barn_get", 0) + g("barn_get_fail", 0)
            free_miss += g("barn_put", 0) + g("barn_put_fail", 0) + g("free_rcu_sheaf_fail", 0)
            tr.close_segment(tr.last_ts)  # the integrals run to the cache's last event
            duration = max(tr.last_ts - self.facts.ts_first, 0.0) if self.store.n else 0.0
            sheaf_bytes = (
                kmalloc_size_roundup(sheaf_struct_size(s.sheaf_capacity))
                if (s.sheaf_capacity)
                else 0
            )
            caches[info["name"]] = {
                "aliases": sorted(set(info.get("aliases") or []) | set(s.aliases) - {info["name"]}),
                "sysfs_dir": info.get("sysfs_dir"),
                "model_cache": s.name,
                "policy": {
                    "name": self.opt.policy,
                    "start_capacity": self.policy_states[cid].start_capacity
                    if cid in self.policy_states
                    else s.sheaf_capacity,
                    "final_capacity": s.sheaf_capacity,
                    "changes": self.policy_states[cid].changes if cid in self.policy_states else 0,
                },
                "geometry": {
                    "object_size": s.object_size,
                    "slab_size": s.size,
                    "order": s.order,
                    "objs_per_slab": s.objects,
                    "sheaf_capacity": s.sheaf_capacity,
                    "min_partial": s.min_partial,
                    "imposed_from_sysfs": self.imposed.get(info["name"], []),
                },
                "events": ev,
                **(
                    {"lockstep": (self.lockstep.get(cid) or CacheLockstep()).result()}
                    if self.opt.lockstep
                    else {}
                ),
                "counters": counters,
                "counters_per_cpu": per_cpu,
                "memory": {
                    "slabs_peak": s.slabs_peak,
                    "slabs_final": len(s.slabs),
                    "pages_peak": s.pages_peak,
                    "pages_final": s.nr_pages,
                    "cached_objects_peak": tr.cached_peak,
                    "cached_objects_final": cached_final,
                    "cached_bytes_peak": tr.cached_peak * s.size,
                    "cached_bytes_final": cached_final * s.size,
                    "cached_bytes_mean": (tr.area / duration * s.size) if duration > 0 else 0.0,
                    "slabs_mean": (tr.slab_area / duration)
                    if duration > 0
                    else float(len(s.slabs)),
                    "pages_mean": (tr.page_area / duration) if duration > 0 else float(s.nr_pages),
                    "sheaves_peak": tr.sheaves_peak,
                    "sheaf_bytes_peak": tr.sheaves_peak * sheaf_bytes,
                    "sheaf_bytes_mean": (tr.sheaf_area / duration * sheaf_bytes)
                    if duration > 0
                    else 0.0,
                    "live_objects_final": s.nlive,
                },
                "metrics": {
                    "ops": ops,
                    "alloc_hit_rate": max(1.0 - _ratio(alloc_miss, n_alloc), 0.0)
                    if n_alloc
                    else 0.0,
                    "free_hit_rate": max(1.0 - _ratio(free_miss, n_free), 0.0) if n_free else 0.0,
                    "alloc_fastpath_share": _ratio(g("alloc_fastpath", 0), allocs),
                    "free_fastpath_share": _ratio(g("free_fastpath", 0), frees),
                    "barn_lock_per_1k": _ratio(s.barn_lock * 1000, ops),
                    "list_lock_per_1k": _ratio(s.list_lock * 1000, ops),
                },
            }
        ingest_warn = meta.get("warnings", [])
        replay_warn = [
            {"kind": k, "count": v, "explained": k in _EXPLAINED_REPLAY, "source": "replay"}
            for k, v in sorted(self.warnings.items())
        ]
        return {
            "kernel": self.generation.name,
            "trace": {
                "source": meta.get("source"),
                "recorded_kernel": meta.get("kernel_version"),
                "events": self.store.n,
                "lines": meta.get("lines"),
                "span_s": span,
                "cpus": self.machine.nr_cpus,
                "nodes": self.machine.nr_nodes,
                "pretrace_policy": self.opt.pretrace,
                "pretrace_objects": self.pretrace_objects,
                "pretrace_slabs": (
                    self.pretrace_plan.summary() if self.pretrace_plan is not None else None
                ),
                "rcu_mode": getattr(self, "rcu_mode", None),
                "warm_sheaves": self.opt.warm_sheaves,
                "policy": self.opt.policy,
                "warm_objects": getattr(self, "warm_objects", 0),
                "overrides": dict(self.opt.overrides),
                "replay_seconds": getattr(self, "elapsed", 0.0),
            },
            "caches": caches,
            "warnings": [dict(w, source="ingest") for w in ingest_warn] + replay_warn,
        }


_EXPLAINED_REPLAY = frozenset(
    {
        "alloc_during_irq_replayed_first",
        "rcu_completion_skipped",
        "rcu_completion_substituted",
        "prefill_translated_to_plain_allocs",
        "rcu_sheaf_event_without_model_sheaf",
        "rcu_sheaf_event_before_trace",
        "rcu_sheaf_lost_event_completed",
        "rcu_sheaf_overdue_completed",
        "pretrace_free_ignored",
        "traced_failed_alloc",
        "unresolved_cache_events_skipped",
    }
)


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def replay(store: EventStore, options: ReplayOptions | None = None) -> dict[str, Any]:
    """Replay ``store``; see :class:`ReplayOptions`."""
    try:
        return Replayer(store, options).run()
    except SlabError as e:  # a model-level misuse means the trace mapping is wrong
        raise SlubsimUsageError(f"replay stopped: {e}") from e


def result_schema_doc() -> str:
    """Field-by-field description of the replay JSON (also in the README)."""
    return __doc__ or ""
