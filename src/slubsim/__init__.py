"""slubsim: a counter-exact, trace-driven model of the Linux SLUB allocator's
per-CPU caching layers.

>>> from slubsim import Machine, Kernel
>>> k = Kernel(Machine(cpus=4, nodes=1), version="7.3")
>>> s = k.kmem_cache_create("test64", size=64)
>>> p = s.alloc(cpu=0)
>>> s.free(p, cpu=0)
>>> s.stats()["alloc_fastpath"]
1
"""

from __future__ import annotations

from pathlib import Path as _Path

from ._native import select as _select

#: True when the mypyc-compiled hot path is loaded (see slubsim._native)
COMPILED, PURE_REASON = _select(_Path(__file__).parent)

from .cache import KmemCache  # noqa: E402  (after the compiled/pure choice)
from .errors import (  # noqa: E402
    CacheBusyError,
    CacheDestroyedError,
    DoubleFreeError,
    InvalidFreeError,
    InvariantError,
    LockRecursionError,
    NeverAllocatedError,
    SlabError,
    SlubsimError,
    SlubsimUsageError,
    WrongCacheError,
)
from .faults import FaultAttr  # noqa: E402
from .flags import SlabFlag  # noqa: E402
from .kernel import GENERATIONS, Kernel, KernelConfig  # noqa: E402
from .machine import Machine  # noqa: E402
from .sheaf import Sheaf  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "COMPILED",
    "GENERATIONS",
    "PURE_REASON",
    "CacheBusyError",
    "CacheDestroyedError",
    "DoubleFreeError",
    "FaultAttr",
    "InvalidFreeError",
    "InvariantError",
    "Kernel",
    "KernelConfig",
    "KmemCache",
    "LockRecursionError",
    "Machine",
    "NeverAllocatedError",
    "Sheaf",
    "SlabError",
    "SlabFlag",
    "SlubsimError",
    "SlubsimUsageError",
    "WrongCacheError",
    "__version__",
]
