"""The model's object shadow (slubsim.shadow): layout, growth, and the checks
that rest on it."""

from __future__ import annotations

import pytest

from slubsim import DoubleFreeError, Kernel, Machine, NeverAllocatedError
from slubsim.constants import PAGE_OFFSET, PAGE_SHIFT
from slubsim.page_alloc import FIRST_PFN, NODE_PFN_SPAN
from slubsim.shadow import FREED, LIVE, MIN_STRIDE, NEVER, ObjectShadow


def page(node: int, i: int) -> int:
    return PAGE_OFFSET + ((FIRST_PFN + node * NODE_PFN_SPAN + i) << PAGE_SHIFT)


def test_granules_are_per_8_bytes_and_per_node() -> None:
    sh = ObjectShadow(2)
    assert sh.granule(page(0, 0)) == -1  # nothing mapped yet
    sh.map_slab(page(0, 0), 1, 7)
    sh.map_slab(page(1, 4), 0, 9)
    assert sh.stride == MIN_STRIDE
    assert sh.granule(page(0, 0)) == 0
    assert sh.granule(page(0, 0) + 8) == 1
    assert sh.granule(page(0, 1)) == 512
    assert sh.granule(page(1, 4)) == MIN_STRIDE + 4 * 512
    assert sh.owner(page(0, 1) + 64) == 7 and sh.owner(page(1, 4)) == 9
    assert sh.owner(page(1, 5)) == 0
    for bad in (PAGE_OFFSET - 8, PAGE_OFFSET, page(2, 0), page(0, MIN_STRIDE >> 9), page(0, 0) + 4):
        assert sh.granule(bad) == -1
        assert sh.state(bad) == NEVER
    sh.set_state(page(0, 0) + 24, LIVE)
    sh.set_state(page(0, 1) + 8, FREED)
    assert sh.state(page(0, 0) + 24) == LIVE and sh.state(page(0, 1) + 8) == FREED
    assert sh.live_in(page(0, 0), 1024, 24) == [page(0, 0) + 24]
    assert sh.release(page(0, 0) + 24) and sh.state(page(0, 0) + 24) == FREED
    assert not sh.release(page(0, 0) + 24)  # FREED already
    assert not sh.release(page(0, 0) + 32)  # NEVER: stays so
    assert sh.state(page(0, 0) + 32) == NEVER
    sh.set_state(page(1, 4) + 8, LIVE)  # another node: the general path
    assert sh.state(page(1, 4) + 8) == LIVE
    assert sh.release(page(1, 4) + 8) and sh.state(page(1, 4) + 8) == FREED
    assert not sh.release(page(2, 0)) and not sh.release(page(0, 0) + 28)


def test_growth_keeps_every_node_and_bumps_the_generation() -> None:
    sh = ObjectShadow(3)
    sh.map_slab(page(0, 0), 0, 1)
    sh.map_slab(page(2, 3), 0, 2)
    sh.set_state(page(0, 0) + 16, LIVE)
    sh.set_state(page(2, 3) + 4088, FREED)
    gen, old = sh.generation, sh.states
    far = MIN_STRIDE >> 9  # the first page past the shadow
    sh.map_slab(page(1, far), 2, 3)
    assert sh.generation == gen + 1 and sh.states is not old
    assert sh.stride == 2 * MIN_STRIDE
    assert sh.state(page(0, 0) + 16) == LIVE
    assert sh.state(page(2, 3) + 4088) == FREED
    assert sh.owner(page(2, 3)) == 2 and sh.owner(page(1, far + 3)) == 3
    assert sh.state(page(1, far)) == NEVER
    with pytest.raises(ValueError):
        sh.map_slab(page(3, 0), 0, 4)  # no node 3


def test_a_new_slab_in_old_pages_starts_never_allocated() -> None:
    """Pages go back to the page allocator and come back for another cache:
    the old slab's LIVE/FREED bytes and owner do not survive."""
    sh = ObjectShadow(1)
    sh.map_slab(page(0, 0), 0, 1)
    sh.set_state(page(0, 0), FREED)
    sh.set_state(page(0, 0) + 4088, LIVE)
    sh.unmap_slab(page(0, 0), 0)
    assert sh.state(page(0, 0)) == NEVER and sh.owner(page(0, 0)) == 0
    assert not any(sh.states)  # pages in no slab: every granule NEVER
    sh.map_slab(page(0, 0), 0, 5)
    assert sh.state(page(0, 0) + 8) == NEVER and sh.owner(page(0, 0)) == 5
    sh.map_slab(page(0, 8), 3, 6)  # an order-3 block: zeros of its own size
    sh.set_state(page(0, 15) + 8, LIVE)
    sh.unmap_slab(page(0, 8), 3)
    assert not any(sh.states[512 * 8 : 512 * 16])
    assert sh.owner(page(0, 15)) == 0 and sh.owner(page(0, 0)) == 5


def test_model_checks_use_the_shadow() -> None:
    k = Kernel(Machine(cpus=2), version="7.3")
    s = k.kmem_cache_create("t", size=64, flags={"SLAB_NO_MERGE"})
    t = k.kmem_cache_create("u", size=64, flags={"SLAB_NO_MERGE"})
    assert s.shadow is k.shadow and s.shadow_id != t.shadow_id
    objs = [s.alloc(cpu=0) for _ in range(200)]
    assert all(k.shadow.state(p) == LIVE for p in objs)
    assert {k.shadow.owner(p) for p in objs} == {s.shadow_id}
    assert s.live_objects() == 200 == s.nlive
    assert s.is_live(objs[0]) and not t.is_live(objs[0]) and not s.is_live(objs[0] + 8)
    for p in objs:
        s.free(p, cpu=1)
    assert all(k.shadow.state(p) == FREED for p in objs)
    with pytest.raises(DoubleFreeError):
        s.free(objs[0], cpu=0)
    s.validate()
    # every slab back to the page allocator: the pages forget their objects
    s.shrink()
    t_objs = [t.alloc(cpu=0) for _ in range(600)]
    reused = set(t_objs) & set(objs)
    assert reused, "the second cache should reuse the freed pages"
    x = next(iter(reused))
    t.free(x, cpu=0)
    assert k.shadow.state(x) == FREED and k.shadow.owner(x) == t.shadow_id
    never = [p for p in objs if k.shadow.owner(p) == t.shadow_id and k.shadow.state(p) == NEVER]
    if never:
        with pytest.raises(NeverAllocatedError):
            t.free(never[0], cpu=0)
    t.validate()


def test_shadow_size_follows_the_high_water_mark_not_the_history() -> None:
    """Allocating and freeing the same amount again and again reuses pages:
    the shadow does not grow with the number of objects ever allocated."""
    k = Kernel(Machine(cpus=1), version="7.3")
    s = k.kmem_cache_create("t", size=256, flags={"SLAB_NO_MERGE"})
    for _ in range(30):
        objs = [s.alloc(cpu=0) for _ in range(3000)]
        for p in objs:
            s.free(p, cpu=0)
        s.shrink()
    assert k.shadow.stride == MIN_STRIDE
    assert len(k.shadow.states) == MIN_STRIDE
