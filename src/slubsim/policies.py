"""Adaptive sheaf-capacity policies from the peers, to compare against fixed
capacities with the same metrics.

* ``bonwick`` -- Bonwick & Adams, "Magazines and Vmem" (USENIX 2001): the
  magazine size of a cache grows when the depot lock is contended.  Here: every
  ``window`` operations on a cache, if barn lock acquisitions exceeded
  ``threshold`` per 1000 operations, the capacity steps up to the next size of
  ``sizes`` (doubling by default).  Magazines never shrink in the paper's
  steady state; neither do they here.
* ``uma`` -- FreeBSD UMA (``sys/vm/uma_core.c``): a zone's bucket size
  (``uz_bucket_size``) is incremented by one each time a bucket fetch finds the
  zone lock contended, up to ``uz_bucket_size_max``.  Here: every ``window``
  operations, capacity += 1 for each lock acquisition rate threshold crossed,
  i.e. +1 when barn + list_lock acquisitions exceed ``threshold`` per 1000
  operations, up to ``max_capacity``.

A sequential replay has no real lock contention; lock *acquisitions* per
operation are the proxy (the same proxy the metrics report).  Capacity grows in
place: sheaves already allocated simply hold more from then on (no flush).
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import KmemCache
from .errors import SlubsimUsageError

POLICIES = ("fixed", "bonwick", "uma")


@dataclass
class CapacityPolicy:
    name: str = "fixed"
    window: int = 1000
    threshold: float = 5.0  # lock acquisitions per 1000 ops
    max_capacity: int = 256
    sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise SlubsimUsageError(f"unknown policy {self.name!r}; choose from {POLICIES}")


class PolicyState:
    """Per-cache bookkeeping of an adaptive policy during a replay."""

    __slots__ = ("changes", "lock_mark", "ops", "policy", "start_capacity")

    def __init__(self, policy: CapacityPolicy, cache: KmemCache) -> None:
        self.policy = policy
        self.ops = 0
        self.lock_mark = (cache.barn_lock, cache.list_lock)
        self.changes = 0
        self.start_capacity = cache.sheaf_capacity

    def step(self, cache: KmemCache) -> None:
        """Count one operation; at the end of a window, maybe grow the capacity."""
        self.ops += 1
        p = self.policy
        if self.ops < p.window or not cache.sheaf_capacity:
            return
        barn = cache.barn_lock - self.lock_mark[0]
        lists = cache.list_lock - self.lock_mark[1]
        per_1k = 1000.0 / self.ops
        self.ops = 0
        self.lock_mark = (cache.barn_lock, cache.list_lock)
        cap = cache.sheaf_capacity
        new = cap
        if p.name == "bonwick" and barn * per_1k > p.threshold:
            new = next((s for s in p.sizes if s > cap), cap)
        elif p.name == "uma" and (barn + lists) * per_1k > p.threshold:
            new = min(cap + 1, p.max_capacity)
        if new != cap:
            grow = getattr(cache.layer, "grow_capacity", None)
            if grow is None:
                return
            grow(new)
            self.changes += 1
