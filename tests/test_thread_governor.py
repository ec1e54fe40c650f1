"""The default thread count follows CPU contention (issue 15, item 7): a run
whose threads wait for a CPU drops threads between the calls of its time loop,
takes them back when cores fall idle, and computes the same bits. The counters
(Linux schedstat, /proc/stat) and the clock are faked: no timing is asserted."""

from __future__ import annotations

import numpy as np
import pytest

import wavecore
from wavecore import _stepping
from wavecore.backends import cpu


class FakeMachine:
    """A clock that advances 10 ms per kernel call, with run-queue wait and
    idle time accruing at set rates."""

    def __init__(self, starved=0.0, idle=0.0):
        self.now, self.wait, self.idle = 0.0, 0, 0.0
        self.starved, self.idle_rate = starved, idle

    def tick(self, seconds=0.01):
        self.now += seconds
        self.wait += int(self.starved * seconds * 1e9)
        self.idle += self.idle_rate * seconds

    def install(self, monkeypatch):
        monkeypatch.setattr(cpu, "_run_queue_ns", lambda: self.wait)
        monkeypatch.setattr(cpu, "_idle_cpu_seconds", lambda: self.idle)
        monkeypatch.setattr(cpu.ThreadGovernor, "clock", staticmethod(lambda: self.now))


def drive(governor, machine, calls):
    counts = []
    for _ in range(calls):
        governor.before()
        counts.append(governor.n)
        machine.tick()
        governor.after()
    return counts


def test_governor_drops_and_restores_threads(monkeypatch):
    machine = FakeMachine(starved=0.5)  # one of two threads waits half the time
    machine.install(monkeypatch)
    g = cpu.ThreadGovernor(2)
    assert g.follow_contention()
    counts = drive(g, machine, 10)
    assert counts[0] == 2 and counts[-1] == 1
    machine.starved, machine.idle_rate = 0.0, 0.0  # still no idle core: stay at 1
    assert drive(g, machine, 60) == [1] * 60
    machine.idle_rate = 1.0  # a core fell idle: back to 2
    assert drive(g, machine, 60)[-1] == 2
    assert [n for _, n in g.history] == [1, 2]


def test_governor_keeps_threads_on_an_idle_machine(monkeypatch):
    machine = FakeMachine(starved=0.01, idle=0.0)
    machine.install(monkeypatch)
    g = cpu.ThreadGovernor(2)
    g.follow_contention()
    assert drive(g, machine, 100) == [2] * 100 and g.history == []


def test_explicit_count_is_fixed(monkeypatch):
    machine = FakeMachine(starved=1.0)
    machine.install(monkeypatch)
    g = cpu.ThreadGovernor(2)  # follow_contention() not called: n_threads given
    assert drive(g, machine, 20) == [2] * 20


def _problem():
    n, nt = 60, 200
    eps = np.full((n, n), 4.0, np.float32)
    eps[30:] = 9.0
    dt = 0.9 * wavecore.max_stable_dt((0.01, 0.01), 1.5e8, 2)
    amp = np.ascontiguousarray(np.broadcast_to(
        wavecore.ricker(8e8, nt, dt, dtype=np.float32), (2, 1, nt)))
    return (eps, np.full_like(eps, 1e-3), np.ones_like(eps), 0.01, dt, amp,
            np.array([[[5, 15]], [[5, 45]]]), np.array([[[6, x] for x in range(2, 58, 4)]] * 2))


@pytest.mark.skipif(cpu.default_threads() < 2, reason="needs a default of 2+ threads")
def test_default_run_sheds_threads_under_contention(monkeypatch):
    """A default-thread run on a starved machine goes down to 1 thread (the
    kernels are called with it) and returns the bits of a fixed 2-thread run."""
    args = _problem()
    fixed = wavecore.tm2d(*args, n_threads=2, requires_grad=("epsilon",))
    g_fixed = fixed.vjp(np.ones_like(fixed.receiver_data))

    machine = FakeMachine(starved=0.8)
    machine.install(monkeypatch)
    monkeypatch.setattr(_stepping, "CHUNK_SECONDS", 0.0)  # one step per call
    seen = []
    kernels = cpu.require_cpu_core("tm2d")

    class Spy:
        def forward(self, b, order, t0, n, threads):
            seen.append(threads)
            machine.tick()
            kernels.forward(b, order, t0, n, threads)

        def adjoint(self, b, order, t_end, n, threads):
            seen.append(threads)
            machine.tick()
            kernels.adjoint(b, order, t_end, n, threads)

    monkeypatch.setattr(cpu, "require_cpu_core", lambda kind: Spy())
    res = wavecore.tm2d(*args, requires_grad=("epsilon",))
    g = res.vjp(np.ones_like(res.receiver_data))
    assert seen[0] == 2 and set(seen[10:]) == {1}, seen[:20]
    assert res.receiver_data.tobytes() == fixed.receiver_data.tobytes()
    assert g.epsilon.tobytes() == g_fixed.epsilon.tobytes()
