"""Synthetic workloads and malloclab import: each checks a property of what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from slubsim import SlubsimUsageError
from slubsim.cli import main
from slubsim.generate import KINDS, generate, import_rep
from slubsim.replay import ReplayOptions, replay
from slubsim.trace.events import (
    OP_ALLOC,
    OP_ALLOC_FROM_SHEAF,
    OP_FREE,
    OP_KFREE_RCU,
    OP_LARGE_ALLOC,
)
from slubsim.trace.ingest import ingest


def cols(path: Path):  # type: ignore[no-untyped-def]
    st = ingest(path)
    assert not [w for w in st.warnings if not w["explained"]], st.warnings
    return st, {k: v.tolist() for k, v in st.columns.items()}


def remote_share(c: dict[str, list[int]], node_of=lambda cpu: cpu) -> float:  # type: ignore[no-untyped-def]
    alloc_cpu: dict[int, int] = {}
    remote = frees = 0
    for op, obj, cpu in zip(c["op"], c["obj"], c["cpu"], strict=True):
        if op == OP_ALLOC:
            alloc_cpu[obj] = cpu
        elif op == OP_FREE and obj in alloc_cpu:
            frees += 1
            remote += node_of(alloc_cpu.pop(obj)) != node_of(cpu)
    return remote / frees


def test_every_kind_replays(tmp_path: Path) -> None:
    for kind in KINDS:
        out = tmp_path / f"{kind}.txt"
        small = {
            "prefill-migrate": {"rounds": 50},
            "lifo": {"cycles": 50},
            "bursts": {"rounds": 10},
            "kfree-rcu-storm": {"rounds": 10},
        }.get(kind, {"ops": 800})
        generate(kind, out, cpus=4, seed=3, params=small)
        st, _ = cols(out)
        r = replay(st)
        assert r["caches"], kind


def test_prodcons_remote_share_matches_the_request(tmp_path: Path) -> None:
    for share in (0.0, 0.25, 0.75):
        out = tmp_path / "pc.txt"
        generate("prodcons", out, cpus=4, seed=1, params={"ops": 6000, "remote": share})
        _, c = cols(out)
        assert remote_share(c) == pytest.approx(share, abs=0.03)


def test_numa_remote_share_counts_nodes(tmp_path: Path) -> None:
    out = tmp_path / "numa.txt"
    generate("numa-remote", out, cpus=4, seed=2, params={"ops": 8000, "remote": 0.3})
    _, c = cols(out)
    assert remote_share(c, node_of=lambda cpu: cpu // 2) == pytest.approx(0.3, abs=0.03)


def test_lifo_and_bursts_shapes(tmp_path: Path) -> None:
    out = tmp_path / "lifo.txt"
    generate("lifo", out, cpus=1, params={"depth": 7, "cycles": 30})
    _, c = cols(out)
    assert c["op"][:14] == [OP_ALLOC] * 7 + [OP_FREE] * 7
    assert c["obj"][7:14] == list(reversed(c["obj"][:7]))
    out = tmp_path / "bursts.txt"
    generate("bursts", out, cpus=2, params={"rounds": 5, "burst": 50})
    _, c = cols(out)
    assert c["op"].count(OP_ALLOC) == c["op"].count(OP_FREE) == 250


def test_rcu_storm_share_and_seed_reproducibility(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    generate("kfree-rcu-storm", a, seed=5, params={"rounds": 40, "rcu_share": 0.6})
    generate("kfree-rcu-storm", b, seed=5, params={"rounds": 40, "rcu_share": 0.6})
    assert a.read_text() == b.read_text()
    _, c = cols(a)
    rcu, frees = c["op"].count(OP_KFREE_RCU), c["op"].count(OP_FREE)
    assert rcu / (rcu + frees) == pytest.approx(0.6, abs=0.05)


def test_mixed_lifetime_and_prefill_migration(tmp_path: Path) -> None:
    out = tmp_path / "m.txt"
    generate("mixed-lifetime", out, seed=1, params={"ops": 5000, "long_share": 0.2})
    _, c = cols(out)
    assert c["op"].count(OP_ALLOC) == c["op"].count(OP_FREE) == 5000
    out = tmp_path / "p.txt"
    generate("prefill-migrate", out, cpus=4, seed=1, params={"rounds": 400, "migrate": 0.5})
    st, c = cols(out)
    sheaf_allocs = c["op"].count(OP_ALLOC_FROM_SHEAF)
    assert sheaf_allocs == 1600
    r = replay(st)["caches"]["maple_node"]["counters"]
    assert r["sheaf_prefill_fast"] + r["sheaf_prefill_slow"] == 400
    with pytest.raises(SlubsimUsageError, match="unknown parameter"):
        generate("lifo", out, params={"nope": 1})


REP = """20000
4
7
1
a 0 24
a 1 100
r 0 30
r 1 5000
f 1
a 2 20000
a 3 8
"""


def test_malloclab_import(tmp_path: Path) -> None:
    rep = tmp_path / "t.rep"
    rep.write_text(REP)
    out = tmp_path / "t.txt"
    info = import_rep(rep, out, cpus=2)
    assert info["operations"] == 7
    st, c = cols(out)
    # a0 (kmalloc-32), a1 (kmalloc-128), r0 fits kmalloc-32: no events,
    # r1 -> kmalloc-8k + kfree, f1, a2 large, a3 kmalloc-8
    assert c["op"] == [OP_ALLOC, OP_ALLOC, OP_ALLOC, OP_FREE, OP_FREE, OP_LARGE_ALLOC, OP_ALLOC]
    names = [st.caches[x]["name"] for x in c["cache"] if x >= 0]
    assert names[:3] == ["kmalloc-32", "kmalloc-128", "kmalloc-8k"]
    assert c["cpu"][:2] == [0, 1]  # id % cpus
    r = replay(st, ReplayOptions(validate=True))
    assert r["caches"]["kmalloc-32"]["counters"]["alloc_fastpath"] == 1
    bad = tmp_path / "bad.rep"
    bad.write_text("1\n1\n5\n1\na 0 8\n")
    with pytest.raises(SlubsimUsageError, match="header says 5 operations"):
        import_rep(bad, out)


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "g.txt"
    r = CliRunner().invoke(main, ["generate", "bursts", "-o", str(out), "--param", "rounds=3"])
    assert r.exit_code == 0 and "bursts on 4 CPUs" in r.stdout
    r = CliRunner().invoke(main, ["replay", str(out)])
    assert r.exit_code == 0 and "gen64" in r.stdout
    rep = tmp_path / "t.rep"
    rep.write_text(REP)
    r = CliRunner().invoke(main, ["import-rep", str(rep), "-o", str(tmp_path / "r.txt")])
    assert r.exit_code == 0 and "7 operations" in r.stdout
    # every generator is reachable from the command line
    for kind in KINDS:
        r = CliRunner().invoke(
            main, ["generate", kind, "-o", str(tmp_path / f"{kind}.txt"), "--cpus", "2"]
        )
        assert r.exit_code == 0, (kind, r.output)


def test_irq_mix_share(tmp_path: Path) -> None:
    out = tmp_path / "irq.txt"
    generate("irq-mix", out, cpus=2, seed=4, params={"ops": 5000, "irq": 0.2})
    lines = [ln for ln in out.read_text().splitlines() if "kmem_cache_alloc:" in ln]
    irq = sum(" d.h1. " in ln for ln in lines)
    assert irq / 5000 == pytest.approx(0.2, abs=0.02)
    st, _ = cols(out)
    assert replay(st)["caches"]["gen64"]["counters"]["alloc_fastpath"] == len(lines)
