"""Global constants (spec §2).  Values are those of x86-64 with 4 KiB pages."""

from __future__ import annotations

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: Base of the model's direct map: x86-64's ``0xffff888000000000`` without the
#: sign-extension bits, so that a model address is the kernel's with its top
#: 16 bits cleared (``0x888100042000`` for ``0xffff888100042000``).  Below 2^62
#: an address is a machine word in the compiled model (mypyc keeps such ints
#: unboxed); the full value made every address computation allocate a big
#: integer: 12 % more of a boot-time replay's instructions (callgrind).
PAGE_OFFSET = 0x888000000000
POINTER_SIZE = 8  # sizeof(void *)
#: /sys/kernel/slab/<cache>/ files that fix a cache's geometry
SYSFS_SIZING_ATTRS = (
    "object_size",
    "slab_size",
    "align",
    "order",
    "objs_per_slab",
    "min_partial",
    "sheaf_capacity",
)
CACHE_LINE_SIZE = 64  # cache_line_size()
ARCH_SLAB_MINALIGN = 8
ARCH_KMALLOC_MINALIGN = 8
KMALLOC_MIN_SIZE = 8
KMALLOC_SHIFT_LOW = 3
KMALLOC_SHIFT_HIGH = PAGE_SHIFT + 1
KMALLOC_MAX_CACHE_SIZE = 1 << KMALLOC_SHIFT_HIGH  # 8192
MAX_PAGE_ORDER = 10
KMALLOC_MAX_SIZE = 1 << (MAX_PAGE_ORDER + PAGE_SHIFT)
ZERO_SIZE_PTR = 16
MIN_PARTIAL = 5
MAX_PARTIAL = 10
MAX_OBJS_PER_PAGE = 32767
SLUB_MIN_ORDER = 0
SLUB_MAX_ORDER = 3  # PAGE_ALLOC_COSTLY_ORDER
MAX_FULL_SHEAVES = 10
MAX_EMPTY_SHEAVES = 10
PCS_BATCH_MAX = 32
SHRINK_PROMOTE_MAX = 32
#: ``offsetof(struct slab_sheaf, objects)`` on 64-bit (16-byte union + cache ptr +
#: size + node).
SHEAF_HEADER_SIZE = 32
NUMA_NO_NODE = -1
#: ``struct track`` with CONFIG_STACKDEPOT (addr, handle, cpu, pid, when).
TRACK_SIZE = 32

#: what a replay does with the objects and slabs in use before the trace began
#: (slubsim.replay, slubsim.pretrace)
PRETRACE_POLICIES = ("materialize", "reconstruct", "ignore")
