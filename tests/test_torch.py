"""wavecore.torch: autograd wrappers (gradcheck in float64, equality with vjp),
and torch tensors accepted by the numpy API through DLPack."""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, stable_dt

torch = pytest.importorskip("torch", reason="wavecore.torch needs torch (the local 2.13.0 "
                                           "CPU wheel: pip install torch==2.13.0)")
import wavecore.torch as wt  # noqa: E402


def small(nz=8, nx=9, nt=12, dtype=np.float64):
    eps, sig, mu = random_model(nz, nx, dtype, seed=3)
    sig = sig * 20
    amp, src, rec = random_acquisition(nz, nx, 2, 1, 3, nt, dtype, seed=4)
    return eps, sig, mu, stable_dt((0.01, 0.012), float(eps.min()), float(mu.min())), amp, \
        src, rec


def test_gradcheck_float64():
    eps, sig, mu, dt, amp, src, rec = small()
    base = [torch.tensor(a) for a in (eps, sig, mu, amp)]
    scale = float(np.abs(wavecore.tm2d(eps, sig, mu, (0.01, 0.012), dt, amp, src, rec,
                                       stencil=4, pml_width=2).receiver_data).max())

    def f(*x):  # relative perturbations of every input, data scaled to O(1)
        e, s, m, a = (b * (1 + xi) for b, xi in zip(base, x))
        return wt.tm2d(e, s, m, (0.01, 0.012), dt, a, src, rec, stencil=4,
                       pml_width=2) / scale

    x = tuple(torch.zeros_like(b, requires_grad=True) for b in base)
    assert torch.autograd.gradcheck(f, x, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradients_equal_vjp_and_partial_requires_grad():
    eps, sig, mu, dt, amp, src, rec = small()
    e = torch.tensor(eps, requires_grad=True)
    a = torch.tensor(amp, requires_grad=True)
    data = wt.tm2d(e, torch.tensor(sig), torch.tensor(mu), (0.01, 0.012), dt, a, src, rec,
                   stencil=2, pml_width=2)
    w = torch.linspace(-1, 1, data.numel(), dtype=data.dtype).reshape(data.shape)
    (data * w).sum().backward()
    ref = wavecore.tm2d(eps, sig, mu, (0.01, 0.012), dt, amp, src, rec, stencil=2, pml_width=2,
                        requires_grad=("epsilon", "source_amplitude"))
    np.testing.assert_array_equal(data.detach().numpy(), ref.receiver_data)
    g = ref.vjp(w.numpy())
    np.testing.assert_allclose(e.grad.numpy(), g.epsilon, rtol=1e-12, atol=0)
    np.testing.assert_allclose(a.grad.numpy(), g.source_amplitude, rtol=1e-12, atol=0)


def test_maxwell3d_wrapper():
    rng = np.random.default_rng(0)
    shape = (5, 6, 7)
    eps = torch.tensor(3 + rng.random(shape), requires_grad=True)
    sig, mu = torch.full(shape, 1e-2, dtype=torch.float64), torch.ones(shape, dtype=torch.float64)
    dt = stable_dt((0.01,) * 3, 3.0, 1.0)
    amp = torch.tensor(rng.standard_normal((1, 1, 10)))
    src, rec = np.array([[[2, 3, 3]]]), np.array([[[1, 1, 2], [3, 4, 5]]])
    data = wt.maxwell3d(eps, sig, mu, 0.01, dt, amp, src, rec, pml_width=1,
                        receiver_component=["ey", "hz"])
    assert data.shape == (1, 2, 2, 10)
    data.square().sum().backward()
    assert eps.grad is not None and eps.grad.abs().max() > 0


def test_numpy_api_takes_torch_tensors_without_copies():
    eps, sig, mu, dt, amp, src, rec = small()
    tensors = [torch.tensor(x) for x in (eps, sig, mu, amp)]
    res = wavecore.tm2d(*tensors[:3], (0.01, 0.012), dt, tensors[3], torch.tensor(src),
                        torch.tensor(rec))
    ref = wavecore.tm2d(eps, sig, mu, (0.01, 0.012), dt, amp, src, rec)
    assert isinstance(res.receiver_data, np.ndarray)  # numpy out (documented rule)
    np.testing.assert_array_equal(res.receiver_data, ref.receiver_data)
    from wavecore._xp import from_dlpack_like

    view = from_dlpack_like(tensors[0])
    assert np.shares_memory(view, tensors[0].numpy())  # zero-copy


def test_import_wavecore_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, wavecore; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_debye_poles_get_their_gradients():
    # dispersion= takes any object with delta_epsilon and tau (here a pair of tensors).
    eps, sig, mu, dt, amp, src, rec = small()
    rng = np.random.default_rng(7)
    de_np = 1 + 3 * rng.random((2, *eps.shape))
    tau_np = 10.0 ** rng.uniform(-10, -9, de_np.shape)
    de = torch.tensor(de_np, requires_grad=True)
    tau = torch.tensor(tau_np, requires_grad=True)
    e = torch.tensor(eps, requires_grad=True)
    kw = dict(stencil=4, pml_width=2)
    data = wt.tm2d(e, torch.tensor(sig), torch.tensor(mu), (0.01, 0.012), dt,
                   torch.tensor(amp), src, rec, dispersion=(de, tau), **kw)
    w = torch.linspace(-1, 1, data.numel(), dtype=data.dtype).reshape(data.shape)
    (data * w).sum().backward()
    ref = wavecore.tm2d(eps, sig, mu, (0.01, 0.012), dt, amp, src, rec,
                        dispersion=wavecore.Debye(de_np, tau_np), **kw,
                        requires_grad=("epsilon", "delta_epsilon", "tau"))
    np.testing.assert_array_equal(data.detach().numpy(), ref.receiver_data)
    g = ref.vjp(w.numpy())
    for tensor, want in ((e, g.epsilon), (de, g.delta_epsilon), (tau, g.tau)):
        np.testing.assert_allclose(tensor.grad.numpy(), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("debye", [False, True])
def test_double_backward_is_the_full_hessian_product(debye):
    """grad(<grad loss, v>) through the adapter equals wavecore.inversion.hvp
    (the L2 misfit's full Hessian product: jvp and second_vjp inside autograd)."""
    from wavecore.inversion import hvp

    eps, sig, mu, dt, amp, src, rec = small(nt=16)
    names = ("epsilon", "sigma")
    kw = dict(stencil=4, pml_width=2)
    extra = {}
    if debye:
        de = np.full((1, *eps.shape), 2.0)
        tau = np.full((1, *eps.shape), 3e-10)
        extra["dispersion"] = wavecore.Debye(de, tau)
    observed = 0.9 * wavecore.tm2d(eps * 1.1, sig, mu, (0.01, 0.012), dt, amp, src, rec,
                                   **kw, **extra).receiver_data
    e, s = (torch.tensor(a, requires_grad=True) for a in (eps, sig))
    data = wt.tm2d(e, s, torch.tensor(mu), (0.01, 0.012), dt, torch.tensor(amp), src, rec,
                   **kw, **extra)
    loss = 0.5 * ((data - torch.tensor(observed)) ** 2).sum()
    ge, gs = torch.autograd.grad(loss, (e, s), create_graph=True)
    rng = np.random.default_rng(2)
    v = {"epsilon": rng.standard_normal(eps.shape), "sigma": 1e-3 * rng.standard_normal(eps.shape)}
    he, hs = torch.autograd.grad((ge * torch.tensor(v["epsilon"])).sum()
                                 + (gs * torch.tensor(v["sigma"])).sum(), (e, s))
    res = wavecore.tm2d(eps, sig, mu, (0.01, 0.012), dt, amp, src, rec, requires_grad=names,
                        **kw, **extra)
    ref = hvp(res, v, observed, "l2")
    for got, want in ((he, ref.epsilon), (hs, ref.sigma)):
        err = np.abs(got.numpy() - want).max() / np.abs(want).max()
        assert err <= 1e-12, err
