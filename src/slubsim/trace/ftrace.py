"""Parsing one line of kmem/lab trace text into a raw event.

Accepted line layouts (fields after the event name are ``key=value`` tokens in
any order, see spec §10.1):

* ftrace text (``trace``/``trace_pipe``):
  ``bash-1234  [001] d..1.  1234.567890: kmalloc: call_site=... ptr=...``
* ``trace-cmd report`` (with or without the flags column):
  ``bash-1234  [001]  1234.567890: kmalloc:  call_site=... ptr=...``
* ``perf script``: ``bash  1234 [001]  1234.567890: kmem:kmalloc: call_site=...``

Both the 6.x ``kmem_cache_alloc`` format (no ``name=``) and the 7.x one (with
``name=``) are read; pointers are hex with or without ``0x``.
"""

from __future__ import annotations

import re
from typing import Final

# task part is free text (comm may contain spaces and dashes); then [cpu],
# an optional irq-flags column, the timestamp, the event name.
LINE_RE = re.compile(
    r"\s*(.*?)\s*\[(\d{1,4})\]\s+(?:[.a-zA-Z0-9]{4,6}\s+)?(\d+\.\d+):\s+([\w:]+):\s*(.*)"
)

# the irq-flags token (irqs-off, need-resched, hardirq/softirq, preempt depth,
# migrate-disable): its third character is "h"/"H" (hard irq), "s" (soft
# irq) or "z"/"Z" (NMI) when the event ran in interrupt context
_IRQ_RE = re.compile(r"\[\d{1,4}\]\s+([.a-zA-Z0-9]{4,6})\s+\d+\.\d+:")


def irq_context(line: str) -> bool:
    """Did the event of ``line`` run in hard/soft irq (or NMI) context?  False
    without an irq-flags column (trace-cmd, perf)."""
    m = _IRQ_RE.search(line)
    return m is not None and m.group(1)[2] in "hHszZ"


# Fast paths for the canonical TP_printk field order (spec §10.1); any other
# order falls back to generic key=value parsing.
_FAST_ALLOC = re.compile(
    r"call_site=(\S+) ptr=(\S+) (?:name=(\S+) )?bytes_req=(\d+) bytes_alloc=(\d+) "
    r"gfp_flags=(\S+) node=(-?\d+)"
)
_FAST_FREE = re.compile(r"call_site=(\S+) ptr=(\S+)(?: name=(\S+))?\s*$")

# raw event kinds
E_CACHE_ALLOC: Final = 1
E_KMALLOC: Final = 2
E_CACHE_FREE: Final = 3
E_KFREE: Final = 4
E_KFREE_RCU: Final = 5
E_RCU_FREE_SHEAF: Final = 6
E_FREE_BULK: Final = 7
E_FREE_BULK_CONT: Final = 8
E_ALLOC_BULK: Final = 9
E_ALLOC_BULK_RET: Final = 10
E_PREFILL: Final = 11
E_PREFILL_RET: Final = 12
E_REFILL: Final = 13
E_RETURN_SHEAF: Final = 14
E_ALLOC_FROM_SHEAF: Final = 15
E_MARKER: Final = 16
E_SLAB_FREE_SLOW: Final = 17
E_PAGE: Final = 18  # mm_page_* events: recognised, not replayed
E_OTHER: Final = 0

EVENT_KINDS = {
    "kmem_cache_alloc": E_CACHE_ALLOC,
    "kmem_cache_alloc_node": E_CACHE_ALLOC,
    "kmalloc": E_KMALLOC,
    "kmalloc_node": E_KMALLOC,
    "kmem_cache_free": E_CACHE_FREE,
    "kfree": E_KFREE,
    "kfree_rcu": E_KFREE_RCU,
    "rcu_free_sheaf": E_RCU_FREE_SHEAF,
    "free_bulk": E_FREE_BULK,
    "alloc_bulk": E_ALLOC_BULK,
    "alloc_bulk_ret": E_ALLOC_BULK_RET,
    "prefill_sheaf": E_PREFILL,
    "prefill_sheaf_ret": E_PREFILL_RET,
    "refill_sheaf": E_REFILL,
    "return_sheaf": E_RETURN_SHEAF,
    "alloc_from_sheaf": E_ALLOC_FROM_SHEAF,
    "tracing_mark_write": E_MARKER,
    "print": E_MARKER,
    "slab_free_slow": E_SLAB_FREE_SLOW,
    "mm_page_alloc": E_PAGE,
    "mm_page_free": E_PAGE,
    "mm_page_free_batched": E_PAGE,
}
for _i in range(1, 8):
    EVENT_KINDS[f"free_bulk_{_i}"] = E_FREE_BULK_CONT

#: fields each kind must carry (a line without them is malformed)
REQUIRED = {
    E_CACHE_ALLOC: ("ptr", "bytes_alloc"),
    E_KMALLOC: ("ptr", "bytes_alloc"),
    E_CACHE_FREE: ("ptr",),
    E_KFREE: ("ptr",),
    E_KFREE_RCU: ("ptr",),
    E_FREE_BULK: ("size", "objs"),
    E_FREE_BULK_CONT: ("size", "objs"),
    E_ALLOC_BULK: ("size",),
    E_ALLOC_BULK_RET: ("ret",),
    E_PREFILL: ("count",),
    E_PREFILL_RET: ("sheaf",),
    E_RETURN_SHEAF: ("sheaf",),
    E_ALLOC_FROM_SHEAF: ("sheaf",),
    E_RCU_FREE_SHEAF: ("sheaf",),
}


class MalformedLine(ValueError):
    """A line that looks like an event but cannot be read; ``reason`` says why."""


def parse_fields(rest: str) -> dict[str, str]:
    """``key=value`` tokens in any order; quoted strings lose their quotes;
    tokens without ``=`` (a kprobe's ``(func+0x0/0x1c2)``) are skipped."""
    out: dict[str, str] = {}
    for tok in rest.split():
        eq = tok.find("=")
        if eq <= 0:
            continue
        v = tok[eq + 1 :]
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        out[tok[:eq]] = v
    return out


def parse_hex(v: str) -> int:
    if v in ("(null)", "0", ""):
        return 0
    return int(v, 16)


def event_name(raw: str) -> str:
    """``kmem:kmalloc`` (perf) -> ``kmalloc``."""
    return raw.rsplit(":", 1)[-1]


#: a parsed event: (kind, cpu, ts, event, task, ptr, name, bytes_req, bytes_alloc,
#: gfp_flags, node, call_site, fields) -- ``fields`` is the key=value dict for kprobe
#: events, the raw text for markers and unknown events, None for kmem events.
RawEvent = tuple[
    int,
    int,
    float,
    str,
    str,
    int,
    "str | None",
    int,
    int,
    str,
    int,
    str,
    "dict[str, str] | str | None",
]


def parse_line(line: str) -> RawEvent | None:
    """Parse one line.  None for a line that is not an event (comment, header,
    blank); raise :class:`MalformedLine` for a line that starts like an event
    but is broken."""
    if not line or line[0] == "#":
        return None
    m = LINE_RE.match(line)
    if m is None:
        s = line.strip()
        if "LOST" in s and "EVENTS" in s:
            return (E_OTHER, -1, 0.0, "__lost__", "", 0, None, 0, 0, "", -1, "", s)
        if not s or s.startswith("#") or s.startswith("CPU:") or s.startswith("cpus="):
            return None
        raise MalformedLine("not a trace event line (expected 'task-pid [cpu] ts: event: ...')")
    task, cpu_s, ts_s, ev, rest = m.groups()
    if ":" in ev:
        ev = ev.rsplit(":", 1)[-1]
    kind = EVENT_KINDS.get(ev, E_OTHER)
    cpu = int(cpu_s)
    ts = float(ts_s)
    if kind in (E_CACHE_ALLOC, E_KMALLOC):
        fm = _FAST_ALLOC.match(rest)
        if fm is not None:
            cs, ptr, name, breq, balloc, gfp, node = fm.groups()
            return (
                kind,
                cpu,
                ts,
                ev,
                task,
                parse_hex(ptr),
                name,
                int(breq),
                int(balloc),
                gfp,
                int(node),
                cs,
                None,
            )
        f = parse_fields(rest)
        for req in REQUIRED[kind]:
            if req not in f:
                raise MalformedLine(f"{ev} event without '{req}='")
        return (
            kind,
            cpu,
            ts,
            ev,
            task,
            parse_hex(f["ptr"]),
            f.get("name"),
            int(f.get("bytes_req", "0")),
            int(f["bytes_alloc"]),
            f.get("gfp_flags", ""),
            int(f.get("node", "-1")),
            f.get("call_site", ""),
            None,
        )
    if kind in (E_CACHE_FREE, E_KFREE):
        fm = _FAST_FREE.match(rest)
        if fm is not None:
            cs, ptr, name = fm.groups()
            return (kind, cpu, ts, ev, task, parse_hex(ptr), name, 0, 0, "", -1, cs, None)
        f = parse_fields(rest)
        if "ptr" not in f:
            raise MalformedLine(f"{ev} event without 'ptr='")
        return (
            kind,
            cpu,
            ts,
            ev,
            task,
            parse_hex(f["ptr"]),
            f.get("name"),
            0,
            0,
            "",
            -1,
            f.get("call_site", ""),
            None,
        )
    if kind in (E_MARKER, E_OTHER, E_PAGE):
        return (kind, cpu, ts, ev, task, 0, None, 0, 0, "", -1, "", rest)
    f = parse_fields(rest)
    for req in REQUIRED.get(kind, ()):
        if req not in f:
            raise MalformedLine(f"{ev} event without '{req}='")
    return (kind, cpu, ts, ev, task, 0, f.get("name"), 0, 0, "", -1, "", f)
