"""Geometry formulas against the spec's reference table (§4.6) and layouts (§4.1)."""

from __future__ import annotations

import pytest

from slubsim import Kernel, KernelConfig, Machine, SlabFlag
from slubsim.geometry import (
    calculate_order,
    calculate_sheaf_capacity,
    calculate_sizes,
    compute_geometry,
    cpu_partial_objects,
    cpu_partial_slabs,
    min_partial_for,
    order_objects,
)
from slubsim.kmalloc import kmalloc_index_size, kmalloc_size_roundup

# size: {(nr_cpus): (order, objs)}, min_partial, 6.12 cpu_partial, cpu_partial_slabs@8, sheaf cap
TABLE = {
    8: ([(0, 512)] * 5, 5, 120, 1, 60),
    16: ([(0, 256)] * 5, 5, 120, 1, 60),
    32: ([(0, 128)] * 5, 5, 120, 2, 60),
    64: ([(0, 64)] * 5, 5, 120, 4, 60),
    96: ([(0, 42)] * 5, 5, 120, 6, 60),
    128: ([(0, 32), (0, 32), (0, 32), (0, 32), (1, 64)], 5, 120, 8, 60),
    192: ([(0, 21), (0, 21), (0, 21), (1, 42), (1, 42)], 5, 120, 12, 60),
    256: ([(0, 16), (0, 16), (1, 32), (1, 32), (2, 64)], 5, 52, 4, 28),
    512: ([(0, 8), (1, 16), (2, 32), (2, 32), (3, 64)], 5, 52, 4, 28),
    1024: ([(1, 8), (2, 16), (3, 32), (3, 32), (3, 32)], 5, 24, 2, 12),
    2048: ([(2, 8), (3, 16), (3, 16), (3, 16), (3, 16)], 5, 24, 3, 12),
    4096: ([(3, 8)] * 5, 6, 6, 2, 4),
    8192: ([(3, 4)] * 5, 6, 6, 3, 4),
}
CPUS = (1, 4, 8, 16, 256)


@pytest.mark.parametrize("size", sorted(TABLE))
def test_reference_table(size: int) -> None:
    orders, min_partial, cpu_partial, cps8, cap = TABLE[size]
    for cpus, (order, objs) in zip(CPUS, orders, strict=True):
        o = calculate_order(size, cpus)
        assert (o, order_objects(o, size)) == (order, objs), (size, cpus)
    assert min_partial_for(size) == min_partial
    assert cpu_partial_objects(size, debug=False) == cpu_partial
    o8 = calculate_order(size, 8)
    assert cpu_partial_slabs(cpu_partial, order_objects(o8, size)) == cps8
    assert calculate_sheaf_capacity(size, SlabFlag.NONE) == cap


def test_cpu_partial_slabs_depends_on_cpus() -> None:
    # spec §4.6: kmalloc-512 with 2 CPUs: ceil(104/16) = 7
    assert cpu_partial_slabs(52, order_objects(calculate_order(512, 2), 512)) == 7


def test_sheaf_capacity_rules() -> None:
    assert calculate_sheaf_capacity(256, SlabFlag.NONE, requested=32) == 32  # maple_node
    assert calculate_sheaf_capacity(192, SlabFlag.NONE, requested=32) == 60  # vm_area_struct
    for f in (
        "SLAB_POISON",
        "SLAB_RED_ZONE",
        "SLAB_STORE_USER",
        "SLAB_TRACE",
        "SLAB_CONSISTENCY_CHECKS",
        "SLAB_NO_SHEAVES",
        "SLAB_NOLEAKTRACE",
    ):
        assert calculate_sheaf_capacity(64, SlabFlag[f]) == 0, f
    assert calculate_sheaf_capacity(64, SlabFlag.SLAB_FAILSLAB) == 60  # 'A' keeps sheaves


def test_kmalloc_classes() -> None:
    expect = {
        1: 8,
        8: 8,
        9: 16,
        17: 32,
        33: 64,
        65: 96,
        96: 96,
        97: 128,
        129: 192,
        192: 192,
        193: 256,
        257: 512,
        4097: 8192,
        8192: 8192,
    }
    for size, cls in expect.items():
        assert kmalloc_index_size(size) == cls
    assert kmalloc_size_roundup(8193) == 16384


def test_layouts() -> None:
    # ctor: free pointer after the object
    lay = calculate_sizes(88, 8, SlabFlag.SLAB_TYPESAFE_BY_RCU, ctor=True)
    assert (lay.size, lay.offset) == (96, 88)
    # TYPESAFE_BY_RCU with a freeptr_offset keeps the size
    lay = calculate_sizes(192, 64, SlabFlag.SLAB_TYPESAFE_BY_RCU, freeptr_offset=8)
    assert (lay.size, lay.offset) == (192, 8)
    # plain object: free pointer in the middle
    lay = calculate_sizes(100, 8, SlabFlag.NONE)
    assert (lay.size, lay.offset) == (104, 48)
    # red zone + poison + store_user: left pad, padding word, two tracks
    lay = calculate_sizes(
        64, 8, SlabFlag.SLAB_RED_ZONE | SlabFlag.SLAB_POISON | SlabFlag.SLAB_STORE_USER
    )
    # 64 -> +8 right redzone = 72 (inuse); fp after: 80; tracks 64: 144; word 152; pad 8: 160
    assert (lay.inuse, lay.offset, lay.red_left_pad, lay.size) == (72, 72, 8, 160)


def test_hwcache_align() -> None:
    g = compute_geometry(20, 0, SlabFlag.SLAB_HWCACHE_ALIGN, 4)
    assert g.align == 32 and g.size == 32
    g = compute_geometry(424, 0, SlabFlag.SLAB_HWCACHE_ALIGN, 4)
    assert (g.align, g.size, g.order, g.objects) == (64, 448, 1, 18)


def test_debug_cache_has_no_sheaves_and_is_unmerged() -> None:
    k = Kernel(Machine(cpus=2), config=KernelConfig(slab_debug=frozenset({"SLAB_POISON"})))
    s = k.kmem_cache_create("dbg", size=64)
    assert s.sheaf_capacity == 0 and s.sysfs_dir == "dbg" and s.sysfs()["poison"] == 1
    assert s.size == 72  # free pointer moved after the poisoned object
