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
    assert misfit < 1e-3, misfit  # measured 1.3e-5; without the shifts 0.18
