"""``slubsim validate``: the model against the kernel's own counters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import EXAMPLE_A, KMALLOC64_SYSFS, TRACES, needs_shared
from slubsim.bundle import BundleMeta
from slubsim.cli import main, sample_trace
from slubsim.trace.ingest import ingest
from slubsim.validate import (
    KEY_COUNTERS,
    partial_before,
    rcu_balance_before,
    rcu_sheaves_untraced,
    rel_error,
    sheaf_occupancy_before,
    sheaves_before,
    state_number,
    traced_during_reads,
    traced_until_first_read,
    validate_bundle,
)


def _trace_writer() -> tuple[list[str], Callable[[str], None]]:
    """The lines of a one-CPU ftrace text and a function appending an event
    a microsecond after the previous one."""
    lines = ["# tracer: nop\n", "# entries-in-buffer/entries-written: 1/1   #P:1\n"]
    ts = [1.0]

    def ev(text: str) -> None:
        ts[0] += 0.000001
        lines.append(f"  slablab-1 [000] .....  {ts[0]:.6f}: {text}\n")

    return lines, ev


def make_bundle(
    tmp: Path, deltas: dict[str, int], state: dict[str, dict[str, str]] | None = None
) -> Path:
    """Worked example A (spec 9.4, without the shrink) on kmalloc-64 between
    reads of the counters ``deltas`` (the kernel's values) and, with
    ``state`` (``{"before"|"after": {file: contents}}``), of those state files."""
    b = tmp / "bundle"
    b.mkdir()
    (b / "meta.json").write_text(
        json.dumps({"kernel_release": "7.3.4", "vcpus": 1, "numa_nodes": []})
    )
    cfg = KMALLOC64_SYSFS
    stats = {
        k: {"before": 0, "after": v, "delta": v, "delta_per_cpu": {"0": v}}
        for k, v in deltas.items()
    }
    info: dict[str, Any] = {"names": ["kmalloc-64"], "config": cfg, "stats": stats}
    if state:
        info["state_before"] = state["before"]
        info["state_after"] = state["after"]
    (b / "slab_stats.json").write_text(json.dumps({":0000064": info}))
    lines, ev = _trace_writer()
    reads = list(deltas) + list((state or {}).get("before", {}))
    for k in reads:
        ev(f"tracing_mark_write: LAB_READ before :0000064 {k}")
    ptrs = [0xFFFF888100000000 + i * 64 for i in range(100)]
    for p in ptrs:
        ev(
            f"kmalloc: call_site=f+0x1/0x2 ptr={p:x} bytes_req=64 bytes_alloc=64 "
            "gfp_flags=GFP_KERNEL node=-1 accounted=false"
        )
    for p in ptrs:
        ev(f"kfree: call_site=g+0x1/0x2 ptr={p:x}")
    for k in reads:
        ev(f"tracing_mark_write: LAB_READ after :0000064 {k}")
    (b / "trace.txt").write_text("".join(lines))
    return b


def test_rcu_sheaves_filled_by_counters_against_completions_traced(tmp_path: Path) -> None:
    """Full rcu sheaves the kernel's free_rcu_sheaf delta implies over the
    window of its reads, against the rcu_free_sheaf completions traced inside
    that window only."""
    from slubsim.trace.ingest import ingest

    lines, ev = _trace_writer()
    done = '(rcu_free_sheaf+0x0/0xa6) sheaf=0xffff888100e89400 size=32 name="maple_node"'
    ev(
        "kmem_cache_alloc: call_site=f+0x1/0x2 ptr=ffff888100010000 name=maple_node "
        "bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 accounted=false"
    )
    ev(f"rcu_free_sheaf: {done}")  # before the window: not counted
    ev("tracing_mark_write: LAB_READ before maple_node free_rcu_sheaf")
    for _ in range(3):
        ev(f"rcu_free_sheaf: {done}")
    ev("tracing_mark_write: LAB_READ after maple_node free_rcu_sheaf")
    ev(f"rcu_free_sheaf: {done}")
    st = ingest(write_trace(tmp_path, "".join(lines)))
    stats = {"free_rcu_sheaf": {"before": 0, "after": 165, "delta": 165}}
    kstats = {"maple_node": {"config": {"sheaf_capacity": "32"}, "stats": stats}}
    assert rcu_sheaves_untraced(st, kstats) == {
        "maple_node": {"filled_by_counters": 5, "traced": 3}
    }
    # no sheaves (capacity 0) or no such counter: nothing to say
    kstats["maple_node"]["config"]["sheaf_capacity"] = "0"
    assert rcu_sheaves_untraced(st, kstats) == {}
    assert rcu_sheaves_untraced(st, {"maple_node": {"config": {"sheaf_capacity": "32"}}}) == {}


def test_counters_taken_back_to_the_first_read(tmp_path: Path) -> None:
    """The lab reads a cache's attributes one after another and each read
    allocates and frees (a seq_file page): the counters read after the first
    have moved by the traced events in between, which the balance takes
    back out."""
    from slubsim.trace.ingest import ingest

    lines, ev = _trace_writer()

    def page(i: int) -> None:
        p = 0xFFFF888100200000 + i * 0x1000
        ev(
            f"kmalloc: call_site=f+0x1/0x2 ptr={p:x} bytes_req=4096 bytes_alloc=4096 "
            "gfp_flags=GFP_KERNEL node=-1 accounted=false"
        )
        ev(f"kfree: call_site=g+0x1/0x2 ptr={p:x}")

    ev("tracing_mark_write: LAB_READ before kmalloc-4k aliases")
    page(0)
    ev("tracing_mark_write: LAB_READ before kmalloc-4k alloc_fastpath")
    for i in range(1, 4):
        page(i)
    ev("tracing_mark_write: LAB_READ before kmalloc-4k free_fastpath")
    page(4)
    ev("tracing_mark_write: LAB_READ before kmalloc-4k sheaf_refill")
    st = ingest(write_trace(tmp_path, "".join(lines)))
    during = traced_during_reads(st)
    assert during == {"kmalloc-4k": {"alloc_fastpath": {0: 1}, "free_fastpath": {0: 4}}}
    rows = [
        "kmalloc-4k\tsheaf_capacity\t4",
        "kmalloc-4k\tsheaf_refill\t8 C0=8",
        "kmalloc-4k\talloc_fastpath\t100 C0=100",
        "kmalloc-4k\tfree_fastpath\t102 C0=102",
    ]
    (tmp_path / "slab_before.tsv").write_text("\n".join(rows) + "\n")
    # read as they are, 8 + 102 - 100 = 10 objects in two sheaves of 4: left out
    assert sheaf_occupancy_before(tmp_path) == {}
    # at the first read, 8 + (102 - 4) - (100 - 1) = 7
    assert sheaf_occupancy_before(tmp_path, None, during)["kmalloc-4k"] == {0: 7, -1: 0}


def write_trace(tmp: Path, text: str) -> Path:
    p = tmp / "t.txt"
    p.write_text(text)
    return p


def test_rel_error() -> None:
    assert rel_error(0, 0) == 0 and rel_error(1, 0) == 1.0 and rel_error(99, 100) == 0.01


def test_validation_of_a_spec_scenario(tmp_path: Path) -> None:
    res = validate_bundle(make_bundle(tmp_path, EXAMPLE_A))
    c = res["caches"]["kmalloc-64"]
    assert c["sysfs_dir"] == ":0000064"
    for k, v in EXAMPLE_A.items():
        assert c["counters"][k] == {
            "kernel": v,
            "model": v,
            "rel_error": 0.0,
            "model_pretrace_ignored": v,
        }, k
    assert res["summary"] == {
        "counters_compared": len(EXAMPLE_A),
        "exact": len(EXAMPLE_A),
        "within_1pct": len(EXAMPLE_A),
        "within_5pct": len(EXAMPLE_A),
    }


def test_validation_reports_a_wrong_kernel_value(tmp_path: Path) -> None:
    deltas = dict(EXAMPLE_A, sheaf_refill=121)  # one object off: 0.8 %
    res = validate_bundle(make_bundle(tmp_path, deltas))
    s = res["summary"]
    assert s["exact"] == len(deltas) - 1 and s["within_1pct"] == len(deltas)
    r = CliRunner().invoke(main, ["validate", str(tmp_path / "bundle")])
    assert r.exit_code == 0
    assert "sheaf_refill" in r.stdout and "-1" in r.stdout


#: sysfs state of worked example A's cache before its first allocation and
#: after its 100 frees (spec 9.4): S1 full and off the lists, S2 with 56 in
#: use on the node partial list (8 free), the objects in the sheaves in use
EXAMPLE_A_STATE = {
    "before": {
        "slabs": "0",
        "total_objects": "0",
        "objects": "0",
        "partial": "0",
        "objects_partial": "0",
        "cpu_slabs": "0",
        "slabs_cpu_partial": "0(0)",
    },
    "after": {
        "slabs": "2",
        "total_objects": "128",
        "objects": "120",
        "partial": "1",
        "objects_partial": "56",
        "cpu_slabs": "0",
        "slabs_cpu_partial": "0(0)",
    },
}


def test_state_files_are_compared_at_the_same_reads(tmp_path: Path) -> None:
    res = validate_bundle(make_bundle(tmp_path, EXAMPLE_A, EXAMPLE_A_STATE))
    st = res["caches"]["kmalloc-64"]["state"]
    assert set(st) == set(EXAMPLE_A_STATE["after"])
    assert st["slabs"] == {
        "before": {"kernel": "0", "model": "0"},
        "after": {"kernel": "2", "model": "2"},
        "delta": {"kernel": 2, "model": 2},
    }
    assert st["objects"]["after"] == {"kernel": "120", "model": "120"}
    assert st["objects_partial"]["delta"] == {"kernel": 56, "model": 56}
    assert st["slabs_cpu_partial"]["after"]["model"] == "0(0)"
    n = len(EXAMPLE_A_STATE["after"])
    assert res["summary_state"] == {
        "before": {"compared": n, "same": n},
        "after": {"compared": n, "same": n},
        "delta": {"compared": n, "exact": n, "within_5pct": n},
    }
    # the counters are still those of the example
    assert res["summary"]["exact"] == len(EXAMPLE_A)


def test_state_files_read_otherwise_are_listed(tmp_path: Path) -> None:
    state = {
        "before": EXAMPLE_A_STATE["before"],
        "after": dict(EXAMPLE_A_STATE["after"], slabs="3"),
    }
    b = make_bundle(tmp_path, EXAMPLE_A, state)
    res = validate_bundle(b)
    assert res["caches"]["kmalloc-64"]["state"]["slabs"]["delta"] == {"kernel": 3, "model": 2}
    n = len(state["after"])
    s = res["summary_state"]
    assert s["after"] == {"compared": n, "same": n - 1}
    assert s["delta"] == {"compared": n, "exact": n - 1, "within_5pct": n - 1}
    r = CliRunner().invoke(main, ["validate", str(b), "--state"])
    assert r.exit_code == 0, r.output
    assert "as the kernel's at the first read 7 of 7, at the last 6 of 7" in r.stdout
    row = next(line for line in r.stdout.splitlines() if " slabs " in line and "->" in line)
    assert "0 -> 3" in row and "0 -> 2" in row and "+3" in row and "+2" in row
    assert "objects_partial" not in r.stdout  # read as the kernel did: not listed
    r = CliRunner().invoke(main, ["validate", str(b), "--state", "--all"])
    assert "objects_partial" in r.stdout


def test_state_table_says_when_no_state_file_was_read(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["validate", str(make_bundle(tmp_path, EXAMPLE_A)), "--state"])
    assert r.exit_code == 0, r.output
    assert "state files: none read inside the trace" in r.stdout


def test_state_number() -> None:
    assert state_number("39") == 39
    assert state_number("8 N0=5 N1=3") == 8
    assert state_number("84(8) C1=42(4) C2=42(4)") == 8
    assert state_number("0(0)") == 0
    assert state_number("") is None


def test_unknown_generation_is_skipped_with_a_reason(tmp_path: Path) -> None:
    b = make_bundle(tmp_path, EXAMPLE_A)
    (b / "meta.json").write_text(json.dumps({"kernel_version": "5.10", "vcpus": 1}))
    res = validate_bundle(b)
    assert "no model of that generation yet" in res["skipped"]


@needs_shared
def test_boot_bundle_fidelity_does_not_regress() -> None:
    """The boot-traced bundle (no unknown initial state): fidelity reached by this
    version of the model; raise the floor when the model improves."""
    res = validate_bundle(TRACES / "boot-mixed-4cpu")
    s = res["summary"]
    assert s["counters_compared"] >= 1900
    assert s["exact"] / s["counters_compared"] >= 0.98
    k = res["summary_key_counters_busy_caches"]
    # exact 95.5 %, within 1 % 97.7 %, within 5 % 99.4 %: exact / within 5 %
    # 92.6 / 94.9 % before a reuse before the lab kprobes was a plain free on
    # the reusing CPU (93.2 / 95.5 %), lost rcu_free_sheaf events were found
    # and completed (slubsim.rcu_align; 94.9 / 97.7 %), an object live at the
    # probes' start and reused later was freed plainly there rather than as
    # kfree_rcu (F_EARLY; 95.5 / 98.3 %) and allocations before the probes at
    # a prefilled-sheaf call site came from inferred sessions (F_PREFILLED)
    # (95.5 / 97.7 % within 1 %); a second pass from the counters taken back
    # to each cache's first read and the lost completion of the last batch
    # found: 96.6 / 98.9 % -- only maple_node alloc_slab and free_slab left
    assert k["exact"] / k["counters_compared"] >= 0.965
    assert k["within_1pct"] / k["counters_compared"] >= 0.985
    assert k["within_5pct"] / k["counters_compared"] >= 0.99
    misses = {
        (name, item)
        for name, cache in res["caches"].items()
        if cache["events"] >= 5000
        for item, v in cache["counters"].items()
        if item in KEY_COUNTERS and rel_error(v["model"], v["kernel"]) > 0.01
    }
    assert misses <= {("maple_node", "alloc_slab"), ("maple_node", "free_slab")}, misses
    # the state files at the reads: traced from boot, the model's slabs and
    # objects change between the first and last read as the kernel's in 105
    # of the 112 files of the busy caches; at the first read maple_node holds
    # 761 objects in 48 slabs where the kernel had 557 in 39 (objects live
    # when the lab kprobes started and never seen again: their kfree_rcu or
    # bulk free was not traced), kmalloc-64 3,108 slabs where it had 4,138
    # (boot allocations before the trace began)
    st = res["summary_state_busy_caches"]
    assert st["delta"]["compared"] >= 110
    assert st["delta"]["exact"] / st["delta"]["compared"] >= 0.93
    ms = res["caches"]["maple_node"]["state"]
    assert ms["slabs"]["before"]["kernel"] == "39" and ms["objects"]["before"]["kernel"] == "557"
    # kmalloc-96: 28 objects in CPU 0's sheaves at its first read by the
    # counters, 32 replayed; with 28 CPU 0 takes the kernel's 53rd barn sheaf,
    # and the 65th rcu sheaf's completion, lost in the last batch, reaches the
    # barn as the kernel's did
    kc = res["caches"]["kmalloc-96"]["counters"]
    for item in ("barn_get", "barn_put", "barn_put_fail", "sheaf_flush"):
        assert kc[item]["model"] == kc[item]["kernel"], item
    assert res["warmup"]["second_pass"][":0000096"]["0"] == 28
    # maple_node: those early frees as kfree_rcu kept 11 rcu sheaves in flight
    # for the whole trace (no traced completion matched them): alloc_slab 86
    # of 77, barn_get_fail 2 of 0; now within 2 % and exact.  Its 518
    # dst_setup allocations before the probes as plain allocations left its
    # sheaves and barn off for the whole window (barn_put 118 of 105,
    # sheaf_flush -3.4 %); as sessions, the sheaf traffic is within 1 %
    mn = res["caches"]["maple_node"]["counters"]
    for counter in ("sheaf_refill", "sheaf_flush", "barn_get", "barn_put", "barn_put_fail"):
        v = mn[counter]
        assert abs(v["model"] - v["kernel"]) <= 0.01 * v["kernel"], (counter, v)
    assert (
        abs(mn["alloc_slab"]["model"] - mn["alloc_slab"]["kernel"])
        <= 0.02 * mn["alloc_slab"]["kernel"]
    )
    assert mn["barn_get_fail"]["model"] == mn["barn_get_fail"]["kernel"]
    # the return_sheaf kprobe's size: at 68.5 % of the 3,544 traced returns
    # the model's prefilled sheaf held the kernel's count (the first differs
    # 3 ms after the lab kprobes start: the spare's blind-phase history)
    sr = res["lockstep"]["sheaf_returns"]
    assert sr["checked"] == 3544 and sr["share"] >= 0.68
    fd = res["lockstep"]["caches"]["maple_node"]["sheaf_returns"]["first_divergence"]
    assert fd is not None and fd["ts"] < 6.0
    # kmalloc-96 missed one flush of 60 objects (lost completions): now its
    # key counters are all within one count
    for counter in KEY_COUNTERS:
        v = res["caches"]["kmalloc-96"]["counters"][counter]
        assert abs(v["model"] - v["kernel"]) <= 1, (counter, v)
    # the busiest caches outside the kfree_rcu-heavy ones are exact
    for name in ("kmalloc-192", "filp", "vm_area_struct", "shmem_inode_cache", "anon_vma"):
        for counter in KEY_COUNTERS:
            v = res["caches"][name]["counters"][counter]
            assert v["kernel"] == v["model"], (name, counter, v)


@needs_shared
@pytest.mark.parametrize(
    ("run", "key_floor"),
    [
        ("mixed-4cpu", 0.98),
        ("net-4cpu", 1.0),
        ("forkfiles-2cpu", 0.96),
        ("mixed-4cpu-numa2", 0.96),
    ],
)
def test_traced_after_boot_fidelity_floor(run: str, key_floor: float) -> None:
    """Sheaves and barns set from the kernel's counters (the default off boot):
    floors reached by this version."""
    res = validate_bundle(TRACES / run)
    s = res["summary"]
    assert s["within_5pct"] / s["counters_compared"] >= 0.96
    k = res["summary_key_counters_busy_caches"]
    assert k["within_5pct"] / k["counters_compared"] >= key_floor


@needs_shared
def test_numa_rcu_sheaves_the_kernel_never_submitted_are_run() -> None:
    """numa2 maple_node: the model fills more rcu sheaves than the kernel
    (fewer of its objects are remote); run one per traced completion, 15 of
    them never ran and their objects made 151 new slabs where the kernel made
    127, 37 sheaf structs where it made 19 (slubsim.rcu_align.overdue_bounds)."""
    res = validate_bundle(TRACES / "mixed-4cpu-numa2")
    c = res["caches"]["maple_node"]["counters"]
    assert rel_error(c["alloc_slab"]["model"], c["alloc_slab"]["kernel"]) <= 0.05
    assert abs(c["sheaf_alloc"]["model"] - c["sheaf_alloc"]["kernel"]) <= 5
    assert rel_error(c["free_rcu_sheaf"]["model"], c["free_rcu_sheaf"]["kernel"]) <= 0.01


@needs_shared
def test_numa_kernel_batch_frees_drain_the_model_batch() -> None:
    """numa2 maple_node: the kernel batched 515 kfree_rcu'd objects (remote
    ones) that the model mostly kept in rcu sheaves, and the model batched
    others; freeing only the objects both batched left the model's batch
    holding its own until the end (free_slowpath 465 of the kernel's 727,
    free_slab 18 of 33).  Each traced batch free the model cannot match now
    frees its longest-queued batched object of the cache."""
    res = validate_bundle(TRACES / "mixed-4cpu-numa2")
    c = res["caches"]["maple_node"]["counters"]
    assert rel_error(c["free_slowpath"]["model"], c["free_slowpath"]["kernel"]) <= 0.06
    assert c["free_slab"]["model"] >= 25 and c["free_remove_partial"]["model"] >= 25
    assert res["rcu_batch_frees"]["substituted"] >= 500
    assert res["rcu_batch_frees"]["skipped"] <= 10


@needs_shared
def test_numa_warm_up_counts_the_sheaves_objects_once() -> None:
    """numa2: at its first read the warm-up left vm_area_struct 18 slabs where
    the kernel had 10 (its sheaves' 88 objects in slabs of their own beside
    the partial slabs' made-up users); slabs whose objects in use are all
    such are given back (SheavesLayer._trim_warm_slabs).  Its sheaves are
    now found among the traced pointers, in slabs rebuilt around them, and
    sysfs says every slab of its node 1 was partial: the model's own slabs
    are kept there, the full one made partial (SheavesLayer._all_partial);
    made full, it took two remote frees and put node 1 over min_partial, and
    CPU 0's refill raided it (one refill fewer than the kernel, 29 frees on
    the wrong path)."""
    res = validate_bundle(TRACES / "mixed-4cpu-numa2")
    c = res["caches"]["vm_area_struct"]["counters"]
    for item in ("sheaf_refill", "free_fastpath", "free_slowpath", "barn_get_fail", "alloc_slab"):
        assert c[item]["model"] == c[item]["kernel"], (item, c[item])
    assert res["warmup"]["all_partial_nodes_kept"]["vm_area_struct"] == [1, 1]
    assert sum(res["warmup"]["slabs_given_back"].values()) >= 15
    assert res["warmup"]["rcu_sheaves_run_overdue"] >= 10
    k = res["summary_key_counters_busy_caches"]
    assert k["within_5pct"] / k["counters_compared"] >= 0.96
    r = CliRunner().invoke(main, ["validate", str(TRACES / "mixed-4cpu-numa2")])
    assert r.exit_code == 0
    out = " ".join(r.stdout.split())
    assert "given back where the sheaves' objects were counted twice" in out
    assert "full slabs made partial on" in out
    assert "rcu sheaves the trace never shows completing run where the kernel had" in out


@needs_shared
def test_numa_sheaves_at_the_start_pass_over_remote_frees() -> None:
    """numa2: a free of another node's object goes to its slab, not into the
    freeing CPU's sheaf; counting such frees as pushes undercounted what the
    sheaves held when tracing began (vm_area_struct CPU 2: 11 remote frees
    before its first read, 3 objects instead of 14) and ended the search for
    them at the first one (kmalloc-rcl-192 CPU 0: 3 of 56 found, so the
    kernel's pre-trace sheaf with 12 objects of node 1, handed out and freed
    remotely, was missing: free_slowpath 58 of 69).  Now both are exact, and
    more allocations get the kernel's own object."""
    st = ingest(TRACES / "mixed-4cpu-numa2")
    plain = traced_until_first_read(st, {"vm_area_struct"})["vm_area_struct"]
    local = traced_until_first_read(st, {"vm_area_struct"}, sheaf_frees_only=True)
    assert plain[2][1] - local["vm_area_struct"][2][1] == 11
    res = validate_bundle(TRACES / "mixed-4cpu-numa2", store=st)
    c = res["caches"]["kmalloc-rcl-192"]["counters"]
    for item in ("free_fastpath", "free_slowpath", "sheaf_refill"):
        assert c[item]["model"] == c[item]["kernel"], (item, c[item])
    assert res["lockstep"]["share"] >= 0.37


@needs_shared
def test_validate_names_rcu_completions_missing_from_the_trace() -> None:
    """forkfiles: the kernel filled 1,061 maple_node rcu sheaves (33,955
    kfree_rcu objects, 32 a sheaf, barn_put + barn_put_fail = 1,061 too) but
    the trace shows 1,033 rcu_free_sheaf completions: 28 kprobe hits missed,
    which validate names.  The replay finds 26 of them by aligning the
    submissions with the completions (slubsim.rcu_align) and completes 1,059
    sheaves, where it completed exactly the traced 1,033 before."""
    res = validate_bundle(TRACES / "forkfiles-2cpu")
    assert res["rcu_sheaves"]["maple_node"] == {"filled_by_counters": 1061, "traced": 1033}
    c = res["caches"]["maple_node"]["counters"]
    assert c["barn_put"]["kernel"] + c["barn_put_fail"]["kernel"] == 1061
    assert 1055 <= c["barn_put"]["model"] + c["barn_put_fail"]["model"] <= 1061
    assert abs(c["sheaf_alloc"]["model"] - c["sheaf_alloc"]["kernel"]) <= 3  # 32 vs 9 before
    r = CliRunner().invoke(main, ["validate", str(TRACES / "forkfiles-2cpu")])
    assert r.exit_code == 0
    assert "never shows completing: maple_node 28" in " ".join(r.stdout.split())


@needs_shared
def test_barn_counted_for_a_cache_with_rcu_and_prefilled_sheaves() -> None:
    """forkfiles maple_node: kfree_rcu and prefilled sheaves hide what each
    CPU's sheaves held, but its barn held 10 full sheaves by the counters.
    Without them the model refilled from slabs and made 141 slabs where the
    kernel made 96 (barn_get_fail 3 where the kernel had none)."""
    res = validate_bundle(TRACES / "forkfiles-2cpu")
    c = res["caches"]["maple_node"]["counters"]
    assert c["alloc_slab"]["kernel"] == 96 and c["alloc_slab"]["model"] <= 106
    assert c["barn_get_fail"]["model"] == c["barn_get_fail"]["kernel"] == 0
    for item in ("barn_get", "barn_put", "sheaf_refill", "sheaf_flush"):
        assert rel_error(c[item]["model"], c[item]["kernel"]) <= 0.01, item


def test_rcu_balance_counts_the_rcu_sheaves_in(tmp_path: Path) -> None:
    """A kfree_rcu cache without prefills: per CPU, objects into its sheaves
    (rcu ones included) less objects out, its cumulative free_rcu_sheaf, and
    the barns; not for caches the plain balance covers or with prefills."""
    rows = [
        "kmalloc-96\tsheaf_capacity\t60",
        "kmalloc-96\tsheaf_refill\t1140 C0=1080 C1=60",
        "kmalloc-96\tfree_fastpath\t1129 C0=1129",
        "kmalloc-96\talloc_fastpath\t2262 C0=2239 C1=23",
        "kmalloc-96\tfree_rcu_sheaf\t547 C0=547",
        "kmalloc-96\tbarn_put\t1 C0=1",
        "kmalloc-96\tbarn_get\t1 C0=1",
        "filp\tsheaf_capacity\t60",
        "filp\tsheaf_refill\t60 C0=60",
        "filp\talloc_fastpath\t10 C0=10",
        "maple_node\tsheaf_capacity\t32",
        "maple_node\tsheaf_refill\t64 C0=64",
        "maple_node\tfree_rcu_sheaf\t100 C0=100",
        "maple_node\tsheaf_prefill_slow\t1 C0=1",
    ]
    (tmp_path / "slab_before.tsv").write_text("\n".join(rows) + "\n")
    bal = rcu_balance_before(tmp_path)
    assert bal == {
        "kmalloc-96": {
            0: 1080 + 1129 + 547 + 60 - 2239 - 60,
            1: 60 - 23,
            -1000: 547,
            -1001: 0,
            -1: 0,
        }
    }


@needs_shared
def test_the_reads_own_allocations_are_taken_out_of_the_warm_up() -> None:
    """net-4cpu: each sysfs read allocates and frees a seq_file page on the
    reading CPU, so kmalloc-4k's free_fastpath, read 16 attributes after its
    first read, said 17 objects sat in that CPU's two sheaves of 4; taken back
    to the first read, 1.  Left out as inconsistent, the cold model refilled
    12 objects where the kernel refilled 4."""
    res = validate_bundle(TRACES / "net-4cpu")
    c = res["caches"]["kmalloc-4k"]["counters"]
    for item in ("sheaf_refill", "barn_get_fail", "alloc_slab", "barn_get", "barn_put"):
        assert c[item]["model"] == c[item]["kernel"], item
    k = res["summary_key_counters_busy_caches"]
    assert k["exact"] / k["counters_compared"] >= 0.99


@needs_shared
def test_second_pass_from_the_counters_taken_back_by_the_replay() -> None:
    """net-4cpu: kmalloc-96's and inode_cache's refills and barn exchanges
    during the lab's reads are not traced; a first replay measures its own,
    takes the kernel's counters back to each cache's first read by them and
    replays again where the sheaves differ there: every key counter of the
    busy caches exact (one pass: inode_cache 840 refilled objects, the
    kernel 728)."""
    runner = CliRunner()
    one = runner.invoke(main, ["validate", str(TRACES / "net-4cpu"), "--one-pass", "--json", "-"])
    two = runner.invoke(main, ["validate", str(TRACES / "net-4cpu"), "--json", "-"])
    assert one.exit_code == 0 and two.exit_code == 0
    r1, r2 = json.loads(one.stdout), json.loads(two.stdout)
    assert r1["warmup"]["second_pass"] == {}
    assert set(r2["warmup"]["second_pass"]) == {":0000096", "inode_cache"}
    ic1 = r1["caches"]["inode_cache"]["counters"]["sheaf_refill"]
    ic2 = r2["caches"]["inode_cache"]["counters"]["sheaf_refill"]
    assert (ic1["kernel"], ic1["model"], ic2["model"]) == (728, 840, 728)
    k = r2["summary_key_counters_busy_caches"]
    assert k["exact"] == k["counters_compared"]
    text = runner.invoke(main, ["validate", str(TRACES / "net-4cpu")])
    assert "replayed again with the sheaves of 2 caches" in " ".join(text.stdout.split())


@needs_shared
def test_rcu_sheaves_waiting_at_the_first_read_are_counted_out() -> None:
    """forkfiles kmalloc-96: the lab's sysfs reads kfree_rcu one object each,
    so at the cache's first read 8 of its rcu sheaves waited for a grace
    period and the per-CPU balance (517 objects on CPU 0) was no use alone;
    less what the model has waiting and the 17 objects the rcu_free sheaf
    held before the trace, CPU 0's sheaves held 30.  Left cold, the model
    refilled 240 objects where the kernel refilled 300."""
    res = validate_bundle(TRACES / "forkfiles-2cpu")
    c = res["caches"]["kmalloc-96"]["counters"]
    for item in ("sheaf_refill", "alloc_slab", "barn_get", "free_rcu_sheaf"):
        assert c[item]["model"] == c[item]["kernel"], item


@needs_shared
def test_numa_bundle_rebuilds_slabs_on_the_node_of_their_memory() -> None:
    """numa2: rebuilt pre-trace slabs sit on the node their memory belongs
    to (dmesg memory map, nokaslr pointers), which decides remote frees: key
    counters exact 77.3 % on the CPU's node, 78.8 % on the memory's."""
    res = validate_bundle(TRACES / "mixed-4cpu-numa2")
    k = res["summary_key_counters_busy_caches"]
    assert k["exact"] / k["counters_compared"] >= 0.78


@needs_shared
def test_warm_first_use_helps_a_trace_not_taken_from_boot() -> None:
    from slubsim.trace.ingest import ingest

    st = ingest(TRACES / "mixed-4cpu")
    cold = validate_bundle(TRACES / "mixed-4cpu", store=st, warm_from_counters=False)
    warm = validate_bundle(
        TRACES / "mixed-4cpu", store=st, warm_first_use=True, warm_from_counters=False
    )
    k0 = cold["summary_key_counters_busy_caches"]
    k1 = warm["summary_key_counters_busy_caches"]
    assert k1["exact"] > k0["exact"]
    assert warm["warmup"]["warm_first_use"] is True


@needs_shared
def test_612_boot_bundle_fidelity_does_not_regress() -> None:
    """The 6.12 classic model against the real 6.12.117 kernel, traced from boot
    (1.42 s in: the slabs boot was using are rebuilt from the pointers)."""
    res = validate_bundle(TRACES / "v612-boot-mixed-4cpu")
    assert res["kernel"] == "6.12"
    s = res["summary"]
    assert s["counters_compared"] >= 1700
    assert s["exact"] / s["counters_compared"] >= 0.98
    k = res["summary_key_counters_busy_caches"]
    assert k["within_5pct"] / k["counters_compared"] >= 0.97
    c612 = res["summary_classic_counters_busy_caches"]
    assert c612["counters_compared"] >= 300
    # 97.5 %: 96.3 % before frees of bulk-allocated maple nodes were bound to
    # the bulk call of their slab, else the oldest (kmalloc-256)
    assert c612["within_5pct"] / c612["counters_compared"] >= 0.97
    assert res["lockstep"]["share"] >= 0.95
    # ... not the latest call, often another CPU's: FREE_FROZEN 1,061 then
    ff = res["caches"]["kmalloc-256"]["counters"]["free_frozen"]
    assert ff["kernel"] == 63 and ff["model"] <= 350
    for name in ("kmalloc-64", "filp", "kmalloc-4k", "vm_area_struct"):
        assert res["lockstep"]["caches"][name]["share"] >= 0.97, name
    # every shmem_inode_cache counter exact once the allocation made during
    # an rcu_core softirq is replayed before its frees (key exact 90.2 -> 94.1 %)
    assert res["allocs_during_irq"] >= 1
    sh = res["caches"]["shmem_inode_cache"]["counters"]
    assert all(v["model"] == v["kernel"] for v in sh.values())
    assert k["exact"] / k["counters_compared"] >= 0.94
    assert c612["exact"] / c612["counters_compared"] >= 0.95
    # state files: changed between the first and last read as the kernel's
    # in 112 of the 119 of the busy caches
    st = res["summary_state_busy_caches"]
    assert st["delta"]["compared"] >= 115
    assert st["delta"]["exact"] / st["delta"]["compared"] >= 0.93


def test_sheaf_occupancy_from_per_cpu_counters(tmp_path: Path) -> None:
    """refilled + freed to sheaves + barn gets - allocated - flushed - barn puts,
    per CPU; an inconsistent balance (rcu/prefilled sheaves) leaves the CPUs
    out -- and the barns too where the counters, rcu sheaves counted in, do
    not close."""
    rows = [
        "@alias\tkmalloc-192\t:0000192",
        "filp\tsheaf_capacity\t60",
        "filp\tsheaf_refill\t180 C0=120 C1=60",
        "filp\tfree_fastpath\t100 C0=90 C1=10",
        "filp\talloc_fastpath\t150 C0=100 C1=50",
        "filp\tbarn_get\t1 C1=1",
        "filp\tbarn_put\t1 C0=1",
        "filp\tsheaf_flush\t0",
        "filp\tctor\t",
        "kmalloc-64\tsheaf_capacity\t32",
        "kmalloc-64\tsheaf_refill\t32 C0=32",
        "kmalloc-64\talloc_fastpath\t90 C0=90",
        # kfree_rcu and prefilled sheaves: the CPUs' sheaves unknown, the barn
        # counted (rcu sheaves put 3 full sheaves in, a prefill took one)
        "maple_node\tsheaf_capacity\t32",
        "maple_node\tsheaf_refill\t64 C0=64",
        "maple_node\talloc_fastpath\t10 C0=10",
        "maple_node\tfree_rcu_sheaf\t100 C0=100",
        "maple_node\tbarn_put\t3 C0=3",
        "maple_node\tbarn_get\t1 C0=1",
        "maple_node\tsheaf_prefill_slow\t1 C0=1",
        # kfree_rcu without prefills whose counters do not close: 547 objects
        # went to rcu sheaves, one sheaf reached the barn (a booted 7.3
        # kmalloc-96): left out
        "kmalloc-96\tsheaf_capacity\t60",
        "kmalloc-96\tsheaf_refill\t60 C0=60",
        "kmalloc-96\talloc_fastpath\t60 C0=60",
        "kmalloc-96\tfree_rcu_sheaf\t547 C0=547",
        "kmalloc-96\tbarn_put\t1 C0=1",
    ]
    (tmp_path / "slab_before.tsv").write_text("\n".join(rows) + "\n")
    occ = sheaf_occupancy_before(tmp_path)
    # CPU 0 put a full sheaf into the barn, CPU 1 took one: none left (key -1: node 0)
    assert occ == {
        "filp": {0: 120 + 90 - 100 - 60, 1: 60 + 10 + 60 - 50, -1: 0},
        "maple_node": {-1: 2},
    }
    two_nodes = sheaf_occupancy_before(tmp_path, {0: 0, 1: 1})
    assert two_nodes["filp"][-1] == 1 and two_nodes["filp"][-2] == -1
    assert sheaf_occupancy_before(tmp_path / "missing") == {}


def test_sheaves_before_from_per_cpu_counters(tmp_path: Path) -> None:
    """The kernel's sheaf structs at the first read: sheaf_alloc - sheaf_free
    summed over CPUs (a sheaf freed on another CPU than it was made on
    counts the same); caches without the counter are left out."""
    rows = [
        "filp\tsheaf_alloc\t8 C0=5 C1=1 C2=1 C3=1",
        "filp\tsheaf_free\t2 C2=2",
        "maple_node\tsheaf_alloc\t3 C0=3",
        "kmalloc-8\talloc_fastpath\t10 C0=10",
    ]
    (tmp_path / "slab_before.tsv").write_text("\n".join(rows) + "\n")
    assert sheaves_before(tmp_path) == {"filp": 6, "maple_node": 3}
    assert sheaves_before(tmp_path / "missing") == {}


def test_sync_sheaf_count_adopts_spares_then_empty_barn_sheaves() -> None:
    """Sheaves the kernel's counters say exist and the model lacks become
    empty spares of the CPUs without one, then empty barn sheaves; no counter
    moves, the sheaf invariant holds, and a spare so made serves the next
    __pcs_replace_full_main instead of a SHEAF_ALLOC."""
    from slubsim import Kernel, Machine
    from slubsim.sheaves import SheavesLayer

    k = Kernel(Machine(cpus=4, nodes=2), version="7.3")
    s = k.kmem_cache_create("t", size=64, flags={"SLAB_NO_MERGE"})
    layer = s.layer
    assert isinstance(layer, SheavesLayer)
    objs = [s.alloc(cpu=1) for _ in range(layer.capacity + 1)]
    for p in objs:
        s.free(p, cpu=1)  # CPU 1's main filled: it has a spare now
    assert layer.pcs[1].spare is not None and layer.pcs[0].spare is None
    have = s.nr_sheaves
    stats = s.stats()
    assert layer.sync_sheaf_count(have) == 0  # nothing missing
    assert layer.sync_sheaf_count(have + 5) == 5
    assert [layer.pcs[c].spare is not None for c in range(4)] == [True] * 4
    assert [len(b.empty) for b in layer.barns if b is not None] == [1, 1]
    assert s.nr_sheaves == have + 5 and s.adopted_sheaves == 5
    assert s.stats() == stats
    k.validate()
    assert layer.sync_sheaf_count(have) == 0  # a surplus is left alone
    assert s.nr_sheaves == have + 5
    # CPU 0's main fills: the adopted empty spare takes over, no SHEAF_ALLOC
    objs = [s.alloc(cpu=0) for _ in range(layer.capacity + 1)]
    before = s.stats()["sheaf_alloc"]
    for p in objs:
        s.free(p, cpu=0)
    assert s.stats()["sheaf_alloc"] == before
    k.validate()


@needs_shared
def test_sheaf_count_from_counters_fixes_sheaf_alloc() -> None:
    """On a trace not taken from boot, topping the model's sheaves up to the
    kernel's count makes sheaf_alloc agree in caches where it did not (61 ->
    70 caches; since the sheaves at the start are found past remote frees,
    most of them exist without it: 68 -> 70)."""
    from slubsim.trace.ingest import ingest

    st = ingest(TRACES / "mixed-4cpu-numa2")
    on = validate_bundle(TRACES / "mixed-4cpu-numa2", store=st)
    off = validate_bundle(TRACES / "mixed-4cpu-numa2", store=st, sheaf_count_from_counters=False)

    def exact_sheaf_alloc(res: dict) -> int:  # type: ignore[type-arg]
        return sum(
            1
            for c in res["caches"].values()
            if (v := c["counters"].get("sheaf_alloc")) and v["model"] == v["kernel"]
        )

    assert exact_sheaf_alloc(on) >= max(exact_sheaf_alloc(off) + 2, 70)
    assert on["summary"]["exact"] >= 1868


@needs_shared
def test_warm_from_counters_on_a_trace_not_taken_from_boot() -> None:
    """Default for a bundle not traced from boot: sheaves set from the kernel's
    counters; it lifts key-counter agreement (floors reached by this version)."""
    from slubsim.trace.ingest import ingest

    st = ingest(TRACES / "mixed-4cpu")
    res = validate_bundle(TRACES / "mixed-4cpu", store=st)
    assert res["warmup"]["warm_from_counters"] is True
    assert len(res["warmup"]["caches_warmed_from_counters"]) > 50
    k = res["summary_key_counters_busy_caches"]
    assert k["exact"] / k["counters_compared"] >= 0.89
    cold = validate_bundle(TRACES / "mixed-4cpu", store=st, warm_from_counters=False)
    assert cold["summary_key_counters_busy_caches"]["exact"] < k["exact"]
    boot = BundleMeta.load(TRACES / "boot-mixed-4cpu")
    assert boot.traced_from_boot and not BundleMeta.load(TRACES / "mixed-4cpu").traced_from_boot


def test_partial_lists_before_the_trace() -> None:
    state = {"partial": "8 N0=5 N1=3", "objects_partial": "300 N0=201 N1=99"}
    assert partial_before(state, 64) == {0: (5, 5 * 64 - 201, -1), 1: (3, 3 * 64 - 99, -1)}
    assert partial_before({"partial": "1", "objects_partial": "18"}, 64) == {0: (1, 46, -1)}
    assert partial_before({}, 64) == {}


def test_sync_node_partial_builds_the_kernels_partial_list() -> None:
    """The model's partial list takes the kernel's shape (slabs, free objects)
    and every invariant still holds."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.ingest import ingest

    rp = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
    s = next(iter(rp.tracks.values())).model
    s.alloc(cpu=0)  # one partial slab of the model's own
    assert rp.sync_node_partial(s, {0: (3, 50, -1)}) == 3
    n = s.nodes[0]
    assert n is not None and n.nr_partial == 3
    assert sum(sl.objects - sl.inuse for sl in n.partial_slabs()) == 50
    rp.kernel.validate()


def test_sheaf_occupancy_is_made_at_the_bottom() -> None:
    """Syncing a CPU's sheaves to the kernel's occupancy keeps the top of its
    main sheaf (what it just freed, what it hands out next): the spare's
    objects under the main's are one stack, a shortfall goes under it and a
    surplus leaves from its bottom; beyond one sheaf-full the bottom
    sheaf-full is a full spare.  Every invariant holds."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.ingest import ingest

    rp = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
    s = next(iter(rp.tracks.values())).model
    cap = s.layer.capacity
    objs = [s.alloc(cpu=0) for _ in range(10)][:3]
    for x in objs:
        s.free(x, cpu=0)
    pcs = s.layer.pcs[0]
    top = list(pcs.main.objects[-3:])
    assert top == objs
    have = len(pcs.main.objects) + (len(pcs.spare.objects) if pcs.spare else 0)
    rp.sync_sheaf_occupancy(s, {0: have + 2})
    assert pcs.main.objects[-3:] == top and len(pcs.main.objects) == have + 2
    rp.kernel.validate()
    rp.sync_sheaf_occupancy(s, {0: have + 2 + cap})  # a whole sheaf more: a full spare
    assert pcs.spare is not None and len(pcs.spare.objects) == cap
    assert pcs.main.objects[-3:] == top and len(pcs.main.objects) == have + 2
    rp.kernel.validate()
    rp.sync_sheaf_occupancy(s, {0: cap + 2})  # over one sheaf: full spare, the top on main
    assert pcs.spare is not None and len(pcs.spare.objects) == cap
    assert pcs.main.objects == top[1:]
    rp.kernel.validate()
    rp.sync_sheaf_occupancy(s, {0: 3})  # the spare goes first, then the main's bottom
    assert pcs.spare is not None and not pcs.spare.objects
    assert pcs.main.objects == top
    rp.kernel.validate()


def test_a_spare_found_in_part_is_installed_and_completed_at_the_read() -> None:
    """The walk over the trace may find only the top of a CPU's full spare
    (mixed-4cpu filp, CPU 0: 41 of 60): installed as it is, the CPU hands it
    out when its main sheaf runs dry, and the first read's sync completes the
    count under it.  Every invariant holds."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.ingest import ingest

    rp = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
    s = next(iter(rp.tracks.values())).model
    lay = s.layer
    objs = []
    for _ in range(4):
        x = lay.slab_alloc_slow(0, 0, False)
        s.mark_allocated(x)
        s.mark_freed(x)
        objs.append(x)
    main, spare = objs[:1], objs[1:]
    assert lay.install_sheaves(0, main, spare)
    rp.kernel.validate()
    assert [s.alloc(cpu=0) for _ in range(4)] == main + spare
    for x in reversed(spare):  # back as they were, then the read: 1 + 60
        s.free(x, cpu=0)
    rp.sync_sheaf_occupancy(s, {0: 1 + lay.capacity + 3})
    pcs = lay.pcs[0]
    assert pcs.spare is not None and len(pcs.spare.objects) == lay.capacity
    assert [s.alloc(cpu=0) for _ in range(3)] == spare
    rp.kernel.validate()


def test_made_up_partial_slabs_look_partly_taken() -> None:
    """A made-up partial slab looks like one alloc_from_new_slab took part of:
    its lowest objects in use, the rest free in index order, so the next
    objects taken from it come lowest first (a refill then hands the highest
    of them out first, as the kernel's did on forkfiles-2cpu)."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.ingest import ingest

    rp = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
    s = next(iter(rp.tracks.values())).model
    assert rp.sync_node_partial(s, {0: (1, 5, -1)}) == 1
    n = s.nodes[0]
    assert n is not None
    (slab,) = n.partial_slabs()
    keep = slab.objects - 5
    assert all(s.is_live(slab.base + i * slab.size) for i in range(keep))
    taken = []
    for _ in range(5):
        x = s.layer.slab_alloc_slow(0, 0, False)
        s.mark_allocated(x)
        taken.append((x - slab.base) // slab.size)
    assert taken == list(range(keep, slab.objects))
    rp.kernel.validate()


def test_a_node_whose_every_slab_was_partial_keeps_the_models_slabs() -> None:
    """sysfs partial == slabs on a node: none of the kernel's slabs was full.
    The model's full slab there has its objects no traced pointer names
    freed (made-up users, not the ones the trace will free) and goes on the
    partial list; only the missing partial slab is made up."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.ingest import ingest

    rp = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
    s = next(iter(rp.tracks.values())).model
    objs = []
    for _ in range(s.objects):  # one slab, every object with a user
        x = s.layer.slab_alloc_slow(0, 0, False)
        s.mark_allocated(x)
        objs.append(x)
    n = s.nodes[0]
    assert n is not None and n.nr_partial == 0 and n.nr_slabs == 1
    named = objs[:3]
    rp.addr = list(named)  # bound to trace objects: the trace frees them later
    assert rp.sync_node_partial(s, {0: (2, 20, 2)}) == 0
    assert n.nr_slabs == 2 and n.nr_partial == 2
    assert all(s.is_live(x) for x in named)
    assert not any(s.is_live(x) for x in objs[3:])
    made = [sl for sl in n.partial_slabs() if sl is not s.slab_of(objs[0])]
    assert [sl.objects - sl.inuse for sl in made] == [max(20 - (s.objects - 3), 1)]
    assert s.layer.warm_nodes_kept == 1 and s.layer.warm_slabs_reopened == 1
    rp.kernel.validate()
    # more slabs than the kernel's: the usual way (fill, make up, trim)
    rp2 = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
    s2 = next(iter(rp2.tracks.values())).model
    for _ in range(2 * s2.objects):
        s2.mark_allocated(s2.layer.slab_alloc_slow(0, 0, False))
    rp2.sync_node_partial(s2, {0: (1, 5, 1)})
    assert s2.layer.warm_nodes_kept == 0


def test_sheaf_objects_are_not_counted_twice_beside_the_partial_slabs() -> None:
    """The CPU sheaves set from the counters take their objects from the slabs;
    the partial slabs made up next hold the kernel's in-use objects, which
    include the sheaves' (they sit in the kernel's slabs like any user's).
    Where that leaves the node with more slabs than the kernel's, the slabs
    holding only sheaf and made-up objects are given back, the sheaves taking
    made-up objects instead -- no counter moves, every invariant holds; with
    the kernel's slab count unknown (-1) nothing is given back."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.ingest import ingest

    def warmed(total: int) -> tuple[Any, Any]:
        rp = Replayer(ingest(sample_trace()), ReplayOptions(caches=["filp"]))
        s = next(iter(rp.tracks.values())).model
        per_slab = s.objects
        rp.sync_sheaf_occupancy(s, {0: 2 * per_slab})  # two whole slabs
        rp.sync_node_partial(s, {0: (3, 3, total)})
        return rp, s

    rp, s = warmed(-1)
    n = s.nodes[0]
    assert n is not None and n.nr_slabs == 5 and n.nr_partial == 3
    stats = dict(s.stats())
    rp, s = warmed(3)
    n = s.nodes[0]
    assert n is not None and n.nr_slabs == 3 and n.nr_partial == 3  # the kernel's count
    assert sum(sl.objects - sl.inuse for sl in n.partial_slabs()) == 3
    pcs = s.layer.pcs[0]
    held = len(pcs.main.objects) + (len(pcs.spare.objects) if pcs.spare else 0)
    assert held == 2 * s.objects
    assert all(s.slab_of(x).on_partial for sh in (pcs.main, pcs.spare) if sh for x in sh.objects)
    assert dict(s.stats()) == stats
    rp.kernel.validate()
