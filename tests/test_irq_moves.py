"""Allocations a 6.12 kernel made while an interrupt freed objects on the same
CPU (slubsim.replay.TraceFacts._irq_moves): the trace's irq-flags column is
read, and the allocation is replayed before the irq's frees."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TRACES, ingest_lines, needs_shared
from slubsim.replay import Replayer, ReplayOptions
from slubsim.trace.events import F_IRQ, OP_ALLOC, OP_FREE
from slubsim.trace.ingest import ingest
from slubsim.trace.store import EventStore

K1 = 0xFFFF888140000000  # kmalloc-64 slabs: order 0, 64 objects
K2 = K1 + 0x3000
K3 = K1 + 0x7000


class _Lines:
    """ftrace text of kmalloc/kfree events, 10 us apart."""

    def __init__(self) -> None:
        self.t = 1.0
        self.out = ["# tracer: nop\n"]

    def add(self, cpu: int, flags: str, what: str) -> None:
        self.t += 1e-5
        self.out.append(f"  t-1 [{cpu:03d}] {flags}  {self.t:.6f}: {what}\n")

    def alloc(self, cpu: int, flags: str, p: int) -> None:
        self.add(
            cpu,
            flags,
            f"kmalloc: call_site=f+0x1/0x2 ptr={p:x} bytes_req=64 bytes_alloc=64 "
            "gfp_flags=GFP_KERNEL node=-1 accounted=false",
        )

    def rcu_free(self, cpu: int, flags: str, p: int) -> None:
        self.add(cpu, flags, f"kfree: call_site=rcu_core+0x1/0x2 ptr={p:x}")


def _trace(tmp_path: Path, irq: str, version: str = "6.12") -> EventStore:
    """CPU 0 takes all 64 objects of K1 (its cpu slab, now empty), CPU 1 one
    of K3; then an interrupt on CPU 0 (flags ``irq``) frees object 5 of K1
    and CPU 1's object, and the allocation CPU 0's task was making returns
    object 0 of a new slab K2, and the next one object 1."""
    tr = _Lines()
    for i in range(64):
        tr.alloc(0, ".....", K1 + 64 * i)
    tr.alloc(1, ".....", K3)
    tr.rcu_free(0, irq, K1 + 64 * 5)
    tr.rcu_free(0, irq, K3)
    tr.alloc(0, ".N...", K2)
    tr.alloc(0, ".....", K2 + 64)
    return ingest_lines(tmp_path, tr.out, version)


def _replay(st: EventStore, batch_rows: int = 1 << 16) -> tuple[Replayer, dict[str, object]]:
    opt = ReplayOptions(pretrace="ignore", lockstep=True, validate=True, batch_rows=batch_rows)
    rp = Replayer(st, opt)
    res = rp.run()
    rp.kernel.validate()  # every object in exactly one place
    return rp, res["caches"]["kmalloc-64"]


def test_ingest_marks_rows_of_irq_lines(tmp_path: Path) -> None:
    st = _trace(tmp_path, "..s..")
    op, fl = st.columns["op"], st.columns["flags"]
    irq = (fl & F_IRQ) != 0
    assert int(irq.sum()) == 2 and bool((op[irq] == OP_FREE).all())
    assert not bool(irq[op == OP_ALLOC].any())


@pytest.mark.parametrize(
    ("flags", "batch_rows"),
    [
        ("..s..", 1 << 16),
        (".Hs1.", 1 << 16),
        ("d.h1.", 1 << 16),
        # batches ending inside the run, at the allocation, right after it:
        # the prepass looks back into the previous batch, the replay carries
        # the whole move into one batch
        ("..s..", 66),
        ("..s..", 67),
        ("..s..", 68),
        ("..s..", 8),
    ],
)
def test_an_allocation_during_an_irq_is_replayed_before_its_frees(
    tmp_path: Path, flags: str, batch_rows: int
) -> None:
    rp, res = _replay(_trace(tmp_path, flags), batch_rows)
    assert [(r, a) for r, a in rp.facts.irq_moves] == [([65, 66], 67)]
    assert rp.warnings["alloc_during_irq_replayed_first"] == 1
    ls = res["lockstep"]
    assert ls["checked"] == ls["same_object"] == 67  # type: ignore[index]
    c = res["counters"]
    # the allocation found CPU 0's cpu slab empty and made K2; the irq's free
    # into the now full K1 put it on CPU 0's partial list; the other object's
    # slab is CPU 1's cpu slab
    assert c["alloc_slab"] == 3  # type: ignore[index]
    assert c["cpu_partial_free"] == 1 and c["free_frozen"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("flags", "version"),
    [
        (".....", "6.12"),  # task context: the frees came first
        ("..s..", "7.3"),  # sheaves: a fresh slab's object 0 proves nothing
    ],
)
def test_no_move_without_the_evidence(tmp_path: Path, flags: str, version: str) -> None:
    rp, res = _replay(_trace(tmp_path, flags, version))
    assert rp.facts.irq_moves == []
    if version == "6.12":
        # the free went to CPU 0's empty cpu slab, which then served the
        # allocation: the model parts from the kernel's objects there
        ls = res["lockstep"]
        assert ls["same_object"] == 65  # type: ignore[index]
        assert res["counters"]["free_fastpath"] == 1  # type: ignore[index]


@needs_shared
def test_612_boot_bundle_moves_agree_with_and_without_the_hit_path() -> None:
    """On the real v612-boot trace the prepass finds the shmem_inode_cache
    allocation (and one more), and the compiled hit path replays the moved
    rows exactly as the full model does."""
    st = ingest(TRACES / "v612-boot-mixed-4cpu")
    runs = [Replayer(st, ReplayOptions(hit_path=hp)) for hp in (None, False)]
    res = [rp.run() for rp in runs]
    assert len(runs[0].facts.irq_moves) == 2
    assert runs[0].warnings["alloc_during_irq_replayed_first"] == 2
    counters = [{c: v["counters"] for c, v in r["caches"].items()} for r in res]
    assert counters[0] == counters[1]


def test_moves_are_listed_by_row(tmp_path: Path) -> None:
    """Two moves in one batch, the later one into a slab at a lower address:
    listed by allocation row (the replay applies them in that order)."""
    tr = _Lines()
    for i in range(64):
        tr.alloc(0, ".....", K1 + 64 * i)
    tr.rcu_free(0, "..s..", K1 + 64 * 5)
    for i in range(64):
        tr.alloc(0, ".....", K2 + 64 * i)
    tr.rcu_free(0, "..s..", K2 + 64 * 7)
    tr.alloc(0, ".....", K1 - 0x2000)
    rp, _ = _replay(ingest_lines(tmp_path, tr.out, "6.12"))
    assert rp.facts.irq_moves == [([64], 65), ([129], 130)]
    assert rp.warnings["alloc_during_irq_replayed_first"] == 2
