"""Trace readers and the ingest resolver."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import pytest

from conftest import DATA, needs_shared, shared_bundles
from slubsim.trace.events import (
    F_BULK_BOUND,
    F_PRETRACE,
    F_RCU_COMPLETION,
    OP_ALLOC,
    OP_ALLOC_BULK,
    OP_ALLOC_FROM_SHEAF,
    OP_FREE,
    OP_FREE_BULK,
    OP_KFREE_BULK,
    OP_KFREE_RCU,
    OP_LARGE_ALLOC,
    OP_LARGE_FREE,
    OP_PREFILL,
)
from slubsim.trace.ftrace import E_CACHE_ALLOC, E_KMALLOC, parse_line
from slubsim.trace.ingest import IngestError, ingest
from slubsim.trace.io import TraceFormatError
from slubsim.trace.store import EventStore

HDR = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 10/10   #P:2\n#\n"


def line(cpu: int, ts: float, ev: str, fields: str, task: str = "bash-1") -> str:
    return f"  {task:>16} [{cpu:03d}] .....  {ts:.6f}: {ev}: {fields}\n"


def write(tmp: Path, text: str, name: str = "t.txt") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


ALLOC73 = (
    "call_site=f+0x1/0x2 ptr=ffff888100001000 name=filp bytes_req=168 bytes_alloc=192 "
    "gfp_flags=GFP_KERNEL node=-1 accounted=false"
)


def test_line_formats_agree() -> None:
    ftrace = f"            bash-1234    [001] d..1.  1234.567890: kmem_cache_alloc: {ALLOC73}"
    tcmd_flags = f"bash-1234  [001] d..1.  1234.567890: kmem_cache_alloc: {ALLOC73}"
    tcmd = f"bash-1234  [001]  1234.567890: kmem_cache_alloc:  {ALLOC73}"
    perf = f"bash  1234 [001]  1234.567890: kmem:kmem_cache_alloc: {ALLOC73}"
    shuffled = (
        "bash-1234 [001] 1234.567890: kmem_cache_alloc: name=filp node=-1 "
        "bytes_alloc=192 ptr=0xffff888100001000 bytes_req=168 call_site=f+0x1/0x2 "
        "gfp_flags=GFP_KERNEL accounted=false"
    )
    parsed = [parse_line(x) for x in (ftrace, tcmd_flags, tcmd, perf, shuffled)]
    for p in parsed:
        assert p is not None
        kind, cpu, ts, ev, _task, ptr, name, breq, balloc, gfp, node, _cs, _ = p
        assert (kind, cpu, ts, ev, ptr, name, breq, balloc, gfp, node) == (
            E_CACHE_ALLOC,
            1,
            1234.56789,
            "kmem_cache_alloc",
            0xFFFF888100001000,
            "filp",
            168,
            192,
            "GFP_KERNEL",
            -1,
        )
    # 6.x kmem_cache_alloc has no name=
    p612 = parse_line(
        "x-1 [000] ..... 1.0: kmem_cache_alloc: call_site=a ptr=ffff888100002000 "
        "bytes_req=176 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false"
    )
    assert p612 is not None and p612[6] is None and p612[8] == 192
    assert (
        parse_line(
            "x-1 [000] 1.0: kmalloc: call_site=a ptr=0 bytes_req=1 bytes_alloc=8 "
            "gfp_flags=GFP_KERNEL node=0 accounted=false"
        )[0]
        == E_KMALLOC
    )


def test_pairing_resolution_and_warnings(tmp_path: Path) -> None:
    a = "ffff888100001000"
    b = "ffff888100001040"  # same page as a
    big = "ffff888120000000"
    text = HDR + "".join(
        [
            line(0, 1.0, "kmem_cache_alloc", ALLOC73),
            line(1, 1.1, "kfree", f"call_site=x ptr={a}"),  # kfree resolved by the live object
            line(0, 1.2, "kmem_cache_free", f"call_site=x ptr={b} name=filp"),  # pre-trace
            line(0, 1.3, "kfree", "call_site=x ptr=0000000000000010"),  # ZERO_SIZE_PTR
            line(
                0,
                1.4,
                "kmalloc",
                f"call_site=__kmalloc_noprof+0x1/0x2 ptr={big} bytes_req=20000 "
                "bytes_alloc=32768 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            ),
            line(
                0,
                1.4,
                "kmalloc",
                f"call_site=caller+0x1/0x2 ptr={big} bytes_req=20000 "
                "bytes_alloc=32768 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            ),
            line(1, 1.5, "kfree", f"call_site=x ptr={big}"),
            line(
                0,
                1.6,
                "kmalloc",
                "call_site=y ptr=ffff888100003000 bytes_req=100 bytes_alloc=128 "
                "gfp_flags=GFP_KERNEL|__GFP_RECLAIMABLE node=-1 accounted=false",
            ),
        ]
    )
    st = ingest(write(tmp_path, text))
    ops = st.columns["op"].tolist()
    assert ops == [OP_ALLOC, OP_FREE, OP_FREE, OP_LARGE_ALLOC, OP_LARGE_FREE, OP_ALLOC]
    assert st.columns["flags"].tolist()[2] == F_PRETRACE
    names = [st.caches[c]["name"] for c in st.columns["cache"].tolist() if c >= 0]
    assert names == ["filp", "filp", "filp", "kmalloc-rcl-128"]
    kinds = {w["kind"]: w for w in st.warnings}
    assert kinds["pretrace_free"]["count"] == 1 and kinds["null_free"]["count"] == 1
    assert kinds["large_kmalloc_duplicate"]["count"] == 1
    assert kinds["pretrace_free"]["examples"] == ["t.txt:7"]
    assert all(w["explained"] for w in st.warnings)


def test_kprobe_events(tmp_path: Path) -> None:
    m1, m2, m3 = "ffff888100010000", "ffff888100010100", "ffff888100010200"
    sheaf = "0xffff888100800000"
    objs = "{" + ",".join("0x" + x for x in (m1, m2)) + ",0x0,0x0}"
    maple = (
        "call_site=mas+0x1/0x2 ptr={p} name=maple_node bytes_req=256 bytes_alloc=256 "
        "gfp_flags=GFP_NOWAIT node=-1 accounted=false"
    )
    text = HDR + "".join(
        [
            line(0, 1.0, "kmem_cache_alloc", maple.format(p=m1)),
            line(0, 1.1, "kmem_cache_alloc", maple.format(p=m2)),
            # a bulk free whose continuation probe fires first (as on the real kernel)
            line(0, 1.2, "free_bulk_1", "(kmem_cache_free_bulk+0x0/0x3fa) size=2 objs={0x0}"),
            line(
                0,
                1.2,
                "free_bulk",
                f'(kmem_cache_free_bulk+0x0/0x3fa) size=2 name="maple_node" caller=x objs={objs}',
            ),
            # prefill on CPU 0, its kretprobe on CPU 1 (the task migrated)
            line(
                0,
                1.3,
                "prefill_sheaf",
                '(kmem_cache_prefill_sheaf+0x0/0x1c2) gfp=0xcc0 count=3 name="maple_node" caller=y',
                task="cp-7",
            ),
            line(
                1,
                1.4,
                "prefill_sheaf_ret",
                f"(mas+0xa9/0xc3 <- kmem_cache_prefill_sheaf) sheaf={sheaf}",
                task="cp-7",
            ),
            line(
                1,
                1.5,
                "alloc_from_sheaf",
                f"(kmem_cache_alloc_from_sheaf_noprof+0x0/0x6f) "
                f'sheaf={sheaf} size=32 name="maple_node"',
                task="cp-7",
            ),
            line(1, 1.5, "kmem_cache_alloc", maple.format(p=m3), task="cp-7"),
            line(1, 1.6, "kfree_rcu", f"(kvfree_call_rcu+0x0/0x2aa) ptr=0x{m3} head=0x0 caller=z"),
            line(
                1,
                1.7,
                "free_bulk",
                f"(kmem_cache_free_bulk+0x0/0x3fa) size=1 name=(fault) "
                f"caller=kvfree_rcu_bulk objs={{0x{m3}}}",
            ),
            line(
                0,
                1.8,
                "alloc_bulk",
                "(kmem_cache_alloc_bulk_noprof+0x0/0x1) gfp=0xcc0 size=2 "
                'arr=0x0 name="maple_node" caller=q',
                task="w-9",
            ),
            line(0, 1.9, "alloc_bulk_ret", "(x <- kmem_cache_alloc_bulk_noprof) ret=2", task="w-9"),
            line(0, 2.0, "kmem_cache_free", "call_site=q ptr=ffff888100010300 name=maple_node"),
        ]
    )
    st = ingest(write(tmp_path, text))
    ops = st.columns["op"].tolist()
    assert ops == [
        OP_ALLOC,
        OP_ALLOC,
        OP_FREE_BULK,
        OP_FREE_BULK,
        OP_PREFILL,
        OP_ALLOC_FROM_SHEAF,
        OP_KFREE_RCU,
        OP_KFREE_BULK,
        OP_ALLOC_BULK,
        OP_FREE,
    ]
    fl = st.columns["flags"].tolist()
    assert fl[7] == F_RCU_COMPLETION  # the delayed kfree_bulk of the kfree_rcu'd object
    assert fl[9] == F_BULK_BOUND and st.columns["size"].tolist()[9] == 8  # bound to row 8
    assert st.columns["size"].tolist()[4] == 3
    assert not [w for w in st.warnings if not w["explained"]]


def test_malformed_lines(tmp_path: Path) -> None:
    text = HDR + line(0, 1.0, "kmem_cache_alloc", ALLOC73) + "this is not an event\n"
    p = write(tmp_path, text)
    with pytest.raises(IngestError, match=r"t\.txt:6: not a trace event line"):
        ingest(p)
    st = ingest(p, skip_malformed=True)
    w = {x["kind"]: x for x in st.warnings}["malformed_line"]
    assert w["count"] == 1 and "t.txt:6" in w["examples"][0]
    bad = HDR + line(0, 1.0, "kmalloc", "call_site=x ptr=zzz bytes_alloc=8")
    with pytest.raises(IngestError, match=r"t\.txt:5: bad field value"):
        ingest(write(tmp_path, bad))


def test_bad_files(tmp_path: Path) -> None:
    text = HDR + "".join(
        line(0, 1.0 + i, "kmem_cache_alloc", ALLOC73.replace("1000", f"{i:04x}"))
        for i in range(3000)
    )
    xz = tmp_path / "t.txt.xz"
    xz.write_bytes(lzma.compress(text.encode()))
    assert ingest(xz).n == 3000
    cut = tmp_path / "cut.txt.xz"
    cut.write_bytes(xz.read_bytes()[: xz.stat().st_size // 2])
    with pytest.raises(TraceFormatError, match="truncated xz stream"):
        ingest(cut)
    gz = tmp_path / "t.txt.gz"
    gz.write_bytes(gzip.compress(text.encode())[:-200])
    with pytest.raises(TraceFormatError, match="truncated gzip"):
        ingest(gz)
    import zstandard

    zst = tmp_path / "t.txt.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    assert ingest(zst).n == 3000
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(TraceFormatError, match="empty file"):
        ingest(empty)
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\x7fELF\x00\x00\x01\x02" * 100)
    with pytest.raises(TraceFormatError, match="binary data"):
        ingest(binary)
    nokmem = write(tmp_path, HDR + line(0, 1.0, "sched_switch", "prev_comm=a"), "n.txt")
    with pytest.raises(IngestError, match="no kmem events"):
        ingest(nokmem)
    with pytest.raises(TraceFormatError, match="no such file"):
        ingest(tmp_path / "missing.txt")


def test_ring_buffer_loss_is_reported(tmp_path: Path) -> None:
    text = HDR.replace("10/10", "10/25") + line(0, 1.0, "kmem_cache_alloc", ALLOC73)
    text += "CPU:1 [LOST 15 EVENTS]\n"
    st = ingest(write(tmp_path, text))
    w = {x["kind"]: x for x in st.warnings}["ring_buffer_loss"]
    assert w["count"] == 2 and not w["explained"]


def test_committed_cuts_and_store_roundtrip(tmp_path: Path) -> None:
    for cut, version in (("numa2-cut", "7.3"), ("v612-cut", "6.12")):
        st = ingest(DATA / cut)
        assert st.meta["kernel_version"] == version
        assert st.n > 5000
        assert not [w for w in st.warnings if not w["explained"]], st.warnings
        out = tmp_path / f"{cut}.parquet"
        st.write(out)
        back = EventStore.read(out)
        assert back.n == st.n and back.caches == st.caches
        for name, col in st.columns.items():
            assert (back.columns[name] == col).all(), name
    numa = ingest(DATA / "numa2-cut")
    assert numa.meta["machine"] == {"cpus": 4, "nodes": 2, "cpu_nodes": [0, 0, 1, 1]}


# per-cache event counts of the shared bundles against meta.json:events_per_cache
KNOWN_DIFFERENCES = {
    # meta.json dedups large kmallocs by pointer; one pointer was kmalloc'ed,
    # kfree'd and kmalloc'ed again (lines 233748/234079), i.e. 5 allocations.
    "kmalloc-large",
    # kfrees whose cache cannot be known (pre-trace objects on unknown pages)
    "?unresolved",
    "?unattributed",
}


@needs_shared
@pytest.mark.parametrize("bundle", shared_bundles(), ids=lambda p: p.name)
def test_shared_bundle_counts_match_meta(bundle: Path) -> None:
    from slubsim.trace.events import F_IMPLICIT

    st = ingest(bundle)
    unexplained = [w for w in st.warnings if not w["explained"]]
    assert not unexplained, unexplained
    meta = json.loads((bundle / "meta.json").read_text())
    mine: dict[str, dict[str, int]] = {}
    c = st.columns
    for op, cache, fl in zip(
        c["op"].tolist(), c["cache"].tolist(), c["flags"].tolist(), strict=True
    ):
        if cache < 0 or fl & F_IMPLICIT:
            continue
        info = st.caches[cache]
        d = mine.setdefault(info["sysfs_dir"] or info["name"], {"alloc": 0, "free": 0})
        if op in (OP_ALLOC, OP_ALLOC_FROM_SHEAF):
            d["alloc"] += 1
        elif op == OP_FREE:
            d["free"] += 1
    diffs = []
    for d, e in meta["events_per_cache"].items():
        if d in KNOWN_DIFFERENCES:
            continue
        for key in ("alloc", "free"):
            got = mine.get(d, {}).get(key, 0)
            if got != e.get(key, 0):
                diffs.append((d, key, e.get(key, 0), got))
    if bundle.name == "v612-boot-mixed-4cpu":
        # boot-time kmem_cache/kmem_cache_node allocations (35 each) have no name
        # in 6.12 and share slab sizes with kmalloc caches; they are attributed
        # by call site to :0000064/:0004096, and a few bio-160/:0000128/:0000256
        # allocations by size (see the closing note of the replay issue).
        total = sum(abs(m - g) for _, _, m, g in diffs)
        assert total <= 120, diffs
    else:
        assert not diffs, diffs


@pytest.mark.parametrize("compress", ["plain", "gzip", "xz"])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_iter_lines_reads_ahead_without_changing_lines(
    tmp_path: Path, compress: str, chunk: int
) -> None:
    import threading

    from slubsim.trace.io import iter_lines

    text = "# tracer: nop\r\nline two\n\nvery " + "long " * 300 + "line\nlast without newline"
    data = text.encode()
    f = tmp_path / "t"
    f.write_bytes(
        gzip.compress(data)
        if compress == "gzip"
        else lzma.compress(data)
        if compress == "xz"
        else data
    )
    want = [line.rstrip("\r") for line in text.split("\n")]
    got = list(iter_lines(f, chunk_bytes=chunk))
    assert got == list(enumerate(want, start=1))
    # a consumer that stops early leaves no reader thread behind
    it = iter_lines(f, chunk_bytes=chunk)
    next(it)
    it.close()
    assert not [t for t in threading.enumerate() if t.name == "slubsim-decompress"]


@pytest.mark.parametrize("trace", ["sample", "v612-cut"])
def test_ingest_streamed_to_a_file_equals_ingest_in_memory(tmp_path: Path, trace: str) -> None:
    import numpy as np

    from slubsim.cli import sample_trace

    src = sample_trace() if trace == "sample" else DATA / trace  # v612: 6.x back-patching
    whole = ingest(src)
    for chunk in (777, 0):  # many spilled chunks, then the default
        out = tmp_path / f"s{chunk}.parquet"
        st = ingest(src, out=out, row_chunk=chunk)
        assert st.path == out and st.n == whole.n
        for name, col in whole.columns.items():
            assert np.array_equal(col, st.columns[name]), name
        assert {k: v for k, v in st.meta.items() if k != "format"} == whole.meta
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".slubsim")] == []
    with pytest.raises(IngestError, match="does not exist"):
        ingest(src, out=tmp_path / "no" / "s.parquet")


def _km64(p: int) -> str:
    return (
        f"call_site=f+0x1/0x2 ptr={p:x} bytes_req=64 bytes_alloc=64 "
        "gfp_flags=GFP_KERNEL node=-1 accounted=false"
    )


def test_reuse_before_the_kprobes_is_a_plain_free_on_the_reusing_cpu(tmp_path: Path) -> None:
    """A pointer allocated again, with no free between, before any lab kprobe
    fired (a boot trace: its kfree_rcu or bulk free was not traced) is freed
    plainly just before the reuse on the reusing CPU -- so the model hands the
    same object out again; once the probes exist, an object live since before
    them is freed (plainly, on the reusing CPU) at the row where they started."""
    from slubsim.replay import Replayer, ReplayOptions
    from slubsim.trace.events import F_EARLY, F_IMPLICIT

    x, y = 0xFFFF888140001000, 0xFFFF888140001040
    text = HDR + "".join(
        [
            line(0, 1.0, "kmalloc", _km64(x)),
            line(0, 1.1, "kmalloc", _km64(y)),
            line(0, 1.2, "kmalloc", _km64(x)),  # reused: freed untraced before the probes
            line(1, 1.3, "kfree_rcu", "(kvfree_call_rcu+0x0/0x2aa) ptr=0x0 head=0x0 caller=z"),
            line(1, 1.4, "kmalloc", _km64(y)),  # live since before the probes
        ]
    )
    st = ingest(write(tmp_path, text))
    ops, fl = st.columns["op"].tolist(), st.columns["flags"].tolist()
    cpu, aux = st.columns["cpu"].tolist(), st.columns["aux"].tolist()
    assert ops == [OP_ALLOC, OP_ALLOC, OP_FREE, OP_ALLOC, OP_FREE, OP_ALLOC]
    assert (fl[2], cpu[2]) == (F_IMPLICIT, 0)
    assert fl[4] == F_IMPLICIT | F_EARLY and aux[4] == 4  # the row the probes started at
    assert {w["kind"]: w["count"] for w in st.warnings}["reuse_before_kprobes"] == 2
    # replayed (6.12: a fresh slab hands out objects 0, 1, ... in order): the
    # reuse gets the object just freed on its CPU, as the kernel's did; the
    # object freed at the probes' start went back to CPU 0's cpu slab (a
    # remote free), so CPU 1 starts a slab of its own
    r = Replayer(st, ReplayOptions(kernel="6.12", validate=False, lockstep=True)).run()
    ls = r["caches"]["kmalloc-64"]["lockstep"]
    assert (ls["checked"], ls["in_step_prefix"]) == (4, 3)
    # 7.3: the early free is a sheaf free on CPU 1, not a kfree_rcu (whose rcu
    # sheaf no traced rcu_free_sheaf would ever complete)
    per = Replayer(st, ReplayOptions(kernel="7.3", validate=False)).run()["caches"]["kmalloc-64"][
        "counters_per_cpu"
    ]
    assert per["free_rcu_sheaf"] == {} and per["free_fastpath"] == {"0": 1, "1": 1}


def test_bulk_bound_frees_bind_to_the_call_of_their_slab(tmp_path: Path) -> None:
    """The trace names no bulk-allocated pointer: a free of an unknown pointer
    binds to the latest alloc_bulk with objects left whose slab (that of its
    ``arr``, the maple node holding the slot array) holds the pointer, not to
    whichever call came last; a free in no call's slab binds to the oldest
    call with objects left; with none left it is a pre-trace free."""
    sa, sb, sc, sd = (0xFFFF888140000000 + k * 0x10000 for k in range(4))
    maple = (
        "call_site=mas+0x1/0x2 ptr={p:x} name=maple_node bytes_req=256 bytes_alloc=256 "
        "gfp_flags=GFP_NOWAIT node=-1 accounted=false"
    )

    def bulk(cpu: int, ts: float, arr: int, n: int, task: str) -> list[str]:
        return [
            line(
                cpu,
                ts,
                "alloc_bulk",
                f"(kmem_cache_alloc_bulk_noprof+0x0/0x1) gfp=0xcc0 size={n} "
                f'arr=0x{arr + 0x10:x} name="maple_node" caller=q',
                task=task,
            ),
            line(cpu, ts, "alloc_bulk_ret", f"(x <- kmem_cache_alloc_bulk_noprof) ret={n}", task),
        ]

    def free(cpu: int, ts: float, p: int) -> str:
        return line(cpu, ts, "kmem_cache_free", f"call_site=q ptr={p:x} name=maple_node")

    rows = [
        line(0, 1.0, "kmem_cache_alloc", maple.format(p=sa)),  # names the cache's pages
        *bulk(0, 1.1, sa, 2, "a-1"),  # row 1
        *bulk(1, 1.2, sb, 2, "b-2"),  # row 2
        free(1, 1.3, sa + 0x100),  # row 3: the call of slab A, not the latest
        free(1, 1.4, sc + 0x100),  # row 4: no call of slab C: the oldest, row 1
        *bulk(0, 1.5, sd, 2, "c-3"),  # row 5
        free(0, 1.6, sc + 0x200),  # row 6: row 1 is used up: row 2
        free(0, 1.7, sb + 0x300),  # row 7: slab B
        free(0, 1.8, sd + 0x100),  # row 8: slab D
        free(0, 1.9, sa + 0x200),  # row 9: slab A's call used up: the oldest left, row 5
        free(0, 2.0, sc + 0x300),  # row 10: nothing left: allocated before the trace
    ]
    text = HDR + "".join(rows)
    st = ingest(write(tmp_path, text))
    fl, size = st.columns["flags"].tolist(), st.columns["size"].tolist()
    assert st.columns["op"].tolist()[1:3] == [OP_ALLOC_BULK, OP_ALLOC_BULK]
    bound = {r: size[r] for r in range(len(fl)) if fl[r] == F_BULK_BOUND}
    assert bound == {3: 1, 4: 1, 6: 2, 7: 2, 8: 5, 9: 5}
    assert fl[10] == F_PRETRACE


def _prefill_session(cpu: int, ts: float, sheaf: int, ptrs: list[int], task: str) -> list[str]:
    """One traced kmem_cache_prefill_sheaf (count 5) / alloc_from_sheaf /
    kmem_cache_return_sheaf session of maple_node at call site dst_setup."""
    out = [
        line(
            cpu,
            ts,
            "prefill_sheaf",
            '(kmem_cache_prefill_sheaf+0x0/0x1c2) gfp=0xcc0 count=5 name="maple_node" caller=y',
            task=task,
        ),
        line(cpu, ts, "prefill_sheaf_ret", f"(m+0xa9/0xc3 <- p) sheaf=0x{sheaf:x}", task=task),
    ]
    for k, p in enumerate(ptrs):
        t = ts + 1e-5 * (k + 1)
        out += [
            line(
                cpu,
                t,
                "alloc_from_sheaf",
                f"(kmem_cache_alloc_from_sheaf_noprof+0x0/0x6f) sheaf=0x{sheaf:x} size=9 "
                'name="maple_node"',
                task=task,
            ),
            line(cpu, t, "kmem_cache_alloc", _dst(p), task=task),
        ]
    out.append(
        line(
            cpu,
            ts + 1e-4,
            "return_sheaf",
            f'(kmem_cache_return_sheaf+0x0/0xdd) sheaf=0x{sheaf:x} size=6 name="maple_node"',
            task=task,
        )
    )
    return out


def _dst(p: int, site: str = "dst_setup+0x168/0x190") -> str:
    return (
        f"call_site={site} ptr={p:x} name=maple_node bytes_req=256 bytes_alloc=256 "
        "gfp_flags=GFP_NOWAIT node=-1 accounted=false"
    )


def _blind_trace(tmp_path: Path, with_kprobe_defs: bool) -> Path:
    """Maple-node allocations before the first lab kprobe event: nine at the
    call site later seen allocating from prefilled sheaves -- on CPU 0 a
    burst of three, another event, a burst of three (CPU 1's one allocation
    in its middle), another event, then two 1 ms apart with nothing between
    them -- and one at another call site; then a traced session."""
    base = 0xFFFF888140010000
    dst, other = "dst_setup+0x168/0x190", ""
    blind = [
        (0.0010, dst, 0),
        (0.00101, dst, 0),
        (0.00102, dst, 0),
        (0.0015, other, 0),
        (0.0020, dst, 0),
        (0.00201, dst, 1),
        (0.00202, dst, 0),
        (0.00203, dst, 0),
        (0.0025, other, 0),
        (0.0030, dst, 0),
        (0.0040, dst, 0),
        (0.0050, "mas_alloc_nodes+0x39/0xc3", 0),
    ]
    rows = [
        line(cpu, 1.0 + t, "kmem_cache_alloc", _dst(base + 0x100 * k, site))
        if site
        else line(
            cpu,
            1.0 + t,
            "kmalloc",
            f"call_site=foo+0x1/0x2 ptr={0xFFFF888100200000 + 0x40 * k:x} bytes_req=64 "
            "bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false",
        )
        for k, (t, site, cpu) in enumerate(blind)
    ]
    rows += _prefill_session(0, 2.0, 0xFFFF888100800000, [base + 0x1000, base + 0x1100], "cp-3")
    d = tmp_path / "bundle"
    d.mkdir()
    if with_kprobe_defs:
        (d / "kprobe_events.txt").write_text("p:lab/prefill_sheaf kmem_cache_prefill_sheaf\n")
    return write(d, HDR + "".join(rows))


def test_allocations_before_the_kprobes_at_a_prefilled_sheaf_call_site(tmp_path: Path) -> None:
    """Before the lab kprobes exist the trace cannot show prefilled sheaves:
    an allocation there at a call site that, once they run, allocates from
    prefilled sheaves (the same instruction always calls the same API) is
    flagged F_PREFILLED; the store records the sessions' usual shape (prefill
    count, allocations per sheaf) and the row the probes started at.  A
    trace without kprobe definitions beside it is left alone."""
    from slubsim.trace.events import F_PREFILLED

    st = ingest(_blind_trace(tmp_path, with_kprobe_defs=True))
    fl = st.columns["flags"].tolist()
    flagged = [r for r, f in enumerate(fl) if f & F_PREFILLED]
    assert flagged == [0, 1, 2, 4, 5, 6, 7, 9, 10]  # not the kmalloc rows, nor row 11
    cid = next(c["id"] for c in st.caches if c["name"] == "maple_node")
    assert st.meta["prefill_sessions"] == {
        str(cid): {"count": 5, "allocs": 2, "by_allocs": {"2": 5}}
    }
    assert st.meta["kprobe_row"] == 12
    assert st.meta["header"]["allocations_from_inferred_prefilled_sheaves"] == 9

    other = tmp_path / "no-defs"
    other.mkdir()
    plain = ingest(_blind_trace(other, with_kprobe_defs=False))
    assert not any(f & F_PREFILLED for f in plain.columns["flags"].tolist())


def test_inferred_prefilled_sessions_replay(tmp_path: Path) -> None:
    """7.3 replays each run of F_PREFILLED allocations of a CPU with no other
    event of that CPU between them as one prefilled-sheaf session -- here CPU
    0's 3, 3 and 2 (the last two 1 ms apart: time does not split a session)
    and CPU 1's 1, plus the traced one -- each prefilled and returned, and
    none counts alloc_fastpath; 6.12 has no prefill API and allocates them
    plainly."""
    from slubsim.replay import Replayer, ReplayOptions

    st = ingest(_blind_trace(tmp_path, with_kprobe_defs=True))
    rp = Replayer(st, ReplayOptions(kernel="7.3", validate=True, lockstep=True))
    res = rp.run()["caches"]["maple_node"]
    c = res["counters"]
    assert sorted(rp.facts.pf_first.values()) == [1, 2, 3, 3]
    assert sorted(rp.facts.pf_last) == [2, 5, 7, 10]
    assert c["sheaf_prefill_fast"] + c["sheaf_prefill_slow"] == 5
    assert c["sheaf_return_fast"] + c["sheaf_return_slow"] == 5
    assert c["alloc_fastpath"] == 1  # the one at the other call site
    # the inferred sessions' allocations are checked in lockstep too
    assert res["lockstep"]["checked"] == 12
    r = Replayer(st, ReplayOptions(kernel="6.12", validate=True)).run()
    c612 = r["caches"]["maple_node"]["counters"]
    assert c612["alloc_fastpath"] + c612["alloc_slowpath"] == 12
    warned = {w["kind"]: w["count"] for w in r["warnings"]}
    assert warned["prefill_translated_to_plain_allocs"] >= 9


def test_inferred_session_prefills_for_its_allocations(tmp_path: Path) -> None:
    """An inferred session prefills the usual count of the probed sessions
    with as many allocations (``by_allocs``), and never fewer objects than it
    allocates, so its sheaf serves every allocation of the session: no
    allocation falls back to the main sheaf."""
    from slubsim.replay import Replayer, ReplayOptions

    st = ingest(_blind_trace(tmp_path, with_kprobe_defs=True))
    rp = Replayer(st, ReplayOptions(kernel="7.3", validate=True))
    r = rp.run()
    cid = next(c["id"] for c in st.caches if c["name"] == "maple_node")
    assert rp.pf_count_by_allocs == {cid: {2: 5}}
    warned = {w["kind"]: w["count"] for w in r["warnings"]}
    assert "model_sheaf_empty" not in warned
