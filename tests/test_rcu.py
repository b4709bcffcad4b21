"""The explicit RCU model: trace-driven completion of one callback."""

from __future__ import annotations

from slubsim.rcu import Rcu


def test_run_one_takes_the_oldest_callback_queued_on_the_event_cpu() -> None:
    rcu = Rcu()
    ran: list[tuple[str, int]] = []
    a, b = object(), object()
    rcu.call_rcu(0, lambda cpu: ran.append(("a0", cpu)), tag=a)
    rcu.call_rcu(1, lambda cpu: ran.append(("a1", cpu)), tag=a)
    rcu.call_rcu(1, lambda cpu: ran.append(("b1", cpu)), tag=b)
    rcu.call_rcu(1, lambda cpu: ran.append(("a1bis", cpu)), tag=a)
    # the trace shows a callback of `a` running on CPU 1: CPU 1's oldest `a`
    assert rcu.run_one(a, cpu=1) and ran == [("a1", 1)]
    # none of `b` on CPU 0: fall back to the oldest `b` anywhere, run on CPU 0
    assert rcu.run_one(b, cpu=0) and ran[-1] == ("b1", 0)
    # without a CPU: the oldest `a`, on its queueing CPU
    assert rcu.run_one(a) and ran[-1] == ("a0", 0)
    assert rcu.run_one(a, cpu=3) and ran[-1] == ("a1bis", 3)
    assert not rcu.run_one(a, cpu=1) and rcu.pending() == 0
    assert rcu.completed_callbacks == 4
