"""The line scanner of :mod:`slubsim.trace.fastparse`, in C: one pass over a
block's bytes, line by line, without the GIL.

Written in Cython's pure-Python mode: ``pip install .`` compiles it with
Cython (``setup.py``); the same source also runs as plain Python (slowly --
tests use that to check the two agree), and without the compiled extension
:func:`slubsim.trace.fastparse.parse_block` uses its numpy implementation
instead.  Both implementations accept exactly the same lines with exactly the
same values (tested on the committed traces and on mutated lines): a line is
accepted only when the result is certainly
:func:`slubsim.trace.ftrace.parse_line`'s, and the limits below (how far a
field may be searched for) are the numpy parser's window sizes, so the two
never differ in which lines are left to ``parse_line``.

Per line ``i`` the scanner writes ``starts``/``ends`` (byte offsets, the
newline excluded), and for an accepted line ``fast[i] = 1``, ``irq[i] = 1``
in irq context (see :func:`slubsim.trace.ftrace.irq_context`), ``kind``,
``cpu``, ``ts``, ``ptr``, and for allocations ``bytes_req``, ``bytes_alloc``,
``node``; strings (cache name, gfp flags, call site) as dictionary codes in
order of first appearance.  A name enters its table as soon as the line's
``call_site= ptr= name=`` part holds, also when its allocation fields fail
later (as in the numpy parser: the string tables match entry for entry).
"""

import cython

#: True when this module runs as the Cython-compiled extension
COMPILED: bool = cython.compiled

# event kinds: slubsim.trace.ftrace's E_* (fastparse checks they agree)
K_CACHE_ALLOC = cython.declare(cython.int, 1)
K_KMALLOC = cython.declare(cython.int, 2)
K_CACHE_FREE = cython.declare(cython.int, 3)
K_KFREE = cython.declare(cython.int, 4)
K_KFREE_RCU = cython.declare(cython.int, 5)
_HMASK = cython.declare(cython.ulonglong, 0xFFFFFFFF)  # the string hash stays 32-bit

#: every fixed text the scanner compares, one buffer; (offset, length) below
PATTERNS: bytes = (
    b"kmem_cache_alloc: call_site="  # 0, 28
    b"kmalloc: call_site="  # 28, 19
    b"kmem_cache_free: call_site="  # 47, 27
    b"kfree: call_site="  # 74, 17
    b"kfree_rcu: "  # 91, 11
    b"ptr=0x"  # 102, 6
    b" head=0x"  # 108, 8
    b" caller="  # 116, 8
    b"name="  # 124, 5
    b"bytes_req="  # 129, 10
    b" bytes_alloc="  # 139, 13
    b" gfp_flags="  # 152, 11
    b" node="  # 163, 6
)


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _find(
    d: cython.const[cython.uchar][::1],
    at: cython.Py_ssize_t,
    limit: cython.Py_ssize_t,
    ch: cython.uchar,
    maxlen: cython.Py_ssize_t,
) -> cython.Py_ssize_t:
    """First ``ch`` in ``[at, limit)`` searched over at most ``maxlen``
    bytes; ``limit`` when there is none; -1 when the search was cut short
    before reaching ``limit`` (the numpy parser's "not settled")."""
    stop: cython.Py_ssize_t = limit if limit < at + maxlen else at + maxlen
    p: cython.Py_ssize_t
    for p in range(at, stop):
        if d[p] == ch:
            return p
    if limit <= at + maxlen:
        return limit
    return -1


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _rfind(
    d: cython.const[cython.uchar][::1],
    end: cython.Py_ssize_t,
    floor: cython.Py_ssize_t,
    ch: cython.uchar,
    maxlen: cython.Py_ssize_t,
) -> cython.Py_ssize_t:
    """Last ``ch`` in ``[floor, end)`` within ``maxlen`` bytes of ``end``,
    else ``floor - 1`` (callers reject that)."""
    lo: cython.Py_ssize_t = floor if floor > end - maxlen else end - maxlen
    p: cython.Py_ssize_t = end - 1
    while p >= lo:
        if d[p] == ch:
            return p
        p -= 1
    return floor - 1


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _has(
    d: cython.const[cython.uchar][::1],
    at: cython.Py_ssize_t,
    le: cython.Py_ssize_t,
    pat: cython.const[cython.uchar][::1],
    off: cython.Py_ssize_t,
    n: cython.Py_ssize_t,
) -> cython.bint:
    """``d[at : at + n] == PATTERNS[off : off + n]`` within the line
    (``le`` is its end: no pattern holds a newline, so one running past
    the line never matches there either)."""
    if at < 0 or at + n > le:
        return False
    k: cython.Py_ssize_t
    for k in range(n):
        if d[at + k] != pat[off + k]:
            return False
    return True


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _dec(
    d: cython.const[cython.uchar][::1], start: cython.Py_ssize_t, end: cython.Py_ssize_t
) -> cython.longlong:
    """Value of 1..8 decimal digits ``d[start:end]``, -1 if not that."""
    if end - start < 1 or end - start > 8:
        return -1
    v: cython.longlong = 0
    p: cython.Py_ssize_t
    c: cython.int
    for p in range(start, end):
        c = d[p]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _hex_ok(
    d: cython.const[cython.uchar][::1], at: cython.Py_ssize_t, le: cython.Py_ssize_t
) -> cython.bint:
    """``d[at : at + 16]`` is 16 hex digits inside the line."""
    if at + 16 > le:
        return False
    p: cython.Py_ssize_t
    c: cython.int
    for p in range(at, at + 16):
        c = d[p]
        if not ((48 <= c <= 57) or (97 <= c <= 102) or (65 <= c <= 70)):
            return False
    return True


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _hex16(d: cython.const[cython.uchar][::1], at: cython.Py_ssize_t) -> cython.ulonglong:
    """Value of the 16 hex digits at ``at`` (checked by :func:`_hex_ok`)."""
    v: cython.ulonglong = 0
    p: cython.Py_ssize_t
    c: cython.int
    for p in range(at, at + 16):
        c = d[p]
        if c <= 57:
            c -= 48
        elif c >= 97:
            c -= 87
        else:
            c -= 55
        v = (v << 4) | cython.cast(cython.ulonglong, c)
    return v


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _flag_char(c: cython.int) -> cython.bint:
    """``[.a-zA-Z0-9]``: the irq-flags column's characters."""
    return c == 46 or (48 <= c <= 57) or (97 <= c <= 122) or (65 <= c <= 90)


@cython.cfunc
@cython.inline
@cython.nogil
@cython.exceptval(check=False)
def _irq_char(c: cython.int) -> cython.bint:
    """The irq-flags column's hardirq/softirq character: ``h``/``H`` hard
    irq, ``s`` soft irq, ``z``/``Z`` NMI (``.`` task context)."""
    return c == 104 or c == 72 or c == 115 or c == 122 or c == 90


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _intern(
    d: cython.const[cython.uchar][::1],
    s: cython.Py_ssize_t,
    e: cython.Py_ssize_t,
    t: cython.Py_ssize_t,
    tables: cython.longlong[:, ::1],
    firsts: cython.longlong[:, :, ::1],
    counts: cython.longlong[::1],
) -> cython.int:
    """Dictionary code of the string ``d[s:e]`` in table ``t`` (0: names,
    1: gfp flags, 2: call sites), codes in order of first appearance (as
    pyarrow's ``dictionary_encode``): an open-addressing hash table of
    ``code + 1`` (its size a power of two above twice the block's lines:
    never full); ``firsts[t, code]`` is the span of the code's first
    occurrence."""
    h: cython.ulonglong = 0
    p: cython.Py_ssize_t
    for p in range(s, e):
        h = (h * 31 + d[p]) & _HMASK
    mask: cython.Py_ssize_t = tables.shape[1] - 1
    slot: cython.Py_ssize_t = cython.cast(cython.Py_ssize_t, h) & mask
    code: cython.longlong
    fs: cython.Py_ssize_t
    same: cython.bint
    while True:
        code = tables[t, slot] - 1
        if code < 0:
            code = counts[t]
            counts[t] = code + 1
            tables[t, slot] = code + 1
            firsts[t, code, 0] = s
            firsts[t, code, 1] = e
            return cython.cast(cython.int, code)
        fs = firsts[t, code, 0]
        if firsts[t, code, 1] - fs == e - s:
            same = True
            for p in range(e - s):
                if d[fs + p] != d[s + p]:
                    same = False
                    break
            if same:
                return cython.cast(cython.int, code)
        slot = (slot + 1) & mask


@cython.cfunc
@cython.nogil
@cython.exceptval(check=False)
def _count_lines(d: cython.const[cython.uchar][::1]) -> cython.Py_ssize_t:
    """Newlines in ``d``: branch-free, counted 255 bytes at a time into one
    byte (the compiler vectorises that 16-32 bytes a step; a wide counter per
    byte runs at half the speed)."""
    n: cython.Py_ssize_t = len(d)
    c: cython.Py_ssize_t = 0
    p: cython.Py_ssize_t = 0
    q: cython.Py_ssize_t
    acc: cython.uchar
    while p + 255 <= n:
        acc = 0
        for q in range(p, p + 255):
            acc += d[q] == 10
        c += acc
        p += 255
    for q in range(p, n):
        c += d[q] == 10
    return c


def count_lines(data: bytes) -> int:
    """``data.count(b"\\n")`` without the GIL."""
    d: cython.const[cython.uchar][::1] = data
    c: cython.Py_ssize_t
    with cython.nogil:
        c = _count_lines(d)
    return c


def scan(
    data: bytes,
    n: cython.Py_ssize_t,
    starts: cython.longlong[::1],
    ends: cython.longlong[::1],
    fast: cython.uchar[::1],
    irq: cython.uchar[::1],
    kind: cython.schar[::1],
    cpu: cython.short[::1],
    ts: cython.double[::1],
    ptr: cython.ulonglong[::1],
    bytes_req: cython.int[::1],
    bytes_alloc: cython.int[::1],
    node: cython.int[::1],
    codes: cython.int[:, ::1],
    tables: cython.longlong[:, ::1],
    firsts: cython.longlong[:, :, ::1],
    counts: cython.longlong[::1],
) -> int:
    """Scan the ``n`` newline-terminated lines of ``data`` into the arrays
    (each of length ``n``; ``codes`` is ``n x 3`` and ``node`` pre-filled
    with -1, ``tables`` (3 x a power of two > 2n), ``firsts`` (3 x n x 2),
    ``counts`` (3) and the others with 0); returns how many lines were
    accepted.  ``codes[i]`` = the line's name, gfp flags and call site codes
    (see :func:`_intern`).  The scan runs without the GIL."""
    d: cython.const[cython.uchar][::1] = data
    pat: cython.const[cython.uchar][::1] = PATTERNS
    pos: cython.Py_ssize_t = 0
    i: cython.Py_ssize_t
    s: cython.Py_ssize_t
    le: cython.Py_ssize_t
    c: cython.int
    odd: cython.bint
    lpos: cython.Py_ssize_t
    rpos: cython.Py_ssize_t
    c1: cython.Py_ssize_t
    ls: cython.Py_ssize_t
    dot: cython.Py_ssize_t
    ipart: cython.longlong
    fpart: cython.longlong
    scale: cython.longlong
    num: cython.longlong
    j: cython.Py_ssize_t
    _j: cython.Py_ssize_t
    ntok: cython.int
    runs: cython.int
    prev: cython.bint
    bad: cython.bint
    tok0: cython.Py_ssize_t
    ev: cython.int
    fs: cython.Py_ssize_t
    e_tok: cython.Py_ssize_t
    eq: cython.Py_ssize_t
    rp0: cython.Py_ssize_t
    e_c: cython.Py_ssize_t
    e_cs: cython.Py_ssize_t
    p0: cython.Py_ssize_t
    e_ptr: cython.Py_ssize_t
    n0: cython.Py_ssize_t
    e_name: cython.Py_ssize_t
    has_name: cython.bint
    t: cython.Py_ssize_t
    e_b: cython.Py_ssize_t
    e_a: cython.Py_ssize_t
    g0: cython.Py_ssize_t
    e_g: cython.Py_ssize_t
    nd0: cython.Py_ssize_t
    neg: cython.Py_ssize_t
    e_nd: cython.Py_ssize_t
    breq: cython.longlong
    balloc: cython.longlong
    nval: cython.longlong
    cpuv: cython.longlong
    name_code: cython.int
    accepted: cython.Py_ssize_t = 0
    with cython.nogil:
        for i in range(n):
            # the line, and whether it has a tab, CR, control or non-ASCII byte
            s = pos
            le = s
            odd = False
            while True:
                c = d[le]
                if c < 32 or c > 126:
                    if c == 10:
                        break
                    odd = True
                le += 1
            pos = le + 1
            starts[i] = s
            ends[i] = le
            if odd or le == s or d[s] == 35:  # "#": headers and comments
                continue
            # "[cpu]": the line's first "[" (parse_line's lazy task match takes it)
            lpos = _find(d, s, le, 91, 64)
            if lpos < 0 or lpos >= le:
                continue
            rpos = _find(d, lpos + 1, le, 93, 8)
            if rpos < 0 or rpos >= le or rpos - lpos - 1 > 4:
                continue
            cpuv = _dec(d, lpos + 1, rpos)
            if cpuv < 0:
                continue
            # the timestamp: the token after the last space before the first ":"
            c1 = _find(d, rpos + 1, le, 58, 32)
            if c1 < 0 or c1 >= le or d[rpos + 1] != 32:
                continue
            ls = _rfind(d, c1, rpos + 1, 32, 24)
            if ls <= rpos:
                continue
            dot = _rfind(d, c1, ls + 1, 46, 24)
            if dot <= ls:
                continue
            ipart = _dec(d, ls + 1, dot)
            fpart = _dec(d, dot + 1, c1)
            if ipart < 0 or fpart < 0:
                continue
            scale = 1
            for _j in range(c1 - dot - 1):
                scale *= 10
            num = ipart * scale + fpart
            if (num >> 53) != 0:  # >= 2**53: num / 10**k might not round like float() of the text
                continue
            # between "]" and the timestamp: spaces and at most one irq-flags
            # token of 4..6 of [.a-zA-Z0-9]
            if ls - rpos > 16:
                continue
            ntok = 0
            runs = 0
            prev = False
            bad = False
            tok0 = 0
            for j in range(rpos + 1, ls + 1):
                c = d[j]
                if c != 32:
                    ntok += 1
                    if not prev:
                        runs += 1
                        if runs == 1:
                            tok0 = j
                    prev = True
                    if not _flag_char(c):
                        bad = True
                else:
                    prev = False
            if bad or not (ntok == 0 or (4 <= ntok <= 6 and runs == 1)):
                continue
            # the event name right after ": "
            if d[c1 + 1] != 32:
                continue
            ev = 0
            name_code = -1
            if _has(d, c1 + 2, le, pat, 0, 28):
                ev = K_CACHE_ALLOC
                fs = c1 + 2 + 28
            elif _has(d, c1 + 2, le, pat, 28, 19):
                ev = K_KMALLOC
                fs = c1 + 2 + 19
            elif _has(d, c1 + 2, le, pat, 47, 27):
                ev = K_CACHE_FREE
                fs = c1 + 2 + 27
            elif _has(d, c1 + 2, le, pat, 74, 17):
                ev = K_KFREE
                fs = c1 + 2 + 17
            elif _has(d, c1 + 2, le, pat, 91, 11):
                ev = K_KFREE_RCU
                fs = c1 + 2 + 11
            else:
                continue
            if ev == K_KFREE_RCU:
                # "(probe) ptr=0x<16 hex> head=0x<16 hex> caller=<tok>"
                e_tok = _find(d, fs, le, 32, 64)
                if e_tok < 0 or e_tok <= fs:
                    continue
                eq = _find(d, fs, e_tok, 61, 64)
                if eq != e_tok or not _has(d, e_tok + 1, le, pat, 102, 6):
                    continue
                rp0 = e_tok + 7
                if not (
                    _hex_ok(d, rp0, le)
                    and _has(d, rp0 + 16, le, pat, 108, 8)
                    and _hex_ok(d, rp0 + 24, le)
                    and _has(d, rp0 + 40, le, pat, 116, 8)
                ):
                    continue
                e_c = _find(d, rp0 + 48, le, 32, 64)
                if e_c != le or e_c <= rp0 + 48:
                    continue
                ptr[i] = _hex16(d, rp0)
            else:
                # call_site=<tok> ptr=<16 hex>[ name=<tok>]
                e_cs = _find(d, fs, le, 32, 64)
                if e_cs < 0 or e_cs <= fs or e_cs >= le or not _has(d, e_cs + 1, le, pat, 102, 4):
                    continue
                p0 = e_cs + 5
                e_ptr = p0 + 16
                if e_ptr > le or not (e_ptr == le or d[e_ptr] == 32) or not _hex_ok(d, p0, le):
                    continue
                has_name = e_ptr < le and _has(d, e_ptr + 1, le, pat, 124, 5)
                n0 = e_ptr + 6
                if has_name:
                    e_name = _find(d, n0, le, 32, 64)
                    if e_name < 0 or e_name <= n0:
                        continue
                else:
                    e_name = e_ptr
                if ev == K_CACHE_FREE or ev == K_KFREE:
                    if e_name != le:  # a free ends there (trailing text: parse_line decides)
                        continue
                if has_name:
                    name_code = _intern(d, n0, e_name, 0, tables, firsts, counts)
                ptr[i] = _hex16(d, p0)
                if ev == K_CACHE_ALLOC or ev == K_KMALLOC:
                    # bytes_req=<d> bytes_alloc=<d> gfp_flags=<tok> node=<-?d>
                    t = e_name + 1
                    if not _has(d, t, le, pat, 129, 10):
                        continue
                    e_b = _find(d, t + 10, le, 32, 16)
                    if e_b < 0:
                        continue
                    breq = _dec(d, t + 10, e_b)
                    if breq < 0 or not _has(d, e_b, le, pat, 139, 13):
                        continue
                    e_a = _find(d, e_b + 13, le, 32, 16)
                    if e_a < 0:
                        continue
                    balloc = _dec(d, e_b + 13, e_a)
                    if balloc < 0 or not _has(d, e_a, le, pat, 152, 11):
                        continue
                    g0 = e_a + 11
                    e_g = _find(d, g0, le, 32, 64)
                    if e_g < 0 or e_g <= g0 or not _has(d, e_g, le, pat, 163, 6):
                        continue
                    nd0 = e_g + 6
                    neg = 1 if d[nd0] == 45 else 0
                    e_nd = _find(d, nd0, le, 32, 16)
                    if e_nd < 0 or e_nd - nd0 - neg > 6:
                        continue
                    nval = _dec(d, nd0 + neg, e_nd)
                    if nval < 0:
                        continue
                    bytes_req[i] = cython.cast(cython.int, breq)
                    bytes_alloc[i] = cython.cast(cython.int, balloc)
                    node[i] = cython.cast(cython.int, -nval if neg else nval)
                    codes[i, 1] = _intern(d, g0, e_g, 1, tables, firsts, counts)
                    codes[i, 2] = _intern(d, fs, e_cs, 2, tables, firsts, counts)
            codes[i, 0] = name_code
            fast[i] = 1
            if ntok >= 4 and _irq_char(d[tok0 + 2]):
                irq[i] = 1
            kind[i] = cython.cast(cython.schar, ev)
            cpu[i] = cython.cast(cython.short, cpuv)
            ts[i] = cython.cast(cython.double, num) / cython.cast(cython.double, scale)
            accepted += 1
    return accepted
