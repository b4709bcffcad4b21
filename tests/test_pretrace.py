"""Pre-trace slabs rebuilt from the traced pointers (slubsim.pretrace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TRACES, ingest_lines, needs_shared
from slubsim.kernel import Kernel
from slubsim.machine import Machine
from slubsim.pretrace import plan
from slubsim.replay import Replayer, ReplayOptions
from slubsim.trace.ingest import ingest
from slubsim.trace.store import EventStore
from slubsim.validate import cpu_partial_before, cpus_allocating_before, validate_bundle

K1 = 0xFFFF888140000000  # kernel slabs (order 0, kmalloc-64: 64 objects of 64 bytes)
K2 = K1 + 0x5000
K3 = K1 + 0x9000


def _line(t: float, cpu: int, what: str, ptr: int) -> str:
    head = f"  t-1 [{cpu:03d}] .....  {t:.6f}: "
    if what == "alloc":
        return (
            head + f"kmalloc: call_site=f+0x1/0x2 ptr={ptr:x} bytes_req=64 bytes_alloc=64 "
            "gfp_flags=GFP_KERNEL node=-1 accounted=false\n"
        )
    if what == "bulk":  # kmem_cache_alloc_bulk of ``ptr`` objects (lab kprobes)
        return (
            head + "alloc_bulk: (kmem_cache_alloc_bulk_noprof+0x0/0x1) gfp=0xcc0 "
            f'size={ptr} arr=0x0 name="kmalloc-64" caller=q\n'
            + head
            + f"alloc_bulk_ret: (x <- kmem_cache_alloc_bulk_noprof) ret={ptr}\n"
        )
    return head + f"kfree: call_site=g+0x1/0x2 ptr={ptr:x}\n"


def _store(tmp_path: Path, events: list[tuple[int, str, int]], version: str) -> EventStore:
    """Ingest ``(cpu, alloc|free, pointer)`` events as kmalloc/kfree lines and
    mark the store as recorded by ``version``."""
    lines = ["# tracer: nop\n"]
    lines += [_line(1.0 + i * 1e-5, cpu, w, p) for i, (cpu, w, p) in enumerate(events)]
    return ingest_lines(tmp_path, lines, version)


def _cid(st: EventStore, name: str = "kmalloc-64") -> int:
    return next(int(c["id"]) for c in st.caches if c["name"] == name)


def _cpu_slab_trace() -> list[tuple[int, str, int]]:
    """CPU 0 takes objects 5..20 of K1 and frees object 0 (allocated before
    the trace; a kfree is resolved by the page of known objects): K1 was its
    cpu slab, objects 1..4 long-lived."""
    ev = [(0, "alloc", K1 + 64 * i) for i in range(5, 21)]
    return [*ev, (0, "free", K1)]


def test_plan_classifies_a_pre_trace_cpu_slab(tmp_path: Path) -> None:
    st = _store(tmp_path, _cpu_slab_trace(), "6.12")
    c = _cid(st)
    p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=True)
    (ps,) = p.slabs[c]
    assert ps.kbase == K1
    assert ps.free_order == list(range(5, 64))  # first-allocation order, then the tail
    assert ps.allocated == [0, 1, 2, 3, 4]
    assert [i for i, _ in ps.bound] == [0]
    # no counter information: the slab's own evidence makes it CPU 0's cpu slab
    assert p.cpu_slab[c] == {0: K1}
    assert p.summary()["slabs"] == 1


def test_fresh_slabs_are_not_pre_trace(tmp_path: Path) -> None:
    # 6.12: a fresh slab hands out index 0 first and has no holes
    ev = [(0, "alloc", K1 + 64 * i) for i in range(10)]
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    assert plan(st, {c: (0, 64, 64)}, per_cpu_slab=True).slabs[c] == []
    # 7.3: sheaves hand a fresh slab's objects out last-in first-out, so
    # neither the order nor holes mean anything -- only a first free does
    ev = [(0, "alloc", K1 + 64 * i) for i in (9, 8, 7)]
    ev += [(1, "alloc", K2 + 64 * 5), (1, "free", K2 + 64 * 3)]
    st = _store(tmp_path, ev, "7.3")
    c = _cid(st)
    p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=False)
    assert [ps.kbase for ps in p.slabs[c]] == [K2]
    # object 5 left first; the rest of K2 is the untouched tail, free
    assert p.slabs[c][0].free_order == list(range(5, 64))
    assert p.slabs[c][0].allocated == [0, 1, 2, 3, 4]
    assert c not in p.cpu_slab


def test_switching_slabs_refutes_a_free_tail(tmp_path: Path) -> None:
    """6.12: CPU 0 takes object 10 of K1 (objects 0..9 long-lived), then its
    next allocation comes from K2 -- K1 had nothing left, so its never-seen
    objects 11..63 had users too.  When the CPU keeps allocating from K1
    instead, they are the untouched tail (free).  Sheaves (7.3) say nothing
    about it: the tail stays."""
    ev = [(0, "alloc", K1 + 64 * 10), (1, "alloc", K3 + 64 * 5), (0, "alloc", K2 + 64 * 7)]
    ev += [(0, "free", K2 + 64 * 3)]  # K2: pre-trace as well
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    geo = {c: (0, 64, 64)}
    k1 = next(ps for ps in plan(st, geo, per_cpu_slab=True).slabs[c] if ps.kbase == K1)
    assert k1.free_order == [10]
    assert k1.allocated == [i for i in range(64) if i != 10]
    # another CPU's allocation elsewhere refutes nothing: K3 keeps its tail
    k3 = next(ps for ps in plan(st, geo, per_cpu_slab=True).slabs[c] if ps.kbase == K3)
    assert k3.free_order == list(range(5, 64))
    # CPU 0 goes on in K1 (object 11) and allocates nowhere else: the tail is there
    ev2 = [*ev[:2], (0, "alloc", K1 + 64 * 11), (1, "alloc", K2 + 64 * 7), ev[3]]
    st = _store(tmp_path, ev2, "6.12")
    c = _cid(st)
    geo = {c: (0, 64, 64)}
    k1 = next(ps for ps in plan(st, geo, per_cpu_slab=True).slabs[c] if ps.kbase == K1)
    assert k1.free_order == list(range(10, 64))
    # K2 (object 3 first seen as a free) and CPU 0 switching to K1 after
    # object 7: under 6.12 no tail, under sheaves the tail stays
    ev3 = [(0, "alloc", K2 + 64 * 7), (0, "alloc", K1 + 64 * 10), (0, "free", K2 + 64 * 3)]
    for version, tail in (("6.12", []), ("7.3", list(range(8, 64)))):
        st = _store(tmp_path, ev3, version)
        c = _cid(st)
        p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=version == "6.12")
        k2 = next(ps for ps in p.slabs[c] if ps.kbase == K2)
        assert k2.free_order == [7, *tail]


def test_only_the_cpus_own_bulk_call_saves_a_tail(tmp_path: Path) -> None:
    """6.12, a cache with alloc_bulk calls: CPU 1's bulk call before CPU 0
    switches from K1 to K2 takes from CPU 1's own cpu slab, so K1's tail is
    still refuted (v612-mixed kmalloc-256: CPU 1's cpu slab 2f8000); a bulk
    call of CPU 0 itself between its last K1 object and its first K2 one may
    have taken the tail: then it stays free."""
    base = [(0, "alloc", K1 + 64 * 10), (1, "alloc", K3 + 64 * 5), (1, "bulk", 2)]
    for between, tail in (([], []), ([(0, "bulk", 3)], list(range(11, 64)))):
        ev = [*base, *between, (0, "alloc", K2 + 64 * 7), (0, "free", K2 + 64 * 3)]
        st = _store(tmp_path, ev, "6.12")
        c = _cid(st)
        p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=True)
        k1 = next(ps for ps in p.slabs[c] if ps.kbase == K1)
        assert k1.free_order == [10, *tail], between


def test_alloc_bulk_hides_order_only_after_the_first_call(tmp_path: Path) -> None:
    """In a cache with alloc_bulk calls (objects not named), a slab seen
    before the first call and first handing out object 5 is pre-trace (no
    slab made during the trace so far can have lost objects 0..4 to a bulk
    call); one first seen after it proves nothing by its order."""
    ev = [(0, "alloc", K1 + 64 * i) for i in (5, 6)] + [(1, "bulk", 2)]
    ev += [(1, "alloc", K2 + 64 * i) for i in (3, 4)]
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=True)
    assert [ps.kbase for ps in p.slabs[c]] == [K1]
    assert p.slabs[c][0].allocated == [0, 1, 2, 3, 4]


def test_counters_decide_which_cpus_had_a_cpu_slab(tmp_path: Path) -> None:
    # CPU 1's first slab K2 looks fresh (index 0 first, no holes)
    ev = _cpu_slab_trace() + [(1, "alloc", K2 + 64 * i) for i in range(4)]
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    geo = {c: (0, 64, 64)}
    assert plan(st, geo, per_cpu_slab=True).cpu_slab[c] == {0: K1}
    # the kernel's counters say CPU 1 had allocated before: K2 was its cpu slab
    p = plan(st, geo, per_cpu_slab=True, cpus_before={c: {0, 1}})
    assert p.cpu_slab[c] == {0: K1, 1: K2}
    assert p.slabs[c][1].free_order == list(range(64))
    # ... or that only CPU 1 had: K1 (pre-trace by its objects) is a partial slab
    p = plan(st, geo, per_cpu_slab=True, cpus_before={c: {1}})
    assert p.cpu_slab[c] == {1: K2}


def test_geometry_mismatch_skips_the_cache(tmp_path: Path) -> None:
    st = _store(tmp_path, _cpu_slab_trace(), "6.12")
    c = _cid(st)
    p = plan(st, {c: (0, 96, 42)}, per_cpu_slab=True)  # 64-byte steps are not 96-byte objects
    assert c in p.skipped and "not an object" in p.skipped[c]
    assert c not in p.slabs


def _replay(st: EventStore, pretrace: str, **kw: object) -> dict[str, object]:
    rp = Replayer(
        st,
        ReplayOptions(pretrace=pretrace, lockstep=True, validate=True, **kw),  # type: ignore[arg-type]
    )
    res = rp.run()
    rp.kernel.validate()  # every object in exactly one place, slab counts agree
    return res["caches"]["kmalloc-64"]  # type: ignore[no-any-return]


def test_a_rebuilt_cpu_slab_keeps_the_model_in_step(tmp_path: Path) -> None:
    st = _store(tmp_path, _cpu_slab_trace(), "6.12")
    rebuilt = _replay(st, "reconstruct")
    ls = rebuilt["lockstep"]
    assert (ls["checked"], ls["same_object"]) == (16, 16)
    c = rebuilt["counters"]
    # every allocation a fast path from the rebuilt cpu slab, the pre-trace
    # object's free a fast path into it; no slab made during the trace
    assert (c["alloc_fastpath"], c["alloc_slowpath"], c["alloc_slab"]) == (16, 0, 0)
    assert (c["free_fastpath"], c["free_slowpath"]) == (1, 0)
    # materialising the freed object instead (in a new slab, flushed to the
    # partial list before the baseline), the model takes a slow path and
    # hands out other objects
    plain = _replay(st, "materialize")
    assert plain["counters"]["alloc_slowpath"] == 1
    assert plain["lockstep"]["same_object"] == 0


def test_cpu_partial_slabs_from_sysfs_counts(tmp_path: Path) -> None:
    # CPU 0 uses the last 4 objects of its cpu slab K1, then K2 (from object 10)
    ev = [(0, "alloc", K1 + 64 * i) for i in range(60, 64)]
    ev += [(0, "alloc", K2 + 64 * i) for i in range(10, 13)]
    st = _store(tmp_path, ev, "6.12")
    on_node = _replay(st, "reconstruct")
    assert on_node["lockstep"]["same_object"] == 7
    assert on_node["counters"]["alloc_from_partial"] == 1
    assert on_node["counters"]["cpu_partial_alloc"] == 0
    st2 = _store(tmp_path, ev, "6.12")
    on_cpu = _replay(st2, "reconstruct", pretrace_cpu_partial={"kmalloc-64": {0: 1}})
    assert on_cpu["lockstep"]["same_object"] == 7
    assert on_cpu["counters"]["cpu_partial_alloc"] == 1
    assert on_cpu["counters"]["alloc_from_partial"] == 0
    assert on_cpu["counters"]["alloc_slab"] == 0


def test_cpu_partial_slabs_the_trace_never_touches(tmp_path: Path) -> None:
    """sysfs counted 2 slabs on CPU 0's partial list; the trace shows CPU 0
    using its cpu slab K1 and then one pre-trace slab, K2: the other one never
    met a traced pointer.  Read when tracing began, the count makes it up with
    a half-full placeholder; a count read later (a trace from boot) does not,
    nor does one of a CPU that also took a slab not shown to be pre-trace."""
    ev = [(0, "alloc", K1 + 64 * i) for i in range(60, 64)]
    ev += [(0, "alloc", K2 + 64 * i) for i in range(10, 13)]
    st = _store(tmp_path, ev, "6.12")
    geom = {_cid(st): (0, 64, 64)}
    p = plan(st, geom, cpus_before={_cid(st): {0}}, cpu_partial_before={_cid(st): {0: 2}})
    assert p.cpu_partial[_cid(st)] == {0: [K2]}
    p = plan(
        st,
        geom,
        cpus_before={_cid(st): {0}},
        cpu_partial_before={_cid(st): {0: 2}},
        unseen_cpu_partial=True,
    )
    chain = p.cpu_partial[_cid(st)][0]
    assert chain[0] == K2 and len(chain) == 2 and chain[1] < 0
    ph = next(ps for ps in p.slabs[_cid(st)] if ps.unseen)
    assert (len(ph.allocated), len(ph.free_order)) == (32, 32)
    opts = {
        "pretrace_cpus": {"kmalloc-64": {0}},
        "pretrace_cpu_partial": {"kmalloc-64": {0: 2}},
        "pretrace_cpu_partial_unseen": True,
    }
    res = _replay(st, "reconstruct", **opts)
    c = res["counters"]
    # K2 from the list head; the placeholder stays behind it, made by no one
    assert (c["cpu_partial_alloc"], c["alloc_slab"]) == (1, 0)
    assert res["lockstep"]["same_object"] == 7
    # a CPU that took a fresh slab (K3 from object 0) gets no placeholder
    ev2 = ev + [(0, "alloc", K3 + 64 * i) for i in range(3)]
    st2 = _store(tmp_path, ev2, "6.12")
    p2 = plan(
        st2,
        {_cid(st2): (0, 64, 64)},
        cpus_before={_cid(st2): {0}},
        cpu_partial_before={_cid(st2): {0: 2}},
        unseen_cpu_partial=True,
    )
    assert p2.cpu_partial[_cid(st2)] == {0: [K2]}


def test_rebuilt_slabs_under_sheaves_go_to_the_partial_list(tmp_path: Path) -> None:
    # a 7.3 trace: CPU 0 allocates from K3 and K1, then frees two pre-trace
    # objects of K3
    ev = [(0, "alloc", K3 + 64 * 20)] + [(0, "alloc", K1 + 64 * i) for i in range(3)]
    ev += [(0, "free", K3 + 64 * 7), (0, "free", K3 + 64 * 9)]
    st = _store(tmp_path, ev, "7.3")
    res = _replay(st, "reconstruct")
    assert res["counters"]["alloc_slab"] == 1  # K3 is full: the refill needs a new slab
    # both frees found their objects (no pre-trace object was invented)
    assert res["counters"]["free_fastpath"] == 2


def test_adopt_slab_moves_no_counter() -> None:
    k = Kernel(Machine(cpus=1), version="6.12")
    s = k.kmem_cache_create("t64", 64)
    before = [list(r) for r in s.stat]
    slab = s.adopt_slab(0, 0, [3, 2, 1])
    assert slab is not None
    assert slab.inuse == s.objects - 3 and slab.freelist[-1] == slab.object_at(3)
    assert s.stat == before
    assert s.layer.install_cpu_slab(0, slab)
    k.validate()
    # the rebuilt cpu slab serves the next allocations in its freelist order
    assert [s.alloc(0) for _ in range(3)] == [slab.object_at(i) for i in (3, 2, 1)]
    assert s.stats()["alloc_fastpath"] == 3 and s.stats()["alloc_slab"] == 0
    k.validate()


def test_cpu_partial_before_parses_sysfs() -> None:
    state = {"slabs_cpu_partial": "96(12) C0=24(3) C1=40(5) C3=16(2)"}
    assert cpu_partial_before(state) == {0: 3, 1: 5, 3: 2}
    assert cpu_partial_before({"slabs_cpu_partial": "0(0)"}) == {}
    assert cpu_partial_before({}) == {}


def test_unknown_pretrace_policy_is_a_usage_error(tmp_path: Path) -> None:
    from slubsim.errors import SlubsimUsageError

    st = _store(tmp_path, _cpu_slab_trace(), "6.12")
    with pytest.raises(SlubsimUsageError, match="reconstruct"):
        Replayer(st, ReplayOptions(pretrace="guess"))


@needs_shared
def test_cpus_allocating_before_on_a_612_bundle() -> None:
    st = ingest(TRACES / "v612-mixed-4cpu")
    cpus = cpus_allocating_before(TRACES / "v612-mixed-4cpu", st)
    # seq_file (sysfs :0000120): all four CPUs held a cpu slab (sysfs cpu_slabs
    # 4, no cpu partial slabs)
    assert cpus[":0000120"] == {0, 1, 2, 3}


@needs_shared
def test_rebuilt_slabs_lift_the_612_bundles() -> None:
    """The v612 bundles against the real 6.12.117 kernel, with and without
    the pre-trace slabs: floors reached by this version."""
    st = ingest(TRACES / "v612-mixed-4cpu")
    old = validate_bundle(TRACES / "v612-mixed-4cpu", store=st, pretrace="materialize")
    new = validate_bundle(TRACES / "v612-mixed-4cpu", store=st)
    assert new["warmup"]["pretrace_policy"] == "reconstruct"
    assert new["warmup"]["pretrace_slabs"]["slabs"] > 50
    k0, k1 = old["summary_key_counters_busy_caches"], new["summary_key_counters_busy_caches"]
    assert k1["within_5pct"] >= k0["within_5pct"] + 20
    assert k1["within_5pct"] / k1["counters_compared"] >= 0.90
    c612 = new["summary_classic_counters_busy_caches"]
    assert c612["counters_compared"] >= 280
    assert c612["within_5pct"] / c612["counters_compared"] >= 0.94
    assert c612["exact"] / c612["counters_compared"] >= 0.855
    # the untouched tail that ended a cpu slab's freelist (_tail_end_refill):
    # filp CPU 3, vma_lock, kmalloc-96, kmalloc-128 refills as the kernel's
    for name in ("filp", "vma_lock", "kmalloc-96", "kmalloc-128", "signal_cache"):
        ar = new["caches"][name]["counters"]["alloc_refill"]
        assert ar["model"] == ar["kernel"], name
    # CPU 3 had 2 vm_area_struct slabs on its partial list, the trace touches
    # one: the other, made up untouched, fills the list to cpu_partial_slabs
    # and the kernel's one drain (8 slabs to the node list, 2 discarded) follows
    vma = new["caches"]["vm_area_struct"]["counters"]
    for item in ("cpu_partial_drain", "free_add_partial", "deactivate_empty", "free_slab"):
        assert vma[item]["model"] == vma[item]["kernel"] > 0, item
    assert new["lockstep"]["share"] >= 0.88
    # a cpu slab left for another slab has no free tail (_refuted_tails):
    # kmalloc-rcl-192 was in step for 3,753 allocations, 22 % overall, without it
    # frees of bulk-allocated maple nodes bound to the bulk call of their slab,
    # else the oldest: the model's FREE_FROZEN was 1,559 when they took the
    # latest call's (468 now)
    ff = new["caches"]["kmalloc-256"]["counters"]["free_frozen"]
    assert ff["kernel"] == 77 and ff["model"] <= 500
    rcl = new["lockstep"]["caches"]["kmalloc-rcl-192"]
    assert rcl["in_step_prefix"] >= 5700 and rcl["share"] >= 0.45
    for name in ("kmalloc-16", "seq_file", "kioctx", "kmalloc-4k", "kmalloc-192", "filp"):
        assert new["lockstep"]["caches"][name]["share"] == 1.0, name


def test_remote_frees_split_a_cpu_slab_freelist(tmp_path: Path) -> None:
    """CPU 0 allocates 5 and 6 from its cpu slab K1, CPU 1 frees object 2
    (allocated before the trace) into it, CPU 0 then gets 2 and 7: 2 came
    with the refill of the slab's own freelist, so 7 (and the untouched
    tail) were there too, under 2 -- not on CPU 0's freelist."""
    ev = [(0, "alloc", K1 + 64 * 5), (0, "alloc", K1 + 64 * 6), (1, "free", K1 + 64 * 2)]
    ev += [(0, "alloc", K1 + 64 * 2), (0, "alloc", K1 + 64 * 7)]
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=True, cpus_before={c: {0}})
    (ps,) = p.slabs[c]
    assert ps.free_order[:3] == [5, 6, 7] and ps.slab_keep == 64 - 7
    res = _replay(st, "reconstruct", pretrace_cpus={"kmalloc-64": {0}})
    assert res["lockstep"]["same_object"] == res["lockstep"]["checked"] == 4
    cnt = res["counters"]
    assert (cnt["alloc_fastpath"], cnt["alloc_slowpath"], cnt["alloc_refill"]) == (3, 1, 1)
    assert cnt["free_frozen"] == 1  # CPU 1's free into CPU 0's cpu slab


@pytest.mark.parametrize(
    ("tail", "keep", "paths"),
    [
        # objects 61..63 in order end the slab's first chain: 10 and 11 came
        # from its own freelist (frees from other CPUs before the trace)
        ((61, 62, 63), 2, (4, 1, 1)),
        # a run of two may be pushed frees (a user freeing in reverse order):
        # no refill inferred, all on c->freelist
        ((62, 63), 0, (4, 0, 0)),
    ],
)
def test_an_untouched_tail_ends_a_cpu_slabs_freelist(
    tmp_path: Path, tail: tuple[int, ...], keep: int, paths: tuple[int, int, int]
) -> None:
    ev = [(0, "alloc", K1 + 64 * i) for i in (*tail, 10, 11)]
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=True, cpus_before={c: {0}})
    (ps,) = p.slabs[c]
    assert ps.slab_keep == keep
    res = _replay(st, "reconstruct", pretrace_cpus={"kmalloc-64": {0}})
    assert res["lockstep"]["same_object"] == res["lockstep"]["checked"] == len(ev)
    cnt = res["counters"]
    assert (cnt["alloc_fastpath"], cnt["alloc_slowpath"], cnt["alloc_refill"]) == paths


def test_a_remote_free_refutes_an_untouched_tail(tmp_path: Path) -> None:
    """CPU 1 frees object 20 into CPU 0's cpu slab before CPU 0, past the run
    61..63, takes 10: a refill there would have handed out 20 first (the
    head of the slab's freelist), so 61..63 were pushed frees and 10 was on
    c->freelist too; the refill comes at 20 (and brings 11)."""
    ev = [(0, "alloc", K1 + 64 * i) for i in (61, 62, 63)]
    ev += [(1, "free", K1 + 64 * 20), (0, "alloc", K1 + 64 * 10)]
    ev += [(0, "alloc", K1 + 64 * 20), (0, "alloc", K1 + 64 * 11)]
    st = _store(tmp_path, ev, "6.12")
    c = _cid(st)
    p = plan(st, {c: (0, 64, 64)}, per_cpu_slab=True, cpus_before={c: {0}})
    (ps,) = p.slabs[c]
    assert ps.free_order == [61, 62, 63, 10, 11] and ps.slab_keep == 1
    res = _replay(st, "reconstruct", pretrace_cpus={"kmalloc-64": {0}})
    assert res["lockstep"]["same_object"] == res["lockstep"]["checked"] == 6
    cnt = res["counters"]
    assert (cnt["alloc_fastpath"], cnt["alloc_slowpath"], cnt["alloc_refill"]) == (5, 1, 1)


def test_discover_sheaves_walks_each_cpus_stack(tmp_path: Path) -> None:
    # CPU 0: A (never seen), then frees X and takes it back (its own push),
    # then B and C; CPU 1 frees D, which CPU 0 then allocates: the initial
    # sheaves are gone by then (D came through the barn or a refill)
    a, b, c, d, x = (K1 + 64 * i for i in (9, 8, 7, 6, 20))
    ev = [(0, "alloc", a), (0, "free", x), (0, "alloc", x), (0, "alloc", b), (0, "alloc", c)]
    ev += [(1, "alloc", d), (1, "free", d), (0, "alloc", d)]
    st = _store(tmp_path, ev, "7.3")
    cid = _cid(st)
    from slubsim.pretrace import discover_sheaves

    assert discover_sheaves(st, {cid: {0: (3, 0)}}) == {cid: {0: ([a, b, c], [])}}
    assert discover_sheaves(st, {cid: {0: (1, 2)}}) == {cid: {0: ([a], [b, c])}}
    # asking for more than the CPU shows: the walk stops at D; what it found
    # of the spare is the spare's top (the first read completes the count)
    assert discover_sheaves(st, {cid: {0: (1, 4)}}) == {cid: {0: ([a], [b, c])}}


#: a two-node machine's memory (node, first, last physical address), as a
#: bundle's dmesg gives it: K1 (physical 0x140000000) is node 1's
TWO_NODES = [[0, 0x1000, 0x13FFFFFFF], [1, 0x140000000, 0x27FFFFFFF]]
K0 = K1 - 0x40000000  # a node-0 slab


def test_remote_free_test_follows_the_node_memory_map() -> None:
    from slubsim.pretrace import remote_free_test

    assert remote_free_test([0, 1], None) is None
    assert remote_free_test([0, 0], [[0, 0x1000, 0x27FFFFFFF]]) is None  # one node
    remote = remote_free_test([0, 1], TWO_NODES)
    assert remote is not None
    assert remote(0, K1) and not remote(1, K1)  # node 1's object: remote on CPU 0
    assert remote(1, K0) and not remote(0, K0)
    assert not remote(0, 0xFFFF888900000000)  # outside the map: not known remote
    assert not remote(5, K1)  # a CPU the map does not name
    # a CPU on a node without memory frees nowhere locally: never remote
    memless = remote_free_test([2, 0], TWO_NODES)
    assert memless is not None and not memless(0, K1) and memless(1, K1)


def test_discover_sheaves_passes_over_remote_frees(tmp_path: Path) -> None:
    """On a NUMA machine a free of another node's object goes to its slab,
    not into the CPU's sheaf (7.x can_free_to_pcs): CPU 0 (node 0) hands out
    A, frees R (node 1's, allocated on CPU 1), then hands out B and C --
    still its initial sheaf's objects.  Counting R as pushed ended the walk at B (numa2
    kmalloc-rcl-192: 3 of CPU 0's 56 objects found)."""
    from slubsim.pretrace import discover_sheaves, remote_free_test

    a, b, c = (K0 + 64 * i for i in (9, 8, 7))
    r = K1 + 64 * 3
    ev = [(1, "alloc", r), (0, "alloc", a), (0, "free", r), (0, "alloc", b), (0, "alloc", c)]
    st = _store(tmp_path, ev, "7.3")
    cid = _cid(st)
    want = {cid: {0: (3, 0)}}
    assert discover_sheaves(st, want) == {cid: {0: ([a], [])}}
    remote = remote_free_test([0, 1], TWO_NODES)
    assert discover_sheaves(st, want, remote_free=remote) == {cid: {0: ([a, b, c], [])}}
    # a local free still pushes: the next allocation must pop it first
    st2 = _store(tmp_path, [(0, "alloc", a), (0, "free", K0 + 64 * 30), (0, "alloc", b)], "7.3")
    cid2 = _cid(st2)
    assert discover_sheaves(st2, {cid2: {0: (3, 0)}}, remote_free=remote) == {cid2: {0: ([a], [])}}


def test_sheaves_rebuilt_from_pointers_serve_the_first_allocations(tmp_path: Path) -> None:
    """A 7.3 trace whose CPU 0 starts by handing out objects 9, 8, 7 of K1 --
    a sheaf's last-in first-out order.  Told that CPU 0's sheaves held three
    objects, the replay puts exactly those in its main sheaf."""
    ev = [(0, "alloc", K1 + 64 * i) for i in (9, 8, 7)]
    st = _store(tmp_path, ev, "7.3")
    got = _replay(st, "reconstruct", pretrace_sheaves={"kmalloc-64": {0: 3}})
    assert got["lockstep"]["same_object"] == 3
    cnt = got["counters"]
    assert (cnt["alloc_fastpath"], cnt["sheaf_refill"], cnt["alloc_slab"]) == (3, 0, 0)
    assert cnt["sheaf_alloc"] == 0  # main and spare existed before the trace
    cold = _replay(_store(tmp_path, ev, "7.3"), "reconstruct")
    assert cold["counters"]["alloc_slab"] == 1 and cold["lockstep"]["same_object"] == 0


def test_rebuilt_slabs_sit_on_the_node_of_their_memory(tmp_path: Path) -> None:
    """Two nodes, CPU 0 on node 0; the kernel slabs K1/K3 lie in node 1's
    memory (0x140000000.. in the bundle's memory map): rebuilt there, the
    frees of their pre-trace objects on CPU 0 are remote (7.3: slow path,
    can_free_to_pcs fails); without the map they would land on CPU 0's node."""
    ev = [(0, "alloc", K3 + 64 * 20)] + [(0, "alloc", K1 + 64 * i) for i in range(3)]
    ev += [(0, "free", K3 + 64 * 7), (0, "free", K3 + 64 * 9)]
    results = {}
    for known in (True, False):
        st = _store(tmp_path, ev, "7.3")
        st.meta["machine"] = {"cpus": 2, "nodes": 2, "cpu_nodes": [0, 1]}
        if known:
            st.meta["machine"]["mem_ranges"] = [
                [0, 0x1000, 0x13FFFFFFF],
                [1, 0x140000000, 0x1FFFFFFFF],
            ]
        results[known] = _replay(st, "reconstruct")["counters"]
    assert (results[True]["free_slowpath"], results[True]["free_fastpath"]) == (2, 0)
    assert (results[False]["free_slowpath"], results[False]["free_fastpath"]) == (0, 2)


def test_node_memory_from_the_bundle_dmesg(tmp_path: Path) -> None:
    import json
    import lzma

    from slubsim.bundle import BundleMeta, pointer_node

    dmesg = (
        "[    0.029090] Initmem setup node 0 [mem 0x0000000000001000-0x000000013fffffff]\n"
        "[    0.029359] Initmem setup node 1 [mem 0x0000000140000000-0x00000001ffffffff]\n"
    )
    meta = {"kernel_release": "7.3.4", "vcpus": 4, "kernel_cmdline": "console=ttyS0 nokaslr",
            "numa_nodes": ["node0 cpus=0-1", "node1 cpus=2-3"]}  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "dmesg.txt.xz").write_bytes(lzma.compress(dmesg.encode()))
    bm = BundleMeta.load(tmp_path)
    assert bm.mem_ranges == ((0, 0x1000, 0x13FFFFFFF), (1, 0x140000000, 0x1FFFFFFFF))
    assert pointer_node(0xFFFF888140000040, bm.mem_ranges) == 1
    assert pointer_node(0xFFFF888100000000, bm.mem_ranges) == 0
    assert pointer_node(0xFFFF888300000000, bm.mem_ranges) == -1  # outside the map
    # KASLR moves the direct map: the pointers then say nothing
    meta["kernel_cmdline"] = "console=ttyS0"
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert BundleMeta.load(tmp_path).mem_ranges == ()
