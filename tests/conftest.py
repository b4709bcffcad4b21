from __future__ import annotations

from pathlib import Path

import pytest

from slubsim import Kernel, Machine
from slubsim.trace.store import EventStore

SHARED = Path(__file__).resolve().parents[2] / "shared"
TRACES = SHARED / "traces"
DATA = Path(__file__).resolve().parent / "data"


def shared_bundles(kernel_version: str | None = None) -> list[Path]:
    """Bundles in ../shared/traces (optionally of one kernel version)."""
    if not TRACES.is_dir():
        return []
    out = []
    for d in sorted(TRACES.iterdir()):
        if not (d / "slab_stats.json").is_file():
            continue
        is612 = d.name.startswith("v612-")
        if kernel_version == "7.3" and is612:
            continue
        if kernel_version == "6.12" and not is612:
            continue
        out.append(d)
    return out


needs_shared = pytest.mark.skipif(
    not TRACES.is_dir(),
    reason="../shared/traces (real kernel traces) is not present in this checkout",
)


def ingest_lines(tmp_path: Path, lines: list[str], version: str) -> EventStore:
    """Ingest ftrace ``lines`` (newline-terminated) written to a file under
    ``tmp_path``, as recorded by Linux ``version`` on 2 CPUs of one node."""
    from slubsim.trace.ingest import ingest

    f = tmp_path / "trace.txt"
    f.write_text("".join(lines))
    st = ingest(f)
    st.meta["kernel_version"] = version
    st.meta["machine"] = {"cpus": 2, "nodes": 1, "cpu_nodes": [0, 0]}
    return st


@pytest.fixture
def k1() -> Kernel:
    return Kernel(Machine(cpus=1), version="7.3")


def nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


#: the kernel's deltas for spec worked example A without the shrink (§9.4):
#: 100 kmalloc(64) then 100 kfree on CPU 0 of a one-CPU machine, read around
#: the workload (shared by the validate and record tests)
EXAMPLE_A = {
    "alloc_fastpath": 100,
    "free_fastpath": 100,
    "sheaf_refill": 120,
    "barn_get_fail": 2,
    "alloc_slab": 2,
    "sheaf_alloc": 1,
    "alloc_slowpath": 0,
    "free_slowpath": 0,
}


#: sysfs geometry files of a 7.3 kmalloc-64 (strings, as read from /sys/kernel/slab)
KMALLOC64_SYSFS = {
    "object_size": "64",
    "slab_size": "64",
    "align": "64",
    "order": "0",
    "objs_per_slab": "64",
    "min_partial": "5",
    "sheaf_capacity": "60",
    "ctor": "",
    "hwcache_align": "0",
    "reclaim_account": "0",
    "destroy_by_rcu": "0",
}
