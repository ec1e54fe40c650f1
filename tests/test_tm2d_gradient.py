"""TM2D gradients: exactness of the adjoint, Taylor and finite-difference checks,
backend parity, batching, sampling interval and backward callbacks.

The source-to-receiver map is linear, so the dot-product test checks the
transposed time stepping (CPML recursions, halo, sources, receivers and the
resampling of sub-stepped runs) exactly. Model gradients add the imaging of
stored fields and the chain rule; Taylor tests (remainder slopes 1 and 2) and
central differences check them.
"""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, rel_err, stable_dt
from wavecore.testing import dottest, taylor_test

SPACING = (0.01, 0.013)  # dz != dx
ALL = ("epsilon", "sigma", "mu", "source_amplitude")


def problem(nz=15, nx=17, nt=40, shots=2, n_src=2, n_rec=3, seed=0, dtype=np.float64,
            lossy=True, batch=None):
    eps, sig, mu = random_model(nz, nx, dtype, seed=seed, batch=batch)
    if lossy:
        sig = (sig * 10).astype(dtype)  # loss tangents ~0.1: sigma matters
    amp, src, rec = random_acquisition(nz, nx, shots, n_src, n_rec, nt, dtype, seed=seed + 1)
    dt = stable_dt(SPACING, float(eps.min()), float(mu.min()))
    return dict(epsilon=eps, sigma=sig, mu=mu, grid_spacing=SPACING, dt=dt,
                source_amplitude=amp, source_location=src, receiver_location=rec)


def run(p, backend="cpu", **kwargs):
    return wavecore.tm2d(**p, python_backend=backend == "reference", **kwargs)


@pytest.mark.parametrize("order", (2, 4, 6, 8))
@pytest.mark.parametrize("pml", (0, 3, (2, 0, 4, 1)))
def test_dot_product_source_to_receivers(backend, order, pml):
    p = problem(seed=order)
    p["source_location"][1, 1] = p["source_location"][1, 0]  # a shared source cell too
    kw = dict(stencil=order, pml_width=pml)

    def forward(amplitude):
        return run({**p, "source_amplitude": amplitude}, backend, **kw).receiver_data

    def adjoint(y):
        return run(p, backend, requires_grad="source_amplitude", **kw).vjp(y).source_amplitude

    y = np.random.default_rng(order).standard_normal(forward(p["source_amplitude"]).shape)
    error = dottest(forward, adjoint, p["source_amplitude"], y).relative_error
    print(f"{backend}, stencil {order}, CPML {pml}: dot-product error {error:.1e}")  # pytest -s
    assert error <= 1e-12


def test_dot_product_with_substepping_and_batched_models():
    # dt 2.5x the limit (step_ratio 3: band-limited resampling and its exact
    # transpose) and two models sharing the shots (gradient summed over models).
    p = problem(batch=2, nt=30)
    p["dt"] *= 2.5 / 0.9
    kw = dict(stencil=4, pml_width=2, time_pad_frac=0.3, freq_taper_frac=0.1)
    res = run(p, requires_grad="source_amplitude", **kw)
    assert res.step_ratio == 3 and res.receiver_data.shape == (2, 2, 3, 30)
    y = np.random.default_rng(0).standard_normal(res.receiver_data.shape)
    test = dottest(lambda a: run({**p, "source_amplitude": a}, **kw).receiver_data,
                   lambda g: res.vjp(g, keep=True).source_amplitude, p["source_amplitude"], y)
    assert test.relative_error <= 1e-12
    res.close()


def misfit(p, y, **kw):
    """J(inputs) = <y, receiver_data>: its gradient is vjp(y)."""
    return lambda **changes: float(np.sum(y * run({**p, **changes}, **kw).receiver_data))


@pytest.mark.parametrize("target", ALL)
def test_taylor_slopes(target):
    p = problem(nt=50, seed=3)
    kw = dict(stencil=4, pml_width=(3, 2, 0, 4))
    res = run(p, requires_grad=ALL, **kw)
    y = np.random.default_rng(1).standard_normal(res.receiver_data.shape)
    grads = res.vjp(y)
    x = p[target]
    rng = np.random.default_rng(2)
    direction = rng.standard_normal(x.shape) * np.abs(x).mean()
    if target == "sigma":
        direction = np.abs(direction)  # sigma + h d stays >= 0
    j = misfit(p, y, **kw)
    check = taylor_test(lambda v: j(**{target: v}), x, getattr(grads, target), direction,
                        h0=2e-3 if target != "sigma" else 2e-2, n=4)
    assert np.all(np.abs(check.first_slopes - 1) < 0.1), check.first_slopes
    if target == "source_amplitude":  # linear: the second remainder is rounding only
        assert check.second.max() < 1e-9 * check.first.max()
    else:
        assert np.all(np.abs(check.second_slopes - 2) < 0.1), check.second_slopes


def smooth_direction(shape, seed):
    """A smooth random field (sum of low-order cosines), as a model update would be."""
    rng = np.random.default_rng(seed)
    z = np.linspace(0, np.pi, shape[-2])[:, None]
    x = np.linspace(0, np.pi, shape[-1])[None, :]
    return sum(rng.standard_normal() * np.cos(a * z) * np.cos(b * x)
               for a in range(3) for b in range(3))


@pytest.mark.parametrize("order", (2, 8))
def test_central_differences_along_smooth_directions(order):
    p = problem(nt=60, seed=order)
    kw = dict(stencil=order, pml_width=3)
    res = run(p, requires_grad=ALL, **kw)
    y = np.random.default_rng(order).standard_normal(res.receiver_data.shape)
    grads = res.vjp(y)
    j = misfit(p, y, **kw)
    for k, target in enumerate(ALL):
        x = p[target]
        if target == "source_amplitude":
            d = np.random.default_rng(k).standard_normal(x.shape)
        else:
            d = smooth_direction(x.shape, k) * np.abs(x).mean() * 0.01
        h = 1e-3
        fd = (j(**{target: x + h * d}) - j(**{target: x - h * d})) / (2 * h)
        adj = float(np.sum(getattr(grads, target) * d))
        assert abs(fd - adj) <= 1e-6 * abs(fd), (target, fd, adj)


@pytest.mark.parametrize("order,pml", [(2, 0), (4, (3, 0, 2, 5)), (6, 4), (8, 2)])
def test_reference_and_cpu_gradients_agree(order, pml):
    # Bit for bit in 2-D (bench/reference_parity.py measures 0 for every order).
    p = problem(nt=45, seed=11)
    kw = dict(stencil=order, pml_width=pml, requires_grad=ALL)
    ref, cpu = run(p, "reference", **kw), run(p, "cpu", n_threads=2, **kw)
    y = np.random.default_rng(0).standard_normal(ref.receiver_data.shape)
    for name, a, b in zip(ALL, ref.vjp(y), cpu.vjp(y)):
        assert np.abs(a).max() > 0, name
        np.testing.assert_array_equal(b, a, err_msg=name)


@pytest.mark.parametrize("order", (6, 8))
def test_models_thinner_than_the_stencil(order):
    # 3 x 2 cells inside CPML on every side: the slabs of both sides of an axis
    # are within one stencil of each other, and a row can both own memories
    # and reach the other slab.
    p = problem(nz=3, nx=2, nt=30, seed=order, n_rec=2)
    kw = dict(stencil=order, pml_width=(3, 2, 4, 3), requires_grad=ALL)
    ref, cpu = run(p, "reference", **kw), run(p, "cpu", **kw)
    y = np.random.default_rng(0).standard_normal(ref.receiver_data.shape)
    for name, a, b in zip(ALL, ref.vjp(y), cpu.vjp(y)):
        np.testing.assert_array_equal(b, a, err_msg=name)


def test_batched_models_give_per_model_gradients():
    B = 3
    p = problem(batch=B, seed=4, nt=30)
    kw = dict(stencil=4, pml_width=2, requires_grad=ALL)
    res = run(p, **kw)
    y = np.random.default_rng(0).standard_normal(res.receiver_data.shape)
    g = res.vjp(y)
    assert g.epsilon.shape == (B, 15, 17) and g.source_amplitude.shape == (2, 2, 40 - 10)
    total_source = 0
    for b in range(B):
        single = {**p, **{k: p[k][b] for k in ("epsilon", "sigma", "mu")}}
        gs = run(single, **kw).vjp(y[b])
        for name in ("epsilon", "sigma", "mu"):
            assert rel_err(getattr(g, name)[b], getattr(gs, name)) <= 1e-12
        total_source = total_source + gs.source_amplitude
    assert rel_err(g.source_amplitude, total_source) <= 1e-12  # shared shots: summed


def test_float32_gradients_close_to_float64():
    p64 = problem(seed=6, nt=40)
    p32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64
               else v) for k, v in p64.items()}
    kw = dict(stencil=4, pml_width=3, requires_grad=ALL)
    r64, r32 = run(p64, **kw), run(p32, **kw)
    y = np.random.default_rng(0).standard_normal(r64.receiver_data.shape)
    for a, b in zip(r64.vjp(y), r32.vjp(y.astype(np.float32))):
        assert b.dtype == np.float32
        assert rel_err(b, a) <= 1e-4


def test_sampling_interval_keeps_receivers_and_approximates_gradient():
    # A well-sampled wavelet (about 60 steps per period at its peak frequency):
    # sub-sampled snapshots approximate the imaging integral.
    p = problem(nt=167, seed=8, nz=25, nx=25)  # 167 % k != 0 for every k below
    period = 60 * p["dt"]
    p["source_amplitude"] = np.broadcast_to(
        wavecore.ricker(1 / period, 167, p["dt"]), p["source_amplitude"].shape).copy()
    kw = dict(stencil=4, pml_width=3)
    plain = run(p, **kw)
    y = plain.receiver_data  # the gradient of 0.5 |d|^2: smooth in time like the data
    exact = run(p, requires_grad=("epsilon", "sigma"), **kw).vjp(y)
    errors = {}
    for k in (2, 3, 4, 8):
        res = run(p, requires_grad=("epsilon", "sigma"), model_gradient_sampling_interval=k,
                  **kw)
        np.testing.assert_array_equal(res.receiver_data, plain.receiver_data)
        assert res.storage.n_snapshots == -(-167 // k)
        g = res.vjp(y)
        errors[k] = rel_err(g.epsilon, exact.epsilon)
    print("relative epsilon-gradient error vs k:", errors)
    assert 0 < errors[2] < errors[4] < errors[8] < 0.2, errors


def test_backward_callback_steps_state_and_parity():
    p = problem(nt=23, seed=9)
    seen = {}
    for backend in ("reference", "cpu"):
        log = []

        def callback(state):
            assert state.is_backward
            log.append((state.step, state.get_wavefield("lam_ey", "full").copy(),
                        state.get_gradient("epsilon", "full").copy()))

        res = run(p, backend, stencil=4, pml_width=2, requires_grad=("epsilon",),
                  backward_callback=callback, callback_frequency=5)
        y = np.random.default_rng(0).standard_normal(res.receiver_data.shape)
        final = res.vjp(y).epsilon
        assert [s for s, _, _ in log] == [20, 15, 10, 5, 0]
        # At step 0 the gradient is complete: folding it gives vjp's result.
        folded = wavecore.gradients.fold_padding(log[-1][2][None], res.plan.axes)[0]
        assert rel_err(folded, final) <= 1e-12
        assert np.abs(log[0][1]).max() > 0
        seen[backend] = log
    for (s1, lam1, g1), (s2, lam2, g2) in zip(seen["reference"], seen["cpu"]):
        assert s1 == s2 and rel_err(lam2, lam1) <= 1e-12 and rel_err(g2, g1) <= 1e-11


def test_vjp_api_errors_and_lifetime():
    p = problem(nt=10)
    plain = run(p)
    with pytest.raises(RuntimeError, match="requires_grad"):
        plain.vjp(plain.receiver_data)
    with run(p, requires_grad=("epsilon",)) as res:
        with pytest.raises(ValueError, match="shape of receiver_data"):
            res.vjp(np.zeros(3))
        with pytest.raises(ValueError, match="finite"):
            res.vjp(np.full(res.receiver_data.shape, np.nan))
        g = res.vjp(np.ones(res.receiver_data.shape), keep=True)
        again = res.vjp(np.ones(res.receiver_data.shape))
        np.testing.assert_array_equal(g.epsilon, again.epsilon)
        assert g.sigma is None and g.mu is None and g.source_amplitude is None
        with pytest.raises(RuntimeError, match="freed"):
            res.vjp(np.ones(res.receiver_data.shape))


@pytest.mark.parametrize("bad,error,match", [
    (dict(requires_grad=("eps",)), ValueError, "unknown names"),
    (dict(requires_grad=3), TypeError, "requires_grad"),
    (dict(model_gradient_sampling_interval=0, requires_grad="epsilon"), ValueError,
     "model_gradient_sampling_interval must be >= 1"),
    (dict(model_gradient_sampling_interval=2), ValueError, "only acts on model gradients"),
    (dict(storage_mode="disk"), ValueError, "only act when model gradients"),
    (dict(storage_mode="tape", requires_grad="epsilon"), ValueError, "storage_mode must be"),
    (dict(storage_compression="bf16", requires_grad="epsilon"), ValueError, "float32"),
    (dict(storage_compression="zip", requires_grad="epsilon"), ValueError,
     "storage_compression"),
    (dict(storage_mode="none", requires_grad="epsilon"), ValueError, "storage_mode='none'"),
    (dict(backward_callback=print), ValueError, "needs requires_grad"),
    (dict(storage_chunk_steps=4, storage_mode="device", requires_grad="epsilon"), ValueError,
     "no effect"),
    (dict(storage_mode="device", storage_bytes_limit_device=100, requires_grad="epsilon"),
     MemoryError, "storage_bytes_limit_device"),
])
def test_gradient_option_errors(bad, error, match):
    with pytest.raises(error, match=match):
        run(problem(nt=10), **bad)


def test_source_gradient_needs_sources_and_none_storage_is_fine_for_it():
    p = problem(nt=10)
    res = run(p, requires_grad="source_amplitude", storage_mode="none")
    assert res.storage.mode == "none" and res.storage.bytes == 0
    assert res.vjp(np.ones(res.receiver_data.shape)).source_amplitude.shape == (2, 2, 10)
    with pytest.raises(ValueError, match="no sources"):
        run({**p, "source_amplitude": None, "source_location": None}, nt=10,
            requires_grad="source_amplitude")


def test_compiled_adjoint_refuses_missing_buffers():
    from types import SimpleNamespace

    from wavecore._cpu import _tm2d

    with pytest.raises(ValueError, match="lam_ey"):
        _tm2d.adjoint(SimpleNamespace(ey=np.zeros((1, 8, 8))), 2, 1, 1, 1)
