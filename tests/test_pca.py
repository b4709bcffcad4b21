"""The 2023 RFC percpu array (v2 and v3) on top of 6.12."""

from __future__ import annotations

import pytest

from conftest import nonzero
from slubsim import Kernel, KernelConfig, Machine, SlubsimUsageError
from slubsim.cli import sample_trace
from slubsim.replay import ReplayOptions, replay
from slubsim.trace.ingest import ingest


def make(version: str = "rfc-pca", cpus: int = 1):  # type: ignore[no-untyped-def]
    k = Kernel(Machine(cpus=cpus), version=version)
    return k, k.kmem_cache_create("maple_node", size=256)


def test_v2_array_is_filled_only_by_frees_and_bypassed_when_empty_or_full() -> None:
    k, s = make()
    assert s.name == "maple_node" and s.sysfs_dir == "maple_node" and s.layer.count == 32
    objs = [s.alloc(0) for _ in range(40)]
    assert s.stats()["alloc_cpu_cache"] == 0  # empty array: bypassed, no refill in v2
    for p in objs:
        s.free(p, 0)
    st = s.stats()
    assert st["free_cpu_cache"] == 32  # full after 32 frees, the rest bypass
    assert st["free_fastpath"] + st["free_slowpath"] == 8
    again = [s.alloc(0) for _ in range(40)]
    assert s.stats()["alloc_cpu_cache"] == 32
    assert again[:32] == list(reversed(objs[:32]))  # LIFO
    k.validate()


def test_v2_trylock_failure_bypasses_the_array() -> None:
    k, s = make()
    p = s.alloc(0)
    s.free(p, 0)  # now in the array
    with s.cpu_lock_held(0):
        q = s.alloc(0, context="irq")
    assert q != p and s.stats()["alloc_cpu_cache"] == 0
    s.free(q, 0)
    k.validate()


def test_v2_prefill_is_local_capped_and_checked() -> None:
    k, s = make(cpus=2)
    assert s.layer.prefill_percpu_array(0, 64) == -22  # larger than the array: -EINVAL
    assert s.layer.prefill_percpu_array(0, 20) == 20
    assert len(s.layer.arrays[0]) == 20 and not s.layer.arrays[1]  # this CPU only
    assert s.layer.prefill_percpu_array(0, 10) == 0  # already enough
    st = nonzero(s.stats())
    assert st["free_cpu_cache"] == 20 and st["alloc_fastpath"] + st["alloc_slowpath"] == 20
    k.validate()


def test_v3_refills_and_flushes_half_the_array() -> None:
    k, s = make("rfc-pca-v3")
    p = s.alloc(0)
    st = s.stats()
    assert st["cpu_cache_refill"] == 16 and st["alloc_cpu_cache"] == 1
    objs = [p] + [s.alloc(0) for _ in range(99)]
    for x in objs:
        s.free(x, 0)
    st = s.stats()
    assert st["free_cpu_cache"] == 100 and st["cpu_cache_flush"] > 0
    assert len(s.layer.arrays[0]) <= 32
    node_specific = s.alloc(0, node=0)  # v3: node-specific requests bypass the array
    assert s.stats()["alloc_cpu_cache"] == st["alloc_cpu_cache"]
    s.free(node_specific, 0)
    k.validate()


def test_setup_requires_no_merge() -> None:
    k = Kernel(Machine(cpus=1), version="rfc-pca", config=KernelConfig(pca_opt_in={}))
    merged = k.kmem_cache_create("foo", size=256)
    assert merged.name == "kmalloc-256"
    with pytest.raises(SlubsimUsageError, match="SLAB_NO_MERGE"):
        merged.layer.setup_percpu_array(32)


def test_replaying_a_73_trace_under_the_rfc() -> None:
    st = ingest(sample_trace())
    r = replay(st, ReplayOptions(kernel="rfc-pca", caches=["maple_node"]))
    c = r["caches"]["maple_node"]["counters"]
    assert c["alloc_cpu_cache"] > 0 and c["free_cpu_cache"] > 0
    assert "sheaf_refill" not in c
    warn = {w["kind"]: w["count"] for w in r["warnings"]}
    assert warn["prefill_translated_to_plain_allocs"] > 0
    r2 = replay(
        st, ReplayOptions(kernel="rfc-pca", caches=["maple_node"], overrides={"pca_capacity": 8})
    )
    assert r2["caches"]["maple_node"]["counters"]["free_cpu_cache"] != c["free_cpu_cache"]
