"""Sweeps, metrics with known answers, recommendations and the HTML report."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from slubsim.analysis import recommend
from slubsim.cli import main, sample_trace
from slubsim.replay import ReplayOptions, replay
from slubsim.report import build_report
from slubsim.sweep import grid, parse_vary, read_rows, sweep, write_rows
from slubsim.trace.ingest import ingest


def lifo_trace(tmp: Path, depth: int, cycles: int) -> Path:
    """One CPU, strictly LIFO: allocate ``depth`` objects, free them in reverse."""
    lines = ["# tracer: nop\n", "# entries-in-buffer/entries-written: 1/1   #P:1\n"]
    ts = 1.0
    base = 0xFFFF888100000000
    for _ in range(cycles):
        ptrs = [base + i * 64 for i in range(depth)]
        for p in ptrs:
            ts += 1e-6
            lines.append(
                f"  t-1 [000] ..... {ts:.6f}: kmem_cache_alloc: call_site=f ptr={p:x} "
                "name=lifo bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 "
                "accounted=false\n"
            )
        for p in reversed(ptrs):
            ts += 1e-6
            lines.append(
                f"  t-1 [000] ..... {ts:.6f}: kmem_cache_free: call_site=g ptr={p:x} name=lifo\n"
            )
    path = tmp / "lifo.txt"
    path.write_text("".join(lines))
    return path


def test_lifo_hits_every_time_once_warm_when_capacity_covers_depth(tmp_path: Path) -> None:
    st = ingest(lifo_trace(tmp_path, depth=10, cycles=500))
    for cap in (10, 16, 64):
        m = replay(st, ReplayOptions(overrides={"sheaf_capacity": cap}))["caches"]["lifo"]
        k = m["counters"]
        # warm after one refill: one barn_get_fail, nothing else ever misses
        assert k["barn_get_fail"] == 1 and k["barn_get"] == 0 and k["barn_put"] == 0, cap
        assert m["metrics"]["alloc_hit_rate"] == pytest.approx(1 - 1 / 5000), cap
        assert m["metrics"]["free_hit_rate"] == 1.0, cap
        assert m["memory"]["slabs_final"] == 1
    small = replay(st, ReplayOptions(overrides={"sheaf_capacity": 4}))["caches"]["lifo"]
    assert small["metrics"]["alloc_hit_rate"] < 0.9
    assert small["metrics"]["barn_lock_per_1k"] > 10


def test_grid_and_vary_parsing() -> None:
    spec = parse_vary(["sheaf_capacity=8,4,8", "barn_max_full=2,10"])
    assert spec == {"sheaf_capacity": [4, 8], "barn_max_full": [2, 10]}
    assert len(grid(spec)) == 4 and grid(spec)[0] == {"barn_max_full": 2, "sheaf_capacity": 4}
    from slubsim import SlubsimUsageError

    with pytest.raises(SlubsimUsageError, match="unknown --vary key"):
        parse_vary(["capacity=1"])
    with pytest.raises(SlubsimUsageError, match="--vary expects KEY=V1,V2"):
        parse_vary(["sheaf_capacity"])
    with pytest.raises(SlubsimUsageError, match="--vary cpus: 0 is out of range"):
        parse_vary(["cpus=2,0"])
    with pytest.raises(SlubsimUsageError, match="values must be integers"):
        parse_vary(["cpus=2,x"])
    with pytest.raises(SlubsimUsageError, match="one or more values"):
        parse_vary(["cpus=,"])


def test_recommendation_on_a_known_workload(tmp_path: Path) -> None:
    st = ingest(lifo_trace(tmp_path, depth=10, cycles=300))
    store = tmp_path / "s.parquet"
    st.write(store)
    rows = sweep(store, {"sheaf_capacity": [4, 8, 16, 32]})
    (rec,) = recommend(rows)
    assert rec["cache"] == "lifo" and rec["recommended_capacity"] == 16
    assert rec["default_capacity"] == 60
    assert rec["saves_bytes"] > 0  # the default strands more memory for nothing
    assert [p["capacity"] for p in rec["curve"]] == [4, 8, 16, 32]


def test_sweep_is_identical_on_every_executor(tmp_path: Path) -> None:
    st = ingest(sample_trace())
    store = tmp_path / "sample.parquet"
    st.write(store)
    spec = {"sheaf_capacity": [8, 32]}
    caches = ["maple_node", "filp", "kmalloc-192"]
    serial = sweep(store, spec, caches=caches)
    with ProcessPoolExecutor(max_workers=2) as ex:
        local = sweep(store, spec, caches=caches, executor=ex)
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask_rows = sweep(store, spec, caches=caches, executor=client.get_executor())
    assert serial == local == dask_rows
    assert len(serial) == 6
    out = tmp_path / "rows.parquet"
    write_rows(serial, out)
    assert read_rows(out) == serial


def test_cli_sweep_recommend_report(tmp_path: Path) -> None:
    trace = lifo_trace(tmp_path, depth=10, cycles=200)
    res = tmp_path / "r.parquet"
    r = CliRunner().invoke(
        main,
        ["sweep", str(trace), "--vary", "sheaf_capacity=4,16", "-o", str(res), "--workers", "1"],
    )
    assert r.exit_code == 0, r.output
    assert "2 configurations" in r.stdout and "lifo" in r.stdout
    r = CliRunner().invoke(main, ["recommend", str(res), "--json", "-"])
    assert r.exit_code == 0 and '"recommended_capacity": 16' in r.stdout
    html = tmp_path / "report.html"
    r = CliRunner().invoke(
        main, ["report", str(res), "-o", str(html), "--png", str(tmp_path / "png")]
    )
    assert r.exit_code == 0, r.output
    page = html.read_text()
    assert "<img" in page and "data:image/png;base64," in page and "lifo" in page
    assert (tmp_path / "png" / "lifo.png").stat().st_size > 1000
    assert "http" not in page.replace("http-equiv", "")  # self-contained


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed on this machine")
    st = ingest(lifo_trace(tmp_path, depth=10, cycles=100))
    store = tmp_path / "s.parquet"
    st.write(store)
    html = tmp_path / "report.html"
    build_report(sweep(store, {"sheaf_capacity": [4, 16]}), html)
    out = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chrome'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    dom = out.stdout
    assert dom.count("<img") >= 1 and "Recommendations" in dom
    assert "Uncaught" not in out.stderr and "CONSOLE(" not in out.stderr


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "shared" / "traces" / "mixed-4cpu").is_dir(),
    reason="../shared/traces (real kernel traces) is not present in this checkout",
)
def test_shared_trace_sweep_six_capacities_local_and_dask(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    bundle = Path(__file__).resolve().parents[2] / "shared" / "traces" / "mixed-4cpu"
    store = tmp_path / "mixed.parquet"
    ingest(bundle).write(store)
    spec = {"sheaf_capacity": [4, 8, 16, 32, 64, 128]}
    with ProcessPoolExecutor(max_workers=2) as ex:
        local = sweep(store, spec, executor=ex)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask_rows = sweep(store, spec, executor=client.get_executor())
    assert local == dask_rows
    assert len({r["cache"] for r in local}) >= 30 and len(local) == 6 * len(
        {r["cache"] for r in local}
    )
    recs = {r["cache"]: r for r in recommend(local)}
    assert recs["maple_node"]["ops"] > 50_000


def test_adaptive_policies_grow_capacity_under_lock_traffic(tmp_path: Path) -> None:
    st = ingest(lifo_trace(tmp_path, depth=40, cycles=300))
    fixed = replay(st, ReplayOptions(overrides={"sheaf_capacity": 4}))["caches"]["lifo"]
    for policy in ("bonwick", "uma"):
        r = replay(st, ReplayOptions(overrides={"sheaf_capacity": 4}, policy=policy))
        c = r["caches"]["lifo"]
        assert c["policy"]["name"] == policy and c["policy"]["start_capacity"] == 4
        assert c["policy"]["final_capacity"] > 4 and c["policy"]["changes"] >= 1
        assert c["metrics"]["barn_lock_per_1k"] < fixed["metrics"]["barn_lock_per_1k"]
    bon = replay(st, ReplayOptions(overrides={"sheaf_capacity": 4}, policy="bonwick"))
    assert bon["caches"]["lifo"]["policy"]["final_capacity"] in (8, 16, 32, 64, 128, 256)
    # enough capacity: no lock traffic, so nothing to adapt
    calm = replay(st, ReplayOptions(overrides={"sheaf_capacity": 64}, policy="uma"))
    assert calm["caches"]["lifo"]["policy"]["changes"] == 0
