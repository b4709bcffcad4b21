"""Global constants (spec §2).  Values are those of x86-64 with 4 KiB pages.

They are ``Final`` (as are the stat item indices and the other module-level
constants the compiled model reads): mypyc then compiles each use to the
value itself, where a plain module global is a dictionary lookup and an
unboxing at every use (``p >> PAGE_SHIFT`` on every free)."""

from __future__ import annotations

from typing import Final

PAGE_SHIFT: Final = 12
PAGE_SIZE: Final = 1 << PAGE_SHIFT
#: Base of the model's direct map: x86-64's ``0xffff888000000000`` without the
#: sign-extension bits, so that a model address is the kernel's with its top
#: 16 bits cleared (``0x888100042000`` for ``0xffff888100042000``).  Below 2^62
#: an address is a machine word in the compiled model (mypyc keeps such ints
#: unboxed); the full value made every address computation allocate a big
#: integer: 12 % more of a boot-time replay's instructions (callgrind).
PAGE_OFFSET: Final = 0x888000000000
POINTER_SIZE: Final = 8  # sizeof(void *)
#: /sys/kernel/slab/<cache>/ files that fix a cache's geometry
SYSFS_SIZING_ATTRS: Final = (
    "object_size",
    "slab_size",
    "align",
    "order",
    "objs_per_slab",
    "min_partial",
    "sheaf_capacity",
)
CACHE_LINE_SIZE: Final = 64  # cache_line_size()
ARCH_SLAB_MINALIGN: Final = 8
ARCH_KMALLOC_MINALIGN: Final = 8
KMALLOC_MIN_SIZE: Final = 8
KMALLOC_SHIFT_LOW: Final = 3
KMALLOC_SHIFT_HIGH: Final = PAGE_SHIFT + 1
KMALLOC_MAX_CACHE_SIZE: Final = 1 << KMALLOC_SHIFT_HIGH  # 8192
MAX_PAGE_ORDER: Final = 10
KMALLOC_MAX_SIZE: Final = 1 << (MAX_PAGE_ORDER + PAGE_SHIFT)
ZERO_SIZE_PTR: Final = 16
MIN_PARTIAL: Final = 5
MAX_PARTIAL: Final = 10
MAX_OBJS_PER_PAGE: Final = 32767
SLUB_MIN_ORDER: Final = 0
SLUB_MAX_ORDER: Final = 3  # PAGE_ALLOC_COSTLY_ORDER
MAX_FULL_SHEAVES: Final = 10
MAX_EMPTY_SHEAVES: Final = 10
PCS_BATCH_MAX: Final = 32
SHRINK_PROMOTE_MAX: Final = 32
#: ``offsetof(struct slab_sheaf, objects)`` on 64-bit (16-byte union + cache ptr +
#: size + node).
SHEAF_HEADER_SIZE: Final = 32
NUMA_NO_NODE: Final = -1
#: ``struct track`` with CONFIG_STACKDEPOT (addr, handle, cpu, pid, when).
TRACK_SIZE: Final = 32

#: what a replay does with the objects and slabs in use before the trace began
#: (slubsim.replay, slubsim.pretrace)
PRETRACE_POLICIES: Final = ("materialize", "reconstruct", "ignore")
