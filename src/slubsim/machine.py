"""The simulated machine: CPUs, NUMA nodes and their page allocator.

``numa_node_id()`` of a CPU is its node; ``numa_mem_id()`` is the nearest node
with memory (the same node unless that node is memoryless).  CPUs can be taken
offline and back (``cpu_online``), which SLUB sees through its hotplug callbacks.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import SlubsimUsageError
from .faults import FaultAttr
from .page_alloc import PageAllocator


class Machine:
    """CPUs and NUMA nodes.

    >>> m = Machine(cpus=4, nodes=2)          # CPUs 0-1 on node 0, 2-3 on node 1
    >>> m.cpu_node
    [0, 0, 1, 1]
    """

    def __init__(
        self,
        cpus: int = 1,
        nodes: int = 1,
        cpu_nodes: Sequence[int] | None = None,
        memoryless_nodes: Sequence[int] = (),
        mem_limit_pages: int | None = None,
        page_size: int = 4096,
    ) -> None:
        if cpus < 1 or nodes < 1:
            raise SlubsimUsageError("a machine needs at least one CPU and one node")
        if page_size != 4096:
            raise SlubsimUsageError("only 4096-byte pages are modelled (x86-64)")
        self.nr_cpus = cpus
        self.nr_nodes = nodes
        self.page_size = page_size
        if cpu_nodes is None:
            # Contiguous blocks, like qemu's default "-numa" split.
            per = -(-cpus // nodes)
            cpu_nodes = [min(c // per, nodes - 1) for c in range(cpus)]
        if len(cpu_nodes) != cpus or any(not 0 <= n < nodes for n in cpu_nodes):
            raise SlubsimUsageError("cpu_nodes must give a valid node for every CPU")
        self.cpu_node: list[int] = list(cpu_nodes)
        self.node_has_memory = [n not in set(memoryless_nodes) for n in range(nodes)]
        if not any(self.node_has_memory):
            raise SlubsimUsageError("at least one node must have memory")
        self.cpu_mem_node: list[int] = [self._nearest_memory_node(n) for n in self.cpu_node]
        self.online: list[bool] = [True] * cpus
        self.pages = PageAllocator(nodes, self.node_has_memory, mem_limit_pages)

    def _nearest_memory_node(self, node: int) -> int:
        for n in sorted(range(self.nr_nodes), key=lambda x: (abs(x - node), x)):
            if self.node_has_memory[n]:
                return n
        raise AssertionError("unreachable")

    def numa_node_id(self, cpu: int) -> int:
        return self.cpu_node[cpu]

    def numa_mem_id(self, cpu: int) -> int:
        return self.cpu_mem_node[cpu]

    def online_cpus(self) -> list[int]:
        return [c for c in range(self.nr_cpus) if self.online[c]]

    def num_present_cpus(self) -> int:
        return self.nr_cpus

    def inject_page_alloc_failures(self, attr: FaultAttr | None) -> None:
        """Install (or remove, with None) a ``fail_page_alloc`` fault attribute."""
        self.pages.fail = attr

    def check_cpu(self, cpu: int) -> None:
        if not 0 <= cpu < self.nr_cpus:
            raise SlubsimUsageError(f"cpu {cpu} out of range 0..{self.nr_cpus - 1}")
        if not self.online[cpu]:
            raise SlubsimUsageError(f"cpu {cpu} is offline")
