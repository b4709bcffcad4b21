"""The Linux 6.12 classic per-CPU layer (cpu slab + cpu partial lists)."""

from __future__ import annotations

from conftest import nonzero
from slubsim import Kernel, Machine


def make(cpus: int = 1, size: int = 64):  # type: ignore[no-untyped-def]
    k = Kernel(Machine(cpus=cpus), version="6.12")
    return k, k.kmem_cache_create("test64", size=size, flags={"SLAB_NO_MERGE"})


def test_example_b_same_workload_as_a() -> None:
    """Spec §9.5, counter for counter."""
    k, s = make()
    assert (s.geometry.cpu_partial, s.geometry.cpu_partial_slabs, s.objects) == (120, 4, 64)
    assert s.sysfs()["cpu_partial"] == 120 and s.sheaf_capacity == 0
    objs = [s.alloc(cpu=0) for _ in range(100)]
    assert objs[:3] == sorted(objs[:3])  # 6.12 hands out a new slab in address order
    c = s.layer.cpus[0]
    assert len(c.freelist) == 28
    for p in objs:
        s.free(p, cpu=0)
    k.validate()
    s.shrink()
    k.validate()
    assert nonzero(s.stats()) == {
        "alloc_fastpath": 98,
        "alloc_slowpath": 2,
        "alloc_slab": 2,
        "deactivate_bypass": 1,
        "free_fastpath": 36,
        "free_slowpath": 64,
        "cpu_partial_free": 1,
        "cpuslab_flush": 1,
        "deactivate_to_head": 1,
        "free_add_partial": 1,
    }
    assert s.sysfs()["slabs"] == 0


def test_free_into_another_cpus_slab_is_free_frozen() -> None:
    k, s = make(cpus=2)
    p = s.alloc(cpu=0)
    s.alloc(cpu=0)
    s.free(p, cpu=1)
    st = nonzero(s.stats())
    assert st["free_slowpath"] == 1 and st["free_frozen"] == 1
    # CPU 0 finds the remote free when its cpu freelist runs dry: alloc_refill
    for _ in range(62):
        s.alloc(cpu=0)
    q = s.alloc(cpu=0)
    assert q == p and s.stats()["alloc_refill"] == 1
    k.validate()


def test_cpu_partial_drain_and_node_partial_refill() -> None:
    k, s = make(cpus=2)
    slabs = [[s.alloc(cpu=0) for _ in range(64)] for _ in range(8)]
    # one free into each full slab parks it on CPU 1's partial list; at the
    # limit (cpu_partial_slabs = 4) the old chain drains to the node list
    for objs in slabs[:7]:
        s.free(objs[0], cpu=1)
    st = s.stats()
    assert st["cpu_partial_free"] == 7 and st["cpu_partial_drain"] == 1
    assert st["free_add_partial"] == 4
    assert s.sysfs()["slabs_cpu_partial"] == "96(3) C1=96(3)"
    # CPU 1 allocates: its partial list first (cpu_partial_alloc)
    s.alloc(cpu=1)
    assert s.stats()["cpu_partial_alloc"] == 1
    k.validate()
    # CPU 0 (cpu slab exhausted, no partials) takes from the node list, with extras
    s.alloc(cpu=0)
    st = s.stats()
    assert st["alloc_from_partial"] == 1 and st["cpu_partial_node"] == 3
    k.validate()


def test_bulk_paths_and_kfree_rcu() -> None:
    k, s = make(cpus=2)
    objs = s.alloc_bulk(100, cpu=0)
    st = s.stats()
    assert st["alloc_fastpath"] + st["alloc_slowpath"] == 100
    # objects 60..99: 4 from the first slab, 36 from the current cpu slab
    s.free_bulk(objs[60:], cpu=0)
    st = s.stats()
    assert (st["free_fastpath"], st["free_slowpath"]) == (36, 1)  # slow path once per group
    for p in objs[:60]:
        k.kfree_rcu(p, cpu=1)  # no rcu sheaf in 6.12: kvfree_rcu batch
    assert s.stats()["free_slowpath"] == 1  # nothing freed before the grace period
    k.synchronize_rcu()
    st = s.stats()
    assert st["free_slowpath"] == 2 and st["free_fastpath"] == 36  # one group, CPU 1
    k.validate()
    assert s.live_objects() == 0
