"""Lost rcu_free_sheaf completions, found by aligning submissions (slubsim.rcu_align)."""

from __future__ import annotations

import random
from pathlib import Path

from slubsim.rcu_align import missed_completions
from slubsim.replay import Replayer, ReplayOptions
from slubsim.trace.ingest import ingest


def _series(n: int, lost: set[int], seed: int = 1) -> tuple[list[float], list[float]]:
    """Submissions every 10 ms; each completes 15 ms later, +-4 ms; the
    completions of the submissions in ``lost`` are not traced."""
    rnd = random.Random(seed)
    subs = [1.0 + 0.010 * i for i in range(n)]
    comps = [s + 0.015 + rnd.uniform(-0.004, 0.004) for i, s in enumerate(subs) if i not in lost]
    return subs, comps


def test_nothing_lost_finds_nothing() -> None:
    for seed in range(5):
        subs, comps = _series(300, set(), seed)
        assert missed_completions(subs, comps) == [0] * len(comps)


def test_lost_completions_are_found_where_they_were_lost() -> None:
    lost = {40, 41, 150, 260}
    subs, comps = _series(300, lost)
    out = missed_completions(subs, comps)
    assert sum(out) == 4 and min(out) == 0
    # the traced completion right after each gap carries it: the one of
    # submission 42 (index 40 among completions), 151 (148), 261 (257)
    assert {j: k for j, k in enumerate(out) if k} == {40: 2, 148: 1, 257: 1}


def test_completions_of_sheaves_from_before_the_trace_match_nothing() -> None:
    subs, comps = _series(200, set())
    early = [0.99, 0.995]  # before the first traced submission could complete
    out = missed_completions(subs, early + comps)
    assert out[:2] == [-1, -1] and out[2:] == [0] * len(comps)


def _batched(n: int) -> tuple[list[float], list[float]]:
    """Submissions every 3.3 ms; grace periods of 10-20 ms back to back,
    each ending with the callbacks queued before it began, run 5 us apart
    (as rcu_free_sheaf runs in batches)."""
    rnd = random.Random(3)
    subs = [1.0 + 0.0033 * i for i in range(n)]
    comps: list[float] = []
    k = 0
    begin = 1.0
    while k < n:
        end = begin + rnd.uniform(0.010, 0.020)
        batch = [s for s in subs[k:] if s < begin]
        comps += [end + 5e-6 * b for b in range(len(batch))]
        k += len(batch)
        begin = end
    return subs, comps


def test_a_completion_lost_in_the_last_batch_is_found() -> None:
    subs, comps = _batched(120)
    assert missed_completions(subs, comps) == [0] * len(comps)
    # the kprobe missed the last callback of the last batch: that sheaf was
    # due long before the batch, so it completed there, not after the trace
    out = missed_completions(subs, comps[:-1])
    assert out[-1] == 1 and sum(out) == 1
    # a sheaf submitted after the last batch's grace period began is in
    # flight at the end
    out = missed_completions([*subs, comps[-1] - 0.001], comps)
    assert sum(out) == 0
    # one that was queued before it began was lost in the last batch
    first_of_last = max(c for k, c in enumerate(comps) if k == 0 or c - comps[k - 1] > 0.001)
    prev = max(c for k, c in enumerate(comps) if c < first_of_last - 0.001)
    out = missed_completions([*subs, prev - 0.0005], comps)
    assert out[-1] == 1 and sum(out) == 1


def test_too_little_to_align() -> None:
    assert missed_completions([1.0, 1.01], [1.02]) == [0]
    assert missed_completions([], []) == []


def test_replay_completes_the_lost_ones(tmp_path: Path) -> None:
    """A 7.3 trace whose CPU 0 kfree_rcu's 28 maple_node objects (one rcu
    sheaf) every 10 ms, each sheaf completing 15 ms later, with the
    completion events of sheaves 10 and 25 lost: the replay completes those
    two at the next traced completion, so no sheaf is left in flight at the
    end beyond the last ones submitted; without them the model ran two
    behind for the rest of the trace."""
    cap = 28  # the model's maple_node sheaf capacity (256-byte objects)
    nsheaves, lost = 40, {10, 25}
    ev: list[tuple[float, str]] = []
    objs = [0xFFFF888140000000 + 256 * i for i in range(cap * nsheaves)]
    for i, p in enumerate(objs):
        ev.append(
            (
                0.5 + i * 1e-5,
                f"kmem_cache_alloc: call_site=f+0x1/0x2 ptr={p:x} name=maple_node "
                "bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            )
        )
    for i, p in enumerate(objs):
        ev.append(
            (
                1.0 + i * 0.010 / cap,
                f"kfree_rcu: (kvfree_call_rcu+0x0/0x2aa) ptr=0x{p:x} head=0x0 caller=z",
            )
        )
    done_ev = f'rcu_free_sheaf: (rcu_free_sheaf+0x0/0xa6) sheaf=0x1 size={cap} name="maple_node"'
    for s in range(nsheaves):
        if s not in lost:
            done = 1.0 + ((s + 1) * cap - 1) * 0.010 / cap + 0.015 + (0.002 if s % 3 else -0.002)
            ev.append((done, done_ev))
    ev.sort()
    text = "# tracer: nop\n# entries-in-buffer/entries-written: 1/1   #P:1\n" + "".join(
        f"  w-1 [000] .....  {ts:.6f}: {e}\n" for ts, e in ev
    )
    trace = tmp_path / "t.txt"
    trace.write_text(text)
    st = ingest(trace)
    rp = Replayer(st, ReplayOptions(validate=False))
    r = rp.run()
    assert rp.rcu_mode == "trace"
    warn = {w["kind"]: w["count"] for w in r["warnings"]}
    assert warn.get("rcu_sheaf_lost_event_completed") == 2
    assert "rcu_sheaf_event_without_model_sheaf" not in warn
    assert rp.kernel.rcu.pending() == 0


def test_overdue_bounds_count_batches_back() -> None:
    from slubsim.rcu_align import OVERDUE_BATCHES, overdue_bounds

    assert OVERDUE_BATCHES == 3
    # grace periods ending at 1.0 (completions 2 ms apart), 1.1, 1.2, 1.3, 1.4
    comps = [1.0, 1.002, 1.1, 1.2, 1.3, 1.3001, 1.4]
    assert overdue_bounds(comps) == [None, None, None, None, 1.0, 1.0, 1.1]
    assert overdue_bounds([]) == []


def test_rcu_run_overdue_runs_only_that_cpus_old_callbacks_in_order() -> None:
    from slubsim.rcu import Rcu

    rcu = Rcu()
    ran: list[tuple[str, int]] = []
    a, b = object(), object()
    for now, cpu, tag, name in [
        (1.00, 0, a, "a0"),
        (1.01, 1, a, "a1-other-cpu"),
        (1.02, 0, b, "b0-other-tag"),
        (1.03, 0, a, "a0-second"),
        (1.20, 0, a, "a0-late"),
    ]:
        rcu.now = now
        rcu.call_rcu(cpu, lambda run_cpu, name=name: ran.append((name, run_cpu)), tag=tag)
    assert rcu.run_overdue(a, 0, before=1.10) == 2
    assert ran == [("a0", 0), ("a0-second", 0)]
    assert rcu.pending() == 3 and rcu.queued_at == [1.01, 1.02, 1.20]
    assert rcu.run_overdue(a, 0, before=1.10) == 0


def test_replay_runs_sheaves_the_trace_never_completes(tmp_path: Path) -> None:
    """Seven maple_node rcu sheaves filled on CPU 0 within 70 ms, and only four
    completions traced, 100 ms apart (too few to align): at the fourth, the
    three sheaves submitted before the first had long run in the kernel, so
    the replay runs them there -- without the rule they stayed in flight to
    the end, their 84 objects held (what stranded 15 sheaves on numa2)."""
    cap = 28  # the model's maple_node sheaf capacity (256-byte objects)
    nsheaves = 7
    objs = [0xFFFF888140000000 + 256 * i for i in range(cap * nsheaves)]
    ev: list[tuple[float, str]] = []
    for i, p in enumerate(objs):
        ev.append(
            (
                0.5 + i * 1e-5,
                f"kmem_cache_alloc: call_site=f+0x1/0x2 ptr={p:x} name=maple_node "
                "bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 accounted=false",
            )
        )
        ev.append(
            (
                1.0 + i * 0.010 / cap,
                f"kfree_rcu: (kvfree_call_rcu+0x0/0x2aa) ptr=0x{p:x} head=0x0 caller=z",
            )
        )
    done_ev = f'rcu_free_sheaf: (rcu_free_sheaf+0x0/0xa6) sheaf=0x1 size={cap} name="maple_node"'
    ev += [(1.1 + 0.1 * k, done_ev) for k in range(4)]
    ev.sort()
    text = "# tracer: nop\n# entries-in-buffer/entries-written: 1/1   #P:1\n" + "".join(
        f"  w-1 [000] .....  {ts:.6f}: {e}\n" for ts, e in ev
    )
    trace = tmp_path / "t.txt"
    trace.write_text(text)
    rp = Replayer(ingest(trace), ReplayOptions(validate=False))
    r = rp.run()
    assert rp.rcu_mode == "trace" and rp.rcu_lost == {}  # (nothing aligned)
    warn = {w["kind"]: w["count"] for w in r["warnings"]}
    assert warn.get("rcu_sheaf_overdue_completed") == 3  # sheaves
    assert rp.kernel.rcu.pending() == 0
    model = next(iter(t.model for t in rp.tracks.values() if t.model.name == "maple_node"))
    assert model.stats()["free_rcu_sheaf"] == cap * nsheaves
