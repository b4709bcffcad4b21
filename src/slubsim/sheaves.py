"""Linux 7.x "sheaves for all" per-CPU layer (modelled on Linux 7.3.4 ``mm/slub.c``).

Sheaves replaced the cpu slab and cpu partial lists in 7.0 (series "slab:
replace cpu (partial) slabs with sheaves", V. Babka, v4 2026-01-23, merged for
7.0; spec §1).  Every CPU has a ``main`` and an optional ``spare`` sheaf (plus
``rcu_free`` for kfree_rcu batching); each node has a barn of full and empty
sheaves.  Fallback order on allocation (spec §6.1-§6.5):

1. ``alloc_from_pcs``: pop the main sheaf;
2. ``__pcs_replace_empty_main``: swap in a non-empty spare, else take a full
   sheaf from the barn (``barn_get``), else refill an empty sheaf from the node
   partial list / new slabs (``refill_sheaf``);
3. ``___slab_alloc``: one object from the first node-partial slab or a new slab.

and on free (§6.6-§6.9): ``free_to_pcs`` pushes onto main; when main is full
``__pcs_replace_full_main`` swaps with the spare, trades with the barn or
allocates an empty sheaf; objects that cannot go to a sheaf (remote node,
pfmemalloc, no sheaves, trylock failure) go straight to ``__slab_free``.

Sequential replay: a CPU never races with itself, so ``cmpxchg`` never fails
and trylocks fail only when the caller says it runs in irq/NMI context while the
CPU's ``local_trylock`` is held (spec §6.16).  Branches that only a race can
reach are kept for fidelity and marked "race" in comments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from .constants import MAX_EMPTY_SHEAVES, MAX_FULL_SHEAVES, NUMA_NO_NODE, PCS_BATCH_MAX
from .node import Barn, KmemCacheNode
from .pcpu import HIT_NONE, HIT_SHEAVES, PerCpuLayer
from .sheaf import BOOTSTRAP_SHEAF, Sheaf
from .slab import Slab, push_chain
from .stats import STAT_ITEMS_73

if TYPE_CHECKING:
    from .cache import KmemCache

E2BIG: Final = -7
ENOMEM: Final = -12


class PerCpuSheaves:
    """``struct slub_percpu_sheaves`` of one CPU."""

    __slots__ = ("deferred", "locked", "main", "rcu_free", "spare")

    def __init__(self, main: Sheaf) -> None:
        self.main = main
        self.spare: Sheaf | None = None
        self.rcu_free: Sheaf | None = None
        self.locked = False  # local_trylock_t held by an interrupted task
        self.deferred: list[int] = []  # kfree_nolock defer_free() llist


class SheavesLayer(PerCpuLayer):
    """Per-CPU sheaves + per-node barns: the only per-CPU layer of Linux 7.x."""

    generation = "7.3"
    stat_items = STAT_ITEMS_73
    #: the stat item counting sheaf hits (7.x re-purposed the fastpath items)
    hit_items = ("alloc_fastpath", "free_fastpath")

    def __init__(self, cache: KmemCache, creating_cpu: int) -> None:
        super().__init__(cache)
        ix = self.stat_items.index
        self.ALLOC_FASTPATH = ix(self.hit_items[0])
        self.FREE_FASTPATH = ix(self.hit_items[1])
        self.ALLOC_NODE_MISMATCH = ix("alloc_node_mismatch")
        self.ALLOC_SLAB = ix("alloc_slab")
        self.ALLOC_SLOWPATH = ix("alloc_slowpath")
        self.BARN_GET = ix("barn_get")
        self.BARN_GET_FAIL = ix("barn_get_fail")
        self.BARN_PUT = ix("barn_put")
        self.BARN_PUT_FAIL = ix("barn_put_fail")
        self.FREE_ADD_PARTIAL = ix("free_add_partial")
        self.FREE_RCU_SHEAF = ix("free_rcu_sheaf")
        self.FREE_RCU_SHEAF_FAIL = ix("free_rcu_sheaf_fail")
        self.FREE_REMOVE_PARTIAL = ix("free_remove_partial")
        self.FREE_SLAB = ix("free_slab")
        self.FREE_SLOWPATH = ix("free_slowpath")
        self.SHEAF_ALLOC = ix("sheaf_alloc")
        self.SHEAF_FLUSH = ix("sheaf_flush")
        self.SHEAF_FREE = ix("sheaf_free")
        self.SHEAF_PREFILL_FAST = ix("sheaf_prefill_fast")
        self.SHEAF_PREFILL_OVERSIZE = ix("sheaf_prefill_oversize")
        self.SHEAF_PREFILL_SLOW = ix("sheaf_prefill_slow")
        self.SHEAF_REFILL = ix("sheaf_refill")
        self.SHEAF_RETURN_FAST = ix("sheaf_return_fast")
        self.SHEAF_RETURN_SLOW = ix("sheaf_return_slow")
        m = cache.machine
        self.machine = m
        self.capacity = cache.sheaf_capacity
        self.has_sheaves = self.capacity != 0  # cache_has_sheaves()
        # Barns exist for every online node (7.1+: kmem_cache.per_node[].barn).
        self.barns: list[Barn | None] = [
            Barn(n) if self.has_sheaves else None for n in range(m.nr_nodes)
        ]
        self.numa = bool(cache.kernel.config.numa)
        #: slubsim.hitpath may replay this layer's sheaf hits: 7.3 exactly (the
        #: 6.18 subclass's hits have the classic layer's side effects)
        self.hit_path = type(self) is SheavesLayer
        #: which of slubsim.hitpath's loops takes its rows
        self.hit_kind = HIT_SHEAVES if self.hit_path else HIT_NONE
        #: MAX_FULL_SHEAVES / MAX_EMPTY_SHEAVES (overridable for what-if runs)
        self.max_full = MAX_FULL_SHEAVES
        self.max_empty = MAX_EMPTY_SHEAVES
        # init_percpu_sheaves(): one empty main per possible CPU, each counted in
        # sheaf_alloc on the creating CPU (counters exist before the sheaves).
        self.pcs: list[PerCpuSheaves] = []
        #: objects sync_cpu_occupancy took from the slabs for the CPU sheaves
        #: (sync_node_partial may give their slabs back, see _trim_warm_slabs)
        self.warm_taken: set[int] = set()
        #: slabs _trim_warm_slabs gave back (validate reports them)
        self.warm_slabs_given_back = 0
        #: nodes whose slabs _all_partial kept, every one partial (validate
        #: reports them), and the full ones it made partial
        self.warm_nodes_kept = 0
        self.warm_slabs_reopened = 0
        for _ in range(m.nr_cpus):
            if self.has_sheaves:
                sh = self._alloc_empty_sheaf(creating_cpu, force=True)
                assert sh is not None
                self.pcs.append(PerCpuSheaves(sh))
            else:
                self.pcs.append(PerCpuSheaves(BOOTSTRAP_SHEAF))
        # Sheaves given out by kmem_cache_prefill_sheaf() and not yet returned.
        self.prefilled: dict[int, Sheaf] = {}
        # rcu_free sheaves submitted to call_rcu() and not yet processed.
        self.rcu_inflight: dict[int, Sheaf] = {}
        # the count lives on the cache, beside its pages and slabs
        self.cache.nr_sheaves = m.nr_cpus if self.has_sheaves else 0

    # ------------------------------------------------------------------ utils
    def _stat(self, cpu: int, item: int, n: int = 1) -> None:
        self.cache.stat[cpu][item] += n

    def _alloc_empty_sheaf(self, cpu: int, capacity: int = 0, force: bool = False) -> Sheaf | None:
        """Models ``__alloc_empty_sheaf`` (kmalloc of the sheaf struct; may fail
        under injected failures)."""
        k = self.cache.kernel
        if not force and k.fail_sheaf_alloc is not None and k.fail_sheaf_alloc.should_fail():
            return None
        self.cache.stat[cpu][self.SHEAF_ALLOC] += 1
        if not force:
            self.cache.nr_sheaves += 1
        return Sheaf(capacity or self.capacity)

    def _free_empty_sheaf(self, cpu: int, sheaf: Sheaf) -> None:
        """Models ``free_empty_sheaf`` (kfree of the struct; SHEAF_FREE)."""
        assert not sheaf.objects
        self.cache.stat[cpu][self.SHEAF_FREE] += 1
        self.cache.nr_sheaves -= 1

    def _barn(self, cpu: int) -> Barn | None:
        """``get_barn()``: the barn of the CPU's own node (``numa_node_id()``)."""
        return self.barns[self.machine.cpu_node[cpu]]

    def grow_capacity(self, new: int) -> None:
        """Raise ``s->sheaf_capacity`` in place (adaptive policies): existing
        sheaves hold more from now on; nothing is flushed."""
        if new <= self.capacity:
            return
        self.capacity = new
        self.cache.sheaf_capacity = new
        for pcs in self.pcs:
            for sh in (pcs.main, pcs.spare, pcs.rcu_free):
                if sh is not None and sh is not BOOTSTRAP_SHEAF:
                    sh.capacity = new
        for barn in self.barns:
            if barn is not None:
                for sh in barn.full + barn.empty:
                    sh.capacity = new
        for sh in self.rcu_inflight.values():
            sh.capacity = new

    def lock_held(self, cpu: int) -> bool:
        return self.pcs[cpu].locked

    def set_lock_held(self, cpu: int, held: bool) -> None:
        self.pcs[cpu].locked = held
        if not held and self.pcs[cpu].deferred:
            self.process_deferred(cpu)

    # ================================================================ alloc
    def alloc(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        """Models ``slab_alloc_node``: ``alloc_from_pcs`` then ``___slab_alloc``."""
        obj = self.alloc_from_pcs(cpu, node, nolock, irq)
        if not obj:
            obj = self.slab_alloc_slow(cpu, node, nolock)
        return obj

    def alloc_from_pcs(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        """Models ``alloc_from_pcs`` (spec §6.2)."""
        node_requested = self.numa and node != NUMA_NO_NODE
        if node_requested and node != self.machine.cpu_mem_node[cpu]:
            self.cache.stat[cpu][self.ALLOC_NODE_MISMATCH] += 1
            return 0
        pcs = self.pcs[cpu]
        if irq and pcs.locked:
            return 0  # local_trylock failed
        main = pcs.main
        if not main.objects:
            if not self._pcs_replace_empty_main(cpu, pcs, nolock):
                return 0
            main = pcs.main
        obj = main.objects[-1]
        if node_requested and self.cache.node_of(obj) != node:
            self.cache.stat[cpu][self.ALLOC_NODE_MISMATCH] += 1
            return 0
        main.objects.pop()
        stat = self.cache.stat[cpu]
        # not ``+= 1``: mypyc compiles an augmented item assignment generically
        stat[self.ALLOC_FASTPATH] = stat[self.ALLOC_FASTPATH] + 1
        return obj

    def _pcs_replace_empty_main(self, cpu: int, pcs: PerCpuSheaves, nolock: bool) -> bool:
        """Models ``__pcs_replace_empty_main`` (spec §6.3).  True when ``pcs.main``
        is non-empty afterwards."""
        if not self.has_sheaves:
            return False
        spare = pcs.spare
        if spare is not None and spare.objects:
            pcs.spare = pcs.main
            pcs.main = spare
            return True
        barn = self._barn(cpu)
        if barn is None:
            return False
        allow_spin = not nolock
        if barn.full:  # barn_replace_empty_sheaf
            self.cache.barn_lock += 1  # barn->lock
            full = barn.full.pop()
            barn.empty.append(pcs.main)
            self.cache.stat[cpu][self.BARN_GET] += 1
            pcs.main = full
            return True
        self.cache.stat[cpu][self.BARN_GET_FAIL] += 1
        if not allow_spin:
            return False
        empty: Sheaf | None = None
        if pcs.spare is not None:  # spare exists but is empty here
            empty = pcs.spare
            pcs.spare = None
        elif barn.empty:
            self.cache.barn_lock += 1  # barn->lock
            empty = barn.empty.pop()  # barn_get_empty_sheaf
        if empty is None:
            empty = self._alloc_empty_sheaf(cpu)
            if empty is None:
                return False
        if self.refill_sheaf_from_slabs(cpu, empty) != 0:
            self.sheaf_flush_unused(cpu, empty)
            self._free_empty_sheaf(cpu, empty)
            return False
        full = empty
        # relock: a sequential CPU finds the state it left
        if not pcs.main.objects:
            if pcs.spare is None:
                pcs.spare = pcs.main
            else:
                self.cache.barn_lock += 1  # barn->lock
                barn.empty.append(pcs.main)  # barn_put_empty_sheaf, no limit check
            pcs.main = full
            return True
        # race: main was refilled meanwhile
        if pcs.spare is None:  # pragma: no cover - race
            pcs.spare = full
            return True
        if not pcs.spare.objects:  # pragma: no cover - race
            self.cache.barn_lock += 1  # barn->lock
            barn.empty.append(pcs.spare)
            pcs.spare = full
            return True
        self.cache.barn_lock += 1  # barn->lock
        barn.full.append(full)  # pragma: no cover - race
        self.cache.stat[cpu][self.BARN_PUT] += 1  # pragma: no cover - race
        return True  # pragma: no cover - race

    def refill_sheaf_from_slabs(self, cpu: int, sheaf: Sheaf) -> int:
        """Models ``refill_sheaf`` (spec §6.4): fill to ``s->sheaf_capacity``;
        SHEAF_REFILL counts what was added even when the refill falls short."""
        to_fill = self.capacity - len(sheaf.objects)
        if to_fill <= 0:
            return 0
        filled = self.refill_objects(cpu, sheaf.objects, to_fill, to_fill)
        self.cache.stat[cpu][self.SHEAF_REFILL] += filled
        return 0 if filled == to_fill else ENOMEM

    def refill_objects(self, cpu: int, p: list[int], mn: int, mx: int) -> int:
        """Models ``refill_objects``: local partial list, then (NUMA) other nodes'
        partial lists, then new local slabs.  Appends to ``p``."""
        c = self.cache
        local = self.machine.cpu_mem_node[cpu]
        got = self._refill_objects_node(p, mn, mx, c.nodes[local])
        if got >= mn:
            return got
        if self.numa and self.machine.nr_nodes > 1:
            got += self._refill_objects_any(cpu, p, mn - got, mx - got)
            if got >= mn:
                return got
        while True:
            slab = c.new_slab(cpu, local, False)
            if slab is None:
                return got
            c.stat[cpu][self.ALLOC_SLAB] += 1
            got += self._alloc_from_new_slab(slab, p, mx - got)
            if got >= mn:
                return got

    def _refill_objects_node(self, p: list[int], mn: int, mx: int, n: KmemCacheNode | None) -> int:
        """Models ``__refill_objects_node`` with ``get_partial_node_bulk``: take
        whole slab freelists from the head of the partial list; a partially used
        slab and the slabs not reached go back to the *tail*."""
        if n is None or n.nr_partial == 0:
            return 0
        c = self.cache
        c.list_lock += 1
        taken: list[Slab] = []
        total_free = 0
        for slab in n.partial_slabs():
            if slab.pfmemalloc:  # refills use __GFP_NOMEMALLOC
                continue
            free = slab.objects - slab.inuse
            if total_free >= mn and total_free + free > mx:
                break
            n.remove_partial(slab)  # SL_partial cleared, moved to a private list
            taken.append(slab)
            total_free += free
            if total_free >= mx:
                break
        got = 0
        i = 0
        nt = len(taken)
        while i < nt:
            slab = taken[i]
            i += 1
            fl = slab.freelist
            fl.reverse()  # head first
            count = len(fl)
            slab.freelist = []
            slab.inuse = slab.objects  # get_freelist_nofreeze
            k = min(count, mx - got)
            p.extend(fl[:k])
            got += k
            c.inuse_total += count
            if count > k:
                # __slab_try_return_freelist: the rest goes back, slab to the tail
                rest = fl[k:]
                rest.reverse()
                slab.freelist = rest
                slab.inuse -= count - k
                c.inuse_total -= count - k
                n.add_partial(slab, True)
                c.list_lock += 1
                break
            if got >= mx:
                break
        if i < nt:
            c.list_lock += 1
        while i < nt:  # slabs not reached: splice back to the tail, in order
            n.add_partial(taken[i], True)
            i += 1
        return got

    def _refill_objects_any(self, cpu: int, p: list[int], mn: int, mx: int) -> int:
        """Models ``__refill_objects_any`` (NUMA).

        Decision (spec §16.9): the ``remote_node_defrag_ratio`` gate
        (``get_cycles() % 1024 > ratio`` skips the scan, ~2 % of calls with the
        default 1000) is modelled deterministically: ratio 0 never scans, any
        other value always scans.  Nodes are visited nearest first and only
        those with ``nr_partial > min_partial`` are raided.
        """
        c = self.cache
        if c.remote_node_defrag_ratio == 0:
            return 0
        got = 0
        local = self.machine.cpu_mem_node[cpu]
        for nid in c.zonelist(local):
            n = c.nodes[nid]
            if n is None or n.nr_partial <= c.min_partial:
                continue
            got += self._refill_objects_node(p, mn - got, mx - got, n)
            if got >= mn:
                break
        return got

    def _alloc_from_new_slab(self, slab: Slab, p: list[int], count: int) -> int:
        """Models ``alloc_from_new_slab``: hand out objects in index order; the
        rest forms the freelist and the slab goes to the partial list *head*."""
        c = self.cache
        n = c.nodes[slab.nid]
        assert n is not None
        needs_partial = True
        if count >= slab.objects:
            needs_partial = False
            count = slab.objects
        base = slab.base
        size = slab.size
        # (ranges of machine-word addresses: built in C, no per-object
        # arithmetic in the compiled model)
        p.extend(range(base, base + count * size, size))
        slab.inuse = count
        c.inuse_total += count
        slab.freelist = list(
            range(base + (slab.objects - 1) * size, base + (count - 1) * size, -size)
        )
        if needs_partial:
            n.add_partial(slab, False)
            c.list_lock += 1
        elif c.store_user:
            slab.on_full = True
            n.full.add(slab)
        n.inc_slabs_node(slab.objects)
        return count

    def slab_alloc_slow(self, cpu: int, node: int, nolock: bool) -> int:
        """Models ``___slab_alloc`` (spec §6.5): one object from the first partial
        slab of the node, else a new slab whose rest goes to the partial head.
        Debug caches take the same route (``alloc_single_from_partial`` /
        ``alloc_single_from_new_slab`` move the same counters)."""
        c = self.cache
        c.stat[cpu][self.ALLOC_SLOWPATH] += 1
        try_thisnode = True
        while True:
            thisnode = node != NUMA_NO_NODE and try_thisnode
            obj = self._get_from_partial(cpu, node, thisnode)
            if obj:
                return obj
            target = node if node != NUMA_NO_NODE else self.machine.cpu_mem_node[cpu]
            slab = c.new_slab(cpu, target, thisnode)
            if slab is None:
                if node != NUMA_NO_NODE and try_thisnode:
                    try_thisnode = False
                    continue
                c.note_out_of_memory(cpu, node)
                return 0
            c.stat[cpu][self.ALLOC_SLAB] += 1
            out: list[int] = []
            self._alloc_from_new_slab(slab, out, 1)
            return out[0]

    def _get_from_partial(self, cpu: int, node: int, thisnode: bool) -> int:
        """Models ``get_from_partial``."""
        c = self.cache
        search = self.machine.cpu_mem_node[cpu] if node == NUMA_NO_NODE else node
        obj = self._get_from_partial_node(c.nodes[search])
        if obj or (node != NUMA_NO_NODE and thisnode):
            return obj
        if not (self.numa and self.machine.nr_nodes > 1) or c.remote_node_defrag_ratio == 0:
            return 0
        for nid in c.zonelist(self.machine.cpu_mem_node[cpu]):
            n = c.nodes[nid]
            if n is not None and n.nr_partial > c.min_partial:
                obj = self._get_from_partial_node(n)
                if obj:
                    return obj
        return 0

    def _get_from_partial_node(self, n: KmemCacheNode | None) -> int:
        """Models ``get_from_partial_node``: one object from the first matching slab."""
        if n is None or n.nr_partial == 0:
            return 0
        self.cache.list_lock += 1
        for slab in n.partial_slabs():
            if slab.pfmemalloc:
                continue
            obj = slab.freelist.pop()
            slab.inuse += 1
            self.cache.inuse_total += 1
            if not slab.freelist:
                n.remove_partial(slab)
                if self.cache.store_user:
                    slab.on_full = True
                    n.full.add(slab)
            return obj
        return 0

    # ================================================================= free
    def free(self, cpu: int, x: int, slab: Slab, nolock: bool, irq: bool) -> None:
        """Models ``slab_free`` (and ``kfree_nolock`` with ``nolock``)."""
        # can_free_to_pcs() inline when there is one node (always true there)
        if (
            (not self.numa or self._can_free_to_pcs(cpu, slab))
            and not slab.pfmemalloc
            and self.free_to_pcs(cpu, x, not nolock, irq)
        ):
            return
        if nolock:
            # defer_free(): queued on a per-CPU llist, freed by irq_work later.
            self.pcs[cpu].deferred.append(x)
            if not self.pcs[cpu].locked:
                self.process_deferred(cpu)
            return
        self.slow_free(cpu, x, slab)

    def slow_free(self, cpu: int, x: int, slab: Slab) -> None:
        """A free that bypasses the sheaves (7.3: ``__slab_free`` + FREE_SLOWPATH)."""
        self.slab_free_to_slab(cpu, slab, [x])
        self.cache.stat[cpu][self.FREE_SLOWPATH] += 1

    def process_deferred(self, cpu: int) -> None:
        """The irq_work of ``defer_free``: ``__slab_free`` + FREE_SLOWPATH each."""
        pcs = self.pcs[cpu]
        items, pcs.deferred = pcs.deferred, []
        for x in items:
            self.slab_free_to_slab(cpu, self.cache.slab_of(x), [x])
            self.cache.stat[cpu][self.FREE_SLOWPATH] += 1

    def _can_free_to_pcs(self, cpu: int, slab: Slab) -> bool:
        """Models ``can_free_to_pcs`` (no CONFIG_HAVE_MEMORYLESS_NODES, as x86)."""
        if self.numa:
            own = self.machine.cpu_node[cpu]
            if slab.nid != own and self.machine.node_has_memory[own]:
                return False
        return not slab.pfmemalloc

    def free_to_pcs(self, cpu: int, x: int, allow_spin: bool, irq: bool) -> bool:
        """Models ``free_to_pcs`` (spec §6.7)."""
        pcs = self.pcs[cpu]
        if irq and pcs.locked:
            return False
        if len(pcs.main.objects) == self.capacity and not self._pcs_replace_full_main(
            cpu, pcs, allow_spin
        ):
            return False
        pcs.main.objects.append(x)
        stat = self.cache.stat[cpu]
        stat[self.FREE_FASTPATH] = stat[self.FREE_FASTPATH] + 1  # see alloc_from_pcs
        return True

    def _pcs_replace_full_main(self, cpu: int, pcs: PerCpuSheaves, allow_spin: bool) -> bool:
        """Models ``__pcs_replace_full_main`` (spec §6.7).  True when main has room."""
        stat = self.cache.stat[cpu]
        while True:  # restart:
            if not self.has_sheaves:
                return False
            barn = self._barn(cpu)
            if barn is None:
                return False
            put_fail = False
            empty: Sheaf | None = None
            if pcs.spare is None:
                if barn.empty:
                    self.cache.barn_lock += 1  # barn->lock
                    e = barn.empty.pop()
                    pcs.spare = pcs.main
                    pcs.main = e
                    return True
            elif len(pcs.spare.objects) < self.capacity:
                pcs.spare, pcs.main = pcs.main, pcs.spare
                return True
            else:
                # both full: barn_replace_full_sheaf
                if len(barn.full) >= self.max_full:
                    if allow_spin:
                        stat[self.BARN_PUT_FAIL] += 1
                        to_flush = pcs.spare
                        pcs.spare = None
                        self.sheaf_flush_unused(cpu, to_flush)
                        self._install_empty_sheaf(cpu, pcs, to_flush, barn)
                        return True
                    put_fail = True
                elif barn.empty:
                    self.cache.barn_lock += 1  # barn->lock
                    e = barn.empty.pop()
                    barn.full.append(pcs.main)
                    stat[self.BARN_PUT] += 1
                    pcs.main = e
                    return True
                else:
                    put_fail = True  # -ENOMEM: barn has no empty sheaf
            # alloc_empty:
            if not allow_spin:
                return False
            empty = self._alloc_empty_sheaf(cpu)
            if empty is not None:
                self._install_empty_sheaf(cpu, pcs, empty, barn)
                return True
            if put_fail:
                stat[self.BARN_PUT_FAIL] += 1
            self.sheaf_flush_main(cpu, cpu)  # sheaf_try_flush_main
            if len(pcs.main.objects) == self.capacity:  # pragma: no cover - race
                continue
            return True

    def _install_empty_sheaf(self, cpu: int, pcs: PerCpuSheaves, empty: Sheaf, barn: Barn) -> None:
        """Models ``__pcs_install_empty_sheaf``."""
        if pcs.spare is None:
            pcs.spare = pcs.main
            pcs.main = empty
            return
        if len(pcs.main.objects) < self.capacity:  # pragma: no cover - race
            self.cache.barn_lock += 1  # barn->lock
            barn.empty.append(empty)
            return
        if len(pcs.spare.objects) < self.capacity:  # pragma: no cover - race
            pcs.spare, pcs.main = pcs.main, pcs.spare
            self.cache.barn_lock += 1  # barn->lock
            barn.empty.append(empty)
            return
        self.cache.barn_lock += 1  # barn->lock
        barn.full.append(pcs.main)  # after -ENOMEM: no limit check
        self.cache.stat[cpu][self.BARN_PUT] += 1
        pcs.main = empty

    # ------------------------------------------------------- slab-side free
    def slab_free_to_slab(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        """Models ``__slab_free`` (non-debug, 7.3, spec §6.9) and, for debug caches,
        ``free_to_partial_list`` (same counters).  ``chain`` lists the freed
        objects head first; it is prepended to the slab freelist.  Does **not**
        count FREE_SLOWPATH (callers do)."""
        c = self.cache
        cnt = len(chain)
        fl = slab.freelist
        was_full = not fl
        if cnt == 1:
            fl.append(chain[0])
        else:
            push_chain(fl, chain)
        slab.inuse -= cnt
        c.inuse_total -= cnt
        new_inuse = slab.inuse
        if new_inuse != 0 and not was_full:
            return
        c.list_lock += 1
        n = c.nodes[slab.nid]
        assert n is not None
        if not was_full and not slab.on_partial:  # pragma: no cover - race
            return
        if new_inuse == 0 and n.nr_partial >= c.min_partial:
            if not was_full:
                n.remove_partial(slab)
                c.stat[cpu][self.FREE_REMOVE_PARTIAL] += 1
            elif slab.on_full:
                slab.on_full = False
                n.full.discard(slab)
            c.stat[cpu][self.FREE_SLAB] += 1
            c.discard_slab(slab)
            return
        if was_full:
            if slab.on_full:
                slab.on_full = False
                n.full.discard(slab)
            n.add_partial(slab, True)
            c.stat[cpu][self.FREE_ADD_PARTIAL] += 1

    def bulk_free_group(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        """``slab_free_bulk`` (7.3): ``__slab_free`` + FREE_SLOWPATH per object."""
        self.slab_free_to_slab(cpu, slab, chain)
        self.cache.stat[cpu][self.FREE_SLOWPATH] += len(chain)

    def user_bulk_to_slabs(self, cpu: int, objs: list[int]) -> None:
        """The part of a user's bulk free that bypasses the sheaves (7.3:
        ``__kmem_cache_free_bulk`` + FREE_SLOWPATH per object)."""
        self.free_bulk_to_slabs(cpu, objs)
        self.cache.stat[cpu][self.FREE_SLOWPATH] += len(objs)

    def free_bulk_to_slabs(self, cpu: int, objs: list[int]) -> int:
        """Models ``__kmem_cache_free_bulk`` (internal: no hooks, no FREE_SLOWPATH):
        group with ``build_detached_freelist`` and ``__slab_free`` each group.
        Returns the number of groups."""
        c = self.cache
        p = list(objs)
        slabs = c.slabs_of(p)
        size = len(p)
        groups = 0
        while size:
            size, slab, chain = c.build_detached_freelist(p, slabs, size)
            self.slab_free_to_slab(cpu, slab, chain)
            groups += 1
        return groups

    def sheaf_flush_unused(self, cpu: int, sheaf: Sheaf) -> None:
        """Models ``sheaf_flush_unused``: all objects back to slabs (SHEAF_FLUSH)."""
        if sheaf.objects:
            self.cache.stat[cpu][self.SHEAF_FLUSH] += len(sheaf.objects)
            objs = sheaf.objects
            sheaf.objects = []
            self.free_bulk_to_slabs(cpu, objs)

    def sheaf_flush_main(self, cpu: int, executing_cpu: int) -> None:
        """Models ``sheaf_flush_main``: the top PCS_BATCH_MAX objects at a time."""
        main = self.pcs[cpu].main
        while main.objects:
            batch = min(PCS_BATCH_MAX, len(main.objects))
            objs = main.objects[-batch:]
            del main.objects[-batch:]
            self.free_bulk_to_slabs(executing_cpu, objs)
            self.cache.stat[executing_cpu][self.SHEAF_FLUSH] += batch

    # ================================================================= bulk
    def alloc_bulk(self, cpu: int, n: int) -> list[int] | None:
        """Models ``kmem_cache_alloc_bulk`` (spec §6.10)."""
        if n <= 0:
            return None
        p: list[int] = []
        i = self._alloc_from_pcs_bulk(cpu, n, p)
        if i < n:
            rest: list[int] = []
            if not self._kmem_cache_alloc_bulk(cpu, n - i, rest):
                if p:
                    self.free_bulk_to_slabs(cpu, p)
                return None
            p.extend(rest)
        return p

    def _alloc_from_pcs_bulk(self, cpu: int, size: int, p: list[int]) -> int:
        """Models ``alloc_from_pcs_bulk``: never refills, only swaps or takes a
        full sheaf from the barn."""
        pcs = self.pcs[cpu]
        stat = self.cache.stat[cpu]
        allocated = 0
        while True:
            main = pcs.main
            if not main.objects:
                if not self.has_sheaves:
                    return allocated
                spare = pcs.spare
                if spare is not None and spare.objects:
                    pcs.spare = main
                    pcs.main = main = spare
                else:
                    barn = self._barn(cpu)
                    if barn is None:
                        return allocated
                    if barn.full:
                        self.cache.barn_lock += 1  # barn->lock
                        full = barn.full.pop()
                        barn.empty.append(main)
                        stat[self.BARN_GET] += 1
                        pcs.main = main = full
                    else:
                        stat[self.BARN_GET_FAIL] += 1
                        return allocated
            batch = min(size, len(main.objects))
            taken = main.objects[-batch:]
            del main.objects[-batch:]
            p.extend(taken)
            stat[self.ALLOC_FASTPATH] += batch
            allocated += batch
            size -= batch
            if size == 0:
                return allocated

    def _kmem_cache_alloc_bulk(self, cpu: int, size: int, p: list[int]) -> bool:
        """Models ``__kmem_cache_alloc_bulk``."""
        c = self.cache
        if c.debug:
            for _ in range(size):
                obj = self.slab_alloc_slow(cpu, NUMA_NO_NODE, False)
                if not obj:
                    if p:
                        self.free_bulk_to_slabs(cpu, p)
                        p.clear()
                    return False
                p.append(obj)
            return True
        got = self.refill_objects(cpu, p, size, size)
        if got < size:
            if p:
                self.free_bulk_to_slabs(cpu, p)
                p.clear()
            return False
        c.stat[cpu][self.ALLOC_SLOWPATH] += got
        return True

    def free_bulk(self, cpu: int, objs: list[int]) -> None:
        """Models ``kmem_cache_free_bulk``: ``free_to_pcs_bulk`` for caches with
        sheaves, detached freelists to slabs otherwise."""
        if not objs:
            return
        c = self.cache
        if not self.has_sheaves:
            p = list(objs)
            slabs = c.slabs_of(p)
            size = len(p)
            while size:
                size, slab, chain = c.build_detached_freelist(p, slabs, size)
                self.bulk_free_group(cpu, slab, chain)
            return
        self._free_to_pcs_bulk(cpu, objs)

    def _free_to_pcs_bulk(self, cpu: int, objs: list[int]) -> None:
        """Models ``free_to_pcs_bulk``.

        Decision: objects that may not go to sheaves (remote node, pfmemalloc)
        are partitioned out stably (original order kept on both sides); they
        are freed to slabs after the local ones, as the kernel does.
        """
        c = self.cache
        remote: list[int] = []
        local: list[int] = []
        for x in objs:
            (local if self._can_free_to_pcs(cpu, c.slab_of(x)) else remote).append(x)
        while local:
            k = self._free_to_pcs_batch(cpu, local)
            if k == 0:
                self.user_bulk_to_slabs(cpu, local)
                break
            local = local[k:]
        if remote:
            self.user_bulk_to_slabs(cpu, remote)

    def _free_to_pcs_batch(self, cpu: int, objs: list[int]) -> int:
        """Models ``__free_to_pcs_batch``: never allocates an empty sheaf."""
        pcs = self.pcs[cpu]
        stat = self.cache.stat[cpu]
        if pcs.locked:
            return 0
        if len(pcs.main.objects) == self.capacity:
            if not self.has_sheaves:
                return 0
            barn = self._barn(cpu)
            if barn is None:
                return 0
            if pcs.spare is None:
                if not barn.empty:
                    return 0
                pcs.spare = pcs.main
                self.cache.barn_lock += 1  # barn->lock
                pcs.main = barn.empty.pop()
            elif len(pcs.spare.objects) < self.capacity:
                pcs.spare, pcs.main = pcs.main, pcs.spare
            else:
                if len(barn.full) >= self.max_full or not barn.empty:
                    stat[self.BARN_PUT_FAIL] += 1
                    return 0
                self.cache.barn_lock += 1  # barn->lock
                e = barn.empty.pop()
                barn.full.append(pcs.main)
                stat[self.BARN_PUT] += 1
                pcs.main = e
        main = pcs.main
        batch = min(len(objs), self.capacity - len(main.objects))
        main.objects.extend(objs[:batch])
        stat[self.FREE_FASTPATH] += batch
        return batch

    # ============================================================ prefill API
    def prefill_sheaf(self, cpu: int, size: int) -> Sheaf | None:
        """Models ``kmem_cache_prefill_sheaf`` (spec §6.11)."""
        if size <= 0:
            return None
        stat = self.cache.stat[cpu]
        sh: Sheaf | None
        if size > self.capacity:
            sh = self._alloc_empty_sheaf(cpu, capacity=size)
            if sh is None:
                return None
            stat[self.SHEAF_PREFILL_OVERSIZE] += 1
            objs: list[int] = []
            if not self._kmem_cache_alloc_bulk(cpu, size, objs):
                self._free_empty_sheaf(cpu, sh)
                return None
            sh.objects = objs
            self.prefilled[sh.sid] = sh
            return sh
        pcs = self.pcs[cpu]
        if pcs.locked:
            raise self.cache.lock_recursion(cpu)
        sh = None
        if pcs.spare is not None:
            sh = pcs.spare
            pcs.spare = None
            stat[self.SHEAF_PREFILL_FAST] += 1
        else:
            stat[self.SHEAF_PREFILL_SLOW] += 1
            barn = self._barn(cpu)
            if barn is not None:
                # barn_get_full_or_empty_sheaf: prefers a full one
                if barn.full:
                    self.cache.barn_lock += 1  # barn->lock
                    sh = barn.full.pop()
                elif barn.empty:
                    self.cache.barn_lock += 1  # barn->lock
                    sh = barn.empty.pop()
            if sh is not None and sh.objects:
                stat[self.BARN_GET] += 1
            else:
                stat[self.BARN_GET_FAIL] += 1
        if sh is None:
            sh = self._alloc_empty_sheaf(cpu)
        if sh is not None:
            sh.capacity = self.capacity
            sh.pfmemalloc = False
            if len(sh.objects) < size and self.refill_sheaf_from_slabs(cpu, sh) != 0:
                self.sheaf_flush_unused(cpu, sh)
                self._free_empty_sheaf(cpu, sh)
                sh = None
        if sh is not None:
            self.prefilled[sh.sid] = sh
        return sh

    def return_sheaf(self, cpu: int, sheaf: Sheaf) -> None:
        """Models ``kmem_cache_return_sheaf``."""
        stat = self.cache.stat[cpu]
        self.prefilled.pop(sheaf.sid, None)
        if sheaf.capacity != self.capacity or sheaf.pfmemalloc:
            self.sheaf_flush_unused(cpu, sheaf)
            self._free_empty_sheaf(cpu, sheaf)
            return
        pcs = self.pcs[cpu]
        if pcs.locked:
            raise self.cache.lock_recursion(cpu)
        if pcs.spare is None:
            pcs.spare = sheaf
            stat[self.SHEAF_RETURN_FAST] += 1
            return
        stat[self.SHEAF_RETURN_SLOW] += 1
        barn = self._barn(cpu)
        if (
            barn is None
            or len(barn.full) >= self.max_full
            or self.refill_sheaf_from_slabs(cpu, sheaf) != 0
        ):
            self.sheaf_flush_unused(cpu, sheaf)
            self._free_empty_sheaf(cpu, sheaf)
            return
        self.cache.barn_lock += 1  # barn->lock
        barn.full.append(sheaf)
        stat[self.BARN_PUT] += 1

    def refill_sheaf(self, cpu: int, sheaf: Sheaf, size: int) -> tuple[int, Sheaf]:
        """Models ``kmem_cache_refill_sheaf``: returns (errno, sheaf to use)."""
        if len(sheaf.objects) >= size:
            return 0, sheaf
        if sheaf.capacity >= size:
            if sheaf.capacity == self.capacity:
                return self.refill_sheaf_from_slabs(cpu, sheaf), sheaf
            objs: list[int] = []
            if not self._kmem_cache_alloc_bulk(cpu, sheaf.capacity - len(sheaf.objects), objs):
                return ENOMEM, sheaf
            sheaf.objects.extend(objs)
            return 0, sheaf
        new = self.prefill_sheaf(cpu, size)
        if new is None:
            return ENOMEM, sheaf
        self.return_sheaf(cpu, sheaf)
        return 0, new

    # ============================================================= kfree_rcu
    def kfree_rcu(self, cpu: int, x: int, slab: Slab, irq: bool) -> bool:
        """Models ``kfree_rcu_sheaf`` / ``__kfree_rcu_sheaf`` (spec §6.12)."""
        if self.numa and slab.nid != self.machine.cpu_mem_node[cpu]:
            return False  # remote: classic batching, no stat
        stat = self.cache.stat[cpu]
        pcs = self.pcs[cpu]
        if irq and pcs.locked:
            stat[self.FREE_RCU_SHEAF_FAIL] += 1
            return False
        if pcs.rcu_free is None:
            if not self.has_sheaves:
                stat[self.FREE_RCU_SHEAF_FAIL] += 1
                return False
            spare = pcs.spare
            if spare is not None and not spare.objects:
                pcs.rcu_free = spare
                pcs.spare = None
            else:
                barn = self._barn(cpu)
                if barn is None:
                    stat[self.FREE_RCU_SHEAF_FAIL] += 1
                    return False
                if barn.empty:
                    self.cache.barn_lock += 1  # barn->lock
                    pcs.rcu_free = barn.empty.pop()
                else:
                    e = self._alloc_empty_sheaf(cpu)
                    if e is None:
                        stat[self.FREE_RCU_SHEAF_FAIL] += 1
                        return False
                    pcs.rcu_free = e
        sh = pcs.rcu_free
        assert sh is not None
        sh.objects.append(x)
        if len(sh.objects) == self.capacity:
            pcs.rcu_free = None
            sh.node = self.machine.cpu_node[cpu]
            self._submit_rcu_sheaf(cpu, sh, barn_ok=True)
        stat[self.FREE_RCU_SHEAF] += 1
        return True

    def _submit_rcu_sheaf(self, cpu: int, sh: Sheaf, barn_ok: bool) -> None:
        """``call_rcu(&sheaf->rcu_head, rcu_free_sheaf[_nobarn])``."""
        self.rcu_inflight[sh.sid] = sh
        if barn_ok:
            self.cache.kernel.rcu.call_rcu(
                cpu, lambda run_cpu: self._rcu_free_sheaf(run_cpu, sh), tag=self.cache
            )
        else:
            self.cache.kernel.rcu.call_rcu(
                cpu, lambda run_cpu: self._rcu_free_sheaf_nobarn(run_cpu, sh), tag=self.cache
            )

    def _rcu_free_sheaf(self, cpu: int, sh: Sheaf) -> None:
        """Models ``rcu_free_sheaf`` (after the grace period)."""
        self.rcu_inflight.pop(sh.sid, None)
        stat = self.cache.stat[cpu]
        barn = self.barns[sh.node] if sh.node >= 0 else None
        # __rcu_free_sheaf_prepare: a pfmemalloc object forces the flush (the
        # scan only when the cache has such slabs: KmemCache.pfmemalloc_slabs)
        pfm = self.cache.pfmemalloc_slabs > 0 and any(
            self.cache.slab_of(x).pfmemalloc for x in sh.objects
        )
        flush = pfm or barn is None
        if not flush and sh.objects:
            assert barn is not None
            if len(barn.full) < self.max_full:
                stat[self.BARN_PUT] += 1
                self.cache.barn_lock += 1  # barn->lock
                barn.full.append(sh)
                return
            flush = True
        if flush or sh.objects:
            stat[self.BARN_PUT_FAIL] += 1
            self.sheaf_flush_unused(cpu, sh)
        if barn is not None and len(barn.empty) < self.max_empty:
            self.cache.barn_lock += 1  # barn->lock
            barn.empty.append(sh)
            return
        self._free_empty_sheaf(cpu, sh)

    def _rcu_free_sheaf_nobarn(self, cpu: int, sh: Sheaf) -> None:
        """Models ``rcu_free_sheaf_nobarn``: flush and free, no barn."""
        self.rcu_inflight.pop(sh.sid, None)
        self.sheaf_flush_unused(cpu, sh)
        self._free_empty_sheaf(cpu, sh)

    # =========================================================== maintenance
    def flush_cpu(self, cpu: int, executing_cpu: int) -> None:
        """Models ``pcs_flush_all`` / ``__pcs_flush_all_cpu``: spare flushed and
        freed, rcu_free submitted with ``rcu_free_sheaf_nobarn``, main flushed
        (the struct kept).  The barn is not touched."""
        if not self.has_sheaves:
            return
        pcs = self.pcs[cpu]
        if pcs.deferred:
            self.process_deferred(cpu)
        spare, rcu = pcs.spare, pcs.rcu_free
        pcs.spare = None
        pcs.rcu_free = None
        if spare is not None:
            self.sheaf_flush_unused(executing_cpu, spare)
            self._free_empty_sheaf(executing_cpu, spare)
        if rcu is not None:
            self._submit_rcu_sheaf(executing_cpu, rcu, barn_ok=False)
        self.sheaf_flush_main(cpu, executing_cpu)

    def submit_partial_rcu_sheaves(self, cpu: int) -> None:
        """Models ``flush_all_rcu_sheaves`` for one cache: every CPU's partially
        filled ``rcu_free`` sheaf goes to ``rcu_free_sheaf_nobarn``."""
        for c, pcs in enumerate(self.pcs):
            if pcs.rcu_free is not None:
                sh = pcs.rcu_free
                pcs.rcu_free = None
                self._submit_rcu_sheaf(c, sh, barn_ok=False)

    def needs_flush(self, cpu: int) -> bool:
        pcs = self.pcs[cpu]
        return pcs.spare is not None or pcs.rcu_free is not None or bool(pcs.main.objects)

    def shrink_node_caches(self, cpu: int) -> None:
        """Models ``barn_shrink`` for every node: full sheaves flushed and freed,
        empty ones freed."""
        for barn in self.barns:
            if barn is None:
                continue
            self.cache.barn_lock += 1  # barn->lock
            full, empty = barn.full, barn.empty
            barn.full, barn.empty = [], []
            for sh in full:
                self.sheaf_flush_unused(cpu, sh)
                self._free_empty_sheaf(cpu, sh)
            for sh in empty:
                self._free_empty_sheaf(cpu, sh)

    def destroy_percpu(self, cpu: int) -> None:
        """``pcs_destroy``: free the (now empty) main sheaves."""
        if not self.has_sheaves:
            return
        for pcs in self.pcs:
            if pcs.main is not BOOTSTRAP_SHEAF:
                assert not pcs.main.objects
                self._free_empty_sheaf(cpu, pcs.main)
                pcs.main = BOOTSTRAP_SHEAF

    # ========================================================= introspection
    def cached_objects(self) -> Iterator[tuple[str, int]]:
        for cpu, pcs in enumerate(self.pcs):
            for x in pcs.main.objects:
                yield f"cpu{cpu}.main", x
            if pcs.spare is not None:
                for x in pcs.spare.objects:
                    yield f"cpu{cpu}.spare", x
            if pcs.rcu_free is not None:
                for x in pcs.rcu_free.objects:
                    yield f"cpu{cpu}.rcu_free", x
            for x in pcs.deferred:
                yield f"cpu{cpu}.deferred", x
        for barn in self.barns:
            if barn is None:
                continue
            for sh in barn.full:
                for x in sh.objects:
                    yield f"barn{barn.nid}.full", x
            for sh in barn.empty:
                for x in sh.objects:
                    yield f"barn{barn.nid}.empty", x
        for sh in self.rcu_inflight.values():
            for x in sh.objects:
                yield "rcu_inflight", x
        for sh in self.prefilled.values():
            for x in sh.objects:
                yield "prefilled", x

    def live_sheaves(self) -> int:
        return self.cache.nr_sheaves

    def install_sheaves(self, cpu: int, main: list[int], spare: list[int]) -> bool:
        """Fill ``cpu``'s empty main sheaf with ``main`` and its spare with
        ``spare`` (objects already counted in their slabs' ``inuse``; the
        first to be handed out first; a spare is full or empty, but the trace
        may show only its top), as when the trace began (slubsim.pretrace).
        A missing spare sheaf struct is made without SHEAF_ALLOC (a CPU busy
        enough to have sheaves to rebuild has filled its main before, and a
        spare, once made, stays until a flush;
        ``KmemCache.adopted_sheaves``); no counter moves.  False if the CPU's
        sheaves are not empty or the objects do not fit."""
        if not self.has_sheaves:
            return False
        pcs = self.pcs[cpu]
        cap = self.capacity
        if pcs.main.objects or (pcs.spare is not None and pcs.spare.objects):
            return False
        if len(main) > cap or len(spare) > cap:
            return False
        pcs.main.objects = list(reversed(main))
        if pcs.spare is None:
            # a CPU whose main sheaf has ever filled keeps a spare, full or
            # empty (only a flush frees it)
            pcs.spare = Sheaf(cap)
            self.cache.nr_sheaves += 1
            self.cache.adopted_sheaves += 1
        pcs.spare.objects = list(reversed(spare))
        return True

    # -- state at the start of a validation window ---------------------------
    def rcu_pending(self, cpu: int) -> int:
        """Objects ``cpu`` has freed by kfree_rcu that wait in its ``rcu_free``
        sheaf or in the sheaves it handed to ``call_rcu`` (not yet run; full
        ones -- the partial ones flush_all_rcu_sheaves submits are not told
        apart, the traced workloads have none)."""
        pcs = self.pcs[cpu]
        n = len(pcs.rcu_free.objects) if pcs.rcu_free is not None else 0
        rcu = self.cache.kernel.rcu
        for (qcpu, _), tag in zip(rcu.callbacks, rcu.tags, strict=True):
            if tag is self.cache and qcpu == cpu:
                n += self.capacity
        return n

    def cpu_sheaf_objects(self, cpu: int) -> int:
        """Objects in ``cpu``'s main and spare sheaves."""
        pcs = self.pcs[cpu]
        return len(pcs.main.objects) + (len(pcs.spare.objects) if pcs.spare is not None else 0)

    def top_up_rcu_free(self, cpu: int, n: int) -> int:
        """Free ``n`` objects taken from the slabs by kfree_rcu on ``cpu`` (a
        full ``rcu_free`` sheaf goes to ``call_rcu``): the objects the kernel's
        ``rcu_free`` sheaf held when the trace began, which no traced
        kfree_rcu put there.  Counters move; the caller syncs before a counter
        window opens.  Returns the objects freed."""
        if not self.has_sheaves:
            return 0
        s = self.cache
        done = 0
        while done < n:
            x = self.slab_alloc_slow(cpu, NUMA_NO_NODE, False)
            if not x:
                break
            s.mark_allocated(x)
            s.mark_freed(x)  # as Kernel.kfree_rcu, before the layer takes it
            if not self.kfree_rcu(cpu, x, s.slab_of(x), False):
                s.mark_allocated(x)
                s.free(x, cpu)
                break
            done += 1
        return done

    def sync_cpu_occupancy(self, occupancy: dict[int, int], bottom: bool = True) -> int:
        """Make each CPU's main + spare sheaves hold ``occupancy[cpu]``
        objects (what the kernel's sheaves held at that moment, see
        :func:`slubsim.validate.sheaf_occupancy_before`).  The two sheaves are
        one stack, the spare's objects under the main sheaf's (they are handed
        out after them), and the difference is made at its *bottom*: its top
        -- what the CPU just freed, what it hands out next -- is what the
        trace has shown, its bottom what the model guessed (decision: on
        forkfiles-2cpu, mixed-4cpu and net-4cpu the lab's first read of
        kmalloc-192 came between a free and the allocation of the same object
        on CPU 0; made-up objects pushed on top were handed out instead, and
        the model left the kernel's objects 2,850 allocations in).  A surplus
        goes to made-up users; a shortfall is taken from the slabs
        (``___slab_alloc``).  Then a spare is full or empty (main and spare
        swap when one of them is): beyond one sheaf-full, the bottom
        sheaf-full is the spare (an empty sheaf from the barn, or a new one,
        when the CPU had none) and the rest the main sheaf; within one, the
        main sheaf holds them all.  ``bottom`` False: where the model's
        sheaves are its own since boot, a small difference is an operation the
        counters caught in flight, so it is made on top, through the fast
        paths (boot-mixed-4cpu kmalloc-192: CPU 0 one object over; at the
        bottom its lockstep share fell from 47 to 39 %).  Counters move; the
        caller syncs before a counter window opens.  Returns the objects
        moved."""
        if not self.has_sheaves:
            return 0
        s = self.cache
        moved = 0
        online = set(self.machine.online_cpus())
        for cpu, n in sorted(occupancy.items()):
            if cpu not in online:
                continue
            pcs = self.pcs[cpu]
            have = len(pcs.main.objects) + (len(pcs.spare.objects) if pcs.spare else 0)
            if not bottom:
                while have > n and s.alloc(cpu):
                    have -= 1
                    moved += 1
                while have < n:
                    x = self.slab_alloc_slow(cpu, NUMA_NO_NODE, False)
                    if not x:
                        break
                    s.mark_allocated(x)
                    s.free(x, cpu)
                    self.warm_taken.add(x)
                    have += 1
                    moved += 1
                continue
            # one stack, bottom to top: the spare's objects (handed out after
            # the main sheaf's), then the main sheaf's
            stack = (pcs.spare.objects if pcs.spare else []) + pcs.main.objects
            n = min(n, 2 * self.capacity)
            while len(stack) > n:
                s.mark_allocated(stack.pop(0))
                moved += 1
            extra: list[int] = []
            while len(stack) + len(extra) < n:
                x = self.slab_alloc_slow(cpu, NUMA_NO_NODE, False)
                if not x:
                    break
                s.mark_allocated(x)
                s.mark_freed(x)
                self.warm_taken.add(x)
                extra.append(x)
                moved += 1
            stack = extra[::-1] + stack
            # a spare sheaf is full or empty (main and spare swap when one of
            # them is): beyond one sheaf, the bottom sheaf-full is the spare
            cut = max(len(stack) - self.capacity, 0)
            if cut and pcs.spare is None:
                barn = self._barn(cpu)
                if barn is not None and barn.empty:
                    self.cache.barn_lock += 1  # barn->lock
                    pcs.spare = barn.empty.pop()
                else:
                    pcs.spare = self._alloc_empty_sheaf(cpu, force=True)
                    self.cache.nr_sheaves += 1
            if pcs.spare is not None:
                pcs.spare.objects = stack[: self.capacity] if cut else []
            pcs.main.objects = stack[self.capacity :] if cut else stack
        return moved

    def sync_node_partial(
        self,
        want: dict[int, tuple[int, int, int]],
        unseen: Callable[[int], bool] | None = None,
    ) -> int:
        """Make node ``nid``'s partial list hold ``want[nid] = (slabs,
        free objects, all slabs)`` (as sysfs ``partial``, ``objects_partial``
        and ``slabs`` say; all slabs -1 when not read): the model's partial
        slabs there are filled up (their free objects handed out, as objects
        the kernel had allocated), then that many new slabs are taken whole
        and the free objects given back, spread evenly (each keeps at least
        one object, as a partial slab does); then, where the node holds more
        slabs than the kernel's, :meth:`_trim_warm_slabs`.  Counters move; see
        :meth:`sync_cpu_occupancy`.  Returns the slabs made."""
        if not self.has_sheaves:
            return 0
        s = self.cache
        made = 0
        online = self.machine.online_cpus()
        for nid, (count, free, total) in sorted(want.items()):
            if not 0 <= nid < len(s.nodes):
                continue
            n = s.nodes[nid]
            cpus = [c for c in online if self.machine.cpu_node[c] == nid]
            if n is None or not cpus or count < 0 or free < 0:
                continue
            cpu = cpus[0]
            if (
                unseen is not None
                and 0 < count == total
                and self._all_partial(n, cpu, count, free, unseen)
            ):
                continue
            handed: list[int] = []  # objects the kernel had in use here
            while n.nr_partial:
                x = self.slab_alloc_slow(cpu, nid, False)
                if not x:
                    break
                s.mark_allocated(x)
                handed.append(x)
            made += self._made_up_partial(n, cpu, count, free, handed)
            if 0 <= total < n.nr_slabs:
                self._trim_warm_slabs(n, total, handed)
        return made

    def _all_partial(
        self, n: KmemCacheNode, cpu: int, count: int, free: int, unseen: Callable[[int], bool]
    ) -> bool:
        """Node ``n`` had ``count`` slabs, every one partial, with ``free``
        free objects: when the model holds at most that many, they are the
        kernel's own, so each keeps its place -- a full one has its objects
        no traced pointer names (``unseen``: made-up long-lived users, not in
        a sheaf) freed, which makes it partial -- and only the rest are made
        up.  False (nothing done) when the model holds more slabs, or slabs
        whose objects :meth:`sync_cpu_occupancy` took for the CPU sheaves
        (made up too: :meth:`_trim_warm_slabs` gives them back).

        Decision: sysfs ``partial`` equal to ``slabs`` on a node says none of
        its slabs was full, so a rebuilt pre-trace slab the plan made full
        (every object first seen as a free, or never: slubsim.pretrace) had
        free objects; its never-named objects are taken for those (mixed-
        4cpu-numa2 vm_area_struct node 1: 5 slabs, all partial; made full,
        two of the model's took remote frees at 7.124-7.129 and went on the
        partial list, 7 > min_partial, and CPU 0's refill at 7.272 raided
        node 1 where the kernel made a node-0 slab -- one refill and 29 free
        paths off in the window, now exact)."""
        s = self.cache
        mine = [slab for slab in s.slabs if slab.nid == n.nid]
        if len(mine) > count:
            return False
        made = {s._slab_or_none(y) for y in self.warm_taken}
        if any(slab in made for slab in mine):
            return False  # sheaves filled from the counters: _trim_warm_slabs's case
        for slab in mine:
            if slab.freelist or slab.on_partial:
                continue
            base = slab.base
            gone = [
                x
                for x in range(base, base + slab.objects * slab.size, slab.size)
                if unseen(x) and s.is_live(x)  # (a sheaf's objects are not LIVE)
            ]
            if not gone or len(gone) == slab.objects:
                continue
            for x in gone:
                s.mark_freed(x)
            self.slab_free_to_slab(cpu, slab, gone)
            self.warm_slabs_reopened += 1
        self.warm_nodes_kept += 1
        have = sum(slab.objects - slab.inuse for slab in mine if slab.on_partial)
        make = count - n.nr_partial
        if make <= 0:
            return True
        kept = list(n.partial_slabs())
        for slab in kept:  # off the list while new slabs are made
            n.remove_partial(slab)
        self._made_up_partial(n, cpu, make, max(free - have, make), [])
        for slab in reversed(kept):  # back at the head, in their order
            n.add_partial(slab, False)
        return True

    def _made_up_partial(
        self, n: KmemCacheNode, cpu: int, count: int, free: int, handed: list[int]
    ) -> int:
        """``count`` new slabs on node ``n`` (its partial list empty), taken
        whole, then ``free`` of their objects given back, spread evenly
        (each slab keeps at least one in use and gets at least one back);
        their other objects are made-up users, appended to ``handed``.
        Decision: a made-up slab looks like one a refill or ``___slab_alloc``
        took part of (``alloc_from_new_slab``): its lowest objects in use, the
        rest free with the freelist in index order -- freed highest first, so
        the lowest free object is its head (forkfiles-2cpu shmem_inode_cache:
        CPU 0's first refill after the read took such a slab's objects 3..12,
        handing out 12 first; with the lowest objects freed instead the model
        handed out 0 first).  Returns the slabs made."""
        s = self.cache
        taken: list[int] = []
        for _ in range(count * s.objects):
            x = self.slab_alloc_slow(cpu, n.nid, False)
            if not x:
                break
            s.mark_allocated(x)
            taken.append(x)
        by_slab: dict[int, list[int]] = {}
        for x in taken:
            by_slab.setdefault(s.slab_of(x).base, []).append(x)
        made = 0
        for i, objs in enumerate(list(by_slab.values())[:count]):
            f = free // count + (1 if i < free % count else 0)
            f = min(max(f, 1), len(objs) - 1)
            slab = s.slab_of(objs[0])
            keep = len(objs) - f
            for x in reversed(objs[keep:]):
                s.mark_freed(x)
                self.slab_free_to_slab(cpu, slab, [x])
            handed.extend(objs[:keep])
            made += 1
        return made

    def _trim_warm_slabs(self, n: KmemCacheNode, total: int, handed: list[int]) -> None:
        """Give back whole slabs of node ``n`` whose objects in use are all
        ones :meth:`sync_cpu_occupancy` put in the CPU sheaves or ones
        ``handed`` out (made-up users), while the node holds more than
        ``total`` slabs (the kernel's): each sheaf object of such a slab is
        replaced, in its sheaf, by an object handed out in another slab, and
        the slab's own handed-out objects go with it.  The kernel's sheaves
        hold objects of its slabs like any user, so the in-use objects of its
        partial slabs, which :meth:`sync_node_partial` made up, include
        theirs; taken from other slabs the sheaves' objects were counted twice
        (mixed-4cpu-numa2 vm_area_struct at its first read: 18 slabs, 279
        objects in use, where the kernel had 10 and 111 -- the CPUs' 88 sheaf
        objects beside the partial slabs' 90).  No counter moves."""
        s = self.cache
        pool = set(handed)
        where: dict[int, Sheaf] = {}
        for pcs in self.pcs:
            for sh in (pcs.main, pcs.spare):
                if sh is not None:
                    for y in sh.objects:
                        if y in self.warm_taken:
                            where[y] = sh
        slabs: dict[int, Slab] = {}
        for y in where:
            slab = s._slab_or_none(y)
            if slab is not None and slab.nid == n.nid and not slab.on_partial:
                slabs[slab.base] = slab
        for base, slab in sorted(slabs.items()):
            if n.nr_slabs <= total:
                break
            free = set(slab.freelist)
            used = [
                x for x in range(base, base + slab.objects * slab.size, slab.size) if x not in free
            ]
            if any(x not in where and x not in pool for x in used):
                continue
            mine = [x for x in used if x in pool]
            warm = [y for y in used if y in where]
            others = [x for x in handed if x in pool and s.slab_of(x) is not slab]
            if len(others) < len(warm):
                continue
            for y in warm:
                x = others.pop()
                pool.discard(x)
                sh = where.pop(y)
                sh.objects[sh.objects.index(y)] = x
                s.mark_freed(x)  # in a sheaf now, as y was
                self.warm_taken.discard(y)
            for x in mine:
                pool.discard(x)
                s.nlive -= 1  # (a made-up user's object, gone with its slab)
            s.inuse_total -= slab.inuse
            slab.inuse = 0
            slab.freelist = []
            s.discard_slab(slab)
            s.discarded_without_stat += 1
            self.warm_slabs_given_back += 1

    def sync_barn_full(self, full: dict[int, int]) -> int:
        """Make node ``nid``'s barn hold ``full[nid]`` full sheaves
        (at most MAX_FULL_SHEAVES): new sheaves refilled from the slabs
        (``refill_sheaf``) are added, surplus ones flushed
        (``sheaf_flush_unused``) and freed.  Counters move; see
        :meth:`sync_cpu_occupancy`.  Returns the sheaves moved."""
        if not self.has_sheaves:
            return 0
        moved = 0
        online = self.machine.online_cpus()
        for nid, want in sorted(full.items()):
            if not 0 <= nid < len(self.barns):
                continue
            barn = self.barns[nid]
            cpus = [c for c in online if self.machine.cpu_node[c] == nid]
            if barn is None or not cpus:
                continue
            cpu = cpus[0]
            want = min(max(want, 0), self.max_full)
            while len(barn.full) > want:
                sh = barn.full.pop()
                self.sheaf_flush_unused(cpu, sh)
                self._free_empty_sheaf(cpu, sh)
                moved += 1
            while len(barn.full) < want:
                new = self._alloc_empty_sheaf(cpu)
                if new is None:
                    break
                self.refill_sheaf_from_slabs(cpu, new)
                if len(new.objects) < self.capacity:
                    self.sheaf_flush_unused(cpu, new)
                    self._free_empty_sheaf(cpu, new)
                    break
                barn.full.append(new)
                moved += 1
        return moved

    def sync_sheaf_count(self, want: int) -> int:
        """Top the sheaf structs up to ``want`` (the kernel's
        ``sheaf_alloc - sheaf_free`` at that moment): each CPU without a spare
        gets an empty one, in CPU order, and what is still missing goes into
        the barns as empty sheaves, node by node in turn.  A CPU keeps its
        spare once made (only a flush frees it), so sheaves the counters say
        exist and the model has not made are such spares; empty barn sheaves
        come next (prefilled and rcu_free sheaves in flight cannot be told
        from the counters).  The sheaves are adopted (``adopted_sheaves``,
        no SHEAF_ALLOC).  A surplus is left alone.  Returns the sheaves added."""
        if not self.has_sheaves:
            return 0
        s = self.cache
        added = 0
        for cpu in self.machine.online_cpus():
            if s.nr_sheaves + added >= want:
                break
            pcs = self.pcs[cpu]
            if pcs.spare is None:
                pcs.spare = Sheaf(self.capacity)
                added += 1
        barns = [b for b in self.barns if b is not None]
        k = 0
        while barns and s.nr_sheaves + added < want:
            barns[k % len(barns)].empty.append(Sheaf(self.capacity))
            added += 1
            k += 1
        s.nr_sheaves += added
        s.adopted_sheaves += added
        return added

    def count_sheaves(self) -> int:
        """Sheaf structs reachable from the model's state (for validate())."""
        if not self.has_sheaves:
            return 0
        n = 0
        for pcs in self.pcs:
            n += pcs.main is not BOOTSTRAP_SHEAF
            n += pcs.spare is not None
            n += pcs.rcu_free is not None
        for barn in self.barns:
            if barn is not None:
                n += len(barn.full) + len(barn.empty)
        return n + len(self.rcu_inflight) + len(self.prefilled)

    def cached_bytes(self) -> int:
        return sum(1 for _ in self.cached_objects()) * self.cache.size
