"""Second-order inversion pieces: the misfits' data-space Hessians, the
Gauss-Newton Hessian-vector product (one jvp and one vjp of a kept run), the
inner conjugate-gradient solve and the projected Gauss-Newton method."""

import numpy as np
import pytest

import wavecore
from wavecore.inversion import (HESSIANS, MISFITS, Bounds, conjugate_gradient,
                                gauss_newton_hvp, invert)
from wavecore.inversion.newton import forcing_term
from conftest import random_acquisition, random_model, stable_dt

SPACING = (0.01, 0.013)


def problem(nz=14, nx=16, nt=36, shots=2, dtype=np.float64):
    eps, sig, mu = random_model(nz, nx, dtype, seed=1)
    sig = (sig * 10).astype(dtype)
    amp, src, rec = random_acquisition(nz, nx, shots, 2, 3, nt, dtype, seed=2)
    dt = stable_dt(SPACING, float(eps.min()), float(mu.min()))
    return dict(epsilon=eps, sigma=sig, mu=mu, grid_spacing=SPACING, dt=dt,
                source_amplitude=amp, source_location=src, receiver_location=rec)


@pytest.mark.parametrize("name", sorted(HESSIANS))
def test_misfit_hessians_are_the_derivatives_of_their_gradients(name):
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((2, 3, 50))
    syn = obs + 0.3 * rng.standard_normal(obs.shape)
    d = rng.standard_normal(obs.shape)
    h = 1e-6
    central = (MISFITS[name](syn + h * d, obs)[1] - MISFITS[name](syn - h * d, obs)[1]) / (2 * h)
    if name == "huber":  # piecewise: away from the kinks the central difference is exact
        delta = 0.01 * np.abs(obs).max()
        far = np.abs(np.abs(syn - obs) - delta) > 10 * h * np.abs(d)
        central, d_far = central[far], np.where(far, d, 0.0)
        got = HESSIANS[name](syn, obs, d_far)[far]
    else:
        got = HESSIANS[name](syn, obs, d)
    error = np.abs(got - central).max() / np.abs(central).max()
    assert error <= 1e-6, error


def directions(p, names, seed):
    rng = np.random.default_rng(seed)
    return {n: np.abs(p[n]).mean() * rng.standard_normal(p[n].shape) for n in names}


@pytest.mark.parametrize("misfit", sorted(HESSIANS))
def test_gauss_newton_product_is_vjp_of_hessian_of_jvp_and_symmetric(misfit):
    p = problem()
    names = ("epsilon", "sigma", "mu")
    res = wavecore.tm2d(**p, stencil=4, pml_width=3, requires_grad=names)
    observed = res.receiver_data * 0.9 + 0.01 * np.random.default_rng(3).standard_normal(
        res.receiver_data.shape)
    u, v = directions(p, names, 4), directions(p, names, 5)
    hu = gauss_newton_hvp(res, u, observed, misfit)
    hv = gauss_newton_hvp(res, v, observed, misfit)
    by_hand = res.vjp(HESSIANS[misfit](res.receiver_data, observed, res.jvp(**u, keep=True)),
                      keep=True)
    for n in names:
        assert np.array_equal(getattr(hu, n), getattr(by_hand, n))
    uhv = sum(float(np.vdot(u[n], getattr(hv, n))) for n in names)
    vhu = sum(float(np.vdot(v[n], getattr(hu, n))) for n in names)
    assert abs(uhv - vhu) <= 1e-12 * max(abs(uhv), abs(vhu)), (uhv, vhu)
    res.close()


@pytest.mark.parametrize("settings", [dict(storage_compression="bf16"),
                                      dict(model_gradient_sampling_interval=2)])
def test_gauss_newton_product_stays_symmetric_with_approximate_snapshots(settings):
    p = problem(dtype=np.float32)
    names = ("epsilon", "sigma")
    res = wavecore.tm2d(**p, requires_grad=names, **settings)
    observed = np.zeros_like(res.receiver_data)
    u, v = directions(p, names, 6), directions(p, names, 7)
    hu, hv = gauss_newton_hvp(res, u, observed), gauss_newton_hvp(res, v, observed)
    uhv = sum(float(np.vdot(u[n], getattr(hv, n))) for n in names)
    vhu = sum(float(np.vdot(v[n], getattr(hu, n))) for n in names)
    assert abs(uhv - vhu) <= 1e-5 * max(abs(uhv), abs(vhu)), (uhv, vhu)
    res.close()


def test_conjugate_gradient_solves_and_stops_at_negative_curvature():
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.standard_normal((30, 30)))[0]
    spd = q @ np.diag(np.linspace(1.0, 50.0, 30)) @ q.T
    b = rng.standard_normal(30)
    x, n_tight, reason = conjugate_gradient(lambda v: spd @ v, b, 1e-10, 100)
    assert reason == "converged" and n_tight <= 30
    assert np.linalg.norm(spd @ x - b) <= 1e-9 * np.linalg.norm(b)
    indefinite = q @ np.diag(np.linspace(-5.0, 50.0, 30)) @ q.T
    _, _, reason = conjugate_gradient(lambda v: indefinite @ v, b, 1e-10, 100)
    assert reason == "negative curvature"
    _, n_loose, reason = conjugate_gradient(lambda v: spd @ v, b, 0.5, 100)
    assert reason == "converged" and n_loose < n_tight  # a loose forcing term stops early


def test_forcing_terms_tighten_as_the_gradient_falls():
    assert forcing_term(1.0, None, None) == 0.5
    assert forcing_term(0.1, 1.0, 0.5) == pytest.approx(max(0.9 * 0.01, 0.9 * 0.25))
    assert forcing_term(1e-2, 1.0, 1e-2) == pytest.approx(0.9e-4)
    assert forcing_term(1e-4, 1.0, 1e-2) == 1e-6  # the floor
    assert forcing_term(2.0, 1.0, 0.5) == 0.5


def layered_inversion_problem():
    """A two-layer model with a sigma anomaly, surface acquisition, 1 GHz Ricker."""
    nz, nx, nt = 30, 40, 260
    eps = np.full((nz, nx), 4.0)
    eps[15:] = 9.0
    sig = np.full((nz, nx), 2e-3)
    sig[18:24, 15:25] = 2e-2
    mu = np.ones((nz, nx))
    h = 0.01
    dt = 0.9 * wavecore.max_stable_dt((h, h), wavecore.C0, 2)
    wavelet = wavecore.ricker(1e9, nt, dt, peak_time=1.2e-9)
    src = np.array([[[2, c]] for c in (8, 20, 32)])
    rec = np.array([[[2, c] for c in range(4, 38, 3)]] * 3)
    amp = np.repeat(wavelet[None, None], 3, 0) * 1e3
    true = wavecore.tm2d(eps, sig, mu, h, dt, amp, src, rec, pml_width=8).receiver_data
    mask = np.zeros((nz, nx), bool)
    mask[4:] = True
    start_eps = np.where(mask, 6.0, eps)
    start_sig = np.where(mask, 5e-3, sig)
    return dict(observed=true, epsilon=start_eps, sigma=start_sig, mu=mu, grid_spacing=h,
                dt=dt, source_amplitude=amp, source_location=src, receiver_location=rec,
                mask=mask, pml_width=8, bounds=Bounds(epsilon=(1.0, 16.0), sigma=(0.0, 0.05)))


def test_gauss_newton_reduces_the_misfit_of_two_parameters():
    q = layered_inversion_problem()
    result = invert(**q, parameters=("epsilon", "sigma"), method="gauss-newton", iterations=3,
                    cg_iterations=5)
    misfits = [h["misfit"] for h in result.history]
    print("Gauss-Newton misfits", misfits, [h.get("cg_iterations") for h in result.history])
    assert misfits[-1] < 0.2 * misfits[0]
    assert all(b <= a for a, b in zip(misfits, misfits[1:]))
    assert all(1 <= h["cg_iterations"] <= 5 for h in result.history[1:])


def test_gauss_newton_refusals():
    q = layered_inversion_problem()
    for bad, match in ((dict(smoothing=1.0), "smoothing"), (dict(cg_iterations=0), "cg_iter"),
                       (dict(misfit=lambda s, o: (0.0, s)), "Hessian"),
                       (dict(executor=object()), "executor")):
        with pytest.raises(ValueError, match=match):
            invert(**q, method="gauss-newton", iterations=1, **bad)


def test_gauss_newton_step_holds_unknowns_at_their_bounds():
    """A quadratic with its minimum outside the box in one unknown: from that
    bound, the step solves the reduced (free-unknown) system, which lands on the
    constrained minimizer; an unreduced step, projected, would not (coupling)."""
    from wavecore.inversion.fwi import _gauss_newton_step

    a = np.array([[2.0, 0.9, 0.0], [0.9, 2.0, 0.5], [0.0, 0.5, 1.5]])
    target = np.array([-0.3, 0.4, 0.6])  # unknown 0 wants to leave [0, 1]

    class Quadratic:
        def value(self, x):
            r = x - target
            return 0.5 * float(r @ a @ r)

        def newton_system(self, x, full=False):
            return self.value(x), a @ (x - target), (lambda v: a @ v), (lambda: None)

    x0 = np.array([0.0, 0.2, 0.2])
    tight = {"g_norm": 1e6, "eta": 1e-6}  # an earlier, larger gradient: a tight solve
    x, _, taken, info = _gauss_newton_step(Quadratic(), x0, 10, tight)
    free = a[1:, 1:]
    expected = np.linalg.solve(free, free @ target[1:] - a[1:, 0] * (0.0 - target[0]))
    assert taken == 1.0 and x[0] == 0.0
    assert np.allclose(x[1:], expected, atol=1e-10), (x, expected)
