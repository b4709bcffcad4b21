"""The 2023 RFC "SLUB percpu array caches" (never merged; spec §8.1) on top of
the 6.12 classic layer.

``kmem_cache_setup_percpu_array(s, count)`` gives an opted-in cache (created
with ``SLAB_NO_MERGE``) a per-CPU array of ``count`` object pointers, protected
by a pcplist-style embedded spinlock taken with a trylock.

* **v2** (V. Babka, 2023-08-10, "[RFC v2 2/7] mm, slub: add opt-in
  slub_percpu_array"; reviewed 2023-11-28): the array is filled only by frees
  and simply bypassed when empty (alloc) or full (free) or when the trylock
  fails; the node preference of an allocation is ignored by the array; bulk
  allocation bypasses it and bulk frees reach it only for one-object groups;
  ``kmem_cache_prefill_percpu_array(s, count)`` is racy and local-CPU only:
  it bulk-allocates ``min(count - used, 32)`` objects and frees them one by one
  into the array.
* **v3** (2023-11-29, patch 5/9): an empty array on allocation is refilled
  with half its size in batches of at most 32 through the bulk allocator
  (``cpu_cache_refill``), a full array on free is flushed by half
  (``cpu_cache_flush``); node-specific allocations bypass the array; bulk
  allocation and bulk free use it; neither refill nor flush happens in
  irq context.  (The v3 hunk in ``slab_free()`` ignored ``free_to_pca()``'s
  result -- an RFC defect; this model falls back to the normal free.)

Counters: the 6.12 items plus ``alloc_cpu_cache``, ``free_cpu_cache``,
``cpu_cache_refill``, ``cpu_cache_flush`` (the RFC's sysfs names).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from .classic import ClassicLayer
from .constants import NUMA_NO_NODE
from .errors import SlubsimUsageError
from .slab import Slab
from .stats import STAT_ITEMS_RFC_PCA

if TYPE_CHECKING:
    from .cache import KmemCache

ALLOC_PCA: Final = STAT_ITEMS_RFC_PCA.index("alloc_cpu_cache")
FREE_PCA: Final = STAT_ITEMS_RFC_PCA.index("free_cpu_cache")
PCA_REFILL: Final = STAT_ITEMS_RFC_PCA.index("cpu_cache_refill")
PCA_FLUSH: Final = STAT_ITEMS_RFC_PCA.index("cpu_cache_flush")
PCA_BATCH: Final = 32
#: caches the RFC converted (the maple tree), with their array size
DEFAULT_OPT_IN = {"maple_node": 32}


class PcaLayer(ClassicLayer):
    """6.12 classic layer plus the RFC's optional per-CPU object array."""

    generation = "rfc-pca"
    stat_items = STAT_ITEMS_RFC_PCA
    version_variant = 2

    def __init__(self, cache: KmemCache, creating_cpu: int) -> None:
        super().__init__(cache, creating_cpu)
        self.count = 0  # array capacity; 0 = no array (not set up)
        self.arrays: list[list[int]] = [[] for _ in range(self.machine.nr_cpus)]
        opt = cache.kernel.config.pca_opt_in
        if cache.name in opt:
            self.setup_percpu_array(opt[cache.name])

    def setup_percpu_array(self, count: int) -> None:
        """Models ``kmem_cache_setup_percpu_array``: -EINVAL unless the cache is
        ``SLAB_NO_MERGE`` (here: not merged with anything) and not set up yet."""
        if self.count:
            raise SlubsimUsageError(f"{self.cache.name}: percpu array already set up")
        if count <= 0:
            raise SlubsimUsageError("percpu array size must be positive")
        if self.cache.refcount > 1:
            raise SlubsimUsageError(
                f"{self.cache.name}: kmem_cache_setup_percpu_array needs SLAB_NO_MERGE"
            )
        self.count = count

    # -------------------------------------------------------------- alloc
    def alloc(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        arr = self.arrays[cpu]
        if self.count and not (irq and self.locked[cpu]):
            if self.version_variant >= 3 and node != NUMA_NO_NODE:
                pass  # v3: node-specific allocations bypass the array
            elif arr:
                self.cache.stat[cpu][ALLOC_PCA] += 1
                return arr.pop()
            elif self.version_variant >= 3 and not irq:
                self._refill_pca(cpu, self.count // 2)
                if arr:
                    self.cache.stat[cpu][ALLOC_PCA] += 1
                    return arr.pop()
        return super().alloc(cpu, node, nolock, irq)

    def _refill_pca(self, cpu: int, n: int) -> int:
        """v3 ``refill_pca``: bulk-allocate through the cpu slab in batches."""
        arr = self.arrays[cpu]
        done = 0
        while done < n and len(arr) < self.count:
            batch = min(PCA_BATCH, n - done, self.count - len(arr))
            objs = ClassicLayer.alloc_bulk(self, cpu, batch)
            if not objs:
                break
            arr.extend(objs)
            self.cache.stat[cpu][PCA_REFILL] += len(objs)
            done += len(objs)
        return done

    # --------------------------------------------------------------- free
    def free(self, cpu: int, x: int, slab: Slab, nolock: bool, irq: bool) -> None:
        if self.count and self._free_to_pca(cpu, x, irq):
            return
        super().free(cpu, x, slab, nolock, irq)

    def _free_to_pca(self, cpu: int, x: int, irq: bool) -> bool:
        if irq and self.locked[cpu]:
            return False
        arr = self.arrays[cpu]
        if len(arr) >= self.count:
            if self.version_variant < 3 or irq:
                return False
            self._flush_pca(cpu, self.count // 2)
        arr.append(x)
        self.cache.stat[cpu][FREE_PCA] += 1
        return True

    def _flush_pca(self, cpu: int, n: int, executing_cpu: int | None = None) -> None:
        """v3 ``flush_pca``: the top ``n`` objects back in batches of <= 32."""
        ex = cpu if executing_cpu is None else executing_cpu
        arr = self.arrays[cpu]
        while n > 0 and arr:
            batch = min(PCA_BATCH, n, len(arr))
            objs = arr[-batch:]
            del arr[-batch:]
            ClassicLayer.free_bulk(self, ex, objs)
            self.cache.stat[ex][PCA_FLUSH] += batch
            n -= batch

    def bulk_free_group(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        if (
            self.count
            and len(chain) == 1
            and self.version_variant < 3
            and self._free_to_pca(cpu, chain[0], False)
        ):
            return
        super().bulk_free_group(cpu, slab, chain)

    # --------------------------------------------------------------- bulk
    def alloc_bulk(self, cpu: int, n: int) -> list[int] | None:
        if self.count and self.version_variant >= 3 and n > 0:
            arr = self.arrays[cpu]
            take = min(n, len(arr))
            got = arr[len(arr) - take :]
            del arr[len(arr) - take :]
            self.cache.stat[cpu][ALLOC_PCA] += take
            if take == n:
                return got
            rest = super().alloc_bulk(cpu, n - take)
            if rest is None:
                arr.extend(got)
                self.cache.stat[cpu][ALLOC_PCA] -= take
                return None
            return got + rest
        return super().alloc_bulk(cpu, n)

    def free_bulk(self, cpu: int, objs: list[int]) -> None:
        if self.count and self.version_variant >= 3:
            arr = self.arrays[cpu]
            room = max(self.count - len(arr), 0)
            head, objs = objs[:room], objs[room:]
            arr.extend(head)
            self.cache.stat[cpu][FREE_PCA] += len(head)
        if objs:
            super().free_bulk(cpu, objs)

    # ------------------------------------------------------------ prefill
    def prefill_percpu_array(self, cpu: int, count: int) -> int:
        """Models ``kmem_cache_prefill_percpu_array``: racy, this CPU only.
        Returns the number of objects added (-22 for -EINVAL)."""
        used = len(self.arrays[cpu])
        if used >= count:
            return 0
        if self.count < count:
            return -22
        if self.version_variant >= 3:
            return self._refill_pca(cpu, count - used)
        n = min(count - used, PCA_BATCH)
        objs = ClassicLayer.alloc_bulk(self, cpu, n)  # bypasses the array
        if not objs:
            return 0
        for x in objs:  # kmem_cache_free() each: they land in the array
            self.free(cpu, x, self.cache.slab_of(x), False, False)
        return len(objs)

    # -------------------------------------------------------- maintenance
    def flush_cpu(self, cpu: int, executing_cpu: int) -> None:
        arr = self.arrays[cpu]
        if arr:
            objs = list(arr)
            arr.clear()
            ClassicLayer.free_bulk(self, executing_cpu, objs)
        super().flush_cpu(cpu, executing_cpu)

    def cached_objects(self) -> Iterator[tuple[str, int]]:
        yield from super().cached_objects()
        for cpu, arr in enumerate(self.arrays):
            for x in arr:
                yield f"cpu{cpu}.percpu_array", x


class PcaV3Layer(PcaLayer):
    """RFC v3 behaviour (half-array refill/flush, bulk through the array, NUMA bypass)."""

    generation = "rfc-pca-v3"
    version_variant = 3
