"""rcu_free_sheaf completions the trace lost, found by aligning submissions.

Under 7.x a CPU's ``kfree_rcu`` fills its ``rcu_free`` sheaf and hands it to
``call_rcu`` when it holds ``sheaf_capacity`` objects (spec §6.12); after a
grace period ``rcu_free_sheaf`` runs -- on the same CPU (the traced kernels
do not offload callbacks), callbacks in the order they were queued.  The lab
records each run with a kprobe, and the replay completes, at each such event,
the oldest sheaf the model has in flight on that CPU.  But a kprobe that fires
while another probe's handler runs on the CPU is not run (counted as missed):
``validate.rcu_sheaves_untraced`` shows the kernel filled 1,061 maple_node
rcu sheaves in forkfiles-2cpu's window where the trace shows 1,033
completions.  Every miss leaves the model one sheaf behind on that CPU for
the rest of the trace: the latency from submission to the completion the
replay pairs it with grows by one submission interval per miss (5 -> 64 ms
on CPU 0 there).

:func:`missed_completions` aligns, per (cache, CPU), the submission times the
trace implies (every ``capacity``-th ``kfree_rcu`` of the cache on the CPU)
with the traced completions, in order: each completion matches one
submission at a cost of its latency's squared deviation from the typical
latency (in units of ``sigma``), a submission may be left unmatched -- a
completion the trace lost -- at a fixed cost, and a completion may be left
unmatched before the first match (a sheaf submitted before the trace or
before the probes existed): free while no traced submission could be the one
completing, at the cost of a lost completion after that.  The typical
latency starts as the median over the first in-order pairs and is
re-estimated from the alignment three times.  The replay then completes, at
a traced completion preceded by ``k`` lost ones, ``k + 1`` sheaves; and
at the CPU's last traced completion, also the submissions after the last
aligned one made before the batch of completions before it (their grace
period had ended: lost in the last batch, not in flight at the end).

Decisions: the submission count assumes each CPU's rcu sheaf is empty when
tracing begins (true from boot; off boot the model makes the same
assumption) and that every ``kfree_rcu`` of the cache reaches it -- so it is
used on single-node machines only (a remote object goes to the kvfree batch
instead, which the trace does not tell apart without the memory map).  The
costs were set on the shared bundles against the shortfall the counters
show (forkfiles maple_node 28 by the counters, 26 found, kmalloc-96 2, 2;
mixed-4cpu maple_node 10, 9; boot-mixed maple_node 2, 4, kmalloc-96 3-4, 2).

:func:`overdue_bounds` is the other direction, on every machine: sheaves the
model submitted that the kernel never did (it fills more rcu sheaves where
it sends fewer objects to the kvfree batch) are run once the trace's own
completions show the kernel had run everything submitted by then.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

#: latency spread (s) that one unit of match cost stands for
SIGMA = 0.005
#: cost of a submission left without a traced completion (a lost event)
MISS_COST = 16.0
#: cost of a traced completion left without a submission (after the first
#: match: practically forbidden)
UNMATCHED_COST = 1000.0
#: a grace period takes at least this long (s): shorter pairings are invalid
MIN_LATENCY = 0.0005
#: completions closer than this (s) ran in one batch, at one grace period's end
BATCH_GAP = 0.001
#: how far the alignment may run ahead of or behind the in-order pairing
BAND_AHEAD = 60
BAND_BEHIND = 20


def _align(
    subs: Sequence[float], comps: Sequence[float], typical: float
) -> list[tuple[str, int, int]]:
    """Minimum-cost alignment (edit distance in a band): ``("m", i, j)``
    pairs submission ``i - 1`` with completion ``j - 1``, ``("s", i, j)``
    leaves submission ``i - 1`` unmatched, ``("c", i, j)`` completion
    ``j - 1``.  Submissions after the last completion are free (in flight at
    the end).  Row ``j`` keeps the cells ``i = j + d - BAND_BEHIND`` for
    ``0 <= d < width``."""
    n, m = len(subs), len(comps)
    inf = float("inf")
    width = BAND_BEHIND + BAND_AHEAD + 1
    first = subs[0] + MIN_LATENCY if n else inf
    prev = [inf] * width
    moves: list[bytearray] = []
    for j in range(m + 1):
        cur = [inf] * width
        mv = bytearray(width)  # 0 none, 1 match, 2 skip submission, 3 skip completion
        cj = comps[j - 1] if j else 0.0
        unmatched = 0.0 if cj < first else MISS_COST
        for d in range(width):
            i = j + d - BAND_BEHIND
            if i < 0 or i > n:
                continue
            if i == 0 and j == 0:
                cur[d] = 0.0
                continue
            best, how = inf, 0
            if i and j:
                lat = cj - subs[i - 1]
                if lat >= MIN_LATENCY and prev[d] < inf:
                    v = prev[d] + ((lat - typical) / SIGMA) ** 2
                    if v < best:
                        best, how = v, 1
            if i and d and cur[d - 1] < inf:
                v = cur[d - 1] + MISS_COST
                if v < best:
                    best, how = v, 2
            if j and d + 1 < width and prev[d + 1] < inf:
                # before any submission matched: a sheaf from before the trace
                # -- free while no traced submission could be the one
                # completing, else as dear as a lost completion
                v = prev[d + 1] + (UNMATCHED_COST if i else unmatched)
                if v < best:
                    best, how = v, 3
            if how:
                cur[d] = best
                mv[d] = how
        moves.append(mv)
        prev = cur
    ends = [(prev[d], d) for d in range(width) if prev[d] < inf]
    if not ends:
        return []
    _, d = min(ends)
    j = m
    path: list[tuple[str, int, int]] = []
    while True:
        i = j + d - BAND_BEHIND
        if i == 0 and j == 0:
            break
        how = moves[j][d]
        path.append(("msc"[how - 1], i, j))
        if how == 1:
            j -= 1
        elif how == 2:
            d -= 1
        else:
            j -= 1
            d += 1
    path.reverse()
    return path


def _first_typical(subs: Sequence[float], comps: Sequence[float], k: int = 20) -> float:
    """A first typical latency: the median over the first ``k`` in-order
    pairs, leaving out the completions no traced submission can have made
    (sheaves from before the trace).  Few pairs: a lost completion shifts the
    in-order pairing by one submission from there on, and over 50 pairs two
    early losses (of 40 sheaves) made the start 27 ms for a true 15 ms, from
    which the alignment paired every completion one submission late."""
    valid = [c for c in comps if c >= subs[0] + MIN_LATENCY]
    lats = [c - s for s, c in zip(subs[:k], valid[:k], strict=False) if c - s >= MIN_LATENCY]
    return statistics.median(lats) if lats else 0.02


def missed_completions(subs: Sequence[float], comps: Sequence[float]) -> list[int]:
    """For each traced completion (index into ``comps``), how many
    completions the trace lost just before it on this CPU: the submissions
    the alignment leaves unmatched between its match and the previous one
    (see the module docstring); -1 for a completion matched to no submission
    (a sheaf submitted before the trace: the model has none for it).  All
    zeros when there is too little to align."""
    out = [0] * len(comps)
    if len(comps) < 8 or len(subs) < 8:
        return out
    typical = _first_typical(subs, comps)
    path: list[tuple[str, int, int]] = []
    for _ in range(3):
        path = _align(subs, comps, typical)
        lats = [comps[j - 1] - subs[i - 1] for how, i, j in path if how == "m"]
        if not lats:
            return out
        typical = statistics.median(lats)
    pending = 0
    for how, _i, j in path:
        if how == "s":
            pending += 1
        elif how == "m":
            out[j - 1] = pending
            pending = 0
        else:
            out[j - 1] = -1
    # submissions after the last one aligned are in flight at the end -- but
    # callbacks queued before a grace period began run when it ends, and the
    # CPU's last batch of completions ends the grace period that began about
    # when the batch before it ran: a sheaf submitted before that batch was
    # lost in the last one (boot-mixed kmalloc-96: the 65th sheaf, submitted
    # at 6.6420 s, batches at 6.6641 and 6.6695 s; the counters say 65 ran)
    done = path[-1][1] if path else 0
    starts = [c for k, c in enumerate(comps) if k == 0 or c - comps[k - 1] > BATCH_GAP]
    if len(starts) >= 2 and out[-1] >= 0:
        out[-1] += sum(1 for t in subs[done:] if t < starts[-2])
    return out


#: how many grace periods back a sheaf must have been submitted for the kernel
#: to have run it by the current one (see :func:`overdue_bounds`)
OVERDUE_BATCHES = 3
#: completions closer than this (s) are taken to end one grace period: its
#: callbacks may run in several softirq passes (forkfiles maple_node CPU 1:
#: 5.6660 and 5.6672 s, 5.6780 and 5.6795 s), where grace periods end 6-16 ms
#: apart there (one tick is 4 ms at the traced kernels' HZ=250)
GP_GAP = 0.003


def overdue_bounds(comps: Sequence[float]) -> list[float | None]:
    """For each traced completion of one cache on one CPU, a time before
    which every sheaf that CPU submitted had run in the real kernel by then:
    the first completion of the grace period (completions ``GP_GAP`` apart)
    ``OVERDUE_BATCHES`` grace periods back; None before there are that many.

    The replay completes the oldest sheaf it has in flight at each traced
    completion.  Where the model fills more rcu sheaves than the kernel did,
    the extra ones would wait for completions the trace never shows: on a
    NUMA machine the model sends fewer objects to the classic kvfree_rcu
    batch than the kernel (its objects sit on other nodes than the kernel's;
    the alignment above is not used there), and mixed-4cpu-numa2 maple_node
    ended with 15 sheaves (480 objects) stranded, the pairing latency at
    76-144 ms on CPU 0 and 125-264 ms on CPU 1 where CPUs 2 and 3 stayed at
    25-83 ms; the objects held made it take 151 new slabs where the kernel
    took 127, and allocate 37 sheaf structs for 19.  So the replay
    also runs, at a traced completion, every sheaf of that cache the CPU
    submitted before this bound (Rcu.run_overdue).

    Decision: three grace periods back.  Callbacks queued before a grace
    period began run when it ends, so two would do if a CPU always noticed a
    grace period's end at once; it does not (boot-mixed maple_node CPU 3:
    sheaves submitted at 7.02-7.05 s ran at 7.1002 s, after completions at
    7.0605 and 7.0722 s), and two back ran sheaves early on every bundle
    (boot key counters exact 96.6 -> 93.2 %).  Three back runs 10 sheaves
    on mixed-4cpu-numa2 (alloc_slab 151 -> 130 of 127, sheaf_alloc 37 -> 23
    of 19, none left in flight at the end) and none on the single-node
    bundles, whose surplus the alignment already accounts for."""
    out: list[float | None] = []
    starts: list[float] = []
    for k, c in enumerate(comps):
        if k == 0 or c - comps[k - 1] > GP_GAP:
            starts.append(c)
        out.append(starts[-1 - OVERDUE_BATCHES] if len(starts) > OVERDUE_BATCHES else None)
    return out
