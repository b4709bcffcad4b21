"""Replay of stores through the 7.3 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import DATA, needs_shared, shared_bundles
from slubsim import SlubsimUsageError
from slubsim.cli import sample_trace
from slubsim.replay import OVERRIDE_KEYS, Replayer, ReplayOptions, parse_overrides, replay
from slubsim.trace.events import F_RCU_COMPLETION
from slubsim.trace.ingest import ingest


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    return ingest(sample_trace())


def test_sample_replay_counts_every_traced_operation(sample) -> None:  # type: ignore[no-untyped-def]
    r = replay(sample)
    assert r["kernel"] == "7.3" and r["trace"]["cpus"] == 4
    assert r["trace"]["pretrace_objects"] > 0
    assert len(r["caches"]) > 20
    for name, c in r["caches"].items():
        k, ev = c["counters"], c["events"]
        # every traced allocation is one model allocation on a counted path;
        # allocations from prefilled sheaves are counted nowhere (as in the kernel)
        assert k["alloc_fastpath"] + k["alloc_slowpath"] == ev.get("alloc", 0), name
        frees = ev.get("free", 0) + ev.get("free_bulk", 0)
        assert k["free_fastpath"] + k["free_slowpath"] <= frees, name
        assert k["free_rcu_sheaf"] + k["free_rcu_sheaf_fail"] <= ev.get("kfree_rcu", 0), name
        m = c["memory"]
        assert m["slabs_peak"] >= m["slabs_final"] and m["pages_peak"] >= m["pages_final"]
        assert m["cached_objects_peak"] >= m["cached_objects_final"] >= 0
        assert 0.0 <= c["metrics"]["alloc_hit_rate"] <= 1.0
    maple = r["caches"]["maple_node"]
    assert maple["geometry"]["sheaf_capacity"] == 32
    assert (
        maple["counters"]["sheaf_prefill_fast"] + maple["counters"]["sheaf_prefill_slow"]
        == (maple["events"]["prefill_sheaf"])
    )
    assert r["caches"]["kmalloc-192"]["sysfs_dir"] == ":0000192"
    assert "cred" in r["caches"]["kmalloc-192"]["aliases"]
    assert not [w for w in r["warnings"] if not w["explained"]]


def test_overrides_change_the_outcome(sample) -> None:  # type: ignore[no-untyped-def]
    base = replay(sample, ReplayOptions(caches=["maple_node"]))
    small = replay(
        sample,
        ReplayOptions(caches=["maple_node"], overrides={"sheaf_capacity": 4, "barn_max_full": 2}),
    )
    b, s = base["caches"]["maple_node"], small["caches"]["maple_node"]
    assert s["geometry"]["sheaf_capacity"] == 4
    assert s["counters"]["sheaf_refill"] != b["counters"]["sheaf_refill"]
    assert s["memory"]["cached_objects_peak"] < b["memory"]["cached_objects_peak"]
    assert list(base["caches"]) == ["maple_node"]
    two = replay(sample, ReplayOptions(caches=["filp"], overrides={"cpus": 2}))
    assert two["trace"]["cpus"] == 2
    assert set(two["caches"]["filp"]["counters_per_cpu"]["alloc_fastpath"]) <= {"0", "1"}


def test_cache_selection_by_alias_and_directory(sample) -> None:  # type: ignore[no-untyped-def]
    by_alias = replay(sample, ReplayOptions(caches=["cred"]))
    by_dir = replay(sample, ReplayOptions(caches=[":0000192"]))
    assert list(by_alias["caches"]) == list(by_dir["caches"]) == ["kmalloc-192"]
    assert (
        by_alias["caches"]["kmalloc-192"]["counters"]
        == (by_dir["caches"]["kmalloc-192"]["counters"])
    )
    with pytest.raises(SlubsimUsageError, match="no cache named nosuch"):
        replay(sample, ReplayOptions(caches=["nosuch"]))


def test_pretrace_policies(sample) -> None:  # type: ignore[no-untyped-def]
    mat = replay(sample, ReplayOptions(pretrace="materialize"))
    ign = replay(sample, ReplayOptions(pretrace="ignore"))
    n = sum(w["count"] for w in sample.warnings if w["kind"] == "pretrace_free")
    assert mat["trace"]["pretrace_objects"] == n > 0
    assert ign["trace"]["pretrace_objects"] == 0
    ignored = {w["kind"]: w["count"] for w in ign["warnings"]}
    assert ignored["pretrace_free_ignored"] == n
    with pytest.raises(SlubsimUsageError):
        replay(sample, ReplayOptions(pretrace="guess"))


def test_override_keys() -> None:
    assert parse_overrides(["sheaf_capacity=32", "cpus=8"]) == {"sheaf_capacity": 32, "cpus": 8}
    with pytest.raises(SlubsimUsageError) as ei:
        parse_overrides(["capacity=3"])
    for key in OVERRIDE_KEYS:
        assert key in str(ei.value)
    with pytest.raises(SlubsimUsageError, match="not an integer"):
        parse_overrides(["cpus=x"])
    with pytest.raises(SlubsimUsageError, match="out of range"):
        parse_overrides(["cpus=0"])


def test_numa_cut_replays_on_two_nodes() -> None:
    st = ingest(DATA / "numa2-cut")
    r = replay(st)
    assert r["trace"]["nodes"] == 2
    assert sum(c["counters"]["alloc_fastpath"] for c in r["caches"].values()) > 1000


def test_612_trace_replays_under_612_and_73() -> None:
    st = ingest(DATA / "v612-cut")
    r = replay(st)  # the generation that recorded it
    assert r["kernel"] == "6.12"
    for name, c in r["caches"].items():
        k, ev = c["counters"], c["events"]
        assert "cpu_partial_free" in k and "sheaf_refill" not in k
        assert k["alloc_fastpath"] + k["alloc_slowpath"] == (
            ev.get("alloc", 0) + ev.get("alloc_bulk", 0)
        ), name
    r73 = replay(st, ReplayOptions(kernel="7.3"))  # what sheaves would have done
    assert r73["kernel"] == "7.3" and r73["trace"]["recorded_kernel"] == "6.12"
    st.meta["kernel_version"] = "5.10"
    with pytest.raises(SlubsimUsageError, match=r"5\.10, which has no model yet"):
        replay(st)


@needs_shared
@pytest.mark.parametrize("bundle", shared_bundles("7.3"), ids=lambda p: p.name)
def test_every_shared_73_bundle_replays_and_validates(bundle: Path) -> None:
    r = replay(ingest(bundle))  # validate() runs at the end of replay
    assert r["trace"]["events"] > 300_000
    bad = [w for w in r["warnings"] if not w["explained"]]
    assert not bad, bad


@needs_shared
@pytest.mark.parametrize("bundle", shared_bundles(), ids=lambda p: p.name)
def test_every_generation_replays_every_shared_trace(bundle: Path) -> None:
    st = ingest(bundle)
    for gen in ("6.12", "rfc-pca", "6.18", "7.3"):
        r = replay(st, ReplayOptions(kernel=gen, validate=(gen == "6.18")))
        assert r["kernel"] == gen and len(r["caches"]) > 20


def _no_timing(r: dict) -> dict:  # type: ignore[type-arg]
    r = dict(r)
    r["trace"] = {k: v for k, v in r["trace"].items() if k != "replay_seconds"}
    return r


@pytest.mark.parametrize("kernel", ["7.3", "6.12"])
def test_batched_streaming_replay_equals_whole_trace_replay(tmp_path: Path, kernel: str) -> None:
    import numpy as np

    from slubsim.trace.events import OP_FREE_BULK, OP_KFREE_BULK
    from slubsim.trace.store import EventStore

    st = ingest(sample_trace())
    ops, aux = st.columns["op"], st.columns["aux"]
    bulk = np.flatnonzero(np.isin(ops, (OP_FREE_BULK, OP_KFREE_BULK)))
    # a bulk call of several rows: batches ending inside it must carry it over
    assert len(bulk) > len(np.unique(aux[bulk]))
    split = int(bulk[0]) + 1  # a batch size that ends a batch inside that call
    whole = replay(st, ReplayOptions(kernel=kernel))
    path = tmp_path / "s.parquet"
    st.write(path)
    for rows in (3, split, 1 << 16):
        lazy = EventStore.open(path)
        r = replay(lazy, ReplayOptions(kernel=kernel, batch_rows=rows))
        assert not lazy.in_memory, "replay loaded the whole store"
        assert _no_timing(r) == _no_timing(whole), rows
    # and no batch ends inside a bulk call: each call is replayed as one
    from slubsim.replay import Replayer

    rp = Replayer(EventStore.open(path), ReplayOptions(kernel=kernel, batch_rows=split))
    seen: dict[int, int] = {}
    starts = []
    for base, b in rp._batches():
        starts.append(base)
        for j in np.flatnonzero(np.isin(b["op"], (OP_FREE_BULK, OP_KFREE_BULK))):
            assert seen.setdefault(int(b["aux"][j]), base) == base, "bulk call split"
    assert starts[:2] == [0, int(bulk[0])]  # the first batch stopped before the call


def test_streamed_store_reads_ahead_and_stops_cleanly(tmp_path: Path) -> None:
    """A store streamed from disk (row groups read ahead by a helper thread)
    gives the same batches as the store in memory, and a reader that stops
    early leaves no helper thread behind."""
    import threading
    import time

    import numpy as np

    from slubsim.trace.store import EventStore, StoreWriter

    st = ingest(sample_trace())
    path = tmp_path / "s.parquet"
    n = st.n
    with StoreWriter(path, st.meta) as w:  # many row groups
        for a in range(0, n, 97):
            w.write({c: v[a : a + 97] for c, v in st.columns.items()})
    lazy = EventStore.open(path)
    got = list(lazy.iter_batches(("op", "obj", "ts"), 50))
    want = list(st.iter_batches(("op", "obj", "ts"), 50))
    assert sum(len(b["op"]) for b in got) == n
    cat = {c: np.concatenate([b[c] for b in got]) for c in ("op", "obj", "ts")}
    for c in cat:
        assert np.array_equal(cat[c], np.concatenate([b[c] for b in want]))
    it = lazy.iter_batches(("op",), 10)
    next(it)
    it.close()  # the caller stops after one batch
    deadline = time.monotonic() + 5
    while any(t.name == "slubsim-store-read" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the read-ahead thread did not stop"
        time.sleep(0.01)


def test_open_rejects_what_is_not_a_store(tmp_path: Path) -> None:
    from slubsim.trace.store import EventStore, StoreError

    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"PAR1 but not really")
    with pytest.raises(StoreError, match="not a slubsim event store"):
        EventStore.open(bad)


# two kmalloc-64 objects on a two-node machine (CPU 0 on node 0, CPU 1 on
# node 1): P0 allocated on CPU 1 (a node-1 object in the model), P1 on CPU 0
_P0 = 0xFFFF888100001000
_P1 = 0xFFFF888100001040


def _rcu_line(cpu: int, ts: float, ev: str, fields: str) -> str:
    return f"  t-1 [{cpu:03d}] .....  {ts:.6f}: {ev}: {fields}\n"


def _rcu_trace(tmp_path: Path, completed: int, with_p0: bool = True) -> Any:
    """kfree_rcu of P0 and P1 on CPU 0, then the traced kernel's delayed
    kfree_bulk of ``completed`` (its classic batch: the lab's free_bulk
    kprobe, ``name=(fault)``)."""
    lines = ["# tracer: nop\n"]
    evs = [(1, _P0), (0, _P1)] if with_p0 else [(0, _P1)]
    t = 1.0
    for cpu, p in evs:
        lines.append(
            _rcu_line(
                cpu,
                t,
                "kmalloc",
                f"call_site=f+0x1/0x2 ptr={p:x} bytes_req=64 bytes_alloc=64 "
                "gfp_flags=GFP_KERNEL node=-1 accounted=false",
            )
        )
        lines.append(
            _rcu_line(
                0,
                t + 0.1,
                "kfree_rcu",
                f"(kvfree_call_rcu+0x0/0x2aa) ptr=0x{p:x} head=0x0 caller=z",
            )
        )
        t += 0.2
    lines.append(
        _rcu_line(
            1,
            t,
            "free_bulk",
            "(kmem_cache_free_bulk+0x0/0x3fa) size=1 name=(fault) "
            f"caller=kvfree_rcu_bulk objs={{0x{completed:x}}}",
        )
    )
    f = tmp_path / "t.txt"
    f.write_text("".join(lines))
    st = ingest(f)
    st.meta["kernel_version"] = "7.3"
    st.meta["machine"] = {"cpus": 2, "nodes": 2, "cpu_nodes": [0, 1]}
    return st


@pytest.mark.parametrize(
    ("completed", "with_p0", "expect"),
    [
        (_P0, True, {}),  # the model batched P0 too: freed there
        (_P1, True, {"rcu_completion_substituted": 1}),  # P1 is in an rcu sheaf: P0 goes
        (_P1, False, {"rcu_completion_skipped": 1}),  # nothing batched: nothing to free
    ],
)
@pytest.mark.parametrize("hit", [False, True])
def test_traced_batch_frees_drain_the_model_batch(
    tmp_path: Path, completed: int, with_p0: bool, expect: dict[str, int], hit: bool
) -> None:
    """P0 is remote for CPU 0 (the model's classic kvfree_rcu batch), P1
    local (its rcu_free sheaf).  The traced kernel's batch free of an object
    (on CPU 1) frees the model's batched object of that cache: the same one
    when the model batched it, else the longest-queued one (the kernel put
    objects on other nodes than the model), else nothing.  P0 freed there
    counts on CPU 1 (kfree_bulk: FREE_SLOWPATH); left to the end of the
    replay it would be drained on CPU 0, the CPU that batched it."""
    st = _rcu_trace(tmp_path, completed, with_p0)
    assert st.columns["flags"].tolist()[-1] == F_RCU_COMPLETION
    rp = Replayer(st, ReplayOptions(validate=True, gp_interval=10.0, hit_path=hit))
    res = rp.run()
    assert {k: v for k, v in rp.warnings.items() if v} == expect
    c = res["caches"]["kmalloc-64"]["counters"]
    assert c["free_rcu_sheaf"] == 1  # P1
    slow = res["caches"]["kmalloc-64"]["counters_per_cpu"]["free_slowpath"]
    assert slow == ({"1": 1} if with_p0 else {})
