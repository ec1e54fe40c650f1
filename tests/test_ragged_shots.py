"""Shots with different numbers of sources and receivers (issue 15, item 12).

A location of -1 on every axis is a padding entry; a ragged nested list is
padded with it. Padding receivers read zeros, padding sources inject nothing
and get a zero gradient, and everything else is what the shots give when run
one by one, on every backend (numpy reference, CPU core, emulated CUDA).
"""

import numpy as np
import pytest

import wavecore
from conftest import random_model, stable_dt
from wavecore.testing import dottest

BACKENDS = {"reference": dict(python_backend=True), "cpu": {},
            "cuda-emulated": dict(device="cuda-emulated")}
SYSTEMS = ("tm2d", "maxwell3d")


def problem(system, nt=24, seed=0):
    """Two shots: one source and two receivers, then two sources and three
    receivers (both padded to 2 sources and 3 receivers)."""
    rng = np.random.default_rng(seed)
    if system == "tm2d":
        shape = (12, 14)
        eps, sig, mu = random_model(*shape, seed=seed)
        run = wavecore.tm2d
    else:
        shape = (8, 9, 10)
        eps, sig, mu = (a[None].repeat(8, 0)[:, :9] for a in random_model(9, 10, seed=seed))
        run = wavecore.maxwell3d
    ndim = len(shape)
    cell = lambda: [int(rng.integers(1, n - 1)) for n in shape]  # noqa: E731
    sources = [[cell()], [cell(), cell()]]
    receivers = [[cell(), cell()], [cell(), cell(), cell()]]
    amplitudes = [rng.standard_normal((len(s), nt)) for s in sources]
    pad = [-1] * ndim
    src = np.array([sources[0] + [pad], sources[1]])
    rec = np.array([receivers[0] + [pad], receivers[1]])
    amp = np.stack([np.concatenate([amplitudes[0], np.zeros((1, nt))]), amplitudes[1]])
    spacing = (0.01,) * ndim
    p = dict(epsilon=eps, sigma=sig * 10, mu=mu, grid_spacing=spacing,
             dt=stable_dt(spacing, float(eps.min()), float(mu.min())),
             source_amplitude=amp, source_location=src, receiver_location=rec)
    shots = [dict(p, source_amplitude=amplitudes[i][None], source_location=np.array([sources[i]]),
                  receiver_location=np.array([receivers[i]])) for i in range(2)]
    ragged = dict(p, source_amplitude=amplitudes, source_location=sources,
                  receiver_location=receivers)
    return run, p, shots, ragged


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_padded_shots_are_the_shots_run_alone(system, backend):
    run, p, shots, ragged = problem(system)
    kw = dict(stencil=4, pml_width=3, **BACKENDS[backend])
    res = run(**p, **kw)
    assert res.receiver_data.shape == (2, 3, 24)
    assert res.plan.n_receivers == 3 and res.plan.n_sources == 2
    assert np.all(res.receiver_data[0, 2] == 0)  # the padding receiver reads zeros
    for i, n_rec in enumerate((2, 3)):
        alone = run(**shots[i], **kw)
        np.testing.assert_allclose(res.receiver_data[i, :n_rec], alone.receiver_data[0],
                                   rtol=1e-13, atol=1e-13 * np.abs(alone.receiver_data).max())
        for name, value in alone.final_state.items():
            np.testing.assert_allclose(res.final_state[name][i], value[0], rtol=1e-13,
                                       atol=1e-13 * (np.abs(value).max() + 1e-300))
    # An amplitude at a padding source is ignored; a ragged list is padded the same way.
    amp = p["source_amplitude"].copy()
    amp[0, 1] = 7.0
    np.testing.assert_array_equal(run(**dict(p, source_amplitude=amp), **kw).receiver_data,
                                  res.receiver_data)
    assert p["source_amplitude"][0, 1].max() == 0  # the caller's array is not written
    np.testing.assert_array_equal(run(**ragged, **kw).receiver_data, res.receiver_data)


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dot_product_with_ragged_shots(system, backend):
    # Sources -> receivers is linear: <F a, y> = <a, F^T y> to rounding, with
    # random values in the padding slots of a and y too (F ignores them, F^T
    # gives zeros there).
    run, p, _, _ = problem(system, seed=3)
    kw = dict(stencil=4, pml_width=3, **BACKENDS[backend])
    rng = np.random.default_rng(1)
    a = rng.standard_normal(p["source_amplitude"].shape)
    y = rng.standard_normal((2, 3, 24))

    def forward(amplitude):
        return run(**dict(p, source_amplitude=amplitude), **kw).receiver_data

    def adjoint(g):
        grad = run(**p, requires_grad="source_amplitude", **kw).vjp(g).source_amplitude
        assert np.all(grad[0, 1] == 0)  # the padding source has no gradient
        return grad

    error = dottest(forward, adjoint, a, y).relative_error
    assert error <= 1e-12, error


@pytest.mark.parametrize("system", SYSTEMS)
def test_model_gradients_with_ragged_shots_are_the_sum_over_shots(system):
    run, p, shots, _ = problem(system, seed=5)
    kw = dict(stencil=4, pml_width=3, requires_grad=("epsilon", "sigma", "mu",
                                                     "source_amplitude"))
    y = np.random.default_rng(2).standard_normal((2, 3, 24))
    g = run(**p, **kw).vjp(y)
    y_masked = y.copy()
    y_masked[0, 2] = 0
    g_masked = run(**p, **kw).vjp(y_masked)
    for name in ("epsilon", "sigma", "mu", "source_amplitude"):  # padding slots are ignored
        np.testing.assert_array_equal(getattr(g, name), getattr(g_masked, name))
    alone = [run(**shots[i], **kw).vjp(y[i:i + 1, :n]) for i, n in enumerate((2, 3))]
    for name in ("epsilon", "sigma", "mu"):
        total = getattr(alone[0], name) + getattr(alone[1], name)
        np.testing.assert_allclose(getattr(g, name), total, rtol=0,
                                   atol=1e-12 * np.abs(total).max())
    np.testing.assert_allclose(g.source_amplitude[0, :1], alone[0].source_amplitude[0],
                               rtol=1e-12, atol=1e-12 * np.abs(g.source_amplitude).max())
    np.testing.assert_allclose(g.source_amplitude[1], alone[1].source_amplitude[0],
                               rtol=1e-12, atol=1e-12 * np.abs(g.source_amplitude).max())
    assert np.all(g.source_amplitude[0, 1] == 0)


def test_ragged_shots_with_batched_models_and_components():
    run, p, shots, ragged = problem("maxwell3d", seed=7)
    batched = {k: np.stack([p[k], p[k] * 1.1]) for k in ("epsilon", "sigma", "mu")}
    kw = dict(stencil=2, pml_width=2, receiver_component=["ey", "hz"])
    res = run(**{**p, **batched}, **kw)
    assert res.receiver_data.shape == (2, 2, 2, 3, 24)  # [B, S, components, receivers, nt]
    assert np.all(res.receiver_data[:, 0, :, 2] == 0)
    assert np.any(res.receiver_data[:, 0, :, :2] != 0)
    # Per-model ragged shots (a [B][S] nested list) pad across the models too.
    per_model = dict(ragged, receiver_location=[ragged["receiver_location"],
                                                [ragged["receiver_location"][1]] * 2],
                     **batched)
    out = run(**per_model, **kw).receiver_data
    np.testing.assert_array_equal(out[0], res.receiver_data[0])
    assert np.any(out[1, 0, :, 2] != 0)  # model 1, shot 0 now has three receivers


def test_shots_without_any_receiver_or_source():
    run, p, _, ragged = problem("tm2d")
    no_receivers = run(**dict(ragged, receiver_location=[[], ragged["receiver_location"][1]]),
                       stencil=2).receiver_data
    assert no_receivers.shape == (2, 3, 24)
    assert np.all(no_receivers[0] == 0) and np.all(np.abs(no_receivers[1]).max(-1) > 0)
    no_sources = run(**dict(ragged, source_amplitude=[np.zeros((0, 24)),
                                                      ragged["source_amplitude"][1]],
                            source_location=[[], ragged["source_location"][1]]),
                     stencil=2).receiver_data
    assert np.all(no_sources[0] == 0) and np.all(np.abs(no_sources[1]).max(-1) > 0)


@pytest.mark.parametrize("location,match", [
    ([[[2, 3], [-1, 5]]], "index -1 on axis z is outside the model .* -1 on every axis"),
    ([[[2, 3], [-2, -2]]], "index -2 on axis z"),
])
def test_only_minus_one_on_every_axis_is_padding(location, match):
    _, p, _, _ = problem("tm2d")
    with pytest.raises(ValueError, match=match):
        wavecore.tm2d(**dict(p, receiver_location=np.array(location * 2)))


def test_ragged_lists_must_differ_only_in_their_counts():
    _, p, _, ragged = problem("tm2d")
    bad = [ragged["receiver_location"][0], [[1, 2, 3]]]
    with pytest.raises(ValueError, match=r"receiver_location\[1\] has shape \(1, 3\).*only "
                                         "the number of sources or receivers"):
        wavecore.tm2d(**dict(ragged, receiver_location=bad))
    amp = [ragged["source_amplitude"][0], np.ones((2, 25))]
    with pytest.raises(ValueError, match=r"source_amplitude\[1\] has shape \(2, 25\)"):
        wavecore.tm2d(**dict(ragged, source_amplitude=amp))


@pytest.mark.parametrize("system", SYSTEMS)
def test_padding_with_cached_cuda_graphs(system):
    # experimental_cuda_graph caches buffers across calls of one layout: the
    # padding of each call (not of the first) decides which receivers read zeros.
    from wavecore._gpu import graphs

    run, p, _, _ = problem(system, seed=9)
    kw = dict(stencil=4, pml_width=3, device="cuda-emulated")
    other = p["receiver_location"].copy()
    other[0, 2], other[1, 0] = other[1, 2], -1  # the padding moves to shot 1
    graphs.clear_cuda_graph_cache()
    try:
        for rec in (p["receiver_location"], other, p["receiver_location"]):
            eager = run(**dict(p, receiver_location=rec), **kw).receiver_data
            with_graphs = run(**dict(p, receiver_location=rec), experimental_cuda_graph=True,
                              **kw).receiver_data
            np.testing.assert_array_equal(with_graphs, eager)
        assert graphs.cuda_graph_cache_info()["replays"] >= 3
        assert np.all(eager[0, 2] == 0) and np.any(eager[0, :2] != 0)
    finally:
        graphs.clear_cuda_graph_cache()
