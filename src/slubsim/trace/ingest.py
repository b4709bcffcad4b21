"""Ingest a trace: parse every line, map events to caches (spec §10.4), report
what could not be explained, and build an :class:`~slubsim.trace.store.EventStore`.

Mapping rules:

* ``kmem_cache_alloc``/``kmem_cache_free`` by ``name=`` (the surviving cache of a
  merge).  6.x ``kmem_cache_alloc`` has no name: it is resolved after the fact,
  in this order, by the next named free of the same pointer, by the 4 KiB page
  of a known object, by a unique slab size, by the call site.
* ``kmalloc`` by ``bytes_alloc`` and the gfp type (``kmalloc-rcl-*`` with
  ``__GFP_RECLAIMABLE``); above 8 KiB a large kmalloc, traced twice (deduped).
* ``kfree`` by the pointer's live allocation, else by the slab page of a known
  object of a cache (an object allocated before the trace).
* ``kfree_rcu`` (kprobe) ends the pointer's life at call time; a later
  ``kfree_bulk`` of it (``free_bulk name=(fault)``) is the real kernel's delayed
  free and is flagged as its completion.
* objects of ``alloc_bulk`` (count only) bind to later frees of unknown
  pointers of that cache.

Everything unusual is counted in ``warnings`` with a kind, whether it is
explained, and the first few ``file:line`` locations.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import KMALLOC_MAX_CACHE_SIZE, PAGE_SHIFT, PAGE_SIZE, ZERO_SIZE_PTR
from ..flags import GFP_RECLAIMABLE, parse_gfp
from ..kmalloc import (
    KMALLOC_NORMAL,
    KMALLOC_RECLAIM,
    kmalloc_cache_name,
    kmalloc_index_size,
    parse_kmalloc_name,
)
from . import fastparse
from .events import (
    F_BULK_BOUND,
    F_EARLY,
    F_FAILED,
    F_IMPLICIT,
    F_IRQ,
    F_PREFILLED,
    F_PRETRACE,
    F_RCU_COMPLETION,
    OP_ALLOC,
    OP_ALLOC_BULK,
    OP_ALLOC_FROM_SHEAF,
    OP_FREE,
    OP_FREE_BULK,
    OP_KFREE_BULK,
    OP_KFREE_RCU,
    OP_LARGE_ALLOC,
    OP_LARGE_FREE,
    OP_MARKER,
    OP_PREFILL,
    OP_RCU_SHEAF,
    OP_REFILL_SHEAF,
    OP_RETURN_SHEAF,
)
from .fastparse import EVENT_NAMES, Block, parse_block
from .ftrace import (
    E_ALLOC_BULK,
    E_ALLOC_BULK_RET,
    E_ALLOC_FROM_SHEAF,
    E_CACHE_ALLOC,
    E_CACHE_FREE,
    E_FREE_BULK,
    E_FREE_BULK_CONT,
    E_KFREE,
    E_KFREE_RCU,
    E_KMALLOC,
    E_MARKER,
    E_OTHER,
    E_PAGE,
    E_PREFILL,
    E_PREFILL_RET,
    E_RCU_FREE_SHEAF,
    E_REFILL,
    E_RETURN_SHEAF,
    E_SLAB_FREE_SLOW,
    MalformedLine,
    RawEvent,
    irq_context,
    parse_hex,
    parse_line,
)
from .io import TraceFormatError, decode_line, iter_blocks, iter_lines
from .store import EventStore, StoreWriter

_HEADER_ENTRIES = re.compile(r"entries-in-buffer/entries-written:\s*(\d+)/(\d+)\s+#P:(\d+)")
_LAB_READ = re.compile(r"LAB_READ\s+(before|after)\s+(\S+)\s+(\S+)")
MAX_EXAMPLES = 5
_KPROBE_KINDS = frozenset(
    (
        E_KFREE_RCU,
        E_RCU_FREE_SHEAF,
        E_FREE_BULK,
        E_ALLOC_BULK,
        E_PREFILL,
        E_ALLOC_FROM_SHEAF,
        E_RETURN_SHEAF,
        E_SLAB_FREE_SLOW,
    )
)


@dataclass
class Warn:
    kind: str
    explained: bool
    detail: str
    count: int = 0
    examples: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "explained": self.explained,
            "count": self.count,
            "detail": self.detail,
            "examples": self.examples or [],
        }


#: events whose rows carry F_IRQ from the line's irq-flags column
_IRQ_KINDS = frozenset((E_CACHE_ALLOC, E_KMALLOC, E_CACHE_FREE, E_KFREE))

WARNING_KINDS: dict[str, tuple[bool, str]] = {
    "pretrace_free": (
        True,
        "free of an object allocated before the trace started (replay policy decides)",
    ),
    "bulk_bound_free": (True, "free of a pointer handed out by alloc_bulk (count-only event)"),
    "rcu_completion": (
        True,
        "the real kernel's delayed kfree_bulk of a kfree_rcu'd object (the model does its own)",
    ),
    "null_free": (True, "kfree(NULL) / kfree(ZERO_SIZE_PTR): no-op"),
    "large_kmalloc_duplicate": (True, "second kmalloc event of a large non-constant kmalloc"),
    "page_events": (True, "mm_page_* events: recognised, not replayed"),
    "slab_free_slow": (True, "slab_free_slow kprobe: informational (6.12 bulk slow frees)"),
    "unnamed_alloc_resolved": (True, "6.x kmem_cache_alloc without name= resolved"),
    "unresolved_kfree": (
        True,
        "kfree of an object allocated before the trace on a page where no object of a "
        "known cache was seen (cache unknowable from the trace; skipped)",
    ),
    "unresolved_alloc": (
        True,
        "6.x kmem_cache_alloc (no name=) with no later named free, no known object on its "
        "page, an ambiguous slab size and an unknown call site: cache unknowable from the "
        "trace; replay skips its events",
    ),
    "reuse_before_kprobes": (
        True,
        "pointer allocated before the lab kprobes were active and allocated again without "
        "a traced free: its free was an untraced kfree_rcu/kfree_bulk (early boot)",
    ),
    "ptr_reuse_without_free": (
        False,
        "pointer allocated again without a free in between (lost or untraced free)",
    ),
    "failed_alloc": (True, "allocation returned NULL"),
    "cache_name_mismatch": (False, "kmem_cache_free name differs from the allocating cache"),
    "unknown_event": (True, "event type not used by the replay"),
    "refill_sheaf_unsupported": (False, "kmem_cache_refill_sheaf: not replayed"),
    "incomplete_bulk": (False, "free_bulk with fewer pointers than its size (truncated probe)"),
    "orphan_kprobe": (False, "return/continuation kprobe without its entry event"),
    "ring_buffer_loss": (False, "the ring buffer lost events: the trace is incomplete"),
    "malformed_line": (False, "line that could not be parsed (skipped with --skip-malformed)"),
}


class IngestError(TraceFormatError):
    pass


@dataclass
class IngestOptions:
    skip_malformed: bool = False
    progress: Callable[[int], None] | None = None  # called with lines read


def _parse_objs(v: str) -> list[int]:
    v = v.strip("{}")
    return [int(x, 16) for x in v.split(",") if x]


def find_trace_file(bundle: Path) -> Path:
    for name in ("trace.txt.xz", "trace.txt.zst", "trace.txt.gz", "trace.txt", "trace.dat.txt"):
        if (bundle / name).is_file():
            return bundle / name
    raise IngestError(f"{bundle}: bundle directory without trace.txt[.xz|.gz|.zst]")


def load_bundle_caches(bundle: Path) -> dict[str, dict[str, Any]]:
    """``slab_stats.json``: sysfs dir -> {names, config}."""
    f = bundle / "slab_stats.json"
    if not f.is_file():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(f.read_text())
    return data


class Ingester:
    """Single forward pass over the lines with back-patching for 6.x names."""

    def __init__(
        self,
        source: str,
        bundle_caches: dict[str, dict[str, Any]],
        spill_dir: Path | None = None,
        row_chunk: int = 0,
    ) -> None:
        self.source = source
        #: rows not yet packed; packed every ``row_chunk`` rows into ``_packed``
        #: (33 bytes a row instead of ~290 as Python tuples), or into .npy
        #: files in ``spill_dir`` (memory then bounded by one chunk)
        self.rows: list[tuple[float, int, int, int, int, int, int, int, int]] = []
        self._packed: list[np.ndarray[Any, Any]] = []
        self._spilled: list[Path] = []
        self.spill_dir = spill_dir
        self.row_chunk = row_chunk or ROW_CHUNK
        self.max_cpu = -1
        self.cache_patch: dict[int, int] = {}
        self.cache_ids: dict[str, int] = {}
        self.cache_info: list[dict[str, Any]] = []
        self.alias_to_dir: dict[str, str] = {}
        self.bundle_caches = bundle_caches
        for d, info in bundle_caches.items():
            for n in info.get("names", []):
                self.alias_to_dir[n] = d
        self.warn: dict[str, Warn] = {}
        self.markers: list[dict[str, Any]] = []
        self.header: dict[str, Any] = {}
        # live pointer -> cache id (>= 0), or -(pending+2) for unnamed 6.x allocs
        self.live: dict[int, int] = {}
        self.large_live: dict[int, int] = {}
        self.page_cache: dict[int, int] = {}
        self.rcu_pending: dict[int, int] = {}
        self.bulk_groups: dict[int, list[list[int]]] = defaultdict(list)  # cache -> [[row, left]]
        #: (cache, kernel slab) -> the same [row, left] lists, for the groups
        #: whose slab is known (see :meth:`bind_bulk`)
        self.bulk_by_slab: dict[tuple[int, int], list[list[int]]] = defaultdict(list)
        self.bulk_head: dict[int, int] = {}  # cache -> its oldest call with objects left
        self.sheaf_cache: dict[int, int] = {}
        self.from_sheaf: dict[str, tuple[int, int]] = {}  # task -> (sheaf ptr, cache id)
        self.pending_bulk_free: dict[int, dict[str, Any]] = {}
        # kretprobe pairs are matched by task (the task may migrate in between)
        self.pending_alloc_bulk: dict[str, tuple[int, int, int, int]] = {}
        self.pending_prefill: dict[str, tuple[int, int]] = {}
        self.last_large: dict[int, tuple[int, int]] = {}  # cpu -> (ptr, bytes) of last large
        self.group = 0
        self.kmalloc_cid: dict[tuple[str, int], int] = {}
        # 6.x unnamed allocations
        self.pending: list[dict[str, Any]] = []
        self.callsite_cache: dict[str, int] = {}
        self.size_caches: dict[int, set[int]] = defaultdict(set)
        self.lines = 0
        self.kprobes_seen = False
        self.pre_kprobe_live: set[int] = set()
        self.kprobe_row = 0
        self.cur_irq = 0  # F_IRQ while consuming a line in irq context
        #: allocations before the first lab kprobe event, per call site (rows;
        #: tracked when the trace comes with kprobe definitions -- a bundle's
        #: kprobe_events.txt -- up to BLIND_TRACK_MAX of them)
        self.track_blind = False
        self.blind_allocs: dict[str, list[int]] = defaultdict(list)
        self.blind_tracked = 0
        #: call sites seen allocating from a prefilled sheaf
        self.sheaf_call_sites: set[str] = set()
        self._cs = ""  # call site of the allocation being placed (general path)
        #: per cache: prefill counts, and allocations per prefilled sheaf
        self.prefill_counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.prefill_allocs: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.sheaf_allocs: dict[int, int] = {}  # prefilled sheaf -> allocations so far
        self.sheaf_count: dict[int, int] = {}  # prefilled sheaf -> its prefill count
        #: per cache: allocations per prefilled sheaf -> prefill count -> sessions
        self.prefill_joint: dict[int, dict[int, dict[int, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.flag_patch: dict[int, int] = {}  # row -> flag bits set in finish()
        self.events = 0
        self.event_counts: dict[str, int] = defaultdict(int)
        #: inside :meth:`consume_block`: rows are placed when the block ends
        self.in_block = False

    # ----------------------------------------------------------- helpers
    def w(self, kind: str, where: int | str) -> None:
        """Count a warning; ``where`` is a line number (or a ready text)."""
        wn = self.warn.get(kind)
        if wn is None:
            explained, detail = WARNING_KINDS[kind]
            wn = self.warn[kind] = Warn(kind, explained, detail)
        wn.count += 1
        if wn.examples is None:
            wn.examples = []
        if len(wn.examples) < MAX_EXAMPLES:
            wn.examples.append(f"{self.source}:{where}" if isinstance(where, int) else where)

    def cid(self, name: str, bytes_req: int = 0, bytes_alloc: int = 0) -> int:
        c = self.cache_ids.get(name)
        if c is None:
            c = len(self.cache_info)
            self.cache_ids[name] = c
            sysdir = self.alias_to_dir.get(name)
            info: dict[str, Any] = {
                "id": c,
                "name": name,
                "aliases": [],
                "sysfs_dir": sysdir,
                "object_size": bytes_req,
                "size": bytes_alloc,
                "kmalloc": parse_kmalloc_name(name) is not None,
                "config": None,
            }
            if sysdir is not None:
                b = self.bundle_caches[sysdir]
                info["aliases"] = [n for n in b.get("names", []) if n != name]
                info["config"] = b.get("config")
            self.cache_info.append(info)
        else:
            info = self.cache_info[c]
            if bytes_req > info["object_size"]:
                info["object_size"] = bytes_req
            if bytes_alloc and not info["size"]:
                info["size"] = bytes_alloc
        return c

    def row(
        self,
        ts: float,
        cpu: int,
        op: int,
        cache: int,
        ptr: int,
        size: int = 0,
        node: int = -1,
        flags: int = 0,
        aux: int = 0,
    ) -> int:
        if aux >= 1 << 63:  # pointers as signed 64-bit identities
            aux -= 1 << 64
        self.rows.append((ts, cpu, op, cache, ptr, size, node, flags | self.cur_irq, aux))
        if cpu > self.max_cpu:
            self.max_cpu = cpu
        if len(self.rows) >= self.row_chunk and not self.in_block:
            self._pack()
        self.events += 1
        if cache < -1:  # an unnamed 6.x allocation's cache, patched in finish()
            self.pending[-cache - 2]["rows"].append(self.events - 1)
        return self.events - 1

    def _pack(self) -> None:
        if self.rows:
            rec = np.array(self.rows, dtype=ROW_DTYPE)
            self.rows = []
            self._keep(rec)

    def _keep(self, rec: np.ndarray[Any, Any]) -> None:
        """Keep packed rows: in memory, or spilled to ``spill_dir``."""
        if self.spill_dir is None:
            self._packed.append(rec)
        else:
            f = self.spill_dir / f"rows{len(self._spilled):06d}.npy"
            np.save(f, rec)
            self._spilled.append(f)

    def iter_packed(self) -> Iterable[np.ndarray[Any, Any]]:
        """Every row so far, as structured arrays (ROW_DTYPE) in trace order."""
        self._pack()
        for f in self._spilled:
            yield np.load(f)
        yield from self._packed

    def note_page(self, ptr: int, c: int) -> None:
        if c >= 0:
            self.page_cache[ptr >> PAGE_SHIFT] = c

    def slab_base(self, c: int, ptr: int) -> int:
        """The kernel slab of ``ptr`` in cache ``c``: the naturally aligned
        block of ``PAGE_SIZE << order`` bytes holding it (order from the
        bundle's geometry, else 0)."""
        cfg = self.cache_info[c].get("config") or {}
        try:
            order = int(cfg.get("order") or 0)
        except (TypeError, ValueError):
            order = 0
        return ptr & ~((PAGE_SIZE << order) - 1)

    def note_blind(self, cs: str, row: int) -> None:
        """Remember allocation ``row`` at call site ``cs``, made before the
        lab kprobes existed (see :meth:`finish`)."""
        if self.blind_tracked >= BLIND_TRACK_MAX:
            if self.blind_allocs:  # too long a blind phase: no inference
                self.blind_allocs.clear()
                self.header["blind_phase_untracked"] = True
            return
        self.blind_tracked += 1
        self.blind_allocs[cs].append(row)

    def bind_bulk(self, c: int, ptr: int = 0) -> int:
        """Row of the alloc_bulk of cache ``c`` that handed out ``ptr`` (the
        trace names no bulk-allocated pointer), or -1: the latest call with
        objects left whose slab is ``ptr``'s, else the oldest call with
        objects left.

        A call's slab is the one its ``arr`` argument points into: the maple
        tree, the bulk user in the traced kernels, passes the slot array of a
        maple node it has just allocated from the same per-CPU slab or sheaf
        (``mas_alloc_nodes``; on v612-mixed always the slab of the CPU's
        previous allocation).  The unused part of a preallocation is freed at
        once (``mas_destroy``) and matches by slab; what is left are the nodes
        a tree keeps, and a node freed long after (a kfree_rcu completion, on
        any CPU) whose slab matches no call is taken to be one of the oldest
        (decision, measured: binding it to the latest call instead -- on any
        CPU, its objects in that CPU's current cpu slab -- made the 6.12
        model count FREE_FROZEN 1,559 times on v612-mixed kmalloc-256 where
        the kernel had 77; by slab then oldest, 468)."""
        if ptr:
            same = self.bulk_by_slab.get((c, self.slab_base(c, ptr)))
            while same:
                g = same[-1]
                if g[1] > 0:
                    g[1] -= 1
                    return g[0]
                same.pop()
        groups = self.bulk_groups.get(c)
        if not groups:
            return -1
        head = self.bulk_head.get(c, 0)
        while head < len(groups) and groups[head][1] <= 0:
            head += 1
        self.bulk_head[c] = head
        if head == len(groups):
            return -1
        g = groups[head]
        g[1] -= 1
        return g[0]

    # ----------------------------------------------------------- events
    def feed(self, lineno: int, line: str, skip_malformed: bool) -> None:
        """Parse and consume one line (single-process path)."""
        if line.startswith("#"):
            self.header_line(lineno, line)
            self.lines += 1
            return
        try:
            parsed = parse_line(line)
        except (MalformedLine, ValueError) as e:
            self.lines += 1
            self.malformed(lineno, _reason(e), line, skip_malformed)
            return
        self.consume(lineno, parsed, line, skip_malformed)

    def header_line(self, lineno: int, line: str) -> None:
        m = _HEADER_ENTRIES.search(line)
        if m:
            self.header = {
                "entries_in_buffer": int(m.group(1)),
                "entries_written": int(m.group(2)),
                "nr_cpus": int(m.group(3)),
            }
            if int(m.group(1)) < int(m.group(2)):
                self.w("ring_buffer_loss", lineno)

    def malformed(self, lineno: int, reason: str, line: str, skip: bool) -> None:
        if skip:
            self.w("malformed_line", f"{self.source}:{lineno}: {reason}")
            return
        raise IngestError(f"{self.source}:{lineno}: {reason}: {line[:120]!r}")

    def consume(
        self, lineno: int, parsed: RawEvent | None, line: str, skip_malformed: bool
    ) -> None:
        """Consume one parsed line (both the serial and the parallel path)."""
        self.lines += 1
        if parsed is None:
            return
        kind, cpu, ts, ev, task, ptr, name, breq, balloc, gfp, node, cs, extra = parsed
        if ev == "__lost__":
            self.w("ring_buffer_loss", f"{self.source}:{lineno}")
            return
        self.event_counts[ev] += 1
        where = lineno
        if kind != E_FREE_BULK_CONT and kind != E_FREE_BULK and cpu in self.pending_bulk_free:
            self._flush_cpu_pending(cpu, where)
        if kind in _IRQ_KINDS and irq_context(line):
            self.cur_irq = F_IRQ  # (row() marks the line's rows)
        try:
            if kind == E_CACHE_ALLOC:
                self._alloc(cpu, ts, ptr, name, breq, balloc, node, cs, where, task)
            elif kind == E_KMALLOC:
                self._kmalloc(cpu, ts, ptr, breq, balloc, gfp, node, where, task)
            elif kind == E_CACHE_FREE:
                self._cache_free(cpu, ts, ptr, name, where)
            elif kind == E_KFREE:
                self._kfree(cpu, ts, ptr, where)
            else:
                f = extra if isinstance(extra, dict) else {}
                rest = extra if isinstance(extra, str) else ""
                self._dispatch(kind, cpu, ts, ev, f, rest, task, where)
        except (ValueError, KeyError) as e:
            if skip_malformed:
                self.w("malformed_line", f"{self.source}:{where}: {e}")
                return
            raise IngestError(
                f"{self.source}:{where}: bad field value ({e}): {line[:120]!r}"
            ) from None
        finally:
            self.cur_irq = 0

    @staticmethod
    def _bulk_complete(pb: dict[str, Any]) -> bool:
        if pb.get("main") is None:
            return False
        need = min(7, max(0, (pb["size"] - 1) // 64))
        return all(k in pb["parts"] for k in range(1, need + 1))

    def _flush_cpu_pending(self, cpu: int, where: int) -> None:
        pb = self.pending_bulk_free.pop(cpu, None)
        if pb is not None:
            self._emit_bulk_free(pb, where)

    def _dispatch(
        self,
        kind: int,
        cpu: int,
        ts: float,
        ev: str,
        f: dict[str, str],
        rest: str,
        task: str,
        where: int,
    ) -> None:
        if not self.kprobes_seen and kind in _KPROBE_KINDS:
            self.kprobes_seen = True
            # objects live now may have been kfree_rcu'd before the probes existed
            self.pre_kprobe_live = set(self.live)
            self.kprobe_row = self.events
        if kind == E_KFREE_RCU:
            self._kfree_rcu(cpu, ts, f, where)
        elif kind == E_FREE_BULK:
            size = int(f["size"])
            pb = self.pending_bulk_free.get(cpu)
            parts: dict[int, list[int]] = {}
            if pb is not None and pb.get("main") is None and pb["size"] == size:
                parts = pb["parts"]
            elif pb is not None:
                self._flush_cpu_pending(cpu, where)
            self.pending_bulk_free[cpu] = {
                "name": f.get("name", "(fault)"),
                "size": size,
                "main": _parse_objs(f["objs"])[:64],
                "parts": parts,
                "ts": ts,
                "cpu": cpu,
                "where": where,
            }
            if self._bulk_complete(self.pending_bulk_free[cpu]):
                self._flush_cpu_pending(cpu, where)
        elif kind == E_FREE_BULK_CONT:
            size = int(f["size"])
            k = int(ev.rsplit("_", 1)[1])
            pb = self.pending_bulk_free.get(cpu)
            if pb is None or pb["size"] != size:
                if pb is not None:
                    self._flush_cpu_pending(cpu, where)
                pb = self.pending_bulk_free[cpu] = {
                    "name": "(fault)",
                    "size": size,
                    "main": None,
                    "parts": {},
                    "ts": ts,
                    "cpu": cpu,
                    "where": where,
                }
            pb["parts"][k] = _parse_objs(f["objs"])[:64]
            if self._bulk_complete(pb):
                self._flush_cpu_pending(cpu, where)
        elif kind == E_ALLOC_BULK:
            c = self.cid(f.get("name", "?"))
            arr = parse_hex(f["arr"]) if "arr" in f else 0
            self.pending_alloc_bulk[task] = (c, int(f["size"]), where, arr)
        elif kind == E_ALLOC_BULK_RET:
            pab = self.pending_alloc_bulk.pop(task, None)
            if pab is None:
                self.w("orphan_kprobe", where)
                return
            c, size, _, arr = pab
            got = int(f["ret"])
            r = self.row(ts, cpu, OP_ALLOC_BULK, c, 0, got, flags=0 if got else F_FAILED)
            if got:
                g = [r, got]
                self.bulk_groups[c].append(g)
                if arr:
                    self.bulk_by_slab[(c, self.slab_base(c, arr))].append(g)
        elif kind == E_PREFILL:
            c = self.cid(f.get("name", "?"))
            self.pending_prefill[task] = (c, int(f["count"]))
        elif kind == E_PREFILL_RET:
            pp = self.pending_prefill.pop(task, None)
            if pp is None:
                self.w("orphan_kprobe", where)
                return
            c, count = pp
            sh = parse_hex(f["sheaf"])
            self.row(ts, cpu, OP_PREFILL, c, 0, count, aux=sh, flags=0 if sh else F_FAILED)
            if sh:
                self.sheaf_cache[sh] = c
                self.prefill_counts[c][count] += 1
                self.sheaf_allocs[sh] = 0
                self.sheaf_count[sh] = count
        elif kind == E_ALLOC_FROM_SHEAF:
            sh = parse_hex(f["sheaf"])
            sc = self.sheaf_cache.get(sh)
            self.from_sheaf[task] = (sh, sc if sc is not None else self.cid(f.get("name", "?")))
        elif kind == E_RETURN_SHEAF:
            sh = parse_hex(f["sheaf"])
            sc = self.sheaf_cache.pop(sh, None)
            c = sc if sc is not None else self.cid(f.get("name", "?"))
            # size: the sheaf's objects at the return (-1: not recorded)
            self.row(ts, cpu, OP_RETURN_SHEAF, c, 0, int(f.get("size", "-1")), aux=sh)
            used = self.sheaf_allocs.pop(sh, None)
            asked = self.sheaf_count.pop(sh, None)
            if used is not None:
                self.prefill_allocs[c][used] += 1
                if asked is not None:
                    self.prefill_joint[c][used][asked] += 1
        elif kind == E_REFILL:
            c = self.cid(f.get("name", "?"))
            self.row(
                ts,
                cpu,
                OP_REFILL_SHEAF,
                c,
                0,
                int(f.get("size", "0")),
                aux=parse_hex(f.get("sheafp", "0")),
            )
            self.w("refill_sheaf_unsupported", where)
        elif kind == E_RCU_FREE_SHEAF:
            c = self.cid(f.get("name", "?"))
            self.row(
                ts, cpu, OP_RCU_SHEAF, c, 0, int(f.get("size", "0")), aux=parse_hex(f["sheaf"])
            )
        elif kind == E_MARKER:
            text = rest.strip()
            idx = len(self.markers)
            mk: dict[str, Any] = {
                "index": idx,
                "row": self.events,
                "ts": ts,
                "cpu": cpu,
                "text": text,
            }
            m = _LAB_READ.search(text)
            if m:
                mk["read"] = {"when": m.group(1), "cache": m.group(2), "attr": m.group(3)}
            self.markers.append(mk)
            self.row(ts, cpu, OP_MARKER, -1, 0, aux=idx)
        elif kind == E_PAGE:
            self.w("page_events", where)
        elif kind == E_SLAB_FREE_SLOW:
            self.w("slab_free_slow", where)
        elif kind == E_OTHER:
            self.w("unknown_event", f"{self.source}:{where} ({ev})")

    def _alloc_row(
        self,
        cpu: int,
        ts: float,
        c: int,
        ptr: int,
        size: int,
        node: int,
        where: int,
        task: str = "",
    ) -> None:
        op = OP_ALLOC
        aux = 0
        fs = self.from_sheaf.pop(task, None) if task else None
        if fs is not None:
            op = OP_ALLOC_FROM_SHEAF
            aux = fs[0]
        if ptr == 0:
            self.w("failed_alloc", where)
            self.row(ts, cpu, op, c, 0, size, node, F_FAILED, aux)
            return
        old = self.live.get(ptr)
        if old is not None:
            oc = old if old >= 0 else c
            if not self.kprobes_seen:
                # its free (kfree_rcu or a bulk free) is not traced, but the
                # reuse shows it had completed: a plain free on this CPU just
                # before, which leaves the object where this allocation takes
                # it (decision; the free's own path and time are unknown)
                self.w("reuse_before_kprobes", where)
                self.row(ts, cpu, OP_FREE, oc, ptr, flags=F_IMPLICIT)
            elif ptr in self.pre_kprobe_live:
                # freed (untraced) before the probes existed: replay frees it there
                self.pre_kprobe_live.discard(ptr)
                self.w("reuse_before_kprobes", where)
                self.row(ts, cpu, OP_FREE, oc, ptr, flags=F_IMPLICIT | F_EARLY, aux=self.kprobe_row)
            else:
                self.w("ptr_reuse_without_free", where)
                self.row(ts, cpu, OP_FREE, oc, ptr, flags=F_IMPLICIT)
        elif ptr in self.rcu_pending:
            # kfree_rcu'd earlier and reused: the rcu sheaf recycled it
            del self.rcu_pending[ptr]
        self.live[ptr] = c
        r = self.row(ts, cpu, op, c, ptr, size, node, 0, aux)
        if op == OP_ALLOC_FROM_SHEAF:
            if self._cs:
                self.sheaf_call_sites.add(self._cs)
            if aux in self.sheaf_allocs:
                self.sheaf_allocs[aux] += 1
        elif self.track_blind and not self.kprobes_seen and self._cs:
            self.note_blind(self._cs, r)

    def _alloc(
        self,
        cpu: int,
        ts: float,
        ptr: int,
        name: str | None,
        breq: int,
        balloc: int,
        node: int,
        cs: str,
        where: int,
        task: str,
    ) -> None:
        self._cs = cs
        if name is not None:
            c = self.cid(name, breq, balloc)
            self.size_caches[balloc].add(c)
            if cs:
                self.callsite_cache[cs] = c
            self.note_page(ptr, c)
            self._alloc_row(cpu, ts, c, ptr, breq, node, where, task)
            return
        # 6.x: no name -- resolve later
        pid = len(self.pending)
        pc = -(pid + 2)
        self.pending.append(
            {
                "bytes_req": breq,
                "bytes_alloc": balloc,
                "call_site": cs,
                "ptr": ptr,
                "rows": [],
                "cache": None,
                "where": where,
            }
        )
        self._alloc_row(cpu, ts, pc, ptr, breq, node, where, task)

    def _kmalloc(
        self,
        cpu: int,
        ts: float,
        ptr: int,
        breq: int,
        balloc: int,
        gfp_s: str,
        node: int,
        where: int,
        task: str,
    ) -> None:
        self._cs = ""
        if balloc > KMALLOC_MAX_CACHE_SIZE:
            last = self.last_large.get(cpu)
            if last == (ptr, balloc) and ptr in self.large_live:
                self.w("large_kmalloc_duplicate", where)
                return
            self.last_large[cpu] = (ptr, balloc)
            if ptr:
                self.large_live[ptr] = balloc
                self.row(ts, cpu, OP_LARGE_ALLOC, -1, ptr, breq, node, aux=balloc)
            return
        self.last_large.pop(cpu, None)
        c = self.kmalloc_cache(gfp_s, balloc)
        self.note_page(ptr, c)
        self._alloc_row(cpu, ts, c, ptr, breq, node, where)

    def kmalloc_cache(self, gfp_s: str, balloc: int) -> int:
        """Cache id of a ``kmalloc`` of ``balloc`` bytes with these gfp flags."""
        key = (gfp_s, balloc)
        c = self.kmalloc_cid.get(key, -1)
        if c < 0:
            gfp = parse_gfp(gfp_s)
            ktype = KMALLOC_RECLAIM if gfp & GFP_RECLAIMABLE else KMALLOC_NORMAL
            try:
                cls = kmalloc_index_size(balloc)
            except ValueError:
                cls = balloc
            c = self.kmalloc_cid[key] = self.cid(kmalloc_cache_name(ktype, cls), cls, cls)
        return c

    def _free_unknown(
        self, cpu: int, ts: float, c: int, ptr: int, op: int, where: int, aux: int = 0
    ) -> None:
        """Free of a pointer with no live allocation, in a known cache."""
        b = self.bind_bulk(c, ptr)
        if b >= 0:
            # the alloc_bulk row it binds to goes in ``size``
            self.w("bulk_bound_free", where)
            self.row(ts, cpu, op, c, ptr, size=b, flags=F_BULK_BOUND, aux=aux)
        else:
            self.w("pretrace_free", where)
            self.row(ts, cpu, op, c, ptr, flags=F_PRETRACE, aux=aux)

    def _cache_free(self, cpu: int, ts: float, ptr: int, name: str | None, where: int) -> None:
        if ptr <= ZERO_SIZE_PTR:
            self.w("null_free", where)
            return
        c = self.cid(name) if name else -1
        old = self.live.pop(ptr, None)
        if old is not None and self.pre_kprobe_live:
            self.pre_kprobe_live.discard(ptr)
        if old is not None:
            if old < -1:  # unnamed 6.x allocation: the free names it
                p = self.pending[-old - 2]
                if p["cache"] is None and c >= 0:
                    p["cache"] = c
                    self.size_caches[p["bytes_alloc"]].add(c)
                    if p["call_site"]:
                        self.callsite_cache.setdefault(p["call_site"], c)
                    self.note_page(ptr, c)
                rowc = old if c < 0 else c
            else:
                if c >= 0 and old != c:
                    self.w("cache_name_mismatch", where)
                rowc = old
            self.row(ts, cpu, OP_FREE, rowc, ptr)
            return
        if c < 0:
            self.w("unresolved_kfree", where)
            return
        self.note_page(ptr, c)
        self._free_unknown(cpu, ts, c, ptr, OP_FREE, where)

    def _resolve_free_ptr(self, ptr: int) -> tuple[str, int]:
        """('live'|'large'|'rcu'|'page'|'none', cache) for a freed pointer."""
        c = self.live.pop(ptr, None)
        if c is not None:
            if self.pre_kprobe_live:
                self.pre_kprobe_live.discard(ptr)
            return "live", c
        if ptr in self.large_live:
            del self.large_live[ptr]
            return "large", -1
        rc = self.rcu_pending.pop(ptr, None)
        if rc is not None:
            return "rcu", rc
        pc = self.page_cache.get(ptr >> PAGE_SHIFT)
        if pc is not None:
            return "page", pc
        return "none", -1

    def _kfree(self, cpu: int, ts: float, ptr: int, where: int) -> None:
        if ptr <= ZERO_SIZE_PTR:
            self.w("null_free", where)
            return
        how, c = self._resolve_free_ptr(ptr)
        if how == "live":
            self.row(ts, cpu, OP_FREE, c, ptr)
        elif how == "large":
            self.row(ts, cpu, OP_LARGE_FREE, -1, ptr)
        elif how == "rcu":
            self.w("rcu_completion", where)
            self.row(ts, cpu, OP_FREE, c, ptr, flags=F_RCU_COMPLETION)
        elif how == "page":
            self._free_unknown(cpu, ts, c, ptr, OP_FREE, where)
        else:
            self.w("unresolved_kfree", where)

    def _kfree_rcu(self, cpu: int, ts: float, f: dict[str, str], where: int) -> None:
        ptr = parse_hex(f["ptr"])
        if ptr <= ZERO_SIZE_PTR:
            self.w("null_free", where)
            return
        c = self.live.pop(ptr, None)
        if c is not None:
            self.row(ts, cpu, OP_KFREE_RCU, c, ptr)
            self.rcu_pending[ptr] = c
            return
        if ptr in self.large_live:
            del self.large_live[ptr]
            self.row(ts, cpu, OP_LARGE_FREE, -1, ptr)
            return
        pc = self.page_cache.get(ptr >> PAGE_SHIFT)
        if pc is None:
            self.w("unresolved_kfree", where)
            return
        b = self.bind_bulk(pc, ptr)
        if b >= 0:
            self.w("bulk_bound_free", where)
            self.row(ts, cpu, OP_KFREE_RCU, pc, ptr, size=b, flags=F_BULK_BOUND)
        else:
            self.w("pretrace_free", where)
            self.row(ts, cpu, OP_KFREE_RCU, pc, ptr, flags=F_PRETRACE)
        self.rcu_pending[ptr] = pc

    def _emit_bulk_free(self, pb: dict[str, Any], where: int) -> None:
        if pb.get("main") is None:
            self.w("orphan_kprobe", pb["where"])
            return
        objs: list[int] = list(pb["main"])
        for k in sorted(pb["parts"]):
            objs.extend(pb["parts"][k])
        objs = objs[: pb["size"]]
        if len(objs) < pb["size"]:
            self.w("incomplete_bulk", pb["where"])
        self.group += 1
        gid = self.group
        ts, cpu = pb["ts"], pb["cpu"]
        name = pb["name"]
        if name != "(fault)":
            c = self.cid(name)
            for ptr in objs:
                old = self.live.pop(ptr, None)
                if old is not None:
                    self.row(ts, cpu, OP_FREE_BULK, old, ptr, aux=gid)
                elif ptr in self.rcu_pending:
                    self.w("rcu_completion", pb["where"])
                    self.row(
                        ts,
                        cpu,
                        OP_FREE_BULK,
                        self.rcu_pending.pop(ptr),
                        ptr,
                        flags=F_RCU_COMPLETION,
                        aux=gid,
                    )
                else:
                    self._free_unknown(cpu, ts, c, ptr, OP_FREE_BULK, pb["where"], aux=gid)
            return
        for ptr in objs:  # kfree_bulk(): cache per object
            how, c = self._resolve_free_ptr(ptr)
            if how == "live":
                self.row(ts, cpu, OP_KFREE_BULK, c, ptr, aux=gid)
            elif how == "large":
                self.row(ts, cpu, OP_LARGE_FREE, -1, ptr)
            elif how == "rcu":
                self.w("rcu_completion", pb["where"])
                self.row(ts, cpu, OP_KFREE_BULK, c, ptr, flags=F_RCU_COMPLETION, aux=gid)
            elif how == "page":
                self._free_unknown(cpu, ts, c, ptr, OP_KFREE_BULK, pb["where"], aux=gid)
            else:
                self.w("unresolved_kfree", pb["where"])

    # ----------------------------------------------------------- finish
    # ------------------------------------------------------------ blocks
    def consume_block(self, blk: Block, path: Path, skip_malformed: bool) -> None:
        """Consume a block parsed by :func:`~slubsim.trace.fastparse.parse_block`.

        Lines the vectorised parse read, in the common state, are handled
        here with the same effect as :meth:`consume` -- an allocation from a
        named cache, kmalloc or (6.x) an unnamed one that is not a pointer
        reuse (a kfree_rcu'd pointer coming back is fine), a free of a live
        object of the cache it names, a kfree_rcu of a live object once the
        kprobes are known -- and everything else (lines the fast parse left,
        and fast lines in an unusual state: pending bulk frees, prefilled
        sheaves, reused, unknown or NULL pointers, name mismatches)
        goes through :meth:`feed` in order.  Writes only read at the end of
        the trace or by slow lines (call-site map, event counts) are
        deferred and flushed before every slow line; the rows of the block
        are placed at its end, in line order."""
        if self._consume_columns(blk):
            return
        self._pack()
        n = blk.n
        fast_l: list[bool] = blk.fast.tolist()
        kind_l: list[int] = blk.kind.tolist()
        cpu_l: list[int] = blk.cpu.tolist()
        ptr_l: list[int] = blk.ptr.tolist()
        name_l: list[int] = blk.name.tolist()
        breq_l: list[int] = blk.bytes_req.tolist()
        balloc_l: list[int] = blk.bytes_alloc.tolist()
        gfp_l: list[int] = blk.gfp.tolist()
        cs_l: list[int] = blk.call_site.tolist()
        names = blk.names
        gfps = blk.gfps
        css = blk.call_sites
        name_cid = [-1] * len(names)
        name_req = [-1] * len(names)  # object_size known to the cache's info
        name_ball = [-1] * len(names)  # bytes_alloc last added to size_caches
        kmc: dict[int, int] = {}
        cs_last = [-1] * len(css)  # deferred callsite_cache writes (last wins)
        cs_touched: list[int] = []
        live = self.live
        page_cache = self.page_cache
        rc = [0] * n
        slow_at: list[int] = []
        slow_cnt: list[int] = []
        counts = [0] * 32
        base_events = self.events
        pos = 0
        self.in_block = True
        blind = self.track_blind and not self.kprobes_seen
        for i in range(n):
            if fast_l[i]:
                k = kind_l[i]
                ptr = ptr_l[i]
                c = -1
                ok = False
                if not self.pending_bulk_free or cpu_l[i] not in self.pending_bulk_free:
                    if k in (E_CACHE_ALLOC, E_KMALLOC):
                        if ptr != 0 and ptr not in live:
                            balloc = balloc_l[i]
                            if k == E_CACHE_ALLOC and name_l[i] < 0 and not self.from_sheaf:
                                # 6.x: no name -- resolved in finish() (see _alloc)
                                c = -(len(self.pending) + 2)
                                self.pending.append(
                                    {
                                        "bytes_req": breq_l[i],
                                        "bytes_alloc": balloc,
                                        "call_site": css[cs_l[i]],
                                        "ptr": ptr,
                                        "rows": [base_events + pos],
                                        "cache": None,
                                        "where": blk.first + i,
                                    }
                                )
                                if self.rcu_pending:
                                    self.rcu_pending.pop(ptr, None)  # see below
                                live[ptr] = c
                                if blind:
                                    self.note_blind(css[cs_l[i]], base_events + pos)
                                rc[i] = c
                                counts[k] += 1
                                pos += 1
                                continue
                            if k == E_CACHE_ALLOC:
                                code = name_l[i]
                                if code >= 0 and not self.from_sheaf:
                                    breq = breq_l[i]
                                    c = name_cid[code]
                                    if c < 0 or breq > name_req[code]:
                                        c = name_cid[code] = self.cid(names[code], breq, balloc)
                                        info = self.cache_info[c]
                                        # bytes_alloc still unknown: cid() each time until set
                                        name_req[code] = info["object_size"] if info["size"] else -1
                                    if name_ball[code] != balloc:
                                        self.size_caches[balloc].add(c)
                                        name_ball[code] = balloc
                                    cc = cs_l[i]
                                    if cs_last[cc] < 0:
                                        cs_touched.append(cc)
                                    cs_last[cc] = c
                                    if blind:
                                        self.note_blind(css[cc], base_events + pos)
                                    ok = True
                            elif balloc <= KMALLOC_MAX_CACHE_SIZE:
                                if self.last_large:
                                    self.last_large.pop(cpu_l[i], None)
                                key = (gfp_l[i] << 32) | balloc
                                c = kmc.get(key, -1)
                                if c < 0:
                                    c = kmc[key] = self.kmalloc_cache(gfps[gfp_l[i]], balloc)
                                ok = True
                            if ok:
                                if self.rcu_pending:
                                    # kfree_rcu'd and reused: the rcu sheaf recycled it
                                    self.rcu_pending.pop(ptr, None)
                                page_cache[ptr >> PAGE_SHIFT] = c
                                live[ptr] = c
                    elif k == E_KFREE_RCU:
                        # consume() + _dispatch() + _kfree_rcu() of a live object
                        if self.kprobes_seen and ptr > ZERO_SIZE_PTR:
                            c = live.get(ptr, -1)
                            if c >= 0:
                                del live[ptr]
                                self.rcu_pending[ptr] = c
                                ok = True
                    elif ptr > ZERO_SIZE_PTR:
                        old = live.get(ptr, -1)
                        if old < -1 and (k == E_KFREE or name_l[i] >= 0):
                            # a free of an unnamed 6.x allocation (see _cache_free, _kfree)
                            del live[ptr]
                            if self.pre_kprobe_live:
                                self.pre_kprobe_live.discard(ptr)
                            pend = self.pending[-old - 2]
                            if k == E_KFREE:
                                c = old
                                pend["rows"].append(base_events + pos)
                            else:
                                named = name_cid[name_l[i]]
                                if named < 0:
                                    named = name_cid[name_l[i]] = self.cid(names[name_l[i]])
                                c = named
                                if pend["cache"] is None:
                                    # setdefault below reads the map
                                    self._flush_call_sites(css, cs_last, cs_touched)
                                    pend["cache"] = c
                                    self.size_caches[pend["bytes_alloc"]].add(c)
                                    if pend["call_site"]:
                                        self.callsite_cache.setdefault(pend["call_site"], c)
                                    page_cache[ptr >> PAGE_SHIFT] = c
                            rc[i] = c
                            counts[k] += 1
                            pos += 1
                            continue
                        if old >= 0:
                            if k == E_CACHE_FREE:
                                code = name_l[i]
                                if code >= 0:
                                    named = name_cid[code]
                                    if named < 0:
                                        named = name_cid[code] = self.cid(names[code])
                                    ok = named == old
                                else:
                                    ok = True
                            else:
                                ok = True
                            if ok:
                                del live[ptr]
                                if self.pre_kprobe_live:
                                    self.pre_kprobe_live.discard(ptr)
                                c = old
                if ok:
                    rc[i] = c
                    counts[k] += 1
                    pos += 1
                    continue
                fast_l[i] = False  # an unusual state: the general path decides
            # a slow line: deferred writes first, then the general path
            self._flush_call_sites(css, cs_last, cs_touched)
            self.events = base_events + pos
            before = len(self.rows)
            lineno = blk.first + i
            self.feed(lineno, decode_line(path, lineno, blk.line(i)), skip_malformed)
            made = len(self.rows) - before
            if made:
                slow_at.append(i)
                slow_cnt.append(made)
                pos += made
            blind = self.track_blind and not self.kprobes_seen
        self._flush_call_sites(css, cs_last, cs_touched)
        self.in_block = False
        self.events = base_events + pos
        nfast = 0
        for k in range(len(counts)):
            if counts[k]:
                self.event_counts[EVENT_NAMES[k]] += counts[k]
                nfast += counts[k]
        self.lines += nfast
        self._place_block_rows(blk, fast_l, rc, slow_at, slow_cnt, pos)

    def _consume_columns(self, blk: Block) -> bool:
        """Resolve a block of plain kmem events over its columns, or return
        False (nothing changed) when it is not one.

        Applies when every line is a fast named/kmalloc allocation or a
        free, no kprobe pairing or bulk free is pending, and within the
        block every allocation finds its pointer free and every free finds
        it live in the cache the free names (in the block or, for a
        pointer's first event, in ``self.live``).  Then the effect of the
        line loop is computed per pointer instead of per line: pointers are
        grouped by a stable sort, a line's state is its predecessor's in the
        group, and the maps (live objects, pages, call sites, sizes) get
        the same final values the line loop would leave."""
        n = blk.n
        kind = blk.kind
        if (
            n == 0
            or not bool(blk.fast.all())
            or self.pending_bulk_free
            or self.from_sheaf
            or self.last_large
            or self.pre_kprobe_live
        ):
            return False
        alloc = (kind == E_CACHE_ALLOC) | (kind == E_KMALLOC)
        free = (kind == E_CACHE_FREE) | (kind == E_KFREE)
        ptr = blk.ptr
        if not bool(
            (alloc | free).all()
            and (blk.name[kind == E_CACHE_ALLOC] >= 0).all()
            and (blk.bytes_alloc[kind == E_KMALLOC] <= KMALLOC_MAX_CACHE_SIZE).all()
            and (ptr[alloc] != 0).all()
            and (ptr[free] > ZERO_SIZE_PTR).all()
        ):
            return False
        # predecessor of each line among the lines of the same pointer
        order = np.argsort(ptr, kind="stable")
        ps = ptr[order]
        first_in_group = np.ones(n, dtype=bool)
        first_in_group[1:] = ps[1:] != ps[:-1]
        prev = np.full(n, -1, dtype=np.int64)
        prev[order[1:][~first_in_group[1:]]] = order[:-1][~first_in_group[1:]]
        firsts = order[first_in_group]
        first_ptrs: list[int] = ptr[firsts].tolist()
        live = self.live
        before = np.array([live.get(p, -1) for p in first_ptrs], dtype=np.int64)
        if bool((before < -1).any()):
            return False  # an unnamed 6.x allocation is live: the loop's business
        has_prev = prev >= 0
        live_before = np.zeros(n, dtype=bool)
        live_before[has_prev] = alloc[prev[has_prev]]
        live_before[firsts] = before >= 0
        if bool((alloc & live_before).any() or (free & ~live_before).any()):
            return False
        rcu_hits: list[int] = []
        if self.rcu_pending:
            rcu = self.rcu_pending
            rcu_hits = [p for p in ptr[firsts[alloc[firsts]]].tolist() if p in rcu]
        # cache ids, created in the order the line loop would create them
        names = blk.names
        gfps = blk.gfps
        name = blk.name
        is_named_alloc = kind == E_CACHE_ALLOC
        is_km = kind == E_KMALLOC
        km_key = blk.gfp.astype(np.int64) * (1 << 32) + blk.bytes_alloc
        # name codes >= 0, kmalloc keys <= -2, -1: a free without a name
        key = np.where(is_km, -2 - km_key, name.astype(np.int64))
        ukeys, ufirst = np.unique(key, return_index=True)
        code_cid: dict[int, int] = {}
        for j in np.argsort(ufirst, kind="stable").tolist():
            kk = int(ukeys[j])
            i = int(ufirst[j])
            if kk >= 0:
                nm = names[kk]
                if is_named_alloc[i]:
                    code_cid[kk] = self.cid(nm, int(blk.bytes_req[i]), int(blk.bytes_alloc[i]))
                else:
                    code_cid[kk] = self.cid(nm)
            elif kk < -1:
                km = -2 - kk
                code_cid[kk] = self.kmalloc_cache(gfps[km >> 32], km & 0xFFFFFFFF)
        kcid = np.array([code_cid.get(int(k), -1) for k in ukeys.tolist()], dtype=np.int64)
        line_cid = kcid[np.searchsorted(ukeys, key)]
        # a free's row cache is the cache of the allocation it ends
        rc = np.where(alloc, line_cid, -1)
        rc[firsts[~alloc[firsts]]] = before[~alloc[firsts]]
        fp = np.flatnonzero(free & has_prev)
        rc[fp] = rc[prev[fp]]  # predecessors are allocations (checked above)
        named_free = (kind == E_CACHE_FREE) & (name >= 0)
        if bool((rc[named_free] != line_cid[named_free]).any()):
            return False  # a name mismatch: warned about by the line loop
        # --- from here on, state changes (the block is resolved) ---
        for p in rcu_hits:
            del self.rcu_pending[p]
        na = np.flatnonzero(is_named_alloc)
        for kk in np.unique(name[na]).tolist():
            rows = na[name[na] == kk]
            ba = blk.bytes_alloc[rows]
            nz = ba[ba != 0]
            self.cid(names[kk], int(blk.bytes_req[rows].max()), int(nz[0]) if len(nz) else 0)
        if len(na):
            # (bytes_alloc, cache) pairs as one key (cache ids < 2**24)
            for key_ in np.unique(blk.bytes_alloc[na].astype(np.int64) << 24 | rc[na]).tolist():
                self.size_caches[key_ >> 24].add(key_ & 0xFFFFFF)
            css = blk.call_sites
            for code, c in zip(*_last_wins(blk.call_site[na], rc[na]), strict=True):
                self.callsite_cache[css[code]] = c
        ai = np.flatnonzero(alloc)
        pages = (ptr[ai] >> np.uint64(PAGE_SHIFT)).astype(np.int64)
        for page, c in zip(*_last_wins(pages, rc[ai]), strict=True):
            self.page_cache[page] = c
        # live objects: the last event of each pointer decides
        last = order[np.append(first_in_group[1:], True)]
        for p in first_ptrs:
            live.pop(p, None)
        fin = last[alloc[last]]
        fin = fin[np.argsort(fin, kind="stable")]
        for p, c in zip(ptr[fin].tolist(), rc[fin].tolist(), strict=True):
            live[p] = c
        # rows, counts
        rec = np.zeros(n, dtype=ROW_DTYPE)
        rec["ts"] = blk.ts
        rec["cpu"] = blk.cpu
        rec["op"] = np.where(alloc, OP_ALLOC, OP_FREE)
        rec["cache"] = rc
        rec["ptr"] = ptr
        rec["size"] = np.where(alloc, blk.bytes_req, 0)
        rec["node"] = np.where(alloc, blk.node, -1)
        rec["flags"] = np.where(blk.irq, F_IRQ, 0)
        self._pack()
        self._keep(rec)
        self.max_cpu = max(self.max_cpu, int(blk.cpu.max()))
        self.events += n
        self.lines += n
        for k_, cnt in zip(*np.unique(kind, return_counts=True), strict=True):
            self.event_counts[EVENT_NAMES[int(k_)]] += int(cnt)
        return True

    def _flush_call_sites(self, css: list[str], cs_last: list[int], touched: list[int]) -> None:
        """Write the deferred ``callsite_cache`` entries of a block (the last
        allocation of each call site wins) and clear them."""
        for cc in touched:
            self.callsite_cache[css[cc]] = cs_last[cc]
            cs_last[cc] = -1
        touched.clear()

    def _place_block_rows(
        self,
        blk: Block,
        fast_l: list[bool],
        rc: list[int],
        slow_at: list[int],
        slow_cnt: list[int],
        total: int,
    ) -> None:
        """The rows of a block in line order: the fast lines' rows from the
        parsed columns, the general path's from ``self.rows``."""
        fast = np.array(fast_l, dtype=bool)
        per_line = fast.astype(np.int64)
        at = np.array(slow_at, dtype=np.int64)
        cnt = np.array(slow_cnt, dtype=np.int64)
        per_line[at] += cnt
        start = np.cumsum(per_line) - per_line
        rec = np.zeros(total, dtype=ROW_DTYPE)
        fi = np.flatnonzero(fast)
        if len(fi):
            fp = start[fi]
            kind = blk.kind[fi]
            alloc = (kind == E_CACHE_ALLOC) | (kind == E_KMALLOC)
            rec["ts"][fp] = blk.ts[fi]
            rec["cpu"][fp] = blk.cpu[fi]
            op = np.where(kind == E_KFREE_RCU, OP_KFREE_RCU, OP_FREE)
            rec["op"][fp] = np.where(alloc, OP_ALLOC, op)
            rec["cache"][fp] = np.array(rc, dtype=np.int64)[fi]
            rec["ptr"][fp] = blk.ptr[fi]
            rec["size"][fp] = np.where(alloc, blk.bytes_req[fi], 0)
            rec["node"][fp] = np.where(alloc, blk.node[fi], -1)
            rec["flags"][fp] = np.where(blk.irq[fi] & (kind != E_KFREE_RCU), F_IRQ, 0)
            self.max_cpu = max(self.max_cpu, int(blk.cpu[fi].max()))
        if self.rows:
            sp = np.repeat(start[at] - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
            rec[sp] = np.array(self.rows, dtype=ROW_DTYPE)
            self.rows = []
        if total:
            self._keep(rec)

    def finish(self) -> None:
        for cpu in list(self.pending_bulk_free):
            self._flush_cpu_pending(cpu, self.lines)
        for pab in self.pending_alloc_bulk.values():
            self.w("orphan_kprobe", pab[2])
        self._resolve_pending()
        self._infer_prefilled()

    def _infer_prefilled(self) -> None:
        """Flag the allocations made before the lab kprobes existed at call
        sites that, once they did, allocated from prefilled sheaves
        (``F_PREFILLED``; decision: a call instruction always calls the same
        API, kmem_cache_alloc_from_sheaf or not -- on boot-mixed-4cpu all 518
        of maple_node's ``dst_setup`` allocations before the probes, 9,602 of
        9,602 after them from a prefilled sheaf)."""
        n = 0
        for cs, rows in self.blind_allocs.items():
            if cs in self.sheaf_call_sites:
                for r in rows:
                    self.flag_patch[r] = self.flag_patch.get(r, 0) | F_PREFILLED
                n += len(rows)
        if n:
            self.header["allocations_from_inferred_prefilled_sheaves"] = n
        self.blind_allocs.clear()

    def prefill_sessions(self) -> dict[str, dict[str, Any]]:
        """Per cache id (as text): the most common prefill count and number of
        allocations per prefilled sheaf the probes showed, and the most common
        count of the sessions with each number of allocations (``by_allocs``:
        allocations as text -> count) -- the shape of the sessions replay
        infers for ``F_PREFILLED`` allocations."""
        out: dict[str, dict[str, Any]] = {}
        for c, counts in self.prefill_counts.items():
            allocs = self.prefill_allocs.get(c)
            if counts and allocs:
                joint = self.prefill_joint.get(c, {})
                out[str(c)] = {
                    "count": max(counts, key=lambda k: (counts[k], k)),
                    "allocs": max(allocs, key=lambda k: (allocs[k], k)),
                    "by_allocs": {
                        str(n): max(byc, key=lambda k: (byc[k], k))
                        for n, byc in sorted(joint.items())
                        if byc
                    },
                }
        return out

    def _slab_internal(self, call_site: str) -> int | None:
        """Boot-time allocations of the slab allocator's own structures:
        ``struct kmem_cache`` (from cache creation) and ``kmem_cache_node``."""
        fn = call_site.split("+", 1)[0]
        if fn in (
            "__kmem_cache_create_args",
            "create_cache",
            "__kmem_cache_create",
            "kmem_cache_create_usercopy",
        ):
            return self.cid("kmem_cache")
        # init_kmem_cache_nodes() is inlined into do_kmem_cache_create()
        if fn in (
            "do_kmem_cache_create",
            "init_kmem_cache_nodes",
            "alloc_kmem_cache_node",
            "slab_mem_going_online",
        ):
            return self.cid("kmem_cache_node")
        return None

    def _resolve_pending(self) -> None:
        """Second look at 6.x unnamed allocations (spec §10.4 rule 1)."""
        if not self.pending:
            return
        # page map over the whole trace from named objects
        page_map: dict[tuple[int, int], int] = {}
        sizes = np.array([int(ci["size"] or 0) for ci in self.cache_info] or [0], dtype=np.int64)
        for rec in self.iter_packed():
            named = (rec["cache"] >= 0) & (rec["ptr"] != 0)
            rc = rec["cache"][named]
            pages = rec["ptr"][named] >> np.uint64(PAGE_SHIFT)
            # pages are reused by other caches over time: key by slab size too;
            # the first named object seen on a (page, size) decides
            keys = np.stack((pages.astype(np.int64), sizes[rc]), axis=1)
            if len(keys):
                _, first = np.unique(keys, axis=0, return_index=True)
                for j in sorted(first.tolist()):
                    page_map.setdefault((int(keys[j, 0]), int(keys[j, 1])), int(rc[j]))
        bundle_sizes: dict[int, set[str]] = defaultdict(set)
        for d, info in self.bundle_caches.items():
            cfg = info.get("config", {})
            try:
                bundle_sizes[int(cfg.get("slab_size", 0))].add(d)
            except (TypeError, ValueError):
                continue
        methods: dict[str, int] = defaultdict(int)
        for p in self.pending:
            c: int | None = p["cache"]
            how = "ptr_free"
            if c is None:
                how = "page"
                c = page_map.get((p["ptr"] >> PAGE_SHIFT, p["bytes_alloc"]))
            if c is None:
                how = "call_site"
                c = self._slab_internal(p["call_site"])
            if c is None:
                how = "size"
                cands = self.size_caches.get(p["bytes_alloc"], set())
                if len(cands) == 1:
                    c = next(iter(cands))
                elif not cands and len(bundle_sizes.get(p["bytes_alloc"], ())) == 1:
                    d = next(iter(bundle_sizes[p["bytes_alloc"]]))
                    names = self.bundle_caches[d].get("names", [d])
                    c = self.cid(names[0], p["bytes_req"], p["bytes_alloc"])
            if c is None:
                how = "call_site"
                c = self.callsite_cache.get(p["call_site"])
            if c is None:
                self.w("unresolved_alloc", p["where"])
                c = self.cid(f"?size-{p['bytes_alloc']}", p["bytes_req"], p["bytes_alloc"])
                how = "unresolved"
            else:
                self.w("unnamed_alloc_resolved", p["where"])
            methods[how] += 1
            for r in p["rows"]:
                self.cache_patch[r] = c
        self.header["kmem_cache_alloc_attribution"] = dict(methods)

    def _meta(self, extra_meta: dict[str, Any]) -> dict[str, Any]:
        meta = {
            "source": self.source,
            "lines": self.lines,
            "events": self.events,
            "event_counts": dict(self.event_counts),
            "header": self.header,
            "caches": self.cache_info,
            "warnings": [w.as_dict() for w in self.warn.values()],
            "markers": self.markers,
        }
        if self.kprobes_seen:
            meta["kprobe_row"] = self.kprobe_row
        sessions = self.prefill_sessions()
        if sessions:
            meta["prefill_sessions"] = sessions
        meta.update(extra_meta)
        return meta

    def write_store(self, extra_meta: dict[str, Any], out: Path) -> None:
        """Write the store chunk by chunk (same columns as :meth:`to_store`):
        cache back-patches applied per chunk, dense object ids assigned in
        first-seen order across chunks."""
        patch_rows = np.array(sorted(self.cache_patch), dtype=np.int64)
        patch_vals = np.array([self.cache_patch[int(r)] for r in patch_rows], dtype=np.int32)
        flag_rows = np.array(sorted(self.flag_patch), dtype=np.int64)
        flag_vals = np.array([self.flag_patch[int(r)] for r in flag_rows], dtype=np.uint8)
        ids: dict[int, int] = {}
        base = 0
        with StoreWriter(out, self._meta(extra_meta)) as w:
            for rec in self.iter_packed():
                n = len(rec)
                cache = rec["cache"].copy()
                lo, hi = np.searchsorted(patch_rows, (base, base + n))
                cache[patch_rows[lo:hi] - base] = patch_vals[lo:hi]
                flags = rec["flags"]
                lo, hi = np.searchsorted(flag_rows, (base, base + n))
                if hi > lo:
                    flags = flags.copy()
                    flags[flag_rows[lo:hi] - base] |= flag_vals[lo:hi]
                ptr = rec["ptr"]
                inv, uniq = _first_seen_codes(ptr)
                uid = np.array([ids.setdefault(u, len(ids)) for u in uniq.tolist()], dtype=np.int64)
                w.write(
                    {
                        "ts": rec["ts"],
                        "cpu": rec["cpu"],
                        "op": rec["op"],
                        "cache": cache,
                        "obj": uid[inv].astype(np.int32),
                        "ptr": ptr,
                        "size": rec["size"],
                        "node": rec["node"],
                        "flags": flags,
                        "aux": rec["aux"],
                    }
                )
                base += n
        self.rows = []
        self._packed = []

    def to_store(self, extra_meta: dict[str, Any]) -> EventStore:
        parts = list(self.iter_packed())
        cols: dict[str, Any] = {}
        for f in ("ts", "cpu", "op", "cache", "ptr", "size", "node", "flags", "aux"):
            # one copy per column, straight from the packed chunks
            cols[f] = np.concatenate([p[f] for p in parts]) if parts else np.zeros(0, ROW_DTYPE[f])
        cache = cols["cache"]
        for r, c in self.cache_patch.items():
            cache[r] = c
        flags = cols["flags"]
        for r, fb in self.flag_patch.items():
            flags[r] |= fb
        codes, _ = _first_seen_codes(cols["ptr"])
        cols["obj"] = codes.astype(np.int32)  # dense object ids in first-seen order
        meta = self._meta(extra_meta)
        self.rows = []
        self._packed = []
        return EventStore(cols, meta)


CHUNK_LINES = 20000
#: allocations before the first lab kprobe event remembered for inference
BLIND_TRACK_MAX = 1 << 20
#: decompressed bytes per block of the block pipeline (~25k ftrace lines)
BLOCK_BYTES = 1 << 22
#: inputs from this (estimated uncompressed) size parse in worker processes
PARALLEL_PARSE_BYTES = 8 << 20
#: rows packed into a structured array at a time
ROW_CHUNK = 1 << 16
ROW_DTYPE = np.dtype(
    [
        ("ts", "f8"),
        ("cpu", "i2"),
        ("op", "i1"),
        ("cache", "i4"),
        ("ptr", "u8"),
        ("size", "i4"),
        ("node", "i1"),
        ("flags", "u1"),
        ("aux", "i8"),
    ]
)


def _first_seen_codes(values: Any) -> tuple[Any, Any]:
    """``(codes, uniques)``: each value's index among the distinct values in
    order of first appearance (pyarrow's hash-based ``dictionary_encode``,
    O(n); sorting 10^7 pointers with ``np.unique`` took ten times longer)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), values[:0]
    enc = pc.dictionary_encode(pa.array(values))
    codes = enc.indices.to_numpy(zero_copy_only=False)
    return codes, enc.dictionary.to_numpy(zero_copy_only=False)


def _reason(e: Exception) -> str:
    return str(e) if isinstance(e, MalformedLine) else f"bad field value ({e})"


def _default_workers(p: Path) -> int:
    """The block pipeline by default (1; it starts its own parser processes
    for large inputs, see :func:`_parse_procs`).  ``workers >= 2`` selects
    the older line pipeline -- ``parse_line`` in that many processes, the
    line-by-line consume here -- kept as the reference the block pipeline
    is tested against (it was measured slower than serial line parsing:
    shipping parsed events costs more than parsing them)."""
    del p
    return 1


def _parse_procs(p: Path, size: int) -> int:
    """Worker processes for parsing: none for small inputs (process start-up
    costs more than it saves; compressed files count ~20x their size), else
    two (this machine class has two cores; resolution and the parsers share
    them)."""
    from .io import detect_compression

    if detect_compression(p) != "plain":
        size *= 20  # kmem ftrace text compresses ~20-30x under xz/zstd
    if size < PARALLEL_PARSE_BYTES:
        return 0
    return max(1, min(2, os.cpu_count() or 1))


def _parse_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, Any, str]]:
    """Worker: parse lines; errors and headers are passed back as markers."""
    out: list[tuple[int, Any, str]] = []
    for lineno, line in chunk:
        if line.startswith("#"):
            out.append((lineno, "#", line))
            continue
        try:
            # the text goes back only where consume() reads it: irq context
            out.append((lineno, parse_line(line), line if irq_context(line) else ""))
        except (MalformedLine, ValueError) as e:
            out.append((lineno, ("!", _reason(e)), line))
    return out


def _chunks(lines: Iterable[tuple[int, str]], n: int) -> Iterable[list[tuple[int, str]]]:
    buf: list[tuple[int, str]] = []
    for item in lines:
        buf.append(item)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _last_wins(keys: Any, vals: Any) -> tuple[list[int], list[int]]:
    """For the pairs ``(keys[i], vals[i])`` in order: each distinct key, in
    order of first appearance, with the value of its last pair -- what a
    dict assigned pair by pair ends up holding."""
    u, first = np.unique(keys, return_index=True)
    last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]
    order = np.argsort(first, kind="stable")
    return u[order].tolist(), np.asarray(vals)[last[order]].tolist()


def _parse_detached(first: int, data: bytes) -> Block:
    """Worker process: :func:`parse_block` without shipping the text back
    (the consumer still holds it)."""
    blk = parse_block(first, data)
    blk.data = b""
    return blk


def _ingest_blocks(
    ing: Ingester,
    p: Path,
    skip_malformed: bool,
    progress: Callable[[int, int], None] | None,
    total: int,
    procs: int,
) -> None:
    """Decompression in a reader thread, parsing of the next blocks ahead
    and the sequential resolution here.  With the compiled scanner
    (:data:`fastparse.SCANNER`) parsing runs in one helper thread: the scan
    releases the GIL, and its Python glue is small.  Without it (numpy)
    parsing runs in ``procs`` worker processes (0: in this process, for small
    inputs): the resolution loop holds the GIL, and numpy's Python glue
    between its GIL-free kernels would wait for it."""
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

    def consume(blk: Block) -> None:
        ing.consume_block(blk, p, skip_malformed)
        if progress is not None:
            progress(ing.lines, total)

    scanner = fastparse.SCANNER
    if scanner is not None:
        # reading here, scanning in a helper thread (one GIL hand-over a
        # block: reading there too measured slower), resolution here
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slubsim-scan") as tex:
            ahead: deque[Future[Block]] = deque()
            for first, data in iter_blocks(p, BLOCK_BYTES, scanner.count_lines):
                ahead.append(tex.submit(parse_block, first, data))
                if len(ahead) > 1:
                    consume(ahead.popleft().result())
            while ahead:
                consume(ahead.popleft().result())
        return
    if procs <= 0:
        for first, data in iter_blocks(p, BLOCK_BYTES):
            consume(parse_block(first, data))
        return
    with ProcessPoolExecutor(max_workers=procs) as ex:
        # start the workers before the reader thread exists (fork safety)
        for f in [ex.submit(int, 0) for _ in range(procs)]:
            f.result()
        window: deque[tuple[bytes, Future[Block]]] = deque()
        for first, data in iter_blocks(p, BLOCK_BYTES):
            window.append((data, ex.submit(_parse_detached, first, data)))
            if len(window) > 2 * procs:
                text, fut = window.popleft()
                blk = fut.result()
                blk.data = text
                consume(blk)
        while window:
            text, fut = window.popleft()
            blk = fut.result()
            blk.data = text
            consume(blk)


def _ingest_parallel(
    ing: Ingester,
    p: Path,
    nworkers: int,
    skip_malformed: bool,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> None:
    """Decompression and resolution in this process, parsing in ``nworkers``
    processes; a bounded window of chunks in flight keeps memory flat."""
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    window: deque[Future[list[tuple[int, Any, str]]]] = deque()
    with ProcessPoolExecutor(max_workers=nworkers) as ex:

        def drain_one() -> None:
            for lineno, parsed, line in window.popleft().result():
                if parsed == "#":
                    ing.lines += 1
                    ing.header_line(lineno, line)
                elif isinstance(parsed, tuple) and parsed and parsed[0] == "!":
                    ing.lines += 1
                    ing.malformed(lineno, parsed[1], line, skip_malformed)
                else:
                    ing.consume(lineno, parsed, line, skip_malformed)
            if progress is not None:
                progress(ing.lines, total)

        for chunk in _chunks(iter_lines(p), CHUNK_LINES):
            window.append(ex.submit(_parse_chunk, chunk))
            if len(window) > 2 * nworkers:
                drain_one()
        while window:
            drain_one()


def ingest(
    trace: str | Path,
    skip_malformed: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    row_chunk: int = 0,
) -> EventStore:
    """Parse a trace file or a bundle directory into an :class:`EventStore`.

    ``progress(lines, bytes_total)`` is called as lines are consumed.
    ``workers``: default (or 1) the block pipeline (blocks parsed by the
    compiled scanner in a helper thread, or by numpy in two worker processes
    from 8 MB of input; see :func:`_ingest_blocks`); 2 or more the
    line-by-line reference pipeline in that many processes.
    With ``out``, the store is written there while parsing -- packed rows
    spill to a temporary directory beside it, so memory stays bounded by one
    chunk of ``row_chunk`` rows plus the per-pointer state -- and the result
    is :meth:`EventStore.open` of that file.
    """
    if out is None:
        return _ingest(trace, skip_malformed, progress, workers, None, row_chunk)
    import tempfile

    o = Path(out)
    if not o.parent.is_dir():
        raise IngestError(f"{o}: the directory {o.parent} does not exist")
    with tempfile.TemporaryDirectory(prefix=".slubsim-ingest-", dir=o.parent) as tmp:
        _ingest(trace, skip_malformed, progress, workers, (Path(tmp), o), row_chunk)
    return EventStore.open(o)


def _ingest(
    trace: str | Path,
    skip_malformed: bool,
    progress: Callable[[int, int], None] | None,
    workers: int | None,
    spill: tuple[Path, Path] | None,
    row_chunk: int,
) -> EventStore:
    from ..bundle import BundleMeta

    p = Path(trace)
    if not p.exists():
        raise TraceFormatError(f"{p}: no such file")
    bundle: Path | None = None
    extra: dict[str, Any] = {}
    if p.is_dir():
        bundle = p
        p = find_trace_file(p)
    elif (p.parent / "meta.json").is_file() and (p.parent / "slab_stats.json").is_file():
        bundle = p.parent
    bundle_caches: dict[str, dict[str, Any]] = {}
    if bundle is not None:
        bundle_caches = load_bundle_caches(bundle)
        try:
            bm = BundleMeta.load(bundle)
            extra["machine"] = {"cpus": bm.cpus, "nodes": bm.nodes, "cpu_nodes": bm.cpu_nodes}
            if bm.mem_ranges:
                extra["machine"]["mem_ranges"] = [list(r) for r in bm.mem_ranges]
            extra["kernel_version"] = bm.kernel_version
            extra["bundle"] = str(bundle)
        except Exception as e:  # a bad meta.json should not stop ingestion
            extra["bundle_error"] = str(e)
    ing = Ingester(
        p.name if bundle is None else f"{bundle.name}/{p.name}",
        bundle_caches,
        spill_dir=spill[0] if spill else None,
        row_chunk=row_chunk,
    )
    # kprobes defined beside the trace (a lab bundle): until their first event
    # some paths are invisible, and allocations then are remembered by call
    # site (Ingester.finish infers the prefilled-sheaf ones)
    ing.track_blind = (p.parent / "kprobe_events.txt").is_file()
    total = p.stat().st_size
    nworkers = workers if workers is not None else _default_workers(p)
    if nworkers <= 1:
        _ingest_blocks(ing, p, skip_malformed, progress, total, _parse_procs(p, total))
    else:
        _ingest_parallel(ing, p, nworkers, skip_malformed, progress, total)
    ing.finish()
    if ing.events == 0 or not any(
        k in ing.event_counts for k in ("kmem_cache_alloc", "kmalloc", "kmem_cache_free", "kfree")
    ):
        raise IngestError(f"{p}: no kmem events (kmem_cache_alloc/kmalloc/kfree/...) in the trace")
    if "machine" not in extra:
        ncpu = int(ing.header.get("nr_cpus") or (ing.max_cpu + 1 if ing.events else 1))
        extra["machine"] = {"cpus": ncpu, "nodes": 1, "cpu_nodes": [0] * ncpu}
    if "kernel_version" not in extra:
        named = any(True for c in ing.cache_info if not c["kmalloc"]) and not ing.pending
        extra["kernel_version"] = "7.3" if named or not ing.pending else "6.12"
    if spill is not None:
        ing.write_store(extra, spill[1])
        return EventStore(None, {}, path=spill[1], rows=ing.events)  # ingest() opens it
    return ing.to_store(extra)


def iter_store_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """Helper for tests: number an iterable of lines from 1."""
    return enumerate(lines, start=1)
