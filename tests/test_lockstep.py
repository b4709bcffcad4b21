"""Lockstep: per-allocation agreement of the model's objects with the kernel's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import TRACES, needs_shared
from slubsim.cache import KmemCache
from slubsim.cli import main
from slubsim.kernel import Kernel
from slubsim.lockstep import CacheLockstep
from slubsim.machine import Machine
from slubsim.replay import Replayer, ReplayOptions
from slubsim.trace.ingest import ingest
from slubsim.validate import validate_bundle

KBASE = 0xFFFF888140000000  # a "kernel" address range unlike the model's


def _two_slabs() -> tuple[KmemCache, list[int], list[int]]:
    """A cache and the objects it handed out from two of its slabs."""
    k = Kernel(Machine(cpus=1), version="7.3")
    s = k.kmem_cache_create("t64", 64)
    objs = [s.alloc(cpu=0) for _ in range(3 * s.objects)]
    by_slab: dict[int, list[int]] = {}
    for x in objs:
        by_slab.setdefault(s.slab_of(x).base, []).append(x)
    a, b = (sorted(v) for v in list(by_slab.values())[:2])
    return s, a, b


def _off(s: KmemCache, x: int) -> int:
    return x - s.slab_of(x).base


def test_pairing_and_offsets() -> None:
    s, a, b = _two_slabs()
    s1, s2 = s.slab_of(a[0]), s.slab_of(b[0])
    ls = CacheLockstep()
    # the first allocation pairs model slab 1 with kernel slab KBASE
    assert ls.check(s1, a[0], KBASE + _off(s, a[0]), 1.0, 0, "alloc")
    assert ls.check(s1, a[1], KBASE + _off(s, a[1]), 1.1, 0, "alloc")
    # same slab pair, another object: diverges; the first divergence is kept
    assert not ls.check(s1, a[2], KBASE + _off(s, a[3]), 1.2, 0, "alloc")
    # model slab 1 is paired with KBASE: a kernel object elsewhere diverges
    assert not ls.check(s1, a[3], KBASE + 0x1000 + _off(s, a[3]), 1.3, 0, "alloc")
    # an unpaired model slab meets an unpaired kernel slab at the same offset
    assert ls.check(s2, b[0], KBASE + 0x2000 + _off(s, b[0]), 1.4, 0, "alloc")
    r = ls.result()
    assert (r["checked"], r["same_object"], r["in_step_prefix"]) == (5, 3, 2)
    fd = r["first_divergence"]
    assert fd["ts"] == 1.2 and fd["kernel_ptr"] == f"0x{KBASE + _off(s, a[3]):x}"
    assert fd["model_slab_paired_with"] == f"0x{KBASE:x}"


def test_a_freed_model_slab_frees_its_kernel_partner() -> None:
    s, a, b = _two_slabs()
    s1, s2 = s.slab_of(a[0]), s.slab_of(b[0])
    ls = CacheLockstep()
    assert ls.check(s1, a[0], KBASE + _off(s, a[0]), 1.0, 0, "alloc")
    # kernel slab KBASE belongs to model slab 1 while that slab lives
    assert not ls.check(s2, b[0], KBASE + _off(s, b[0]), 1.1, 0, "alloc")
    s.slabs.discard(s1)  # as discard_slab() leaves it
    assert ls.check(s2, b[1], KBASE + _off(s, b[1]), 1.2, 0, "alloc")


def _alloc_trace(path: Path, ptrs: list[int]) -> Path:
    lines = ["# tracer: nop\n"]
    for i, p in enumerate(ptrs):
        lines.append(
            f"  t-1 [000] .....  {1.0 + i * 1e-6:.6f}: kmalloc: call_site=f+0x1/0x2 "
            f"ptr={p:x} bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 "
            "accounted=false\n"
        )
    path.write_text("".join(lines))
    return path


def test_a_trace_of_the_models_own_objects_is_in_step(tmp_path: Path) -> None:
    """Replay a trace, then a trace whose pointers are the objects the model
    handed out: every allocation is in step; swapping two of them is caught at
    exactly that allocation."""
    first = ingest(_alloc_trace(tmp_path / "a.txt", [KBASE + i * 64 for i in range(300)]))
    rp = Replayer(first, ReplayOptions(validate=False))
    rp.run()
    model_ptrs = rp.addr[:300]
    assert all(model_ptrs)
    own = ingest(_alloc_trace(tmp_path / "b.txt", model_ptrs))
    r = Replayer(own, ReplayOptions(validate=False, lockstep=True)).run()
    ls = r["caches"]["kmalloc-64"]["lockstep"]
    assert ls == {
        "checked": 300,
        "same_object": 300,
        "share": 1.0,
        "in_step_prefix": 300,
        "first_divergence": None,
        "sheaf_returns": {"checked": 0, "same_size": 0, "share": 1.0, "first_divergence": None},
    }
    swapped = list(model_ptrs)
    swapped[10], swapped[11] = swapped[11], swapped[10]
    r = Replayer(
        ingest(_alloc_trace(tmp_path / "c.txt", swapped)),
        ReplayOptions(validate=False, lockstep=True),
    ).run()
    ls = r["caches"]["kmalloc-64"]["lockstep"]
    assert (ls["same_object"], ls["in_step_prefix"]) == (298, 10)
    assert ls["first_divergence"]["kernel_ptr"] == f"0x{model_ptrs[11]:x}"
    # the original trace (kernel objects in address order) is not in step
    r = Replayer(first, ReplayOptions(validate=False, lockstep=True)).run()
    assert r["caches"]["kmalloc-64"]["lockstep"]["first_divergence"] is not None
    # and without the option nothing is checked or reported
    assert (
        "lockstep" not in Replayer(own, ReplayOptions(validate=False)).run()["caches"]["kmalloc-64"]
    )


def _prefill_trace(path: Path, sizes: list[int | None]) -> Path:
    """One prefill session of 3 maple_node objects per entry of ``sizes``
    on CPU 0, each returned with the kprobe's ``size=`` (None: not recorded)."""
    sheaf = 0xFFFF888100200000
    lines = ["# tracer: nop\n"]
    t = 1.0
    p = 0xFFFF888100400000

    def line(ev: str, fields: str) -> None:
        nonlocal t
        lines.append(f"  mt-1 [000] .....  {t:.6f}: {ev}: {fields}\n")
        t += 1e-5

    for size in sizes:
        line(
            "prefill_sheaf",
            '(kmem_cache_prefill_sheaf+0x0/0x1c2) gfp=0xcc0 count=3 name="maple_node" caller=x',
        )
        line("prefill_sheaf_ret", f"(mas+0xa9/0xc3 <- kmem_cache_prefill_sheaf) sheaf=0x{sheaf:x}")
        for _ in range(3):
            line(
                "alloc_from_sheaf",
                "(kmem_cache_alloc_from_sheaf_noprof+0x0/0x6f) "
                f'sheaf=0x{sheaf:x} name="maple_node"',
            )
            line(
                "kmem_cache_alloc",
                f"call_site=mas+0x1/0x2 ptr={p:x} name=maple_node bytes_req=256 "
                "bytes_alloc=256 gfp_flags=GFP_NOWAIT node=-1 accounted=false",
            )
            p += 256
        tail = "" if size is None else f"size={size} "
        line(
            "return_sheaf",
            f'(kmem_cache_return_sheaf+0x0/0xdd) sheaf=0x{sheaf:x} {tail}name="maple_node"',
        )
    path.write_text("".join(lines))
    return path


def test_prefilled_sheaf_sizes_at_return(tmp_path: Path) -> None:
    """At each traced return of a prefilled sheaf the kprobe's ``size=`` is
    the kernel's sheaf's count: the model's (a fresh sheaf refilled to the
    capacity -- 28 for 256-byte objects without a bundle's sysfs -- less the 3
    taken: 25, then 22) is compared with it; a return without the size is
    not counted."""
    store = ingest(_prefill_trace(tmp_path / "p.txt", [25, 20, None]))
    r = Replayer(store, ReplayOptions(validate=True, lockstep=True)).run()
    assert r["caches"]["maple_node"]["geometry"]["sheaf_capacity"] == 28
    sr = r["caches"]["maple_node"]["lockstep"]["sheaf_returns"]
    assert (sr["checked"], sr["same_size"]) == (2, 1)
    fd = sr["first_divergence"]
    assert (fd["cpu"], fd["kernel_size"], fd["model_size"]) == (0, 20, 22)
    # not a check without --lockstep
    r = Replayer(store, ReplayOptions(validate=False)).run()
    assert "lockstep" not in r["caches"]["maple_node"]
    out = CliRunner().invoke(main, ["replay", str(tmp_path / "p.txt"), "--lockstep"])
    assert out.exit_code == 0, out.output
    assert "sheaf returns" in out.stdout and "50.0%" in out.stdout


def test_validate_reports_lockstep(tmp_path: Path) -> None:
    from conftest import EXAMPLE_A
    from test_validate import make_bundle

    b = make_bundle(tmp_path, EXAMPLE_A)
    res = validate_bundle(b)
    ls = res["lockstep"]
    assert ls["checked"] == 100 and ls["caches_checked"] == 1
    assert set(ls["caches"]) == {"kmalloc-64"}
    r = CliRunner().invoke(main, ["validate", str(b), "--lockstep"])
    assert r.exit_code == 0, r.output
    assert "lockstep: 100 allocations checked" in r.stdout
    assert "first divergence" in r.stdout


@needs_shared
@pytest.mark.parametrize(
    ("bundle", "cache", "floor"),
    [
        # traced from boot: caches without pre-trace slabs stay in step
        ("boot-mixed-4cpu", "kmalloc-4k", 1.0),
        ("boot-mixed-4cpu", "seq_file", 1.0),
        ("boot-mixed-4cpu", "shmem_inode_cache", 0.99),
        ("v612-boot-mixed-4cpu", "filp", 1.0),
        ("v612-boot-mixed-4cpu", "kmalloc-4k", 1.0),
        ("v612-boot-mixed-4cpu", "vm_area_struct", 0.99),
        # an inode allocation made while rcu_core freed inodes on its CPU
        # (TraceFacts._irq_moves): 89.8 % before it was replayed first
        ("v612-boot-mixed-4cpu", "shmem_inode_cache", 1.0),
    ],
)
def test_boot_bundles_in_step(bundle: str, cache: str, floor: float) -> None:
    """The model hands out the kernel's own objects, allocation by allocation,
    for thousands of allocations (floors reached by this version)."""
    store = ingest(TRACES / bundle)
    r = Replayer(store, ReplayOptions(validate=False, lockstep=True, caches=[cache])).run()
    ls = r["caches"][cache]["lockstep"]
    assert ls["checked"] > 5000
    assert ls["share"] >= floor


def test_replay_cli_lockstep(tmp_path: Path) -> None:
    """`slubsim replay --lockstep` prints the per-cache table and puts the
    check in the JSON; without the flag neither appears."""
    trace = _alloc_trace(tmp_path / "t.txt", [KBASE + i * 64 for i in range(100)])
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["replay", str(trace), "--lockstep", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "allocations that got the kernel's own object" in r.stdout
    ls = json.loads(out.read_text())["caches"]["kmalloc-64"]["lockstep"]
    assert ls["checked"] == 100
    r = CliRunner().invoke(main, ["replay", str(trace)])
    assert r.exit_code == 0 and "kernel's own object" not in r.stdout
