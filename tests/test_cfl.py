"""Stencil-aware CFL condition and band-limited sub-stepping."""

import dataclasses

import numpy as np
import pytest

import wavecore
from wavecore import _driver
from wavecore._tm2d import TM2D
from wavecore.backends import backend_class
from wavecore.cfl import CFL_SAFETY


def test_limit_accounts_for_the_stencil():
    h, v = (0.01, 0.02), 1.5e8
    base = 1.0 / (v * np.sqrt(1 / h[0] ** 2 + 1 / h[1] ** 2))
    assert wavecore.max_stable_dt(h, v, 2) == pytest.approx(base)
    assert wavecore.max_stable_dt(h, v, 4) == pytest.approx(base / (9 / 8 + 1 / 24))
    assert wavecore.max_stable_dt(h, v, 8) < wavecore.max_stable_dt(h, v, 6)


def test_user_dt_below_the_limit_is_kept():
    limit = wavecore.max_stable_dt((0.01, 0.01), wavecore.C0, 4)
    dt = 0.95 * limit
    assert wavecore.cfl_condition(0.01, dt, wavecore.C0, 4) == (dt, 1)
    inner, ratio = wavecore.cfl_condition((0.01, 0.01), 2.5 * limit, wavecore.C0, 4)
    assert ratio == int(np.ceil(2.5 / CFL_SAFETY)) and inner == pytest.approx(2.5 * limit / ratio)


def _growth(stencil, dt_fraction):
    """Max |Ey| after 400 steps from random fields in a closed box, relative to
    the start, with the internal step forced to dt_fraction * limit."""
    n = 24
    eps, sig, mu = np.ones((n, n)), np.zeros((n, n)), np.ones((n, n))
    limit = wavecore.max_stable_dt((0.01, 0.01), wavecore.C0, stencil)
    plan, models, acq, _ = _driver.plan_run(
        TM2D, eps, sig, mu, 0.01, limit, None, None, None, stencil=stencil, pml_width=0,
        nt=400, n_threads=1)
    plan = dataclasses.replace(plan, inner_dt=dt_fraction * limit, step_ratio=1)
    rng = np.random.default_rng(0)
    start = {"ey": rng.standard_normal((1, n, n))}  # excites every mode, the highest too
    buffers = _driver.prepare_buffers(TM2D, plan, models, acq, start)
    backend_class("tm2d", "cpu")(plan, buffers).forward(0, plan.nt_internal)
    return np.abs(buffers.ey).max() / np.abs(start["ey"]).max()


@pytest.mark.parametrize("stencil", (2, 4, 8))
def test_the_limit_is_the_real_stability_limit(stencil):
    # Just below the stencil's limit the box stays bounded; just above, the
    # highest mode grows exponentially. TIDE's stencil-blind limit (that of
    # order 2) is unstable for orders 4-8.
    assert _growth(stencil, 0.98) < 10
    assert _growth(stencil, 1.03) > 1e6
    if stencil > 2:
        tide_fraction = 0.99 * wavecore.max_stable_dt((0.01, 0.01), wavecore.C0, 2) / \
            wavecore.max_stable_dt((0.01, 0.01), wavecore.C0, stencil)
        assert _growth(stencil, tide_fraction) > 1e6


def test_substepped_run_matches_a_fine_run():
    """A user dt 3x too large is sub-stepped; with band-limited resampling and
    timing-correct shifts its data equal a run at the fine step sampled at the
    user's times (source sample n = current at (n + 1/2) dt, receiver sample
    n = field at (n + 1) dt)."""
    n, h = 60, 0.01
    eps, sig, mu = np.full((n, n), 4.0), np.full((n, n), 1e-3), np.ones((n, n))
    limit = wavecore.max_stable_dt((h, h), wavecore.C0 / 2, 4)
    k = 3
    dt_coarse = 0.97 * CFL_SAFETY * k * limit
    freq = wavecore.C0 / 2 / (25 * h)  # 25 cells per wavelength at the peak
    ricker = lambda t: (1 - 2 * (np.pi * freq * (t - 1.2 / freq)) ** 2) * np.exp(  # noqa: E731
        -((np.pi * freq * (t - 1.2 / freq)) ** 2))
    nt = 160
    src, rec = np.array([[[30, 20]]]), np.array([[[30, 40], [10, 30]]])
    t_coarse = (np.arange(nt) + 0.5) * dt_coarse
    t_fine = (np.arange(nt * k) + 0.5) * dt_coarse / k
    coarse = wavecore.tm2d(eps, sig, mu, h, dt_coarse, ricker(t_coarse)[None, None], src, rec,
                           stencil=4, time_pad_frac=0.5)
    fine = wavecore.tm2d(eps, sig, mu, h, dt_coarse / k, ricker(t_fine)[None, None], src, rec,
                         stencil=4)
    assert (coarse.step_ratio, fine.step_ratio) == (k, 1)
    assert coarse.dt == pytest.approx(dt_coarse / k)
    sampled = fine.receiver_data[..., k - 1 :: k]
    misfit = np.abs(coarse.receiver_data - sampled).max() / np.abs(sampled).max()
    assert misfit < 1e-4, misfit  # measured 4.9e-6 (1.3e-5 with FFT down-sampling); 0.18 unshifted


def _same_problem_at_ratios(system, ratios=(1, 2, 3)):
    """One physical problem (model, wavelet, user dt = 0.5 x the CFL limit) run at
    step ratios 1, 2, 3, forced by a larger ``max_vel``: {ratio: receiver data}."""
    v, h = wavecore.C0 / 2, 0.01
    ndim = 2 if system == "tm2d" else 3
    n = 26 if ndim == 3 else 60
    shape = (n,) * ndim
    eps, sig, mu = np.full(shape, 4.0), np.full(shape, 2e-3), np.ones(shape)
    dt = 0.5 * wavecore.max_stable_dt((h,) * ndim, v, 4)
    wavelet = wavecore.ricker(v / (20 * h), 220, dt)[None, None]  # 20 cells per wavelength
    if ndim == 3:
        src = [[[13, 13, 8]]]
        rec = [[[13, 13, 18], [8, 16, 16], [18, 10, 12]]]
        kw = dict(source_component="ez", receiver_component=["ez", "hx", "hy"], pml_width=8)
        run = wavecore.maxwell3d
    else:
        src, rec = [[[30, 20]]], [[[30, 40], [15, 30], [45, 25]]]
        kw, run = dict(pml_width=10), wavecore.tm2d
    out = {}
    for k in ratios:
        # max_vel scales the CFL limit: a velocity 2.5 (4) times the model's
        # needs 2 (3) internal steps per sample.
        res = run(eps, sig, mu, h, dt, wavelet, np.array(src), np.array(rec), stencil=4,
                  max_vel={1: 1.0, 2: 2.5, 3: 4.0}[k] * v, **kw)
        assert res.step_ratio == k
        out[k] = res.receiver_data[0].reshape(-1, 3, wavelet.shape[-1])  # [component, rec, t]
    return out


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_step_ratios_give_the_same_e_and_h_traces(system):
    """Runs of one problem at internal steps dt, dt/2 and dt/3 differ by the
    leapfrog's time error, O(dt_internal^2): d(1, 2) is the error of the run at
    dt = 0.5 x the limit (20 cells per wavelength): 4.5e-3 (2-D) and 2.0e-3 to
    2.3e-3 (3-D) of the peak, measured, and d(1, 3) = (8/9) / (3/4) d(1, 2),
    d(2, 3) = (5/36) / (3/4) d(1, 2) to 3 % (2-D) and 7 % to 13 % (3-D; the rest
    is the sources' band-limited interpolation). E is sampled exactly, so its
    differences are the time stepping's alone, and H must show the same: read
    at E's time (the old shift), H differed by 2.4e-2, ten times E's."""
    data = _same_problem_at_ratios(system)
    sizes = []
    for c in range(data[1].shape[0]):
        scale = np.abs(data[1][c]).max()
        d12 = (data[1][c] - data[2][c]) / scale
        d13 = (data[1][c] - data[3][c]) / scale
        d23 = (data[2][c] - data[3][c]) / scale
        sizes.append(np.abs(d12).max())
        assert sizes[-1] < 6e-3, (c, sizes)
        assert np.abs(d13 - (8 / 9) / (3 / 4) * d12).max() < 0.2 * sizes[-1], c
        assert np.abs(d23 - (5 / 36) / (3 / 4) * d12).max() < 0.2 * sizes[-1], c
    if system == "maxwell3d":  # components ez, hx, hy
        assert max(sizes[1:]) < 1.5 * sizes[0], sizes


def test_substepped_trace_cut_at_its_peak_has_no_end_artefact():
    """A run ending while the wave passes the receivers: the sub-stepped data equal a
    run at the internal step sampled at the user's times, to the last sample (FFT
    down-sampling was off there by 5 % to 30 % of the peak and wrapped the end
    onto the first samples)."""
    n, h, k = 60, 0.01, 3
    eps, sig, mu = np.full((n, n), 4.0), np.full((n, n), 1e-3), np.ones((n, n))
    limit = wavecore.max_stable_dt((h, h), wavecore.C0 / 2, 4)
    dt = 0.97 * CFL_SAFETY * k * limit
    freq = wavecore.C0 / 2 / (25 * h)
    ricker = lambda t: (1 - 2 * (np.pi * freq * (t - 1.2 / freq)) ** 2) * np.exp(  # noqa: E731
        -((np.pi * freq * (t - 1.2 / freq)) ** 2))
    src, rec = np.array([[[30, 10]]]), np.array([[[30, 30], [30, 40], [20, 35]]])
    nt = 38  # the direct wave is at the receivers when the run ends
    coarse = wavecore.tm2d(eps, sig, mu, h, dt, ricker((np.arange(nt) + 0.5) * dt)[None, None],
                           src, rec, stencil=4)
    fine = wavecore.tm2d(eps, sig, mu, h, dt / k,
                         ricker((np.arange(nt * k) + 0.5) * dt / k)[None, None], src, rec,
                         stencil=4)
    assert coarse.step_ratio == k
    sampled = fine.receiver_data[..., k - 1 :: k]
    scale = np.abs(sampled).max(axis=-1)
    assert (np.abs(sampled[..., -1]) > 0.4 * scale).sum() == 2  # large at the last sample
    err = np.abs(coarse.receiver_data - sampled).max(axis=-1) / scale
    assert err.max() < 1e-4, err  # the sources' band-limited interpolation
