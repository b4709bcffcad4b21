"""kmalloc size classes and types (spec §12.1, §12.2; ``mm/slab_common.c``).

With 4 KiB pages and ``KMALLOC_MIN_SIZE`` 8 there are 13 classes per type:
8, 16, 32, 64, 96, 128, 192, 256, 512, 1k, 2k, 4k, 8k.  Larger requests go to
the page allocator ("large kmalloc").
"""

from __future__ import annotations

from .constants import KMALLOC_MAX_CACHE_SIZE, PAGE_SHIFT, PAGE_SIZE
from .flags import GFP_ACCOUNT, GFP_DMA, GFP_RECLAIMABLE, SlabFlag

#: The size classes that exist, ascending.
KMALLOC_SIZES: tuple[int, ...] = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)


def size_suffix(size: int) -> str:
    """``kmalloc_info[]`` name suffix: 1k, 2k, … for multiples of 1024."""
    return f"{size // 1024}k" if size >= 1024 else str(size)


def kmalloc_index_size(size: int) -> int:
    """Size of the kmalloc class serving ``size`` bytes (``kmalloc_slab``).

    1..192 use ``kmalloc_size_index[(size-1)//8]`` (so 65-96 -> 96 and
    129-192 -> 192); above that the next power of two.  ``size`` must be in
    1..KMALLOC_MAX_CACHE_SIZE.
    """
    if size <= 0 or size > KMALLOC_MAX_CACHE_SIZE:
        raise ValueError(f"no kmalloc class for {size} bytes")
    if size <= 8:
        return 8
    if size <= 16:
        return 16
    if size <= 32:
        return 32
    if size <= 64:
        return 64
    if size <= 96:
        return 96
    if size <= 128:
        return 128
    if size <= 192:
        return 192
    return 1 << (size - 1).bit_length()


def kmalloc_size_roundup(size: int) -> int:
    """``kmalloc_size_roundup()``: the usable size a kmalloc of ``size`` returns."""
    if size <= KMALLOC_MAX_CACHE_SIZE:
        return kmalloc_index_size(max(size, 1))
    return PAGE_SIZE << get_order(size)


def get_order(size: int) -> int:
    """Smallest order with ``PAGE_SIZE << order >= size``."""
    size = (size - 1) >> PAGE_SHIFT
    order = 0
    while size:
        order += 1
        size >>= 1
    return order


# enum kmalloc_cache_type (only the types the model creates)
KMALLOC_NORMAL = "normal"
KMALLOC_RECLAIM = "rcl"
KMALLOC_DMA = "dma"
KMALLOC_CGROUP = "cg"

KMALLOC_TYPE_PREFIX = {
    KMALLOC_NORMAL: "kmalloc-",
    KMALLOC_RECLAIM: "kmalloc-rcl-",
    KMALLOC_DMA: "dma-kmalloc-",
    KMALLOC_CGROUP: "kmalloc-cg-",
}

KMALLOC_TYPE_FLAGS = {
    KMALLOC_NORMAL: SlabFlag.NONE,
    KMALLOC_RECLAIM: SlabFlag.SLAB_RECLAIM_ACCOUNT,
    KMALLOC_DMA: SlabFlag.SLAB_CACHE_DMA,
    KMALLOC_CGROUP: SlabFlag.SLAB_ACCOUNT,
}


def kmalloc_type(gfp: int, zone_dma: bool, memcg: bool) -> str:
    """``kmalloc_type()``: DMA first, then RECLAIMABLE (or ACCOUNT without memcg,
    where kmalloc-cg-* alias the normal caches), then CGROUP."""
    if not gfp & (GFP_DMA | GFP_RECLAIMABLE | GFP_ACCOUNT):
        return KMALLOC_NORMAL
    if zone_dma and gfp & GFP_DMA:
        return KMALLOC_DMA
    if gfp & GFP_RECLAIMABLE:
        return KMALLOC_RECLAIM
    if memcg and gfp & GFP_ACCOUNT:
        return KMALLOC_CGROUP
    return KMALLOC_NORMAL


def kmalloc_cache_name(ktype: str, size: int) -> str:
    return KMALLOC_TYPE_PREFIX[ktype] + size_suffix(size)


def parse_kmalloc_name(name: str) -> tuple[str, int] | None:
    """Inverse of :func:`kmalloc_cache_name` (``kmalloc-rcl-1k`` -> ("rcl", 1024))."""
    for ktype in (KMALLOC_RECLAIM, KMALLOC_DMA, KMALLOC_CGROUP, KMALLOC_NORMAL):
        prefix = KMALLOC_TYPE_PREFIX[ktype]
        if name.startswith(prefix):
            tail = name[len(prefix) :]
            try:
                size = int(tail[:-1]) * 1024 if tail.endswith("k") else int(tail)
            except ValueError:
                return None
            return (ktype, size) if size in KMALLOC_SIZES else None
    return None
