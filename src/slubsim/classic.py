"""Linux 6.12 "classic" per-CPU layer: cpu slab + lockless freelist + cpu
partial slabs (modelled on Linux 6.12 ``mm/slub.c``; spec §7).

Each CPU owns one *frozen* cpu slab whose free objects it has taken onto its
private ``c->freelist`` (popped and pushed by the tid-cmpxchg fast paths), plus
a chain of unfrozen *cpu partial* slabs (``CONFIG_SLUB_CPU_PARTIAL``).
Fallback order on allocation (``___slab_alloc``): the cpu slab's own freelist
(remote frees, ``alloc_refill``), the cpu partial list, the node partial list
(taking extra slabs for the cpu partial list), a new slab.  A free into the cpu
slab is a fast path; any other free is ``__slab_free``, where the first free
into a full slab parks it on the freeing CPU's partial list.

Sequential replay: the tid cmpxchg never fails (``cmpxchg_double_cpu_fail`` 0)
and interrupts cannot enter a locked section (6.12 disables interrupts under
its ``local_lock``), so ``context="irq"`` behaves like task context here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from .constants import NUMA_NO_NODE
from .pcpu import HIT_CLASSIC, HIT_NONE, PerCpuLayer
from .slab import Slab, push_chain
from .stats import STAT_ITEMS_612

if TYPE_CHECKING:
    from .cache import KmemCache

_I = STAT_ITEMS_612.index
ALLOC_FASTPATH: Final = _I("alloc_fastpath")
ALLOC_SLOWPATH: Final = _I("alloc_slowpath")
FREE_FASTPATH: Final = _I("free_fastpath")
FREE_SLOWPATH: Final = _I("free_slowpath")
FREE_FROZEN: Final = _I("free_frozen")
FREE_ADD_PARTIAL: Final = _I("free_add_partial")
FREE_REMOVE_PARTIAL: Final = _I("free_remove_partial")
ALLOC_FROM_PARTIAL: Final = _I("alloc_from_partial")
ALLOC_SLAB: Final = _I("alloc_slab")
ALLOC_REFILL: Final = _I("alloc_refill")
ALLOC_NODE_MISMATCH: Final = _I("alloc_node_mismatch")
FREE_SLAB: Final = _I("free_slab")
CPUSLAB_FLUSH: Final = _I("cpuslab_flush")
DEACTIVATE_FULL: Final = _I("deactivate_full")
DEACTIVATE_EMPTY: Final = _I("deactivate_empty")
DEACTIVATE_TO_HEAD: Final = _I("deactivate_to_head")
DEACTIVATE_TO_TAIL: Final = _I("deactivate_to_tail")
DEACTIVATE_REMOTE_FREES: Final = _I("deactivate_remote_frees")
DEACTIVATE_BYPASS: Final = _I("deactivate_bypass")
CPU_PARTIAL_ALLOC: Final = _I("cpu_partial_alloc")
CPU_PARTIAL_FREE: Final = _I("cpu_partial_free")
CPU_PARTIAL_NODE: Final = _I("cpu_partial_node")
CPU_PARTIAL_DRAIN: Final = _I("cpu_partial_drain")


class KmemCacheCpu:
    """``struct kmem_cache_cpu``: ``freelist`` is a stack (head at the end),
    ``partial`` the cpu partial chain (head at the end)."""

    __slots__ = ("freelist", "partial", "slab")

    def __init__(self) -> None:
        self.slab: Slab | None = None
        self.freelist: list[int] = []
        self.partial: list[Slab] = []


class ClassicLayer(PerCpuLayer):
    """The 6.12 cpu slab / cpu partial layer."""

    generation = "6.12"
    stat_items = STAT_ITEMS_612

    def __init__(self, cache: KmemCache, creating_cpu: int) -> None:
        super().__init__(cache)
        self.machine = cache.machine
        self.numa = bool(cache.kernel.config.numa)
        self.cpus = [KmemCacheCpu() for _ in range(self.machine.nr_cpus)]
        self.has_cpu_partial = not cache.debug  # kmem_cache_has_cpu_partial()
        self.cpu_partial = cache.geometry.cpu_partial
        self.cpu_partial_slabs = cache.geometry.cpu_partial_slabs
        self.locked = [False] * self.machine.nr_cpus
        #: which of slubsim.hitpath's loops takes its rows: the cpu slab's
        #: (its fast paths and lockless slow paths) for exactly this layer of
        #: a cache without debugging (the rfc-pca and 6.18 subclasses put
        #: their arrays and sheaves in front), else none
        self.hit_kind = HIT_CLASSIC if type(self) is ClassicLayer and not cache.debug else HIT_NONE
        del creating_cpu

    # ------------------------------------------------------------ helpers
    def lock_held(self, cpu: int) -> bool:
        return self.locked[cpu]

    def set_lock_held(self, cpu: int, held: bool) -> None:
        self.locked[cpu] = held

    def _get_freelist(self, slab: Slab) -> list[int]:
        """``get_freelist``/``freeze_slab``: take the slab's whole freelist (head
        at the end), ``inuse = objects``; the slab stays frozen."""
        fl = slab.freelist
        slab.freelist = []
        self.cache.inuse_total += slab.objects - slab.inuse
        slab.inuse = slab.objects
        return fl

    def install_cpu_slab(self, cpu: int, slab: Slab, keep: int = 0) -> bool:
        """Make ``slab`` (on no list) ``cpu``'s cpu slab with its free objects
        on ``c->freelist`` but the ``keep`` last ones, which stay on the slab's
        own freelist (remote frees since it was frozen), as the CPU had it when
        the trace began (slubsim.pretrace); no counter moves.  False if the CPU
        already has one or the slab has nothing free."""
        c = self.cpus[cpu]
        if c.slab is not None or not slab.freelist or self.cache.debug:
            return False
        keep = min(max(keep, 0), len(slab.freelist))
        fl = slab.freelist  # head at the end: the last objects out are first
        c.slab = slab
        slab.frozen = True
        c.freelist = fl[keep:]
        slab.freelist = fl[:keep]
        self.cache.inuse_total += slab.objects - keep - slab.inuse
        slab.inuse = slab.objects - keep
        return True

    def install_cpu_partial(self, cpu: int, slab: Slab) -> bool:
        """Push ``slab`` (on no list, with free objects) onto ``cpu``'s partial
        chain as it was when the trace began (slubsim.pretrace), up to
        ``cpu_partial_slabs``; no counter moves."""
        c = self.cpus[cpu]
        if not self.has_cpu_partial or not slab.freelist or slab.frozen:
            return False
        if len(c.partial) >= max(self.cpu_partial_slabs, 1):
            return False
        slab.cpu_partial_of = cpu
        c.partial.append(slab)
        return True

    # ============================================================== alloc
    def alloc(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        """Models ``__slab_alloc_node``: pop ``c->freelist`` if the cpu slab
        fits the requested node, else ``___slab_alloc``."""
        c = self.cpus[cpu]
        if self.cache.debug:
            return self._alloc_debug(cpu, node)
        slab = c.slab
        if c.freelist and slab is not None and (node == NUMA_NO_NODE or slab.nid == node):
            self.cache.stat[cpu][ALLOC_FASTPATH] += 1
            return c.freelist.pop()
        return self._slab_alloc(cpu, node)

    def _slab_alloc(self, cpu: int, node: int) -> int:
        """Models ``___slab_alloc`` (spec §7.2)."""
        cache = self.cache
        stat = cache.stat[cpu]
        c = self.cpus[cpu]
        stat[ALLOC_SLOWPATH] += 1
        mh = self.machine.node_has_memory
        slab = c.slab
        if slab is not None:
            deactivate = False
            if node != NUMA_NO_NODE and slab.nid != node:
                if mh[node]:
                    stat[ALLOC_NODE_MISMATCH] += 1
                    deactivate = True
                else:
                    node = NUMA_NO_NODE
            if deactivate:
                fl = c.freelist
                c.slab = None
                c.freelist = []
                self._deactivate_slab(cpu, slab, fl)
            else:
                if c.freelist:  # pragma: no cover - only reachable through a race
                    return c.freelist.pop()
                fl = self._get_freelist(slab)
                if not fl:
                    slab.frozen = False
                    c.slab = None
                    stat[DEACTIVATE_BYPASS] += 1
                else:
                    stat[ALLOC_REFILL] += 1
                    c.freelist = fl
                    return fl.pop()
        elif node != NUMA_NO_NODE and not mh[node]:
            node = NUMA_NO_NODE
        # new_slab: the cpu partial list first
        while c.partial:
            slab = c.partial.pop()
            slab.cpu_partial_of = -1
            if node == NUMA_NO_NODE or slab.nid == node:
                c.slab = slab
                slab.frozen = True
                fl = self._get_freelist(slab)
                stat[CPU_PARTIAL_ALLOC] += 1
                c.freelist = fl
                return fl.pop()
            self._put_partials(cpu, [slab])
        # new_objects: node partial lists, then a new slab
        try_thisnode = True
        while True:
            thisnode = node != NUMA_NO_NODE and try_thisnode
            slab = self._get_partial(cpu, node, thisnode)
            if slab is not None:
                slab.frozen = True
                fl = self._get_freelist(slab)
                c.slab = slab
                c.freelist = fl
                return fl.pop()
            target = node if node != NUMA_NO_NODE else self.machine.cpu_mem_node[cpu]
            slab = cache.new_slab(cpu, target, thisnode)
            if slab is None:
                if node != NUMA_NO_NODE and try_thisnode:
                    try_thisnode = False
                    continue
                cache.note_out_of_memory(cpu, node)
                return 0
            stat[ALLOC_SLAB] += 1
            base, size = slab.base, slab.size
            # 6.12 builds the freelist at allocation, in address order
            fl = [base + i * size for i in range(slab.objects - 1, -1, -1)]
            slab.inuse = slab.objects
            cache.inuse_total += slab.objects
            slab.frozen = True
            n = cache.nodes[slab.nid]
            assert n is not None
            n.inc_slabs_node(slab.objects)
            c.slab = slab
            c.freelist = fl
            return fl.pop()

    def _get_partial(self, cpu: int, node: int, thisnode: bool) -> Slab | None:
        """Models ``get_partial`` -> ``get_partial_node`` / ``get_any_partial``."""
        cache = self.cache
        search = self.machine.cpu_mem_node[cpu] if node == NUMA_NO_NODE else node
        slab = self._get_partial_node(cpu, search)
        if slab is not None or (node != NUMA_NO_NODE and thisnode):
            return slab
        if not (self.numa and self.machine.nr_nodes > 1) or cache.remote_node_defrag_ratio == 0:
            return None
        for nid in cache.zonelist(self.machine.cpu_mem_node[cpu]):
            n = cache.nodes[nid]
            if n is not None and n.nr_partial > cache.min_partial:
                slab = self._get_partial_node(cpu, nid)
                if slab is not None:
                    return slab
        return None

    def _get_partial_node(self, cpu: int, nid: int) -> Slab | None:
        """Models ``get_partial_node``: the first slab becomes the cpu slab, up
        to ``cpu_partial_slabs // 2 + 1`` more go to the cpu partial list."""
        cache = self.cache
        n = cache.nodes[nid]
        if n is None or n.nr_partial == 0:
            return None
        cache.list_lock += 1
        stat = cache.stat[cpu]
        first: Slab | None = None
        extra = 0
        for slab in n.partial_slabs():
            if slab.pfmemalloc:
                continue
            n.remove_partial(slab)
            if first is None:
                first = slab
                stat[ALLOC_FROM_PARTIAL] += 1
                if self.cpu_partial_slabs == 0:
                    break
            else:
                self._put_cpu_partial(cpu, slab, drain=False)
                stat[CPU_PARTIAL_NODE] += 1
                extra += 1
                if extra > self.cpu_partial_slabs // 2:
                    break
        return first

    def _deactivate_slab(self, cpu: int, slab: Slab, fl: list[int]) -> None:
        """Models ``deactivate_slab`` (spec §7.3): give the cpu freelist back."""
        cache = self.cache
        stat = cache.stat[cpu]
        tail = False
        if slab.freelist:
            stat[DEACTIVATE_REMOTE_FREES] += 1
            tail = True
        # cpu freelist goes in front of the slab freelist (head at the end)
        slab.freelist.extend(fl)
        slab.inuse -= len(fl)
        cache.inuse_total -= len(fl)
        slab.frozen = False
        n = cache.nodes[slab.nid]
        assert n is not None
        if slab.inuse == 0 and n.nr_partial >= cache.min_partial:
            stat[DEACTIVATE_EMPTY] += 1
            cache.discard_slab(slab)
            stat[FREE_SLAB] += 1
        elif slab.freelist:
            cache.list_lock += 1
            n.add_partial(slab, tail)
            stat[DEACTIVATE_TO_TAIL if tail else DEACTIVATE_TO_HEAD] += 1
        else:
            stat[DEACTIVATE_FULL] += 1

    def _put_cpu_partial(self, cpu: int, slab: Slab, drain: bool) -> None:
        """Models ``put_cpu_partial``: push onto the CPU's chain; with ``drain``
        an existing chain at the limit is moved to the node lists first."""
        c = self.cpus[cpu]
        to_put: list[Slab] = []
        if c.partial and drain and len(c.partial) >= self.cpu_partial_slabs:
            to_put = c.partial
            c.partial = []
        slab.cpu_partial_of = cpu
        c.partial.append(slab)
        if to_put:
            self._put_partials(cpu, list(reversed(to_put)))
            self.cache.stat[cpu][CPU_PARTIAL_DRAIN] += 1

    def _put_partials(self, cpu: int, chain: list[Slab]) -> None:
        """Models ``__put_partials``: ``chain`` head first."""
        cache = self.cache
        stat = cache.stat[cpu]
        discard: list[Slab] = []
        if chain:
            cache.list_lock += 1
        for slab in chain:
            slab.cpu_partial_of = -1
            n = cache.nodes[slab.nid]
            assert n is not None
            if slab.inuse == 0 and n.nr_partial >= cache.min_partial:
                discard.append(slab)
            else:
                n.add_partial(slab, True)
                stat[FREE_ADD_PARTIAL] += 1
        for slab in discard:
            stat[DEACTIVATE_EMPTY] += 1
            cache.discard_slab(slab)
            stat[FREE_SLAB] += 1

    # debug caches: no cpu slab, every allocation from the node lists
    def _alloc_debug(self, cpu: int, node: int) -> int:
        """Debug caches (``kmem_cache_debug``): ``alloc_single_from_partial`` /
        ``alloc_single_from_new_slab``; ALLOC_SLOWPATH every time."""
        cache = self.cache
        stat = cache.stat[cpu]
        stat[ALLOC_SLOWPATH] += 1
        nid = self.machine.cpu_mem_node[cpu] if node == NUMA_NO_NODE else node
        n = cache.nodes[nid]
        if n is not None and n.nr_partial:
            cache.list_lock += 1
            slab = n.head
            assert slab is not None
            obj = slab.freelist.pop()
            slab.inuse += 1
            cache.inuse_total += 1
            if not slab.freelist:
                n.remove_partial(slab)
                if cache.store_user:
                    slab.on_full = True
                    n.full.add(slab)
            return obj
        slab = cache.new_slab(cpu, nid, False)
        if slab is None:
            cache.note_out_of_memory(cpu, node)
            return 0
        stat[ALLOC_SLAB] += 1
        n = cache.nodes[slab.nid]
        assert n is not None
        base, size = slab.base, slab.size
        slab.freelist = [base + i * size for i in range(slab.objects - 1, 0, -1)]
        slab.inuse = 1
        cache.inuse_total += 1
        if slab.objects > 1:
            cache.list_lock += 1
            n.add_partial(slab, False)
        elif cache.store_user:
            slab.on_full = True
            n.full.add(slab)
        n.inc_slabs_node(slab.objects)
        return base

    # =============================================================== free
    def free(self, cpu: int, x: int, slab: Slab, nolock: bool, irq: bool) -> None:
        """Models ``do_slab_free``: the fast path when ``x`` belongs to this
        CPU's cpu slab, else ``__slab_free``."""
        c = self.cpus[cpu]
        if slab is c.slab and not self.cache.debug:
            c.freelist.append(x)
            self.cache.stat[cpu][FREE_FASTPATH] += 1
            return
        self.slab_free_to_slab(cpu, slab, [x])

    def slab_free_to_slab(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        """Models 6.12 ``__slab_free`` (spec §7.7); counts FREE_SLOWPATH once."""
        cache = self.cache
        stat = cache.stat[cpu]
        stat[FREE_SLOWPATH] += 1
        cnt = len(chain)
        was_full = not slab.freelist
        was_frozen = slab.frozen
        if cnt == 1:
            slab.freelist.append(chain[0])
        else:
            push_chain(slab.freelist, chain)
        slab.inuse -= cnt
        cache.inuse_total -= cnt
        new_inuse = slab.inuse
        n = cache.nodes[slab.nid]
        assert n is not None
        if cache.debug:  # free_to_partial_list
            cache.list_lock += 1
            discard = new_inuse == 0 and n.nr_partial >= cache.min_partial
            if was_full:
                if slab.on_full:
                    slab.on_full = False
                    n.full.discard(slab)
                if not discard:
                    n.add_partial(slab, True)
                    stat[FREE_ADD_PARTIAL] += 1
            elif discard:
                n.remove_partial(slab)
                stat[FREE_REMOVE_PARTIAL] += 1
            if discard:
                stat[FREE_SLAB] += 1
                cache.discard_slab(slab)
            return
        take_n = (
            (new_inuse == 0 or was_full)
            and not was_frozen
            and (not self.has_cpu_partial or not was_full)
        )
        if not take_n:
            if was_frozen:
                stat[FREE_FROZEN] += 1
            elif self.has_cpu_partial and was_full:
                self._put_cpu_partial(cpu, slab, drain=True)
                stat[CPU_PARTIAL_FREE] += 1
            return
        cache.list_lock += 1
        if not was_full and not slab.on_partial:
            return  # on some CPU's partial list
        if new_inuse == 0 and n.nr_partial >= cache.min_partial:
            if not was_full:
                n.remove_partial(slab)
                stat[FREE_REMOVE_PARTIAL] += 1
            stat[FREE_SLAB] += 1
            cache.discard_slab(slab)
            return
        if not self.has_cpu_partial and was_full:
            n.add_partial(slab, True)
            stat[FREE_ADD_PARTIAL] += 1

    def bulk_free_group(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        """``slab_free_bulk`` of one detached freelist -> ``do_slab_free(cnt)``."""
        c = self.cpus[cpu]
        if slab is c.slab and not self.cache.debug:
            push_chain(c.freelist, chain)
            self.cache.stat[cpu][FREE_FASTPATH] += len(chain)
            return
        self.slab_free_to_slab(cpu, slab, chain)

    # =============================================================== bulk
    def alloc_bulk(self, cpu: int, n: int) -> list[int] | None:
        """Models 6.12 ``__kmem_cache_alloc_bulk``: pop the cpu freelist
        (ALLOC_FASTPATH each), ``___slab_alloc`` when it runs dry."""
        if n <= 0:
            return None
        c = self.cpus[cpu]
        stat = self.cache.stat[cpu]
        out: list[int] = []
        for _ in range(n):
            if c.freelist and c.slab is not None and not self.cache.debug:
                out.append(c.freelist.pop())
                stat[ALLOC_FASTPATH] += 1
                continue
            obj = (
                self._alloc_debug(cpu, NUMA_NO_NODE)
                if self.cache.debug
                else (self._slab_alloc(cpu, NUMA_NO_NODE))
            )
            if not obj:
                if out:
                    self.free_bulk(cpu, out)
                return None
            out.append(obj)
        return out

    def free_bulk(self, cpu: int, objs: list[int]) -> None:
        """Models ``kmem_cache_free_bulk``: detached freelists to ``do_slab_free``."""
        p = list(objs)
        slabs = self.cache.slabs_of(p)
        size = len(p)
        while size:
            size, slab, chain = self.cache.build_detached_freelist(p, slabs, size)
            self.bulk_free_group(cpu, slab, chain)

    def kfree_rcu(self, cpu: int, x: int, slab: Slab, irq: bool) -> bool:
        """6.12 has no rcu sheaf: every kfree_rcu goes to the kvfree_rcu batch."""
        return False

    # ========================================================== maintenance
    def flush_cpu(self, cpu: int, executing_cpu: int) -> None:
        """Models ``flush_cpu_slab``/``__flush_cpu_slab``: ``flush_slab`` then
        ``put_partials``; counters go to ``executing_cpu``."""
        c = self.cpus[cpu]
        if c.slab is not None:
            slab, fl = c.slab, c.freelist
            c.slab = None
            c.freelist = []
            self._deactivate_slab(executing_cpu, slab, fl)
            self.cache.stat[executing_cpu][CPUSLAB_FLUSH] += 1
        if c.partial:
            chain = list(reversed(c.partial))
            c.partial = []
            self._put_partials(executing_cpu, chain)

    def shrink_node_caches(self, cpu: int) -> None:
        """6.12 has no barn."""

    def set_cpu_partial(self, nr_objects: int) -> None:
        """Writing sysfs ``cpu_partial``: recompute the slab limit, ``flush_all``."""
        from .geometry import cpu_partial_slabs

        if self.cache.debug and nr_objects:
            from .errors import SlubsimUsageError

            raise SlubsimUsageError(f"{self.cache.name}: cpu_partial of a debug cache (-EINVAL)")
        self.cache.flush_all()
        self.cpu_partial = nr_objects
        self.cpu_partial_slabs = (
            cpu_partial_slabs(nr_objects, self.cache.objects) if (nr_objects) else 0
        )

    # ========================================================= introspection
    def cached_objects(self) -> Iterator[tuple[str, int]]:
        for cpu, c in enumerate(self.cpus):
            for x in c.freelist:
                yield f"cpu{cpu}.freelist", x

    def live_sheaves(self) -> int:
        return 0

    def count_sheaves(self) -> int:
        return 0

    def sysfs_extra(self) -> dict[str, int | str]:
        """``cpu_partial``, ``slabs_cpu_partial`` and ``cpu_slabs`` (6.12)."""
        online = self.machine.online_cpus()
        objs = self.cache.objects
        total_slabs = 0
        parts: list[str] = []
        cpu_slabs = 0
        for cpu in online:
            c = self.cpus[cpu]
            ns = len(c.partial)
            if ns:
                total_slabs += ns
                parts.append(f" C{cpu}={ns * objs // 2}({ns})")
            if c.slab is not None:
                cpu_slabs += 1 + ns
        return {
            "cpu_partial": self.cpu_partial,
            "slabs_cpu_partial": f"{total_slabs * objs // 2}({total_slabs})" + "".join(parts),
            "cpu_slabs": cpu_slabs,
        }
