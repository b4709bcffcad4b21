"""Cache creation flags (``SLAB_*``, ``include/linux/slab.h``) and the gfp bits the
model looks at.

Bit values are the model's own; only the names are the kernel's.  Users pass
flags either as :class:`SlabFlag` members or as kernel names
(``{"SLAB_HWCACHE_ALIGN", "SLAB_ACCOUNT"}``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from .errors import SlubsimUsageError


class SlabFlag(enum.IntFlag):
    SLAB_CONSISTENCY_CHECKS = 1 << 0  # 'F'
    SLAB_RED_ZONE = 1 << 1  # 'Z'
    SLAB_POISON = 1 << 2  # 'P'
    SLAB_KMALLOC = 1 << 3
    SLAB_HWCACHE_ALIGN = 1 << 4
    SLAB_CACHE_DMA = 1 << 5
    SLAB_CACHE_DMA32 = 1 << 6
    SLAB_STORE_USER = 1 << 7  # 'U'
    SLAB_PANIC = 1 << 8
    SLAB_TYPESAFE_BY_RCU = 1 << 9
    SLAB_TRACE = 1 << 10  # 'T'
    SLAB_NOLEAKTRACE = 1 << 11
    SLAB_NO_MERGE = 1 << 12
    SLAB_FAILSLAB = 1 << 13  # 'A'
    SLAB_ACCOUNT = 1 << 14
    SLAB_NO_USER_FLAGS = 1 << 15
    SLAB_RECLAIM_ACCOUNT = 1 << 16
    SLAB_NO_OBJ_EXT = 1 << 17
    SLAB_SKIP_KFENCE = 1 << 18
    SLAB_NO_SHEAVES = 1 << 19  # 7.x: kmem_cache, kmem_cache_node
    SLAB_MAY_ACCOUNT = 1 << 20  # 7.x, set while memcg kmem is enabled
    SLAB_OBJ_EXT_IN_OBJ = 1 << 21  # 7.x
    NONE = 0


F = SlabFlag

#: Flags that turn on SLUB debugging for a cache (7.3 ``SLAB_DEBUG_FLAGS``).
SLAB_DEBUG_FLAGS = (
    F.SLAB_RED_ZONE | F.SLAB_POISON | F.SLAB_STORE_USER | F.SLAB_TRACE | F.SLAB_CONSISTENCY_CHECKS
)

#: ``SLAB_NEVER_MERGE`` of 7.3 (``mm/slab_common.c``).
SLAB_NEVER_MERGE_73 = (
    SLAB_DEBUG_FLAGS
    | F.SLAB_TYPESAFE_BY_RCU
    | F.SLAB_NOLEAKTRACE
    | F.SLAB_FAILSLAB
    | F.SLAB_NO_MERGE
    | F.SLAB_OBJ_EXT_IN_OBJ
)

#: ``SLAB_NEVER_MERGE`` of 6.12 (no CONSISTENCY_CHECKS, no OBJ_EXT_IN_OBJ).
SLAB_NEVER_MERGE_612 = (
    F.SLAB_RED_ZONE
    | F.SLAB_POISON
    | F.SLAB_STORE_USER
    | F.SLAB_TRACE
    | F.SLAB_TYPESAFE_BY_RCU
    | F.SLAB_NOLEAKTRACE
    | F.SLAB_FAILSLAB
    | F.SLAB_NO_MERGE
)

#: ``SLAB_MERGE_SAME``: flags that must agree between merged caches (7.3).
SLAB_MERGE_SAME_73 = (
    F.SLAB_RECLAIM_ACCOUNT
    | F.SLAB_CACHE_DMA
    | F.SLAB_CACHE_DMA32
    | F.SLAB_ACCOUNT
    | F.SLAB_MAY_ACCOUNT
)
SLAB_MERGE_SAME_612 = (
    F.SLAB_RECLAIM_ACCOUNT | F.SLAB_CACHE_DMA | F.SLAB_CACHE_DMA32 | F.SLAB_ACCOUNT
)


def parse_flags(flags: SlabFlag | int | Iterable[str] | str | None) -> SlabFlag:
    """Accept a :class:`SlabFlag`, an int, one kernel name or an iterable of names."""
    if flags is None:
        return SlabFlag.NONE
    if isinstance(flags, SlabFlag):
        return flags
    if isinstance(flags, int):
        return SlabFlag(flags)
    names = [flags] if isinstance(flags, str) else list(flags)
    out = SlabFlag.NONE
    for name in names:
        key = name.strip()
        if not key:
            continue
        if not key.startswith("SLAB_"):
            key = "SLAB_" + key
        try:
            out |= SlabFlag[key]
        except KeyError:
            valid = ", ".join(m.name or "" for m in SlabFlag if m.name and m.name != "NONE")
            raise SlubsimUsageError(f"unknown slab flag {name!r}; valid flags: {valid}") from None
    return out


# --- gfp --------------------------------------------------------------------
# The model only needs the bits that select a kmalloc type or change a path.
GFP_DMA = 1 << 0
GFP_RECLAIMABLE = 1 << 1
GFP_ACCOUNT = 1 << 2
GFP_THISNODE = 1 << 3
GFP_DMA32 = 1 << 4

_GFP_NAMES = {
    "__GFP_DMA": GFP_DMA,
    "GFP_DMA": GFP_DMA,
    "__GFP_DMA32": GFP_DMA32,
    "GFP_DMA32": GFP_DMA32,
    "__GFP_RECLAIMABLE": GFP_RECLAIMABLE,
    "__GFP_ACCOUNT": GFP_ACCOUNT,
    "GFP_KERNEL_ACCOUNT": GFP_ACCOUNT,
    "__GFP_THISNODE": GFP_THISNODE,
}


def parse_gfp(gfp: str | int | None) -> int:
    """Parse a ``show_gfp_flags()`` string (``GFP_KERNEL|__GFP_RECLAIMABLE``)
    into the model's gfp bits; unknown names carry no bits for the model."""
    if gfp is None:
        return 0
    if isinstance(gfp, int):
        return gfp
    bits = 0
    for part in gfp.split("|"):
        bits |= _GFP_NAMES.get(part.strip(), 0)
    return bits
