"""The compiled core against the numpy reference (and against itself).

The reference is an independent whole-array implementation; the Cython core
maps rows onto the shared C++ cell updates. In float64 they agree bit for
bit (receiver data and every array of the final state) for every order, CPML
layout and spacing: both evaluate the same expressions in the same order and
the core is built without FMA contraction or fast math (test_architecture).
bench/reference_parity.py measures these cases and the gradients.
"""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, rel_err, stable_dt

ORDERS = (2, 4, 6, 8)
PMLS = (0, 4, (3, 0, 0, 5), (0, 2, 6, 1))


def both(*args, **kwargs):
    ref = wavecore.tm2d(*args, python_backend=True, **kwargs)
    cpu = wavecore.tm2d(*args, **kwargs)
    return ref, cpu


def assert_same(ref, cpu, tol):
    """Within ``tol`` relative; ``tol=0``: bit for bit."""
    if tol == 0:
        np.testing.assert_array_equal(cpu.receiver_data, ref.receiver_data)
        for name, value in ref.final_state.items():
            np.testing.assert_array_equal(cpu.final_state[name], value, err_msg=name)
        return
    assert rel_err(cpu.receiver_data, ref.receiver_data) <= tol
    for name, value in ref.final_state.items():
        if value.size:
            assert rel_err(cpu.final_state[name], value) <= tol, name


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("pml", PMLS)
def test_reference_vs_cpu_float64(order, pml):
    nz, nx, nt = 19, 23, 40
    spacing = (0.01, 0.013)  # dz != dx
    eps, sig, mu = random_model(nz, nx, seed=order)
    amp, src, rec = random_acquisition(nz, nx, 2, 3, 5, nt, seed=order + 7)
    dt = stable_dt(spacing, eps.min(), mu.min())
    ref, cpu = both(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order, pml_width=pml)
    assert ref.step_ratio == 1
    assert np.abs(ref.receiver_data).max() > 0
    assert_same(ref, cpu, 0)


@pytest.mark.parametrize("order", (2, 4, 8))
def test_float32_close_to_float64(order):
    # float32 runs keep ~6 digits of the receiver data (docs/performance.md):
    # measured 2.7e-6, 1.2e-6, 4.6e-6 for orders 2, 4, 8 over 300 steps.
    nz, nx, nt = 40, 50, 300
    eps, sig, mu = random_model(nz, nx, seed=order)
    amp, src, rec = random_acquisition(nz, nx, 2, 2, 6, nt, seed=3)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    r64 = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, stencil=order, pml_width=10)
    f32 = [a.astype(np.float32) for a in (eps, sig, mu, amp)]
    r32 = wavecore.tm2d(*f32[:3], 0.01, dt, f32[3], src, rec, stencil=order, pml_width=10)
    assert r32.receiver_data.dtype == np.float32
    error = rel_err(r32.receiver_data, r64.receiver_data)
    print(f"stencil {order}: float32 vs float64 receivers {error:.1e}")  # pytest -s shows it
    assert 1e-8 < error <= 1e-5, error


@pytest.mark.parametrize("order", (2, 8))
def test_reference_vs_cpu_float32(order):
    nz, nx, nt = 21, 18, 50
    spacing = (0.012, 0.01)
    eps, sig, mu = random_model(nz, nx, np.float32, seed=3)
    amp, src, rec = random_acquisition(nz, nx, 2, 2, 4, nt, np.float32)
    dt = stable_dt(spacing, float(eps.min()), float(mu.min()))
    ref, cpu = both(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order, pml_width=5)
    assert ref.receiver_data.dtype == np.float32
    assert_same(ref, cpu, 1e-5)


@pytest.mark.parametrize("shared_shots", (True, False))
def test_batched_models_equal_separate_runs(backend, shared_shots):
    B, S, nz, nx, nt = 3, 2, 16, 14, 30
    spacing = 0.01
    eps, sig, mu = random_model(nz, nx, seed=11, batch=B)
    dt = stable_dt((spacing, spacing), eps.min(), mu.min())
    acq = [random_acquisition(nz, nx, S, 2, 3, nt, seed=20 + b) for b in range(B)]
    if shared_shots:
        amp, src, rec = acq[0]
        per_model = [acq[0]] * B
    else:
        amp, src, rec = (np.stack([a[i] for a in acq]) for i in range(3))
        per_model = acq
    kwargs = dict(stencil=4, pml_width=3)
    if backend == "reference":
        kwargs["python_backend"] = True
    batched = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, **kwargs)
    assert batched.receiver_data.shape == (B, S, 3, nt)
    assert batched.final_state["ey"].shape == (B, S, nz + 6, nx + 6)
    for b in range(B):
        single = wavecore.tm2d(eps[b], sig[b], mu[b], spacing, dt, *per_model[b], **kwargs)
        np.testing.assert_array_equal(batched.receiver_data[b], single.receiver_data)
        for name, value in single.final_state.items():
            np.testing.assert_array_equal(batched.final_state[name][b], value)


def test_duplicate_source_cells_add_up(backend):
    nz, nx, nt = 15, 15, 35
    eps, sig, mu = random_model(nz, nx, seed=5)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, nt))
    rec = np.array([[[3, 4], [10, 12]]])
    kwargs = dict(python_backend=backend == "reference", pml_width=4)
    split = wavecore.tm2d(eps, sig, mu, 0.01, dt, np.stack([a, b])[None],
                          np.array([[[7, 7], [7, 7]]]), rec, **kwargs)
    merged = wavecore.tm2d(eps, sig, mu, 0.01, dt, (a + b)[None, None],
                           np.array([[[7, 7]]]), rec, **kwargs)
    assert rel_err(split.receiver_data, merged.receiver_data) <= 1e-13


def test_thread_count_does_not_change_results():
    nz, nx, nt = 40, 33, 60
    eps, sig, mu = random_model(nz, nx, seed=2)
    amp, src, rec = random_acquisition(nz, nx, 3, 2, 6, nt)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    runs = [wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, stencil=6, pml_width=7,
                          n_threads=n) for n in (1, 2, 3)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.receiver_data, runs[0].receiver_data)
        for name in run.final_state:
            np.testing.assert_array_equal(run.final_state[name], runs[0].final_state[name])


def test_single_shot_many_threads_matches_reference():
    # One shot split over threads by rows: the row partition must not matter.
    nz, nx, nt = 30, 25, 45
    eps, sig, mu = random_model(nz, nx, seed=9)
    amp, src, rec = random_acquisition(nz, nx, 1, 1, 3, nt)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    ref = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, stencil=4, python_backend=True)
    cpu = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, stencil=4, n_threads=4)
    assert_same(ref, cpu, 0)


def test_one_cell_model_and_zero_receivers(backend):
    eps, sig, mu = (np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1)))
    dt = stable_dt((0.01, 0.01))
    amp = np.ones((1, 1, 5))
    res = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, np.zeros((1, 1, 2), int), None,
                        pml_width=2, python_backend=backend == "reference")
    assert res.receiver_data.shape == (1, 0, 5)
    assert np.abs(res.final_state["ey"]).max() > 0
