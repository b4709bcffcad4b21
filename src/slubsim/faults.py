"""Fault injection modelled on the kernel's ``struct fault_attr``
(``lib/fault-inject.c``: ``probability``, ``interval``, ``times``), used as
*failslab* (``should_failslab``: the allocation returns NULL before SLUB runs,
no counters) and *fail_page_alloc* (page allocation fails: ``ORDER_FALLBACK``,
then out of memory).
"""

from __future__ import annotations

import random


class FaultAttr:
    """Decide whether the next call fails.

    ``probability`` is in percent (0..100); ``interval`` fails only every Nth
    eligible call; ``times`` bounds the number of failures (-1 = unlimited);
    ``min_order`` (page allocator only) spares smaller orders; ``seed`` makes
    probabilistic failures reproducible.
    """

    __slots__ = ("_count", "_rng", "interval", "min_order", "probability", "times")

    def __init__(
        self,
        probability: float = 100.0,
        interval: int = 1,
        times: int = -1,
        min_order: int = 0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= probability <= 100.0:
            raise ValueError("probability is a percentage in 0..100")
        if interval < 1:
            raise ValueError("interval must be >= 1")
        self.probability = probability
        self.interval = interval
        self.times = times
        self.min_order = min_order
        self._count = 0
        self._rng = random.Random(seed)

    def should_fail(self, order: int = 0) -> bool:
        """Models ``should_fail()``: count the call, then decide."""
        if self.times == 0 or order < self.min_order:
            return False
        self._count += 1
        if self._count % self.interval:
            return False
        if self.probability < 100.0 and self._rng.random() * 100.0 >= self.probability:
            return False
        if self.times > 0:
            self.times -= 1
        return True
