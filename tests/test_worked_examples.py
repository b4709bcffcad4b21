"""The spec's worked examples (§9.4, §9.6, §9.7), counter for counter.

The real 7.3.4 kernel counts one ``sheaf_alloc`` per *possible* CPU at cache
creation, all on the creating CPU (spec, "Checked against the real kernel").
"""

from __future__ import annotations

from conftest import nonzero
from slubsim import Kernel, Machine


def make(cpus: int) -> tuple[Kernel, object]:
    k = Kernel(Machine(cpus=cpus), version="7.3")
    s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"})
    return k, s


def test_example_a_100_allocs_100_frees_shrink() -> None:
    for cpus in (1, 2, 4):
        k = Kernel(Machine(cpus=cpus), version="7.3")
        s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"})
        assert (s.sheaf_capacity, s.objects, s.order, s.min_partial) == (60, 64, 0, 5)
        objs = [s.alloc(cpu=0) for _ in range(100)]
        assert len(set(objs)) == 100
        # after the allocations: main holds 20, spare is empty
        pcs = s.layer.pcs[0]
        assert len(pcs.main.objects) == 20
        assert pcs.spare is not None and not pcs.spare.objects
        for p in objs:
            s.free(p, cpu=0)
        assert len(pcs.main.objects) == 60 and len(pcs.spare.objects) == 60
        k.validate()
        s.shrink()
        k.validate()
        assert nonzero(s.stats()) == {
            "alloc_fastpath": 100,
            "free_fastpath": 100,
            "sheaf_alloc": cpus + 1,
            "sheaf_refill": 120,
            "sheaf_flush": 120,
            "sheaf_free": 1,
            "barn_get_fail": 2,
            "alloc_slab": 2,
            "free_add_partial": 1,
        }
        assert s.sysfs()["slabs"] == 0
        assert s.stats_text("alloc_fastpath") == "100 C0=100"


def test_example_c_producer_consumer_through_the_barn() -> None:
    k = Kernel(Machine(cpus=2), version="7.3")
    s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"}, cpu=0)
    objs = [s.alloc(cpu=0) for _ in range(200)]
    for p in objs:
        s.free(p, cpu=1)
    more = [s.alloc(cpu=0) for _ in range(100)]
    assert len(set(more)) == 100
    k.validate()
    per = s.stats_per_cpu()

    def on(cpu: int) -> dict[str, int]:
        return {name: v[cpu] for name, v in per.items() if cpu in v}

    assert on(0) == {
        "alloc_fastpath": 300,
        "barn_get_fail": 4,
        "barn_get": 1,
        "sheaf_refill": 240,
        "sheaf_alloc": 1 + 2,  # +2: the creation sheaves, counted on CPU 0
        "alloc_slab": 4,
    }
    assert on(1) == {"free_fastpath": 200, "sheaf_alloc": 3, "barn_put": 2}
    assert s.stats_text("alloc_fastpath") == "300 C0=300"
    assert s.stats_text("barn_put") == "2 C1=2"
    # S4 stays on the partial list with 16 free objects
    n = s.nodes[0]
    assert n is not None and n.nr_partial == 1
    assert next(n.partial_slabs()).objects - next(n.partial_slabs()).inuse == 16


def test_example_d_kfree_rcu_recycling() -> None:
    k = Kernel(Machine(cpus=1), version="7.3")
    s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"})
    objs = [s.alloc(cpu=0) for _ in range(100)]
    before = s.stats()
    for p in objs[:60]:
        s.kfree_rcu(p, cpu=0)
    mid = s.stats()
    assert mid["free_rcu_sheaf"] == 60
    assert mid["barn_put"] == 0  # counted only after the grace period
    assert mid["sheaf_alloc"] == before["sheaf_alloc"]  # the empty spare was stolen
    k.validate()
    k.synchronize_rcu()
    after = s.stats()
    assert after["barn_put"] == 1
    assert s.layer.barns[0].nr_full == 1
    # the next time main empties, barn_get hands the 60 objects out again
    refill_before = after["sheaf_refill"]
    got = [s.alloc(cpu=0) for _ in range(20 + 60)]
    final = s.stats()
    assert final["barn_get"] == 1
    assert final["sheaf_refill"] == refill_before  # no slab touched
    assert set(got[20:]) == set(objs[:60])
    k.validate()
