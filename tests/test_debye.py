"""Debye media (``dispersion=wavecore.Debye(...)``): the reduction to the lossy
scheme, exact adjoints, gradients of every input, batched per-model poles,
continuation, storage modes, the state, the estimates and bad input.

The peer cross-check is in ``test_tide_crosscheck.py``; the analytic check in
``test_debye_analytic.py``; the numpy reference and the emulated CUDA kernels
against the CPU core in ``test_debye_reference.py`` and ``test_debye_cuda.py``.
"""

import warnings

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, random_problem_3d, rel_err, stable_dt
from wavecore.testing import dottest, taylor_test

SPACING = (0.01, 0.013)
ALL = ("epsilon", "sigma", "mu", "delta_epsilon", "tau", "source_amplitude")


def poles(shape, n_poles=2, seed=0, dtype=np.float64):
    """Heterogeneous poles: strengths 1-4 and relaxation times 0.1-1 ns."""
    rng = np.random.default_rng(seed)
    de = (1.0 + 3.0 * rng.random((n_poles, *shape))).astype(dtype)
    tau = (10.0 ** rng.uniform(-10, -9, (n_poles, *shape))).astype(dtype)
    return wavecore.Debye(de, tau)


def problem(nz=14, nx=16, nt=40, shots=2, n_src=2, n_rec=3, seed=0, dtype=np.float64,
            batch=None):
    eps, sig, mu = random_model(nz, nx, dtype, seed=seed, batch=batch)
    sig = (sig * 10).astype(dtype)
    amp, src, rec = random_acquisition(nz, nx, shots, n_src, n_rec, nt, dtype, seed=seed + 1)
    dt = stable_dt(SPACING, float(eps.min()), float(mu.min()))
    return dict(epsilon=eps, sigma=sig, mu=mu, grid_spacing=SPACING, dt=dt,
                source_amplitude=amp, source_location=src, receiver_location=rec)


def problem3(n=(8, 9, 10), nt=24, shots=1, seed=0, dtype=np.float64):
    return random_problem_3d(n, nt, shots, seed, dtype)


def run(p, system="tm2d", **kw):
    return getattr(wavecore, system)(**p, **kw)


# -- the scheme --------------------------------------------------------------------

@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_zero_strength_poles_give_the_lossy_result_bit_for_bit(system):
    p = problem() if system == "tm2d" else problem3()
    shape = p["epsilon"].shape
    plain = run(p, system, stencil=4, pml_width=3)
    none = wavecore.Debye(np.zeros((2, *shape)), np.full((2, *shape), 3e-10))
    debye = run(p, system, stencil=4, pml_width=3, dispersion=none)
    np.testing.assert_array_equal(debye.receiver_data, plain.receiver_data)
    for name, value in plain.final_state.items():
        np.testing.assert_array_equal(debye.final_state[name], value)
    assert not np.any([np.any(v) for k, v in debye.final_state.items() if k.startswith("pol")])


def test_poles_change_the_data_and_the_state_holds_them():
    p = problem()
    d = poles(p["epsilon"].shape)
    res = run(p, stencil=4, pml_width=3, dispersion=d)
    plain = run(p, stencil=4, pml_width=3)
    assert rel_err(res.receiver_data, plain.receiver_data) > 0.05
    pol = res.final_state["pol_ey"]
    assert pol.shape == (2, 2, *res.final_state["ey"].shape[1:])  # [S, P, *domain]
    assert np.abs(pol).max() > 0


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_a_run_continued_from_its_state_equals_one_long_run(system):
    p = problem(nt=40) if system == "tm2d" else problem3(nt=24)
    d = poles(p["epsilon"].shape, seed=3)
    nt = p["source_amplitude"].shape[-1]
    half = nt // 2
    kw = dict(stencil=4, pml_width=3, dispersion=d)
    full = run(p, system, **kw)
    first = run({**p, "source_amplitude": p["source_amplitude"][..., :half]}, system, **kw)
    second = run({**p, "source_amplitude": p["source_amplitude"][..., half:]}, system,
                 initial_state=first.final_state, **kw)
    np.testing.assert_array_equal(
        np.concatenate([first.receiver_data, second.receiver_data], -1), full.receiver_data)
    for name in full.final_state:
        np.testing.assert_array_equal(second.final_state[name], full.final_state[name])


def test_batched_models_with_their_own_poles_equal_separate_runs():
    p = problem(batch=2)
    rng = np.random.default_rng(5)
    de = 1.0 + 3.0 * rng.random((3, 2, *p["epsilon"].shape[1:]))   # [P, B, nz, nx]
    tau = 10.0 ** rng.uniform(-10, -9, de.shape)
    kw = dict(stencil=4, pml_width=3)
    both = run(p, dispersion=wavecore.Debye(de, tau), **kw)
    for b in range(2):
        one = run({**p, "epsilon": p["epsilon"][b], "sigma": p["sigma"][b], "mu": p["mu"][b]},
                  dispersion=wavecore.Debye(de[:, b], tau[:, b]), **kw)
        np.testing.assert_array_equal(both.receiver_data[b], one.receiver_data)
        np.testing.assert_array_equal(both.final_state["pol_ey"][b], one.final_state["pol_ey"])


def test_scalar_and_model_shaped_poles_are_one_pole():
    p = problem()
    shape = p["epsilon"].shape
    kw = dict(stencil=2, pml_width=3)
    a = run(p, dispersion=wavecore.Debye(2.0, 5e-10), **kw)
    b = run(p, dispersion=wavecore.Debye(np.full(shape, 2.0), np.full(shape, 5e-10)), **kw)
    c = run(p, dispersion=wavecore.Debye([2.0], [5e-10]), **kw)
    np.testing.assert_array_equal(a.receiver_data, b.receiver_data)
    np.testing.assert_array_equal(a.receiver_data, c.receiver_data)
    assert a.final_state["pol_ey"].shape[1] == 1


def test_callbacks_see_the_polarization():
    p = problem()
    seen = []
    run(p, stencil=2, pml_width=3, dispersion=poles(p["epsilon"].shape),
        forward_callback=lambda s: seen.append(np.abs(s.wavefields["pol_ey"]).max()),
        callback_frequency=10)
    assert len(seen) == 4 and seen[0] == 0 and seen[-1] > 0


# -- gradients ---------------------------------------------------------------------

#: The backends of a run: the compiled CPU core, the numpy reference and the CUDA
#: kernels compiled for the CPU (a GPU runs the same kernels: tests/test_debye_cuda.py).
BACKENDS = {"cpu": {}, "reference": {"python_backend": True},
            "cuda-emulated": {"device": "cuda-emulated"}}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order", (2, 4, 6, 8))
@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_dot_product_with_poles(system, order, backend):
    p = problem(seed=order) if system == "tm2d" else problem3(seed=order, nt=16)
    if system == "tm2d":
        p["source_location"][1, 1] = p["source_location"][1, 0]  # a shared source cell
    kw = dict(stencil=order, pml_width=2, dispersion=poles(p["epsilon"].shape, 3, order),
              **BACKENDS[backend])

    def forward(amplitude):
        return run({**p, "source_amplitude": amplitude}, system, **kw).receiver_data

    def adjoint(y):
        return run(p, system, requires_grad="source_amplitude", **kw).vjp(y).source_amplitude

    y = np.random.default_rng(order).standard_normal(forward(p["source_amplitude"]).shape)
    error = dottest(forward, adjoint, p["source_amplitude"], y).relative_error
    print(f"{system} stencil {order} {backend}: dot-product error {error:.1e}")
    assert error <= 1e-12


def misfit(p, y, system="tm2d", **kw):
    """J = <y, receiver_data> as a function of the inputs (poles by name)."""
    d = kw.pop("dispersion")

    def J(**changes):
        disp = wavecore.Debye(changes.pop("delta_epsilon", d.delta_epsilon),
                              changes.pop("tau", d.tau))
        return float(np.sum(y * run({**p, **changes}, system, dispersion=disp,
                                    **kw).receiver_data))
    return J


@pytest.mark.parametrize("target", ("delta_epsilon", "tau", "epsilon", "sigma"))
@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_taylor_slopes_and_central_differences(system, target):
    p = problem(nt=50, seed=3) if system == "tm2d" else problem3(nt=30, seed=3)
    d = poles(p["epsilon"].shape, 2, seed=4)
    kw = dict(stencil=4, pml_width=3)
    res = run(p, system, requires_grad=ALL, dispersion=d, **kw)
    y = np.random.default_rng(1).standard_normal(res.receiver_data.shape)
    g = getattr(res.vjp(y), target)
    J = misfit(p, y, system, dispersion=d, **kw)
    x = d.delta_epsilon if target == "delta_epsilon" else d.tau if target == "tau" else p[target]
    assert g.shape == x.shape
    # relative steps (x + h d stays positive): all the inputs are positive
    direction = np.random.default_rng(2).uniform(0.5, 1.5, x.shape) * x
    test = taylor_test(lambda v: J(**{target: v}), x, g, direction, h0=2e-3, n=4)
    print(f"{system} {target}: slopes {test.first_slopes} {test.second_slopes}")
    assert np.all(np.abs(test.first_slopes - 1) < 0.1), test.first_slopes
    # the second remainder's slope tends to 2 (epsilon's third-order term is strong)
    assert np.all(np.abs(test.second_slopes - 2) < 0.15), test.second_slopes
    assert abs(test.second_slopes[-1] - 2) < 0.05, test.second_slopes
    # central differences converge like h^2 to <g, d>: measured 2e-8 at most at h = 1e-5
    h = 1e-5
    central = (J(**{target: x + h * direction}) - J(**{target: x - h * direction})) / (2 * h)
    assert central == pytest.approx(float(np.vdot(g, direction)), rel=1e-6)


def test_gradients_of_only_the_poles_do_not_vanish():
    # TIDE 0.1.2 returns zero gradients for delta_epsilon or tau requested alone.
    p = problem()
    d = poles(p["epsilon"].shape)
    y = np.random.default_rng(0).standard_normal(run(p, dispersion=d).receiver_data.shape)
    both = run(p, requires_grad=ALL, dispersion=d).vjp(y)
    for target in ("delta_epsilon", "tau"):
        alone = run(p, requires_grad=target, dispersion=d).vjp(y)
        assert np.abs(getattr(alone, target)).max() > 0
        np.testing.assert_allclose(getattr(alone, target), getattr(both, target), rtol=1e-12,
                                   atol=0)
        assert alone.epsilon is None and alone.sigma is None


def test_pole_gradients_come_back_shaped_like_the_inputs():
    p = problem(batch=2)
    shape = p["epsilon"].shape
    y = None
    for d, expected in ((wavecore.Debye(2.0, 5e-10), ()),
                        (wavecore.Debye([2.0, 1.0], [5e-10, 1e-10]), (2,)),
                        (wavecore.Debye(np.full(shape, 2.0), np.full(shape, 5e-10)), shape),
                        (poles(shape, 3), (3, *shape))):
        res = run(p, requires_grad=("delta_epsilon", "tau"), dispersion=d)
        y = np.ones_like(res.receiver_data) if y is None else y
        g = res.vjp(y)
        assert g.delta_epsilon.shape == expected and g.tau.shape == expected


@pytest.mark.parametrize("mode", ("device", "disk"))
def test_storage_modes_and_sampling_interval(mode, tmp_path):
    p = problem(nt=30)
    d = poles(p["epsilon"].shape)
    kw = dict(stencil=4, pml_width=3, dispersion=d, requires_grad=ALL)
    y = np.random.default_rng(0).standard_normal(run(p, dispersion=d).receiver_data.shape)
    ref = run(p, **kw).vjp(y)
    extra = dict(storage_path=str(tmp_path), storage_chunk_steps=7) if mode == "disk" else {}
    other = run(p, storage_mode=mode, **kw, **extra).vjp(y)
    for name in ALL:
        np.testing.assert_array_equal(getattr(other, name), getattr(ref, name))
    coarse = run(p, model_gradient_sampling_interval=2, **kw, **extra).vjp(y)
    fine = run(p, model_gradient_sampling_interval=2, **kw).vjp(y)
    for name in ("epsilon", "delta_epsilon", "tau"):  # every other step, weighted by 2
        np.testing.assert_array_equal(getattr(coarse, name), getattr(fine, name))
        assert getattr(fine, name).shape == getattr(ref, name).shape
        assert 0 < rel_err(getattr(fine, name), getattr(ref, name))


def test_bf16_snapshots_give_close_gradients():
    p = problem(nt=40, dtype=np.float32)
    d = poles(p["epsilon"].shape, dtype=np.float32)
    kw = dict(stencil=4, pml_width=3, dispersion=d, requires_grad=ALL)
    res = run(p, **kw)
    y = np.random.default_rng(0).standard_normal(res.receiver_data.shape).astype(np.float32)
    full = res.vjp(y)
    half = run(p, storage_compression="bf16", **kw).vjp(y)
    for name in ("epsilon", "sigma", "mu", "delta_epsilon", "tau"):
        err = rel_err(getattr(half, name), getattr(full, name))
        print(f"bf16 {name}: {err:.2e}")
        assert err < 0.05
    np.testing.assert_array_equal(half.source_amplitude, full.source_amplitude)


# -- estimates, validation ---------------------------------------------------------

def test_memory_estimate_counts_the_polarization_and_its_snapshots():
    p = problem()
    shape = p["epsilon"].shape
    plain = wavecore.estimate_memory(**p, requires_grad="epsilon")
    one = wavecore.estimate_memory(**p, requires_grad="epsilon",
                                   dispersion=wavecore.Debye(2.0, 5e-10))
    three = wavecore.estimate_memory(**p, requires_grad="epsilon",
                                     dispersion=poles(shape, 3))
    cells = one.fields / plain.fields
    assert cells == pytest.approx(4 / 3)                 # ey, hx, hz + one polarization
    assert three.fields / plain.fields == pytest.approx(6 / 3)
    assert three.snapshots > one.snapshots > plain.snapshots
    res = run(p, requires_grad="epsilon", dispersion=poles(shape, 3))
    assert (res.memory.fields, res.memory.snapshots) == (three.fields, three.snapshots)
    storage = wavecore.estimate_storage(**p, requires_grad="epsilon", dispersion=poles(shape, 3))
    # E and curl (ca, cb), three poles and E_new + E_old per stored step
    assert storage.bytes_per_snapshot == 6 * int(np.prod(storage.slot_shape)) * 8
    assert storage.bytes == three.snapshots


def _bad(kind, s):
    ok_de, ok_tau = np.ones((1, *s)), np.full((1, *s), 1e-9)
    return {"negative": lambda: wavecore.Debye(-ok_de, ok_tau),
            "zero tau": lambda: wavecore.Debye(ok_de, 0 * ok_tau),
            "nan tau": lambda: wavecore.Debye(ok_de, np.nan * ok_tau),
            "tau below dt": lambda: wavecore.Debye(ok_de, 1e-5 * ok_tau),
            "model shape": lambda: wavecore.Debye(np.ones((2, 3, 3)), np.full((2, 3, 3), 1e-9)),
            "pole shapes": lambda: wavecore.Debye(np.ones((2, *s)), ok_tau),
            "no pole": lambda: wavecore.Debye([], [])}[kind]


@pytest.mark.parametrize("kind, message", [
    ("negative", "delta_epsilon .* >= 0"), ("zero tau", "tau .* > 0"), ("nan tau", "tau"),
    ("tau below dt", r"min\(tau\)"), ("model shape", r"n_poles, \*model_shape"),
    ("pole shapes", "one shape"), ("no pole", "at least one pole")])
def test_bad_poles_are_refused_before_any_work(kind, message):
    p = problem()
    seen = []
    with pytest.raises((ValueError, TypeError), match=message):
        run(p, dispersion=_bad(kind, p["epsilon"].shape)(),
            forward_callback=lambda s: seen.append(s.step))
    assert seen == []


def test_pole_dtype_must_match_the_model():
    p = problem(dtype=np.float32)
    shape = p["epsilon"].shape
    with pytest.raises(TypeError, match="dtype"):
        run(p, dispersion=wavecore.Debye(np.full(shape, 2.0), np.full(shape, 1e-9)))
    run(p, dispersion=wavecore.Debye(2.0, 1e-9))  # scalars take the model's dtype


def test_requires_grad_names_poles_only_with_dispersion():
    p = problem()
    with pytest.raises(ValueError, match="delta_epsilon"):
        run(p, requires_grad="delta_epsilon")


def test_cfl_uses_eps_inf_and_tau_in_nanoseconds_warns():
    p = problem()
    d = wavecore.Debye(30.0, 1.0)  # tau = 1 s: a unit mistake (meant 1 ns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run(p, dispersion=d)
    assert any("tau" in str(w.message) for w in caught)
    assert res.step_ratio == 1  # the step comes from eps_inf, not eps_inf + delta_epsilon


def test_from_layers_builds_pole_arrays():
    labels = np.array([[0, 1, 2], [2, 1, 0]])
    d = wavecore.Debye.from_layers(labels, {0: None, 1: ([6.0], [1e-9]),
                                            2: ([9.0, 3.0], [2e-9, 1e-10])})
    assert d.delta_epsilon.shape == (2, 2, 3)
    np.testing.assert_array_equal(d.delta_epsilon[0], [[0, 6, 9], [9, 6, 0]])
    np.testing.assert_array_equal(d.delta_epsilon[1], [[0, 0, 3], [3, 0, 0]])
    assert d.tau[0, 0, 2] == 2e-9 and d.tau[1, 0, 2] == 1e-10
    with pytest.raises(ValueError, match="no entry"):
        wavecore.Debye.from_layers(labels, {0: None, 1: ([6.0], [1e-9])})
