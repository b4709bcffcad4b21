"""Per-node state of a cache: ``struct kmem_cache_node`` (partial list, counts,
debug full list) and, in 6.18+/7.x, ``struct node_barn`` (full and empty sheaves).

The partial list is an intrusive doubly linked list through ``Slab.prev`` /
``Slab.next`` so that head insertion, tail insertion and removal from the middle
are O(1), as in the kernel's ``list_head``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .sheaf import Sheaf
from .slab import Slab


class KmemCacheNode:
    """``struct kmem_cache_node``."""

    __slots__ = ("full", "head", "nid", "nr_partial", "nr_slabs", "tail", "total_objects")

    def __init__(self, nid: int) -> None:
        self.nid = nid
        self.head: Slab | None = None
        self.tail: Slab | None = None
        self.nr_partial = 0
        self.nr_slabs = 0  # CONFIG_SLUB_DEBUG atomic counters
        self.total_objects = 0
        self.full: set[Slab] = set()  # only for SLAB_STORE_USER caches

    # -- add_partial / remove_partial ------------------------------------
    def add_partial(self, slab: Slab, tail: bool) -> None:
        """Models ``add_partial()`` (``__add_partial`` + ``SL_partial``)."""
        self.nr_partial += 1
        slab.on_partial = True
        if tail:
            slab.prev = self.tail
            slab.next = None
            if self.tail is not None:
                self.tail.next = slab
            else:
                self.head = slab
            self.tail = slab
        else:
            slab.next = self.head
            slab.prev = None
            if self.head is not None:
                self.head.prev = slab
            else:
                self.tail = slab
            self.head = slab

    def unlink(self, slab: Slab) -> None:
        """Take ``slab`` off the list without touching ``nr_partial``/``SL_partial``."""
        p, n = slab.prev, slab.next
        if p is not None:
            p.next = n
        else:
            self.head = n
        if n is not None:
            n.prev = p
        else:
            self.tail = p
        slab.prev = slab.next = None

    def remove_partial(self, slab: Slab) -> None:
        """Models ``remove_partial()``."""
        self.unlink(slab)
        slab.on_partial = False
        self.nr_partial -= 1

    def partial_slabs(self) -> Iterator[Slab]:
        s = self.head
        while s is not None:
            nxt = s.next
            yield s
            s = nxt

    def inc_slabs_node(self, objects: int) -> None:
        self.nr_slabs += 1
        self.total_objects += objects

    def dec_slabs_node(self, objects: int) -> None:
        self.nr_slabs -= 1
        self.total_objects -= objects


class Barn:
    """``struct node_barn``: LIFO lists of full and empty sheaves of one node.

    ``full``/``empty`` are stacks whose end is the kernel list head (``list_add``
    inserts at the head and the barn takes the first entry)."""

    __slots__ = ("empty", "full", "nid")

    def __init__(self, nid: int) -> None:
        self.nid = nid
        self.full: list[Sheaf] = []
        self.empty: list[Sheaf] = []

    @property
    def nr_full(self) -> int:
        return len(self.full)

    @property
    def nr_empty(self) -> int:
        return len(self.empty)
