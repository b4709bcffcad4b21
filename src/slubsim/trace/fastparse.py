"""Vectorised parsing of the common trace lines, one block of text at a time.

Nearly every line of a kmem trace is one of four tracepoints printed in the
kernel's own field order (``include/trace/events/kmem.h``)::

    task-pid [cpu] flags ts: kmem_cache_alloc: call_site=.. ptr=.. name=.. bytes_req=..
        bytes_alloc=.. gfp_flags=.. node=.. [accounted=..]
    task-pid [cpu] flags ts: kmalloc: call_site=.. ptr=.. bytes_req=.. ...
    task-pid [cpu] flags ts: kmem_cache_free: call_site=.. ptr=.. name=..
    task-pid [cpu] flags ts: kfree: call_site=.. ptr=..

:func:`parse_block` reads those with numpy over the raw bytes of a block
(positions of ``]``, ``:`` and spaces, then fixed-width digit windows), no
per-line Python; strings (cache names, call sites, gfp flags) come back as
codes into small per-block tables.  It only *accepts* a line when the result
is certainly what :func:`slubsim.trace.ftrace.parse_line` would return for it;
every other line -- headers, markers, kprobe events, other layouts, anything
odd (tabs, non-ASCII bytes, a bracket in the task name, ``0x`` pointers,
numbers too long) -- is marked slow and goes through ``parse_line`` with its
line number, so errors are reported exactly as before.  A test compares the
two parsers on every line of the committed traces.

numpy releases the GIL in most of this work, so the ingester runs it for the
next block in a helper thread while it consumes the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .ftrace import E_CACHE_ALLOC, E_CACHE_FREE, E_KFREE, E_KMALLOC

Arr = np.ndarray[Any, Any]

#: the fast events: (kind, bytes from after "ts: " up to the first field value)
_EVENTS: tuple[tuple[int, bytes], ...] = (
    (E_CACHE_ALLOC, b"kmem_cache_alloc: call_site="),
    (E_KMALLOC, b"kmalloc: call_site="),
    (E_CACHE_FREE, b"kmem_cache_free: call_site="),
    (E_KFREE, b"kfree: call_site="),
)
EVENT_NAMES = {
    E_CACHE_ALLOC: "kmem_cache_alloc",
    E_KMALLOC: "kmalloc",
    E_CACHE_FREE: "kmem_cache_free",
    E_KFREE: "kfree",
}
_PAD = 64  # bytes of padding before and after a block: windows never leave it
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_FLAGCH = np.zeros(256, dtype=bool)  # [.a-zA-Z0-9], the irq-flags column
for _c in b".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _FLAGCH[_c] = True
_POW10 = 10 ** np.arange(19, dtype=np.int64)


@dataclass
class Block:
    """One block of lines, parsed.  Per line (index ``i``, line number
    ``first + i``): ``fast[i]`` says the vectorised parse holds; then
    ``kind`` (an ``E_*`` of :mod:`ftrace`), ``cpu``, ``ts``, ``ptr``,
    ``name`` (code into ``names``, -1 without ``name=``), ``bytes_req``,
    ``bytes_alloc``, ``gfp`` (code into ``gfps``), ``node`` and
    ``call_site`` (code into ``call_sites``) are valid -- the last five for
    allocations only."""

    first: int
    data: bytes
    starts: Arr
    ends: Arr
    fast: Arr
    kind: Arr
    cpu: Arr
    ts: Arr
    ptr: Arr
    name: Arr
    bytes_req: Arr
    bytes_alloc: Arr
    gfp: Arr
    node: Arr
    call_site: Arr
    names: list[str]
    gfps: list[str]
    call_sites: list[str]

    @property
    def n(self) -> int:
        return len(self.starts)

    def line(self, i: int) -> bytes:
        """The raw bytes of line ``i`` (no newline)."""
        return self.data[int(self.starts[i]) : int(self.ends[i])]


def _window(ap: Arr, end: Arr, width: int) -> tuple[Arr, Arr]:
    """``width`` bytes ending just before each ``end`` (padded positions),
    and the column offsets ``width - 1 .. 0`` back from ``end``."""
    idx = end[:, None] + np.arange(-width, 0, dtype=np.int64)
    return ap[idx], np.arange(width - 1, -1, -1, dtype=np.int64)


def _positions(mask: Arr) -> Arr:
    """Sorted positions where ``mask`` holds, with a sentinel after the last
    (so :func:`_next` never indexes past the end)."""
    pos = np.flatnonzero(mask).astype(np.int64)
    return np.append(pos, np.iinfo(np.int64).max)


def _next(pos_sorted: Arr, at: Arr, limit: Arr) -> Arr:
    """First position in ``pos_sorted`` (from :func:`_positions`) at or
    after ``at``, capped at ``limit``."""
    return np.minimum(pos_sorted[np.searchsorted(pos_sorted, at)], limit)


def _digits(ap: Arr, start: Arr, end: Arr, width: int) -> tuple[Arr, Arr]:
    """Decimal value of ``ap[start:end]`` (1..``width`` digits) and validity."""
    w, back = _window(ap, end, width)
    n = end - start
    inside = back[None, :] < n[:, None]
    d = w.astype(np.int64) - 48
    isd = (d >= 0) & (d <= 9)
    ok = (n >= 1) & (n <= width) & np.all(isd | ~inside, axis=1)
    val = np.where(inside & isd, d, 0) @ _POW10[:width][::-1]
    return val, ok


def _hex(ap: Arr, start: Arr, end: Arr) -> tuple[Arr, Arr]:
    """Hex value (1..16 digits, no ``0x``) of ``ap[start:end]`` and validity."""
    w, back = _window(ap, end, 16)
    n = end - start
    inside = back[None, :] < n[:, None]
    h = _HEX[w]
    ok = (n >= 1) & (n <= 16) & np.all((h != 255) | ~inside, axis=1)
    h = np.where(inside & (h != 255), h, 0).astype(np.uint64)
    val = np.zeros(len(start), dtype=np.uint64)
    for j in range(16):
        val = (val << np.uint64(4)) | h[:, j]
    # "0x.." has an x in it (invalid hex): parse_line reads it, so it goes slow
    return val, ok


def _strings(a: Arr, start: Arr, end: Arr) -> tuple[Arr, list[str]]:
    """Dictionary codes of the byte strings ``a[start:end]`` (ASCII checked
    by the caller) and the table of distinct strings."""
    if len(start) == 0:
        return np.zeros(0, dtype=np.int32), []
    import pyarrow as pa
    import pyarrow.compute as pc

    lens = (end - start).astype(np.int64)
    offs = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    idx = np.arange(int(offs[-1]), dtype=np.int64) + np.repeat(start - offs[:-1], lens)
    arr = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(lens), [None, pa.py_buffer(offs), pa.py_buffer(a[idx])]
    )
    enc = pc.dictionary_encode(arr)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    table = [b.decode("ascii") for b in enc.dictionary.to_pylist()]
    return codes, table


def _u64(ap: Arr) -> Arr:
    """The 8 bytes at every position of ``ap`` as one little-endian uint64
    (an unaligned, overlapping view: ``_u64(ap)[k]`` is ``ap[k:k+8]``)."""
    return np.ndarray(shape=(len(ap) - 7,), dtype="<u8", buffer=ap, strides=(1,))


def _has(ap8: Arr, at: Arr, pat: bytes) -> Arr:
    """``ap[at : at + len(pat)] == pat`` per line (``ap8 = _u64(ap)``)."""
    ok = np.ones(len(at), dtype=bool)
    for k in range(0, len(pat), 8):
        part = pat[k : k + 8]
        if len(part) == 8:
            ok &= ap8[at + k] == np.uint64(int.from_bytes(part, "little"))
        else:
            mask = np.uint64((1 << (8 * len(part))) - 1)
            ok &= (ap8[at + k] & mask) == np.uint64(int.from_bytes(part, "little"))
    return ok


def parse_block(first: int, data: bytes) -> Block:
    """Parse the lines of ``data`` (whole lines, ending with a newline)."""
    a = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(a == 10).astype(np.int64)
    n = len(nl)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        starts[1:] = nl[:-1] + 1
    ends = nl.copy()
    # padded copy: positions shift by _PAD, windows stay inside
    ap = np.zeros(len(a) + 2 * _PAD, dtype=np.uint8)
    ap[_PAD : _PAD + len(a)] = a
    ap8 = _u64(ap)
    s0 = starts + _PAD
    e0 = ends + _PAD

    # lines with a tab, CR, control or non-ASCII byte: parse_line's business
    # (a - 32) wraps: bytes < 0x20 (the newlines too), DEL and >= 0x80 exceed 0x5E
    odd = (a - np.uint8(32)) > np.uint8(0x5E)
    ok = np.ones(n, dtype=bool)
    if np.count_nonzero(odd) > n:
        where = np.flatnonzero(odd)
        where = where[a[where] != 10]
        ok[np.searchsorted(starts, where, "right") - 1] = False
    ok &= (ends - starts) > 0
    ok &= ap[s0] != ord("#")  # headers and comments

    # "[cpu]": the line's first "[" and first "]", digits in between
    lb = _positions(ap == ord("["))
    rb = _positions(ap == ord("]"))
    lpos = _next(lb, s0, e0)
    rpos = _next(rb, s0, e0)
    ok &= (lpos < rpos) & (rpos < e0)
    cpu, cok = _digits(ap, lpos + 1, rpos, 4)
    ok &= cok
    # the timestamp ends at the first ":" after "]"; it is the token after
    # the last space before that (ftrace: "] flags ts:", trace-cmd: "] ts:")
    co = _positions(ap == ord(":"))
    spc = _positions(ap == 32)
    c1 = _next(co, rpos, e0)
    ok &= (c1 < e0) & (ap[rpos + 1] == 32)
    ls = spc[np.maximum(np.searchsorted(spc, c1) - 1, 0)]
    dots = _positions(ap == ord("."))
    dot = _next(dots, ls, c1)
    ok &= (ls > rpos) & (dot < c1)
    ipart, iok = _digits(ap, ls + 1, dot, 10)
    fpart, fok = _digits(ap, dot + 1, c1, 9)
    ok &= iok & fok
    scale = _POW10[np.clip(c1 - dot - 1, 0, 18)]
    num = ipart * scale + fpart
    ok &= num < (1 << 53)  # exact as a double: num / 10**nfrac rounds like float()
    ts = num.astype(np.float64) / scale.astype(np.float64)
    # between "]" and the timestamp: spaces and at most one irq-flags token
    # of 4..6 of [.a-zA-Z0-9] (counted with the sorted position arrays)
    nsp = np.searchsorted(spc, ls, "right") - np.searchsorted(spc, rpos + 1)
    ntok = (ls - rpos) - nsp
    rise = _positions((ap[:-1] == 32) & (ap[1:] != 32))  # a token starts at rise + 1
    k = np.searchsorted(rise, rpos + 1)
    nrun = np.searchsorted(rise, ls - 1) - k
    tok = ap[rise[np.minimum(k, len(rise) - 2)][:, None] + 1 + np.arange(6)]
    isflag = _FLAGCH[tok] | (np.arange(6)[None, :] >= ntok[:, None])
    ok &= (ntok == 0) | ((ntok >= 4) & (ntok <= 6) & (nrun == 1) & np.all(isflag, axis=1))

    # the event: ": <name>: call_site=" right after the timestamp
    kind = np.zeros(n, dtype=np.int8)
    fstart = np.zeros(n, dtype=np.int64)
    for ev_kind, pat in _EVENTS:
        hit = ok & (kind == 0) & _has(ap8, c1 + 2, pat) & (ap[c1 + 1] == 32)
        kind[hit] = ev_kind
        fstart[hit] = c1[hit] + 2 + len(pat)
    ok &= kind != 0
    # call_site=<tok> ptr=<hex>
    e_cs = _next(spc, fstart, e0)
    ok &= (e_cs > fstart) & (e_cs < e0) & _has(ap8, e_cs + 1, b"ptr=")
    p0 = e_cs + 5
    e_ptr = _next(spc, p0, e0)
    ptr, pok = _hex(ap, p0, e_ptr)
    ok &= pok
    # " name=<tok>" (7.x names; a free's last field)
    has_name = ok & (e_ptr < e0) & _has(ap8, e_ptr + 1, b"name=")
    n0 = e_ptr + 6
    e_name = np.where(has_name, _next(spc, n0, e0), e_ptr)
    ok &= ~has_name | (e_name > n0)
    is_free = (kind == E_CACHE_FREE) | (kind == E_KFREE)
    # a free ends there (trailing text: parse_line decides)
    ok &= ~is_free | (e_name == e0)
    # allocations: bytes_req=<d> bytes_alloc=<d> gfp_flags=<tok> node=<-?d>
    is_alloc = ~is_free
    t = np.where(has_name, e_name, e_ptr) + 1
    ok &= ~is_alloc | _has(ap8, t, b"bytes_req=")
    b0 = t + 10
    e_b = _next(spc, b0, e0)
    breq, bok = _digits(ap, b0, e_b, 10)
    ok &= ~is_alloc | (bok & _has(ap8, e_b, b" bytes_alloc="))
    a0 = e_b + 13
    e_a = _next(spc, a0, e0)
    balloc, aok = _digits(ap, a0, e_a, 10)
    ok &= ~is_alloc | (aok & _has(ap8, e_a, b" gfp_flags="))
    g0 = e_a + 11
    e_g = _next(spc, g0, e0)
    ok &= ~is_alloc | ((e_g > g0) & _has(ap8, e_g, b" node="))
    nd0 = e_g + 6
    e_nd = _next(spc, nd0, e0)
    neg = ap[nd0] == ord("-")
    nval, nok = _digits(ap, nd0 + neg, e_nd, 6)
    ok &= ~is_alloc | nok
    node = np.where(neg, -nval, nval)

    fast = ok
    al = fast & is_alloc
    named = fast & has_name
    name = np.full(n, -1, dtype=np.int32)
    codes, names = _strings(ap, n0[named], e_name[named])
    name[named] = codes
    gfp = np.full(n, -1, dtype=np.int32)
    codes, gfps = _strings(ap, g0[al], e_g[al])
    gfp[al] = codes
    cs = np.full(n, -1, dtype=np.int32)
    codes, css = _strings(ap, fstart[al], e_cs[al])
    cs[al] = codes
    return Block(
        first=first,
        data=data,
        starts=starts,
        ends=ends,
        fast=fast,
        kind=kind,
        cpu=cpu,
        ts=ts,
        ptr=ptr,
        name=name,
        bytes_req=np.where(al, breq, 0),
        bytes_alloc=np.where(al, balloc, 0),
        gfp=gfp,
        node=np.where(al, node, -1),
        call_site=cs,
        names=names,
        gfps=gfps,
        call_sites=css,
    )
