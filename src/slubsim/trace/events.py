"""The replayable event vocabulary of the columnar store (one row per event).

``op`` values and ``flags`` bits are stable: they are written into stores.
They are ``Final`` so that the compiled replay loop inlines them.
"""

from __future__ import annotations

from typing import Final

OP_ALLOC: Final = 0  # kmem_cache_alloc / kmalloc served by a slab cache
OP_FREE: Final = 1  # kmem_cache_free / kfree of a slab object
OP_ALLOC_FROM_SHEAF: Final = 2  # kmem_cache_alloc_from_sheaf (aux = sheaf pointer)
OP_KFREE_RCU: Final = 3  # kvfree_call_rcu of a slab object
OP_FREE_BULK: Final = 4  # one object of a kmem_cache_free_bulk (aux = group id)
OP_ALLOC_BULK: Final = 5  # kmem_cache_alloc_bulk, count only (size = objects allocated)
OP_PREFILL: Final = 6  # kmem_cache_prefill_sheaf (size = count, aux = sheaf pointer)
OP_RETURN_SHEAF: Final = 7  # kmem_cache_return_sheaf (aux = sheafp, size = objects or -1)
OP_REFILL_SHEAF: Final = 8  # kmem_cache_refill_sheaf (size = size, aux = sheafp)
OP_RCU_SHEAF: Final = 9  # rcu_free_sheaf ran: a grace period ended for a sheaf
OP_LARGE_ALLOC: Final = 10  # kmalloc above KMALLOC_MAX_CACHE_SIZE (page allocator)
OP_LARGE_FREE: Final = 11
OP_MARKER: Final = 12  # tracing_mark_write (aux = marker index)
OP_KFREE_BULK: Final = 13  # one object of kfree_bulk() (free_bulk name=(fault)); aux = group

OP_NAMES = {
    OP_ALLOC: "alloc",
    OP_FREE: "free",
    OP_ALLOC_FROM_SHEAF: "alloc_from_sheaf",
    OP_KFREE_RCU: "kfree_rcu",
    OP_FREE_BULK: "free_bulk",
    OP_ALLOC_BULK: "alloc_bulk",
    OP_PREFILL: "prefill_sheaf",
    OP_RETURN_SHEAF: "return_sheaf",
    OP_REFILL_SHEAF: "refill_sheaf",
    OP_RCU_SHEAF: "rcu_free_sheaf",
    OP_LARGE_ALLOC: "large_alloc",
    OP_LARGE_FREE: "large_free",
    OP_MARKER: "marker",
    OP_KFREE_BULK: "kfree_bulk",
}

# flags bits
F_PRETRACE: Final = 1  # free of an object allocated before the trace started
F_BULK_BOUND: Final = 2  # free of a pointer handed out by an earlier alloc_bulk (aux = its row)
F_RCU_COMPLETION: Final = 4  # the real kernel's delayed free of a kfree_rcu'd object
F_IMPLICIT: Final = 8  # free synthesised for a pointer re-allocated without a free (lost event)
F_FAILED: Final = 16  # the allocation returned NULL
#: on an F_IMPLICIT free: the object's real free was untraced and happened before
#: the lab kprobes were active; replay frees it at row ``aux`` as a plain free on
#: the reusing CPU (decision: it was most likely a kfree_rcu, but its rcu sheaf
#: completed unseen -- replayed as a kfree_rcu it waited for a completion no
#: traced rcu_free_sheaf supplies, and boot-mixed-4cpu's maple_node kept 11
#: sheaves, 352 objects, in flight for the whole trace)
F_EARLY: Final = 32
#: an allocation before the lab kprobes were active, at a call site that once
#: they were allocated only from prefilled sheaves (the same instruction calls
#: the same API): replay takes it from a prefilled sheaf it infers (a session:
#: a run of such allocations on one CPU with no other event of the CPU between)
F_PREFILLED: Final = 64
#: the event ran in hard/soft irq (or NMI) context (the trace's irq-flags
#: column; ftrace.irq_context).  Read by the replay's prepass
#: (``TraceFacts``) and cleared from the rows the replay loop sees
F_IRQ: Final = 128
