"""Lockstep: does the model hand out the same object the traced kernel did?

Counters agree or disagree in aggregate; this check is per allocation.  The
traced kernels run without ``CONFIG_SLAB_FREELIST_RANDOM`` (see each bundle's
``kernel.config``), so a new slab's objects leave it in index order and the
per-CPU layer's choice of object is deterministic.  The model cannot use the
kernel's addresses, but it can be paired with them slab by slab:

* the kernel slab of a traced pointer ``k`` is the naturally aligned block of
  ``PAGE_SIZE << order`` bytes holding it (slab pages are compound pages,
  aligned to their order), its object is ``k``'s offset in that block;
* the model object ``m`` returned for the same allocation has a model slab and
  an offset the same way;
* the first allocation that meets an unpaired model slab and an unpaired
  kernel slab pairs them; an allocation is *in step* when both slabs are
  paired with each other and the offsets are equal.

A freed model slab (or a kernel slab whose model partner was freed) may be
paired again, as the kernel reuses page addresses.  The share of allocations
in step, and the first one that is not (trace timestamp, CPU, the two
objects), say where the model's per-CPU layer, rcu sheaf timing or slab
selection first parts from the kernel's -- a far sharper probe than the
counters, which can agree by compensation.  Allocations from bulk calls are
not checked (the trace does not order their objects).

Prefilled sheaves give a second probe, of the per-CPU layer's state rather
than of single objects: the lab's ``kmem_cache_return_sheaf`` kprobe records
the sheaf's size, so at every traced return the model's sheaf (the one it
handed out for that traced sheaf pointer) either holds as many objects as the
kernel's or not -- it holds more when the model refilled it where the kernel
did not, or swapped it into a CPU's main sheaf at another time.
"""

from __future__ import annotations

from typing import Any

from .constants import PAGE_SIZE
from .slab import Slab


class CacheLockstep:
    """Pairing state and tallies of one cache."""

    __slots__ = (
        "checked",
        "first",
        "k2m",
        "m2k",
        "prefix",
        "same",
        "sheaf_checked",
        "sheaf_first",
        "sheaf_same",
    )

    def __init__(self) -> None:
        self.checked = 0
        self.same = 0
        # model slab -> kernel slab address (keyed by the Slab itself: it stays
        # alive, so a freed slab's identity is never taken by a new one)
        self.m2k: dict[Slab, int] = {}
        self.k2m: dict[int, Slab] = {}  # kernel slab address -> model slab
        self.first: dict[str, Any] | None = None
        self.prefix = 0  # allocations in step before the first divergence
        self.sheaf_checked = 0  # traced kmem_cache_return_sheaf calls
        self.sheaf_same = 0  # ... where the model's sheaf held the kernel's count
        self.sheaf_first: dict[str, Any] | None = None

    def pair(self, slab: Slab, kbase: int) -> None:
        """Pair a model slab with a kernel slab known to be its counterpart
        (a pre-trace slab rebuilt from the trace, slubsim.pretrace)."""
        self.m2k[slab] = kbase
        self.k2m[kbase] = slab

    def check(self, slab: Slab, m: int, k: int, ts: float, cpu: int, what: str) -> bool:
        """Tally one allocation: model object ``m`` in ``slab``, kernel ``k``."""
        self.checked += 1
        span = PAGE_SIZE << slab.order
        kbase = k & ~(span - 1)
        ok = False
        if (m & (span - 1)) == (k & (span - 1)):
            paired_k = self.m2k.get(slab)
            partner = self.k2m.get(kbase)
            if partner is not None and partner is not slab and partner not in partner.cache.slabs:
                # the model slab paired with this kernel slab was freed: forget it
                del self.m2k[partner]
                del self.k2m[kbase]
                partner = None
            if paired_k is None and partner is None:
                self.m2k[slab] = kbase
                self.k2m[kbase] = slab
                ok = True
            else:
                ok = paired_k == kbase and partner is slab
        if ok:
            self.same += 1
        elif self.first is None:
            self.prefix = self.checked - 1
            self.first = {
                "ts": ts,
                "cpu": cpu,
                "op": what,
                "kernel_ptr": f"0x{k:x}",
                "model_ptr": f"0x{m:x}",
                "kernel_slab": f"0x{kbase:x}",
                "model_slab_paired_with": (f"0x{self.m2k[slab]:x}" if slab in self.m2k else None),
            }
        return ok

    def check_sheaf(self, model_size: int, kernel_size: int, ts: float, cpu: int) -> bool:
        """Tally one traced return of a prefilled sheaf: the model's sheaf
        holds ``model_size`` objects, the kernel's ``kernel_size``."""
        self.sheaf_checked += 1
        ok = model_size == kernel_size
        if ok:
            self.sheaf_same += 1
        elif self.sheaf_first is None:
            self.sheaf_first = {
                "ts": ts,
                "cpu": cpu,
                "kernel_size": kernel_size,
                "model_size": model_size,
            }
        return ok

    def result(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "same_object": self.same,
            "share": self.same / self.checked if self.checked else 1.0,
            "in_step_prefix": self.prefix if self.first is not None else self.checked,
            "first_divergence": self.first,
            "sheaf_returns": {
                "checked": self.sheaf_checked,
                "same_size": self.sheaf_same,
                "share": self.sheaf_same / self.sheaf_checked if self.sheaf_checked else 1.0,
                "first_divergence": self.sheaf_first,
            },
        }
