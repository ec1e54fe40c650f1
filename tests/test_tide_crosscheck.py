"""Cross-check against the peer TIDE 0.1.2 (skipped when it is not installed).

TIDE runs in its own interpreter (WAVECORE_TIDE_PYTHON or /tmp/tide-venv, made
by shared/tools/install-tide.sh). With default settings and no CFL
sub-stepping, wavecore must reproduce its receiver data to 1e-9 relative in
float64 (measured: ~1e-15 in 2-D and 3-D, since wavecore also adds TIDE's
1e-9 guard to the denominator of the CPML coefficient a).
"""

import numpy as np
import pytest

import wavecore
from wavecore.testing.tide import run_tide_maxwell3d, run_tide_tm2d, tide_python

pytestmark = pytest.mark.skipif(
    tide_python() is None,
    reason="TIDE 0.1.2 not found (set WAVECORE_TIDE_PYTHON; see shared/tools/install-tide.sh)")


def models():
    nz, nx = 50, 70
    homogeneous = (np.full((nz, nx), 6.0), np.full((nz, nx), 5e-3), np.ones((nz, nx)))
    eps, sig, mu = (np.full((nz, nx), 4.0), np.full((nz, nx), 2e-3), np.ones((nz, nx)))
    eps[25:] = 9.0
    eps[8:16, 30:45] = 1.0  # an air void
    sig[25:] = 1e-2
    mu[35:] = 1.5
    return {"homogeneous": homogeneous, "layered": (eps, sig, mu)}


@pytest.mark.parametrize("name", ["homogeneous", "layered"])
@pytest.mark.parametrize("order,pml", [(2, 20), (4, (10, 0, 5, 12)), (8, 15)])
def test_receivers_match_tide(name, order, pml):
    eps, sig, mu = models()[name]
    nt, dt, spacing = 250, 1e-11, (0.01, 0.012)
    wavelet = wavecore.ricker(5e8, nt, dt)
    amp = np.stack([wavelet, -0.5 * wavelet])[:, None, :] * 1e3
    src = np.array([[[5, 10]], [[30, 60]]])
    rec = np.array([[[5, c] for c in range(15, 65, 6)]] * 2)
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml)
    assert ours.step_ratio == 1
    peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml)
    scale = np.abs(peer["receiver_data"]).max()
    error = np.abs(ours.receiver_data - peer["receiver_data"]).max() / scale
    assert error <= 1e-9, error
    # The fields agree too, H up to TIDE's sign convention (handled by the runner).
    assert np.abs(ours.final_state["ey"] - peer["ey"]).max() <= 1e-6 * np.abs(peer["ey"]).max()


@pytest.mark.parametrize("order,pml", [(2, 20), (4, (10, 0, 5, 12))])
def test_gradients_match_tide(order, pml):
    # TIDE 0.1.2's gradients are exact (its CPU adjoint was fixed in 0.1.2).
    eps, sig, mu = models()["layered"]
    nt, dt, spacing = 150, 1e-11, (0.01, 0.012)
    wavelet = wavecore.ricker(5e8, nt, dt)
    amp = np.stack([wavelet, -0.5 * wavelet])[:, None, :] * 1e3
    src = np.array([[[5, 10]], [[30, 60]]])
    rec = np.array([[[5, c] for c in range(15, 65, 6)]] * 2)
    targets = ("epsilon", "sigma", "mu", "source_amplitude")
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml, requires_grad=targets)
    y = np.random.default_rng(0).standard_normal(ours.receiver_data.shape)
    grads = ours.vjp(y)
    # TIDE cannot differentiate mu together with the others in one call.
    for names in (("epsilon", "sigma", "source_amplitude"), ("mu",)):
        peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                             pml_width=pml, requires_grad=names, grad_receiver_data=y)
        for name in names:
            theirs = peer[f"grad_{name}"]
            error = np.abs(getattr(grads, name) - theirs).max() / np.abs(theirs).max()
            assert error <= 1e-8, (name, error)


def model_3d():
    rng = np.random.default_rng(4)
    shape = (9, 10, 11)
    eps = np.full(shape, 4.0)
    eps[5:] = 9.0
    sig = 1e-2 * rng.random(shape)
    mu = 1.0 + 0.3 * rng.random(shape)
    return eps, sig, mu


MAXWELL3D_CASES = [(2, 4, ("ey", "ey")), (4, (3, 2, 0), ("ex", "ez")), (6, 3, ("ez", "ex")),
                   (8, (2, 3, 2, 4, 3, 2), ("ey", "ez"))]


def acquisition_3d(nt, dt, dtype=np.float64):
    wavelet = wavecore.ricker(1.5e9, nt, dt)
    amp = (np.stack([wavelet, -0.5 * wavelet])[:, None, :] * 1e3).astype(dtype)
    src = np.array([[[2, 3, 4]], [[6, 5, 7]]])
    rec = np.array([[[2, 6, c] for c in range(1, 11, 3)]] * 2)
    return amp, src, rec


def maxwell3d_agreement(order, pml, components, dtype=np.float64) -> dict:
    """max |wavecore - TIDE| / max |TIDE| of the receiver data and of each final field."""
    eps, sig, mu = (a.astype(dtype) for a in model_3d())
    nt, dt, spacing = 60, 8e-12, (0.01, 0.012, 0.011)
    amp, src, rec = acquisition_3d(nt, dt, dtype)
    source, receiver = components
    kw = dict(stencil=order, pml_width=pml)
    ours = wavecore.maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, source_component=source,
                              receiver_component=receiver, **kw)
    assert ours.step_ratio == 1
    peer = run_tide_maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, **kw,
                              options=dict(source_component=source,
                                           receiver_component=receiver))
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())  # noqa: E731
    errors = {"receivers": rel(ours.receiver_data, peer["receiver_data"])}
    for name in ("ex", "ey", "ez", "hx", "hy", "hz"):  # H up to TIDE's sign (runner)
        errors[name] = rel(ours.final_state[name], peer[name])
    return errors


def maxwell3d_gradient_agreement() -> dict:
    """Relative max difference of the epsilon, sigma and source gradients (float64)."""
    eps, sig, mu = model_3d()
    nt, dt, spacing = 50, 8e-12, (0.01, 0.012, 0.011)
    amp, src, rec = acquisition_3d(nt, dt)
    kw = dict(stencil=4, pml_width=3)
    targets = ("epsilon", "sigma", "source_amplitude")
    ours = wavecore.maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, source_component="ex",
                              receiver_component="ex", requires_grad=targets, **kw)
    y = np.random.default_rng(0).standard_normal(ours.receiver_data.shape)
    grads = ours.vjp(y)
    peer = run_tide_maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, requires_grad=targets,
                              grad_receiver_data=y, options=dict(source_component="ex",
                                                                 receiver_component="ex"), **kw)
    return {name: float(np.abs(getattr(grads, name) - peer[f"grad_{name}"]).max()
                        / np.abs(peer[f"grad_{name}"]).max()) for name in targets}


@pytest.mark.parametrize("order,pml,components", MAXWELL3D_CASES)
def test_maxwell3d_receivers_match_tide(order, pml, components):
    errors = maxwell3d_agreement(order, pml, components)
    assert max(errors.values()) <= 1e-9, errors


def test_maxwell3d_gradients_match_tide():
    errors = maxwell3d_gradient_agreement()
    assert max(errors.values()) <= 1e-8, errors
