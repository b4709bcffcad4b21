"""An explicit RCU grace-period model (spec §16.7, §16.8).

Nothing completes by itself: the caller ends grace periods with
:meth:`Rcu.grace_period` (``synchronize_rcu``-like) or :meth:`Rcu.barrier`
(``rcu_barrier``).  A grace period runs every callback queued before it, in
queue order.

Decisions:

* an RCU callback (``rcu_free_sheaf``, ``rcu_free_sheaf_nobarn``) runs on the
  CPU that queued it, so its counters land on that CPU (the kernel runs it
  wherever the callback is invoked; usually the same CPU without offloading);
* the classic ``kvfree_rcu`` batches (objects that did not go to an rcu sheaf)
  are drained at the end of every grace period through ``kfree_bulk`` on the
  submitting CPU (the kernel's monitor drains every ``KFREE_DRAIN_JIFFIES`` or
  when a page of pointers fills).
"""

from __future__ import annotations

from collections.abc import Callable


class Rcu:
    def __init__(self) -> None:
        self.callbacks: list[tuple[int, Callable[[int], None]]] = []
        self.tags: list[object] = []
        #: when each callback was queued (:attr:`now` then)
        self.queued_at: list[float] = []
        #: the time of the event being replayed (seconds, trace clock); a
        #: trace replay keeps it current, 0.0 otherwise
        self.now = 0.0
        self.gp_seq = 0
        self.completed_callbacks = 0
        #: hooks run after the callbacks of each grace period (kvfree_rcu drain)
        self.after_gp: list[Callable[[], None]] = []

    def call_rcu(self, cpu: int, fn: Callable[[int], None], tag: object = None) -> None:
        """Queue ``fn(cpu)`` to run after the next grace period; ``tag`` lets a
        trace-driven caller complete one specific callback (:meth:`run_one`)."""
        self.callbacks.append((cpu, fn))
        self.tags.append(tag)
        self.queued_at.append(self.now)

    def run_one(self, tag: object, cpu: int | None = None, strict: bool = False) -> bool:
        """Run one queued callback carrying ``tag`` now, as when a trace shows
        that such a callback ran on ``cpu``: the oldest one queued on ``cpu``
        (without callback offloading, CONFIG_RCU_NOCB_CPU, which the traced
        kernels do not set, a CPU invokes the callbacks it queued, in order),
        else (unless ``strict``) the oldest one queued anywhere.  It runs on
        ``cpu`` when given, else on its queueing CPU.  False if there is
        none."""
        pick = -1
        for i, t in enumerate(self.tags):
            if t is tag and (cpu is None or self.callbacks[i][0] == cpu):
                pick = i
                break
        if pick < 0 and cpu is not None and not strict:
            for i, t in enumerate(self.tags):
                if t is tag:
                    pick = i
                    break
        if pick < 0:
            return False
        self._run(pick, cpu)
        return True

    def _run(self, pick: int, cpu: int | None) -> None:
        qcpu, fn = self.callbacks.pop(pick)
        del self.tags[pick]
        del self.queued_at[pick]
        fn(qcpu if cpu is None else cpu)
        self.completed_callbacks += 1

    def run_overdue(self, tag: object, cpu: int, before: float) -> int:
        """Run, in queue order, every callback carrying ``tag`` that ``cpu``
        queued before ``before``; returns how many ran.

        A trace replay calls it where the trace shows a grace period ended on
        ``cpu`` late enough that the real kernel had run every callback queued
        before ``before`` (see :func:`slubsim.rcu_align.overdue_bounds`): the
        model queued more callbacks there than the kernel did, and without
        this they would wait for completions the trace never shows."""
        ran = 0
        i = 0
        while i < len(self.callbacks):
            if self.tags[i] is tag and self.callbacks[i][0] == cpu and self.queued_at[i] < before:
                self._run(i, cpu)  # (a callback may queue more: they are newer)
                ran += 1
            else:
                i += 1
        return ran

    def pending(self) -> int:
        return len(self.callbacks)

    def grace_period(self, run_hooks: bool = True) -> int:
        """End one grace period; returns how many callbacks ran."""
        cbs, self.callbacks = self.callbacks, []
        self.tags = []
        self.queued_at = []
        for cpu, fn in cbs:
            fn(cpu)
        self.gp_seq += 1
        self.completed_callbacks += len(cbs)
        if run_hooks:
            for hook in self.after_gp:
                hook()
        return len(cbs)

    def barrier(self) -> None:
        """``rcu_barrier()``: wait for every queued callback (and those they queue)."""
        self.grace_period()
        while self.callbacks:
            self.grace_period()
