"""Core-model throughput: alloc+free pairs per second through the public API.

* fast path: one CPU allocates and frees the same object (main sheaf hits);
* refill-heavy: bursts of 1000 allocations then 1000 frees on rotating CPUs,
  so sheaves refill from slabs, trade through the barn and flush back;
* producer/consumer: CPU 0 allocates, CPU 1 frees (barn traffic every sheaf).

Prints numbers; not a test.  Run: python benchmarks/bench_model.py
"""

from __future__ import annotations

import time

from slubsim import Kernel, Machine


def bench(name: str, fn, pairs: int) -> None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    print(f"{name:<28} {pairs:>9} pairs  {dt:7.3f} s  {pairs / dt / 1e3:9.1f} k pairs/s")


def main() -> None:
    k = Kernel(Machine(cpus=4), version="7.3")
    s = k.kmem_cache_create("bench64", size=64, flags={"SLAB_NO_MERGE"})
    n = 300_000

    def fast() -> None:
        alloc, free = s.alloc, s.free
        for _ in range(n):
            free(alloc(0), 0)

    bench("fast path (1 CPU)", fast, n)
    st = s.stats()
    assert st["alloc_fastpath"] >= n - 1

    def refill() -> None:
        for r in range(n // 1000):
            cpu = r % 4
            objs = [s.alloc(cpu) for _ in range(1000)]
            for p in objs:
                s.free(p, cpu)

    bench("refill-heavy bursts", refill, n)

    def prodcons() -> None:
        for _ in range(n // 1000):
            objs = [s.alloc(0) for _ in range(1000)]
            for p in objs:
                s.free(p, 1)

    bench("producer/consumer", prodcons, n)
    k.validate()
    st = s.stats()
    print("counters:", {k: v for k, v in st.items() if v})


if __name__ == "__main__":
    main()
