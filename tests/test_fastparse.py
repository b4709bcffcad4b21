"""The vectorised block parser and the block ingester agree with the
line-by-line reference (parse_line + Ingester.consume) exactly."""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import slubsim.trace.ingest as ingest_mod
from mutations import mutated_lines
from slubsim.cli import sample_trace
from slubsim.trace.fastparse import parse_block
from slubsim.trace.ftrace import (
    E_CACHE_ALLOC,
    E_KFREE_RCU,
    E_KMALLOC,
    irq_context,
    parse_hex,
    parse_line,
)
from slubsim.trace.ingest import IngestError, ingest
from slubsim.trace.io import TraceFormatError, iter_blocks

DATA = Path(__file__).parent / "data"
TRACES = [DATA / "numa2-cut", DATA / "v612-cut", sample_trace()]

ALLOC = (
    "          a-1  [001] .....    12.000001: kmem_cache_alloc: call_site=f+0x1/0x2 "
    "ptr=ffff888100000000 name=filp bytes_req=168 bytes_alloc=192 gfp_flags=GFP_KERNEL "
    "node=-1 accounted=false"
)


RCU = (
    "   a-1  [000] ..Zff     6.273031: kfree_rcu: (kvfree_call_rcu+0x0/0x2aa) "
    "ptr=0xffff8881009df900 head=0xffff8881009df908 caller=mas_wr_node_store+0x22a/0x322"
)


def _fields(line: str) -> tuple[object, ...]:
    r = parse_line(line)
    assert r is not None
    ptr = r[5]
    if r[0] == E_KFREE_RCU:  # a kprobe line: its fields in a dict
        assert isinstance(r[12], dict)
        ptr = parse_hex(r[12]["ptr"])
    base: tuple[object, ...] = (r[0], r[1], r[2], ptr, r[6])
    if r[0] in (E_CACHE_ALLOC, E_KMALLOC):
        base += (r[7], r[8], r[9], r[10], r[11])
    return base


def _fast_fields(b: object, i: int) -> tuple[object, ...]:
    from slubsim.trace.fastparse import Block

    assert isinstance(b, Block)
    k = int(b.kind[i])
    name = b.names[b.name[i]] if b.name[i] >= 0 else None
    out: tuple[object, ...] = (k, int(b.cpu[i]), float(b.ts[i]), int(b.ptr[i]), name)
    if k in (E_CACHE_ALLOC, E_KMALLOC):
        out += (
            int(b.bytes_req[i]),
            int(b.bytes_alloc[i]),
            b.gfps[b.gfp[i]],
            int(b.node[i]),
            b.call_sites[b.call_site[i]],
        )
    return out


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_fast_line_parses_as_parse_line(trace: Path) -> None:
    f = trace / "trace.txt.xz" if trace.is_dir() else trace
    data = lzma.decompress(f.read_bytes())
    b = parse_block(1, data)
    lines = data.decode().split("\n")[:-1]
    assert b.n == len(lines)
    fast = b.fast.tolist()
    assert sum(fast) > 0.7 * len(lines)  # the kmem events are read fast
    if "kfree_rcu:" in data.decode():
        assert any(fast[i] and b.kind[i] == E_KFREE_RCU for i in range(b.n))
    irq = 0
    for i, line in enumerate(lines):
        if fast[i]:
            assert _fast_fields(b, i) == _fields(line), line
            assert bool(b.irq[i]) == irq_context(line), line
            irq += bool(b.irq[i])
        else:
            assert not b.irq[i]
    if "..s.." in data.decode():  # softirq frees (rcu_core) in the real traces
        assert irq > 0


@pytest.mark.parametrize(
    "line",
    [
        ALLOC.replace("ptr=ffff", "ptr=0xffff"),  # 0x: parse_line's int() reads it
        ALLOC.replace("ptr=ffff888100000000", "ptr=(null)"),
        ALLOC.replace("  a-1", "  a[2]b-1"),  # a bracket in the task name
        ALLOC.replace(" name=filp", " name=filp\t"),
        ALLOC.replace("bytes_req=168", "bytes_req=16x8"),
        ALLOC.replace("bytes_req=168 ", "bytes_req=168  "),
        ALLOC.replace("ptr=", "ptr= "),
        ALLOC.replace("kmem_cache_alloc:", "kmem_cache_alloc_node:"),
        ALLOC.replace("kmem_cache_alloc:", "kmem:kmem_cache_alloc:"),  # perf script
        ALLOC.replace(".....", ".......x"),  # not an irq-flags column
        ALLOC.replace(".....", "a b"),
        ALLOC.replace("12.000001", "12.0000001234"),
        ALLOC.replace("12.000001", "12000001"),
        ALLOC.replace("node=-1", "node=--1"),
        ALLOC.replace("filp", "filé"),
        "   a-1  [001] .....  12.000001: kfree: call_site=f+0x1/0x2 ptr=ffff888100000000 x=1",
        "   a-1  [001] .....  12.000001: kmem_cache_free: call_site=f ptr=ffff888100000000 name=",
        "# a-1  [001] .....  12.000001: kfree: call_site=f+0x1/0x2 ptr=ffff888100000000",
        RCU.replace("(kvfree_call_rcu", "(kvfree=call_rcu"),
        RCU + " ptr=0xffff888100000040",  # parse_fields keeps the last ptr
        RCU.replace("ptr=0x", "ptr="),
        RCU.replace(" head=", "  head="),
        RCU,
    ],
)
def test_odd_lines_are_left_to_parse_line(line: str) -> None:
    """Each odd line is either not read fast or read exactly as parse_line
    reads it; the normal line beside it is read fast."""
    data = (ALLOC + "\n" + line + "\n").encode()
    b = parse_block(1, data)
    assert bool(b.fast[0])
    assert _fast_fields(b, 0) == _fields(ALLOC)
    if bool(b.fast[1]):
        assert _fast_fields(b, 1) == _fields(line)


def test_trace_cmd_layout_and_timestamps_round_like_float() -> None:
    lines = [
        "     a-1  [003]  4294.967295: kfree: call_site=f+0x1/0x2 ptr=ffff888100000040",
        "     a-1  [003] d..1.  0.1: kfree: call_site=f ptr=ffff888100000040",
        "     a-1  [003] d..1.  123456.12345678: kfree: call_site=f ptr=ffff888100000040",
        "  a-1 [3] d..1. 99999999.99999999: kmem_cache_free: call_site=f ptr=ffff888100000040",
        # nanoseconds (9 digits) are beyond the 8-digit fast conversion
        "     a-1  [003] d..1.  123456.123456789: kfree: call_site=f ptr=ffff888100000040",
    ]
    b = parse_block(7, ("\n".join(lines) + "\n").encode())
    assert b.fast.tolist() == [True, True, True, False, False]  # 10**16 > 2**53: not exact
    for i, line in enumerate(lines[:3]):
        assert _fast_fields(b, i) == _fields(line)
    assert b.first == 7


def _store_equal(a: object, b: object) -> None:
    from slubsim.trace.store import EventStore

    assert isinstance(a, EventStore) and isinstance(b, EventStore)
    assert a.meta == b.meta
    for c in a.columns:
        assert np.array_equal(a.columns[c], b.columns[c]), c


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.parent.name + "/" + p.name)
def test_block_ingest_equals_line_ingest(trace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block pipeline (in process, and with parser processes) builds
    the same store as the line-by-line path (``workers=2``: parse_line in
    processes, consume here) -- kprobe pairing, prefilled sheaves, unnamed
    6.12 allocations and pre-trace frees included."""
    reference = ingest(trace, workers=2)
    _store_equal(ingest(trace), reference)
    monkeypatch.setattr(ingest_mod, "PARALLEL_PARSE_BYTES", 0)
    monkeypatch.setattr(ingest_mod, "BLOCK_BYTES", 1 << 16)  # many blocks
    _store_equal(ingest(trace), reference)


def test_errors_keep_their_line_numbers(tmp_path: Path) -> None:
    good = ALLOC + "\n"
    f = tmp_path / "t.txt"
    f.write_text(good * 5 + "garbage here\n" + good)
    with pytest.raises(IngestError, match=r"t.txt:6: not a trace event line"):
        ingest(f)
    f.write_bytes((good * 3).encode() + b"\xff\x00\x01\x02\x03 binary\n")
    with pytest.raises(TraceFormatError, match=r"t.txt:4: binary data"):
        ingest(f)
    f.write_text(good + "garbage here\n" + good.replace("ffff888100000000", "ffff888100000040"))
    s2 = ingest(f, skip_malformed=True)
    assert s2.n == 2
    w = {x["kind"]: x for x in s2.warnings}
    assert w["malformed_line"]["examples"][0].startswith("t.txt:2:")


def test_slow_block_leaves_every_line_to_parse_line() -> None:
    from slubsim.trace.fastparse import slow_block

    b = slow_block(3, (ALLOC + "\n" + RCU + "\n").encode())
    assert b.n == 2 and not b.fast.any() and b.line(1) == RCU.encode()


_TOKENS = [
    ALLOC,
    RCU,
    "   a-1  [002] .....  7.000002: kfree: call_site=g+0x2/0x3 ptr=ffff888100000080",
    "   a-1  [002] d..1. 7.000003: kmem_cache_free: call_site=h ptr=ffff8881000000c0 name=filp",
    "   a-1  [002] .Ns1. 7.000004: kmem_cache_free: call_site=rcu_core+0x1/0x2 "
    "ptr=ffff888100000100 name=filp",
    "  b-22  [001] ..... 8.5: kmalloc: call_site=k ptr=ffff888100001000 bytes_req=100 "
    "bytes_alloc=128 gfp_flags=GFP_KERNEL|__GFP_ZERO node=0 accounted=false",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_lines(_TOKENS, 0x7F))
def test_mutated_lines_are_read_fast_only_as_parse_line_reads_them(texts: list[str]) -> None:
    """Property: any line -- a good one with up to three characters replaced
    or inserted anywhere -- is either left to parse_line or read exactly as
    parse_line reads it."""
    b = parse_block(1, ("\n".join(texts) + "\n").encode())
    assert b.n == len(texts)
    for i, t in enumerate(texts):
        if bool(b.fast[i]):
            try:
                expected = _fields(t)
            except Exception as e:  # parse_line rejects what the fast path read
                raise AssertionError(f"fast-read line parse_line rejects: {t!r}") from e
            assert _fast_fields(b, i) == expected, t
            assert bool(b.irq[i]) == irq_context(t), t


def _plain_kmem_trace(path: Path, seed: int, n: int = 3000) -> None:
    """Plain kmem events (no kprobes, no markers) with every state the column
    resolver must hand back to the line loop: pointer reuse without a free,
    frees of never-seen pointers, a free naming another cache, kfree of
    kmalloc objects, NULL frees, frees across block boundaries."""
    import random

    rng = random.Random(seed)
    caches = [("filp", 168, 192), ("dentry", 192, 192), ("kmalloc-64", 64, 64)]
    live: dict[int, str] = {}
    out = ["# tracer: nop", "#"]
    ts = 100.0
    for _ in range(n):
        ts += 0.000001 * rng.randint(1, 50)
        cpu = rng.randint(0, 3)
        pre = f"   task-{rng.randint(1, 9)}  [{cpu:03d}] .....  {ts:.6f}: "
        r = rng.random()
        if r < 0.5 or not live:
            if r < 0.03 and live:
                p = rng.choice(list(live))  # reuse without a free
            else:
                p = 0xFFFF888100000000 + 64 * rng.randint(0, 400)
            if rng.random() < 0.3:
                gfp = rng.choice(["GFP_KERNEL", "GFP_KERNEL|__GFP_RECLAIMABLE"])
                out.append(
                    pre + f"kmalloc: call_site=k+0x1/0x2 ptr={p:016x} bytes_req=40 "
                    f"bytes_alloc=64 gfp_flags={gfp} node=-1 accounted=false"
                )
                live[p] = "kmalloc"
            else:
                nm, req, al = rng.choice(caches)
                out.append(
                    pre + f"kmem_cache_alloc: call_site=c{rng.randint(0, 3)}+0x1/0x2 "
                    f"ptr={p:016x} name={nm} bytes_req={req} bytes_alloc={al} "
                    f"gfp_flags=GFP_KERNEL node=-1 accounted=false"
                )
                live[p] = nm
        else:
            if r < 0.51:
                p = 0xFFFF888200000000 + 64 * rng.randint(0, 50)  # never seen
                nm = rng.choice(caches)[0]
            elif r < 0.52:
                # never seen, on a page of known objects: the page names the cache
                p = 0xFFFF888100000000 + 64 * rng.randint(0, 400) + 8
                nm = "kmalloc"
            elif r < 0.53:
                p, nm = 0, "filp"
            else:
                p = rng.choice(list(live))
                nm = live.pop(p)
                if r < 0.54:
                    nm = "dentry" if nm != "dentry" else "filp"  # a name mismatch
            if nm == "kmalloc" or rng.random() < 0.2:
                out.append(pre + f"kfree: call_site=f+0x1/0x2 ptr={p:016x}")
            else:
                out.append(pre + f"kmem_cache_free: call_site=f+0x1/0x2 ptr={p:016x} name={nm}")
    # a clean tail (resolved over columns): the last named allocation of each
    # call site
    tail = [0xFFFF888400000000 + 64 * j for j in range(12)]
    for j, p in enumerate(tail):
        ts += 0.00001
        nm, req, al = caches[(j * 7 + seed) % 2]
        out.append(
            f"   task-1  [001] .....  {ts:.6f}: kmem_cache_alloc: call_site=c{j % 4}+0x1/0x2 "
            f"ptr={p:016x} name={nm} bytes_req={req} bytes_alloc={al} "
            f"gfp_flags=GFP_KERNEL node=-1 accounted=false"
        )
    for j, p in enumerate(tail):
        ts += 0.00001
        nm = caches[(j * 7 + seed) % 2][0]
        out.append(
            f"   task-1  [001] .....  {ts:.6f}: kmem_cache_free: call_site=f ptr={p:016x} name={nm}"
        )
    # unnamed (6.x-style) allocations on fresh pages, never freed, of a size
    # two caches share: only the call site (last named allocation) names them
    for k in range(8):
        ts += 0.00001
        out.append(
            f"   task-1  [000] .....  {ts:.6f}: kmem_cache_alloc: call_site=c{k % 4}+0x1/0x2 "
            f"ptr={0xFFFF888300000000 + 4096 * k:016x} bytes_req=168 bytes_alloc=192 "
            f"gfp_flags=GFP_KERNEL node=-1 accounted=false"
        )
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_column_resolver_equals_line_ingest(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of plain kmem events are resolved over their columns (or, in
    an unusual state, handed back to the line loop): the store is the line
    path's, whatever the block size."""
    f = tmp_path / "plain.txt"
    _plain_kmem_trace(f, seed)
    reference = ingest(f, workers=2, skip_malformed=True)
    for block in (1 << 11, 1 << 13, 1 << 22):
        monkeypatch.setattr(ingest_mod, "BLOCK_BYTES", block)
        _store_equal(ingest(f, skip_malformed=True), reference)
    # and the column resolver did take blocks of it (the rest went line by line)
    ing = ingest_mod.Ingester("plain.txt", {})
    taken = 0
    for first, data in iter_blocks(f, 1 << 11):
        blk = parse_block(first, data)
        if ing._consume_columns(blk):
            taken += 1
        else:
            ing.consume_block(blk, f, True)
    assert taken > 0


def test_truncated_stream_reports_the_lines_read(tmp_path: Path) -> None:
    """Blocks are read in pieces of at most 1 MiB, so a stream cut after
    megabytes of text still says how far it got (and cuts at a line)."""
    text = "".join(
        ALLOC.replace("ffff888100000000", f"{0xFFFF888100000000 + 64 * i:016x}") + "\n"
        for i in range(40000)
    )
    f = tmp_path / "t.txt.xz"
    f.write_bytes(lzma.compress(text.encode(), preset=0)[:-2000])
    with pytest.raises(TraceFormatError, match=r"t.txt.xz:(\d+): truncated xz stream") as e:
        ingest(f)
    read = int(str(e.value).split(":")[1])
    assert 6000 < read < 40000  # whole MiB pieces before the cut
    blocks = []
    with pytest.raises(TraceFormatError):
        for first, data in iter_blocks(f, 1 << 22):
            blocks.append((first, data))
    assert all(d.endswith(b"\n") for _, d in blocks)


def test_truncated_stream_before_its_first_line_names_no_line(tmp_path: Path) -> None:
    f = tmp_path / "t.txt.xz"
    f.write_bytes(lzma.compress((ALLOC + "\n").encode() * 10)[:40])
    with pytest.raises(
        TraceFormatError, match=r"t.txt.xz: truncated xz stream \(compressed file ends before"
    ):
        ingest(f)
