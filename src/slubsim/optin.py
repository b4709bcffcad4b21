"""Linux 6.18/6.19 opt-in sheaves layered on the classic cpu slab (spec §8.2).

Only caches created with ``kmem_cache_args.sheaf_capacity`` get sheaves, with
exactly that capacity (the RFC's users: ``maple_node`` and ``vm_area_struct``,
32 each); they become unmergeable.  The sheaves are the 7.x machinery (main,
spare, rcu_free, barn, prefill API), but underneath sits the full 6.12 cpu slab
+ cpu partial layer -- the "double caching" 7.0 removed:

* a sheaf hit counts ``alloc_cpu_sheaf`` / ``free_cpu_sheaf``;
* a refill is ``__kmem_cache_alloc_bulk`` through the cpu slab, so it also
  moves ``alloc_fastpath``/``alloc_slowpath`` and the cpu-slab counters;
* a flush is ``__kmem_cache_free_bulk`` -> ``do_slab_free`` (``free_fastpath``
  into the cpu slab, else ``__slab_free`` with ``free_slowpath`` per group);
* an allocation or free that bypasses the sheaves takes the 6.12 paths.

Decision: the 6.18 series refilled only when the gfp flags allowed blocking;
the model has no gfp for ordinary allocations and refills in task context, not
in irq/NMI context.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .classic import ClassicLayer
from .sheaf import Sheaf
from .sheaves import SheavesLayer
from .slab import Slab
from .stats import STAT_ITEMS_618

if TYPE_CHECKING:
    from .cache import KmemCache


class SheavesOnClassic(SheavesLayer):
    """The sheaf machinery with the classic layer as its back end."""

    generation = "6.18"
    stat_items = STAT_ITEMS_618
    hit_items = ("alloc_cpu_sheaf", "free_cpu_sheaf")

    def __init__(self, cache: KmemCache, creating_cpu: int, classic: ClassicLayer) -> None:
        self.classic = classic
        super().__init__(cache, creating_cpu)

    def alloc(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        self._irq = irq
        return super().alloc(cpu, node, nolock, irq)

    def refill_objects(self, cpu: int, p: list[int], mn: int, mx: int) -> int:
        """6.18 ``refill_sheaf``: ``__kmem_cache_alloc_bulk`` through the cpu slab."""
        if getattr(self, "_irq", False):
            return 0  # no blocking gfp: no refill
        objs = ClassicLayer.alloc_bulk(self.classic, cpu, mx)
        if not objs:
            return 0
        p.extend(objs)
        return len(objs)

    def slab_alloc_slow(self, cpu: int, node: int, nolock: bool) -> int:
        """After the sheaves: ``__slab_alloc_node`` of the classic layer."""
        return ClassicLayer.alloc(self.classic, cpu, node, nolock, False)

    def slow_free(self, cpu: int, x: int, slab: Slab) -> None:
        ClassicLayer.free(self.classic, cpu, x, slab, False, False)

    def free_bulk_to_slabs(self, cpu: int, objs: list[int]) -> int:
        """``__kmem_cache_free_bulk`` -> ``do_slab_free`` per detached freelist."""
        ClassicLayer.free_bulk(self.classic, cpu, objs)
        return 0

    def user_bulk_to_slabs(self, cpu: int, objs: list[int]) -> None:
        ClassicLayer.free_bulk(self.classic, cpu, objs)

    def _kmem_cache_alloc_bulk(self, cpu: int, size: int, p: list[int]) -> bool:
        objs = ClassicLayer.alloc_bulk(self.classic, cpu, size)
        if not objs:
            return False
        p.extend(objs)
        return True

    def bulk_free_group(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        ClassicLayer.bulk_free_group(self.classic, cpu, slab, chain)

    def slab_free_to_slab(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        ClassicLayer.slab_free_to_slab(self.classic, cpu, slab, chain)


class OptInSheavesLayer(ClassicLayer):
    """6.18: classic layer, plus sheaves for caches that asked for them."""

    generation = "6.18"
    stat_items = STAT_ITEMS_618

    def __init__(self, cache: KmemCache, creating_cpu: int) -> None:
        super().__init__(cache, creating_cpu)
        self.sh: SheavesOnClassic | None = (
            SheavesOnClassic(cache, creating_cpu, self) if cache.sheaf_capacity else None
        )

    @property
    def has_prefill(self) -> bool:
        return self.sh is not None

    # object paths
    def alloc(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        if self.sh is not None:
            return self.sh.alloc(cpu, node, nolock, irq)
        return super().alloc(cpu, node, nolock, irq)

    def free(self, cpu: int, x: int, slab: Slab, nolock: bool, irq: bool) -> None:
        if self.sh is not None:
            self.sh.free(cpu, x, slab, nolock, irq)
        else:
            super().free(cpu, x, slab, nolock, irq)

    def alloc_bulk(self, cpu: int, n: int) -> list[int] | None:
        if self.sh is not None:
            return self.sh.alloc_bulk(cpu, n)
        return super().alloc_bulk(cpu, n)

    def free_bulk(self, cpu: int, objs: list[int]) -> None:
        if self.sh is not None:
            self.sh.free_bulk(cpu, objs)
        else:
            super().free_bulk(cpu, objs)

    def kfree_rcu(self, cpu: int, x: int, slab: Slab, irq: bool) -> bool:
        return self.sh.kfree_rcu(cpu, x, slab, irq) if self.sh is not None else False

    def prefill_sheaf(self, cpu: int, size: int) -> Sheaf | None:
        if self.sh is None:
            return super().prefill_sheaf(cpu, size)
        return self.sh.prefill_sheaf(cpu, size)

    def return_sheaf(self, cpu: int, sheaf: Sheaf) -> None:
        if self.sh is None:
            super().return_sheaf(cpu, sheaf)
        else:
            self.sh.return_sheaf(cpu, sheaf)

    def refill_sheaf(self, cpu: int, sheaf: Sheaf, size: int) -> tuple[int, Sheaf]:
        if self.sh is None:
            return super().refill_sheaf(cpu, sheaf, size)
        return self.sh.refill_sheaf(cpu, sheaf, size)

    # maintenance
    def flush_cpu(self, cpu: int, executing_cpu: int) -> None:
        if self.sh is not None:
            self.sh.flush_cpu(cpu, executing_cpu)
        super().flush_cpu(cpu, executing_cpu)

    def shrink_node_caches(self, cpu: int) -> None:
        if self.sh is not None:
            self.sh.shrink_node_caches(cpu)

    def submit_partial_rcu_sheaves(self, cpu: int) -> None:
        if self.sh is not None:
            self.sh.submit_partial_rcu_sheaves(cpu)

    def destroy_percpu(self, cpu: int) -> None:
        if self.sh is not None:
            self.sh.destroy_percpu(cpu)

    def grow_capacity(self, new: int) -> None:
        if self.sh is not None:
            self.sh.grow_capacity(new)

    # introspection
    def cached_objects(self) -> Iterator[tuple[str, int]]:
        yield from super().cached_objects()
        if self.sh is not None:
            yield from self.sh.cached_objects()

    def live_sheaves(self) -> int:
        return self.sh.live_sheaves() if self.sh is not None else 0

    def count_sheaves(self) -> int:
        return self.sh.count_sheaves() if self.sh is not None else 0

    def lock_held(self, cpu: int) -> bool:
        return self.sh.lock_held(cpu) if self.sh is not None else super().lock_held(cpu)

    def set_lock_held(self, cpu: int, held: bool) -> None:
        if self.sh is not None:
            self.sh.set_lock_held(cpu, held)
        super().set_lock_held(cpu, held)
