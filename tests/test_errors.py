"""Every misuse raises its specific error, in the kernel's report style, and
leaves the model exactly as it was."""

from __future__ import annotations

import pytest

from slubsim import (
    CacheDestroyedError,
    DoubleFreeError,
    InvalidFreeError,
    Kernel,
    Machine,
    NeverAllocatedError,
    SlubsimUsageError,
    WrongCacheError,
)


@pytest.fixture
def ks():  # type: ignore[no-untyped-def]
    k = Kernel(Machine(cpus=2), version="7.3")
    s = k.kmem_cache_create("a", size=64, flags={"SLAB_NO_MERGE"})
    t = k.kmem_cache_create("b", size=64, flags={"SLAB_NO_MERGE"})
    return k, s, t


def unchanged(k, s, fn):  # type: ignore[no-untyped-def]
    before = (s.stats(), {c.name: c.sysfs() for c in k.caches})
    fn()
    assert (s.stats(), {c.name: c.sysfs() for c in k.caches}) == before
    k.validate()


def test_double_free(ks) -> None:  # type: ignore[no-untyped-def]
    k, s, _ = ks
    p = s.alloc(cpu=0)
    s.free(p, cpu=0)
    with pytest.raises(DoubleFreeError) as ei:
        unchanged(k, s, lambda: s.free(p, cpu=1))
    assert "BUG a" in ei.value.report and "Object already free" in ei.value.report
    assert f"FIX a: Object at 0x{p:x} not freed" in ei.value.report
    assert "cached in cpu0.main" in str(ei.value.where)


def test_free_of_never_allocated_object(ks) -> None:  # type: ignore[no-untyped-def]
    k, s, _ = ks
    p = s.alloc(cpu=0)
    other = p - s.size  # refill hands out descending addresses; this one is cached
    with pytest.raises(NeverAllocatedError) as ei:
        unchanged(k, s, lambda: s.free(other, cpu=0))
    assert "never allocated" in ei.value.where
    # an object still on the slab freelist
    last = next(iter(s.slabs)).freelist[0]
    with pytest.raises(NeverAllocatedError):
        s.free(last, cpu=0)


def test_foreign_and_misaligned_pointers(ks) -> None:  # type: ignore[no-untyped-def]
    k, s, _ = ks
    p = s.alloc(cpu=0)
    with pytest.raises(InvalidFreeError, match="not in a slab page"):
        unchanged(k, s, lambda: s.free(0x1234, cpu=0))
    for off in (8, 4, 1):  # (4 and 1 fall in the object's own shadow granule)
        with pytest.raises(InvalidFreeError, match="Invalid object pointer"):
            unchanged(k, s, lambda o=off: s.free(p + o, cpu=0))
    with pytest.raises(InvalidFreeError):
        unchanged(k, s, lambda: k.kfree(p + 4))
    with pytest.raises(InvalidFreeError):
        k.kfree(0xDEAD0000)


def test_free_into_wrong_cache(ks) -> None:  # type: ignore[no-untyped-def]
    k, s, t = ks
    p = s.alloc(cpu=0)
    with pytest.raises(WrongCacheError, match="object belongs to different cache a"):
        unchanged(k, t, lambda: t.free(p, cpu=0))
    s.free(p, cpu=0)


def test_free_after_destroy(ks) -> None:  # type: ignore[no-untyped-def]
    k, s, _ = ks
    p = s.alloc(cpu=0)
    s.free(p, cpu=0)
    k.kmem_cache_destroy(s)
    with pytest.raises(CacheDestroyedError):
        s.free(p, cpu=0)
    with pytest.raises(CacheDestroyedError):
        k.kmem_cache_destroy(s)


def test_bulk_free_with_duplicate(ks) -> None:  # type: ignore[no-untyped-def]
    k, s, _ = ks
    objs = s.alloc_bulk(5, cpu=0)
    with pytest.raises(DoubleFreeError):
        unchanged(k, s, lambda: s.free_bulk([*objs, objs[0]], cpu=0))
    s.free_bulk(objs, cpu=0)
    k.validate()


def test_usage_errors() -> None:
    k = Kernel(Machine(cpus=1))
    with pytest.raises(SlubsimUsageError, match="unknown kernel version"):
        Kernel(Machine(), version="2.4")
    with pytest.raises(SlubsimUsageError, match="unknown slab flag"):
        k.kmem_cache_create("x", size=8, flags={"SLAB_NOPE"})
    with pytest.raises(SlubsimUsageError, match="cpu 3 out of range"):
        k.kmalloc(8, cpu=3)
    s = k.kmem_cache_create("x", size=8)
    with pytest.raises(SlubsimUsageError, match="already exists"):
        k.kmem_cache_create("x", size=8)
    with pytest.raises(SlubsimUsageError, match="not a stat item"):
        s.stats_text("alloc_cpu_sheaf")
