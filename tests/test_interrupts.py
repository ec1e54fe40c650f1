"""Ctrl-C (SIGINT) stops a compiled run that has no callbacks, forward and
gradient, and leaves nothing behind (issue 15, item 5).

A child interpreter starts a long run (several seconds), the test sends SIGINT
once the child reports that the phase under test is running, and checks that
the child raised KeyboardInterrupt *during* the run: the backend had been asked
for fewer steps than the run has when the interrupt arrived. Before the fix the
compiled core got every step in one call (so it had been asked for all of
them) and ignored the signal until it returned. No timing is asserted;
``python tests/test_interrupts.py`` prints the latency from SIGINT to the
child's exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent(r"""
    import json, os, signal, sys
    # Python leaves SIGINT ignored when it starts with SIGINT ignored (a job
    # started in the background by a shell): install its Ctrl-C handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    import wavecore
    from wavecore.backends import cpu

    mode, device, storage = sys.argv[1], sys.argv[2], sys.argv[3]
    asked = {"forward": 0, "adjoint": 0}
    announced = []

    def announce(phase):
        if phase == mode.split("-")[0] and not announced:
            announced.append(phase)
            print("RUNNING", flush=True)

    def wrap(cls, name, phase):
        original = getattr(cls, name)
        def call(self, t, n):
            announce(phase)
            asked[phase] = max(asked[phase], (t + n) if phase == "forward" else n + asked[phase])
            return original(self, t, n)
        setattr(cls, name, call)

    if device == "cpu":
        wrap(cpu.CpuBackend, "forward", "forward")
        wrap(cpu.CpuBackend, "adjoint", "adjoint")
    else:
        from wavecore._gpu.launch import CudaBackend
        wrap(CudaBackend, "forward", "forward")
        wrap(CudaBackend, "adjoint", "adjoint")

    n, shots = (300, 2) if device == "cpu" else (120, 1)
    nt = int(sys.argv[4])
    eps = np.full((n, n), 4.0, np.float32)
    sig = np.full((n, n), 1e-3, np.float32)
    mu = np.ones((n, n), np.float32)
    dt = 0.9 * wavecore.max_stable_dt((0.01, 0.01), 1.5e8, 2)
    w = wavecore.ricker(4e8, nt, dt, dtype=np.float32)
    amp = np.ascontiguousarray(np.broadcast_to(w, (shots, 1, nt)))
    src = np.array([[[10, 20 + 40 * s]] for s in range(shots)])
    rec = np.array([[[12, x] for x in range(5, n - 5, 20)]] * shots)
    kw = dict(device=device)
    if device == "cpu":
        kw["n_threads"] = 1
    if storage != "none":  # snapshots on disk, in the given folder
        kw.update(requires_grad=("epsilon",), storage_mode="disk", storage_path=storage,
                  model_gradient_sampling_interval=max(1, nt // 8))
    elif mode.startswith("adjoint"):
        kw.update(requires_grad=("source_amplitude",))
    result = None
    try:
        result = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, **kw)
        if mode.startswith("adjoint"):
            result.vjp(np.ones_like(result.receiver_data))
    except KeyboardInterrupt:
        left = sorted(os.listdir(storage)) if storage != "none" else []
        closed = None if result is None or result.gradient is None else result.gradient.closed
        print("INTERRUPTED " + json.dumps(dict(asked=asked, nt=nt, left=left, closed=closed)),
              flush=True)
        sys.exit(3)
    print("FINISHED", flush=True)
""")


def interrupt(mode: str, device: str, storage: str, nt: int, wait: float = 0.3):
    """Run the child, SIGINT it ``wait`` s after the phase starts; returns
    (its report, seconds from SIGINT to exit, return code)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, device, storage, str(nt)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "RUNNING", (line, proc.stderr.read())
        time.sleep(wait)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        latency = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out, err, latency, proc.returncode


def _report(out: str) -> dict:
    import json  # noqa: PLC0415

    lines = [x for x in out.splitlines() if x.startswith("INTERRUPTED ")]
    assert lines, f"the run was not interrupted: {out!r}"
    return json.loads(lines[0].split(" ", 1)[1])


@pytest.mark.parametrize("phase", ["forward", "adjoint"])
def test_ctrl_c_stops_compiled_run(phase):
    out, err, _, rc = interrupt(phase, "cpu", "none", 20000 if phase == "forward" else 8000)
    assert rc == 3, (out, err)
    report = _report(out)
    # The backend had not been handed the whole run when the interrupt came.
    assert report["asked"][phase] < report["nt"], report
    if phase == "adjoint":
        assert report["closed"] is True  # vjp freed its buffers


def test_ctrl_c_removes_disk_snapshots(tmp_path):
    out, err, _, rc = interrupt("forward-disk", "cpu", str(tmp_path), 20000)
    assert rc == 3, (out, err)
    report = _report(out)
    assert report["asked"]["forward"] < report["nt"], report
    assert report["left"] == [] and list(tmp_path.iterdir()) == []


if __name__ == "__main__":  # latency from SIGINT to the child's exit
    import tempfile  # noqa: PLC0415

    for mode, device, nt in (("forward", "cpu", 20000), ("adjoint", "cpu", 8000),
                             ("forward-disk", "cpu", 20000),
                             ("forward", "cuda-emulated", 4000),
                             ("adjoint", "cuda-emulated", 1500)):
        with tempfile.TemporaryDirectory() as tmp:
            out, err, latency, rc = interrupt(mode, device,
                                              tmp if mode.endswith("disk") else "none", nt,
                                              wait=1.0)
        state = "KeyboardInterrupt" if rc == 3 else f"rc {rc}: {out.strip()[-200:]}"
        print(f"{mode:13s} {device:14s} nt={nt:6d}: SIGINT -> exit {latency:.3f} s ({state})")


def _small_run(**kw):
    import numpy as np  # noqa: PLC0415

    import wavecore  # noqa: PLC0415

    n, nt = 40, 120
    eps = np.full((n, n), 4.0, np.float32)
    eps[20:] = 9.0
    sig = np.full((n, n), 2e-3, np.float32)
    mu = np.ones((n, n), np.float32)
    dt = 0.9 * wavecore.max_stable_dt((0.01, 0.01), 1.5e8, 2)
    amp = np.ascontiguousarray(np.broadcast_to(
        wavecore.ricker(8e8, nt, dt, dtype=np.float32), (2, 1, nt)))
    src = np.array([[[5, 10]], [[5, 30]]])
    rec = np.array([[[6, x] for x in range(2, 38, 3)]] * 2)
    res = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, pml_width=8,
                        requires_grad=("epsilon", "sigma", "source_amplitude"), **kw)
    g = res.vjp(np.cos(np.arange(res.receiver_data.size, dtype=np.float32)).reshape(
        res.receiver_data.shape))
    return res.receiver_data, dict(res.final_state), g


@pytest.mark.parametrize("device", ["cpu", "cuda-emulated"])
def test_chunked_calls_are_bit_identical(monkeypatch, device):
    """One backend call per range and one call per step give the same bits."""
    import numpy as np  # noqa: PLC0415

    from wavecore import _stepping  # noqa: PLC0415

    monkeypatch.setattr(_stepping, "CHUNK_SECONDS", None)
    data0, state0, g0 = _small_run(device=device)
    monkeypatch.setattr(_stepping, "CHUNK_SECONDS", 0.0)  # every call one step
    data1, state1, g1 = _small_run(device=device)
    assert data0.tobytes() == data1.tobytes()
    for k in state0:
        assert state0[k].tobytes() == state1[k].tobytes(), k
    for k in ("epsilon", "sigma", "source_amplitude"):
        assert np.asarray(getattr(g0, k)).tobytes() == np.asarray(getattr(g1, k)).tobytes(), k
