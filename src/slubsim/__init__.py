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

from .cache import KmemCache
from .errors import (
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
from .faults import FaultAttr
from .flags import SlabFlag
from .kernel import GENERATIONS, Kernel, KernelConfig
from .machine import Machine
from .sheaf import Sheaf

__version__ = "0.1.0"

__all__ = [
    "GENERATIONS",
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
