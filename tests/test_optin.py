"""Linux 6.18 opt-in sheaves on top of the classic cpu slab."""

from __future__ import annotations

from slubsim import Kernel, Machine
from slubsim.cli import sample_trace
from slubsim.replay import ReplayOptions, replay
from slubsim.trace.ingest import ingest


def test_only_caches_that_ask_get_sheaves_of_exactly_that_capacity() -> None:
    k = Kernel(Machine(cpus=2), version="6.18")
    s = k.kmem_cache_create("maple_node", size=256, sheaf_capacity=32)
    t = k.kmem_cache_create("plain", size=256)
    assert (s.name, s.sheaf_capacity, s.sysfs_dir) == ("maple_node", 32, "maple_node")
    assert t.name == "kmalloc-256" and t.sheaf_capacity == 0  # merged, no sheaves
    dbg = Kernel(Machine(cpus=1), version="6.18").kmem_cache_create(
        "d", size=64, sheaf_capacity=32, flags={"SLAB_POISON"}
    )
    assert dbg.sheaf_capacity == 0  # debug caches ignore sheaf_capacity


def test_double_caching_counts_refills_in_the_cpu_slab_counters() -> None:
    k = Kernel(Machine(cpus=1), version="6.18")
    s = k.kmem_cache_create("vma", size=192, sheaf_capacity=32)
    objs = [s.alloc(0) for _ in range(100)]
    st = s.stats()
    assert st["alloc_cpu_sheaf"] == 100  # every allocation served by a sheaf
    # the refills went through __kmem_cache_alloc_bulk and the cpu slab
    assert st["sheaf_refill"] == st["alloc_fastpath"] + st["alloc_slowpath"] == 128
    assert st["alloc_slab"] >= 1 and st["deactivate_bypass"] >= 1
    for p in objs:
        s.free(p, 0)
    before = s.stats()
    s.shrink()
    after = s.stats()
    # flushing goes through do_slab_free: fast into the cpu slab, slow otherwise
    flushed = after["sheaf_flush"] - before["sheaf_flush"]
    moved = (
        after["free_fastpath"]
        + after["free_slowpath"]
        - before["free_fastpath"]
        - before["free_slowpath"]
    )
    assert flushed >= 64 and 0 < moved <= flushed
    k.validate()


def test_every_generation_replays_the_sample_side_by_side() -> None:
    st = ingest(sample_trace())
    hits = {}
    for gen in ("6.12", "rfc-pca", "rfc-pca-v3", "6.18", "7.3"):
        r = replay(st, ReplayOptions(kernel=gen, caches=["maple_node", "filp"]))
        assert r["kernel"] == gen
        hits[gen] = r["caches"]["maple_node"]["counters"]
    assert "alloc_cpu_sheaf" in hits["6.18"] and hits["6.18"]["alloc_cpu_sheaf"] > 0
    assert hits["rfc-pca"]["alloc_cpu_cache"] > 0
    assert "cpu_partial_free" in hits["6.12"] and "sheaf_refill" in hits["7.3"]
