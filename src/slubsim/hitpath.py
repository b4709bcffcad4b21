"""The hit path of trace replay (Linux 7.x sheaves, 6.12 cpu slabs), in C.

Almost every event of a real trace is an allocation served by the CPU's main
sheaf (or a prefilled one), a free that finds room in it, or a ``kfree_rcu``
that finds room in the CPU's ``rcu_free`` sheaf; most of the rest exchange
sheaves between main, spare and the barn, or hand a prefilled sheaf out and
take it back.  :class:`HitPath` replays runs of such events in
one compiled loop, working directly on the model's own objects (the main
sheaf's object list, the model's object shadow -- :mod:`slubsim.shadow`,
whose state bytes and page owners it reads and writes through typed
memoryviews, finding an object's byte from its address alone -- and the
replayer's trace-object -> model-address list) and mirroring the few scalars
it changes (``nlive``, the memory curve, the hit counters) in C arrays that
are written back whenever it hands over.

It stops at the first event it cannot finish exactly as the model would,
before changing anything for that event;
:meth:`slubsim.replay.Replayer._replay_rows` then replays that event through
the full model and calls it again.  Results are bit-identical with and without
it (tested), compiled or not.

Which events it takes -- all of these, else it stops:

* ``OP_ALLOC``/``OP_FREE``/``OP_ALLOC_FROM_SHEAF``/``OP_KFREE_RCU``/
  ``OP_PREFILL``/``OP_RETURN_SHEAF`` rows with no ingest flags, before the
  next RCU grace-period tick that does work (``next_gp``) and before
  ``stop`` (the replayer's next row with pre-trace work);
* of a cache whose per-CPU layer is exactly 7.3's
  :class:`~slubsim.sheaves.SheavesLayer` (the 6.18 opt-in sheaves keep the
  classic layer's side effects), not destroyed,
  and whose memory curve has no pending change (the replayer's inline
  ``_sample`` case: pages, slabs and sheaves as last sampled);
* an allocation when the main sheaf is not empty -- models the hit of
  ``alloc_from_pcs`` (task context: no trylock; ``ALLOC_FASTPATH``) plus the
  bookkeeping of :meth:`slubsim.cache.KmemCache.replay_alloc` -- or when
  ``__pcs_replace_empty_main`` makes it so without slabs: a spare with
  objects becomes main, or (no such spare) ``barn_replace_empty_sheaf``
  takes the barn's first full sheaf (``BARN_GET``);
* a free of a traced object whose model address is live in this cache (the
  shadow says LIVE and the page is the cache's) when the main sheaf is not
  full -- models ``free_to_pcs``'s hit (``FREE_FASTPATH``) plus
  :meth:`~slubsim.cache.KmemCache.replay_free`
  -- or when ``__pcs_replace_full_main`` makes room without allocating or
  flushing: no spare and an empty barn sheaf (main becomes the spare), a
  spare with room (swapped), a full spare and a barn below ``max_full``
  with an empty sheaf (``barn_replace_full_sheaf``, ``BARN_PUT``).
  Decision: the slab's ``pfmemalloc`` is not looked up -- the model marks
  no slab so by itself (memory reserves are not modelled), so ``slab_free``'s
  ``!slab_test_pfmemalloc(slab)`` holds; a cache with marked slabs
  (``KmemCache.pfmemalloc_slabs``) is left to the full model;
* on a NUMA machine, the same except: an allocation for a requested node
  (``alloc_from_pcs``'s node checks) goes to the full model; a free of an
  object whose slab is on another node than the CPU's when that node has
  memory (``can_free_to_pcs`` false) is ``slow_free`` -- ``__slab_free`` +
  FREE_SLOWPATH -- replayed here when the slab stays partial (it had free
  objects and keeps some in use: onto its freelist, no list_lock), else by
  the full model; a ``kfree_rcu`` of an object not on the CPU's nearest
  memory node joins the CPU's classic kvfree_rcu batch
  (:meth:`slubsim.kernel.Kernel.kfree_rcu`), after which the run stops at
  the replayer's next grace-period tick unless the trace's delayed frees
  drain the batches -- the slab's node follows from the object's address
  (each node owns a disjoint pfn range, ``PageAllocator.addr_to_nid``), as
  ``Slab.nid`` was set;
* an allocation from a sheaf the model prefilled
  (``kmem_cache_alloc_from_sheaf``, found by the traced sheaf pointer) when
  it is not empty -- a pop, no counter, as
  :meth:`slubsim.cache.KmemCache.alloc_from_sheaf`;
* ``kmem_cache_prefill_sheaf`` for at most the capacity when the CPU's
  spare already holds that many (``SHEAF_PREFILL_FAST``, no refill), and
  ``kmem_cache_return_sheaf`` of a sheaf of the cache's capacity to a CPU
  without a spare (``SHEAF_RETURN_FAST``) -- with the replayer's
  prefilled-sheaf bookkeeping (by traced sheaf pointer);
* a ``kfree_rcu`` of such an object -- models ``__kfree_rcu_sheaf``
  (``FREE_RCU_SHEAF``) plus the bookkeeping of
  :meth:`slubsim.kernel.Kernel.kfree_rcu` and of the replayer (the trace
  object's address kept for the kernel's later completion) -- when the CPU
  has an ``rcu_free`` sheaf or gets one without allocating (an empty spare,
  else an empty barn sheaf); the object that fills it submits it to
  ``call_rcu`` through the model's own method;
* of a cache whose per-CPU layer is exactly 6.12's
  :class:`~slubsim.classic.ClassicLayer` without debugging (the rfc-pca
  and 6.18 subclasses put arrays and sheaves in front of it), and into
  which no other trace cache replays (merged under 6.12's rules): an
  allocation when ``c->freelist`` is not empty and the cpu slab is on the
  requested node -- ``__slab_alloc_node``'s fast path (``ALLOC_FASTPATH``)
  -- or, with no node asked for, ``___slab_alloc``'s lockless cases
  (``ALLOC_SLOWPATH``): the cpu slab's remote frees (``ALLOC_REFILL``), else
  the first cpu partial slab (``DEACTIVATE_BYPASS``, ``CPU_PARTIAL_ALLOC``);
  a free of a live object of the CPU's cpu slab -- ``do_slab_free``'s fast
  path onto ``c->freelist`` (``FREE_FASTPATH``) -- and the ``__slab_free``
  cases that take no list_lock (``FREE_SLOWPATH``): into another CPU's
  frozen cpu slab (``FREE_FROZEN``), into a slab that had free objects and
  keeps others in use, into a full slab that goes onto the CPU's cpu partial
  list without a drain (``CPU_PARTIAL_FREE``); a ``kfree_rcu`` (the CPU's
  classic kvfree_rcu batch, as above); every other row of such a cache goes
  to the full model.

Rows of caches the replay does not track (filtered out) are skipped, as the
replay loop does, and so are markers when the replay has no marker hook.

Hand-over protocol: :meth:`run` copies the row it stops at into the
replayer's lists (the compiled replay reads the columns as arrays and
converts only those rows).  The replayer then calls :meth:`invalidate` for
what replaying that row may read or change -- its cache on its CPU for the
events of one cache, every cache for the rest (RCU grace-period ticks,
pre-trace frees, marker hooks, bulk frees, large kmalloc) -- which writes
the mirrored values of that cache (every cache) back into the model, so that
the full model sees them and :meth:`run` reads that state afresh.  Other
caches' values stay mirrored across such a hand-over; at the end of a
batch, at ``stop`` and at a grace-period tick that does work :meth:`run`
writes everything back itself, as does ``invalidate(-1, -1)``.  Ticks that
do nothing (RCU sheaf completions replayed from the trace, no classic
kvfree_rcu batch pending) it moves on itself, as the replayer would.

Written in Cython's pure-Python mode: ``pip install .`` compiles it
(``setup.py``), and the same source runs as Python -- with Cython's shadow
module or, without Cython, :mod:`slubsim._cyshim` -- over lists instead of
arrays.  Cython rather than mypyc (which compiles the model) because the loop
reads the store's column arrays through typed memoryviews: mypyc would box
every value of every row.  As Python the hit path is no faster than the full
model, so the replay uses it only when compiled (tests run it both ways).
"""

from __future__ import annotations

try:
    import cython
except ModuleNotFoundError:  # plain Python without Cython installed
    from . import _cyshim as cython

#: True when this module runs as the Cython-compiled extension
COMPILED: bool = cython.compiled
if cython.compiled:
    from cython.cimports.cpython.list import PyList_GET_ITEM, PyList_GET_SIZE, PyList_SET_ITEM
    from cython.cimports.cpython.ref import Py_DECREF, Py_INCREF

# slubsim.trace.events' op values (C constants: op_values() shows them)
ALLOC = cython.declare(cython.int, 0)
FREE = cython.declare(cython.int, 1)
ALLOC_FROM_SHEAF = cython.declare(cython.int, 2)
KFREE_RCU = cython.declare(cython.int, 3)
FREE_BULK = cython.declare(cython.int, 4)
PREFILL = cython.declare(cython.int, 6)
RETURN_SHEAF = cython.declare(cython.int, 7)
MARKER = cython.declare(cython.int, 12)
KFREE_BULK = cython.declare(cython.int, 13)

# per-cache state
UNKNOWN = cython.declare(cython.int, -1)  # fetch the cache's state at its next event
CHANGED = cython.declare(cython.int, -2)  # same layer; counts, memory curve may have changed
OFF = cython.declare(cython.int, 0)  # this cache's events go to the full model until invalidated
ON = cython.declare(cython.int, 1)  # mirrored: events may be replayed here
SKIP = cython.declare(cython.int, 2)  # not replayed (no track): its alloc/free rows are skipped
NEVER = cython.declare(cython.int, 3)  # a layer it does not replay: the full model

# which loop takes a cache's rows: the layer's ``hit_kind``
# (slubsim.pcpu.HIT_SHEAVES / HIT_CLASSIC; kind_values() shows them)
KIND_SHEAVES = cython.declare(cython.int, 1)  # 7.3 SheavesLayer
KIND_CLASSIC = cython.declare(cython.int, 2)  # 6.12 ClassicLayer

#: the sheaf exchanges it replays besides plain hits (:meth:`HitPath.exchanges`)
EXCHANGES = (
    "alloc_spare_swap",
    "alloc_barn_get",
    "free_barn_empty",
    "free_spare_swap",
    "free_barn_put",
    "prefill_fast",
    "return_fast",
    "rcu_from_spare",
    "rcu_from_barn",
    "rcu_submit",
    "remote_free",
    "rcu_remote",
    "classic_free_frozen",
    "classic_free_partial",
    "classic_refill",
    "classic_cpu_partial_alloc",
    "classic_cpu_partial_free",
    "classic_kfree_rcu",
)
PAGE_SHIFT = cython.declare(cython.int, 12)  # slubsim.constants.PAGE_SHIFT
# the model's address layout (slubsim.constants.PAGE_OFFSET, slubsim.page_alloc:
# node n owns pfns FIRST_PFN + n * NODE_PFN_SPAN ...; layout_values() shows them)
PAGE_OFFSET = cython.declare(cython.ulonglong, 0x888000000000)
FIRST_PFN = cython.declare(cython.ulonglong, 1 << 20)
NODE_PFN_SHIFT = cython.declare(cython.int, 24)
NUMA_NO_NODE = cython.declare(cython.int, -1)
#: the address of node 0's first page, and log2 of a node's address span: an
#: address's offset y from it gives node y >> NODE_ADDR_SHIFT
NODE0_BASE = cython.declare(cython.ulonglong, PAGE_OFFSET + (FIRST_PFN << PAGE_SHIFT))
NODE_ADDR_SHIFT = cython.declare(cython.int, NODE_PFN_SHIFT + PAGE_SHIFT)
X_ALLOC_SWAP = cython.declare(cython.int, 0)
X_ALLOC_BARN = cython.declare(cython.int, 1)
X_FREE_EMPTY = cython.declare(cython.int, 2)
X_FREE_SWAP = cython.declare(cython.int, 3)
X_FREE_BARN = cython.declare(cython.int, 4)
X_PREFILL = cython.declare(cython.int, 5)
X_RETURN = cython.declare(cython.int, 6)
X_RCU_SPARE = cython.declare(cython.int, 7)
X_RCU_BARN = cython.declare(cython.int, 8)
X_RCU_SUBMIT = cython.declare(cython.int, 9)
X_REMOTE_FREE = cython.declare(cython.int, 10)
X_RCU_REMOTE = cython.declare(cython.int, 11)
X_CLASSIC_FROZEN = cython.declare(cython.int, 12)
X_CLASSIC_PARTIAL = cython.declare(cython.int, 13)
X_CLASSIC_REFILL = cython.declare(cython.int, 14)
X_CLASSIC_CPA = cython.declare(cython.int, 15)
X_CLASSIC_CPF = cython.declare(cython.int, 16)
X_CLASSIC_RCU = cython.declare(cython.int, 17)


def op_values() -> dict:
    """The op values this module compiled in (tests compare them with
    :mod:`slubsim.trace.events`)."""
    return {
        "OP_ALLOC": ALLOC,
        "OP_FREE": FREE,
        "OP_ALLOC_FROM_SHEAF": ALLOC_FROM_SHEAF,
        "OP_KFREE_RCU": KFREE_RCU,
        "OP_FREE_BULK": FREE_BULK,
        "OP_PREFILL": PREFILL,
        "OP_RETURN_SHEAF": RETURN_SHEAF,
        "OP_MARKER": MARKER,
        "OP_KFREE_BULK": KFREE_BULK,
    }


def kind_values() -> dict:
    """The layer kinds this module compiled in (tests compare them with
    :mod:`slubsim.pcpu`)."""
    return {"HIT_SHEAVES": KIND_SHEAVES, "HIT_CLASSIC": KIND_CLASSIC}


def layout_values() -> dict:
    """The address layout this module compiled in (tests compare it with
    :mod:`slubsim.constants` and :mod:`slubsim.page_alloc`)."""
    return {
        "PAGE_SHIFT": PAGE_SHIFT,
        "PAGE_OFFSET": PAGE_OFFSET,
        "FIRST_PFN": FIRST_PFN,
        "NODE_PFN_SPAN": 1 << NODE_PFN_SHIFT,
    }


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _granule_of(
    y: cython.ulonglong, lim: cython.ulonglong, stride: cython.Py_ssize_t
) -> cython.Py_ssize_t:
    """Shadow index (:meth:`slubsim.shadow.ObjectShadow.granule`) of the model
    address ``NODE0_BASE + y``; -1 outside the shadowed pages: its node ``y >>
    NODE_ADDR_SHIFT`` must be below the shadow's (``lim``: their count shifted
    the same way), its granule in the node below ``stride``."""
    if y >= lim or y < 0:  # (y < 0: only as Python, where nothing wraps)
        return -1
    local: cython.Py_ssize_t = cython.cast(
        cython.Py_ssize_t, (y & ((cython.cast(cython.ulonglong, 1) << NODE_ADDR_SHIFT) - 1)) >> 3
    )
    if local >= stride:
        return -1
    return cython.cast(cython.Py_ssize_t, y >> NODE_ADDR_SHIFT) * stride + local


@cython.cfunc
@cython.inline
def _pop_last(lst: list) -> object:
    """``lst.pop()`` of a non-empty list, without the shrinking: ``list.pop``
    reallocates the array whenever the list falls below half of it, and a
    main sheaf's list is emptied and refilled over and over (a tenth of the
    hit loop's instructions went to those reallocations).  Compiled, the
    size field goes down by one and the array stays (``Py_SET_SIZE``,
    declared in hitpath.pxd); the slot past the end is not the list's any
    more, and its reference is the caller's."""
    if cython.compiled:
        n: cython.Py_ssize_t = PyList_GET_SIZE(lst)
        x = cython.cast(object, PyList_GET_ITEM(lst, n - 1))  # (a new reference)
        Py_SET_SIZE(lst, n - 1)  # noqa: F821 (hitpath.pxd)
        Py_DECREF(x)  # the list's reference is now x's
        return x
    return lst.pop()


@cython.cfunc
@cython.inline
def _set_item(lst: list, i: cython.Py_ssize_t, x: object):
    """``lst[i] = x`` for an index the caller has checked (``0 <= i <
    len(lst)``): compiled, the slot is swapped with the list macros instead
    of Cython's generic item assignment and its checks (a tenth of a
    replayed row went to those, the trace-object -> address list being
    written at every allocation and free)."""
    if cython.compiled:
        old = cython.cast(object, PyList_GET_ITEM(lst, i))  # (a new reference)
        Py_INCREF(x)  # the list's, taken over by PyList_SET_ITEM
        PyList_SET_ITEM(lst, i, x)
        Py_DECREF(old)  # the list's former reference; ours goes at return
    else:
        lst[i] = x


def set_item(lst: list, i: int, x: object) -> None:
    """:func:`_set_item` from Python (tests)."""
    if not 0 <= i < len(lst):
        raise IndexError(i)
    _set_item(lst, i, x)


def pop_last(lst: list) -> object:
    """:func:`_pop_last` from Python (tests)."""
    return _pop_last(lst)


# (methods returning nothing carry no ``-> None``: Cython before 3.3 rejects
# it on cdef methods, and pyproject.toml admits Cython >= 3.0)
@cython.final
@cython.cclass
class HitPath:
    """The hit path over the replayer's caches (``tracks``: per store cache id,
    an object with ``model`` -- a KmemCache -- and the memory-curve fields of
    :class:`slubsim.replay.CacheTrack`, or None); ``cpu_of`` maps trace CPUs
    to model CPUs, ``ncpu`` model CPUs.  ``skip_markers``: the replay has no
    marker hook (marker rows need nothing); ``prefill_ok``: every replayed
    layer has the prefilled-sheaf API; ``kvfree_by_trace``: the trace's own
    delayed frees drain the classic kvfree_rcu batches (``Replayer.
    drain_by_trace``), so a grace-period tick need not stop a run after a
    remote ``kfree_rcu``."""

    ncpu: cython.Py_ssize_t
    ntracks: cython.Py_ssize_t
    tracks: list
    cpu_of: cython.int[::1]
    # per cache id
    state: cython.int[::1]
    known: cython.int[::1]
    layers: list
    cid: cython.int[::1]
    capacity: cython.longlong[::1]
    nlive: cython.longlong[::1]
    inuse: cython.longlong[::1]
    area: cython.double[::1]
    last_ts: cython.double[::1]
    last_cached: cython.longlong[::1]
    peak: cython.longlong[::1]
    stat_alloc: cython.longlong[::1]
    stat_free: cython.longlong[::1]
    stat_rcu: cython.longlong[::1]
    stat_prefill_fast: cython.longlong[::1]
    stat_return_fast: cython.longlong[::1]
    stat_barn_get: cython.longlong[::1]
    stat_barn_put: cython.longlong[::1]
    stat_free_slow: cython.longlong[::1]
    stat_frozen: cython.longlong[::1]
    kind: cython.int[::1]
    # 6.12: cpu_partial_slabs per cache; the stat items of the slow paths
    # taken here (STAT_ITEMS_612 is one list for every cache)
    cps: cython.longlong[::1]
    i_slow: cython.Py_ssize_t
    i_refill: cython.Py_ssize_t
    i_bypass: cython.Py_ssize_t
    i_cpa: cython.Py_ssize_t
    i_cpf: cython.Py_ssize_t
    max_full: cython.longlong[::1]
    prefilled: list
    models: list
    numa: cython.int[::1]
    dirty: cython.int[::1]
    dirty_list: cython.longlong[::1]
    ndirty: cython.Py_ssize_t
    # per (cache id, model cpu): index c * ncpu + cpu
    fetched: cython.int[::1]
    cpu_known: cython.int[::1]
    mains: list
    pcss: list
    barns: list
    own_node: cython.int[::1]
    own_has_mem: cython.int[::1]
    mem_node: cython.int[::1]
    rcus: list
    rows: list
    d_alloc: cython.longlong[::1]
    d_free: cython.longlong[::1]
    d_rcu: cython.longlong[::1]
    d_slow: cython.longlong[::1]
    d_frozen: cython.longlong[::1]
    # 6.12 cpu slabs (KIND_CLASSIC): the pages [clo, chi) of the CPU's cpu
    # slab (chi 0: none) and its node
    clo: cython.ulonglong[::1]
    chi: cython.ulonglong[::1]
    cnid: cython.int[::1]
    cdirty: cython.int[::1]
    cdirty_list: cython.longlong[::1]
    ncdirty: cython.Py_ssize_t
    # the batch being replayed (bind)
    op: cython.const[cython.schar][::1]
    cache: cython.const[cython.int][::1]
    cpu: cython.const[cython.short][::1]
    obj: cython.const[cython.int][::1]
    flags: cython.const[cython.uchar][::1]
    ts: cython.const[cython.double][::1]
    size: cython.const[cython.int][::1]
    node: cython.const[cython.schar][::1]
    aux: cython.const[cython.longlong][::1]
    n: cython.Py_ssize_t
    addr: list
    rcu_addr: dict
    sheaves: dict
    skip_markers: cython.bint
    prefill_ok: cython.bint
    #: the replay's layers are 6.12's (KIND_CLASSIC): run() is _run_classic()
    classic: cython.bint
    # the replayer's lists of the batch, filled for the rows it replays (or None)
    lists: object
    l_ts: list
    l_cpu: list
    l_op: list
    l_cache: list
    l_obj: list
    l_size: list
    l_node: list
    l_flags: list
    l_aux: list
    # the model's ObjectShadow (slubsim.shadow) as of generation shadow_gen:
    # its state bytes, page owners, granules per node and node count
    shadow: object
    shadow_gen: cython.longlong
    sstate: cython.uchar[::1]
    sowner: cython.int[::1]
    sstride: cython.longlong
    snodes: cython.longlong
    # the replayer's next grace-period tick as run() left it
    gp_at: cython.double
    # the kernel's page -> slab map and classic kvfree_rcu batches (per CPU
    # dicts of addresses, and address -> CPU); whether the trace's own delayed
    # frees drain those batches (else the replayer's grace-period ticks do)
    pfn_to_slab: dict
    kv_pending: list
    kv_cpu: dict
    kv_by_trace: cython.bint
    #: rows replayed or skipped here
    events: cython.longlong
    #: per op value, rows handed over to the full model
    stops: cython.longlong[::1]
    #: per EXCHANGES entry, how often it was replayed here
    taken: cython.longlong[::1]

    def __init__(
        self,
        tracks: list,
        cpu_of: list,
        ncpu: int,
        skip_markers: bool,
        prefill_ok: bool = True,
        kvfree_by_trace: bool = False,
        classic: bool = False,
    ):
        from array import array

        n = len(tracks)
        nc = n * ncpu
        self.ncpu = ncpu
        self.ntracks = n
        self.tracks = tracks
        self.cpu_of = array("i", cpu_of)
        self.state = array("i", [UNKNOWN]) * n
        self.known = array("i", [0]) * n
        self.layers = [None] * n
        self.cid = array("i", [0]) * n
        self.capacity = array("q", [0]) * n
        self.nlive = array("q", [0]) * n
        self.inuse = array("q", [0]) * n
        self.area = array("d", [0.0]) * n
        self.last_ts = array("d", [0.0]) * n
        self.last_cached = array("q", [0]) * n
        self.peak = array("q", [0]) * n
        self.stat_alloc = array("q", [0]) * n
        self.stat_free = array("q", [0]) * n
        self.stat_rcu = array("q", [0]) * n
        self.stat_prefill_fast = array("q", [0]) * n
        self.stat_return_fast = array("q", [0]) * n
        self.stat_barn_get = array("q", [0]) * n
        self.stat_barn_put = array("q", [0]) * n
        self.stat_free_slow = array("q", [0]) * n
        self.stat_frozen = array("q", [0]) * n
        self.kind = array("i", [0]) * n
        self.cps = array("q", [0]) * n
        self.i_slow = 0
        self.i_refill = 0
        self.i_bypass = 0
        self.i_cpa = 0
        self.i_cpf = 0
        self.max_full = array("q", [0]) * n
        self.prefilled = [None] * n
        self.models = [None] * n
        self.numa = array("i", [0]) * n
        self.dirty = array("i", [0]) * n
        self.dirty_list = array("q", [0]) * n
        self.ndirty = 0
        self.fetched = array("i", [0]) * nc
        self.cpu_known = array("i", [0]) * nc
        self.mains = [None] * nc
        self.pcss = [None] * nc
        self.barns = [None] * nc
        self.own_node = array("i", [0]) * nc
        self.own_has_mem = array("i", [0]) * nc
        self.mem_node = array("i", [0]) * nc
        self.rcus = [None] * nc
        self.rows = [None] * nc
        self.d_alloc = array("q", [0]) * nc
        self.d_free = array("q", [0]) * nc
        self.d_rcu = array("q", [0]) * nc
        self.d_slow = array("q", [0]) * nc
        self.d_frozen = array("q", [0]) * nc
        self.clo = array("Q", [0]) * nc
        self.chi = array("Q", [0]) * nc
        self.cnid = array("i", [0]) * nc
        self.skip_markers = skip_markers
        self.prefill_ok = prefill_ok
        self.classic = classic
        self.rcu_addr = {}
        self.sheaves = {}
        self.shadow = None
        self.shadow_gen = -1
        self.sstate = bytearray(1)
        self.sowner = array("i", [0])
        self.sstride = 0
        self.snodes = 0
        self.gp_at = 0.0
        self.pfn_to_slab = {}
        self.kv_pending = []
        self.kv_cpu = {}
        self.kv_by_trace = kvfree_by_trace
        self.cdirty = array("i", [0]) * nc
        self.cdirty_list = array("q", [0]) * nc
        self.ncdirty = 0
        self.events = 0
        self.stops = array("q", [0]) * 256
        self.taken = array("q", [0]) * len(EXCHANGES)

    def gp_tick(self) -> float:
        """The replayer's next grace-period tick after the last :meth:`run`."""
        return self.gp_at

    @cython.ccall
    def handled(self) -> cython.longlong:
        """Rows replayed (or skipped) here so far."""
        return self.events

    def stop_counts(self) -> dict:
        """Rows handed over to the full model so far, by op value."""
        return {o: int(self.stops[o]) for o in range(256) if self.stops[o]}

    def exchanges(self) -> dict:
        """How often each sheaf exchange of :data:`EXCHANGES` was replayed here."""
        return {name: int(self.taken[k]) for k, name in enumerate(EXCHANGES)}

    @cython.ccall
    def invalidate(self, c: cython.Py_ssize_t, cpu: cython.Py_ssize_t):
        """Before the full model replays an event: write back what is mirrored
        here of cache ``c`` (of every cache when ``c`` < 0) and forget what
        the event may change -- of cache ``c`` on CPU ``cpu`` (a plain
        allocation or free: its counts, memory curve and that CPU's sheaves),
        of every CPU of ``c`` when ``cpu`` < 0, of every cache when ``c`` < 0.
        The other caches' mirrored values stay here: :meth:`run` writes them
        back only when it stops for the whole replay (end of batch, ``stop``,
        the next grace-period tick that does work).  Object states are not
        mirrored: the hit path writes the model's shadow itself."""
        k: cython.Py_ssize_t
        if c < 0:
            self._write_back(-1)
            for k in range(self.ntracks):
                self.state[k] = UNKNOWN
            for k in range(self.ntracks * self.ncpu):
                self.fetched[k] = 0
            return
        if c >= self.ntracks or self.state[c] == NEVER or self.state[c] == SKIP:
            return
        self._write_back(c)
        if cpu < 0:
            self.state[c] = UNKNOWN
        else:
            if self.state[c] != UNKNOWN:
                self.state[c] = CHANGED
            self.fetched[c * self.ncpu + cpu] = 0

    @cython.ccall
    def bind(self, cols: dict, lists: object, addr: list, rcu_addr: dict, sheaves: dict):
        """The batch :meth:`run` reads: ``cols`` maps column names to arrays
        (int8 op, int32 cache, int16 cpu, int32 obj, uint8 flags, float64 ts,
        int32 size, int8 node, int64 aux; lists when not compiled); ``lists``
        (or None) the replayer's lists of the same columns, into which
        :meth:`run` copies each row it leaves to the replayer; ``addr`` the
        replayer's trace object -> model address list, ``rcu_addr`` its
        dict of trace objects kfree_rcu'd into the classic kvfree_rcu batch ->
        model addresses (:attr:`slubsim.replay.Replayer.rcu_addr`), ``sheaves`` its
        prefilled sheaves by traced pointer."""
        self.op = cols["op"]
        self.cache = cols["cache"]
        self.cpu = cols["cpu"]
        self.obj = cols["obj"]
        self.flags = cols["flags"]
        self.ts = cols["ts"]
        self.size = cols["size"]
        self.node = cols["node"]
        self.aux = cols["aux"]
        self._write_back(-1)  # (the replayer's invalidate(-1, -1) did so already)
        self.n = len(cols["op"])
        self.addr = addr
        self.rcu_addr = rcu_addr
        self.sheaves = sheaves
        self.lists = lists
        if lists is not None:
            self.l_ts = lists["ts"]
            self.l_cpu = lists["cpu"]
            self.l_op = lists["op"]
            self.l_cache = lists["cache"]
            self.l_obj = lists["obj"]
            self.l_size = lists["size"]
            self.l_node = lists["node"]
            self.l_flags = lists["flags"]
            self.l_aux = lists["aux"]

    @cython.cfunc
    def _fill(self, i: cython.Py_ssize_t):
        """Copy row ``i`` (all rows of its bulk call) into the replayer's lists."""
        hi: cython.Py_ssize_t = i + 1
        o: cython.int = self.op[i]
        if o in (FREE_BULK, KFREE_BULK):
            while hi < self.n and self.op[hi] == o and self.aux[hi] == self.aux[i]:
                hi += 1
        k: cython.Py_ssize_t
        for k in range(i, hi):
            self.l_ts[k] = self.ts[k]
            self.l_cpu[k] = self.cpu[k]
            self.l_op[k] = self.op[k]
            self.l_cache[k] = self.cache[k]
            self.l_obj[k] = self.obj[k]
            self.l_size[k] = self.size[k]
            self.l_node[k] = self.node[k]
            self.l_flags[k] = self.flags[k]
            self.l_aux[k] = self.aux[k]

    @cython.cfunc
    def _fetch(self, c: cython.Py_ssize_t) -> cython.int:
        """Read cache ``c``'s state from the model; its new state."""
        tr = self.tracks[c]
        k: cython.Py_ssize_t
        if self.state[c] == UNKNOWN:
            if tr is None:
                self.state[c] = SKIP
                return SKIP
            if self.known[c] == 0:
                self._fetch_static(c)
            if self.known[c] == 2:
                self.state[c] = NEVER
                return NEVER
            layer = self.layers[c]
            if self.kind[c] == KIND_SHEAVES:
                self.capacity[c] = layer.capacity
                self.max_full[c] = layer.max_full
            else:
                self.cps[c] = layer.cpu_partial_slabs
            for k in range(c * self.ncpu, (c + 1) * self.ncpu):
                self.fetched[k] = 0
        hs = tr.hit_state()
        if hs is None:
            self.state[c] = OFF  # the replayer samples the memory curve first
            return OFF
        nl, iu, ar, lt, lc, pk = hs
        self.nlive[c] = nl
        self.inuse[c] = iu
        self.area[c] = ar
        self.last_ts[c] = lt
        self.last_cached[c] = lc
        self.peak[c] = pk
        self.state[c] = ON
        return ON

    @cython.cfunc
    def _fetch_static(self, c: cython.Py_ssize_t):
        """What a replay never changes of cache ``c``: its model objects and
        stat item indices (``known[c]`` 1), or that its layer is not one the
        hit path replays (``known[c]`` 2)."""
        tr = self.tracks[c]
        layer = tr.model.layer
        kind: cython.int = getattr(layer, "hit_kind", 0)
        if kind != (KIND_CLASSIC if self.classic else KIND_SHEAVES):
            self.known[c] = 2
            return
        # a model cache two trace caches replay into (merged under the
        # replayed generation's rules: maple_node into kmalloc-256 under
        # 6.12) would be mirrored twice, each write-back undoing the other's
        for other in self.tracks:
            if other is not None and other is not tr and other.model is tr.model:
                self.known[c] = 2
                return
        self.kind[c] = kind
        self.layers[c] = layer
        self.cid[c] = tr.model.shadow_id
        if self.shadow is None:
            self.shadow = tr.model.shadow
        if kind == KIND_SHEAVES:
            self.stat_alloc[c] = layer.ALLOC_FASTPATH
            self.stat_free[c] = layer.FREE_FASTPATH
            self.stat_rcu[c] = layer.FREE_RCU_SHEAF
            self.stat_prefill_fast[c] = layer.SHEAF_PREFILL_FAST
            self.stat_return_fast[c] = layer.SHEAF_RETURN_FAST
            self.stat_barn_get[c] = layer.BARN_GET
            self.stat_barn_put[c] = layer.BARN_PUT
            self.stat_free_slow[c] = layer.FREE_SLOWPATH
            self.prefilled[c] = layer.prefilled
        else:
            from . import classic

            self.stat_alloc[c] = classic.ALLOC_FASTPATH
            self.stat_free[c] = classic.FREE_FASTPATH
            self.stat_free_slow[c] = classic.FREE_SLOWPATH
            self.stat_frozen[c] = classic.FREE_FROZEN
            self.i_slow = classic.ALLOC_SLOWPATH
            self.i_refill = classic.ALLOC_REFILL
            self.i_bypass = classic.DEACTIVATE_BYPASS
            self.i_cpa = classic.CPU_PARTIAL_ALLOC
            self.i_cpf = classic.CPU_PARTIAL_FREE
        k = tr.model.kernel
        self.pfn_to_slab = k.pfn_to_slab
        self.kv_pending = k.kvfree_rcu_pending
        self.kv_cpu = k.kvfree_rcu_cpu
        self.models[c] = tr.model
        self.numa[c] = 1 if layer.numa else 0
        self.known[c] = 1

    @cython.cfunc
    def _fetch_cpu(self, c: cython.Py_ssize_t, cpu: cython.Py_ssize_t):
        """Cache ``c``'s sheaves on CPU ``cpu``: the main and rcu_free sheaves'
        object lists, and once per replay what does not change (the
        slub_percpu_sheaves, the barn, the CPU's nodes, its stat row)."""
        j: cython.Py_ssize_t = c * self.ncpu + cpu
        if not self.cpu_known[j]:
            layer = self.layers[c]
            if self.kind[c] == KIND_SHEAVES:
                self.pcss[j] = layer.pcs[cpu]
                self.barns[j] = layer._barn(cpu)
            else:
                self.pcss[j] = layer.cpus[cpu]  # struct kmem_cache_cpu
            m = layer.machine
            self.own_node[j] = m.cpu_node[cpu]
            self.own_has_mem[j] = 1 if m.node_has_memory[m.cpu_node[cpu]] else 0
            self.mem_node[j] = m.cpu_mem_node[cpu]
            self.rows[j] = self.models[c].stat[cpu]
            self.cpu_known[j] = 1
        pcs = self.pcss[j]
        if self.kind[c] == KIND_CLASSIC:
            # c->freelist, and the pages of c->slab (the free fast path's
            # ``slab == c->slab``: a slab owns its pages alone)
            self.mains[j] = pcs.freelist
            self._cpu_slab(j, pcs.slab)
            self.rcus[j] = None
            self.fetched[j] = 1
            return
        self.mains[j] = pcs.main.objects
        rcu = pcs.rcu_free
        self.rcus[j] = rcu.objects if rcu is not None else None
        self.fetched[j] = 1

    @cython.cfunc
    def _cpu_slab(self, j: cython.Py_ssize_t, slab: object):
        """Mirror ``slab`` (or None) as the cpu slab of (cache, CPU) ``j``."""
        if slab is None:
            self.clo[j] = 0
            self.chi[j] = 0
            self.cnid[j] = -2
            return
        span: cython.ulonglong = cython.cast(cython.ulonglong, 1) << (
            PAGE_SHIFT + cython.cast(cython.int, slab.order)
        )
        lo: cython.ulonglong = cython.cast(cython.ulonglong, slab.base) & ~(span - 1)
        self.clo[j] = lo
        self.chi[j] = lo + span
        self.cnid[j] = slab.nid

    @cython.ccall
    def write_back(self):
        """Put every mirrored value changed since the last call into the model."""
        self._write_back(-1)

    @cython.cfunc
    def _write_back(self, only: cython.Py_ssize_t):
        """Put the mirrored values of cache ``only`` (every cache when < 0)
        into the model; the other caches' stay here.  ``dirty[c]`` /
        ``cdirty[c * ncpu + cpu]``: 0 not listed, 1 listed with values to
        write, 2 listed but written (one cache's write-back touches its own
        entries only; the lists empty at the write-back of every cache)."""
        k: cython.Py_ssize_t
        c: cython.Py_ssize_t
        j: cython.Py_ssize_t
        if only < 0:
            for k in range(self.ndirty):
                c = self.dirty_list[k]
                if self.dirty[c] == 1:
                    self._write_back_cache(c)
                self.dirty[c] = 0
            self.ndirty = 0
            for k in range(self.ncdirty):
                j = self.cdirty_list[k]
                if self.cdirty[j] == 1:
                    self._write_back_counts(j)
                self.cdirty[j] = 0
            self.ncdirty = 0
            return
        if self.dirty[only] == 1:
            self._write_back_cache(only)
            self.dirty[only] = 2
        for k in range(self.ncpu):
            j = only * self.ncpu + k
            if self.cdirty[j] == 1:
                self._write_back_counts(j)
                self.cdirty[j] = 2

    @cython.cfunc
    def _write_back_cache(self, c: cython.Py_ssize_t):
        """Cache ``c``'s live and in-use counts and memory curve into its track."""
        self.tracks[c].hit_write_back(
            self.nlive[c],
            self.inuse[c],
            self.area[c],
            self.last_ts[c],
            self.last_cached[c],
            self.peak[c],
        )

    @cython.cfunc
    def _write_back_counts(self, j: cython.Py_ssize_t):
        """The hit counters of (cache, CPU) ``j`` into the cache's stat row."""
        c: cython.Py_ssize_t = j // self.ncpu
        row = self.rows[j]
        if self.d_alloc[j]:
            row[self.stat_alloc[c]] += self.d_alloc[j]
            self.d_alloc[j] = 0
        if self.d_free[j]:
            row[self.stat_free[c]] += self.d_free[j]
            self.d_free[j] = 0
        if self.d_rcu[j]:
            row[self.stat_rcu[c]] += self.d_rcu[j]
            self.d_rcu[j] = 0
        if self.d_slow[j]:
            row[self.stat_free_slow[c]] += self.d_slow[j]
            self.d_slow[j] = 0
        if self.d_frozen[j]:
            row[self.stat_frozen[c]] += self.d_frozen[j]
            self.d_frozen[j] = 0

    @cython.cfunc
    def _shadow_views(self):
        """Views of the model's shadow arrays, taken again when it has grown
        (growing builds new arrays: the old views would write to those)."""
        sh = self.shadow
        if sh is not None and sh.generation != self.shadow_gen:
            self.sstate = sh.states
            self.sowner = sh.owners
            self.sstride = sh.stride
            self.snodes = sh.nr_nodes
            self.shadow_gen = sh.generation

    def granule(self, a: object, shadow: object = None) -> int:
        """:func:`_granule_of` of model address ``a`` from Python (tests), in
        ``shadow`` when given."""
        if shadow is not None:
            self.shadow = shadow
        self._shadow_views()
        y: cython.ulonglong = cython.cast(cython.ulonglong, a) - NODE0_BASE
        lim: cython.ulonglong = cython.cast(cython.ulonglong, self.snodes) << NODE_ADDR_SHIFT
        return _granule_of(y, lim, self.sstride)

    @cython.cfunc
    @cython.inline
    def _hand_out(self, main: list, slim: cython.ulonglong, sstride: cython.Py_ssize_t) -> object:
        """The last object of sheaf list ``main`` to a user: popped and LIVE in
        the shadow (KmemCache.replay_alloc's shadow write); None, with the
        object put back, if it is outside the shadow (cannot happen: every
        sheaf object is in a slab page)."""
        a = _pop_last(main)
        g: cython.Py_ssize_t = _granule_of(
            cython.cast(cython.ulonglong, a) - NODE0_BASE, slim, sstride
        )
        if g < 0:
            main.append(a)
            return None
        self.sstate[g] = 1  # LIVE
        return a

    @cython.cfunc
    @cython.inline
    @cython.exceptval(check=False)
    @cython.boundscheck(False)  # g is below the shadow's length (_granule_of)
    def _live_in(
        self,
        y: cython.ulonglong,
        c: cython.Py_ssize_t,
        slim: cython.ulonglong,
        sstride: cython.Py_ssize_t,
    ) -> cython.Py_ssize_t:
        """Shadow index of the object at model address ``NODE0_BASE + y`` when it
        is live in cache ``c`` (its byte LIVE, its page the cache's: what
        ``KmemCache.replay_free`` checks before a free), else -1."""
        g: cython.Py_ssize_t = _granule_of(y, slim, sstride)
        if g < 0 or self.sstate[g] != 1 or self.sowner[g >> (PAGE_SHIFT - 3)] != self.cid[c]:
            return -1
        return g

    @cython.cfunc
    @cython.exceptval(check=True)
    def _slab_free_partial(self, y: cython.ulonglong, a: object) -> cython.bint:
        """``__slab_free`` of the live object ``a`` (model address ``NODE0_BASE +
        y``) when its slab stays partial -- it had free objects and keeps
        others in use: the object goes on the slab's freelist and
        ``slab->inuse`` drops, no list_lock (models SheavesLayer.slab_free_to_slab's
        first return).  False, with nothing changed, otherwise (a full slab
        goes onto the node's partial list, an emptied one may be discarded:
        the full model's).  The caller counts FREE_SLOWPATH and the cache's
        ``inuse_total``."""
        slab = self.pfn_to_slab.get((y + NODE0_BASE) >> PAGE_SHIFT)
        if slab is None:
            return False
        fl: list = slab.freelist
        if not fl:
            return False  # was full
        left = slab.inuse - 1
        if left == 0:
            return False  # emptied
        fl.append(a)
        slab.inuse = left
        return True

    @cython.cfunc
    @cython.exceptval(check=True)
    def _slab_free_classic(self, y: cython.ulonglong, a: object) -> cython.int:
        """6.12 ``__slab_free`` of the live object ``a`` (model address
        ``NODE0_BASE + y``, not in this CPU's cpu slab) when it takes no
        list_lock and puts no slab on a cpu partial list: into another CPU's
        cpu slab (frozen: FREE_FROZEN), 2; into a slab that had free objects
        and keeps others in use, 1 -- the object goes on the slab's freelist
        and ``slab->inuse`` drops (models ClassicLayer.slab_free_to_slab's
        first return).  0, with nothing changed, otherwise (a full slab goes
        onto the CPU's partial list, an emptied one to the node's or away: the
        full model's).  The caller counts FREE_SLOWPATH and ``inuse_total``."""
        slab = self.pfn_to_slab.get((y + NODE0_BASE) >> PAGE_SHIFT)
        if slab is None:
            return 0
        fl: list = slab.freelist
        if slab.frozen:
            fl.append(a)
            slab.inuse = slab.inuse - 1
            return 2
        if not fl:
            return 0  # was full
        left = slab.inuse - 1
        if left == 0:
            return 0  # emptied
        fl.append(a)
        slab.inuse = left
        return 1

    @cython.cfunc
    def _classic_slow_alloc(self, c: cython.Py_ssize_t, j: cython.Py_ssize_t) -> object:
        """6.12 ``___slab_alloc`` (ALLOC_SLOWPATH) with an empty ``c->freelist``
        and no node asked for, in the two cases that take no lock: the cpu
        slab has remote frees -- ``get_freelist`` takes them (ALLOC_REFILL) --
        or it has none and leaves (DEACTIVATE_BYPASS) for the first slab of
        the cpu partial list (CPU_PARTIAL_ALLOC); models ClassicLayer.
        _slab_alloc's first returns.  The new ``c->freelist`` (objects taken
        out of their slab, ``inuse_total`` mirrored), or None with nothing
        changed (no cpu slab, or no cpu partial slab: the node lists are the
        full model's)."""
        kc = self.pcss[j]
        slab = kc.slab
        if slab is None:
            return None
        row = self.rows[j]
        fl: list = slab.freelist
        if fl:
            row[self.i_slow] += 1
            row[self.i_refill] += 1
            slab.freelist = []
            self.inuse[c] += slab.objects - slab.inuse
            slab.inuse = slab.objects
            kc.freelist = fl
            self.taken[X_CLASSIC_REFILL] += 1
            return fl
        partial: list = kc.partial
        if not partial:
            return None
        nxt = partial[len(partial) - 1]
        if not nxt.freelist:
            return None  # (a cpu partial slab always has free objects)
        row[self.i_slow] += 1
        slab.freelist = []  # get_freelist of the old cpu slab: nothing
        self.inuse[c] += slab.objects - slab.inuse
        slab.inuse = slab.objects
        slab.frozen = False
        row[self.i_bypass] += 1
        partial.pop()
        nxt.cpu_partial_of = -1
        kc.slab = nxt
        nxt.frozen = True
        fl = nxt.freelist
        nxt.freelist = []
        self.inuse[c] += nxt.objects - nxt.inuse
        nxt.inuse = nxt.objects
        row[self.i_cpa] += 1
        kc.freelist = fl
        self._cpu_slab(j, nxt)
        self.taken[X_CLASSIC_CPA] += 1
        return fl

    @cython.cfunc
    @cython.exceptval(check=True)
    def _classic_free_full(
        self,
        c: cython.Py_ssize_t,
        j: cython.Py_ssize_t,
        cpu: cython.Py_ssize_t,
        y: cython.ulonglong,
        a: object,
    ) -> cython.bint:
        """6.12 ``__slab_free`` of the live object ``a`` into a full slab that
        is no CPU's cpu slab: onto its freelist, and the slab onto this CPU's
        cpu partial list (``put_cpu_partial``, CPU_PARTIAL_FREE) when that
        needs no drain (models ClassicLayer.slab_free_to_slab and
        _put_cpu_partial).  False, with nothing changed, otherwise.  The
        caller counts FREE_SLOWPATH and ``inuse_total``."""
        slab = self.pfn_to_slab.get((y + NODE0_BASE) >> PAGE_SHIFT)
        if slab is None or slab.frozen:
            return False
        fl: list = slab.freelist
        if fl:
            return False  # not full: _slab_free_classic's
        kc = self.pcss[j]
        partial: list = kc.partial
        if partial and len(partial) >= self.cps[c]:
            return False  # the drain to the node lists: the full model's
        fl.append(a)
        slab.inuse = slab.inuse - 1
        slab.cpu_partial_of = cpu
        partial.append(slab)
        row = self.rows[j]
        row[self.i_cpf] += 1
        self.taken[X_CLASSIC_CPF] += 1
        return True

    @cython.cfunc
    def _barn_replace(
        self,
        c: cython.Py_ssize_t,
        j: cython.Py_ssize_t,
        pcs: object,
        take: list,
        put: list,
        item: cython.longlong,
        x: cython.int,
    ) -> object:
        """``barn_replace_empty_sheaf`` / ``barn_replace_full_sheaf`` under
        barn->lock: the first sheaf of ``take`` becomes main, the old main goes
        to ``put``; counts stat ``item`` (BARN_GET / BARN_PUT) on the row of
        (c, cpu) ``j`` and exchange ``x``.  The new main."""
        self.models[c].barn_lock += 1  # barn->lock
        sh = take.pop()
        put.append(pcs.main)
        row = self.rows[j]
        row[item] += 1
        pcs.main = sh
        self.taken[x] += 1
        return sh

    def slab_nid(self, a: object) -> int:
        """The node :meth:`run` finds for the live object at model address
        ``a`` (tests): ``slab->nid`` is the node of its pages (``Slab.nid`` =
        ``PageAllocator.addr_to_nid`` of its base), and each node owns a
        disjoint pfn range, so the address alone tells -- no page-map lookup
        (that took a third of a NUMA replay)."""
        y: cython.ulonglong = cython.cast(cython.ulonglong, a) - NODE0_BASE
        return cython.cast(cython.int, y >> NODE_ADDR_SHIFT)

    @cython.cfunc
    def _count_stop(self, i: cython.Py_ssize_t):
        o: cython.int = self.op[i]
        if 0 <= o < 256:
            self.stops[o] += 1

    @cython.cfunc
    def _may_take(self, o: cython.int) -> cython.bint:
        """Whether :meth:`run` takes rows of op ``o`` at all."""
        if o <= KFREE_RCU or o in (PREFILL, RETURN_SHEAF):
            return True
        return o == MARKER and self.skip_markers

    @cython.ccall
    @cython.boundscheck(False)  # every index below is checked or derived from checked ones
    def run(
        self,
        i: cython.Py_ssize_t,
        stop: cython.Py_ssize_t,
        next_gp: cython.double,
        gp_step: cython.double = 0.0,
    ) -> cython.Py_ssize_t:
        """Replay rows ``i``, ``i + 1``, ... of the bound batch below ``stop``
        while they are hits; the first row not replayed (``stop`` when all
        were), copied into the replayer's lists when it has bound them.

        ``next_gp``: the replayer's next grace-period tick.  With ``gp_step``
        > 0 the replayer has said that its ticks do nothing now (RCU sheaf
        completions come from the trace and no classic kvfree_rcu batch is
        pending -- nothing replayed here adds to one): a row at or after the
        tick moves it to that row's time + ``gp_step``, as the replayer would,
        and the run goes on; :meth:`gp_tick` says where it is.  Else the run
        stops at the tick."""
        self.gp_at = next_gp
        if i < stop and (
            not self._may_take(self.op[i])
            or (0 <= self.cache[i] < self.ntracks and self.state[self.cache[i]] == NEVER)
        ):
            # (before the typed locals below: a row this run cannot take costs
            # no more than this -- under 6.12 every row of a layer it does
            # not replay is one)
            self._count_stop(i)
            if self.lists is not None:
                self._fill(i)
            return i
        if self.classic:
            return self._run_classic(i, stop, next_gp, gp_step)
        op: cython.const[cython.schar][::1] = self.op
        cache: cython.const[cython.int][::1] = self.cache
        cpu: cython.const[cython.short][::1] = self.cpu
        obj: cython.const[cython.int][::1] = self.obj
        flags: cython.const[cython.uchar][::1] = self.flags
        ts: cython.const[cython.double][::1] = self.ts
        addr: list = self.addr
        start: cython.Py_ssize_t = i
        ncpu: cython.Py_ssize_t = self.ncpu
        ntracks: cython.Py_ssize_t = self.ntracks
        state: cython.int[::1] = self.state
        cpu_of: cython.int[::1] = self.cpu_of
        mains: list = self.mains
        fetched: cython.int[::1] = self.fetched
        capacity: cython.longlong[::1] = self.capacity
        nlive: cython.longlong[::1] = self.nlive
        inuse: cython.longlong[::1] = self.inuse
        area: cython.double[::1] = self.area
        last_ts: cython.double[::1] = self.last_ts
        last_cached: cython.longlong[::1] = self.last_cached
        peak: cython.longlong[::1] = self.peak
        dirty: cython.int[::1] = self.dirty
        cdirty: cython.int[::1] = self.cdirty
        d_alloc: cython.longlong[::1] = self.d_alloc
        d_free: cython.longlong[::1] = self.d_free
        d_rcu: cython.longlong[::1] = self.d_rcu
        d_slow: cython.longlong[::1] = self.d_slow
        rcus: list = self.rcus
        rcu_addr: dict = self.rcu_addr
        skip_markers: cython.bint = self.skip_markers
        rcu: list
        pcss: list = self.pcss
        size: cython.const[cython.int][::1] = self.size
        node: cython.const[cython.schar][::1] = self.node
        numa: cython.int[::1] = self.numa
        sheaves: dict = self.sheaves
        aux: cython.const[cython.longlong][::1] = self.aux
        self._shadow_views()  # (the model grows the shadow only between runs)
        # (the shadow's views are read through self: a local copy of a
        # memoryview costs an acquisition per call, and run() is called once
        # per hand-over)
        g: cython.Py_ssize_t
        y: cython.ulonglong
        av: cython.ulonglong
        remote: cython.bint
        slim: cython.ulonglong = cython.cast(cython.ulonglong, self.snodes) << NODE_ADDR_SHIFT
        sstride: cython.Py_ssize_t = self.sstride
        nobj: cython.Py_ssize_t = len(addr)
        ncpu_trace: cython.Py_ssize_t = len(self.cpu_of)
        kc: cython.Py_ssize_t
        t: cython.double
        o: cython.int
        c: cython.Py_ssize_t
        st: cython.int
        k: cython.Py_ssize_t
        j: cython.Py_ssize_t
        ob: cython.Py_ssize_t
        nl: cython.longlong
        cached: cython.longlong
        main: list
        take: cython.int
        at_gp: cython.bint = False
        while i < stop:
            t = ts[i]
            if t >= next_gp:
                if gp_step > 0.0:
                    next_gp = t + gp_step  # the replayer's tick, which does nothing
                else:
                    at_gp = True
                    break
            o = op[i]
            if o > KFREE_RCU and o != PREFILL and o != RETURN_SHEAF:
                if o == MARKER and skip_markers:
                    i += 1  # no hook: the replay loop does nothing either
                    continue
                break
            c = cache[i]
            if c < 0 or c >= ntracks:
                i += 1  # no track: skipped by the replay loop too
                continue
            st = state[c]
            if st != ON:
                if st < 0:  # UNKNOWN or CHANGED
                    st = self._fetch(c)
                if st == SKIP:
                    i += 1
                    continue
                if st != ON:
                    break
            if flags[i] != 0:
                break
            kc = cpu[i]
            ob = obj[i]
            if kc < 0 or kc >= ncpu_trace or ob < 0 or ob >= nobj:
                break  # a corrupt row: the full model reports it
            k = cpu_of[kc]
            j = c * ncpu + k
            if not fetched[j]:
                self._fetch_cpu(c, k)
            if o == ALLOC_FROM_SHEAF:
                # kmem_cache_alloc_from_sheaf(): a pop, no counter (KmemCache.alloc_from_sheaf)
                sh = sheaves.get(aux[i])
                if sh is None:
                    break  # not a sheaf the model prefilled: the replayer warns
                main = sh.objects
                if not main:
                    break  # the model's sheaf is empty: the replayer warns
                a = self._hand_out(main, slim, sstride)
                if a is None:
                    break
                nl = nlive[c] + 1
                _set_item(addr, ob, a)
            elif o == ALLOC:
                if numa[c] and node[i] != NUMA_NO_NODE:
                    break  # alloc_from_pcs's node checks: the full model
                main = mains[j]
                if not main:
                    # __pcs_replace_empty_main: a spare with objects becomes
                    # main (no counter), else barn_replace_empty_sheaf takes
                    # a full sheaf from the barn (BARN_GET); a refill from
                    # slabs is the full model's
                    if capacity[c] == 0:
                        break
                    pcs = pcss[j]
                    sh = pcs.spare
                    if sh is not None and sh.objects:
                        pcs.spare = pcs.main
                        pcs.main = sh
                        self.taken[X_ALLOC_SWAP] += 1
                    else:
                        barn = self.barns[j]
                        if barn is None:
                            break
                        fulls = barn.full
                        # (no negative index: the module is compiled without wraparound)
                        if not fulls or not fulls[len(fulls) - 1].objects:
                            break
                        sh = self._barn_replace(
                            c, j, pcs, fulls, barn.empty, self.stat_barn_get[c], X_ALLOC_BARN
                        )
                    main = sh.objects
                    mains[j] = main
                a = self._hand_out(main, slim, sstride)
                if a is None:
                    break
                nl = nlive[c] + 1
                _set_item(addr, ob, a)
                d_alloc[j] += 1
            elif o == FREE:
                a = addr[ob]
                av = cython.cast(cython.ulonglong, a)
                if av == 0:
                    break  # nothing to free: the replayer warns
                y = av - NODE0_BASE
                g = self._live_in(y, c, slim, sstride)
                if g < 0:
                    break  # the model's checks have to speak
                # can_free_to_pcs: on a NUMA machine an object of a remote
                # node's slab goes to __slab_free unless the CPU's node has no
                # memory
                if (
                    numa[c]
                    and cython.cast(cython.int, y >> NODE_ADDR_SHIFT) != self.own_node[j]
                    and self.own_has_mem[j]
                ):
                    # slow_free: __slab_free + FREE_SLOWPATH, here when the
                    # slab stays partial (the rest takes list_lock: the full
                    # model's)
                    if not self._slab_free_partial(y, a):
                        break
                    inuse[c] -= 1
                    d_slow[j] += 1
                    self.taken[X_REMOTE_FREE] += 1
                else:
                    main = mains[j]
                    if len(main) == capacity[c]:
                        # __pcs_replace_full_main: without a spare, an empty
                        # sheaf from the barn becomes main (the full one the
                        # spare); a spare with room is swapped in (no counter);
                        # with a full spare, barn_replace_full_sheaf puts main
                        # into the barn for an empty one (BARN_PUT); the rest
                        # (allocating a sheaf, flushing) is the full model's
                        if capacity[c] == 0:
                            break
                        pcs = pcss[j]
                        sh = pcs.spare
                        barn = self.barns[j]
                        if barn is None:
                            break
                        if sh is None:
                            if not barn.empty:
                                break
                            self.models[c].barn_lock += 1  # barn->lock
                            sh = barn.empty.pop()
                            pcs.spare = pcs.main
                            pcs.main = sh
                            self.taken[X_FREE_EMPTY] += 1
                        elif len(sh.objects) < capacity[c]:
                            pcs.spare = pcs.main
                            pcs.main = sh
                            self.taken[X_FREE_SWAP] += 1
                        else:
                            if len(barn.full) >= self.max_full[c] or not barn.empty:
                                break
                            sh = self._barn_replace(
                                c, j, pcs, barn.empty, barn.full, self.stat_barn_put[c], X_FREE_BARN
                            )
                        main = sh.objects
                        mains[j] = main
                    main.append(a)
                    d_free[j] += 1
                _set_item(addr, ob, 0)
                self.sstate[g] = 2  # FREED
                nl = nlive[c] - 1
            elif o == PREFILL:
                # kmem_cache_prefill_sheaf()'s fast case: the spare holds
                # enough objects and is handed out (SHEAF_PREFILL_FAST)
                pcs = pcss[j]
                sh = pcs.spare
                if (
                    not self.prefill_ok
                    or size[i] <= 0
                    or size[i] > capacity[c]
                    or pcs.locked
                    or sh is None
                    or len(sh.objects) < size[i]
                ):
                    break
                pcs.spare = None
                row = self.rows[j]
                row[self.stat_prefill_fast[c]] += 1
                sh.capacity = capacity[c]
                sh.pfmemalloc = False
                self.prefilled[c][sh.sid] = sh
                sheaves[aux[i]] = sh
                nl = nlive[c]
                self.taken[X_PREFILL] += 1
            elif o == RETURN_SHEAF:
                # kmem_cache_return_sheaf()'s fast case: the CPU has no spare,
                # the sheaf becomes it (SHEAF_RETURN_FAST)
                sh = sheaves.get(aux[i])
                if sh is None:
                    break  # not a sheaf the model prefilled: the replayer warns
                pcs = pcss[j]
                if (
                    not self.prefill_ok
                    or sh.capacity != capacity[c]
                    or sh.pfmemalloc
                    or pcs.locked
                    or pcs.spare is not None
                ):
                    break
                del sheaves[aux[i]]
                self.prefilled[c].pop(sh.sid, None)
                pcs.spare = sh
                row = self.rows[j]
                row[self.stat_return_fast[c]] += 1
                nl = nlive[c]
                self.taken[X_RETURN] += 1
            else:  # KFREE_RCU
                a = addr[ob]
                av = cython.cast(cython.ulonglong, a)
                if av == 0:
                    break
                y = av - NODE0_BASE
                g = self._live_in(y, c, slim, sstride)
                if g < 0:
                    break  # (as a free)
                # not the CPU's nearest memory node: kfree_rcu_sheaf declines
                # (no stat) and Kernel.kfree_rcu puts the object in the CPU's
                # classic kvfree_rcu batch
                remote = (
                    numa[c] != 0
                    and cython.cast(cython.int, y >> NODE_ADDR_SHIFT) != self.mem_node[j]
                )
                if not remote:
                    rcu = rcus[j]
                    take = 0
                    if rcu is None:
                        # __kfree_rcu_sheaf without an rcu_free sheaf: an empty
                        # spare becomes it, else the barn's first empty sheaf;
                        # allocating one is the full model's
                        if capacity[c] == 0:
                            break
                        pcs = pcss[j]
                        sh = pcs.spare
                        if sh is not None and not sh.objects:
                            take = 1
                        else:
                            barn = self.barns[j]
                            if barn is None or not barn.empty:
                                break
                            take = 2
                    elif len(rcu) >= capacity[c]:
                        break  # (a full rcu_free sheaf is submitted at once: not seen)
                    if take == 1:
                        pcs.rcu_free = sh
                        pcs.spare = None
                    elif take == 2:
                        self.models[c].barn_lock += 1  # barn->lock
                        sh = barn.empty.pop()
                        pcs.rcu_free = sh
                    if take:
                        rcu = sh.objects
                        rcus[j] = rcu
                        self.taken[X_RCU_SPARE if take == 1 else X_RCU_BARN] += 1
                _set_item(addr, ob, 0)
                self.sstate[g] = 2  # FREED (Kernel.kfree_rcu's mark_freed)
                nl = nlive[c] - 1
                if remote:
                    rcu_addr[ob] = a  # for the traced kernel's later kfree_bulk
                    # the classic batch is freed after a grace period: at the
                    # replayer's next tick (this run stops there from now on),
                    # unless the trace's own delayed frees drain the batches
                    self.kv_pending[k][a] = None
                    self.kv_cpu[a] = k
                    if not self.kv_by_trace:
                        gp_step = 0.0
                    self.taken[X_RCU_REMOTE] += 1
                else:
                    if rcu_addr:
                        rcu_addr.pop(ob, None)  # an earlier lifetime's, taken back
                    rcu.append(a)
                    d_rcu[j] += 1
                    if len(rcu) == capacity[c]:
                        # full: call_rcu(&sheaf->rcu_head, rcu_free_sheaf) through
                        # the model's own SheavesLayer._submit_rcu_sheaf (the rcu
                        # queue is not mirrored here)
                        pcs = pcss[j]
                        sh = pcs.rcu_free
                        pcs.rcu_free = None
                        layer = self.layers[c]
                        sh.node = layer.machine.cpu_node[k]
                        layer.cache.kernel.rcu.now = t  # Rcu.queued_at
                        layer._submit_rcu_sheaf(k, sh, True)
                        rcus[j] = None
                        self.taken[X_RCU_SUBMIT] += 1
            nlive[c] = nl
            # the replayer's inline _sample (memory curve), same operations
            cached = inuse[c] - nl
            area[c] += last_cached[c] * (t - last_ts[c])
            last_ts[c] = t
            last_cached[c] = cached
            if cached > peak[c]:
                peak[c] = cached
            if dirty[c] != 1:
                if not dirty[c]:
                    self.dirty_list[self.ndirty] = c
                    self.ndirty += 1
                dirty[c] = 1
            if cdirty[j] != 1:
                if not cdirty[j]:
                    self.cdirty_list[self.ncdirty] = j
                    self.ncdirty += 1
                cdirty[j] = 1
            i += 1
        self.events += i - start
        self.gp_at = next_gp
        if i < stop:
            self._count_stop(i)
        if i >= stop or at_gp:
            # the replayer replays every cache's events next (pre-trace work,
            # grace-period tick, next batch): everything back into the model.
            # Else it replays row i's event and calls invalidate() first,
            # which writes back what that event may read.
            self._write_back(-1)
        if i < self.n and self.lists is not None:
            self._fill(i)
        return i

    @cython.cfunc
    @cython.boundscheck(False)  # every index below is checked or derived from checked ones
    def _run_classic(
        self,
        i: cython.Py_ssize_t,
        stop: cython.Py_ssize_t,
        next_gp: cython.double,
        gp_step: cython.double,
    ) -> cython.Py_ssize_t:
        """:meth:`run` over 6.12 caches (``classic``): the cpu slab's fast
        paths, ``___slab_alloc``'s and ``__slab_free``'s lockless cases and
        ``kfree_rcu`` into the classic batch (module docstring); every other
        row stops it.  Its own loop rather than a branch of the sheaf loop's:
        one more test per row there cost the 7.3 replay 5-10 % (the loop's
        head and tail are the sheaf loop's, written out again for that)."""
        op: cython.const[cython.schar][::1] = self.op
        cache: cython.const[cython.int][::1] = self.cache
        cpu: cython.const[cython.short][::1] = self.cpu
        obj: cython.const[cython.int][::1] = self.obj
        flags: cython.const[cython.uchar][::1] = self.flags
        ts: cython.const[cython.double][::1] = self.ts
        node: cython.const[cython.schar][::1] = self.node
        addr: list = self.addr
        start: cython.Py_ssize_t = i
        ncpu: cython.Py_ssize_t = self.ncpu
        ntracks: cython.Py_ssize_t = self.ntracks
        state: cython.int[::1] = self.state
        cpu_of: cython.int[::1] = self.cpu_of
        mains: list = self.mains
        fetched: cython.int[::1] = self.fetched
        nlive: cython.longlong[::1] = self.nlive
        inuse: cython.longlong[::1] = self.inuse
        area: cython.double[::1] = self.area
        last_ts: cython.double[::1] = self.last_ts
        last_cached: cython.longlong[::1] = self.last_cached
        peak: cython.longlong[::1] = self.peak
        dirty: cython.int[::1] = self.dirty
        cdirty: cython.int[::1] = self.cdirty
        d_alloc: cython.longlong[::1] = self.d_alloc
        d_free: cython.longlong[::1] = self.d_free
        d_slow: cython.longlong[::1] = self.d_slow
        d_frozen: cython.longlong[::1] = self.d_frozen
        clo: cython.ulonglong[::1] = self.clo
        chi: cython.ulonglong[::1] = self.chi
        cnid: cython.int[::1] = self.cnid
        rcu_addr: dict = self.rcu_addr
        skip_markers: cython.bint = self.skip_markers
        self._shadow_views()
        g: cython.Py_ssize_t
        y: cython.ulonglong
        av: cython.ulonglong
        slim: cython.ulonglong = cython.cast(cython.ulonglong, self.snodes) << NODE_ADDR_SHIFT
        sstride: cython.Py_ssize_t = self.sstride
        nobj: cython.Py_ssize_t = len(addr)
        ncpu_trace: cython.Py_ssize_t = len(self.cpu_of)
        kc: cython.Py_ssize_t
        t: cython.double
        o: cython.int
        c: cython.Py_ssize_t
        st: cython.int
        k: cython.Py_ssize_t
        j: cython.Py_ssize_t
        ob: cython.Py_ssize_t
        nl: cython.longlong
        cached: cython.longlong
        main: list
        fr: cython.int
        nd: cython.int
        fl2: object
        fast: cython.bint
        at_gp: cython.bint = False
        while i < stop:
            t = ts[i]
            if t >= next_gp:
                if gp_step > 0.0:
                    next_gp = t + gp_step  # the replayer's tick, which does nothing
                else:
                    at_gp = True
                    break
            o = op[i]
            if o != ALLOC and o != FREE and o != KFREE_RCU:
                if o == MARKER and skip_markers:
                    i += 1  # no hook: the replay loop does nothing either
                    continue
                break
            c = cache[i]
            if c < 0 or c >= ntracks:
                i += 1  # no track: skipped by the replay loop too
                continue
            st = state[c]
            if st != ON:
                if st < 0:  # UNKNOWN or CHANGED
                    st = self._fetch(c)
                if st == SKIP:
                    i += 1
                    continue
                if st != ON:
                    break
            if flags[i] != 0:
                break
            kc = cpu[i]
            ob = obj[i]
            if kc < 0 or kc >= ncpu_trace or ob < 0 or ob >= nobj:
                break  # a corrupt row: the full model reports it
            k = cpu_of[kc]
            j = c * ncpu + k
            if not fetched[j]:
                self._fetch_cpu(c, k)
            if o == ALLOC:
                # __slab_alloc_node: pop c->freelist when the cpu slab is
                # on the requested node (ALLOC_FASTPATH)
                # (else ___slab_alloc's lockless cases)
                nd = node[i]
                main = mains[j]
                fast = True
                if not main or chi[j] == 0:
                    if nd != NUMA_NO_NODE:
                        break
                    fl2 = self._classic_slow_alloc(c, j)
                    if fl2 is None:
                        break
                    main = fl2
                    mains[j] = main
                    fast = False
                elif nd != NUMA_NO_NODE and nd != cnid[j]:
                    break
                a = self._hand_out(main, slim, sstride)
                if a is None:
                    break
                nl = nlive[c] + 1
                _set_item(addr, ob, a)
                if fast:
                    d_alloc[j] += 1
            elif o == FREE:
                a = addr[ob]
                av = cython.cast(cython.ulonglong, a)
                if av == 0:
                    break  # nothing to free: the replayer warns
                y = av - NODE0_BASE
                g = self._live_in(y, c, slim, sstride)
                if g < 0:
                    break  # the model's checks have to speak
                if clo[j] <= av < chi[j]:
                    # do_slab_free: the object is the cpu slab's, onto
                    # c->freelist (FREE_FASTPATH)
                    main = mains[j]
                    main.append(a)
                    d_free[j] += 1
                else:
                    fr = self._slab_free_classic(y, a)
                    if fr == 0:
                        if not self._classic_free_full(c, j, k, y, a):
                            break
                    elif fr == 2:
                        d_frozen[j] += 1
                        self.taken[X_CLASSIC_FROZEN] += 1
                    else:
                        self.taken[X_CLASSIC_PARTIAL] += 1
                    inuse[c] -= 1
                    d_slow[j] += 1
                _set_item(addr, ob, 0)
                self.sstate[g] = 2  # FREED
                nl = nlive[c] - 1
            elif o == KFREE_RCU:
                # kvfree_call_rcu: 6.12 has no rcu sheaf, the object joins
                # the CPU's classic kvfree_rcu batch (Kernel.kfree_rcu)
                a = addr[ob]
                av = cython.cast(cython.ulonglong, a)
                if av == 0:
                    break
                y = av - NODE0_BASE
                g = self._live_in(y, c, slim, sstride)
                if g < 0:
                    break
                _set_item(addr, ob, 0)
                self.sstate[g] = 2  # FREED (Kernel.kfree_rcu's mark_freed)
                nl = nlive[c] - 1
                rcu_addr[ob] = a  # for the traced kernel's later kfree_bulk
                self.kv_pending[k][a] = None
                self.kv_cpu[a] = k
                if not self.kv_by_trace:
                    gp_step = 0.0  # the next tick drains it: stop there
                self.taken[X_CLASSIC_RCU] += 1
            else:
                break
            nlive[c] = nl
            # the replayer's inline _sample (memory curve), same operations
            cached = inuse[c] - nl
            area[c] += last_cached[c] * (t - last_ts[c])
            last_ts[c] = t
            last_cached[c] = cached
            if cached > peak[c]:
                peak[c] = cached
            if dirty[c] != 1:
                if not dirty[c]:
                    self.dirty_list[self.ndirty] = c
                    self.ndirty += 1
                dirty[c] = 1
            if cdirty[j] != 1:
                if not cdirty[j]:
                    self.cdirty_list[self.ncdirty] = j
                    self.ncdirty += 1
                cdirty[j] = 1
            i += 1
        self.events += i - start
        self.gp_at = next_gp
        if i < stop:
            self._count_stop(i)
        if i >= stop or at_gp:
            self._write_back(-1)
        if i < self.n and self.lists is not None:
            self._fill(i)
        return i
