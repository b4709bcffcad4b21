"""Per-cache geometry exactly as the kernel computes it (spec §4).

* object layout: ``calculate_alignment()`` and ``calculate_sizes()``
* slab order: ``calculate_order()`` / ``calc_slab_order()`` (same in 6.12 and 7.3)
* ``min_partial`` (inline clamp in ``do_kmem_cache_create()``)
* 6.12 ``cpu_partial`` / ``cpu_partial_slabs`` (``set_cpu_partial()``)
* 7.3 ``sheaf_capacity`` (``calculate_sheaf_capacity()``)
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import (
    ARCH_SLAB_MINALIGN,
    CACHE_LINE_SIZE,
    MAX_OBJS_PER_PAGE,
    MAX_PAGE_ORDER,
    MAX_PARTIAL,
    MIN_PARTIAL,
    PAGE_SIZE,
    POINTER_SIZE,
    SHEAF_HEADER_SIZE,
    SLUB_MAX_ORDER,
    SLUB_MIN_ORDER,
    TRACK_SIZE,
)
from .errors import SlubsimUsageError
from .flags import SLAB_DEBUG_FLAGS, SlabFlag
from .kmalloc import get_order, kmalloc_size_roundup

F = SlabFlag


def align_up(x: int, a: int) -> int:
    return (x + a - 1) & ~(a - 1)


def fls(x: int) -> int:
    """Find last set bit, 1-based (``fls(8) == 4``, ``fls(0) == 0``)."""
    return x.bit_length()


def ilog2(x: int) -> int:
    return x.bit_length() - 1


def calculate_alignment(flags: SlabFlag, align: int, size: int) -> int:
    """Models ``calculate_alignment()``: with SLAB_HWCACHE_ALIGN use the cache line
    size halved while the object fits in half of it; at least
    ``arch_slab_minalign()``; rounded to a pointer size."""
    if flags & F.SLAB_HWCACHE_ALIGN:
        ralign = CACHE_LINE_SIZE
        while size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    align = max(align, ARCH_SLAB_MINALIGN)
    return align_up(align, POINTER_SIZE)


def kmalloc_align(size: int) -> int:
    """kmalloc caches guarantee the largest power of two dividing the size."""
    return size & -size


@dataclass(frozen=True)
class Layout:
    """Result of ``calculate_sizes()``."""

    object_size: int
    size: int  # s->size, sysfs slab_size
    inuse: int
    offset: int  # free pointer offset
    align: int
    red_left_pad: int
    flags: SlabFlag  # after adding __OBJECT_POISON etc. (model keeps the input flags)


def calculate_sizes(
    object_size: int,
    align: int,
    flags: SlabFlag,
    ctor: bool = False,
    freeptr_offset: int | None = None,
    version: str = "7.3",
) -> Layout:
    """Models ``calculate_sizes()`` (spec §4.1), 64-bit, no KASAN.

    ``freeptr_offset`` is ``kmem_cache_args.freeptr_offset`` with
    ``use_freeptr_offset``; 7.3 honours it for TYPESAFE_BY_RCU and ctor caches,
    6.12 only for TYPESAFE_BY_RCU.
    """
    if object_size <= 0:
        raise SlubsimUsageError("object size must be positive")
    size = align_up(object_size, POINTER_SIZE)
    rcu = bool(flags & F.SLAB_TYPESAFE_BY_RCU)
    poison = bool(flags & F.SLAB_POISON)
    red_zone = bool(flags & F.SLAB_RED_ZONE)
    store_user = bool(flags & F.SLAB_STORE_USER)
    use_fpo = freeptr_offset is not None
    if red_zone and size == object_size:
        size += POINTER_SIZE  # non-empty right redzone
    inuse = size
    ctor_after = ctor and not use_fpo if version != "6.12" else ctor
    fpo_ok = (rcu or ctor) if version != "6.12" else rcu
    orig_size_debug = store_user and bool(flags & F.SLAB_KMALLOC)
    if (
        (rcu and not use_fpo)
        or poison
        or ctor_after
        or (red_zone and (object_size < POINTER_SIZE or orig_size_debug))
    ):
        offset = size
        size += POINTER_SIZE
    elif fpo_ok and use_fpo:
        assert freeptr_offset is not None
        offset = freeptr_offset
    else:
        offset = (object_size // 2) & ~(POINTER_SIZE - 1)
    if store_user:
        size += 2 * TRACK_SIZE
        if flags & F.SLAB_KMALLOC:
            size += 8  # orig_size
    red_left_pad = 0
    if red_zone:
        size += POINTER_SIZE
        red_left_pad = align_up(POINTER_SIZE, align)
        size += red_left_pad
    size = align_up(size, align)
    return Layout(object_size, size, inuse, offset, align, red_left_pad, flags)


def order_objects(order: int, size: int) -> int:
    return (PAGE_SIZE << order) // size


def calc_slab_order(size: int, min_order: int, max_order: int, fract_leftover: int) -> int:
    """Models ``calc_slab_order()``: first order whose leftover is at most
    ``slab_size / fract_leftover``; ``max_order + 1`` if none."""
    order = min_order
    while order <= max_order:
        slab_size = PAGE_SIZE << order
        if slab_size % size <= slab_size // fract_leftover:
            return order
        order += 1
    return order


def calculate_order(
    size: int,
    nr_cpus: int,
    slub_min_objects: int = 0,
    slub_min_order: int = SLUB_MIN_ORDER,
    slub_max_order: int = SLUB_MAX_ORDER,
) -> int:
    """Models ``calculate_order()``; ``nr_cpus`` is ``num_present_cpus()`` (or
    ``nr_cpu_ids`` when that is <= 1)."""
    min_objects = slub_min_objects or 4 * (fls(nr_cpus) + 1)
    max_objects = max(order_objects(slub_max_order, size), 1)
    min_objects = min(min_objects, max_objects)
    min_order = max(slub_min_order, get_order(min_objects * size))
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE:
        return get_order(size * MAX_OBJS_PER_PAGE) - 1
    for fraction in (16, 8, 4, 2):
        order = calc_slab_order(size, min_order, slub_max_order, fraction)
        if order <= slub_max_order:
            return order
    order = get_order(size)
    if order <= MAX_PAGE_ORDER:
        return order
    raise SlubsimUsageError(f"object size {size} too large for any slab order (-ENOSYS)")


def min_partial_for(size: int) -> int:
    """``clamp(ilog2(size) / 2, MIN_PARTIAL, MAX_PARTIAL)``."""
    return max(MIN_PARTIAL, min(MAX_PARTIAL, ilog2(size) // 2))


def cpu_partial_objects(size: int, debug: bool) -> int:
    """6.12 ``set_cpu_partial()``: the object budget of the cpu partial list."""
    if debug:
        return 0
    if size >= PAGE_SIZE:
        return 6
    if size >= 1024:
        return 24
    if size >= 256:
        return 52
    return 120


def cpu_partial_slabs(nr_objects: int, objs_per_slab: int) -> int:
    """6.12 ``slub_set_cpu_partial()``: ``DIV_ROUND_UP(nr_objects * 2, objs_per_slab)``."""
    return -(-(nr_objects * 2) // objs_per_slab)


def calculate_sheaf_capacity(size: int, flags: SlabFlag, requested: int = 0) -> int:
    """Models 7.3 ``calculate_sheaf_capacity()`` (spec §4.5).

    Zero for debug caches, SLAB_NO_SHEAVES and SLAB_NOLEAKTRACE.  The base
    capacity (half the 6.12 cpu_partial budget) is rounded up so that the sheaf
    struct fills its kmalloc bucket, then ``max()`` with the requested one.
    """
    if flags & SLAB_DEBUG_FLAGS or flags & (F.SLAB_NO_SHEAVES | F.SLAB_NOLEAKTRACE):
        return 0
    if size >= PAGE_SIZE:
        cap = 4
    elif size >= 1024:
        cap = 12
    elif size >= 256:
        cap = 26
    else:
        cap = 60
    nbytes = kmalloc_size_roundup(SHEAF_HEADER_SIZE + cap * POINTER_SIZE)
    cap = (nbytes - SHEAF_HEADER_SIZE) // POINTER_SIZE
    return max(cap, requested)


def sheaf_struct_size(capacity: int) -> int:
    """Bytes kmalloc'ed for a sheaf of ``capacity`` slots (``struct_size()``)."""
    return SHEAF_HEADER_SIZE + capacity * POINTER_SIZE


@dataclass(frozen=True)
class Geometry:
    """Everything sysfs reports about a cache's shape."""

    object_size: int
    size: int
    align: int
    offset: int
    inuse: int
    red_left_pad: int
    order: int
    objects: int  # oo_objects(s->oo), sysfs objs_per_slab
    min_order: int  # oo_order(s->min)
    min_objects: int  # oo_objects(s->min)
    min_partial: int
    sheaf_capacity: int
    cpu_partial: int  # 6.12 only (0 in 7.3)
    cpu_partial_slabs: int  # 6.12 only


def compute_geometry(
    object_size: int,
    align: int,
    flags: SlabFlag,
    nr_cpus: int,
    ctor: bool = False,
    freeptr_offset: int | None = None,
    sheaf_capacity: int = 0,
    version: str = "7.3",
    has_sheaves: bool = True,
) -> Geometry:
    """Derive the whole geometry of a cache from its creation arguments."""
    align = calculate_alignment(flags, align, object_size)
    layout = calculate_sizes(object_size, align, flags, ctor, freeptr_offset, version)
    order = calculate_order(layout.size, nr_cpus)
    debug = bool(flags & SLAB_DEBUG_FLAGS)
    min_order = get_order(layout.size)
    cp = cpu_partial_objects(layout.size, debug) if version == "6.12" else 0
    objs = order_objects(order, layout.size)
    return Geometry(
        object_size=object_size,
        size=layout.size,
        align=align,
        offset=layout.offset,
        inuse=layout.inuse,
        red_left_pad=layout.red_left_pad,
        order=order,
        objects=objs,
        min_order=min_order,
        min_objects=order_objects(min_order, layout.size),
        min_partial=min_partial_for(layout.size),
        sheaf_capacity=(
            calculate_sheaf_capacity(layout.size, flags, sheaf_capacity) if has_sheaves else 0
        ),
        cpu_partial=cp,
        cpu_partial_slabs=cpu_partial_slabs(cp, objs) if cp else 0,
    )
