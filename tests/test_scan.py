"""The compiled line scanner (slubsim.trace.scan, Cython pure-Python mode)
against the numpy parser: the same lines accepted with the same values and
the same string tables, compiled and as plain Python."""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import slubsim
from mutations import mutated_lines
from slubsim.cli import sample_trace
from slubsim.trace import fastparse, ftrace
from slubsim.trace.fastparse import Block, _parse_block, scan_block
from slubsim.trace.io import iter_blocks

DATA = Path(__file__).parent / "data"
TRACES = [DATA / "numa2-cut", DATA / "v612-cut", sample_trace()]
SOURCE = Path(fastparse.__file__).with_name("scan.py")


def _pure_scanner() -> ModuleType:
    """scan.py run as plain Python (needs Cython's shadow module)."""
    pytest.importorskip("cython", reason="the scanner's source needs Cython's shadow module")
    spec = importlib.util.spec_from_file_location("slubsim_scan_as_python", SOURCE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.COMPILED is False
    return mod


def _scanners() -> list[ModuleType]:
    """The pure-Python source, and the compiled scanner when installed."""
    out = [_pure_scanner()]
    if fastparse.SCANNER is not None:
        out.append(fastparse.SCANNER)
    return out


def _assert_same(a: Block, b: Block) -> None:
    """Blocks equal wherever a consumer reads them."""
    for f in ("starts", "ends", "fast", "irq", "kind", "name", "bytes_req", "bytes_alloc",
              "gfp", "node", "call_site"):  # fmt: skip
        x, y = getattr(a, f), getattr(b, f)
        bad = np.flatnonzero(np.asarray(x) != np.asarray(y))
        assert not len(bad), (f, [a.line(int(i)) for i in bad[:3]], x[bad[:3]], y[bad[:3]])
    m = a.fast
    for f in ("cpu", "ts", "ptr"):
        assert np.array_equal(getattr(a, f)[m], getattr(b, f)[m]), f
    assert (a.names, a.gfps, a.call_sites) == (b.names, b.gfps, b.call_sites)


def test_kinds_are_ftrace_kinds() -> None:
    s = _pure_scanner()
    assert (s.K_CACHE_ALLOC, s.K_KMALLOC, s.K_CACHE_FREE, s.K_KFREE, s.K_KFREE_RCU) == (
        ftrace.E_CACHE_ALLOC,
        ftrace.E_KMALLOC,
        ftrace.E_CACHE_FREE,
        ftrace.E_KFREE,
        ftrace.E_KFREE_RCU,
    )


def test_compiled_scanner_is_used_when_installed_compiled() -> None:
    """An install that compiled the model also compiled the scanner, and
    parse_block goes through it (numpy under SLUBSIM_PURE)."""
    if not slubsim.COMPILED:
        assert fastparse.SCANNER is None
        pytest.skip(f"pure run: {slubsim.PURE_REASON}")
    assert fastparse.SCANNER is not None and fastparse.SCANNER.COMPILED
    data = Path(DATA / "numa2-cut" / "trace.txt.xz")
    first, block = next(iter(iter_blocks(data, 1 << 16)))
    assert fastparse.parse_block(first, block).fast.any()


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.parent.name + "/" + p.name)
def test_compiled_scanner_equals_numpy_parser(trace: Path) -> None:
    if fastparse.SCANNER is None:
        pytest.skip("the scanner is not compiled in this run")
    f = trace / "trace.txt.xz" if trace.is_dir() else trace
    n = 0
    for first, data in iter_blocks(f, 1 << 20):
        a = _parse_block(first, data)
        _assert_same(a, scan_block(first, data, fastparse.SCANNER))
        n += int(a.fast.sum())
    assert n > 3000


@pytest.mark.parametrize("trace", TRACES[:2], ids=lambda p: p.name)
def test_scanner_source_as_python_equals_numpy_parser(trace: Path) -> None:
    """The same source, uncompiled, on the first 400 lines of each trace."""
    s = _pure_scanner()
    first, data = next(iter(iter_blocks(trace / "trace.txt.xz", 1 << 16)))
    data = b"".join(data.splitlines(keepends=True)[:400])
    a = _parse_block(first, data)
    assert a.fast.sum() > 300
    _assert_same(a, scan_block(first, data, s))


def test_many_distinct_strings_keep_numpy_order() -> None:
    """The hash tables of names, gfp flags and call sites: thousands of
    distinct strings (collisions, probing) coded in order of first
    appearance, repeated ones reusing their code."""
    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list(string.ascii_lowercase), 6)) for _ in range(3000)]
    lines = []
    for i in range(12000):
        w = words[int(rng.integers(0, len(words)))]
        lines.append(
            f"  t-1  [001] ..... {i}.5: kmem_cache_alloc: call_site={w}+0x1/0x2 "
            f"ptr=ffff8881{i:08x} name={w[::-1]} bytes_req=8 bytes_alloc=8 "
            f"gfp_flags=G{w[:3]} node=-1"
        )
    data = ("\n".join(lines) + "\n").encode()
    a = _parse_block(1, data)
    assert a.fast.all() and len(a.names) > 2000
    for s in _scanners():
        _assert_same(a, scan_block(1, data, s))


_GOOD = [
    "      a-1     [003] d..1.  12.000001: kmem_cache_alloc: call_site=f+0x1/0x2 "
    "ptr=ffff888100000000 name=filp bytes_req=168 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1",
    "   a-1  [002] .....  7.000002: kfree: call_site=g+0x2/0x3 ptr=ffff888100000080",
    "   a-1  [002] d..1. 7.000003: kmem_cache_free: call_site=h ptr=ffff8881000000c0 name=filp",
    "   a-1  [002] .Hs1. 7.000004: kfree: call_site=g+0x2/0x3 ptr=ffff888100000100",
    "  b-22  [001] ..... 8.5: kmalloc: call_site=k ptr=ffff888100001000 bytes_req=100 "
    "bytes_alloc=128 gfp_flags=GFP_KERNEL|__GFP_ZERO node=0 accounted=false",
    "  c-3  [000] ..... 9.25: kfree_rcu: (kvfree_call_rcu+0x0/0x30) ptr=0xffff888100000040 "
    "head=0xffff888100000050 caller=x+0x1/0x2",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_lines(_GOOD, 0xFF))
def test_mutated_lines_scan_as_numpy_parses_them(texts: list[str]) -> None:
    """Property: for good lines with up to three characters replaced or
    inserted (any byte up to 0xFF), the scanner -- compiled and as Python --
    gives the numpy parser's block."""
    data = ("\n".join(texts) + "\n").encode("utf-8")
    a = _parse_block(1, data)
    for s in _scanners():
        _assert_same(a, scan_block(1, data, s))


def _variants() -> dict[str, list[str]]:
    """Lines whose fields grow across every search window of the parsers
    (one field at a time): the first "[" (64 bytes), "]" (8), ":" (32), the
    timestamp's space and dot (24), the irq-flags gap (16), cpu digits (4),
    timestamp digits (8 + 8, 2**53), call site, name, gfp flags and the
    kprobe tokens (64), bytes_req/bytes_alloc/node (16; node 6 digits)."""

    def alloc(task: str = "a-1", cpu: str = "003", gap: str = " d..1. ", ts: str = "12.5",
              cs: str = "f+0x1/0x2", name: str = "filp", req: str = "168",
              node: str = "-1", gfp: str = "GFP_KERNEL") -> str:  # fmt: skip
        return (
            f"  {task}  [{cpu}]{gap}{ts}: kmem_cache_alloc: call_site={cs} "
            f"ptr=ffff888100000000 name={name} bytes_req={req} bytes_alloc=192 "
            f"gfp_flags={gfp} node={node}"
        )

    def rcu(probe: str = "(kvfree_call_rcu+0x0/0x30)", caller: str = "x+0x1/0x2") -> str:
        return (
            f"  c-3  [000] ..... 9.25: kfree_rcu: {probe} ptr=0xffff888100000040 "
            f"head=0xffff888100000050 caller={caller}"
        )

    r = range
    return {
        "task": [alloc(task="t" * k + "-1") for k in r(50, 70)],
        "cpu": [alloc(cpu="1" * k) for k in r(1, 10)],
        "gap": [alloc(gap=" " * k) for k in r(1, 30)]
        + [alloc(gap=" " + "d" * k + " ") for k in r(1, 12)]
        + [alloc(gap=" " * k + "d..1." + " ") for k in r(1, 16)],
        "ts": [alloc(ts="1" * i + "." + "2" * f) for i in r(1, 11) for f in r(1, 11)]
        + [alloc(ts="90071992.54740991"), alloc(ts="90071992.54740993"), alloc(ts="1.")],
        "call_site": [alloc(cs="c" * k) for k in r(55, 70)],
        "name": [alloc(name="n" * k) for k in r(55, 70)],
        "bytes": [alloc(req="1" * k) for k in r(1, 20)],
        "node": [alloc(node=s + "1" * k) for s in ("", "-") for k in r(1, 18)],
        "gfp": [alloc(gfp="G" * k) for k in r(55, 70)],
        "probe": [rcu(probe="(" + "p" * k + ")") for k in r(55, 70)],
        "caller": [rcu(caller="c" * k) for k in r(40, 70)],
    }


@pytest.mark.parametrize("axis", list(_variants()))
def test_window_limits_agree(axis: str) -> None:
    """Each field across its window limit: both parsers read the same lines
    fast (some, not all, on every axis) with the same values."""
    lines = _variants()[axis]
    data = ("\n".join(lines) + "\n").encode()
    a = _parse_block(1, data)
    assert 0 < int(a.fast.sum()) < len(lines), axis  # the limit is inside the range
    for s in _scanners():
        _assert_same(a, scan_block(1, data, s))


@pytest.mark.parametrize("size", [0, 1, 254, 255, 256, 510, 511, 4097])
def test_count_lines(size: int) -> None:
    """The GIL-free newline count (255-byte strides) equals bytes.count."""
    rng = np.random.default_rng(size)
    for density in (0.0, 0.1, 1.0):
        data = bytes(np.where(rng.random(size) < density, 10, 97).astype(np.uint8))
        for s in _scanners():
            assert s.count_lines(data) == data.count(b"\n"), (s.COMPILED, density)
