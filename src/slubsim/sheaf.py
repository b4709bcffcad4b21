"""``struct slab_sheaf`` (7.3, introduced in 6.18): a bounded stack of object pointers.

``objects`` is a Python list used as the stack (top = end), so ``size`` is
``len(objects)``.  ``capacity`` is ``s->sheaf_capacity`` except for oversize
prefilled sheaves.  The static ``bootstrap_sheaf`` (capacity 0, never holds an
object) is installed as ``main`` for caches without sheaves.
"""

from __future__ import annotations

from typing import ClassVar


class Sheaf:
    __slots__ = ("capacity", "node", "objects", "pfmemalloc", "sid")

    _next_id: ClassVar[int] = 1  # ClassVar: mypyc forbids class-level writes otherwise

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.objects: list[int] = []
        self.node = -1  # rcu_free sheaves: node of the submitting CPU
        self.pfmemalloc = False
        self.sid = Sheaf._next_id
        Sheaf._next_id += 1

    @property
    def size(self) -> int:
        return len(self.objects)

    def __repr__(self) -> str:
        return f"Sheaf#{self.sid}({len(self.objects)}/{self.capacity})"


#: The one static zero-capacity sheaf shared by every cache without sheaves.
BOOTSTRAP_SHEAF = Sheaf(0)
