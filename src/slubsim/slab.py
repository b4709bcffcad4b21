"""``struct slab``: one compound page of ``2**order`` pages cut into objects.

A slab's ``freelist`` holds the addresses of its free objects in kernel order
with the **head at the end of the Python list** (so ``__slab_free()``'s
prepend is an ``append`` and taking the head is a ``pop()``).  ``inuse`` counts
objects not on the slab freelist: objects in sheaves (7.3) or in a cpu freelist
(6.12) count as in use, exactly like the kernel's field.

List membership (spec §3.1): ``on_partial`` is the ``SL_partial`` bit (slab is
on its node's partial list); ``prev``/``next`` link the node partial list (or,
in 6.12, the per-CPU partial chain); ``frozen`` marks a 6.12 cpu slab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cache import KmemCache


def push_chain(fl: list[int], chain: list[int]) -> None:
    """Prepend the detached freelist ``chain`` (head first) to the freelist
    ``fl`` (head at the end): ``set_freepointer(tail, head of fl); fl =
    chain``.  (An append loop from the tail: compiled, ``fl.extend(reversed(
    chain))`` called ``reversed`` and ``extend`` through Python, ~2,300
    instructions for a chain of a few objects.)"""
    for k in range(len(chain) - 1, -1, -1):
        fl.append(chain[k])


class Slab:
    __slots__ = (
        "base",
        "cache",
        "cpu_partial_of",
        "freelist",
        "frozen",
        "inuse",
        "next",
        "nid",
        "objects",
        "on_full",
        "on_partial",
        "order",
        "pfmemalloc",
        "prev",
        "size",
    )

    def __init__(
        self, cache: KmemCache, base: int, order: int, objects: int, nid: int, size: int
    ) -> None:
        self.cache = cache
        self.base = base  # address of the first object
        self.order = order
        self.objects = objects
        self.size = size  # object stride (s->size)
        self.nid = nid
        self.inuse = 0
        self.freelist: list[int] = []
        self.on_partial = False  # SL_partial
        self.on_full = False  # on n->full (debug caches with SLAB_STORE_USER)
        self.frozen = False  # 6.12: this is some CPU's cpu slab
        self.cpu_partial_of = -1  # 6.12: CPU whose partial chain holds it
        self.pfmemalloc = False  # set through KmemCache.set_slab_pfmemalloc only
        self.prev: Slab | None = None
        self.next: Slab | None = None

    def object_at(self, idx: int) -> int:
        return self.base + idx * self.size

    def index_of(self, addr: int) -> int:
        """Object index of ``addr``; -1 if it is not the start of an object."""
        off = addr - self.base
        if off < 0 or off % self.size or off // self.size >= self.objects:
            return -1
        return off // self.size

    @property
    def free(self) -> int:
        return self.objects - self.inuse

    def __repr__(self) -> str:
        return (
            f"Slab(0x{self.base:x} order={self.order} objects={self.objects} "
            f"inuse={self.inuse} node={self.nid})"
        )
