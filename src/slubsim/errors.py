"""Errors raised by the model.

Misuse of the allocator API raises a :class:`SlabError` subclass whose message
follows the kernel's SLUB report style (``mm/slub.c`` ``slab_bug()`` /
``slab_fix()``, spec §13.4).  The model checks *before* it mutates anything, so
after an exception the allocator state is exactly what it was before the call.
"""

from __future__ import annotations

_RULE = "=" * 77
_DASH = "-" * 77


class SlubsimError(Exception):
    """Base class of every error slubsim raises on purpose."""


class SlubsimUsageError(SlubsimError, ValueError):
    """A bad argument to the model's API (unknown flag, bad size, …)."""


class SlabError(SlubsimError):
    """A SLUB-detected misuse.  ``report`` holds the kernel-style report."""

    def __init__(self, cache: str, message: str, fix: str | None = None, detail: str = "") -> None:
        self.cache = cache
        self.bug = message
        self.fix = fix
        lines = [_RULE, f"BUG {cache} (Not tainted): {message}", _DASH, ""]
        if detail:
            lines.append(detail)
        if fix:
            lines.append(f"FIX {cache}: {fix}")
        self.report = "\n".join(lines)
        super().__init__(f"BUG {cache}: {message}" + (f"; FIX {cache}: {fix}" if fix else ""))


class DoubleFreeError(SlabError):
    """Free of an object that is already free (``Object already free``)."""

    def __init__(self, cache: str, ptr: int, where: str) -> None:
        self.ptr = ptr
        self.where = where
        super().__init__(
            cache,
            "Object already free",
            fix=f"Object at 0x{ptr:x} not freed",
            detail=f"Object 0x{ptr:x} is {where}",
        )


class NeverAllocatedError(DoubleFreeError):
    """Free of a valid object address that was never handed out.

    The kernel cannot tell this from a double free and prints the same report
    (``Object already free``); the model knows the object never left its slab or
    sheaf towards a user and says so in ``where``.
    """


class InvalidFreeError(SlabError):
    """Free of a pointer that is not an object of any slab: not in a slab page
    (``kmem_cache_free(...): object is not in a slab page``), or misaligned
    (``Invalid object pointer 0x%p``)."""

    def __init__(self, cache: str, ptr: int, reason: str) -> None:
        self.ptr = ptr
        super().__init__(cache, reason, fix=f"Object at 0x{ptr:x} not freed")


class WrongCacheError(SlabError):
    """``kmem_cache_free(s, p)`` with ``p`` belonging to another cache (7.3 wording:
    ``kmem_cache_free(<s>, <p>): object belongs to different cache <c>``)."""

    def __init__(self, cache: str, ptr: int, owner: str) -> None:
        self.ptr = ptr
        self.owner = owner
        super().__init__(
            cache,
            f"kmem_cache_free({cache}, 0x{ptr:x}): object belongs to different cache {owner}",
            fix=f"Object at 0x{ptr:x} not freed",
        )


class CacheDestroyedError(SlabError):
    """Use of a cache after ``kmem_cache_destroy()``."""

    def __init__(self, cache: str, op: str) -> None:
        super().__init__(cache, f"{op} on destroyed cache")


class CacheBusyError(SlabError):
    """``kmem_cache_destroy`` of a cache that still has objects
    (``Objects remaining on __kmem_cache_shutdown()``)."""

    def __init__(self, cache: str, remaining: int) -> None:
        self.remaining = remaining
        super().__init__(
            cache,
            "Objects remaining on __kmem_cache_shutdown()",
            detail=(
                f"kmem_cache_destroy {cache}: Slab cache still has objects ({remaining} remaining)"
            ),
        )


class LockRecursionError(SlabError):
    """A task-context operation on a CPU whose sheaf lock is already held by the
    same CPU (the kernel would deadlock; ``local_lock`` is not re-entrant)."""

    def __init__(self, cache: str, cpu: int) -> None:
        super().__init__(cache, f"task-context sheaf operation on CPU {cpu} while its lock is held")


class InvariantError(SlubsimError, AssertionError):
    """The model's own bookkeeping is inconsistent (a model bug, never user error)."""
