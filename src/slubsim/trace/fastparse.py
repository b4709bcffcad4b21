"""Vectorised parsing of the common trace lines, one block of text at a time.

Nearly every line of a kmem trace is one of four tracepoints printed in the
kernel's own field order (``include/trace/events/kmem.h``)::

    task-pid [cpu] flags ts: kmem_cache_alloc: call_site=.. ptr=.. name=.. bytes_req=..
        bytes_alloc=.. gfp_flags=.. node=.. [accounted=..]
    task-pid [cpu] flags ts: kmalloc: call_site=.. ptr=.. bytes_req=.. ...
    task-pid [cpu] flags ts: kmem_cache_free: call_site=.. ptr=.. name=..
    task-pid [cpu] flags ts: kfree: call_site=.. ptr=..

and the lab traces' ``kfree_rcu`` kprobe line
(``kfree_rcu: (kvfree_call_rcu+0x0/..) ptr=0x.. head=0x.. caller=..``).

:func:`parse_block` reads those with numpy over the raw bytes of a block
(eight bytes at a time through unaligned uint64 views: SWAR searches for
``[``, ``]``, ``:``, spaces and dots, SWAR decimal and hex conversion), no
per-line Python; strings (cache names, call sites, gfp flags) come back as
codes into small per-block tables.  It only *accepts* a line when the result
is certainly what :func:`slubsim.trace.ftrace.parse_line` would return for it;
every other line -- headers, markers, kprobe events, other layouts, anything
odd (tabs, non-ASCII bytes, a bracket in the task name, ``0x`` pointers,
numbers too long) -- is marked slow and goes through ``parse_line`` with its
line number, so errors are reported exactly as before.  A test compares the
two parsers on every line of the committed traces.

Two implementations of that one parser: :mod:`slubsim.trace.scan`, one C
pass per line compiled from Cython pure-Python mode at install time (used
when present, runs without the GIL), and the numpy one below (used when the
scanner is not compiled, or with ``SLUBSIM_PURE=1``).  They accept the same
lines with the same values; the string tables are built the same way from
the spans either returns (tested).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .ftrace import E_CACHE_ALLOC, E_CACHE_FREE, E_KFREE, E_KFREE_RCU, E_KMALLOC

Arr = np.ndarray[Any, Any]

#: the fast events: (kind, bytes from after "ts: " up to the first field value)
_EVENTS: tuple[tuple[int, bytes], ...] = (
    (E_CACHE_ALLOC, b"kmem_cache_alloc: call_site="),
    (E_KMALLOC, b"kmalloc: call_site="),
    (E_CACHE_FREE, b"kmem_cache_free: call_site="),
    (E_KFREE, b"kfree: call_site="),
    (E_KFREE_RCU, b"kfree_rcu: "),  # the lab's kprobe on kvfree_call_rcu
)
EVENT_NAMES = {
    E_CACHE_ALLOC: "kmem_cache_alloc",
    E_KMALLOC: "kmalloc",
    E_CACHE_FREE: "kmem_cache_free",
    E_KFREE: "kfree",
    E_KFREE_RCU: "kfree_rcu",
}
_PAD = 64  # bytes of padding before and after a block: windows never leave it
_FLAGCH = np.zeros(256, dtype=bool)  # [.a-zA-Z0-9], the irq-flags column
for _c in b".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _FLAGCH[_c] = True
_IRQCH = np.zeros(256, dtype=bool)  # hardirq/softirq/NMI marks (ftrace.irq_context)
for _c in b"hHszZ":
    _IRQCH[_c] = True
_POW10 = 10 ** np.arange(19, dtype=np.int64)


@dataclass
class Block:
    """One block of lines, parsed.  Per line (index ``i``, line number
    ``first + i``): ``fast[i]`` says the vectorised parse holds; then
    ``irq`` (hard/soft irq or NMI context), ``kind`` (an ``E_*`` of
    :mod:`ftrace`), ``cpu``, ``ts``, ``ptr``,
    ``name`` (code into ``names``, -1 without ``name=``), ``bytes_req``,
    ``bytes_alloc``, ``gfp`` (code into ``gfps``), ``node`` and
    ``call_site`` (code into ``call_sites``) are valid -- the last five for
    allocations only."""

    first: int
    data: bytes
    starts: Arr
    ends: Arr
    fast: Arr
    irq: Arr  # a fast line in irq context (ftrace.irq_context)
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


_U = np.uint64
_ONES = 0x0101010101010101
_HIGH = _U(0x8080808080808080)
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)


def _zero_bytes(x: Arr) -> Arr:
    """0x80 in every byte of each uint64 of ``x`` that is zero (exact, no
    false positives from borrows)."""
    return ~(((x & _LOW7) + _LOW7) | x) & _HIGH


def _in_range(x: Arr, lo: int, hi: int) -> Arr:
    """0x80 in every byte ``lo <= b <= hi`` (bytes below 0x80 only)."""
    return ((x + _U((0x80 - lo) * _ONES)) & ~(x + _U((0x7F - hi) * _ONES))) & _HIGH


def _bit_byte(z: Arr) -> Arr:
    """Byte index of the highest set bit of each non-zero uint64 (float64
    keeps floor(log2) exact for these sparse masks)."""
    return (np.floor(np.log2(z.astype(np.float64))).astype(np.int64) - 7) // 8


def _find(ap8: Arr, at: Arr, limit: Arr, ch: int, words: int) -> tuple[Arr, Arr]:
    """First ``ch`` at or after ``at`` and before ``limit`` (else ``limit``),
    eight bytes a step; ``ok`` is False where ``words`` steps did not settle it."""
    pat = _U(ch * _ONES)
    res = limit.copy()
    ok = np.ones(len(at), dtype=bool)
    idx = np.arange(len(at))
    cur = at.copy()
    for _ in range(words):
        z = _zero_bytes(ap8[cur] ^ pat)
        hit = z != 0
        if hit.any():
            zh = z[hit]
            low = zh & (~zh + _U(1))  # lowest set bit
            pos = cur[hit] + _bit_byte(low)
            res[idx[hit]] = np.minimum(pos, limit[idx[hit]])
        go = ~hit & (cur + 8 < limit[idx])
        idx = idx[go]
        cur = cur[go] + 8
        if not len(idx):
            return res, ok
    ok[idx] = False
    return res, ok


def _rfind(ap8: Arr, end: Arr, floor: Arr, ch: int, words: int) -> tuple[Arr, Arr]:
    """Last ``ch`` before ``end`` and at or after ``floor`` (else
    ``floor - 1``); ``ok`` as in :func:`_find`."""
    pat = _U(ch * _ONES)
    res = floor - 1
    ok = np.ones(len(end), dtype=bool)
    idx = np.arange(len(end))
    cur = end - 8
    for _ in range(words):
        z = _zero_bytes(ap8[cur] ^ pat)
        hit = z != 0
        if hit.any():
            pos = cur[hit] + _bit_byte(z[hit])
            res[idx[hit]] = np.maximum(pos, floor[idx[hit]] - 1)
        go = ~hit & (cur > floor[idx])
        idx = idx[go]
        cur = cur[go] - 8
        if not len(idx):
            return res, ok
    ok[idx] = False
    return res, ok


def _dec8(ap8: Arr, start: Arr, end: Arr) -> tuple[Arr, Arr]:
    """Decimal value of ``ap[start:end]`` (1..8 digits) and validity: one
    unaligned load ending at ``end``, the leading bytes masked off, the
    classic SWAR 8-digit conversion."""
    n = end - start
    ok = (n >= 1) & (n <= 8)
    x = ap8[end - 8]
    sh = (_U(8) * (_U(8) - np.clip(n, 1, 8).astype(np.uint64))) % _U(64)
    keep = np.where(n >= 8, ~_U(0), ~((_U(1) << sh) - _U(1)))
    ok &= (_in_range(x, 0x30, 0x39) & keep) == (keep & _HIGH)
    d = (x & keep) - (_U(0x30 * _ONES) & keep)  # masked first: no borrow from a low byte
    d = d * _U(10) + (d >> _U(8))
    d = (
        (d & _U(0x000000FF000000FF)) * _U(100 + (1000000 << 32))
        + ((d >> _U(16)) & _U(0x000000FF000000FF)) * _U(1 + (10000 << 32))
    ) >> _U(32)
    return d.astype(np.int64), ok


def _hex16(ap8: Arr, start: Arr, end: Arr) -> tuple[Arr, Arr]:
    """Value of exactly 16 hex digits ``ap[start:end]`` (no ``0x``: that
    one parse_line reads) and validity, eight digits per uint64."""
    ok = (end - start) == 16
    val = np.zeros(len(start), dtype=np.uint64)
    for off in (0, 8):
        x = ap8[start + off]
        ok &= (
            _in_range(x, 0x30, 0x39) | _in_range(x, 0x61, 0x66) | _in_range(x, 0x41, 0x46)
        ) == _HIGH
        v = (x & _U(0x0F0F0F0F0F0F0F0F)) + _U(9) * ((x >> _U(6)) & _U(_ONES))
        v = ((v & _U(0x000F000F000F000F)) << _U(4)) | ((v & _U(0x0F000F000F000F00)) >> _U(8))
        v = ((v & _U(0x000000FF000000FF)) << _U(8)) | ((v & _U(0x00FF000000FF0000)) >> _U(16))
        v = ((v & _U(0xFFFF)) << _U(16)) | ((v >> _U(32)) & _U(0xFFFF))
        val = (val << _U(32)) | v
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


def _load_scanner() -> ModuleType | None:
    """The Cython-compiled :mod:`slubsim.trace.scan`, or None: not compiled
    at install time, ``SLUBSIM_PURE`` set, or the extension older than its
    source (an edited editable checkout: stale machine code would ignore the
    edit -- warned, as for the mypyc modules)."""
    if os.environ.get("SLUBSIM_PURE", "") not in ("", "0"):
        return None
    try:
        from . import scan
    except ImportError:  # no extension, and the pure source needs Cython's shadow module
        return None
    if not scan.COMPILED:
        return None
    built = Path(scan.__file__)
    src = built.with_name("scan.py")
    if src.is_file() and src.stat().st_mtime > built.stat().st_mtime + 2.0:
        warnings.warn(
            "slubsim: trace/scan.py is newer than its compiled extension (re-run pip install);"
            " parsing with numpy",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return scan


#: the compiled line scanner, when installed (see :func:`_load_scanner`)
SCANNER: ModuleType | None = _load_scanner()


def parse_block(first: int, data: bytes) -> Block:
    """Parse the lines of ``data`` (whole lines, ending with a newline) with
    the compiled scanner when there is one, else with numpy.  Never raises
    on content: should the parse fail on some input it has not met before,
    every line of the block is left to ``parse_line``."""
    try:
        if SCANNER is not None:
            return scan_block(first, data, SCANNER)
        return _parse_block(first, data)
    except Exception:  # pragma: no cover - a safety net, not a code path
        return slow_block(first, data)


def scan_block(first: int, data: bytes, scanner: ModuleType) -> Block:
    """:func:`parse_block` through ``scanner`` (:mod:`slubsim.trace.scan`,
    compiled or, in tests, its pure-Python source)."""
    n = scanner.count_lines(data) if scanner.COMPILED else data.count(b"\n")
    starts = np.zeros(n, dtype=np.int64)
    ends = np.zeros(n, dtype=np.int64)
    fast = np.zeros(n, dtype=np.uint8)
    irq = np.zeros(n, dtype=np.uint8)
    kind = np.zeros(n, dtype=np.int8)
    cpu = np.zeros(n, dtype=np.int16)
    ts = np.zeros(n, dtype=np.float64)
    ptr = np.zeros(n, dtype=np.uint64)
    bytes_req = np.zeros(n, dtype=np.int32)
    bytes_alloc = np.zeros(n, dtype=np.int32)
    node = np.full(n, -1, dtype=np.int32)
    codes = np.full((n, 3), -1, dtype=np.int32)
    tables = np.zeros((3, 1 << max(4, (2 * n + 1).bit_length())), dtype=np.int64)
    firsts = np.zeros((3, n, 2), dtype=np.int64)
    counts = np.zeros(3, dtype=np.int64)
    scanner.scan(
        data,
        n,
        starts,
        ends,
        fast,
        irq,
        kind,
        cpu,
        ts,
        ptr,
        bytes_req,
        bytes_alloc,
        node,
        codes,
        tables,
        firsts,
        counts,
    )
    names, gfps, call_sites = (
        [data[s:e].decode("ascii") for s, e in firsts[t, : counts[t]].tolist()] for t in range(3)
    )
    ok = fast.view(bool)
    small = len(data) < 1 << 31
    return Block(
        first=first,
        data=data,
        starts=starts.astype(np.int32) if small else starts,
        ends=ends.astype(np.int32) if small else ends,
        fast=ok,
        irq=irq.view(bool),
        kind=kind,
        cpu=cpu,
        ts=ts,
        ptr=ptr,
        name=codes[:, 0],
        bytes_req=bytes_req,
        bytes_alloc=bytes_alloc,
        gfp=codes[:, 1],
        node=node,
        call_site=codes[:, 2],
        names=names,
        gfps=gfps,
        call_sites=call_sites,
    )


def slow_block(first: int, data: bytes) -> Block:
    """A block whose every line is left to ``parse_line``."""
    a = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(a == 10).astype(np.int64)
    n = len(ends)
    starts = np.zeros(n, dtype=np.int64)
    starts[1:] = ends[:-1] + 1
    zi = np.zeros(n, dtype=np.int32)
    return Block(
        first=first,
        data=data,
        starts=starts,
        ends=ends,
        fast=np.zeros(n, dtype=bool),
        irq=np.zeros(n, dtype=bool),
        kind=np.zeros(n, dtype=np.int8),
        cpu=np.zeros(n, dtype=np.int16),
        ts=np.zeros(n, dtype=np.float64),
        ptr=np.zeros(n, dtype=np.uint64),
        name=zi - 1,
        bytes_req=zi,
        bytes_alloc=zi,
        gfp=zi - 1,
        node=zi - 1,
        call_site=zi - 1,
        names=[],
        gfps=[],
        call_sites=[],
    )


def _parse_block(first: int, data: bytes) -> Block:
    a = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(a == 10).astype(np.int64)
    n = len(nl)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        starts[1:] = nl[:-1] + 1
    ends = nl.copy()
    # padded copy: positions shift by _PAD, eight-byte loads stay inside
    ap = np.zeros(len(a) + 2 * _PAD, dtype=np.uint8)
    ap[_PAD : _PAD + len(a)] = a
    ap8 = _u64(ap)
    s0 = starts + _PAD
    e0 = ends + _PAD

    # lines with a tab, CR, control or non-ASCII byte: parse_line's business
    # ((a - 32) wraps: bytes < 0x20 -- newlines too --, DEL and >= 0x80 exceed 0x5E)
    odd = (a - np.uint8(32)) > np.uint8(0x5E)
    ok = np.ones(n, dtype=bool)
    if np.count_nonzero(odd) > n:
        where = np.flatnonzero(odd)
        where = where[a[where] != 10]
        ok[np.searchsorted(starts, where, "right") - 1] = False
    ok &= (ends - starts) > 0
    ok &= ap[s0] != ord("#")  # headers and comments

    # "[cpu]": the line's first "[" (parse_line's lazy task match takes it)
    lpos, fok = _find(ap8, s0, e0, ord("["), 8)
    ok &= fok
    rpos, fok = _find(ap8, lpos + 1, e0, ord("]"), 1)
    ok &= fok & (lpos < e0) & (rpos < e0)
    cpu, cok = _dec8(ap8, lpos + 1, rpos)
    ok &= cok & (rpos - lpos - 1 <= 4)
    # the timestamp ends at the first ":" after "]"; it is the token after
    # the last space before that (ftrace: "] flags ts:", trace-cmd: "] ts:")
    c1, fok = _find(ap8, rpos + 1, e0, ord(":"), 4)
    ok &= fok & (c1 < e0) & (ap[rpos + 1] == 32)
    ls, fok = _rfind(ap8, c1, rpos + 1, 32, 3)
    ok &= fok & (ls > rpos)
    dot, fok = _rfind(ap8, c1, ls + 1, ord("."), 3)
    ok &= fok & (dot > ls)
    ipart, iok = _dec8(ap8, ls + 1, dot)
    fpart, fok = _dec8(ap8, dot + 1, c1)
    ok &= iok & fok
    scale = _POW10[np.clip(c1 - dot - 1, 0, 18)]
    num = ipart * scale + fpart
    ok &= num < (1 << 53)  # exact as a double: num / 10**k rounds like float() of the text
    ts = num.astype(np.float64) / scale.astype(np.float64)
    # between "]" and the timestamp: spaces and at most one irq-flags token
    # of 4..6 of [.a-zA-Z0-9] (a 16-byte window)
    gap = ls - rpos
    ok &= gap <= 16
    w = ap[(rpos + 1)[:, None] + np.arange(16)]
    inside = np.arange(16)[None, :] < gap[:, None]
    tok = inside & (w != 32)
    ntok = tok.sum(axis=1)
    runs = (tok[:, 1:] & ~tok[:, :-1]).sum(axis=1)  # tok[:, 0] is a space (checked)
    ok &= (ntok == 0) | ((ntok >= 4) & (ntok <= 6) & (runs == 1))
    ok &= np.all(_FLAGCH[w] | ~tok, axis=1)
    # the token's third character: hardirq/softirq (ftrace.irq_context)
    ch3 = w[np.arange(n), np.minimum(np.argmax(tok, axis=1) + 2, 15)]
    irq = (ntok >= 4) & _IRQCH[ch3]

    # the event: ": <name>: " right after the timestamp, told apart by the
    # first eight bytes (and the next eight for kmem_cache_*), then checked
    # in full on the lines that matched
    kind = np.zeros(n, dtype=np.int8)
    fstart = np.zeros(n, dtype=np.int64)
    cand = np.flatnonzero(ok & (ap[c1 + 1] == 32))
    w0 = ap8[c1[cand] + 2]
    w1 = ap8[c1[cand] + 10]
    for ev_kind, pat in _EVENTS:
        m = w0 == _U(int.from_bytes(pat[:8], "little"))
        if len(pat) >= 16:
            m &= w1 == _U(int.from_bytes(pat[8:16], "little"))
        sub = cand[m]
        sub = sub[_has(ap8, c1[sub] + 2, pat)]
        kind[sub] = ev_kind
        fstart[sub] = c1[sub] + 2 + len(pat)
    ok &= kind != 0
    ptr = np.zeros(n, dtype=np.uint64)

    # the kfree_rcu kprobe: "(probe) ptr=0x<16 hex> head=0x<16 hex> caller=<tok>"
    # (parse_fields skips the probe token: it has no "="; ptr is the only ptr)
    r = np.flatnonzero(ok & (kind == E_KFREE_RCU))
    ok[r] = False
    fs, le = fstart[r], e0[r]
    e_tok, f1 = _find(ap8, fs, le, 32, 8)
    eq, f2 = _find(ap8, fs, e_tok, ord("="), 8)
    rok = f1 & f2 & (eq == e_tok) & (e_tok > fs) & _has(ap8, e_tok + 1, b"ptr=0x")
    rp0 = e_tok + 7
    rptr, hok = _hex16(ap8, rp0, rp0 + 16)
    rok &= hok & _has(ap8, rp0 + 16, b" head=0x")
    _, hok = _hex16(ap8, rp0 + 24, rp0 + 40)
    rok &= hok & _has(ap8, rp0 + 40, b" caller=")
    e_c, f3 = _find(ap8, rp0 + 48, le, 32, 8)
    rok &= f3 & (e_c == le) & (e_c > rp0 + 48)
    rcu_ok = np.zeros(n, dtype=bool)
    rcu_ok[r[rok]] = True
    ptr[r] = rptr

    # kmem events: call_site=<tok> ptr=<16 hex>[ name=<tok>]
    k = np.flatnonzero(ok)
    fs, le = fstart[k], e0[k]
    kk = kind[k]
    e_cs, fok = _find(ap8, fs, le, 32, 8)
    kok = fok & (e_cs > fs) & (e_cs < le) & _has(ap8, e_cs + 1, b"ptr=")
    p0 = e_cs + 5
    e_ptr = p0 + 16
    kok &= (e_ptr <= le) & ((ap[e_ptr] == 32) | (e_ptr == le))
    kptr, pok = _hex16(ap8, p0, e_ptr)
    kok &= pok
    ptr[k] = kptr
    has_name = kok & (e_ptr < le) & _has(ap8, e_ptr + 1, b"name=")
    n0 = e_ptr + 6
    e_name, fok = _find(ap8, n0, le, 32, 8)
    e_name = np.where(has_name, e_name, e_ptr)
    kok &= ~has_name | (fok & (e_name > n0))
    is_free = (kk == E_CACHE_FREE) | (kk == E_KFREE)
    # a free ends there (trailing text: parse_line decides)
    kok &= ~is_free | (e_name == le)
    ok[k] = kok
    name = np.full(n, -1, dtype=np.int32)
    nm = has_name & kok
    codes, names = _strings(ap, n0[nm], e_name[nm])
    name[k[nm]] = codes

    # allocations: bytes_req=<d> bytes_alloc=<d> gfp_flags=<tok> node=<-?d>
    sel = kok & ~is_free
    al = k[sel]
    le = e0[al]
    t = e_name[sel] + 1
    aok = _has(ap8, t, b"bytes_req=")
    b0 = t + 10
    e_b, fok = _find(ap8, b0, le, 32, 2)
    breq, bok = _dec8(ap8, b0, e_b)
    aok &= fok & bok & _has(ap8, e_b, b" bytes_alloc=")
    a0 = e_b + 13
    e_a, fok = _find(ap8, a0, le, 32, 2)
    balloc, bok = _dec8(ap8, a0, e_a)
    aok &= fok & bok & _has(ap8, e_a, b" gfp_flags=")
    g0 = e_a + 11
    e_g, fok = _find(ap8, g0, le, 32, 8)
    aok &= fok & (e_g > g0) & _has(ap8, e_g, b" node=")
    nd0 = e_g + 6
    neg = ap[nd0] == ord("-")
    e_nd, fok = _find(ap8, nd0, le, 32, 2)
    nval, nok = _dec8(ap8, nd0 + neg, e_nd)
    aok &= fok & nok & (e_nd - nd0 - neg <= 6)
    ok[al] = aok
    alv = al[aok]
    bytes_req = np.zeros(n, dtype=np.int32)
    bytes_alloc = np.zeros(n, dtype=np.int32)
    node = np.full(n, -1, dtype=np.int32)
    bytes_req[alv] = breq[aok]
    bytes_alloc[alv] = balloc[aok]
    node[alv] = np.where(neg, -nval, nval)[aok]
    gfp = np.full(n, -1, dtype=np.int32)
    codes, gfps = _strings(ap, g0[aok], e_g[aok])
    gfp[alv] = codes
    cs = np.full(n, -1, dtype=np.int32)
    codes, css = _strings(ap, (fstart[k])[sel][aok], e_cs[sel][aok])
    cs[alv] = codes
    # a free's name where its line failed later: not read (slow line)
    name[~ok] = -1
    fast = ok | rcu_ok
    return Block(
        first=first,
        data=data,
        starts=starts.astype(np.int32) if len(data) < 1 << 31 else starts,
        ends=ends.astype(np.int32) if len(data) < 1 << 31 else ends,
        fast=fast,
        irq=irq & fast,
        kind=np.where(fast, kind, 0).astype(np.int8),
        cpu=cpu.astype(np.int16),
        ts=ts,
        ptr=ptr,
        name=name,
        bytes_req=bytes_req,
        bytes_alloc=bytes_alloc,
        gfp=gfp,
        node=node,
        call_site=cs,
        names=names,
        gfps=gfps,
        call_sites=css,
    )
