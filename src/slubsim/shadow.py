"""The model's shadow of slab memory: which objects are with a user.

Nothing in SLUB keeps this (only ``slab_debug`` and KASAN track objects); the
model does, so that a double free, a free of an object never handed out or a
free into the wrong cache is caught (:mod:`slubsim.errors`) instead of
corrupting a freelist.  The layout is KASAN's generic shadow: one shadow byte
per 8-byte granule of slab memory -- every object starts on a granule of its
own, because ``calculate_sizes()`` rounds ``s->size`` up to at least
``sizeof(void *)`` and slabs start on page boundaries -- plus, per page, the
cache whose slab owns it.  An address maps to its shadow by arithmetic alone
(the model's node ``n`` owns pfns ``FIRST_PFN + n * NODE_PFN_SPAN`` up, see
:mod:`slubsim.page_alloc`), so the compiled replay hit path
(:mod:`slubsim.hitpath`) reads and writes it without a dict.

It replaced a per-cache ``dict`` of address -> live, which took one insert
(and its resizes) for every object that stayed with its user -- a fifth of a
replay of a boot trace.  Shadow bytes exist for the pages below each node's
allocation high-water mark: 1/8 of the slab memory the model ever held at once
per node, for the node that held the most.
"""

from __future__ import annotations

from array import array
from typing import Final

from .constants import PAGE_OFFSET, PAGE_SHIFT
from .errors import InvariantError
from .page_alloc import FIRST_PFN, NODE_PFN_SPAN

#: log2 of the granule (8 bytes, ``KASAN_GRANULE_SIZE`` of generic KASAN)
GRANULE_SHIFT: Final = 3
#: log2 of the granules per page
PAGE_GRANULES_SHIFT: Final = PAGE_SHIFT - GRANULE_SHIFT

# shadow byte values
#: the granule holds no object handed out since its slab was made
NEVER: Final = 0
#: an object with a user (allocated, not yet freed)
LIVE: Final = 1
#: an object handed out and freed again (a second free is a double free)
FREED: Final = 2

#: smallest growth of the per-node shadow, in granules (2,048 pages, 8 MiB of
#: addresses -- what the lab bundles use, so they never copy it to grow)
MIN_STRIDE: Final = 1 << 20
#: address of node 0's first page: ``(p - NODE0_BASE) >> GRANULE_SHIFT`` is
#: the granule index of a node-0 address (the fast path of :meth:`state`)
NODE0_BASE: Final = PAGE_OFFSET + (FIRST_PFN << PAGE_SHIFT)
#: ``p & GRANULE_MASK`` is nonzero for a pointer that is not on a granule
GRANULE_MASK: Final = (1 << GRANULE_SHIFT) - 1


class ObjectShadow:
    """Per node, one state byte per granule of the node's pages below the
    allocation high-water mark, and per page the owning cache's id (0: no
    slab).  Node ``n``'s granules are ``states[n * stride : (n + 1) * stride]``;
    growing ``stride`` builds new arrays (so views taken of the old ones stay
    valid, and stale) and bumps ``generation``."""

    __slots__ = ("generation", "nr_nodes", "owners", "states", "stride", "zeros")

    def __init__(self, nr_nodes: int) -> None:
        self.nr_nodes = nr_nodes
        self.stride = 0  # granules per node
        self.states = bytearray()
        self.owners: array[int] = array("i")  # per page: cache id, 0 = none
        self.generation = 0
        #: per slab order, that many granules of NEVER (bytearray: a slice
        #: assignment from one is a copy, from bytes it would convert first)
        self.zeros: list[bytearray] = []

    def granule(self, p: int) -> int:
        """Shadow index of address ``p``; -1 outside the shadowed pages or
        when ``p`` is not on a granule (so no object starts there: a pointer
        into the middle of an object never reads that object's state)."""
        off = p - PAGE_OFFSET
        if off < 0 or off & ((1 << GRANULE_SHIFT) - 1):
            return -1
        pfn = (off >> PAGE_SHIFT) - FIRST_PFN
        if pfn < 0:
            return -1
        nid = pfn // NODE_PFN_SPAN
        g = ((pfn - nid * NODE_PFN_SPAN) << PAGE_GRANULES_SHIFT) | (
            (off & ((1 << PAGE_SHIFT) - 1)) >> GRANULE_SHIFT
        )
        if nid >= self.nr_nodes or g >= self.stride:
            return -1
        return nid * self.stride + g

    def state(self, p: int) -> int:
        """NEVER, LIVE or FREED for the object at ``p`` (NEVER outside slab pages)."""
        # node 0 inline: state() and set_state() run for every replayed
        # allocation and free, and as Python a second call costs more than
        # the dict this replaced
        g = (p - NODE0_BASE) >> GRANULE_SHIFT
        if 0 <= g < self.stride and not p & GRANULE_MASK:
            return self.states[g]
        g = self.granule(p)
        return self.states[g] if g >= 0 else NEVER

    def release(self, p: int) -> bool:
        """LIVE -> FREED for the object at ``p``; False (and nothing changes)
        when it is not LIVE.  A free's check and record in one call."""
        g = (p - NODE0_BASE) >> GRANULE_SHIFT
        if not (0 <= g < self.stride and not p & GRANULE_MASK):
            g = self.granule(p)
            if g < 0:
                return False
        st = self.states
        if st[g] != LIVE:
            return False
        st[g] = FREED
        return True

    def owner(self, p: int) -> int:
        """Id of the cache whose slab holds ``p`` (0: none)."""
        g = self.granule(p)
        return self.owners[g >> PAGE_GRANULES_SHIFT] if g >= 0 else 0

    def set_state(self, p: int, v: int) -> None:
        """Record ``v`` for the object at ``p``, which is in a mapped slab."""
        g = (p - NODE0_BASE) >> GRANULE_SHIFT
        if 0 <= g < self.stride and not p & GRANULE_MASK:
            self.states[g] = v
            return
        g = self.granule(p)
        if g < 0:
            raise InvariantError(f"0x{p:x} is not an object of a slab page")
        self.states[g] = v

    def map_slab(self, addr: int, order: int, cache_id: int) -> None:
        """A new slab of ``2**order`` pages at ``addr`` for cache ``cache_id``.
        Its granules are NEVER already: pages not in a slab are all NEVER
        (fresh shadow is zero, :meth:`unmap_slab` clears)."""
        g = self.granule(addr)
        n = 1 << (order + PAGE_GRANULES_SHIFT)
        if g < 0 or (g % self.stride) + n > self.stride:
            self._grow(addr, order)
            g = self.granule(addr)
        first = g >> PAGE_GRANULES_SHIFT
        for i in range(1 << order):
            self.owners[first + i] = cache_id

    def unmap_slab(self, addr: int, order: int) -> None:
        """The slab at ``addr`` went back to the page allocator: its granules
        NEVER again, its pages no cache's."""
        g = self.granule(addr)
        n = 1 << (order + PAGE_GRANULES_SHIFT)
        while len(self.zeros) <= order:
            self.zeros.append(bytearray(1 << (len(self.zeros) + PAGE_GRANULES_SHIFT)))
        self.states[g : g + n] = self.zeros[order]
        first = g >> PAGE_GRANULES_SHIFT
        for i in range(1 << order):
            self.owners[first + i] = 0

    def _grow(self, addr: int, order: int) -> None:
        """Make room for the pages up to the end of the block at ``addr``."""
        off = addr - PAGE_OFFSET
        pfn = (off >> PAGE_SHIFT) - FIRST_PFN
        if off < 0 or pfn < 0 or pfn // NODE_PFN_SPAN >= self.nr_nodes:
            raise ValueError(f"0x{addr:x} is not a page of the model's nodes")
        end = (pfn % NODE_PFN_SPAN + (1 << order)) << PAGE_GRANULES_SHIFT
        old = self.stride
        new = max(end, 2 * old, MIN_STRIDE)
        states = bytearray(self.nr_nodes * new)
        owners = array("i", bytes(4 * (self.nr_nodes * new >> PAGE_GRANULES_SHIFT)))
        po, pn = old >> PAGE_GRANULES_SHIFT, new >> PAGE_GRANULES_SHIFT
        for n in range(self.nr_nodes):
            states[n * new : n * new + old] = self.states[n * old : (n + 1) * old]
            owners[n * pn : n * pn + po] = self.owners[n * po : (n + 1) * po]
        self.states = states
        self.owners = owners
        self.stride = new
        self.generation += 1

    def live_in(self, base: int, objects: int, size: int) -> list[int]:
        """Addresses of the LIVE objects of a slab at ``base``."""
        g = self.granule(base)
        if g < 0:
            return []
        step = size >> GRANULE_SHIFT
        st = self.states
        return [base + i * size for i in range(objects) if st[g + i * step] == LIVE]
