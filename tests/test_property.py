"""Property test: random mixes of every operation over 4 CPUs on 2 nodes.

After every step the model's invariants hold (every object in exactly one
place, list and counter bookkeeping consistent: ``Kernel.validate()``), the
test's own record of live objects matches the model's, and each operation moved
the counters it must move.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from slubsim import FaultAttr, Kernel, KernelConfig, Machine

CPUS = st.integers(min_value=0, max_value=3)


class SlubMachine(RuleBasedStateMachine):
    version = "7.3"

    def __init__(self) -> None:
        super().__init__()
        cfg = KernelConfig(numa=True, pca_opt_in={"c64": 16, "c1k": 8})
        sheaves = {"sheaf_capacity": 16} if self.version == "6.18" else {}
        self.k = Kernel(Machine(cpus=4, nodes=2), version=self.version, config=cfg)
        k = self.k
        self.caches = [
            k.kmem_cache_create("c64", size=64, flags={"SLAB_NO_MERGE"}, **sheaves),
            k.kmem_cache_create("c1k", size=1000, flags={"SLAB_NO_MERGE"}, sheaf_capacity=3),
            k.kmem_cache_create("c5k", size=5000, flags={"SLAB_NO_MERGE"}),
            k.kmem_cache_create("dbg", size=40, flags={"SLAB_POISON", "SLAB_STORE_USER"}),
        ]
        self.live: list[list[int]] = [[] for _ in self.caches]
        self.sheaves: list[tuple[int, object]] = []

    @staticmethod
    def _alloc_counters(s) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
        if "alloc_cpu_cache" in s.stat_items:
            return ("alloc_fastpath", "alloc_slowpath", "alloc_cpu_cache")
        if "alloc_cpu_sheaf" in s.stat_items and s.sheaf_capacity:
            return ("alloc_cpu_sheaf", "alloc_fastpath", "alloc_slowpath")
        return ("alloc_fastpath", "alloc_slowpath")

    def _sum(self, ci: int, *names: str) -> int:
        st_ = self.caches[ci].stats()
        return sum(st_[n] for n in names)

    @rule(ci=st.integers(0, 3), cpu=CPUS, node=st.sampled_from([-1, -1, 0, 1]), irq=st.booleans())
    def alloc(self, ci: int, cpu: int, node: int, irq: bool) -> None:
        s = self.caches[ci]
        before = self._sum(ci, "alloc_fastpath", "alloc_slowpath")
        if irq:
            with s.cpu_lock_held(cpu):
                p = s.alloc(cpu=cpu, node=node, context="irq")
        else:
            p = s.alloc(cpu=cpu, node=node)
        assert self._sum(ci, *self._alloc_counters(s)) >= before + 1
        if p:
            assert p not in self.live[ci]
            self.live[ci].append(p)

    @precondition(lambda self: any(self.live))
    @rule(data=st.data(), cpu=CPUS, irq=st.booleans())
    def free(self, data: st.DataObject, cpu: int, irq: bool) -> None:
        ci = data.draw(st.sampled_from([i for i, lv in enumerate(self.live) if lv]))
        s = self.caches[ci]
        p = self.live[ci].pop(data.draw(st.integers(0, len(self.live[ci]) - 1)))
        names = ("free_fastpath", "free_slowpath")
        if "free_cpu_cache" in s.stat_items:
            names += ("free_cpu_cache",)
        if "free_cpu_sheaf" in s.stat_items:
            names += ("free_cpu_sheaf",)
        before = self._sum(ci, *names)
        if irq:
            with s.cpu_lock_held(cpu):
                s.free(p, cpu=cpu, context="irq")
        else:
            s.free(p, cpu=cpu)
        assert self._sum(ci, *names) >= before + 1

    @rule(ci=st.integers(0, 3), cpu=CPUS, n=st.integers(1, 80))
    def alloc_bulk(self, ci: int, cpu: int, n: int) -> None:
        s = self.caches[ci]
        before = self._sum(ci, *self._alloc_counters(s))
        objs = s.alloc_bulk(n, cpu=cpu)
        if objs:
            assert len(objs) == n == len(set(objs))
            after = self._sum(ci, *self._alloc_counters(s))
            if self.version == "6.18":  # refills through the cpu slab count too
                assert after >= before + n
            else:
                assert after == before + n
            self.live[ci].extend(objs)

    @precondition(lambda self: any(self.live))
    @rule(data=st.data(), cpu=CPUS)
    def free_bulk(self, data: st.DataObject, cpu: int) -> None:
        ci = data.draw(st.sampled_from([i for i, lv in enumerate(self.live) if lv]))
        n = data.draw(st.integers(1, len(self.live[ci])))
        objs = self.live[ci][:n]
        del self.live[ci][:n]
        before = self._sum(ci, "free_fastpath", "free_slowpath")
        self.caches[ci].free_bulk(objs, cpu=cpu)
        after = self._sum(ci, "free_fastpath", "free_slowpath")
        if self.version == "7.3":
            assert after == before + n
        elif self.version == "6.18":
            assert after >= before
        else:  # 6.12: __slab_free counts once per detached freelist; arrays take some
            assert before <= after <= before + n

    @precondition(lambda self: any(self.live))
    @rule(data=st.data(), cpu=CPUS)
    def kfree_rcu(self, data: st.DataObject, cpu: int) -> None:
        ci = data.draw(st.sampled_from([i for i, lv in enumerate(self.live) if lv]))
        p = self.live[ci].pop()
        before = self._sum(ci, "free_fastpath", "free_slowpath")
        self.k.kfree_rcu(p, cpu=cpu)
        assert self._sum(ci, "free_fastpath", "free_slowpath") == before

    @rule()
    def grace_period(self) -> None:
        self.k.synchronize_rcu()

    @rule(ci=st.sampled_from([0, 1]), cpu=CPUS, size=st.integers(1, 8))
    def prefill(self, ci: int, cpu: int, size: int) -> None:
        if len(self.sheaves) > 3 or not self.caches[ci].layer.has_prefill:
            return
        s = self.caches[ci]
        before = self._sum(ci, "alloc_fastpath", "alloc_slowpath")
        sh = s.prefill_sheaf(size, cpu=cpu)
        if sh is not None:
            assert sh.size >= size
            self.sheaves.append((ci, sh))
            for _ in range(min(size, 3)):
                self.live[ci].append(s.alloc_from_sheaf(sh))
        if size <= s.sheaf_capacity and self.version == "7.3":
            assert self._sum(ci, "alloc_fastpath", "alloc_slowpath") == before

    @precondition(lambda self: self.sheaves)
    @rule(cpu=CPUS, grow=st.booleans())
    def return_sheaf(self, cpu: int, grow: bool) -> None:
        ci, sh = self.sheaves.pop()
        s = self.caches[ci]
        if grow:
            new = s.refill_sheaf(sh, sh.size + 5, cpu=cpu)  # type: ignore[attr-defined]
            if new is not None:
                sh = new
        s.return_sheaf(sh, cpu=cpu)  # type: ignore[arg-type]

    @rule(ci=st.integers(0, 3), cpu=CPUS)
    def shrink(self, ci: int, cpu: int) -> None:
        self.caches[ci].shrink(cpu=cpu)

    @rule(ci=st.integers(0, 3), cpu=CPUS)
    def flush_cpu(self, ci: int, cpu: int) -> None:
        self.caches[ci].flush_cpu(cpu)

    @rule(cpu=CPUS, size=st.sampled_from([8, 100, 3000, 9000]))
    def kmalloc_kfree(self, cpu: int, size: int) -> None:
        p = self.k.kmalloc(size, cpu=cpu)
        if p:
            self.k.kfree(p, cpu=(cpu + 1) % 4)

    @rule(on=st.booleans(), min_order=st.integers(0, 3))
    def page_faults(self, on: bool, min_order: int) -> None:
        self.k.machine.inject_page_alloc_failures(
            FaultAttr(probability=50, min_order=min_order, seed=min_order) if on else None
        )

    @invariant()
    def model_is_consistent(self) -> None:
        self.k.validate()
        for s, lv in zip(self.caches, self.live, strict=True):
            assert s.live_objects() == len(lv)

    def teardown(self) -> None:
        self.k.machine.inject_page_alloc_failures(None)
        for ci, sh in self.sheaves:
            self.caches[ci].return_sheaf(sh)  # type: ignore[arg-type]
        for s, lv in zip(self.caches, self.live, strict=True):
            for p in lv:
                s.free(p, cpu=0)
        self.k.rcu_barrier()
        self.k.validate()


SlubMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SLUBSIM_PROPERTY_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSlubProperties = SlubMachine.TestCase


class ClassicMachine(SlubMachine):
    version = "6.12"


ClassicMachine.TestCase.settings = SlubMachine.TestCase.settings
TestClassicProperties = ClassicMachine.TestCase


class PcaMachine(SlubMachine):
    version = "rfc-pca-v3"


PcaMachine.TestCase.settings = SlubMachine.TestCase.settings
TestPcaProperties = PcaMachine.TestCase


class OptInMachine(SlubMachine):
    version = "6.18"


OptInMachine.TestCase.settings = SlubMachine.TestCase.settings
TestOptInProperties = OptInMachine.TestCase
