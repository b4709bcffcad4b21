"""``struct kmem_cache``: one slab cache with its geometry, nodes, counters and
per-CPU layer.

The cache owns what every generation shares -- geometry (spec §4), the per-node
partial lists, slab allocation from the page allocator (``new_slab`` /
``allocate_slab``, spec §6.8), ``build_detached_freelist`` for bulk frees,
SLUB_STATS counters per CPU and the sysfs view (spec §11) -- and delegates the
allocation and free paths to its :class:`~slubsim.pcpu.PerCpuLayer`.

It also keeps the model's own debug bookkeeping, which the kernel only has with
``slab_debug``: whether each object handed out is live (the kernel-wide
:mod:`slubsim.shadow`, this cache's pages marked as its own), so that a double free,
a free of a never-allocated object, a foreign or misaligned pointer and a free
into the wrong cache raise the matching :mod:`slubsim.errors` exception instead
of corrupting state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .constants import NUMA_NO_NODE, PAGE_SHIFT, SHRINK_PROMOTE_MAX
from .errors import (
    CacheDestroyedError,
    DoubleFreeError,
    InvalidFreeError,
    InvariantError,
    LockRecursionError,
    NeverAllocatedError,
    SlubsimUsageError,
    WrongCacheError,
)
from .flags import SLAB_DEBUG_FLAGS, SlabFlag
from .geometry import Geometry
from .node import KmemCacheNode
from .page_alloc import PageAllocator
from .shadow import FREED, GRANULE_MASK, GRANULE_SHIFT, LIVE, NODE0_BASE, ObjectShadow
from .slab import Slab
from .stats import format_stat, new_counters

if TYPE_CHECKING:
    from .kernel import Kernel
    from .pcpu import PerCpuLayer
    from .sheaf import Sheaf

F = SlabFlag
CONTEXTS = ("task", "irq", "nmi")


def slabs_of(p: list[int], pfn_to_slab: dict[int, Slab]) -> list[Slab | None]:
    """``virt_to_slab`` of every object of ``p`` (None: not in a slab page),
    for :func:`build_detached_freelist`: one page-map lookup per object, where
    the kernel's look-ahead reads some objects' slabs several times (the same
    answer: the objects of a bulk free are all in use until freed, so no slab
    of theirs can be discarded in between)."""
    return [pfn_to_slab.get(x >> PAGE_SHIFT) for x in p]


def build_detached_freelist(
    p: list[int], slabs: list[Slab | None], size: int
) -> tuple[int, Slab | None, list[int]]:
    """Models ``build_detached_freelist`` (spec §6.10).

    Takes ``p[size-1]`` as the tail of a new group and scans downwards for
    objects of the same slab (look-ahead budget 3 for non-matching entries);
    matches are prepended (the group's head is the lowest-index match) and the
    non-matching entries are compacted into ``p[0:same]``.  Returns
    ``(same, slab, chain)`` with ``chain`` head first; ``slab`` is None for an
    object that is not in a slab (large kmalloc, freed by the caller).
    ``slabs`` (from :func:`slabs_of`) holds the slab of each entry of ``p``
    and is permuted with it.
    """
    size -= 1
    obj = p[size]
    slab = slabs[size]
    if slab is None:
        return size, None, [obj]
    chain = [obj]
    lookahead = 3
    same = size
    while size:
        size -= 1
        if slabs[size] is slab:
            chain.append(p[size])
            same -= 1
            if size != same:
                p[size], p[same] = p[same], p[size]
                slabs[size], slabs[same] = slabs[same], slabs[size]
            continue
        lookahead -= 1
        if not lookahead:
            break
    chain.reverse()
    return same, slab, chain


class KmemCache:
    """A slab cache.  Create caches with :meth:`Kernel.kmem_cache_create`."""

    def __init__(
        self,
        kernel: Kernel,
        name: str,
        geometry: Geometry,
        flags: SlabFlag,
        ctor: bool,
        usersize: int,
        refcount: int,
    ) -> None:
        self.kernel = kernel
        self.machine = kernel.machine
        #: the kernel's page -> slab map (the same dict; a native attribute
        #: here, so the compiled free path does not look it up by name)
        self.pfn_to_slab: dict[int, Slab] = kernel.pfn_to_slab
        self.name = name
        self.aliases: list[str] = [name]  # every name mapped to this cache
        self.flags = flags
        self.ctor = ctor
        self.usersize = usersize
        self.refcount = refcount
        self.geometry = geometry
        self.object_size = geometry.object_size
        self.size = geometry.size
        self.align = geometry.align
        self.inuse = geometry.inuse
        self.order = geometry.order
        self.objects = geometry.objects
        self.min_order = geometry.min_order
        self.min_objects = geometry.min_objects
        self.min_partial = geometry.min_partial
        self.sheaf_capacity = geometry.sheaf_capacity
        self.debug = bool(flags & SLAB_DEBUG_FLAGS)
        self.store_user = bool(flags & F.SLAB_STORE_USER)
        self.remote_node_defrag_ratio = 1000  # internal value (sysfs shows /10)
        self.destroyed = False
        m = self.machine
        # slab_nodes: nodes with memory get a kmem_cache_node
        self.nodes: list[KmemCacheNode | None] = [
            KmemCacheNode(n) if m.node_has_memory[n] else None for n in range(m.nr_nodes)
        ]
        self.stat: list[list[int]] = []
        self.layer: PerCpuLayer
        #: which objects are with a user: the kernel-wide shadow (slubsim.shadow),
        #: this cache's pages marked with ``shadow_id``
        self.shadow: ObjectShadow = kernel.shadow
        kernel.nr_cache_ids += 1
        self.shadow_id = kernel.nr_cache_ids
        self.slabs: set[Slab] = set()
        self.nr_pages = 0
        #: sheaf structs alive (kept by the per-CPU layer; 0 without sheaves)
        self.nr_sheaves = 0
        self.pages_peak = 0
        self.slabs_peak = 0
        self.discarded_without_stat = 0  # shrink/shutdown discards (no FREE_SLAB)
        self.adopted_slabs = 0  # pre-trace slabs made without ALLOC_SLAB (adopt_slab)
        self.adopted_sheaves = 0  # pre-trace spare sheaves made without SHEAF_ALLOC
        self.stats_cleared = False
        self.oom_events = 0
        #: slabs of this cache with ``pfmemalloc`` set (see
        #: :meth:`set_slab_pfmemalloc`): none unless a caller marks one -- the
        #: model has no memory reserves -- so paths that would scan every
        #: object's slab for it (``rcu_free_sheaf``) skip the scan at 0
        self.pfmemalloc_slabs = 0
        #: Σ slab.inuse (objects outside slab freelists) and live user objects;
        #: their difference is what the per-CPU layer and barns hold.
        self.inuse_total = 0
        self.nlive = 0
        #: model-internal lock acquisition counts (not SLUB_STATS)
        self.list_lock = 0
        self.barn_lock = 0

    def attach_layer(
        self,
        layer_factory: Callable[[KmemCache], PerCpuLayer],
        stat_items: tuple[str, ...],
    ) -> None:
        self.stat = new_counters(self.machine.nr_cpus, len(stat_items))
        # the generation-independent counters this class moves itself
        self.i_order_fallback = stat_items.index("order_fallback")
        self.i_alloc_slab = stat_items.index("alloc_slab")
        self.i_free_slab = stat_items.index("free_slab")
        self.layer = layer_factory(self)

    # ================================================================ helpers
    def node_of(self, addr: int) -> int:
        return PageAllocator.addr_to_nid(addr)

    def zonelist(self, node: int) -> list[int]:
        m = self.machine
        return sorted(range(m.nr_nodes), key=lambda n: (abs(n - node), n))

    def slab_of(self, addr: int) -> Slab:
        slab = self.pfn_to_slab.get(addr >> PAGE_SHIFT)
        if slab is None:
            raise InvariantError(f"0x{addr:x} is not in a slab page")
        return slab

    def _slab_or_none(self, addr: int) -> Slab | None:
        return self.pfn_to_slab.get(addr >> PAGE_SHIFT)

    def slabs_of(self, p: list[int]) -> list[Slab | None]:
        return slabs_of(p, self.pfn_to_slab)

    def build_detached_freelist(
        self, p: list[int], slabs: list[Slab | None], size: int
    ) -> tuple[int, Slab, list[int]]:
        same, slab, chain = build_detached_freelist(p, slabs, size)
        if slab is None:
            raise InvariantError("object outside slab pages in a cache bulk free")
        return same, slab, chain

    def lock_recursion(self, cpu: int) -> LockRecursionError:
        return LockRecursionError(self.name, cpu)

    def note_out_of_memory(self, cpu: int, node: int) -> None:
        """``slab_out_of_memory()``: the kernel prints a ratelimited warning."""
        self.oom_events += 1

    # ============================================================ slab pages
    def new_slab(self, cpu: int, node: int, thisnode: bool) -> Slab | None:
        """Models ``new_slab`` -> ``allocate_slab`` (spec §6.8): try ``s->oo``,
        fall back to ``s->min`` (ORDER_FALLBACK).  The freelist is built by the
        caller (7.x) -- here every object starts free in index order."""
        pages = self.machine.pages
        if node == NUMA_NO_NODE:
            node = self.machine.cpu_mem_node[cpu]
        order, objects = self.order, self.objects
        addr = pages.alloc_pages(order, node, thisnode)
        if not addr:
            order, objects = self.min_order, self.min_objects
            addr = pages.alloc_pages(order, node, thisnode)
            if not addr:
                return None
            self.stat[cpu][self.i_order_fallback] += 1
        nid = PageAllocator.addr_to_nid(addr)
        slab = Slab(self, addr, order, objects, nid, self.size)
        pfn = addr >> PAGE_SHIFT
        p2s = self.pfn_to_slab
        for i in range(1 << order):
            p2s[pfn + i] = slab
        self.shadow.map_slab(addr, order, self.shadow_id)
        self.slabs.add(slab)
        self.nr_pages += 1 << order
        if self.nr_pages > self.pages_peak:
            self.pages_peak = self.nr_pages
        if len(self.slabs) > self.slabs_peak:
            self.slabs_peak = len(self.slabs)
        return slab

    def adopt_slab(
        self, cpu: int, node: int, free_order: list[int], cached: list[int] | None = None
    ) -> Slab | None:
        """A slab that existed before the trace began (slubsim.pretrace): the
        objects at ``free_order`` indices are on its freelist, the first to be
        handed out first; those at ``cached`` are in per-CPU sheaves (in use
        for the slab, not with a user; the caller puts them there); every
        other object is with a user.  Models the state ``allocate_slab`` and
        the kernel's earlier activity left, so no counter moves; the slab is
        on no list (the caller places it).  None if no page is free."""
        slab = self.new_slab(cpu, node, True)
        if slab is None:
            return None
        n = self.nodes[slab.nid]
        assert n is not None
        n.inc_slabs_node(slab.objects)
        self.adopted_slabs += 1
        free = [i for i in free_order if 0 <= i < slab.objects]
        slab.freelist = [slab.object_at(i) for i in reversed(free)]
        slab.inuse = slab.objects - len(free)
        self.inuse_total += slab.inuse
        sh = self.shadow
        skip = set(free) | set(cached or ())
        for i in range(slab.objects):
            if i not in skip:
                sh.set_state(slab.object_at(i), LIVE)
                self.nlive += 1
        return slab

    def discard_slab(self, slab: Slab) -> None:
        """Models ``discard_slab`` / ``free_slab``: ``dec_slabs_node`` and return the
        pages.  Counters (FREE_SLAB) are the caller's business."""
        n = self.nodes[slab.nid]
        assert n is not None
        n.dec_slabs_node(slab.objects)
        pfn = slab.base >> PAGE_SHIFT
        p2s = self.pfn_to_slab
        for i in range(1 << slab.order):
            del p2s[pfn + i]
        self.shadow.unmap_slab(slab.base, slab.order)
        self.slabs.discard(slab)
        if slab.pfmemalloc:
            self.pfmemalloc_slabs -= 1
        self.nr_pages -= 1 << slab.order
        self.machine.pages.free_pages(slab.base, slab.order)

    def set_slab_pfmemalloc(self, slab: Slab, on: bool) -> None:
        """Mark ``slab`` as allocated from memory reserves (``slab_set_pfmemalloc``)
        or not.  The model never does so by itself (reserves are not
        modelled); scenarios and tests do, through here, so that
        :attr:`pfmemalloc_slabs` stays the count of such slabs."""
        if slab.cache is not self:
            raise InvariantError(f"slab at 0x{slab.base:x} is not a slab of {self.name}")
        if slab.pfmemalloc != on:
            slab.pfmemalloc = on
            self.pfmemalloc_slabs += 1 if on else -1

    # ============================================================= user API
    def _check_usable(self, op: str) -> None:
        if self.destroyed:
            raise CacheDestroyedError(self.name, op)

    def _context(self, cpu: int, context: str) -> bool:
        """Validate cpu/context; True for irq/NMI (trylock may fail)."""
        self.machine.check_cpu(cpu)
        if context not in CONTEXTS:
            raise SlubsimUsageError(f"context must be one of {', '.join(CONTEXTS)}")
        irq = context != "task"
        if not irq and self.layer.lock_held(cpu):
            raise LockRecursionError(self.name, cpu)
        return irq

    def alloc(self, cpu: int = 0, node: int = NUMA_NO_NODE, context: str = "task") -> int:
        """``kmem_cache_alloc[_node]()`` on ``cpu``: the object's address, or 0."""
        self._check_usable("kmem_cache_alloc")
        irq = self._context(cpu, context)
        if node != NUMA_NO_NODE and not 0 <= node < self.machine.nr_nodes:
            raise SlubsimUsageError(f"node {node} does not exist")
        k = self.kernel
        if (
            k.fail_slab is not None
            and (not k.failslab_cache_filter or self.flags & F.SLAB_FAILSLAB)
            and k.fail_slab.should_fail()
        ):
            return 0  # should_failslab(): NULL before SLUB runs, no counters
        obj = self.layer.alloc(cpu, node, False, irq)
        if obj:
            self.shadow.set_state(obj, LIVE)
            self.nlive += 1
        return obj

    def replay_alloc(self, cpu: int, node: int) -> int:
        """:meth:`alloc` for trace replay: task context, CPU and node already
        validated by the replayer, no failslab (the traced kernel's failures
        are replayed as such)."""
        if self.destroyed:
            raise CacheDestroyedError(self.name, "kmem_cache_alloc")
        obj = self.layer.alloc(cpu, node, False, False)
        if obj:
            # ObjectShadow.set_state's node-0 case inline: as Python the
            # call costs twice the rest (the replay's every allocation)
            sh = self.shadow
            g = (obj - NODE0_BASE) >> GRANULE_SHIFT
            if 0 <= g < sh.stride:
                sh.states[g] = LIVE
            else:
                sh.set_state(obj, LIVE)
            self.nlive += 1
        return obj

    def replay_free(self, p: int, cpu: int) -> None:
        """:meth:`free` for trace replay (same checks on the object)."""
        if self.destroyed:
            raise CacheDestroyedError(self.name, "kmem_cache_free")
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        # _check_free's passing case inline -- the object LIVE in this cache's
        # slab becomes FREED (ObjectShadow.release, its node-0 case inline as
        # in replay_alloc); _check_free explains (raises for) any other case
        sh = self.shadow
        g = (p - NODE0_BASE) >> GRANULE_SHIFT
        if (
            slab is not None
            and slab.cache is self
            and 0 <= g < sh.stride
            and not p & GRANULE_MASK
            and sh.states[g] == LIVE
        ):
            sh.states[g] = FREED
        elif slab is None or slab.cache is not self or not sh.release(p):
            slab = self._check_free(p)
            sh.set_state(p, FREED)
        self.nlive -= 1
        self.layer.free(cpu, p, slab, False, False)

    def alloc_nolock(self, cpu: int = 0, node: int = NUMA_NO_NODE, context: str = "task") -> int:
        """The cache part of ``kmalloc_nolock()``: never refills or allocates a sheaf."""
        self._check_usable("kmalloc_nolock")
        irq = self._context(cpu, context)
        obj = self.layer.alloc(cpu, node, True, irq)
        if obj:
            self.shadow.set_state(obj, LIVE)
            self.nlive += 1
        return obj

    def free(self, p: int, cpu: int = 0, context: str = "task") -> None:
        """``kmem_cache_free(s, p)`` on ``cpu``."""
        self._check_usable("kmem_cache_free")
        irq = self._context(cpu, context)
        slab = self._check_free(p)
        self.shadow.set_state(p, FREED)
        self.nlive -= 1
        self.layer.free(cpu, p, slab, False, irq)

    def free_nolock(self, p: int, cpu: int = 0, context: str = "task") -> None:
        """The cache part of ``kfree_nolock()``."""
        self._check_usable("kfree_nolock")
        irq = self._context(cpu, context)
        slab = self._check_free(p)
        self.shadow.set_state(p, FREED)
        self.nlive -= 1
        self.layer.free(cpu, p, slab, True, irq)

    def _check_free(self, p: int) -> Slab:
        """Check a pointer before freeing it; raise the kernel-style error."""
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        if slab is not None and slab.cache is self and self.shadow.state(p) == LIVE:
            return slab
        if slab is None:
            raise InvalidFreeError(
                self.name,
                p,
                f"kmem_cache_free({self.name}, 0x{p:x}): object is not in a slab page",
            )
        if slab.cache is not self:
            raise WrongCacheError(self.name, p, slab.cache.name)
        if slab.index_of(p) < 0:
            raise InvalidFreeError(self.name, p, f"Invalid object pointer 0x{p:x}")
        where = self.where_is(p)
        if self.shadow.state(p) == FREED:
            raise DoubleFreeError(self.name, p, where)
        raise NeverAllocatedError(self.name, p, where + " and was never allocated")

    def where_is(self, p: int) -> str:
        """Describe where an object is (slow; for error messages and debugging)."""
        if self.shadow.state(p) == LIVE and self.shadow.owner(p) == self.shadow_id:
            return "in use"
        for where, x in self.layer.cached_objects():
            if x == p:
                return f"cached in {where}"
        slab = self._slab_or_none(p)
        if slab is not None and p in slab.freelist:
            return f"free in slab 0x{slab.base:x}"
        return "unknown"

    def alloc_bulk(self, n: int, cpu: int = 0) -> list[int]:
        """``kmem_cache_alloc_bulk()``: ``n`` objects, or ``[]`` on failure."""
        self._check_usable("kmem_cache_alloc_bulk")
        self._context(cpu, "task")
        if n < 0:
            raise SlubsimUsageError("bulk size must be >= 0")
        k = self.kernel
        if n == 0 or (k.fail_slab is not None and k.fail_slab.should_fail()):
            return []
        objs = self.layer.alloc_bulk(cpu, n)
        if not objs:
            return []
        sh = self.shadow
        for x in objs:
            sh.set_state(x, LIVE)
        self.nlive += len(objs)
        return objs

    def free_bulk(self, objs: list[int], cpu: int = 0) -> None:
        """``kmem_cache_free_bulk()``."""
        self._check_usable("kmem_cache_free_bulk")
        self._context(cpu, "task")
        if len(set(objs)) != len(objs):
            dup = next(x for x in objs if objs.count(x) > 1)
            raise DoubleFreeError(self.name, dup, "listed twice in one bulk free")
        for x in objs:
            self._check_free(x)
        sh = self.shadow
        for x in objs:
            sh.set_state(x, FREED)
        self.nlive -= len(objs)
        self.layer.free_bulk(cpu, list(objs))

    def kfree_rcu(self, p: int, cpu: int = 0, context: str = "task") -> None:
        """``kfree_rcu()`` of an object of this cache (see :meth:`Kernel.kfree_rcu`)."""
        self.kernel.kfree_rcu(p, cpu=cpu, context=context)

    # -- prefilled sheaves (kmem_cache_prefill_sheaf & co) ---------------------
    def prefill_sheaf(self, size: int, cpu: int = 0) -> Sheaf | None:
        """``kmem_cache_prefill_sheaf()``: a sheaf with at least ``size`` objects."""
        self._check_usable("kmem_cache_prefill_sheaf")
        self._context(cpu, "task")
        return self.layer.prefill_sheaf(cpu, size)

    def alloc_from_sheaf(self, sheaf: Sheaf, cpu: int = 0) -> int:
        """``kmem_cache_alloc_from_sheaf()``: pop one object; no counter moves."""
        self._check_usable("kmem_cache_alloc_from_sheaf")
        if not sheaf.objects:
            return 0
        obj = sheaf.objects.pop()
        self.shadow.set_state(obj, LIVE)
        self.nlive += 1
        return obj

    def return_sheaf(self, sheaf: Sheaf, cpu: int = 0) -> None:
        """``kmem_cache_return_sheaf()``."""
        self._check_usable("kmem_cache_return_sheaf")
        self._context(cpu, "task")
        self.layer.return_sheaf(cpu, sheaf)

    def refill_sheaf(self, sheaf: Sheaf, size: int, cpu: int = 0) -> Sheaf | None:
        """``kmem_cache_refill_sheaf()``: the sheaf to keep using, or None (-ENOMEM,
        the old sheaf stays valid)."""
        self._check_usable("kmem_cache_refill_sheaf")
        self._context(cpu, "task")
        err, sh = self.layer.refill_sheaf(cpu, sheaf, size)
        return None if err else sh

    # -- maintenance -----------------------------------------------------------
    def flush_cpu(self, cpu: int, executing_cpu: int | None = None) -> None:
        """Flush one CPU's per-CPU caches (``flush_cpu_sheaves`` on that CPU)."""
        self._check_usable("flush")
        self.layer.flush_cpu(cpu, cpu if executing_cpu is None else executing_cpu)

    def flush_all(self) -> None:
        """Models ``flush_all()``: each online CPU flushes itself (workqueue)."""
        for cpu in self.machine.online_cpus():
            self.layer.flush_cpu(cpu, cpu)

    def shrink(self, cpu: int = 0) -> bool:
        """Models ``kmem_cache_shrink()`` / ``__kmem_cache_do_shrink()`` (spec §6.15).

        Flush all CPUs, shrink the barns, discard **every** empty slab on the
        partial lists (no FREE_SLAB) and sort the rest by free objects (1..32
        first).  Returns True if any slab remains."""
        self._check_usable("kmem_cache_shrink")
        self.machine.check_cpu(cpu)
        self.flush_all()
        self.layer.shrink_node_caches(cpu)
        return self._shrink_partial_lists()

    def _shrink_partial_lists(self) -> bool:
        for n in self.nodes:
            if n is None:
                continue
            discard: list[Slab] = []
            promote: list[list[Slab]] = [[] for _ in range(SHRINK_PROMOTE_MAX)]
            rest: list[Slab] = []
            for slab in n.partial_slabs():
                free = slab.objects - slab.inuse
                if free == slab.objects:
                    discard.append(slab)
                elif 1 <= free <= SHRINK_PROMOTE_MAX:
                    promote[free - 1].insert(0, slab)  # list_move: head insertion
                else:
                    rest.append(slab)
            for slab in list(n.partial_slabs()):
                n.remove_partial(slab)
            for bucket in promote:
                for slab in bucket:
                    n.add_partial(slab, True)
            for slab in rest:
                n.add_partial(slab, True)
            for slab in discard:
                self.discarded_without_stat += 1
                self.discard_slab(slab)
        return bool(self.slabs)

    def reconfigure(
        self,
        sheaf_capacity: int | None = None,
        min_partial: int | None = None,
        object_size: int | None = None,
        slab_size: int | None = None,
        order: int | None = None,
        objs_per_slab: int | None = None,
        barn_max_full: int | None = None,
        barn_max_empty: int | None = None,
        cpu_partial: int | None = None,
        pca_capacity: int | None = None,
        cpu: int = 0,
    ) -> None:
        """Change tunables for what-if runs (and impose a real kernel's geometry).

        ``min_partial`` and the barn limits can change at any time (like the
        sysfs ``min_partial`` file).  A new ``sheaf_capacity`` flushes every
        per-CPU sheaf and the barns and rebuilds the per-CPU layer.  Slab
        geometry (``slab_size``, ``order``, ``objs_per_slab``) can only change
        while the cache has no slabs.
        """
        from .kmalloc import get_order

        if (slab_size, order, objs_per_slab) != (None, None, None) and self.slabs:
            raise SlubsimUsageError(f"{self.name}: slab geometry is fixed once slabs exist")
        if object_size is not None:
            self.object_size = object_size
        if slab_size is not None:
            self.size = slab_size
            self.min_order = get_order(slab_size)
            self.min_objects = (4096 << self.min_order) // slab_size
        if order is not None:
            self.order = order
        if objs_per_slab is not None:
            self.objects = objs_per_slab
        elif order is not None or slab_size is not None:
            self.objects = (4096 << self.order) // self.size
        if min_partial is not None:
            if min_partial < 0:
                raise SlubsimUsageError("min_partial must be >= 0")
            self.min_partial = min_partial
        if sheaf_capacity is not None and sheaf_capacity != self.sheaf_capacity:
            if sheaf_capacity < 0:
                raise SlubsimUsageError("sheaf_capacity must be >= 0")
            layer = self.layer
            self.flush_all()
            layer.submit_partial_rcu_sheaves(cpu)
            self.kernel.rcu.barrier()
            layer.shrink_node_caches(cpu)
            prefilled = getattr(layer, "prefilled", {})
            if prefilled:
                raise SlubsimUsageError(f"{self.name}: prefilled sheaves are still out")
            destroy = getattr(layer, "destroy_percpu", None)
            if callable(destroy):
                destroy(cpu)
            self.sheaf_capacity = sheaf_capacity
            factory = self.kernel.generation.layer
            self.layer = factory(self, cpu)
            self.nr_sheaves = self.layer.live_sheaves()
        if cpu_partial is not None:
            setter = getattr(self.layer, "set_cpu_partial", None)
            if setter is None:
                raise SlubsimUsageError(f"{self.layer.generation} has no cpu partial lists")
            setter(cpu_partial)
        if pca_capacity is not None and int(getattr(self.layer, "count", 0) or 0):
            if pca_capacity <= 0:
                raise SlubsimUsageError("pca_capacity must be positive")
            self.flush_all()
            self.layer.count = pca_capacity  # type: ignore[attr-defined]
        for attr, val in (("max_full", barn_max_full), ("max_empty", barn_max_empty)):
            if val is not None:
                if val < 0:
                    raise SlubsimUsageError("barn limits must be >= 0")
                if not hasattr(self.layer, attr):
                    raise SlubsimUsageError(
                        f"{self.layer.generation} has no barn ({attr} cannot be set)"
                    )
                setattr(self.layer, attr, val)

    @contextmanager
    def cpu_lock_held(self, cpu: int) -> Iterator[None]:
        """Simulate a task on ``cpu`` being inside a per-CPU-layer operation of
        this cache (``local_trylock`` held): allocations and frees from
        ``context="irq"``/``"nmi"`` take the trylock-failure paths, task-context
        operations raise :class:`LockRecursionError`."""
        self.machine.check_cpu(cpu)
        if self.layer.lock_held(cpu):
            raise LockRecursionError(self.name, cpu)
        self.layer.set_lock_held(cpu, True)
        try:
            yield
        finally:
            self.layer.set_lock_held(cpu, False)

    # ================================================================ stats
    @property
    def stat_items(self) -> tuple[str, ...]:
        items: tuple[str, ...] = getattr(self.layer, "stat_items", ())
        return items

    def stats(self) -> dict[str, int]:
        """Every stat item, summed over online CPUs (as sysfs shows it)."""
        online = self.machine.online_cpus()
        out: dict[str, int] = {}
        for i, name in enumerate(self.stat_items):
            out[name] = sum(self.stat[c][i] & 0xFFFFFFFF for c in online)
        return out

    def stats_per_cpu(self) -> dict[str, dict[int, int]]:
        """``{item: {cpu: value}}`` for online CPUs with non-zero values."""
        online = self.machine.online_cpus()
        out: dict[str, dict[int, int]] = {}
        for i, name in enumerate(self.stat_items):
            out[name] = {c: self.stat[c][i] & 0xFFFFFFFF for c in online if self.stat[c][i]}
        return out

    def stats_text(self, item: str) -> str:
        """The sysfs text of one stat file without the newline: ``"5423 C0=357 C1=4357"``."""
        idx = self._stat_index(item)
        return format_stat([row[idx] for row in self.stat], self.machine.online_cpus())

    def clear_stat(self, item: str) -> None:
        """Writing ``0`` to the stat file: clears the item on all online CPUs."""
        idx = self._stat_index(item)
        for c in self.machine.online_cpus():
            self.stat[c][idx] = 0
        self.stats_cleared = True

    def _stat_index(self, item: str) -> int:
        try:
            return self.stat_items.index(item)
        except ValueError:
            raise SlubsimUsageError(
                f"{item!r} is not a stat item of {self.layer.generation}; "
                f"valid: {', '.join(self.stat_items)}"
            ) from None

    # ================================================================ sysfs
    @property
    def sysfs_dir(self) -> str:
        """``/sys/kernel/slab/<dir>``: the name for unmergeable caches, else the
        unique id ``:[flags-]<size %07u>`` (``create_unique_id``)."""
        if self.kernel.slab_unmergeable(self):
            return self.name
        tag = ""
        if self.flags & F.SLAB_CACHE_DMA:
            tag += "d"
        if self.flags & F.SLAB_CACHE_DMA32:
            tag += "D"
        if self.flags & F.SLAB_RECLAIM_ACCOUNT:
            tag += "a"
        if self.flags & F.SLAB_CONSISTENCY_CHECKS:
            tag += "F"
        if self.flags & F.SLAB_ACCOUNT:
            tag += "A"
        return ":" + (tag + "-" if tag else "") + f"{self.size:07d}"

    def _node_values(self, fn: Callable[[KmemCacheNode], int]) -> dict[int, int]:
        return {n.nid: fn(n) for n in self.nodes if n is not None}

    def sysfs(self) -> dict[str, int | str]:
        """The non-stat sysfs attributes (spec §11.2), values as numbers/strings."""
        partial = self._node_values(lambda n: n.nr_partial)
        obj_partial = self._node_values(lambda n: sum(s.inuse for s in n.partial_slabs()))
        free_partial = self._node_values(
            lambda n: sum(s.objects - s.inuse for s in n.partial_slabs())
        )
        slabs = self._node_values(lambda n: n.nr_slabs)
        total = self._node_values(lambda n: n.total_objects)
        fl = self.flags
        out: dict[str, int | str] = {
            "object_size": self.object_size,
            "slab_size": self.size,
            "objs_per_slab": self.objects,
            "order": self.order,
            "sheaf_capacity": self.sheaf_capacity,
            "min_partial": self.min_partial,
            "cpu_partial": 0,
            "slabs_cpu_partial": "0(0)",
            "cpu_slabs": 0,
            "partial": sum(partial.values()),
            "objects_partial": sum(obj_partial.values()),
            "slabs": sum(slabs.values()),
            "objects": sum(total.values()) - sum(free_partial.values()),
            "total_objects": sum(total.values()),
            "aliases": max(self.refcount - 1, 0),
            "align": self.align,
            "ctor": "ctor" if self.ctor else "",
            "hwcache_align": int(bool(fl & F.SLAB_HWCACHE_ALIGN)),
            "reclaim_account": int(bool(fl & F.SLAB_RECLAIM_ACCOUNT)),
            "destroy_by_rcu": int(bool(fl & F.SLAB_TYPESAFE_BY_RCU)),
            "sanity_checks": int(bool(fl & F.SLAB_CONSISTENCY_CHECKS)),
            "trace": int(bool(fl & F.SLAB_TRACE)),
            "red_zone": int(bool(fl & F.SLAB_RED_ZONE)),
            "poison": int(bool(fl & F.SLAB_POISON)),
            "store_user": int(bool(fl & F.SLAB_STORE_USER)),
            "remote_node_defrag_ratio": self.remote_node_defrag_ratio // 10,
            "failslab": int(bool(fl & F.SLAB_FAILSLAB)),
            "skip_kfence": int(bool(fl & F.SLAB_SKIP_KFENCE)),
        }
        out.update(self.layer.sysfs_extra())
        return out

    def sysfs_read(self, attr: str) -> str:
        """Exact file contents of ``/sys/kernel/slab/<cache>/<attr>`` (with ``\\n``)."""
        if attr in self.stat_items:
            return self.stats_text(attr) + "\n"
        per_node = {
            "partial": lambda n: n.nr_partial,
            "objects_partial": lambda n: sum(s.inuse for s in n.partial_slabs()),
            "slabs": lambda n: n.nr_slabs,
            "total_objects": lambda n: n.total_objects,
            "objects": lambda n: (
                n.total_objects - sum(s.objects - s.inuse for s in n.partial_slabs())
            ),
        }
        if attr in per_node:
            vals = self._node_values(per_node[attr])
            text = str(sum(vals.values()))
            if self.kernel.config.numa:
                text += "".join(f" N{nid}={v}" for nid, v in sorted(vals.items()) if v)
            return text + "\n"
        attrs = self.sysfs()
        if attr not in attrs:
            raise SlubsimUsageError(f"no sysfs attribute {attr!r}")
        return f"{attrs[attr]}\n"

    # ============================================================ invariants
    def validate(self) -> None:
        """Check the model's invariants (spec §9.3); raise InvariantError.

        * every object of every slab is in exactly one place: free in its slab,
          cached in a sheaf/barn/rcu/prefilled/deferred list, or live;
        * ``inuse`` of each slab = objects not on its freelist;
        * partial lists, ``nr_partial``, ``SL_partial`` and the per-node slab and
          object counts agree; full slabs are on no list;
        * ``sheaf_alloc - sheaf_free`` = sheaf structs alive;
          ``alloc_slab - free_slab - silent discards`` = slabs.
        """
        where: dict[int, str] = {}

        def place(x: int, w: str) -> None:
            if x in where:
                raise InvariantError(f"{self.name}: object 0x{x:x} both {where[x]} and {w}")
            where[x] = w

        for slab in self.slabs:
            if slab.cache is not self:
                raise InvariantError(f"{self.name}: foreign slab {slab}")
            if slab.inuse != slab.objects - len(slab.freelist):
                raise InvariantError(f"{self.name}: {slab} inuse does not match its freelist")
            for x in slab.freelist:
                if slab.index_of(x) < 0:
                    raise InvariantError(f"{self.name}: 0x{x:x} on the freelist of {slab}")
                place(x, f"free in {slab}")
            if slab.on_partial and slab.inuse == slab.objects:
                raise InvariantError(f"{self.name}: full {slab} on the partial list")
            if (
                not slab.on_partial
                and slab.inuse < slab.objects
                and not slab.frozen
                and slab.cpu_partial_of < 0
            ):
                raise InvariantError(f"{self.name}: {slab} with free objects is on no list")
        for w, x in self.layer.cached_objects():
            place(x, w)
        for cpu, pending in enumerate(self.kernel.kvfree_rcu_pending):
            for x in pending:
                owner = self._slab_or_none(x)
                if owner is not None and owner.cache is self:
                    place(x, f"cpu{cpu}.kvfree_rcu batch")
        live = self._live_list()
        for x in live:
            place(x, "in use")
        for x in where:
            owner = self._slab_or_none(x)
            if owner is None or owner.cache is not self or owner.index_of(x) < 0:
                raise InvariantError(f"{self.name}: 0x{x:x} ({where[x]}) is not an object")
        if self.inuse_total != sum(s.inuse for s in self.slabs):
            raise InvariantError(f"{self.name}: inuse_total out of step with the slabs")
        if self.nlive != len(live):
            raise InvariantError(f"{self.name}: nlive out of step with the objects")
        total = sum(s.objects for s in self.slabs)
        if len(where) != total:
            raise InvariantError(
                f"{self.name}: {total} objects in slabs but {len(where)} accounted for"
            )
        for n in self.nodes:
            if n is None:
                continue
            cnt = 0
            prev = None
            for slab in n.partial_slabs():
                cnt += 1
                if not slab.on_partial or slab.nid != n.nid or slab.prev is not prev:
                    raise InvariantError(f"{self.name}: node {n.nid} partial list corrupt")
                prev = slab
            if cnt != n.nr_partial or n.tail is not prev:
                raise InvariantError(
                    f"{self.name}: node {n.nid} nr_partial {n.nr_partial} != {cnt}"
                )
            mine = [s for s in self.slabs if s.nid == n.nid]
            if n.nr_slabs != len(mine) or n.total_objects != sum(s.objects for s in mine):
                raise InvariantError(f"{self.name}: node {n.nid} slab counts wrong")
        if sum(s.on_partial for s in self.slabs) != sum(
            n.nr_partial for n in self.nodes if n is not None
        ):
            raise InvariantError(f"{self.name}: SL_partial bits disagree with the lists")
        if not self.stats_cleared:
            st = self.stats()
            if "sheaf_alloc" in st:
                alive = st["sheaf_alloc"] - st["sheaf_free"] + self.adopted_sheaves
                counted = getattr(self.layer, "count_sheaves", lambda: alive)()
                if alive != self.layer.live_sheaves() or alive != counted:
                    raise InvariantError(
                        f"{self.name}: sheaf_alloc-sheaf_free={alive}, "
                        f"model holds {counted} sheaves"
                    )
            slabs_ctr = (
                sum(self.stat[c][self.i_alloc_slab] for c in range(self.machine.nr_cpus))
                - sum(self.stat[c][self.i_free_slab] for c in range(self.machine.nr_cpus))
                - self.discarded_without_stat
                + self.adopted_slabs
            )
            if slabs_ctr != len(self.slabs):
                raise InvariantError(
                    f"{self.name}: alloc_slab-free_slab-discards={slabs_ctr} "
                    f"but {len(self.slabs)} slabs"
                )

    # ================================================================ misc
    def mark_allocated(self, p: int) -> None:
        """Record that an object taken from a slab went to the user."""
        self.shadow.set_state(p, LIVE)
        self.nlive += 1

    def mark_freed(self, p: int) -> None:
        """Record that a live object left the user (kfree_rcu, kfree_bulk)."""
        self.shadow.set_state(p, FREED)
        self.nlive -= 1

    def is_live(self, p: int) -> bool:
        """Whether ``p`` is an object of this cache with a user."""
        return self.shadow.state(p) == LIVE and self.shadow.owner(p) == self.shadow_id

    def live_objects(self) -> int:
        """Objects with a user, counted in the shadow (``nlive`` keeps the count)."""
        return len(self._live_list())

    def _live_list(self) -> list[int]:
        sh = self.shadow
        out: list[int] = []
        for slab in self.slabs:
            out.extend(sh.live_in(slab.base, slab.objects, slab.size))
        return out

    def cached_objects(self) -> int:
        return sum(1 for _ in self.layer.cached_objects())

    def __repr__(self) -> str:
        return f"<KmemCache {self.name} size={self.size} objs={self.objects} order={self.order}>"
