"""Cross-check against the peer TIDE 0.1.2 (skipped when it is not installed).

TIDE runs in its own interpreter (WAVECORE_TIDE_PYTHON or /tmp/tide-venv, made
by shared/tools/install-tide.sh). With default settings and no CFL
sub-stepping, wavecore reproduces it to rounding in float64. Asserted (and
measured by bench/compare_tide_*.py, bench/results/*_tide_agreement_*.md):
receiver data 1e-14 relative (measured <= 1.2e-15 in 2-D, <= 1.9e-15 in 3-D),
final fields 1e-13 (3.4e-15, 2.0e-14), gradients 1e-12 in 2-D (7.0e-14) and
1e-14 in 3-D (2.3e-15). This needs TIDE's 1e-9 guard in the denominator of
the CPML coefficient a (tide.utils.setup_pml, eps=1e-9), which wavecore adds
too: without it (`--no-guard`) receivers differ by up to 2.9e-12 in 2-D and
3.9e-11 in 3-D, 2-D gradients by up to 3.6e-10.
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


TM2D_CASES = [(2, 20), (4, (10, 0, 5, 12)), (8, 15)]


def tm2d_acquisition(nt, dt, dtype=np.float64):
    wavelet = wavecore.ricker(5e8, nt, dt)
    amp = (np.stack([wavelet, -0.5 * wavelet])[:, None, :] * 1e3).astype(dtype)
    src = np.array([[[5, 10]], [[30, 60]]])
    rec = np.array([[[5, c] for c in range(15, 65, 6)]] * 2)
    return amp, src, rec


def relative(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def tm2d_agreement(name, order, pml, dtype=np.float64) -> dict:
    """max |wavecore - TIDE| / max |TIDE| of the receiver data and of each final field."""
    eps, sig, mu = (a.astype(dtype) for a in models()[name])
    nt, dt, spacing = 250, 1e-11, (0.01, 0.012)
    amp, src, rec = tm2d_acquisition(nt, dt, dtype)
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml)
    assert ours.step_ratio == 1
    peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml)
    errors = {"receivers": relative(ours.receiver_data, peer["receiver_data"])}
    for field in ("ey", "hx", "hz"):  # H up to TIDE's sign convention (handled by the runner)
        errors[field] = relative(ours.final_state[field], peer[field])
    return errors


def tm2d_gradient_agreement(order, pml) -> dict:
    """Relative max difference of every gradient (float64, layered model)."""
    eps, sig, mu = models()["layered"]
    nt, dt, spacing = 150, 1e-11, (0.01, 0.012)
    amp, src, rec = tm2d_acquisition(nt, dt)
    targets = ("epsilon", "sigma", "mu", "source_amplitude")
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml, requires_grad=targets)
    y = np.random.default_rng(0).standard_normal(ours.receiver_data.shape)
    grads = ours.vjp(y)
    errors = {}
    # TIDE cannot differentiate mu together with the others in one call.
    for names in (("epsilon", "sigma", "source_amplitude"), ("mu",)):
        peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                             pml_width=pml, requires_grad=names, grad_receiver_data=y)
        errors.update({n: relative(getattr(grads, n), peer[f"grad_{n}"]) for n in names})
    return errors


@pytest.mark.parametrize("name", ["homogeneous", "layered"])
@pytest.mark.parametrize("order,pml", TM2D_CASES)
def test_receivers_match_tide(name, order, pml):
    # Measured <= 1.2e-15 (receivers), <= 3.4e-15 (fields):
    # bench/results/tm2d_tide_agreement_*.md.
    errors = tm2d_agreement(name, order, pml)
    assert errors["receivers"] <= 1e-14, errors
    assert max(errors.values()) <= 1e-13, errors


@pytest.mark.parametrize("order,pml", TM2D_CASES[:2])
def test_gradients_match_tide(order, pml):
    # TIDE 0.1.2's gradients are exact (its CPU adjoint was fixed in 0.1.2).
    errors = tm2d_gradient_agreement(order, pml)  # measured <= 7.0e-14
    assert max(errors.values()) <= 1e-12, errors


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
    # Measured <= 1.9e-15 (receivers), <= 2.0e-14 (fields):
    # bench/results/maxwell3d_tide_agreement_*.md.
    errors = maxwell3d_agreement(order, pml, components)
    assert errors["receivers"] <= 1e-14, errors
    assert max(errors.values()) <= 1e-13, errors


def test_maxwell3d_gradients_match_tide():
    errors = maxwell3d_gradient_agreement()  # measured <= 2.3e-15
    assert max(errors.values()) <= 1e-14, errors


# -- Debye media -------------------------------------------------------------------

def debye_poles(shape, n_poles):
    """A soil-like medium: poles of strength 3 and 1.5 at 0.8 ns and 0.15 ns,
    stronger in the lower half."""
    de = np.stack([np.full(shape, 3.0), np.full(shape, 1.5)])[:n_poles]
    de[:, shape[0] // 2:] *= 2.0
    tau = np.stack([np.full(shape, 8e-10), np.full(shape, 1.5e-10)])[:n_poles]
    return wavecore.Debye(de, tau)


def debye_tm2d_agreement(n_poles, order, pml, gradients=False) -> dict:
    eps, sig, mu = models()["layered"]
    nt, dt, spacing = 200, 1e-11, (0.01, 0.012)
    amp, src, rec = tm2d_acquisition(nt, dt)
    d = debye_poles(eps.shape, n_poles)
    targets = ("epsilon", "sigma", "delta_epsilon", "tau", "source_amplitude") \
        if gradients else ()
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml, dispersion=d, requires_grad=targets)
    y = np.random.default_rng(0).standard_normal(ours.receiver_data.shape)
    peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml, dispersion=d, requires_grad=targets,
                         grad_receiver_data=y if gradients else None)
    errors = {"receivers": relative(ours.receiver_data, peer["receiver_data"])}
    for field in ("ey", "hx", "hz"):
        errors[field] = relative(ours.final_state[field], peer[field])
    if gradients:
        grads = ours.vjp(y)
        for name in targets:
            errors[f"grad_{name}"] = relative(getattr(grads, name), peer[f"grad_{name}"])
    return errors


@pytest.mark.parametrize("n_poles,order,pml", [(1, 2, 10), (2, 4, (10, 0, 5, 12))])
def test_debye_tm2d_matches_tide(n_poles, order, pml):
    errors = debye_tm2d_agreement(n_poles, order, pml)  # measured <= 4.1e-16, 1.3e-15
    print(errors)
    assert errors["receivers"] <= 1e-14, errors
    assert max(errors.values()) <= 1e-13, errors


def test_debye_tm2d_gradients_match_tide():
    # TIDE's only Debye gradient path is its autograd reference (slow, small case).
    errors = debye_tm2d_agreement(2, 4, 8, gradients=True)  # measured <= 9.6e-15
    print(errors)
    assert max(errors.values()) <= 1e-12, errors


def test_debye_maxwell3d_matches_tide():
    eps, sig, mu = model_3d()
    nt, dt, spacing = 50, 8e-12, (0.01, 0.012, 0.011)
    amp, src, rec = acquisition_3d(nt, dt)
    d = debye_poles(eps.shape, 2)
    kw = dict(stencil=4, pml_width=3)
    ours = wavecore.maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, source_component="ey",
                              receiver_component="ey", dispersion=d, **kw)
    peer = run_tide_maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, dispersion=d,
                              options=dict(source_component="ey", receiver_component="ey"),
                              **kw)
    errors = {"receivers": relative(ours.receiver_data, peer["receiver_data"])}
    for name in ("ex", "ey", "ez", "hx", "hy", "hz"):
        errors[name] = relative(ours.final_state[name], peer[name])
    print(errors)  # measured <= 3.4e-16 (receivers), 3.6e-15 (fields)
    assert errors["receivers"] <= 1e-14, errors
    assert max(errors.values()) <= 1e-13, errors


# -- the linearized (Born) run -----------------------------------------------------

def born_directions(shape, seed=5):
    """Smooth-ish perturbations of epsilon and sigma (a few percent of the model)."""
    rng = np.random.default_rng(seed)
    return {"epsilon": 0.3 * rng.standard_normal(shape),
            "sigma": 1e-3 * rng.standard_normal(shape)}


def tm2d_born_agreement(order, pml) -> dict:
    """max |wavecore jvp - TIDE borntm| / max |TIDE| per direction and together."""
    eps, sig, mu = models()["layered"]
    nt, dt, spacing = 200, 1e-11, (0.01, 0.012)
    amp, src, rec = tm2d_acquisition(nt, dt)
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                         pml_width=pml, requires_grad=("epsilon", "sigma"))
    v = born_directions(eps.shape)
    errors = {}
    for names in (("epsilon",), ("sigma",), ("epsilon", "sigma")):
        d = {n: v[n] for n in names}
        peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order,
                             pml_width=pml, born=d)
        errors["+".join(names)] = relative(ours.jvp(**d, keep=True), peer["receiver_data"])
    return errors


@pytest.mark.parametrize("order,pml", TM2D_CASES[:2])
def test_jvp_matches_tide_borntm(order, pml):
    errors = tm2d_born_agreement(order, pml)  # measured <= 6.9e-15
    print(errors)
    assert max(errors.values()) <= 1e-13, errors


@pytest.mark.parametrize("mode", ["full", "gauss_newton"])
def test_hessian_products_match_tide_maxwelltm_hvp(mode):
    """inversion.hvp / gauss_newton_hvp (L2) against TIDE's maxwelltm_hvp."""
    from wavecore.inversion import gauss_newton_hvp, hvp

    eps, sig, mu = models()["layered"]
    nt, dt, spacing = 150, 1e-11, (0.01, 0.012)
    amp, src, rec = tm2d_acquisition(nt, dt)
    kw = dict(stencil=4, pml_width=4)
    observed = wavecore.tm2d(eps * 1.05, sig, mu, spacing, dt, amp, src, rec, **kw).receiver_data
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec,
                         requires_grad=("epsilon", "sigma"), **kw)
    v = born_directions(eps.shape)
    product = (hvp if mode == "full" else gauss_newton_hvp)(ours, v, observed)
    peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, born=v, hvp=mode,
                         observed=observed, **kw)
    errors = {k: relative(getattr(product, k), peer[k]) for k in ("epsilon", "sigma")}
    print(f"{mode} Hessian product vs TIDE maxwelltm_hvp: {errors}")
    assert max(errors.values()) <= 1e-12, errors


def test_maxwell3d_jvp_matches_tide_born3d():
    eps, sig, mu = model_3d()
    nt, dt, spacing = 50, 8e-12, (0.01, 0.012, 0.011)
    amp, src, rec = acquisition_3d(nt, dt)
    kw = dict(stencil=4, pml_width=3)
    comps = dict(source_component="ey", receiver_component="ez")
    ours = wavecore.maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec,
                              requires_grad=("epsilon", "sigma"), **comps, **kw)
    v = born_directions(eps.shape)
    peer = run_tide_maxwell3d(eps, sig, mu, spacing, dt, amp, src, rec, born=v, options=comps,
                              **kw)
    error = relative(ours.jvp(**v), peer["receiver_data"])
    print(f"maxwell3d jvp vs born3d: {error:.1e}")  # measured 4.3e-15
    assert error <= 1e-13, error
