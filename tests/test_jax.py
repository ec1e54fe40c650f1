"""wavecore.jax: custom_vjp wrappers (gradients equal wavecore's vjp, jit works).
Skipped where jax is not installed (optional: pip install jax)."""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, stable_dt

jax = pytest.importorskip("jax", reason="wavecore.jax needs jax (optional: pip install jax)")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import wavecore.jax as wj  # noqa: E402


def test_jax_grad_equals_vjp_and_jit_works():
    eps, sig, mu = random_model(8, 9, np.float64, seed=2)
    amp, src, rec = random_acquisition(8, 9, 2, 1, 3, 14, np.float64, seed=5)
    dt = stable_dt((0.01, 0.01), float(eps.min()), float(mu.min()))
    kw = dict(stencil=4, pml_width=2)
    w = np.random.default_rng(0).standard_normal((2, 3, 14))

    def loss(e, s, m, a):
        return jnp.sum(wj.tm2d(e, s, m, 0.01, dt, a, src, rec, **kw) * w)

    args = tuple(jnp.asarray(x) for x in (eps, sig, mu, amp))
    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(*args)
    ref = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec,
                        requires_grad=("epsilon", "sigma", "mu", "source_amplitude"), **kw)
    assert float(value) == pytest.approx(float(np.sum(ref.receiver_data * w)), rel=1e-12)
    g = ref.vjp(w)
    for got, want in zip(grads, (g.epsilon, g.sigma, g.mu, g.source_amplitude)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=0)


def test_jax_maxwell3d_shape():
    shape = (5, 6, 7)
    e, s, m = (jnp.full(shape, v) for v in (4.0, 1e-3, 1.0))
    a = jnp.asarray(np.random.default_rng(1).standard_normal((1, 1, 9)))
    dt = stable_dt((0.01,) * 3, 4.0, 1.0)
    out = wj.maxwell3d(e, s, m, 0.01, dt, a, [[[2, 3, 3]]], [[[1, 1, 2], [3, 4, 5]]],
                       pml_width=1, receiver_component=["ex", "hy"])
    assert out.shape == (1, 2, 2, 9)


def test_import_wavecore_does_not_import_jax():
    import subprocess
    import sys

    code = "import sys, wavecore; print('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_jax_debye_poles_get_their_gradients():
    eps, sig, mu = random_model(8, 9, np.float64, seed=2)
    amp, src, rec = random_acquisition(8, 9, 2, 1, 3, 14, np.float64, seed=5)
    dt = stable_dt((0.01, 0.01), float(eps.min()), float(mu.min()))
    rng = np.random.default_rng(3)
    de = 1 + 3 * rng.random((2, 8, 9))
    tau = 10.0 ** rng.uniform(-10, -9, de.shape)
    kw = dict(stencil=2, pml_width=2)
    w = np.random.default_rng(0).standard_normal((2, 3, 14))

    def loss(e, d, t):
        return jnp.sum(wj.tm2d(e, sig, mu, 0.01, dt, amp, src, rec, dispersion=(d, t),
                               **kw) * w)

    grads = jax.grad(loss, argnums=(0, 1, 2))(*(jnp.asarray(x) for x in (eps, de, tau)))
    g = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec,
                      dispersion=wavecore.Debye(de, tau), **kw,
                      requires_grad=("epsilon", "delta_epsilon", "tau")).vjp(w)
    for got, want in zip(grads, (g.epsilon, g.delta_epsilon, g.tau)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=0)


def test_jax_grad_of_grad_is_the_full_hessian_product():
    from wavecore.inversion import hvp

    eps, sig, mu = random_model(8, 9, np.float64, seed=2)
    sig = sig * 20
    amp, src, rec = random_acquisition(8, 9, 2, 1, 3, 14, np.float64, seed=5)
    dt = stable_dt((0.01, 0.01), float(eps.min()), float(mu.min()))
    kw = dict(stencil=4, pml_width=2)
    observed = 0.9 * wavecore.tm2d(eps * 1.1, sig, mu, 0.01, dt, amp, src, rec,
                                   **kw).receiver_data
    rng = np.random.default_rng(3)
    v = {"epsilon": rng.standard_normal(eps.shape), "sigma": 1e-3 * rng.standard_normal(eps.shape)}

    def loss(e, s):
        r = wj.tm2d(e, s, jnp.asarray(mu), 0.01, dt, jnp.asarray(amp), src, rec, **kw) - observed
        return 0.5 * jnp.sum(r * r)

    def directional(e, s):
        ge, gs = jax.grad(loss, argnums=(0, 1))(e, s)
        return jnp.vdot(ge, v["epsilon"]) + jnp.vdot(gs, v["sigma"])

    he, hs = jax.grad(directional, argnums=(0, 1))(jnp.asarray(eps), jnp.asarray(sig))
    res = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec,
                        requires_grad=("epsilon", "sigma"), **kw)
    ref = hvp(res, v, observed, "l2")
    for got, want in ((he, ref.epsilon), (hs, ref.sigma)):
        err = np.abs(np.asarray(got) - want).max() / np.abs(want).max()
        assert err <= 1e-12, err
