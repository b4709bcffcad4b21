"""The spec's worked examples as runnable scenarios (``slubsim example``)."""

from __future__ import annotations

from collections.abc import Callable

from .cache import KmemCache
from .kernel import Kernel
from .machine import Machine


def example_a(cpus: int = 1) -> tuple[Kernel, KmemCache]:
    """§9.4: 100 allocations then 100 frees on CPU 0, then shrink."""
    k = Kernel(Machine(cpus=cpus), version="7.3")
    s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"})
    objs = [s.alloc(cpu=0) for _ in range(100)]
    for p in objs:
        s.free(p, cpu=0)
    s.shrink()
    return k, s


def example_c(cpus: int = 2) -> tuple[Kernel, KmemCache]:
    """§9.6: CPU 0 allocates 200, CPU 1 frees them, CPU 0 allocates 100 more."""
    k = Kernel(Machine(cpus=max(cpus, 2)), version="7.3")
    s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"})
    objs = [s.alloc(cpu=0) for _ in range(200)]
    for p in objs:
        s.free(p, cpu=1)
    for _ in range(100):
        s.alloc(cpu=0)
    return k, s


def example_d(cpus: int = 1) -> tuple[Kernel, KmemCache]:
    """§9.7: kfree_rcu of 60 objects, a grace period, then reuse via the barn."""
    k = Kernel(Machine(cpus=cpus), version="7.3")
    s = k.kmem_cache_create("test64", size=64, flags={"SLAB_NO_MERGE"})
    objs = [s.alloc(cpu=0) for _ in range(100)]
    for p in objs[:60]:
        k.kfree_rcu(p, cpu=0)
    k.synchronize_rcu()
    for _ in range(80):
        s.alloc(cpu=0)
    return k, s


EXAMPLES: dict[str, Callable[..., tuple[Kernel, KmemCache]]] = {
    "A": example_a,
    "C": example_c,
    "D": example_d,
}
