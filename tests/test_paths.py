"""Allocation and free paths of spec §6, one scenario each, with exact counters."""

from __future__ import annotations

import pytest

from conftest import nonzero
from slubsim import FaultAttr, Kernel, LockRecursionError, Machine


def cache(cpus: int = 1, nodes: int = 1, size: int = 64, cpu: int = 0, **kw):  # type: ignore[no-untyped-def]
    k = Kernel(Machine(cpus=cpus, nodes=nodes), version="7.3")
    s = k.kmem_cache_create("t", size=size, flags={"SLAB_NO_MERGE"}, cpu=cpu, **kw)
    return k, s


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_bulk_free_to_empty_main_without_spare_matches_real_kernel() -> None:
    # spec "Checked against the real kernel": 60 to the main sheaf, 40 to slabs,
    # neither barn_put nor barn_put_fail.
    k, s = cache()
    objs = s.alloc_bulk(100, cpu=0)
    st = s.stats()
    assert st["alloc_slowpath"] == 100 and st["barn_get_fail"] == 1 and st["alloc_slab"] == 2
    before = s.stats()
    s.free_bulk(objs, cpu=0)
    d = delta(before, s.stats())
    assert d["free_fastpath"] == 60 and d["free_slowpath"] == 40
    assert "barn_put" not in d and "barn_put_fail" not in d
    k.validate()


def test_barn_full_flushes_the_spare() -> None:
    k, s = cache(cpus=2, cpu=1)
    objs = [s.alloc(cpu=1) for _ in range(721)]
    before = {n: v.get(0, 0) for n, v in s.stats_per_cpu().items()}
    for p in objs:
        s.free(p, cpu=0)
    after = {n: v.get(0, 0) for n, v in s.stats_per_cpu().items()}
    d = delta(before, after)
    assert d == {
        "free_fastpath": 721,
        "sheaf_alloc": 11,  # one spare, then one per barn_put
        "barn_put": 10,
        "barn_put_fail": 1,
        "sheaf_flush": 60,
    } | {k: v for k, v in d.items() if k in ("free_add_partial", "free_slab")}
    assert s.layer.barns[0].nr_full == 10
    k.validate()


def test_node_specific_allocation_and_remote_free() -> None:
    k, s = cache(cpus=2, nodes=2)
    assert k.machine.cpu_node == [0, 1]
    p = s.alloc(cpu=0, node=1)
    assert s.node_of(p) == 1
    assert nonzero(s.stats()) == {
        "alloc_node_mismatch": 1,
        "alloc_slowpath": 1,
        "alloc_slab": 1,
        "sheaf_alloc": 2,
    }
    s.free(p, cpu=0)  # remote object: bypasses the sheaves
    assert s.stats()["free_slowpath"] == 1
    q = s.alloc(cpu=1)  # local sheaf refill on node 1
    s.free(q, cpu=1)
    assert s.stats()["free_fastpath"] == 1
    k.validate()


def test_refill_failure_then_slow_path_oom() -> None:
    k, s = cache()
    k.machine.inject_page_alloc_failures(FaultAttr(probability=100))
    assert s.alloc(cpu=0) == 0
    assert nonzero(s.stats()) == {
        "barn_get_fail": 1,
        "sheaf_alloc": 2,
        "sheaf_free": 1,
        "alloc_slowpath": 1,
    }
    k.machine.inject_page_alloc_failures(None)
    assert s.alloc(cpu=0)
    k.validate()


def test_order_fallback() -> None:
    k, s = cache(size=1024)
    assert (s.order, s.objects, s.min_order, s.min_objects) == (1, 8, 0, 4)
    k.machine.inject_page_alloc_failures(FaultAttr(min_order=1))
    p = s.alloc(cpu=0)
    assert p
    st = s.stats()
    # 12 objects needed, order-0 slabs hold 4: three fallbacks
    assert st["order_fallback"] == 3 and st["alloc_slab"] == 3 and st["sheaf_refill"] == 12
    assert all(sl.order == 0 and sl.objects == 4 for sl in s.slabs)
    k.validate()


def test_partial_refill_is_flushed_back() -> None:
    k = Kernel(Machine(cpus=1, mem_limit_pages=1), version="7.3")
    s = k.kmem_cache_create("t", size=1024, flags={"SLAB_NO_MERGE"})
    # a refill needs 12 objects; only one order-0 slab (4 objects) fits in memory
    assert s.alloc(cpu=0) != 0  # the slow path then takes one of the 4
    st = s.stats()
    assert st["sheaf_refill"] == 4 and st["sheaf_flush"] == 4 and st["sheaf_free"] == 1
    assert st["alloc_slowpath"] == 1 and st["order_fallback"] == 1
    k.validate()


def test_irq_allocation_while_lock_held_takes_slow_paths() -> None:
    k, s = cache()
    s.free(s.alloc(cpu=0), cpu=0)
    before = s.stats()
    with s.cpu_lock_held(0):
        p = s.alloc(cpu=0, context="irq")
        with pytest.raises(LockRecursionError):
            s.alloc(cpu=0)
        s.free(p, cpu=0, context="nmi")
    d = delta(before, s.stats())
    assert d == {"alloc_slowpath": 1, "free_slowpath": 1}
    k.validate()


def test_kmalloc_routing_and_large_kmalloc() -> None:
    k = Kernel(Machine(cpus=1), version="7.3")
    assert k.kmalloc(0) == 16
    k.kfree(16)
    k.kfree(0)
    p = k.kmalloc(100)
    assert k.kmalloc_slab(100).name == "kmalloc-128"
    assert k.by_name["kmalloc-128"].stats()["alloc_fastpath"] == 1
    r = k.kmalloc(100, gfp="GFP_KERNEL|__GFP_RECLAIMABLE")
    assert k.by_name["kmalloc-rcl-128"].stats()["alloc_fastpath"] == 1
    big = k.kmalloc(20000)
    assert big and k.ksize(big) == 32768
    for q in (p, r, big):
        k.kfree(q)
    assert k.by_name["kmalloc-128"].stats()["free_fastpath"] == 1
    assert not k.large_kmalloc
    k.validate()


def test_kmalloc_nolock_never_refills() -> None:
    k = Kernel(Machine(cpus=1), version="7.3")
    s = k.by_name["kmalloc-64"]
    before = s.stats()
    p = k.kmalloc_nolock(64)
    assert p
    d = delta(before, s.stats())
    assert d == {"barn_get_fail": 1, "alloc_slowpath": 1, "alloc_slab": 1}
    before = s.stats()
    k.kfree_nolock(p)  # main is empty (bootstrap-free state): the free fits
    assert delta(before, s.stats()) == {"free_fastpath": 1}
    k.validate()


def test_prefill_api() -> None:
    k, s = cache()
    sh = s.prefill_sheaf(10, cpu=0)
    assert sh is not None and sh.size == 60
    assert nonzero(s.stats()) == {
        "sheaf_prefill_slow": 1,
        "barn_get_fail": 1,
        "sheaf_alloc": 2,
        "sheaf_refill": 60,
        "alloc_slab": 1,
    }
    before = s.stats()
    got = [s.alloc_from_sheaf(sh) for _ in range(10)]
    assert all(got) and s.stats() == before  # no counter for alloc_from_sheaf
    s.return_sheaf(sh, cpu=0)
    assert delta(before, s.stats()) == {"sheaf_return_fast": 1}
    assert s.layer.pcs[0].spare is sh
    before = s.stats()
    big = s.prefill_sheaf(100, cpu=0)
    assert big is not None and big.size == 100
    assert delta(before, s.stats()) == {
        "sheaf_alloc": 1,
        "sheaf_prefill_oversize": 1,
        "alloc_slowpath": 100,
        "alloc_slab": 2,
    }
    k.validate()
    before = s.stats()
    s.return_sheaf(big, cpu=0)
    d = delta(before, s.stats())
    assert d["sheaf_flush"] == 100 and d["sheaf_free"] == 1
    # refill a used sheaf beyond its capacity: a new prefill + return of the old
    sh2 = s.prefill_sheaf(5, cpu=0)
    assert sh2 is sh  # took the spare: sheaf_prefill_fast
    for _ in range(55):
        s.alloc_from_sheaf(sh2)
    sh3 = s.refill_sheaf(sh2, 80, cpu=0)
    assert sh3 is not None and sh3 is not sh2 and sh3.size == 80
    k.validate()
    for p in got:
        s.free(p, cpu=0)
    k.validate()


def test_kfree_rcu_remote_and_kfree_bulk_are_slow_frees() -> None:
    k, s = cache(cpus=2, nodes=2)
    p = s.alloc(cpu=1)  # node-1 object
    k.kfree_rcu(p, cpu=0)  # remote for CPU 0: classic batching, no stat now
    assert s.stats()["free_rcu_sheaf"] == 0 and s.stats()["free_slowpath"] == 0
    k.synchronize_rcu()
    assert s.stats()["free_slowpath"] == 1
    objs = [s.alloc(cpu=0) for _ in range(10)]
    before = s.stats()
    k.kfree_bulk(objs, cpu=0)
    assert delta(before, s.stats()) == {"free_slowpath": 10}
    k.validate()


def test_kvfree_rcu_take_oldest_takes_the_cache_s_longest_queued_object() -> None:
    """What a trace-driven replay frees when the traced kernel's batch frees
    an object the model put in an rcu sheaf: the cache's longest-queued
    batched object, the freeing CPU's batch first."""
    k, s = cache(cpus=2, nodes=2)
    t = k.kmem_cache_create("u", size=64, flags={"SLAB_NO_MERGE"})
    p1, p2 = s.alloc(cpu=1), s.alloc(cpu=1)  # node-1 objects: remote for CPU 0
    q = t.alloc(cpu=1)
    r = s.alloc(cpu=0)  # node-0 object: remote for CPU 1
    k.kfree_rcu(q, cpu=0)
    k.kfree_rcu(p1, cpu=0)
    k.kfree_rcu(p2, cpu=0)
    k.kfree_rcu(r, cpu=1)
    assert k.kvfree_rcu_take_oldest(s, cpu=1) == r  # CPU 1's batch first
    assert k.kvfree_rcu_take_oldest(s, cpu=1) == p1  # then CPU 0's, oldest first
    assert k.kvfree_rcu_take_oldest(s, cpu=0) == p2
    assert k.kvfree_rcu_take_oldest(s, cpu=0) == 0  # only t's object is left
    assert not k.kvfree_rcu_take(p1) and k.kvfree_rcu_take(q)
    for p in (r, p1, p2):
        k.kfree_unchecked(p, cpu=0)
    k.kfree_unchecked(q, cpu=0)
    k.validate()


@pytest.mark.parametrize("pfmemalloc", [False, True])
def test_rcu_free_sheaf_flushes_a_sheaf_with_pfmemalloc_objects(pfmemalloc: bool) -> None:
    # rcu_free_sheaf puts a full rcu sheaf into the barn -- unless an object
    # of it is from a pfmemalloc slab: then it is flushed to the slabs
    k, s = cache()
    cap = s.sheaf_capacity
    objs = [s.alloc(cpu=0) for _ in range(cap)]
    if pfmemalloc:
        s.set_slab_pfmemalloc(s.slab_of(objs[0]), True)
        assert s.pfmemalloc_slabs == 1
    before = s.stats()
    for p in objs:
        k.kfree_rcu(p, cpu=0)  # the last one fills the rcu sheaf: call_rcu
    k.synchronize_rcu()
    d = delta(before, s.stats())
    assert d["free_rcu_sheaf"] == cap
    if pfmemalloc:
        assert d["barn_put_fail"] == 1 and d["sheaf_flush"] == cap and "barn_put" not in d
        assert s.layer.barns[0].nr_full == 0
    else:
        assert d["barn_put"] == 1 and "sheaf_flush" not in d
        assert s.layer.barns[0].nr_full == 1
    k.validate()
    # the count follows the slab: unmarking (or discarding it) takes it back
    for sl in list(s.slabs):
        s.set_slab_pfmemalloc(sl, False)
    assert s.pfmemalloc_slabs == 0


def test_cpu_hotplug_flush_counts_on_control_cpu() -> None:
    k, s = cache(cpus=2)
    objs = [s.alloc(cpu=1) for _ in range(30)]
    for p in objs:
        s.free(p, cpu=1)
    k.cpu_down(1, control_cpu=0)
    assert s.stats_per_cpu()["sheaf_flush"] == {0: 60}
    assert "C1" not in s.stats_text("alloc_fastpath")  # offline CPUs are not summed
    assert s.stats()["alloc_fastpath"] == 0
    k.cpu_up(1)
    assert s.stats()["alloc_fastpath"] == 30
    k.validate()


def test_shrink_sorts_partial_list_and_discards_all_empty_slabs() -> None:
    k, s = cache(size=1024)  # 16 objects per slab, capacity 12
    objs = [s.alloc(cpu=0) for _ in range(200)]
    for p in objs[::3]:
        s.free(p, cpu=0)
    s.shrink(cpu=0)
    n = s.nodes[0]
    assert n is not None
    frees = [sl.objects - sl.inuse for sl in n.partial_slabs()]
    small = [f for f in frees if f <= 32]
    assert small == sorted(small)
    assert all(f < sl.objects for f, sl in zip(frees, n.partial_slabs(), strict=True))
    k.validate()


def test_destroy() -> None:
    from slubsim import CacheBusyError, CacheDestroyedError

    k, s = cache()
    p = s.alloc(cpu=0)
    s.free(p, cpu=0)
    k.kmem_cache_destroy(s)
    with pytest.raises(CacheDestroyedError):
        s.alloc(cpu=0)
    k.validate()
    k2, s2 = cache()
    s2.alloc(cpu=0)
    with pytest.raises(CacheBusyError) as ei:
        k2.kmem_cache_destroy(s2)
    assert "Objects remaining on __kmem_cache_shutdown()" in ei.value.report
    k2.validate()


def test_merging_and_aliases() -> None:
    k = Kernel(Machine(cpus=4), version="7.3")
    a = k.kmem_cache_create("cred", size=184, flags={"SLAB_HWCACHE_ALIGN"})
    b = k.kmem_cache_create("foo192", size=192)
    assert a is b is k.by_name["kmalloc-192"]
    assert a.sysfs_dir == ":0000192" and a.sysfs()["aliases"] == 2
    r = k.kmem_cache_create("dentry", size=192, flags={"SLAB_RECLAIM_ACCOUNT"})
    assert r.name == "kmalloc-rcl-192" and r.sysfs_dir == ":a-0000192"
    m = k.kmem_cache_create("maple_node", size=256, sheaf_capacity=32)
    assert m.name == "maple_node" and m.sheaf_capacity == 32 and m.sysfs_dir == "maple_node"
    c = k.kmem_cache_create("withctor", size=64, ctor=True)
    assert c.name == "withctor" and c.size == 72


def test_build_detached_freelist_groups_by_slab_with_lookahead() -> None:
    # spec §6.10: the tail starts a group, matches below it join (head = lowest
    # index), non-matching entries are compacted below, three misses end the scan
    from slubsim.cache import build_detached_freelist
    from slubsim.slab import Slab

    _, s = cache()
    A, B, C, D = (Slab(s, 0x1000 * (i + 1), 0, 64, 0, 64) for i in range(4))
    p = [1, 2, 10, 3]
    slabs: list[Slab | None] = [A, A, B, A]
    same, slab, chain = build_detached_freelist(p, slabs, 4)
    assert (same, slab, chain) == (1, A, [1, 2, 3])
    assert p[:1] == [10] and slabs[:1] == [B]
    assert build_detached_freelist(p, slabs, 1) == (0, B, [10])
    # look-ahead: three other slabs below the tail end the group
    p = [1, 20, 30, 40, 2]
    slabs = [A, B, C, D, A]
    assert build_detached_freelist(p, slabs, 5) == (4, A, [2])
    assert p == [1, 20, 30, 40, 2]
    # an object outside slab pages (large kmalloc) is a group of its own
    assert build_detached_freelist([7], [None], 1) == (0, None, [7])
