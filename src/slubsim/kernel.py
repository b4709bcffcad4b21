"""One allocator generation running on a :class:`~slubsim.machine.Machine`.

``Kernel`` is the top of the model: it boots the boot caches and the kmalloc
caches (``kmem_cache_init``), creates caches with the kernel's merge rules
(``__kmem_cache_alias`` / ``find_mergeable``), routes ``kmalloc``/``kfree`` to
size classes or the page allocator, runs ``kfree_rcu`` against an explicit
RCU model, and handles CPU hotplug.  The per-CPU layer each cache gets is the
one of the chosen generation (:data:`GENERATIONS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .cache import KmemCache, build_detached_freelist, slabs_of
from .classic import ClassicLayer
from .constants import (
    KMALLOC_MAX_CACHE_SIZE,
    KMALLOC_MAX_SIZE,
    NUMA_NO_NODE,
    PAGE_SHIFT,
    POINTER_SIZE,
    ZERO_SIZE_PTR,
)
from .errors import InvalidFreeError, SlubsimUsageError
from .faults import FaultAttr
from .flags import (
    SLAB_MERGE_SAME_73,
    SLAB_MERGE_SAME_612,
    SLAB_NEVER_MERGE_73,
    SLAB_NEVER_MERGE_612,
    SlabFlag,
    parse_flags,
    parse_gfp,
)
from .geometry import align_up, calculate_alignment, compute_geometry, kmalloc_align
from .kmalloc import (
    KMALLOC_CGROUP,
    KMALLOC_DMA,
    KMALLOC_NORMAL,
    KMALLOC_RECLAIM,
    KMALLOC_SIZES,
    KMALLOC_TYPE_FLAGS,
    get_order,
    kmalloc_cache_name,
    kmalloc_index_size,
    kmalloc_type,
)
from .machine import Machine
from .optin import OptInSheavesLayer
from .pca import DEFAULT_OPT_IN, PcaLayer, PcaV3Layer
from .pcpu import PerCpuLayer
from .rcu import Rcu
from .shadow import ObjectShadow
from .sheaves import SheavesLayer
from .slab import Slab
from .stats import STAT_ITEMS_73, STAT_ITEMS_612, STAT_ITEMS_618, STAT_ITEMS_RFC_PCA

F = SlabFlag


@dataclass(frozen=True)
class Generation:
    """What differs between allocator generations, besides the per-CPU layer."""

    name: str
    stat_items: tuple[str, ...]
    layer: Callable[[KmemCache, int], PerCpuLayer]
    never_merge: SlabFlag
    merge_same: SlabFlag
    #: every cache gets sheaves by default (7.x); explicit capacity => NO_MERGE
    default_sheaves: bool
    description: str = ""
    #: 6.18/6.19: only caches that ask get sheaves, of exactly the asked capacity
    explicit_sheaves: bool = False


GENERATIONS: dict[str, Generation] = {
    "7.3": Generation(
        name="7.3",
        stat_items=STAT_ITEMS_73,
        layer=SheavesLayer,
        never_merge=SLAB_NEVER_MERGE_73,
        merge_same=SLAB_MERGE_SAME_73,
        default_sheaves=True,
        description="Linux 7.x sheaves for all (modelled on 7.3.4)",
    ),
    "6.12": Generation(
        name="6.12",
        stat_items=STAT_ITEMS_612,
        layer=ClassicLayer,
        never_merge=SLAB_NEVER_MERGE_612,
        merge_same=SLAB_MERGE_SAME_612,
        default_sheaves=False,
        description="Linux 6.12 classic: cpu slab + cpu partial slabs (modelled on 6.12.117)",
    ),
    "6.18": Generation(
        name="6.18",
        stat_items=STAT_ITEMS_618,
        layer=OptInSheavesLayer,
        never_merge=SLAB_NEVER_MERGE_612,
        merge_same=SLAB_MERGE_SAME_612,
        default_sheaves=False,
        explicit_sheaves=True,
        description="Linux 6.18/6.19 opt-in sheaves on top of the cpu slab (double caching)",
    ),
    "rfc-pca": Generation(
        name="rfc-pca",
        stat_items=STAT_ITEMS_RFC_PCA,
        layer=PcaLayer,
        never_merge=SLAB_NEVER_MERGE_612,
        merge_same=SLAB_MERGE_SAME_612,
        default_sheaves=False,
        description="2023 RFC v2 percpu array (never merged) on top of 6.12",
    ),
    "rfc-pca-v3": Generation(
        name="rfc-pca-v3",
        stat_items=STAT_ITEMS_RFC_PCA,
        layer=PcaV3Layer,
        never_merge=SLAB_NEVER_MERGE_612,
        merge_same=SLAB_MERGE_SAME_612,
        default_sheaves=False,
        description="2023 RFC v3 percpu array: half-array refill/flush, bulk, NUMA bypass",
    ),
}

#: Other spellings accepted for a generation.
VERSION_ALIASES = {
    "7": "7.3",
    "7.0": "7.3",
    "7.1": "7.3",
    "7.2": "7.3",
    "7.3.4": "7.3",
    "6.12.117": "6.12",
    "6.19": "6.18",
    "classic": "6.12",
}


def resolve_version(version: str) -> Generation:
    v = VERSION_ALIASES.get(version, version)
    if v not in GENERATIONS:
        raise SlubsimUsageError(
            f"unknown kernel version {version!r}; available: {', '.join(sorted(GENERATIONS))}"
        )
    return GENERATIONS[v]


@dataclass
class KernelConfig:
    """Kernel configuration that changes the allocator's behaviour.

    Defaults match the shared real-kernel traces (tinyconfig + full SLUB):
    no memcg, no ZONE_DMA, merging on, no slab_debug.  ``numa`` (CONFIG_NUMA)
    defaults to "more than one node".
    """

    numa: bool | None = None
    memcg: bool = False
    zone_dma: bool = False
    slab_merge: bool = True
    #: ``slab_debug=`` flags applied to every cache (e.g. {"SLAB_POISON"})
    slab_debug: frozenset[str] = field(default_factory=frozenset)
    kmem_cache_node_size: int = 64
    kmem_cache_size: int | None = None  # None: 200 (1 node) / 224 (NUMA)
    #: rfc-pca generations: caches that call kmem_cache_setup_percpu_array(count)
    pca_opt_in: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_OPT_IN))


class Kernel:
    """An allocator generation on a machine.

    >>> from slubsim import Machine, Kernel
    >>> k = Kernel(Machine(cpus=2), version="7.3")
    >>> s = k.kmem_cache_create("test64", size=64)
    >>> p = s.alloc(cpu=0); s.free(p, cpu=0)
    >>> s.stats_text("alloc_fastpath")
    '1 C0=1'
    """

    def __init__(
        self,
        machine: Machine,
        version: str = "7.3",
        config: KernelConfig | None = None,
        boot_cpu: int = 0,
    ) -> None:
        self.machine = machine
        self.generation = resolve_version(version)
        self.version = self.generation.name
        self.config = config or KernelConfig()
        if self.config.numa is None:
            self.config.numa = machine.nr_nodes > 1
        if not self.config.numa and machine.nr_nodes > 1:
            raise SlubsimUsageError("a machine with several nodes needs config.numa")
        self.boot_cpu = boot_cpu
        self.caches: list[KmemCache] = []  # slab_caches, creation order
        self.by_name: dict[str, KmemCache] = {}
        self.pfn_to_slab: dict[int, Slab] = {}
        #: which slab objects are with a user (slubsim.shadow); caches number
        #: themselves 1, 2, ... in it (KmemCache.shadow_id)
        self.shadow = ObjectShadow(machine.nr_nodes)
        self.nr_cache_ids = 0
        self.large_kmalloc: dict[int, int] = {}  # address -> order
        self.rcu = Rcu()
        self.rcu.after_gp.append(self._drain_kvfree_rcu)
        # classic kvfree_rcu batches per CPU (ordered dicts: O(1) removal)
        self.kvfree_rcu_pending: list[dict[int, None]] = [{} for _ in range(machine.nr_cpus)]
        self.kvfree_rcu_cpu: dict[int, int] = {}
        self.fail_slab: FaultAttr | None = None
        self.failslab_cache_filter = False
        self.fail_sheaf_alloc: FaultAttr | None = None
        self.kmalloc_caches: dict[tuple[str, int], KmemCache] = {}
        #: destroyed caches that still had objects (the kernel leaks them)
        self.leaked_caches: list[KmemCache] = []
        self._boot()

    # ================================================================= boot
    def _boot(self) -> None:
        """Models ``kmem_cache_init()``: the two boot caches, then the kmalloc
        caches (``create_kmalloc_caches``), which get their sheaves in
        ``bootstrap_kmalloc_sheaves()``."""
        cfg = self.config
        if self.generation.stat_items is not STAT_ITEMS_73:  # 6.12-based generations
            kc_size = cfg.kmem_cache_size or (208 if cfg.numa else 192)
        else:
            kc_size = cfg.kmem_cache_size or (224 if cfg.numa else 200)
        self._create_boot_cache(
            "kmem_cache_node", cfg.kmem_cache_node_size, F.SLAB_HWCACHE_ALIGN | F.SLAB_NO_SHEAVES
        )
        self._create_boot_cache("kmem_cache", kc_size, F.SLAB_HWCACHE_ALIGN | F.SLAB_NO_SHEAVES)
        types = [KMALLOC_NORMAL, KMALLOC_RECLAIM]
        if cfg.zone_dma:
            types.append(KMALLOC_DMA)
        if cfg.memcg:
            types.append(KMALLOC_CGROUP)
        for ktype in types:
            for size in KMALLOC_SIZES:
                flags = F.SLAB_KMALLOC | KMALLOC_TYPE_FLAGS[ktype]
                if cfg.memcg and ktype == KMALLOC_NORMAL:
                    flags |= F.SLAB_NO_MERGE
                s = self._create_boot_cache(kmalloc_cache_name(ktype, size), size, flags)
                s.refcount = 1
                self.kmalloc_caches[(ktype, size)] = s

    def _create_boot_cache(self, name: str, size: int, flags: SlabFlag) -> KmemCache:
        align = kmalloc_align(size) if flags & F.SLAB_KMALLOC else 0
        return self._new_cache(name, size, align, flags, False, None, 0, 0, self.boot_cpu, -1)

    def _new_cache(
        self,
        name: str,
        size: int,
        align: int,
        flags: SlabFlag,
        ctor: bool,
        freeptr_offset: int | None,
        sheaf_capacity: int,
        usersize: int,
        cpu: int,
        refcount: int,
    ) -> KmemCache:
        flags = self._kmem_cache_flags(flags)
        geom = compute_geometry(
            size,
            align,
            flags,
            self.machine.num_present_cpus(),
            ctor=ctor,
            freeptr_offset=freeptr_offset,
            sheaf_capacity=sheaf_capacity,
            # the classic-based generations (6.12, the RFC, 6.18) lay caches out and
            # size cpu partial lists as 6.12 does
            version="7.3" if self.generation.default_sheaves else "6.12",
            has_sheaves=self.generation.default_sheaves,
        )
        if self.generation.explicit_sheaves and sheaf_capacity:
            from dataclasses import replace

            from .flags import SLAB_DEBUG_FLAGS

            # 6.18: the requested capacity verbatim; debug caches ignore it
            geom = replace(geom, sheaf_capacity=0 if flags & SLAB_DEBUG_FLAGS else sheaf_capacity)
        s = KmemCache(self, name, geom, flags, ctor, usersize, refcount)
        layer = self.generation.layer
        s.attach_layer(lambda c: layer(c, cpu), self.generation.stat_items)
        self.caches.append(s)
        self.by_name[name] = s
        return s

    def _kmem_cache_flags(self, flags: SlabFlag) -> SlabFlag:
        """``kmem_cache_flags()``: add ``slab_debug=`` flags."""
        if self.config.slab_debug and not flags & F.SLAB_NO_USER_FLAGS:
            flags |= parse_flags(self.config.slab_debug)
        return flags

    # ============================================================== caches
    def kmem_cache_create(
        self,
        name: str,
        size: int,
        align: int = 0,
        flags: SlabFlag | int | set[str] | list[str] | str | None = None,
        ctor: bool = False,
        sheaf_capacity: int = 0,
        freeptr_offset: int | None = None,
        usersize: int = 0,
        cpu: int = 0,
    ) -> KmemCache:
        """``kmem_cache_create()`` (``__kmem_cache_create_args``).

        Returns the new cache, or the existing cache it was merged into (then
        ``name`` becomes one of its aliases, like the sysfs symlink).
        """
        if not name:
            raise SlubsimUsageError("a cache needs a name")
        if name in self.by_name:
            raise SlubsimUsageError(f"a cache named {name!r} already exists")
        if not 0 < size <= KMALLOC_MAX_SIZE:
            raise SlubsimUsageError(f"object size {size} out of range 1..{KMALLOC_MAX_SIZE}")
        if align < 0 or (align and align & (align - 1)):
            raise SlubsimUsageError("align must be 0 or a power of two")
        if sheaf_capacity < 0:
            raise SlubsimUsageError("sheaf_capacity must be >= 0")
        self.machine.check_cpu(cpu)
        fl = parse_flags(flags)
        if self.generation.layer in (PcaLayer, PcaV3Layer) and name in self.config.pca_opt_in:
            fl |= F.SLAB_NO_MERGE  # the RFC requires it of array caches
        if sheaf_capacity and self.generation.default_sheaves:
            # "caches with specific capacity are special enough" (7.x)
            fl |= F.SLAB_NO_MERGE
        if sheaf_capacity and self.generation.explicit_sheaves:
            fl |= F.SLAB_NO_MERGE  # 6.18: caches with sheaves are unmergeable
        target = self.find_mergeable(size, align, fl, ctor, usersize)
        if target is not None:
            target.refcount += 1
            target.object_size = max(target.object_size, size)
            target.inuse = max(target.inuse, align_up(size, POINTER_SIZE))
            target.aliases.append(name)
            self.by_name[name] = target
            return target
        return self._new_cache(
            name, size, align, fl, ctor, freeptr_offset, sheaf_capacity, usersize, cpu, 1
        )

    def slab_unmergeable(self, s: KmemCache) -> bool:
        """Models ``slab_unmergeable()``."""
        if not self.config.slab_merge:
            return True
        if s.flags & self.generation.never_merge:
            return True
        return bool(s.ctor or s.usersize or s.refcount < 0)

    def find_mergeable(
        self, size: int, align: int, flags: SlabFlag, ctor: bool, usersize: int
    ) -> KmemCache | None:
        """Models ``find_mergeable()`` (spec §12.3): the oldest compatible cache."""
        gen = self.generation
        if not self.config.slab_merge or ctor or usersize:
            return None
        flags = self._kmem_cache_flags(flags)
        if flags & gen.never_merge:
            return None
        size = align_up(size, POINTER_SIZE)
        align = calculate_alignment(flags, align, size)
        size = align_up(size, align)
        for s in self.caches:
            if s.destroyed or self.slab_unmergeable(s):
                continue
            if size > s.size:
                continue
            if (flags & gen.merge_same) != (s.flags & gen.merge_same):
                continue
            if s.size & (align - 1):
                continue
            if s.size - size >= POINTER_SIZE:
                continue
            return s
        return None

    def cache(self, name: str) -> KmemCache:
        """Look a cache up by any of its names or its sysfs directory."""
        s = self.by_name.get(name)
        if s is not None:
            return s
        for c in self.caches:
            if c.sysfs_dir == name:
                return c
        raise SlubsimUsageError(f"no cache named {name!r}")

    def kmem_cache_destroy(self, s: KmemCache, cpu: int = 0) -> None:
        """Models ``kmem_cache_destroy`` -> ``__kmem_cache_shutdown`` (spec §6.15).

        Raises :class:`~slubsim.errors.CacheBusyError` if live objects remain
        (the kernel WARNs and leaks the cache; the model marks it destroyed)."""
        from .errors import CacheBusyError

        if s.destroyed:
            from .errors import CacheDestroyedError

            raise CacheDestroyedError(s.name, "kmem_cache_destroy")
        self.machine.check_cpu(cpu)
        # kvfree_rcu_barrier_on_cache(): submit partial rcu sheaves, wait
        layer = s.layer
        layer.submit_partial_rcu_sheaves(cpu)
        self.rcu.barrier()
        s.refcount -= 1
        if s.refcount > 0:
            return
        s.flush_all()
        self.rcu.barrier()
        layer.shrink_node_caches(cpu)
        # free_partial(): discard empty slabs, report the rest
        for n in s.nodes:
            if n is None:
                continue
            for slab in list(n.partial_slabs()):
                if slab.inuse == 0:
                    n.remove_partial(slab)
                    s.discarded_without_stat += 1
                    s.discard_slab(slab)
        destroy = getattr(layer, "destroy_percpu", None)
        if callable(destroy):
            destroy(cpu)
        s.destroyed = True
        for name in s.aliases:
            self.by_name.pop(name, None)
        if s in self.caches:
            self.caches.remove(s)
        remaining = s.live_objects()
        if s.slabs:
            self.leaked_caches.append(s)
            raise CacheBusyError(s.name, remaining)

    # ============================================================= kmalloc
    def kmalloc_slab(self, size: int, gfp: str | int | None = None) -> KmemCache:
        """``kmalloc_slab()``: the cache serving ``size`` bytes with ``gfp``."""
        ktype = kmalloc_type(parse_gfp(gfp), self.config.zone_dma, bool(self.config.memcg))
        return self.kmalloc_caches[(ktype, kmalloc_index_size(size))]

    def kmalloc(
        self,
        size: int,
        cpu: int = 0,
        gfp: str | int | None = None,
        node: int = NUMA_NO_NODE,
        context: str = "task",
    ) -> int:
        """``kmalloc()``/``kmalloc_node()``: address, ``ZERO_SIZE_PTR`` for 0, 0 on failure.

        Sizes above ``KMALLOC_MAX_CACHE_SIZE`` (8 KiB) go to the page allocator
        (large kmalloc), touching no slab counter."""
        if size < 0:
            raise SlubsimUsageError("kmalloc size must be >= 0")
        if size == 0:
            return ZERO_SIZE_PTR
        if size > KMALLOC_MAX_CACHE_SIZE:
            if size > KMALLOC_MAX_SIZE:
                return 0
            self.machine.check_cpu(cpu)
            order = get_order(size)
            nid = node if node != NUMA_NO_NODE else self.machine.cpu_mem_node[cpu]
            addr = self.machine.pages.alloc_pages(order, nid)
            if addr:
                self.large_kmalloc[addr] = order
            return addr
        return self.kmalloc_slab(size, gfp).alloc(cpu=cpu, node=node, context=context)

    def kfree(self, p: int, cpu: int = 0, context: str = "task") -> None:
        """``kfree()``: NULL and ZERO_SIZE_PTR are no-ops; large kmalloc goes back
        to the page allocator; slab objects to their cache."""
        if p <= ZERO_SIZE_PTR:
            return
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        if slab is None:
            order = self.large_kmalloc.pop(p, None)
            if order is None:
                raise InvalidFreeError("kfree", p, f"kfree(0x{p:x}): object is not in a slab page")
            self.machine.check_cpu(cpu)
            self.machine.pages.free_pages(p, order)
            return
        slab.cache.free(p, cpu=cpu, context=context)

    def ksize(self, p: int) -> int:
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        if slab is not None:
            return slab.cache.object_size
        if p in self.large_kmalloc:
            return 4096 << self.large_kmalloc[p]
        raise InvalidFreeError("ksize", p, "not a kmalloc object")

    def kmalloc_nolock(
        self, size: int, cpu: int = 0, node: int = NUMA_NO_NODE, context: str = "task"
    ) -> int:
        """``kmalloc_nolock()`` (spec §6.16): never refills or allocates sheaves;
        if the first bucket fails, retries once with the next larger one."""
        if not self.generation.default_sheaves:
            raise SlubsimUsageError("kmalloc_nolock() does not exist before Linux 6.18")
        if size <= 0 or size > KMALLOC_MAX_CACHE_SIZE:
            return 0
        s = self.kmalloc_slab(size)
        obj = s.alloc_nolock(cpu=cpu, node=node, context=context)
        if obj or s.object_size >= KMALLOC_MAX_CACHE_SIZE:
            return obj
        s2 = self.kmalloc_slab(s.object_size + 1)
        return s2.alloc_nolock(cpu=cpu, node=node, context=context)

    def kfree_nolock(self, p: int, cpu: int = 0, context: str = "task") -> None:
        """``kfree_nolock()``: sheaf fast path without allocation or flushing,
        else deferred ``__slab_free`` (run when the CPU's lock is free)."""
        if p <= ZERO_SIZE_PTR:
            return
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        if slab is None:
            raise InvalidFreeError("kfree_nolock", p, "kfree_nolock of a non-slab object")
        slab.cache.free_nolock(p, cpu=cpu, context=context)

    def kfree_bulk(self, ptrs: list[int], cpu: int = 0) -> None:
        """``kfree_bulk()`` = ``kmem_cache_free_bulk(NULL, ...)``: detached freelists
        straight to slabs, FREE_SLOWPATH += group size, even for sheaf caches."""
        self.machine.check_cpu(cpu)
        for p in ptrs:
            slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
            if slab is not None:
                slab.cache._check_free(p)
            elif p not in self.large_kmalloc:
                raise InvalidFreeError("kfree_bulk", p, "object is not in a slab page")
        for p in ptrs:
            slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
            if slab is not None:
                slab.cache.mark_freed(p)
        self._kfree_bulk_unchecked(list(ptrs), cpu)

    def _kfree_bulk_unchecked(self, p: list[int], cpu: int) -> None:
        slabs = slabs_of(p, self.pfn_to_slab)
        size = len(p)
        while size:
            size, slab, chain = build_detached_freelist(p, slabs, size)
            if slab is None:
                order = self.large_kmalloc.pop(chain[0], None)
                if order is not None:
                    self.machine.pages.free_pages(chain[0], order)
                continue
            slab.cache.layer.bulk_free_group(cpu, slab, chain)

    # ============================================================ kfree_rcu
    def kfree_rcu(self, p: int, cpu: int = 0, context: str = "task") -> None:
        """``kfree_rcu()`` / ``kvfree_call_rcu()`` (spec §6.12).

        Local objects of sheaf caches go to the CPU's ``rcu_free`` sheaf
        (FREE_RCU_SHEAF); the rest join the classic batch, freed with
        ``kfree_bulk`` after the next grace period (see :mod:`slubsim.rcu`)."""
        if p <= ZERO_SIZE_PTR:
            return
        self.machine.check_cpu(cpu)
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        if slab is None:
            if p not in self.large_kmalloc:
                raise InvalidFreeError("kfree_rcu", p, "object is not in a slab page")
            self.kvfree_rcu_pending[cpu][p] = None
            self.kvfree_rcu_cpu[p] = cpu
            return
        s = slab.cache
        irq = s._context(cpu, context)
        s._check_free(p)
        s.mark_freed(p)
        if not s.layer.kfree_rcu(cpu, p, slab, irq):
            self.kvfree_rcu_pending[cpu][p] = None
            self.kvfree_rcu_cpu[p] = cpu

    def _drain_kvfree_rcu(self) -> None:
        for cpu, batch in enumerate(self.kvfree_rcu_pending):
            if batch:
                self.kvfree_rcu_pending[cpu] = {}
                for p in batch:
                    del self.kvfree_rcu_cpu[p]
                self._kfree_bulk_unchecked(list(batch), cpu)

    def kvfree_rcu_take(self, p: int) -> bool:
        """Remove ``p`` from the classic kvfree_rcu batches (a trace-driven
        replay frees it when the traced kernel did); False if it is not there."""
        cpu = self.kvfree_rcu_cpu.pop(p, None)
        if cpu is None:
            return False
        del self.kvfree_rcu_pending[cpu][p]
        return True

    def kvfree_rcu_take_oldest(self, cache: KmemCache, cpu: int) -> int:
        """Remove the longest-queued object of ``cache`` from the classic
        kvfree_rcu batches -- ``cpu``'s first, then the other CPUs' in order --
        and return it (0: none there).  A trace-driven replay frees it in
        place of an object the traced kernel batched and the model did not."""
        nr = len(self.kvfree_rcu_pending)
        for n in range(nr):
            for p in self.kvfree_rcu_pending[(cpu + n) % nr]:
                slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
                if slab is not None and slab.cache is cache:
                    self.kvfree_rcu_take(p)
                    return p
        return 0

    def kfree_unchecked(self, p: int, cpu: int) -> None:
        """``kfree()`` of an object whose user-side free was already recorded
        (the delayed free of a kfree_rcu'd object)."""
        slab = self.pfn_to_slab.get(p >> PAGE_SHIFT)
        if slab is None:
            order = self.large_kmalloc.pop(p, None)
            if order is not None:
                self.machine.pages.free_pages(p, order)
            return
        slab.cache.layer.free(cpu, p, slab, False, False)

    def kfree_bulk_unchecked(self, ptrs: list[int], cpu: int) -> None:
        """``kfree_bulk()`` of objects already released by their users."""
        self._kfree_bulk_unchecked(list(ptrs), cpu)

    def synchronize_rcu(self, drain_kvfree: bool = True) -> None:
        """End one RCU grace period: run queued callbacks and (unless told not
        to) drain the classic kvfree_rcu batches."""
        self.rcu.grace_period(run_hooks=drain_kvfree)

    def rcu_barrier(self) -> None:
        self.rcu.barrier()

    def kvfree_rcu_barrier(self) -> None:
        """``kvfree_rcu_barrier()`` -> ``flush_all_rcu_sheaves()``: submit every
        CPU's partial rcu_free sheaf (``rcu_free_sheaf_nobarn``), then wait."""
        for s in self.caches:
            s.layer.submit_partial_rcu_sheaves(self.boot_cpu)
        self.rcu.barrier()

    # ============================================================== hotplug
    def cpu_down(self, cpu: int, control_cpu: int | None = None) -> None:
        """Take ``cpu`` offline: ``slub_cpu_dead()`` flushes its per-CPU caches on
        the hotplug control CPU (counters go there)."""
        self.machine.check_cpu(cpu)
        ctl = control_cpu
        if ctl is None:
            ctl = next((c for c in self.machine.online_cpus() if c != cpu), None)
        if ctl is None or ctl == cpu:
            raise SlubsimUsageError("cannot offline the last online CPU")
        self.machine.check_cpu(ctl)
        for s in self.caches:
            if s.layer.lock_held(cpu):
                raise SlubsimUsageError(f"CPU {cpu} holds a sheaf lock of {s.name}")
            s.layer.flush_cpu(cpu, ctl)
        self.machine.online[cpu] = False

    def cpu_up(self, cpu: int) -> None:
        if not 0 <= cpu < self.machine.nr_cpus:
            raise SlubsimUsageError(f"cpu {cpu} out of range")
        self.machine.online[cpu] = True

    # ============================================================== checks
    def validate(self) -> None:
        """``validate()`` every cache and the global slab page map."""
        owned = 0
        for s in self.caches:
            s.validate()
        for s in [*self.caches, *self.leaked_caches]:
            owned += sum(1 << slab.order for slab in s.slabs)
        if owned != len(self.pfn_to_slab):
            from .errors import InvariantError

            raise InvariantError(
                f"{len(self.pfn_to_slab)} pages mapped to slabs, caches own {owned}"
            )

    def kmem_cache_names(self) -> list[str]:
        return [s.name for s in self.caches]
