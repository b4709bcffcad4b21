"""Every SLUB_STATS counter the model knows, named in one place.

Each allocator generation has its own ``enum stat_item`` (``mm/slub.c``); the
sysfs file of an item is the lower-case enum name except where the kernel's
``STAT_ATTR()`` line says otherwise.  Counters are kept per CPU as
``unsigned int`` (``raw_cpu_inc``), so they wrap at 2**32; the sysfs read sums
online CPUs into an ``unsigned long`` (see :func:`format_stat`).

The index constants (``ALLOC_FASTPATH`` …) are the 7.3 enum values; they are
plain ``int`` so that the hot path can index a per-CPU ``list[int]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

# --- Linux 7.3 (sheaves for all) -- enum stat_item, in enum order. -------------
# Source: mm/slub.c of 7.3.4; the 7.0 cleanup "mm/slub: cleanup and repurpose some
# stat items" removed 17 items and re-purposed ALLOC_FASTPATH/FREE_FASTPATH.
STAT_ITEMS_73: tuple[str, ...] = (
    "alloc_fastpath",  # 0  object taken from a percpu main sheaf
    "alloc_slowpath",  # 1  ___slab_alloc() entered / bulk from slabs
    "free_rcu_sheaf",  # 2  __kfree_rcu_sheaf() stored an object
    "free_rcu_sheaf_fail",  # 3
    "free_fastpath",  # 4  object stored in a percpu main sheaf
    "free_slowpath",  # 5  user free that went to __slab_free() directly
    "free_add_partial",  # 6
    "free_remove_partial",  # 7
    "alloc_slab",  # 8
    "alloc_node_mismatch",  # 9
    "free_slab",  # 10
    "order_fallback",  # 11
    "cmpxchg_double_fail",  # 12
    "sheaf_flush",  # 13
    "sheaf_refill",  # 14
    "sheaf_alloc",  # 15
    "sheaf_free",  # 16
    "barn_get",  # 17
    "barn_get_fail",  # 18
    "barn_put",  # 19
    "barn_put_fail",  # 20
    "sheaf_prefill_fast",  # 21
    "sheaf_prefill_slow",  # 22
    "sheaf_prefill_oversize",  # 23
    "sheaf_return_fast",  # 24
    "sheaf_return_slow",  # 25
)

ALLOC_FASTPATH: Final = 0
ALLOC_SLOWPATH: Final = 1
FREE_RCU_SHEAF: Final = 2
FREE_RCU_SHEAF_FAIL: Final = 3
FREE_FASTPATH: Final = 4
FREE_SLOWPATH: Final = 5
FREE_ADD_PARTIAL: Final = 6
FREE_REMOVE_PARTIAL: Final = 7
ALLOC_SLAB: Final = 8
ALLOC_NODE_MISMATCH: Final = 9
FREE_SLAB: Final = 10
ORDER_FALLBACK: Final = 11
CMPXCHG_DOUBLE_FAIL: Final = 12
SHEAF_FLUSH: Final = 13
SHEAF_REFILL: Final = 14
SHEAF_ALLOC: Final = 15
SHEAF_FREE: Final = 16
BARN_GET: Final = 17
BARN_GET_FAIL: Final = 18
BARN_PUT: Final = 19
BARN_PUT_FAIL: Final = 20
SHEAF_PREFILL_FAST: Final = 21
SHEAF_PREFILL_SLOW: Final = 22
SHEAF_PREFILL_OVERSIZE: Final = 23
SHEAF_RETURN_FAST: Final = 24
SHEAF_RETURN_SLOW: Final = 25
NR_SLUB_STAT_ITEMS_73 = len(STAT_ITEMS_73)

# --- Linux 6.12 (classic) -- enum stat_item, in enum order (26 items). ---------
# Source: mm/slub.c of 6.12.  (Its sysfs attribute list puts cmpxchg_double_fail
# before cmpxchg_double_cpu_fail; the enum order is the one below.)
STAT_ITEMS_612: tuple[str, ...] = (
    "alloc_fastpath",
    "alloc_slowpath",
    "free_fastpath",
    "free_slowpath",
    "free_frozen",
    "free_add_partial",
    "free_remove_partial",
    "alloc_from_partial",
    "alloc_slab",
    "alloc_refill",
    "alloc_node_mismatch",
    "free_slab",
    "cpuslab_flush",
    "deactivate_full",
    "deactivate_empty",
    "deactivate_to_head",
    "deactivate_to_tail",
    "deactivate_remote_frees",
    "deactivate_bypass",
    "order_fallback",
    "cmpxchg_double_cpu_fail",
    "cmpxchg_double_fail",
    "cpu_partial_alloc",
    "cpu_partial_free",
    "cpu_partial_node",
    "cpu_partial_drain",
)

# --- 2023 RFC percpu array on top of 6.12: the classic items plus the RFC's
# (v1/v2 ALLOC_PERCPU_CACHE/FREE_PERCPU_CACHE, v3 ALLOC_PCA/FREE_PCA/PCA_REFILL/
# PCA_FLUSH; sysfs names below).
STAT_ITEMS_RFC_PCA: tuple[str, ...] = (
    *STAT_ITEMS_612,
    "alloc_cpu_cache",
    "free_cpu_cache",
    "cpu_cache_refill",
    "cpu_cache_flush",
)

# --- Linux 6.18/6.19 opt-in sheaves on top of the classic layer: 43 items.
# The kernel's enum places alloc_cpu_sheaf/free_cpu_sheaf before the fastpath
# items; the model keeps the 26 classic items first (names, not positions, are
# what sysfs shows) and appends the 17 sheaf items.
STAT_ITEMS_618: tuple[str, ...] = (
    *STAT_ITEMS_612,
    "alloc_cpu_sheaf",
    "free_cpu_sheaf",
    "free_rcu_sheaf",
    "free_rcu_sheaf_fail",
    "sheaf_flush",
    "sheaf_refill",
    "sheaf_alloc",
    "sheaf_free",
    "barn_get",
    "barn_get_fail",
    "barn_put",
    "barn_put_fail",
    "sheaf_prefill_fast",
    "sheaf_prefill_slow",
    "sheaf_prefill_oversize",
    "sheaf_return_fast",
    "sheaf_return_slow",
)

# The generation -> stat item table.  New generations add their tuple here.
STAT_ITEMS: dict[str, tuple[str, ...]] = {
    "7.3": STAT_ITEMS_73,
    "6.12": STAT_ITEMS_612,
    "rfc-pca": STAT_ITEMS_RFC_PCA,
    "rfc-pca-v3": STAT_ITEMS_RFC_PCA,
    "6.18": STAT_ITEMS_618,
}

UINT_MASK: Final = 0xFFFFFFFF


def new_counters(nr_cpus: int, nr_items: int) -> list[list[int]]:
    """One zeroed ``stat[]`` array per possible CPU."""
    return [[0] * nr_items for _ in range(nr_cpus)]


def format_stat(per_cpu: Sequence[int], online: Iterable[int]) -> str:
    """Render one stat item exactly like ``show_stat()`` (without the newline).

    ``"%lu"`` sum over online CPUs, then ``" C%d=%u"`` for every online CPU with a
    non-zero value.  Per-CPU values are ``unsigned int`` (wrap at 2**32).
    """
    total = 0
    parts: list[str] = []
    for cpu in online:
        v = per_cpu[cpu] & UINT_MASK
        total += v
        if v:
            parts.append(f" C{cpu}={v}")
    return str(total) + "".join(parts)
