"""The per-CPU caching layer interface every allocator generation implements.

SLUB's layers, fastest first (header comment of ``mm/slub.c``):

1. a per-CPU layer that avoids locks -- *generation specific*:
   6.12 cpu slab + cpu partial list, 2023 RFC percpu array, 6.18 opt-in
   sheaves on top of cpu slabs, 7.x sheaves for all;
2. the per-node partial lists (``kmem_cache_node``, under ``list_lock``) and,
   from 6.18, the per-node barn of full/empty sheaves;
3. new slabs from the page allocator.

A :class:`~slubsim.cache.KmemCache` owns the geometry, nodes, counters and the
object bookkeeping; it delegates every allocation and free to one
``PerCpuLayer`` object, chosen by the kernel generation.  Generations are
classes implementing this interface, not branches on a version string.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .cache import KmemCache
    from .sheaf import Sheaf
    from .slab import Slab


#: a layer's ``hit_kind``: which loop of slubsim.hitpath replays its rows
HIT_NONE: Final = 0  # none: every row goes through the full model
HIT_SHEAVES: Final = 1  # 7.3 sheaves (SheavesLayer exactly)
HIT_CLASSIC: Final = 2  # 6.12 cpu slabs (ClassicLayer exactly, no debugging)


class PerCpuLayer(ABC):
    """What a :class:`KmemCache` needs from its per-CPU layer."""

    #: generation name ("7.3", "6.12", ...)
    generation: str = ""

    def __init__(self, cache: KmemCache) -> None:
        self.cache = cache

    # -- object paths ------------------------------------------------------
    @abstractmethod
    def alloc(self, cpu: int, node: int, nolock: bool, irq: bool) -> int:
        """Allocate one object on ``cpu`` (``slab_alloc_node``); 0 on failure.

        ``irq`` is true when the caller runs in irq/NMI context while the
        CPU's per-CPU lock is held by the interrupted task (trylock fails).
        """

    @abstractmethod
    def free(self, cpu: int, x: int, slab: Slab, nolock: bool, irq: bool) -> None:
        """Free one object (``slab_free`` / ``kfree_nolock``)."""

    @abstractmethod
    def alloc_bulk(self, cpu: int, n: int) -> list[int] | None:
        """``kmem_cache_alloc_bulk``: ``n`` objects or None (nothing kept)."""

    @abstractmethod
    def free_bulk(self, cpu: int, objs: list[int]) -> None:
        """``kmem_cache_free_bulk``."""

    @abstractmethod
    def slab_free_to_slab(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        """``__slab_free`` of a chain of objects of one slab (head first); the
        caller counts FREE_SLOWPATH."""

    @abstractmethod
    def bulk_free_group(self, cpu: int, slab: Slab, chain: list[int]) -> None:
        """``slab_free_bulk`` of one detached freelist (``kfree_bulk`` path),
        counters included."""

    @property
    def has_prefill(self) -> bool:
        """Whether the generation has the prefilled-sheaf API (6.18+)."""
        return type(self).prefill_sheaf is not PerCpuLayer.prefill_sheaf

    def sysfs_extra(self) -> dict[str, int | str]:
        """Generation-specific sysfs attributes (``cpu_partial``, ...)."""
        return {}

    def submit_partial_rcu_sheaves(self, cpu: int) -> None:  # noqa: B027 - optional
        """``flush_all_rcu_sheaves()`` for this cache (layers with rcu sheaves)."""

    @abstractmethod
    def kfree_rcu(self, cpu: int, x: int, slab: Slab, irq: bool) -> bool:
        """Try the layer's kfree_rcu batching; False sends the object to the
        classic kvfree_rcu batch (freed with kfree_bulk after a grace period)."""

    # -- maintenance ---------------------------------------------------------
    @abstractmethod
    def flush_cpu(self, cpu: int, executing_cpu: int) -> None:
        """Flush one CPU's per-CPU state back to slabs (``flush_cpu_sheaves`` /
        ``flush_slab``); counters go to ``executing_cpu``."""

    @abstractmethod
    def shrink_node_caches(self, cpu: int) -> None:
        """Second step of ``kmem_cache_shrink`` before partial lists are sorted
        (7.x: ``barn_shrink`` of every node)."""

    def after_rcu_barrier(self, cpu: int) -> None:  # noqa: B027 - optional hook
        """Hook run by destroy after ``rcu_barrier()``."""

    def install_cpu_slab(self, cpu: int, slab: Slab, keep: int = 0) -> bool:
        """Make ``slab`` the CPU's cpu slab as it was before the trace began,
        ``keep`` free objects left on the slab's own freelist
        (slubsim.pretrace); False where the generation has none (7.x)."""
        del cpu, slab, keep
        return False

    def install_cpu_partial(self, cpu: int, slab: Slab) -> bool:
        """Push ``slab`` (on no list) onto the CPU's cpu partial list as it was
        before the trace began (slubsim.pretrace); False where there is none."""
        del cpu, slab
        return False

    def install_sheaves(self, cpu: int, main: list[int], spare: list[int]) -> bool:
        """Fill the CPU's (empty) main and spare sheaves with objects taken
        out of their slabs, the first to be handed out first, as they were
        before the trace began (slubsim.pretrace); False where there are none."""
        del cpu, main, spare
        return False

    # -- prefilled sheaves (6.18+, 7.x) ------------------------------------
    def prefill_sheaf(self, cpu: int, size: int) -> Sheaf | None:
        raise NotImplementedError(f"{self.generation} has no prefilled sheaves")

    def return_sheaf(self, cpu: int, sheaf: Sheaf) -> None:
        raise NotImplementedError(f"{self.generation} has no prefilled sheaves")

    def refill_sheaf(self, cpu: int, sheaf: Sheaf, size: int) -> tuple[int, Sheaf]:
        raise NotImplementedError(f"{self.generation} has no prefilled sheaves")

    # -- introspection -----------------------------------------------------
    @abstractmethod
    def cached_objects(self) -> Iterator[tuple[str, int]]:
        """Every object held by the per-CPU layer or the barns, with where."""

    @abstractmethod
    def live_sheaves(self) -> int:
        """Sheaf structs alive (for ``sheaf_alloc - sheaf_free``); 0 if none."""

    @abstractmethod
    def lock_held(self, cpu: int) -> bool: ...

    @abstractmethod
    def set_lock_held(self, cpu: int, held: bool) -> None: ...
