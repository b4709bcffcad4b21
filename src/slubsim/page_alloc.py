"""The page allocator SLUB sits on: one zone per NUMA node, orders 0..MAX_PAGE_ORDER.

Only what SLUB can observe is modelled: a compound allocation of ``2**order``
pages on a node succeeds or fails.  Each node owns a disjoint pfn range, so the
node of any address is known (``page_to_nid``).  Freed blocks are reused LIFO
per order (like the per-cpu page lists), so slab addresses recycle the way they
do on a real machine.  An optional memory limit per node and a
:class:`~slubsim.faults.FaultAttr` (``fail_page_alloc``) make allocation failure
paths reachable.
"""

from __future__ import annotations

from typing import Final

from .constants import MAX_PAGE_ORDER, PAGE_OFFSET, PAGE_SHIFT
from .faults import FaultAttr

#: pfn span reserved for each node (64 GiB of 4 KiB pages).
NODE_PFN_SPAN: Final = 1 << 24
#: first pfn used (leave the low 4 GiB alone, like a real direct map).
FIRST_PFN: Final = 1 << 20


class NodePages:
    """The pages of one NUMA node."""

    __slots__ = ("free_lists", "limit_pages", "next_pfn", "nid", "nr_used")

    def __init__(self, nid: int, limit_pages: int | None) -> None:
        self.nid = nid
        # Naturally aligned bump pointer; freed blocks are kept per order.
        self.next_pfn = FIRST_PFN + nid * NODE_PFN_SPAN
        self.free_lists: list[list[int]] = [[] for _ in range(MAX_PAGE_ORDER + 1)]
        self.limit_pages = limit_pages
        self.nr_used = 0

    def alloc(self, order: int) -> int:
        """Return the first pfn of a free ``2**order`` block, or -1."""
        n = 1 << order
        if self.limit_pages is not None and self.nr_used + n > self.limit_pages:
            return -1
        fl = self.free_lists[order]
        if fl:
            pfn = fl.pop()
        else:
            pfn = (self.next_pfn + n - 1) & ~(n - 1)  # natural alignment
            if pfn + n > FIRST_PFN + (self.nid + 1) * NODE_PFN_SPAN:
                return -1
            self.next_pfn = pfn + n
        self.nr_used += n
        return pfn

    def free(self, pfn: int, order: int) -> None:
        self.free_lists[order].append(pfn)
        self.nr_used -= 1 << order


class PageAllocator:
    """``alloc_pages_node()`` / ``__free_pages()`` over all nodes."""

    def __init__(
        self,
        nr_nodes: int,
        node_has_memory: list[bool],
        limit_pages: int | None = None,
    ) -> None:
        self.nodes = [NodePages(n, limit_pages) for n in range(nr_nodes)]
        self.node_has_memory = node_has_memory
        #: each node's fallback order, computed once (it was sorted again at
        #: every allocation: 1.4 % of a NUMA replay's instructions)
        self.zonelists = [self._zonelist(n) for n in range(nr_nodes)]
        self.fail: FaultAttr | None = None
        self.nr_allocs = 0
        self.nr_frees = 0

    def alloc_pages(self, order: int, node: int, thisnode: bool = False) -> int:
        """Allocate ``2**order`` pages, preferring ``node``; fall back to the other
        nodes (nearest = lowest distance, here by node-number distance) unless
        ``thisnode``.  Returns the address of the first page, or 0 on failure."""
        if self.fail is not None and self.fail.should_fail(order):
            return 0
        if thisnode:
            order_nodes = [node]
        elif 0 <= node < len(self.zonelists):
            order_nodes = self.zonelists[node]
        else:
            order_nodes = self._zonelist(node)
        for nid in order_nodes:
            if not self.node_has_memory[nid]:
                continue
            pfn = self.nodes[nid].alloc(order)
            if pfn >= 0:
                self.nr_allocs += 1
                return PAGE_OFFSET + (pfn << PAGE_SHIFT)
        return 0

    def free_pages(self, addr: int, order: int) -> None:
        pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
        self.nodes[self.pfn_to_nid(pfn)].free(pfn, order)
        self.nr_frees += 1

    def _zonelist(self, node: int) -> list[int]:
        """Nodes nearest first (by node-number distance), ``node`` itself first."""
        return sorted(range(len(self.nodes)), key=lambda n: (abs(n - node), n))

    @staticmethod
    def pfn_to_nid(pfn: int) -> int:
        return (pfn - FIRST_PFN) // NODE_PFN_SPAN

    @staticmethod
    def addr_to_nid(addr: int) -> int:
        return (((addr - PAGE_OFFSET) >> PAGE_SHIFT) - FIRST_PFN) // NODE_PFN_SPAN

    def used_pages(self) -> int:
        return sum(n.nr_used for n in self.nodes)
