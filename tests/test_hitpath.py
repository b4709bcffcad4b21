"""The replay hit path (slubsim.hitpath): same results as the full model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import strip_timing
from slubsim import _native, hitpath
from slubsim.cli import sample_trace
from slubsim.generate import generate
from slubsim.replay import Replayer, ReplayOptions
from slubsim.trace import events
from slubsim.trace.ingest import ingest
from slubsim.trace.store import EventStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
DATA = Path(__file__).resolve().parent / "data"


def _replay(store: EventStore, hit: bool, **kw: Any) -> tuple[dict[str, Any], int]:
    r = Replayer(store, ReplayOptions(hit_path=hit, validate=True, **kw))
    res = r.run()  # validate=True: every object in exactly one place afterwards
    return strip_timing(res), r.hit_rows


@pytest.fixture(scope="module")
def sample_store() -> EventStore:
    return ingest(sample_trace())


def _generated(tmp_path: Path, kind: str) -> EventStore:
    p = tmp_path / f"{kind}.txt"
    generate(kind, p, seed=7)
    return ingest(p)


def test_op_values_agree_with_the_store_vocabulary() -> None:
    values = hitpath.op_values()
    assert values == {name: getattr(events, name) for name in values}
    assert len(values) == 9


def test_layer_kinds_agree_with_the_layers() -> None:
    from slubsim import pcpu

    kinds = hitpath.kind_values()
    assert kinds == {name: getattr(pcpu, name) for name in kinds}


def test_pop_last_keeps_references_and_the_array() -> None:
    """The hit path's list pop hands the list's reference to the caller (no
    leak, no early free) and, compiled, never shrinks the array."""
    objs = [object() for _ in range(64)]
    before = [sys.getrefcount(o) for o in objs]
    lst = list(objs)
    size = sys.getsizeof(lst)
    popped = [hitpath.pop_last(lst) for _ in range(60)]
    assert popped == objs[:3:-1] and lst == objs[:4]
    if hitpath.COMPILED:
        assert sys.getsizeof(lst) == size  # list.pop() would have shrunk it
    lst.append(popped[0])  # reuses a slot past the end: no stale decref
    assert lst == [*objs[:4], objs[63]]
    del popped, lst
    assert [sys.getrefcount(o) for o in objs] == before


def test_set_item_swaps_references() -> None:
    """The hit path's list store takes a reference to the new item and
    drops the list's reference to the old one, nothing else."""
    old, new = object(), object()
    r_old, r_new = sys.getrefcount(old), sys.getrefcount(new)
    lst = [1, old, 3]
    assert sys.getrefcount(old) == r_old + 1
    hitpath.set_item(lst, 1, new)
    assert lst == [1, new, 3]
    assert sys.getrefcount(old) == r_old and sys.getrefcount(new) == r_new + 1
    hitpath.set_item(lst, 1, 0)
    assert lst == [1, 0, 3] and sys.getrefcount(new) == r_new
    with pytest.raises(IndexError):
        hitpath.set_item(lst, 3, new)
    assert sys.getrefcount(new) == r_new


def test_address_layout_agrees_with_the_page_allocator() -> None:
    """The hit path takes a live object's node from its address alone: the
    layout it compiled in is the page allocator's, and the node it computes
    is the slab's, on every node and at both ends of a node's range."""
    from slubsim import Kernel, Machine
    from slubsim.constants import PAGE_OFFSET, PAGE_SHIFT
    from slubsim.page_alloc import FIRST_PFN, NODE_PFN_SPAN, PageAllocator
    from slubsim.shadow import LIVE

    assert hitpath.layout_values() == {
        "PAGE_SHIFT": PAGE_SHIFT,
        "PAGE_OFFSET": PAGE_OFFSET,
        "FIRST_PFN": FIRST_PFN,
        "NODE_PFN_SPAN": NODE_PFN_SPAN,
    }
    k = Kernel(Machine(cpus=4, nodes=4), version="7.3")
    s = k.kmem_cache_create("t", size=512, flags={"SLAB_NO_MERGE"})
    objs = [s.alloc(cpu=0, node=n) for n in range(4) for _ in range(40)]
    hp = hitpath.HitPath([], [0], 1, False)
    for p in objs:
        slab = s.slab_of(p)
        assert hp.slab_nid(p) == slab.nid == PageAllocator.addr_to_nid(p)
    assert {s.slab_of(p).nid for p in objs} == {0, 1, 2, 3}
    for n in range(4):
        first = PAGE_OFFSET + ((FIRST_PFN + n * NODE_PFN_SPAN) << PAGE_SHIFT)
        assert hp.slab_nid(first) == n
        assert hp.slab_nid(first + (NODE_PFN_SPAN << PAGE_SHIFT) - 8) == n
    # the shadow index, computed in C from the address, is the model's
    sh = k.shadow
    for p in objs:
        g = hp.granule(p, sh)
        assert g == sh.granule(p) >= 0
        assert sh.states[g] == LIVE and sh.owners[g >> 9] == s.shadow_id
    assert hp.granule(PAGE_OFFSET - 8, sh) == sh.granule(PAGE_OFFSET - 8) == -1
    far = PAGE_OFFSET + ((FIRST_PFN + 4 * NODE_PFN_SPAN) << PAGE_SHIFT)  # no node 4
    assert hp.granule(far, sh) == sh.granule(far) == -1


def test_sample_identical_and_mostly_on_the_hit_path(sample_store: EventStore) -> None:
    full, rows_off = _replay(sample_store, False)
    hit, rows_on = _replay(sample_store, True)
    assert rows_off == 0
    # a real 7.3 trace: most rows are sheaf hits
    assert rows_on > 0.8 * sample_store.n
    assert hit == full
    assert full["caches"]


KINDS = ("mixed-lifetime", "lifo", "prodcons", "bursts", "kfree-rcu-storm", "prefill-migrate")


def test_sheaf_exchanges_replayed_identically(sample_store: EventStore, tmp_path: Path) -> None:
    """Every sheaf exchange the hit path takes over from the full model
    (spare swaps, barn get/put, prefill/return fast) happens on these
    traces, with the full model's results."""
    seen = dict.fromkeys(hitpath.EXCHANGES, 0)
    for name in NUMA_EXCHANGES + CLASSIC_EXCHANGES:  # (their own tests below)
        del seen[name]
    stores = [sample_store] + [_generated(tmp_path, k) for k in ("bursts", "kfree-rcu-storm")]
    for store in stores:
        full, _ = _replay(store, False)
        r = Replayer(store, ReplayOptions(hit_path=True, validate=True))
        assert strip_timing(r.run()) == full
        for name, n in r.hit_exchanges.items():
            if name in seen:
                seen[name] += n
    assert all(seen.values()), seen
    # the real trace's prefilled-sheaf cycle stays on the hit path: every
    # return, and all prefills but those the spare cannot serve
    r = Replayer(sample_store, ReplayOptions(hit_path=True, validate=False))
    r.run()
    assert "return_sheaf" not in r.hit_stops
    assert r.hit_stops.get("prefill_sheaf", 0) < 0.2 * r.hit_exchanges["prefill_fast"]


NUMA_EXCHANGES = ("remote_free", "rcu_remote")


@pytest.mark.parametrize("gp_interval", [0.03, 0.0001])
@pytest.mark.parametrize("by_trace", [False, True])
def test_numa_remote_frees_and_kfree_rcu(by_trace: bool, gp_interval: float) -> None:
    """A real two-node trace: frees of remote objects whose slab stays
    partial (``__slab_free`` onto the freelist, FREE_SLOWPATH) and kfree_rcu
    of remote objects (the classic kvfree_rcu batch) are replayed on the hit
    path; a remote free that fills an empty freelist or empties the slab
    (list_lock, partial list, discard) still goes to the full model.  With
    ``by_trace`` the batches are said to drain from the trace's delayed
    frees (so grace-period ticks need not stop the run); else the run must
    stop at the next tick, which drains them (with ticks every 100 us a run
    that went on past one is caught).  Same results, every object in one
    place."""
    store = ingest(DATA / "numa2-cut")

    def replay(hit: bool) -> tuple[dict[str, Any], Replayer]:
        r = Replayer(store, ReplayOptions(hit_path=hit, validate=True, gp_interval=gp_interval))
        r.facts.has_rcu_completions = by_trace
        return strip_timing(r.run()), r

    full, _ = replay(False)
    hit, r = replay(True)
    assert hit == full
    assert r.hit_exchanges["remote_free"] > 0 and r.hit_exchanges["rcu_remote"] > 0
    # FREE_SLOWPATH counts every remote free: more than the hit path took
    slow = sum(row["counters"].get("free_slowpath", 0) for row in full["caches"].values())
    assert slow > r.hit_exchanges["remote_free"]


@pytest.mark.parametrize("kind", [*KINDS, "irq-mix", "numa-remote"])
def test_generated_workloads_identical(tmp_path: Path, kind: str) -> None:
    store = _generated(tmp_path, kind)
    full, _ = _replay(store, False)
    hit, rows = _replay(store, True)
    assert rows > 0
    assert hit == full


@pytest.mark.parametrize(
    "opts",
    [
        {"overrides": {"sheaf_capacity": 4}},  # many refills and flushes: many hand-overs
        {"overrides": {"sheaf_capacity": 4, "barn_max_full": 1}, "gp_interval": 0.0001},
        {"caches": ["kmalloc-64"]},  # untracked caches' rows are skipped
        {"pretrace": "reconstruct"},
        # NUMA: node-requested allocations, remote frees and kfree_rcu go to
        # the full model, the rest stays here
        {"overrides": {"nodes": 2}},
    ],
)
def test_what_if_options_identical(sample_store: EventStore, opts: dict[str, Any]) -> None:
    full, _ = _replay(sample_store, False, **opts)
    hit, rows = _replay(sample_store, True, **opts)
    assert rows > 0
    assert hit == full


@pytest.mark.parametrize("gp_interval", [0.03, 0.001, 0.00003])
def test_grace_period_ticks_that_do_nothing_do_not_stop_it(
    sample_store: EventStore, gp_interval: float
) -> None:
    """Replaying the traced kernel's RCU sheaf completions, a grace-period
    tick only drains the classic kvfree_rcu batches; with none pending the
    hit path moves the tick on itself (as the replayer would) instead of
    handing over: the hand-overs do not grow with the number of ticks, and
    results stay identical."""
    r = Replayer(sample_store, ReplayOptions(hit_path=True, gp_interval=gp_interval))
    r.run()
    assert r.rcu_mode == "trace"
    ticks = (r.facts.ts_last - r.facts.ts_first) / gp_interval
    base = Replayer(sample_store, ReplayOptions(hit_path=True))
    base.run()
    assert sum(r.hit_stops.values()) <= sum(base.hit_stops.values()) + 5
    if gp_interval < 0.001:
        assert ticks > 10 * sum(r.hit_stops.values())  # most ticks went by on the hit path
    full, _ = _replay(sample_store, False, gp_interval=gp_interval)
    hit_v, _ = _replay(sample_store, True, gp_interval=gp_interval)
    assert hit_v == full


#: the 6.12 cpu slab paths it replays (test_612_cpu_slab_paths_identical)
CLASSIC_EXCHANGES = tuple(x for x in hitpath.EXCHANGES if x.startswith("classic_"))


def test_612_cpu_slab_paths_identical(sample_store: EventStore, tmp_path: Path) -> None:
    """Under 6.12 the hit path takes the cpu slab's fast paths and the slow
    frees that take no lock (into another CPU's frozen cpu slab; into a slab
    that stays partial), with the full model's results: a real 6.12 trace,
    the 7.3 sample and generated workloads."""
    seen = dict.fromkeys(CLASSIC_EXCHANGES, 0)
    v612 = ingest(DATA / "v612-cut")
    stores = [v612, sample_store] + [
        _generated(tmp_path, k)
        for k in ("mixed-lifetime", "prodcons", "irq-mix", "kfree-rcu-storm")
    ]
    for store in stores:
        full, _ = _replay(store, False, kernel="6.12")
        r = Replayer(store, ReplayOptions(kernel="6.12", hit_path=True, validate=True))
        assert strip_timing(r.run()) == full
        assert r.hit_rows > 0
        for name in seen:
            seen[name] += r.hit_exchanges[name]
        if store is v612:
            # a real 6.12 trace: most rows are cpu slab hits or lockless frees
            assert r.hit_rows > 0.9 * store.n
            frozen = sum(c["counters"].get("free_frozen", 0) for c in full["caches"].values())
            # (bulk frees into frozen slabs are the full model's)
            assert 0.9 * frozen <= r.hit_exchanges["classic_free_frozen"] <= frozen
    assert all(seen.values()), seen


@pytest.mark.parametrize(
    "opts",
    [
        {"overrides": {"cpu_partial": 0}},  # every put drains: many hand-overs
        {"overrides": {"nodes": 2}},  # node-requested allocations
        {"overrides": {"min_partial": 0}},  # emptied slabs discarded at once
    ],
)
def test_612_what_if_options_identical(opts: dict[str, Any]) -> None:
    store = ingest(DATA / "v612-cut")
    full, _ = _replay(store, False, kernel="6.12", **opts)
    hit, rows = _replay(store, True, kernel="6.12", **opts)
    assert rows > 0
    assert hit == full


def test_a_model_cache_two_trace_caches_merge_into_is_left_to_the_full_model() -> None:
    """Replayed under 6.12's merge rules, the 7.3 trace's maple_node and
    kmalloc-256 are one model cache: mirrored per trace cache, each write-back
    of its counts would undo the other's (inuse_total out of step with the
    slabs); such a cache stays with the full model."""
    store = ingest(DATA / "numa2-cut")
    full, _ = _replay(store, False, kernel="6.12")
    r = Replayer(store, ReplayOptions(kernel="6.12", hit_path=True, validate=True))
    assert strip_timing(r.run()) == full
    models = [tr.model for tr in r.tracks.values()]
    shared = {id(m) for m in models if sum(x is m for x in models) > 1}
    assert shared  # (the case exists in this trace)
    assert r.hit_rows > 0


def test_not_used_where_it_would_bypass_a_hook_or_model(sample_store: EventStore) -> None:
    for opts in (
        {"kernel": "6.18"},  # opt-in sheaves: the classic layer's side effects
        {"kernel": "rfc-pca"},  # the percpu array in front of the cpu slab
        {"lockstep": True},
        {"warm_on_first_use": True},
        {"policy": "bonwick"},
    ):
        r = Replayer(sample_store, ReplayOptions(hit_path=True, validate=False, **opts))
        r.run()
        assert r.hit_rows == 0, opts


def test_runs_as_python_without_cython(
    sample_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source with slubsim._cyshim in place of Cython's shadow module."""
    src = Path(hitpath.__file__).with_name("hitpath.py")
    monkeypatch.setitem(sys.modules, "cython", None)  # import cython -> ModuleNotFoundError
    spec = importlib.util.spec_from_file_location("slubsim.hitpath", src)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.COMPILED is False
    assert mod.cython.__name__ == "slubsim._cyshim"
    monkeypatch.setitem(sys.modules, "slubsim.hitpath", mod)
    full, _ = _replay(sample_store, False)
    hit, rows = _replay(sample_store, True)
    assert rows > 0.8 * sample_store.n
    assert hit == full


def test_stale_extension_runs_the_source(tmp_path: Path) -> None:
    import importlib.machinery
    import os

    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    src = _native.module_path(tmp_path, "slubsim.hitpath")
    src.write_text("")
    so = _native.module_path(tmp_path, "slubsim.hitpath", ext)
    so.write_bytes(b"")
    assert not _native._stale(tmp_path, "slubsim.hitpath")
    t = so.stat().st_mtime
    os.utime(src, (t + 3600, t + 3600))
    assert _native._stale(tmp_path, "slubsim.hitpath")
    so.unlink()
    assert not _native._stale(tmp_path, "slubsim.hitpath")  # not compiled: the source anyway
    finder = _native._PureSourceFinder(tmp_path, ["slubsim.hitpath"])
    spec = finder.find_spec("slubsim.hitpath", None)
    assert spec is not None and spec.origin == str(src)
    assert finder.find_spec("slubsim.cache", None) is None


@pytest.mark.skipif(not (SHARED / "net-4cpu").is_dir(), reason="needs ../shared/traces")
@pytest.mark.parametrize("run", ["net-4cpu", "v612-mixed-4cpu"])
def test_validate_identical_on_a_real_bundle(run: str) -> None:
    """Markers with the validation hook: every hand-over path on a full bundle."""
    from slubsim.validate import validate_bundle

    on = validate_bundle(SHARED / run, hit_path=True)
    off = validate_bundle(SHARED / run, hit_path=False)
    assert strip_timing(on) == strip_timing(off)
    assert on["summary"]["counters_compared"] > 0
