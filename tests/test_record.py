"""`slubsim record` against a fake tracefs/sysfs tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import EXAMPLE_A, KMALLOC64_SYSFS
from slubsim.cli import main
from slubsim.record import Recorder, RecordError, RecordPaths, parse_stat
from slubsim.replay import replay
from slubsim.trace.ingest import ingest
from slubsim.validate import validate_bundle

ORIGINAL = {
    "tracing_on": "0",
    "buffer_size_kb": "1408",
    "trace_clock": "[local] global",
    "options/overwrite": "1",
    "options/hash-ptr": "1",
    "kprobe_events": "",
}


class FakeKernel:
    """A tracefs + /sys/kernel/slab tree whose "kernel" formats trace lines."""

    def __init__(self, root: Path, stats: bool = True) -> None:
        self.t = root / "tracing"
        self.slab = root / "slab"
        self.ts = 1.0
        for rel, val in ORIGINAL.items():
            (self.t / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.t / rel).write_text(val + "\n")
        (self.t / "trace").write_text("")
        (self.t / "trace_marker").write_text("")
        (self.t / "available_filter_functions").write_text(
            "kvfree_call_rcu\nrcu_free_sheaf\nkmem_cache_free_bulk\n"
        )
        for ev in ("kmem_cache_alloc", "kmem_cache_free", "kmalloc", "kfree"):
            (self.t / f"events/kmem/{ev}").mkdir(parents=True)
            (self.t / f"events/kmem/{ev}/enable").write_text("0\n")
        (self.t / "per_cpu/cpu0").mkdir(parents=True)
        (self.t / "per_cpu/cpu0/stats").write_text("entries: 0\noverrun: 0\n")
        (root / "osrelease").write_text("7.3.4-fake\n")
        d = self.slab / ":0000064"
        d.mkdir(parents=True)
        geo = {
            **KMALLOC64_SYSFS,
            "aliases": "0",
            "slabs": "0",
            "objects": "0",
        }
        for k, v in geo.items():
            (d / k).write_text(v + "\n")
        (d / "shrink").write_text("")
        if stats:
            for k in EXAMPLE_A:
                (d / k).write_text("0\n")
        (self.slab / "kmalloc-64").symlink_to(":0000064")
        self.stats = stats

    def line(self, text: str) -> None:
        self.ts += 0.000001
        with open(self.t / "trace", "a") as f:
            f.write(f"  slablab-1 [000] ..... {self.ts:.6f}: {text}\n")

    def marker(self, text: str) -> None:
        self.line(f"tracing_mark_write: {text}")

    def workload(self) -> None:
        ptrs = [0xFFFF888100000000 + i * 64 for i in range(100)]
        for p in ptrs:
            self.line(
                f"kmalloc: call_site=f+0x1/0x2 ptr={p:x} bytes_req=64 bytes_alloc=64 "
                "gfp_flags=GFP_KERNEL node=-1 accounted=false"
            )
        for p in ptrs:
            self.line(f"kfree: call_site=g+0x1/0x2 ptr={p:x}")
        if self.stats:
            for k, v in EXAMPLE_A.items():
                (self.slab / ":0000064" / k).write_text(f"{v} C0={v}\n" if v else "0\n")

    def paths(self, root: Path) -> RecordPaths:
        return RecordPaths(
            tracefs=self.t, slab=self.slab, nodes=root / "nodes", osrelease=root / "osrelease"
        )


def settings(t: Path) -> dict[str, str]:
    return {rel: (t / rel).read_text().strip() for rel in ORIGINAL}


def test_parse_stat() -> None:
    assert parse_stat("5423 C0=357 C1=4357") == (5423, {"0": 357, "1": 4357})
    assert parse_stat("0") == (0, {}) and parse_stat("ctor+0x0/0x1") is None


def test_recorded_bundle_goes_through_ingest_replay_validate(tmp_path: Path) -> None:
    fk = FakeKernel(tmp_path)
    out = tmp_path / "bundle"
    rec = Recorder(
        out=out, paths=fk.paths(tmp_path), command=fk.workload, marker=fk.marker, log=lambda m: None
    )
    info = rec.run()
    assert info["complete"] and info["kprobes"] >= 9  # the symbols the fake kernel has
    assert any("kprobes skipped" in w for w in info["warnings"])
    assert settings(fk.t) == {
        k: v.strip("[]").split("]")[0] if k == "trace_clock" else v for k, v in ORIGINAL.items()
    } | {"trace_clock": "local"}
    st = ingest(out)
    assert st.meta["kernel_version"] == "7.3"
    r = replay(st)
    assert r["caches"]["kmalloc-64"]["counters"]["alloc_fastpath"] == 100
    res = validate_bundle(out)
    c = res["caches"]["kmalloc-64"]["counters"]
    assert all(c[k]["model"] == v == c[k]["kernel"] for k, v in EXAMPLE_A.items()), c
    assert res["summary"]["exact"] == res["summary"]["counters_compared"] == len(EXAMPLE_A)
    assert res["kprobe_missed"] is None  # this tracefs has no kprobe_profile


def test_missed_kprobe_hits_are_recorded_and_reported(tmp_path: Path) -> None:
    fk = FakeKernel(tmp_path)
    # tracefs kprobe_profile: event, nhit, nmissed (another group's probe is ignored)
    (fk.t / "kprobe_profile").write_text(
        "  kfree_rcu                                              4127               0\n"
        "  rcu_free_sheaf                                           61               3\n"
        "  other/foo                                                 9               9\n"
    )
    out = tmp_path / "bundle"
    rec = Recorder(
        out=out, paths=fk.paths(tmp_path), command=fk.workload, marker=fk.marker, log=lambda m: None
    )
    info = rec.run()
    assert any("kprobe hits missed (rcu_free_sheaf 3)" in w for w in info["warnings"])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kprobe_profile"] == {
        "kfree_rcu": {"hits": 4127, "missed": 0},
        "rcu_free_sheaf": {"hits": 61, "missed": 3},
    }
    assert validate_bundle(out)["kprobe_missed"] == {"rcu_free_sheaf": 3}
    r = CliRunner().invoke(main, ["validate", str(out)])
    assert r.exit_code == 0, r.output
    assert "kprobe hits missed while recording: rcu_free_sheaf 3" in " ".join(r.output.split())
    (fk.t / "kprobe_profile").write_text("  rcu_free_sheaf  61  0\n")
    Recorder(
        out=out, paths=fk.paths(tmp_path), command=fk.workload, marker=fk.marker, log=lambda m: None
    ).run()
    assert validate_bundle(out)["kprobe_missed"] == {}  # recorded, nothing missed


def test_settings_are_restored_when_the_workload_fails(tmp_path: Path) -> None:
    fk = FakeKernel(tmp_path)

    def boom() -> None:
        raise KeyboardInterrupt

    rec = Recorder(
        out=tmp_path / "b",
        paths=fk.paths(tmp_path),
        command=boom,
        marker=fk.marker,
        log=lambda m: None,
    )
    with pytest.raises(KeyboardInterrupt):
        rec.run()
    assert (fk.t / "buffer_size_kb").read_text().strip() == "1408"
    assert (fk.t / "options/overwrite").read_text().strip() == "1"
    assert (fk.t / "events/kmem/kmalloc/enable").read_text().strip() == "0"
    assert (fk.t / "kprobe_events").read_text().strip() == ""


def test_clear_errors_and_missing_stats(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="tracefs is not mounted"):
        Recorder(out=tmp_path / "x", paths=RecordPaths(tracefs=tmp_path / "none")).run()
    fk = FakeKernel(tmp_path / "k", stats=False)
    (fk.t / "tracing_on").unlink()
    (fk.t / "tracing_on").mkdir()
    with pytest.raises(RecordError, match="not writable"):
        Recorder(out=tmp_path / "x", paths=fk.paths(tmp_path / "k")).run()
    fk2 = FakeKernel(tmp_path / "k2", stats=False)
    msgs: list[str] = []
    info = Recorder(
        out=tmp_path / "b2",
        paths=fk2.paths(tmp_path / "k2"),
        command=fk2.workload,
        marker=fk2.marker,
        log=msgs.append,
    ).run()
    assert any("no SLUB_STATS" in w for w in info["warnings"])
    assert ingest(tmp_path / "b2").n > 0


def test_record_cli_reports_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "record",
            "-o",
            str(tmp_path / "o"),
            "--tracefs",
            str(tmp_path / "nope"),
            "--duration",
            "0",
        ],
    )
    assert r.exit_code == 2 and "tracefs is not mounted" in r.stderr


def test_disk_full_is_a_clear_error_and_restores(tmp_path: Path) -> None:
    import errno

    fk = FakeKernel(tmp_path)

    class Full(Recorder):
        def _copy_trace(self):  # type: ignore[no-untyped-def]
            raise OSError(errno.ENOSPC, "No space left on device")

    rec = Full(
        out=tmp_path / "b",
        paths=fk.paths(tmp_path),
        command=fk.workload,
        marker=fk.marker,
        log=lambda m: None,
    )
    with pytest.raises(RecordError, match="disk full"):
        rec.run()
    assert settings(fk.t) == ORIGINAL | {"trace_clock": "local"}
