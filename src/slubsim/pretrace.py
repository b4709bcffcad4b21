"""Slabs that were in use when tracing began, rebuilt from the traced pointers.

A trace that starts on a running kernel meets slabs made before its first
line: some of their objects are with users (the trace shows them first as
frees, or never), the others are free and will be handed out in the kernel's
freelist order.  The counters cannot tell where those objects are; the
pointers can.  The traced kernels run without ``CONFIG_SLAB_FREELIST_RANDOM``,
so a slab is a naturally aligned block of ``PAGE_SIZE << order`` bytes and an
object's index is its offset in it divided by the object stride (the same
pairing as :mod:`slubsim.lockstep`).  One pass over the store gives, for every
kernel slab and object, the first event of the object:

* **first seen as a free** (kmem_cache_free, kfree, kfree_rcu, a bulk free):
  with a user when tracing began;
* **first seen as an allocation**: free when tracing began, and free objects
  leave a slab in the order of their first allocation (a freelist is a stack:
  objects pushed later are popped first, the ones that were there are popped
  in their original order);
* **never seen**: below the slab's highest first-allocated index, with a user
  for the whole trace (a long-lived object); above it, the untouched tail of
  the slab's initial index-order freelist, free -- when the last object to
  leave was that highest one; after a recycled freelist (which ends anywhere),
  with a user (decision: a slab whose every object is first seen as a free, or
  never, is full).  Under cpu slabs (6.12) a CPU hands out its cpu slab's
  objects until both its freelists are empty, so when the CPU that took that
  highest object allocates next (same cache) from another slab, the slab had
  nothing left: its never-seen tail had users too (:func:`_refuted_tails`).

A kernel slab is a **pre-trace slab** when an object of it is first seen as a
free (no slab made during the trace shows that).  For traces of a kernel with
cpu slabs (6.12), whose fresh slabs hand out objects in index order, also when
an object is never seen below the slab's highest first-allocated index, or
when its first allocation is not of object 0.  In a cache with ``alloc_bulk``
calls, whose objects the trace does not name (a bulk-allocated object kept
for the whole trace is never seen; a slab made by a bulk call shows its
objects first as frees), only slabs seen before its first ``alloc_bulk``
count, by any of these signs.  (Under sheaves a refill puts a
fresh slab's objects in a sheaf that hands them out last-in first-out, and
objects still in sheaves when the trace ends are never seen: neither sign
holds there.)  Objects handed out by ``alloc_bulk`` (the trace gives counts,
not pointers) are seen only at their bound free; they were free at the start
and left the slab at the row of that ``alloc_bulk`` (ingest binds the two and
puts its row in the free's ``size``).

:func:`plan` computes the slabs; ``Replayer`` installs them before the first
event (``pretrace="reconstruct"``): each becomes a model slab with the same
objects allocated and free (counters do not move -- this is state, not
activity), paired for the lockstep check, with the objects first seen as frees
bound to their model addresses.  Placement: a slab with free objects goes on
its node's partial list in order of first use (the kernel's ``get_partial``
takes from the head); a full one on no list.  Under the 6.12 model the slab of
each CPU's first allocation becomes that CPU's cpu slab (models the frozen
``c->slab`` the CPU was allocating from; ``install_cpu_slab``), its free
objects split between ``c->freelist`` and the slab's own freelist at the
CPU's refill (:func:`_split_cpu_freelists`), and cpu partial lists take as
many slabs as sysfs ``slabs_cpu_partial`` counted (``install_cpu_partial``).
Under 7.x, given how many objects each CPU's sheaves held (from the kernel's
counters), :func:`discover_sheaves` finds which, their slabs are rebuilt
around them and the sheaves filled (``install_sheaves``).  Caches whose
traced pointers do not fit the model's geometry (a what-if with another
object size or order, debug red zones) are left to ``"materialize"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bundle import pointer_node
from .constants import PAGE_SIZE
from .trace.events import (
    F_BULK_BOUND,
    F_FAILED,
    F_RCU_COMPLETION,
    OP_ALLOC,
    OP_ALLOC_BULK,
    OP_ALLOC_FROM_SHEAF,
    OP_FREE,
    OP_FREE_BULK,
    OP_KFREE_BULK,
    OP_KFREE_RCU,
)
from .trace.store import EventStore

#: (trace CPU, traced pointer) -> whether the free bypasses the CPU's sheaves
RemoteFree = Callable[[int, int], bool]


def remote_free_test(
    cpu_node: Sequence[int], mem_ranges: Sequence[Sequence[int]] | None
) -> RemoteFree | None:
    """Whether a traced free on a trace CPU bypasses its sheaves because the
    object's memory is on another node than the CPU's (``cpu_node``: trace
    CPU -> node), which has memory -- 7.x ``can_free_to_pcs``: such an object
    goes to ``__slab_free`` (FREE_SLOWPATH), not into a sheaf.  None when the
    node memory map (``mem_ranges``: (node, first, last physical address),
    from the bundle) is unknown or covers one node."""
    if not mem_ranges:
        return None
    has_mem = {int(r[0]) for r in mem_ranges}
    if len(has_mem) < 2:
        return None
    own = list(cpu_node)
    ranges = [list(r) for r in mem_ranges]

    def remote(tcpu: int, ptr: int) -> bool:
        if not 0 <= tcpu < len(own) or own[tcpu] not in has_mem:
            return False
        nid = pointer_node(ptr, ranges)
        return nid >= 0 and nid != own[tcpu]

    return remote


_ALLOC_OPS = (OP_ALLOC, OP_ALLOC_FROM_SHEAF)
_FREE_OPS = (OP_FREE, OP_KFREE_RCU, OP_FREE_BULK, OP_KFREE_BULK)
_OPS = np.array(_ALLOC_OPS + _FREE_OPS)

# first-event kinds of an object
_ALLOC = 0
_FREE = 1
_BULK = 2  # first seen at a free bound to an alloc_bulk: free at the start
_SHEAF = 3  # in a CPU's sheaf at the start (discover_sheaves)


@dataclass
class PretraceSlab:
    """One kernel slab as it was when tracing began."""

    kbase: int  # the kernel slab's address (aligned block)
    first_row: int  # first trace row touching it
    cpu: int  # trace CPU of its first allocation (else of its first event)
    #: object indices free at the start, the first to be handed out first
    free_order: list[int]
    #: object indices with a user at the start
    allocated: list[int]
    #: (object index, store object id) of the objects first seen as frees
    bound: list[tuple[int, int]] = field(default_factory=list)
    #: trace row at which each ``free_order`` object first left (-1: never)
    free_rows: list[int] = field(default_factory=list)
    #: object indices in some CPU's sheaves when tracing began (7.x)
    in_sheaf: list[int] = field(default_factory=list)
    #: as a 6.12 cpu slab: how many of the last ``free_order`` objects were on
    #: the slab's own freelist (remote frees since it was frozen), not on
    #: ``c->freelist``
    slab_keep: int = 0
    #: a slab the trace never touches, known only from the kernel's count of
    #: a CPU's cpu partial slabs (``kbase`` is then a negative placeholder)
    unseen: bool = False


@dataclass
class PretracePlan:
    """Per store cache id: its pre-trace slabs (by first use) and, for
    generations with cpu slabs, the kernel slab each trace CPU had as its cpu
    slab; caches skipped and why."""

    slabs: dict[int, list[PretraceSlab]] = field(default_factory=dict)
    cpu_slab: dict[int, dict[int, int]] = field(default_factory=dict)
    #: cache id -> trace CPU -> (main, spare): kernel pointers in its sheaves
    #: when tracing began, the first to be handed out first (7.x)
    sheaves: dict[int, dict[int, tuple[list[int], list[int]]]] = field(default_factory=dict)
    #: cache id -> trace CPU -> kernel slabs of its cpu partial list, head first
    cpu_partial: dict[int, dict[int, list[int]]] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "caches": sum(1 for v in self.slabs.values() if v),
            "slabs": sum(len(v) for v in self.slabs.values()),
            "objects_allocated": sum(len(p.allocated) for v in self.slabs.values() for p in v),
            "objects_free": sum(len(p.free_order) for v in self.slabs.values() for p in v),
            "caches_skipped": len(self.skipped),
        }


@dataclass
class _Obj:
    kind: int
    row: int
    obj: int
    cpu: int = -1  # trace CPU of the first event


def plan(
    store: EventStore,
    geometry: dict[int, tuple[int, int, int]],
    rows: int = 1 << 16,
    per_cpu_slab: bool = True,
    cpus_before: dict[int, set[int]] | None = None,
    cpu_partial_before: dict[int, dict[int, int]] | None = None,
    sheaves_before: dict[int, dict[int, tuple[int, int]]] | None = None,
    unseen_cpu_partial: bool = False,
    remote_free: RemoteFree | None = None,
) -> PretracePlan:
    """Find the pre-trace slabs of the caches in ``geometry`` (store cache id
    -> (order, object stride, objects per slab) of the model) in one streaming
    pass over the store's pointers.

    ``per_cpu_slab``: the trace was recorded by a kernel with cpu slabs (6.12),
    whose fresh slabs hand out objects in index order -- then a never-seen
    object below a slab's highest first-allocated one marks it pre-trace, and
    each CPU's first allocation comes from its cpu slab when the CPU had one.
    ``cpus_before`` (cache id -> trace CPUs that had allocated from the cache
    before tracing began, e.g. from the kernel's cumulative counters) says
    which CPUs had one; without it, only a first-allocation slab shown to be
    pre-trace by its objects is taken for a cpu slab.  ``cpu_partial_before``
    (cache id -> trace CPU -> slabs on its cpu partial list, sysfs
    ``slabs_cpu_partial``) puts that many of the partial pre-trace slabs
    first allocated by the CPU, in order of first use, on its cpu partial list
    (only the CPU can take from it, after its cpu slab); with
    ``unseen_cpu_partial`` (those counts were read when tracing began) a list
    short of its count is made up with slabs no traced pointer touches.
    ``sheaves_before``
    (cache id -> trace CPU -> objects in its (main, spare) sheaves, e.g. from
    the kernel's counters) has the sheaves' objects found by
    :func:`discover_sheaves` and their slabs rebuilt around them
    (``remote_free``: see there)."""
    out = PretracePlan()
    in_sheaf: set[tuple[int, int]] = set()
    if sheaves_before:
        out.sheaves = discover_sheaves(store, sheaves_before, rows, remote_free)
        for c, per_cpu in out.sheaves.items():
            for main, spare in per_cpu.values():
                in_sheaf.update((c, p) for p in main + spare)
    seen: dict[int, dict[int, dict[int, _Obj]]] = {c: {} for c in geometry}  # cache->slab->idx
    first_alloc: dict[int, dict[int, int]] = {c: {} for c in geometry}
    slab_first_row: dict[tuple[int, int], int] = {}
    slab_cpu: dict[tuple[int, int], int] = {}  # (cache, slab) -> CPU of its first event
    slab_alloc_cpu: dict[tuple[int, int], int] = {}  # ... of its first allocation
    wanted = np.array(sorted(geometry), dtype=np.int64)
    done: set[tuple[int, int]] = set()  # (cache, ptr) seen
    bulk: dict[int, int] = {}  # cache -> row of its first alloc_bulk (objects without pointers)
    base = 0
    cols = ("cpu", "op", "cache", "obj", "ptr", "flags", "size")
    for b in store.iter_batches(cols, rows):
        op, cache, ptr, flags = b["op"], b["cache"], b["ptr"], b["flags"]
        m = len(op)
        sel = (
            np.isin(op, _OPS)
            & (ptr != 0)
            & ((flags & (F_FAILED | F_RCU_COMPLETION)) == 0)
            & np.isin(cache, wanted)
        )
        for j in np.flatnonzero((op == OP_ALLOC_BULK) & np.isin(cache, wanted)).tolist():
            bulk.setdefault(int(cache[j]), base + j)
        idx = np.flatnonzero(sel)
        if len(idx):
            # first occurrence of each (cache, pointer) in the batch, in row order
            key = np.stack((cache[idx].astype(np.int64), ptr[idx].view(np.int64)))
            _, first = np.unique(key, axis=1, return_index=True)
            rows_first = np.sort(idx[first])
            cpu_l = b["cpu"][rows_first].tolist()
            op_l = op[rows_first].tolist()
            c_l = cache[rows_first].tolist()
            o_l = b["obj"][rows_first].tolist()
            p_l = ptr[rows_first].tolist()
            f_l = flags[rows_first].tolist()
            a_l = b["size"][rows_first].tolist()
            for j, cpu, o, c, obj, p, fl, aux in zip(
                rows_first.tolist(), cpu_l, op_l, c_l, o_l, p_l, f_l, a_l, strict=True
            ):
                if (c, p) in done or c in out.skipped:
                    continue
                done.add((c, p))
                order, stride, objects = geometry[c]
                span = PAGE_SIZE << order
                kbase = p & ~(span - 1)
                off = p - kbase
                if off % stride or off // stride >= objects:
                    out.skipped[c] = f"pointer 0x{p:x} is not an object of a {span}-byte slab"
                    continue
                i = off // stride
                kind = _ALLOC if o in _ALLOC_OPS else (_BULK if fl & F_BULK_BOUND else _FREE)
                if kind == _ALLOC and (c, p) in in_sheaf:
                    kind = _SHEAF
                objs = seen[c].setdefault(kbase, {})
                # a bulk-bound free's size is the row of the alloc_bulk it ends
                objs[i] = _Obj(kind, aux if kind == _BULK else base + j, obj, cpu)
                sk = (c, kbase)
                if sk not in slab_first_row:
                    slab_first_row[sk] = base + j
                    slab_cpu[sk] = cpu
                if kind == _ALLOC:
                    slab_alloc_cpu.setdefault(sk, cpu)
        # each CPU's first allocation per cache (any pointer, seen before or not)
        al = np.flatnonzero(np.isin(op, np.array(_ALLOC_OPS)) & (ptr != 0) & np.isin(cache, wanted))
        if len(al):
            key2 = np.stack((cache[al].astype(np.int64), b["cpu"][al].astype(np.int64)))
            _, f2 = np.unique(key2, axis=1, return_index=True)
            for j in np.sort(al[f2]).tolist():
                c, cpu = int(cache[j]), int(b["cpu"][j])
                if c in out.skipped or cpu in first_alloc[c]:
                    continue
                order = geometry[c][0]
                first_alloc[c][cpu] = int(ptr[j]) & ~((PAGE_SIZE << order) - 1)
        base += m

    refuted = _refuted_tails(store, geometry, seen, out.skipped, rows) if per_cpu_slab else set()
    for c, slabs in seen.items():
        if c in out.skipped:
            continue
        objects = geometry[c][2]
        known = (cpus_before or {}).get(c) if per_cpu_slab else None
        cpu_slabs = (
            {k for cpu, k in first_alloc[c].items() if cpu in known} if known is not None else set()
        )
        found: list[PretraceSlab] = []
        for kbase, objs in slabs.items():
            # objects handed out during the trace, in the order they left the
            # slab (a bulk-allocated object at its alloc_bulk row, index order
            # within one call: the trace does not order them)
            allocs = sorted((o.row, i) for i, o in objs.items() if o.kind in (_ALLOC, _BULK))
            cached = sorted(i for i, o in objs.items() if o.kind == _SHEAF)
            top = max((i for _, i in allocs), default=-1)
            first_free = [i for i, o in objs.items() if o.kind == _FREE]
            below = [i for i in range(top) if i not in objs]  # never seen: long-lived
            # (or handed out by an alloc_bulk and kept: then order says nothing)
            # (in a cache with alloc_bulk, only for a slab seen before the
            # first one: a slab made during the trace before any bulk call
            # hands out index 0 first, as in any cache)
            ordered = per_cpu_slab and (c not in bulk or slab_first_row[(c, kbase)] < bulk[c])
            holes = below if ordered else []
            if c in bulk and slab_first_row[(c, kbase)] > bulk[c]:
                # a slab first seen after an alloc_bulk may have been made by
                # it: objects first seen as frees prove nothing there
                first_free = []
            cpu_slab = kbase in cpu_slabs
            # a fresh slab of a cpu-slab kernel hands out index 0 first
            moved = ordered and bool(allocs) and allocs[0][1] != 0
            if not first_free and not holes and not cpu_slab and not moved and not cached:
                continue  # made during the trace (or indistinguishable from it)
            # the untouched tail of an index-order freelist follows only when
            # the last object to leave was the highest one (a recycled
            # freelist ends anywhere)
            tail = (
                [i for i in range(top + 1, objects) if i not in objs]
                if allocs and allocs[-1][1] == top and (c, kbase) not in refuted
                else []
            )
            below += [i for i in range(top + 1, objects) if i not in objs and i not in tail]
            never = [] if allocs else [i for i in range(objects) if i not in objs]
            ps = PretraceSlab(
                kbase=kbase,
                first_row=allocs[0][0] if allocs else slab_first_row[(c, kbase)],
                cpu=slab_alloc_cpu.get((c, kbase), slab_cpu[(c, kbase)]),
                free_order=[i for _, i in allocs] + tail,
                free_rows=[r for r, _ in allocs] + [-1] * len(tail),
                allocated=sorted(first_free + below + never),
                bound=sorted((i, objs[i].obj) for i in first_free if objs[i].obj >= 0),
                in_sheaf=cached,
            )
            found.append(ps)
        found.sort(key=lambda ps: ps.first_row)
        out.slabs[c] = found
        if per_cpu_slab:
            pre = {ps.kbase for ps in found}
            allowed = (cpus_before or {}).get(c)
            out.cpu_slab[c] = {
                cpu: k
                for cpu, k in first_alloc[c].items()
                if k in pre and (allowed is None or cpu in allowed)
            }
            taken = set(out.cpu_slab[c].values())
            # CPUs that first allocated from a slab not shown to be pre-trace
            # (a fresh one -- or one of their list's, indistinguishable)
            fresh = {
                slab_alloc_cpu[(c, kb)]
                for kb in slabs
                if kb not in pre and (c, kb) in slab_alloc_cpu
            }
            for cpu, want in sorted((cpu_partial_before or {}).get(c, {}).items()):
                chain = [
                    ps.kbase
                    for ps in found
                    if ps.cpu == cpu and ps.free_order and ps.kbase not in taken
                ][: max(want, 0)]
                taken.update(chain)
                # the rest of the CPU's list: slabs no traced pointer touches
                # (e.g. v612-mixed vm_area_struct: CPU 3 had 2, the trace
                # shows it using one; the other waited on the list for the
                # drain that put_cpu_partial did when the list reached
                # cpu_partial_slabs) -- when every slab the CPU was first to
                # allocate from is pre-trace, so none of them can be the
                # missing one, and the cache has no alloc_bulk (whose objects
                # the trace does not name).  Decision: such a slab is half
                # full -- the kernel's own estimate for cpu partial slabs
                # (slabs_cpu_partial_show) -- with its free objects last.
                short = max(want, 0) - len(chain)
                if not unseen_cpu_partial or c in bulk or cpu in fresh:
                    short = 0
                for _ in range(short):
                    kb = -1 - sum(1 for ps in found if ps.unseen)
                    half = objects // 2
                    found.append(
                        PretraceSlab(
                            kbase=kb,
                            first_row=-1,
                            cpu=cpu,
                            free_order=list(range(half, objects)),
                            free_rows=[-1] * (objects - half),
                            allocated=list(range(half)),
                            unseen=True,
                        )
                    )
                    chain.append(kb)
                if chain:
                    out.cpu_partial.setdefault(c, {})[cpu] = chain
    if per_cpu_slab:
        _split_cpu_freelists(store, geometry, out, rows)
    return out


def _tail_of(objs: dict[int, _Obj], objects: int) -> tuple[int, int, int] | None:
    """For a slab whose never-seen objects above its highest first-allocated
    index would be the untouched tail of its freelist (that highest object
    left last): (row, trace CPU, index) of that object's allocation; else None."""
    allocs = [(o.row, i, o.cpu) for i, o in objs.items() if o.kind == _ALLOC]
    if not allocs:
        return None
    row, top, cpu = max(allocs)
    if max(i for _, i, _ in allocs) != top:
        return None  # a recycled freelist: no tail
    if all(i in objs for i in range(top + 1, objects)):
        return None  # nothing above it never seen
    return row, cpu, top


def _refuted_tails(
    store: EventStore,
    geometry: dict[int, tuple[int, int, int]],
    seen: dict[int, dict[int, dict[int, _Obj]]],
    skipped: dict[int, str],
    rows: int,
) -> set[tuple[int, int]]:
    """(cache, kernel slab) of the 6.12 slabs whose never-seen tail was not
    free: the CPU that allocated the slab's highest object allocated next, in
    the same cache, from another slab.  A CPU allocates from its cpu slab
    (``c->freelist``, then the slab's own freelist) until both are empty
    before it takes a partial or new slab (``___slab_alloc``), and the tail
    would have been on those freelists.  (Not when the CPU called
    ``alloc_bulk`` on the cache in between -- its objects are not named: it
    may have taken the tail --, nor for a next allocation that failed.
    Another CPU's bulk call takes from its own cpu slab, not this one:
    v612-mixed kmalloc-256, slab 2f8000 of CPU 1 handed out 4, 2 and 8 at
    9.5827 and CPU 1's next allocation came from another slab, long after
    CPU 0's first bulk call.)"""
    # (cache, cpu) -> [(row, slab, span)] waiting for that CPU's next allocation
    waiting: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for c, slabs in seen.items():
        if c in skipped:
            continue
        order, _, objects = geometry[c]
        for kbase, objs in slabs.items():
            t = _tail_of(objs, objects)
            if t is not None:
                waiting.setdefault((c, t[1]), []).append((t[0], kbase, PAGE_SIZE << order))
    out: set[tuple[int, int]] = set()
    if not waiting:
        return out
    for v in waiting.values():
        v.sort()
    caches = np.array(sorted({c for c, _ in waiting}), dtype=np.int64)
    base = 0
    for b in store.iter_batches(("cpu", "op", "cache", "ptr", "flags"), rows):
        op, cache, ptr, flags = b["op"], b["cache"], b["ptr"], b["flags"]
        is_bulk = op == OP_ALLOC_BULK
        sel = np.flatnonzero(
            (((op == OP_ALLOC) & (ptr != 0) & ((flags & F_FAILED) == 0)) | is_bulk)
            & np.isin(cache, caches)
        )
        for j, cpu, c, p, bk in zip(
            sel.tolist(),
            b["cpu"][sel].tolist(),
            cache[sel].tolist(),
            ptr[sel].tolist(),
            is_bulk[sel].tolist(),
            strict=True,
        ):
            w = waiting.get((c, cpu))
            row = base + j
            while w and w[0][0] < row:
                _, kbase, span = w.pop(0)
                if not bk and p & ~(span - 1) != kbase:
                    out.add((c, kbase))
            if w is not None and not w:
                del waiting[(c, cpu)]
        if not waiting:
            break
        base += len(op)
    return out


def discover_sheaves(
    store: EventStore,
    want: dict[int, dict[int, tuple[int, int]]],
    rows: int = 1 << 16,
    remote_free: RemoteFree | None = None,
) -> dict[int, dict[int, tuple[list[int], list[int]]]]:
    """The objects each CPU's main and spare sheaves held when tracing began,
    given how many (``want``: cache id -> trace CPU -> (main, spare)).

    A sheaf is a stack: a CPU's allocations pop what its own traced frees
    pushed, and below those the objects it held at the start, in order -- the
    main sheaf's, then (swapped in) the spare's.  So, walking the CPU's events:
    an allocation of the object on top of the pushed ones pops it; one of an
    object never seen before, with nothing pushed, is the next initial object.
    The walk of a CPU stops when it has found them all, or at the first
    allocation that is neither (an object another CPU freed: the initial
    sheaves are gone, through the barn or a refill).

    ``remote_free(trace_cpu, ptr)``: the free of ``ptr`` on that CPU bypasses
    the sheaves (7.x ``can_free_to_pcs``: on a NUMA machine, an object of
    another node's slab goes to ``__slab_free``), so it pushes nothing --
    without it, one remote free ended the walk (mixed-4cpu-numa2
    kmalloc-rcl-192: CPU 0's 56 objects by the counters, 3 found)."""
    out: dict[int, dict[int, tuple[list[int], list[int]]]] = {}
    todo: dict[tuple[int, int], int] = {}
    for c, per_cpu in want.items():
        for cpu, (main, spare) in per_cpu.items():
            if main + spare > 0:
                todo[(c, cpu)] = main + spare
    if not todo:
        return out
    found: dict[tuple[int, int], list[int]] = {k: [] for k in todo}
    pushed: dict[tuple[int, int], list[int]] = {k: [] for k in todo}
    seen: set[tuple[int, int]] = set()
    caches = np.array(sorted({c for c, _ in todo}), dtype=np.int64)
    for b in store.iter_batches(("cpu", "op", "cache", "ptr", "flags"), rows):
        op, cache, ptr, flags = b["op"], b["cache"], b["ptr"], b["flags"]
        sel = np.flatnonzero(
            np.isin(op, _OPS)
            & (ptr != 0)
            & ((flags & (F_FAILED | F_RCU_COMPLETION)) == 0)
            & np.isin(cache, caches)
        )
        for cpu, o, c, p in zip(
            b["cpu"][sel].tolist(),
            op[sel].tolist(),
            cache[sel].tolist(),
            ptr[sel].tolist(),
            strict=True,
        ):
            key = (c, cpu)
            new = (c, p) not in seen
            seen.add((c, p))
            if key not in todo:
                continue
            if o in _ALLOC_OPS:
                if o != OP_ALLOC:
                    continue  # from a prefilled sheaf, not the CPU's
                st = pushed[key]
                if st and st[-1] == p:
                    st.pop()
                elif p in st:
                    st.remove(p)
                elif new and not st:
                    got = found[key]
                    got.append(p)
                    if len(got) >= todo[key]:
                        del todo[key]
                else:
                    del todo[key]  # the initial sheaves are gone
            elif o != OP_KFREE_RCU and (remote_free is None or not remote_free(cpu, p)):
                # (kfree_rcu goes to the rcu sheaf, a remote free to its slab)
                pushed[key].append(p)
        if not todo:
            break
    for (c, cpu), got in found.items():
        main_n, _ = want[c][cpu]
        # a spare found only in part is the top of the kernel's: the CPU
        # went on with objects it freed itself and never reached the rest
        # (decision: kept -- mixed-4cpu filp, CPU 0: main 1, spare 60, the
        # walk found the spare's top 41, which the CPU handed out from
        # 6.537 s on; the first read completes the count under them)
        if got:
            out.setdefault(c, {})[cpu] = (got[:main_n], got[main_n:])
    return out


def _split_cpu_freelists(
    store: EventStore, geometry: dict[int, tuple[int, int, int]], p: PretracePlan, rows: int
) -> None:
    """Which free objects of each rebuilt 6.12 cpu slab were on ``c->freelist``
    and which on the slab's own freelist.  A cpu slab's freelist is taken
    whole when the CPU freezes it; frees from other CPUs then go to the slab's
    freelist, which the CPU takes (``alloc_refill``) only when ``c->freelist``
    runs dry.  So the CPU's first allocation, from that slab, of an object
    another CPU freed during the trace marks the refill: free objects first
    handed out before it were on ``c->freelist``, the others (and the
    untouched tail) on the slab's freelist, under the remote frees."""
    targets: dict[tuple[int, int], int] = {}  # (cache, kernel slab) -> its CPU
    for c, per_cpu in p.cpu_slab.items():
        for cpu, kbase in per_cpu.items():
            targets[(c, kbase)] = cpu
    if not targets:
        return
    refill: dict[tuple[int, int], int] = {}
    last: dict[tuple[int, int], tuple[int, int]] = {}  # (cache, ptr) -> (kind, cpu)
    # rows where an untouched tail says the refill came (_tail_end_refill) ...
    tail: dict[tuple[int, int], int] = {}
    for c, slabs in p.slabs.items():
        for ps in slabs:
            if (c, ps.kbase) in targets:
                t = _tail_end_refill(ps, geometry[c][2])
                if t >= 0:
                    tail[(c, ps.kbase)] = t
    # ... refuted when the object handed out there is not the last one another
    # CPU freed into the slab since: a refill takes the slab's freelist, whose
    # head is that free (v612-mixed kmalloc-256 CPU 2: objects 7-15 in order,
    # then 5 -- but 13, freed by CPU 1 before, came after 5: 7-15 had been
    # pushed, the maple tree frees a node's children in order)
    remote: dict[tuple[int, int], list[int]] = {}
    by_cache: dict[int, np.ndarray[Any, Any]] = {}
    for c, kb in targets:
        by_cache.setdefault(c, np.zeros(0, dtype=np.uint64))
        by_cache[c] = np.append(by_cache[c], np.uint64(kb))
    base = 0
    for b in store.iter_batches(("cpu", "op", "cache", "ptr"), rows):
        op, cache, ptr = b["op"], b["cache"], b["ptr"]
        m = len(op)
        relevant = np.isin(op, _OPS) & (ptr != 0)
        for c, kbs in by_cache.items():
            span = PAGE_SIZE << geometry[c][0]
            mask = np.uint64(~(span - 1) & 0xFFFFFFFFFFFFFFFF)
            sel = np.flatnonzero(relevant & (cache == c) & np.isin(ptr & mask, kbs))
            for j, cpu, o, pt in zip(
                sel.tolist(),
                b["cpu"][sel].tolist(),
                op[sel].tolist(),
                ptr[sel].tolist(),
                strict=True,
            ):
                key = (c, pt & ~(span - 1))
                if o in _ALLOC_OPS:
                    pend = remote.get(key)
                    if tail.get(key) == base + j and pend and pend[-1] != pt:
                        del tail[key]
                    if pend and pt in pend:
                        pend.remove(pt)
                    prev = last.get((c, pt))
                    if (
                        key not in refill
                        and targets[key] == cpu
                        and prev is not None
                        and prev[0] == _FREE
                        and prev[1] != cpu
                    ):
                        refill[key] = base + j
                    last[(c, pt)] = (_ALLOC, cpu)
                else:
                    last[(c, pt)] = (_FREE, cpu)
                    if targets[key] != cpu:
                        remote.setdefault(key, []).append(pt)
        base += m
    for c, slabs in p.slabs.items():
        for ps in slabs:
            r = refill.get((c, ps.kbase))
            t = tail.get((c, ps.kbase), -1)
            if t >= 0 and (r is None or t < r):
                r = t
            if r is not None:
                ps.slab_keep = sum(1 for x in ps.free_rows if x < 0 or x >= r)


#: shortest index run ending at a rebuilt cpu slab's last object taken as its
#: untouched tail (:func:`_tail_end_refill`)
TAIL_RUN = 3


def _tail_end_refill(ps: PretraceSlab, objects: int) -> int:
    """Row of the first allocation a rebuilt 6.12 cpu slab made from its own
    freelist because ``c->freelist`` ended with the slab's untouched tail, or
    -1.  A slab's objects start as one index-ordered chain ending at its last
    object; frees push onto a chain's head, so an untouched tail (an index run
    ending at the last object) ends whichever chain holds it.  Free objects
    handed out after it were on another chain: the slab's freelist, filled by
    frees from other CPUs while the slab was frozen -- before the trace, as
    none of them is seen freed (v612-mixed filp CPU 3: objects 13-20 in
    order, then 9 pre-trace frees; the kernel counted the alloc_refill
    there).  Decision: the run must hold at least the last ``TAIL_RUN``
    objects: local frees push onto ``c->freelist``, and a user freeing in
    reverse order of allocation leaves an ascending run of pushed objects
    that may end at the last one (v612-mixed filp CPU 0: objects 19 and 20,
    then five more, and the kernel counted no refill there).  Measured on
    v612-mixed: runs of 1 or more moved 6.12 counters exact 95.9 -> 96.6 %,
    of 3 or more to 96.9 % (2 or more: in between)."""
    fo = ps.free_order
    last = objects - 1
    try:
        k = fo.index(last)
    except ValueError:
        return -1
    if k + 1 >= len(fo) or k + 1 >= len(ps.free_rows) or k < TAIL_RUN - 1:
        return -1
    if fo[k - TAIL_RUN + 1 : k + 1] != list(range(objects - TAIL_RUN, objects)):
        return -1
    return ps.free_rows[k + 1]
