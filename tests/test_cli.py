"""The command line, end to end (click's runner, no subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conftest import DATA
from slubsim.cli import main


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_replay_of_the_embedded_sample() -> None:
    code, out, _ = run("replay")
    assert code == 0
    assert "Linux 7.3 model on 4 CPUs" in out and "maple_node" in out and "kmalloc-192" in out
    assert "(0 unexplained)" in out


def test_ingest_inspect_replay_json(tmp_path: Path) -> None:
    store = tmp_path / "s.parquet"
    code, out, _ = run("ingest", str(DATA / "numa2-cut"), "-o", str(store))
    assert code == 0 and store.is_file() and "events" in out
    code, out, _ = run("inspect", str(store), "--json", "-")
    assert code == 0
    info = json.loads(out)
    assert info["machine"]["nodes"] == 2 and info["events"] > 5000
    code, out, _ = run("inspect", str(store))
    assert code == 0 and "events per cache" in out
    code, out, _ = run(
        "replay", str(store), "--json", "-", "--set", "sheaf_capacity=16", "--cache", "maple_node"
    )
    assert code == 0
    res = json.loads(out)
    assert list(res["caches"]) == ["maple_node"]
    c = res["caches"]["maple_node"]
    assert c["geometry"]["sheaf_capacity"] == 16
    for key in (
        "aliases",
        "sysfs_dir",
        "events",
        "counters",
        "counters_per_cpu",
        "memory",
        "metrics",
    ):
        assert key in c
    assert {"kernel", "trace", "caches", "warnings"} <= set(res)
    out_file = tmp_path / "r.json"
    code, _, _ = run("replay", str(store), "--json", str(out_file))
    assert code == 0 and json.loads(out_file.read_text())["kernel"] == "7.3"


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# tracer: nop\nhello world\n")
    code, out, err = run("replay", str(bad))
    assert code == 2
    assert err.startswith("slubsim: error: bad.txt:2: not a trace event line")
    assert "Traceback" not in out + err
    code, out, err = run("replay", str(bad), "--skip-malformed")
    assert code == 2 and "no kmem events" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = run("inspect", str(empty))
    assert code == 2 and "empty file" in err
    code, _, err = run("replay", "--set", "foo=1")
    assert code == 2 and "unknown --set key 'foo'" in err and "sheaf_capacity" in err
    code, out, _ = run("replay", str(DATA / "v612-cut"))
    assert code == 0 and "Linux 6.12 model" in out
    code, _, err = run("replay", "--kernel", "2.6")
    assert code == 2 and "unknown kernel version" in err


def test_replay_rebuilds_pre_trace_slabs_on_request() -> None:
    """The committed 6.12 cut (no ../shared needed): rebuilding the slabs in
    use when tracing began keeps the model on the kernel's objects far more
    often than materialising the pre-trace objects in fresh slabs."""

    def lockstep(*extra: str) -> tuple[dict[str, object], int, int]:
        code, out, _ = run("replay", str(DATA / "v612-cut"), "--lockstep", "--json", "-", *extra)
        assert code == 0
        res = json.loads(out)
        steps = [c["lockstep"] for c in res["caches"].values() if "lockstep" in c]
        return res["trace"], sum(x["checked"] for x in steps), sum(x["same_object"] for x in steps)

    tr, checked, same = lockstep("--pretrace", "reconstruct")
    assert tr["pretrace_policy"] == "reconstruct" and tr["pretrace_slabs"]["slabs"] > 50
    tr0, checked0, same0 = lockstep()
    assert tr0["pretrace_policy"] == "materialize" and tr0["pretrace_slabs"] is None
    assert checked == checked0 > 3000
    assert same / checked >= 0.8 and same0 / checked0 <= 0.3
    code, out, _ = run("replay", str(DATA / "v612-cut"), "--pretrace", "reconstruct")
    assert code == 0 and "rebuilt slabs" in out


def test_example_command() -> None:
    code, out, _ = run("example", "A")
    assert code == 0 and "100 C0=100" in out


def test_help_lists_every_setting_key() -> None:
    from slubsim.cli import SETTING_KEYS
    from slubsim.replay import OVERRIDE_KEYS

    assert SETTING_KEYS.split(", ") == list(OVERRIDE_KEYS)
