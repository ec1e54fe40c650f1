"""The second-order adjoint ``result.second_vjp(v, c)`` (the gradient of
``<c, J(m) v>``) and the full Hessian product ``wavecore.inversion.hvp``.

``<second_vjp(v, c), w>`` is the second derivative ``D^2 <c, F>[v, w]`` of the
discrete map, symmetric in ``v`` and ``w``: the symmetry holds to rounding only
if all three of its sweeps (the adjoint keeping its values, the tangent imaged
against them, the adjoint driven by them) and the coefficients' curvature are
right, so it is the exactness test on every backend. Central differences of
``<c, J(m) v>`` check it on their own (with quadratic convergence).
"""

import numpy as np
import pytest

import wavecore
from test_jvp import MODEL, POLES, debye, directions, problem, problem3, run
from wavecore.inversion import hvp
from wavecore.inversion.misfit import HESSIANS, MISFITS

BACKENDS = ("cpu", "reference", "cuda-emulated")
NAMES = (*MODEL, "source_amplitude")


def pair(p, seed=1):
    """Directions v, w of every input (sigma's kept small enough for differences)."""
    v, w = directions(p, NAMES, seed=seed), directions(p, NAMES, seed=seed + 1)
    w["sigma"] = w["sigma"] * 0.01
    return v, w


def inner(g, v):
    return sum(float(np.vdot(getattr(g, k), v[k])) for k in v)


def symmetry_error(res, v, w, c):
    a = inner(res.second_vjp(v, c, keep=True), w)
    b = inner(res.second_vjp(w, c, keep=True), v)
    return abs(a - b) / max(abs(a), abs(b), 1e-300), a


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order,pml", [(2, 0), (4, 3), (6, (2, 0, 4, 1)), (8, 2)])
def test_second_vjp_is_symmetric_in_its_two_directions(backend, order, pml):
    p = problem(seed=order, nt=30)
    res = run(p, backend=backend, stencil=order, pml_width=pml, requires_grad=NAMES)
    c = np.random.default_rng(3).standard_normal(res.receiver_data.shape)
    v, w = pair(p)
    for name in MODEL:  # each direction alone (against all of w), then all together
        error, _ = symmetry_error(res, {name: v[name]}, {name: w[name]}, c)
        assert error <= 1e-12, (name, error)
    error, value = symmetry_error(res, v, w, c)
    print(f"tm2d {backend} stencil {order}: symmetry error {error:.1e}")
    assert error <= 1e-12 and value != 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order,pml", [(2, 2), (4, (2, 0, 1, 3, 0, 2))])
def test_second_vjp_is_symmetric_maxwell3d(backend, order, pml):
    p = problem3(seed=order, nt=16)
    res = run(p, "maxwell3d", backend, stencil=order, pml_width=pml, requires_grad=NAMES,
              receiver_component=("ex", "ey", "hz"))
    c = np.random.default_rng(3).standard_normal(res.receiver_data.shape)
    v, w = pair(p)
    for name in MODEL:
        error, _ = symmetry_error(res, {name: v[name]}, {name: w[name]}, c)
        assert error <= 1e-12, (name, error)
    error, value = symmetry_error(res, v, w, c)
    print(f"maxwell3d {backend} stencil {order}: symmetry error {error:.1e}")
    assert error <= 1e-12 and value != 0


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_second_vjp_matches_central_differences_quadratically(system):
    """<second_vjp(v, c), w> against differences of <c, J(m +- h w) v>: the error
    falls ~100x when h falls 10x (exact to second order)."""
    p = problem(nt=30) if system == "tm2d" else problem3(nt=16)
    extra = dict(stencil=4, pml_width=3 if system == "tm2d" else 2)
    if system == "maxwell3d":
        extra["receiver_component"] = ("ex", "ey", "hz")
    res = run(p, system, requires_grad=NAMES, **extra)
    c = np.random.default_rng(5).standard_normal(res.receiver_data.shape)
    v, w = pair(p)
    exact = inner(res.second_vjp(v, c), w)

    def f(h):
        q = {**p, **{k: p[k] + h * w[k] for k in NAMES}}
        return float(np.vdot(c, run(q, system, requires_grad=NAMES, **extra).jvp(**v)))

    errors = [abs((f(h) - f(-h)) / (2 * h) - exact) / abs(exact) for h in (1e-3, 1e-4)]
    print(f"{system} second_vjp vs central differences: {errors[0]:.1e} (h=1e-3), "
          f"{errors[1]:.1e} (h=1e-4)")
    assert errors[1] < 1e-5 and errors[1] < errors[0] / 30


@pytest.mark.parametrize("batch", [None, 2])
def test_backends_agree_and_models_batch(batch):
    p = problem(nt=24, batch=batch)
    extra = dict(stencil=4, pml_width=(2, 1, 0, 3), requires_grad=NAMES)
    c = np.random.default_rng(2).standard_normal(run(p, **extra).receiver_data.shape)
    v, _ = pair(p)
    out = {b: run(p, backend=b, **extra).second_vjp(v, c) for b in BACKENDS}
    for b in ("cpu", "cuda-emulated"):
        for name in NAMES:
            ref = getattr(out["reference"], name)
            err = np.abs(getattr(out[b], name) - ref).max() / np.abs(ref).max()
            assert err <= 1e-12, (b, name, err)
    if batch:  # each model of the batch is the unbatched problem of that model
        one = {k: (p[k][1] if k in MODEL else p[k]) for k in p}
        c1 = c[1]
        v1 = {k: (v[k][1] if k in MODEL else v[k]) for k in v}
        alone = run(one, **extra).second_vjp(v1, c1)
        for name in MODEL:
            ref = getattr(out["cpu"], name)[1]
            err = np.abs(getattr(alone, name) - ref).max() / np.abs(ref).max()
            assert err <= 1e-12, (name, err)


@pytest.mark.parametrize("storage", [
    dict(storage_mode="cpu"),
    dict(storage_mode="disk", storage_chunk_steps=3),  # chunks kept backward through a ring
])
def test_every_storage_mode_gives_the_same_second_vjp(storage):
    p = problem(nt=25)
    extra = dict(stencil=4, pml_width=2, requires_grad=NAMES)
    c = np.random.default_rng(4).standard_normal(run(p, **extra).receiver_data.shape)
    v, _ = pair(p)
    ref = run(p, storage_mode="device", **extra).second_vjp(v, c)
    got = run(p, **storage, **extra).second_vjp(v, c)
    for name in NAMES:
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name


def test_bf16_and_sampling_interval_approximate_second_vjp():
    """Approximate snapshots (docs/second-order.md gives the measured errors):
    close to the exact operator, not equal to it."""
    p = problem(nt=30, dtype=np.float32)
    extra = dict(stencil=4, pml_width=2, requires_grad=MODEL)
    c = np.random.default_rng(6).standard_normal(run(p, **extra).receiver_data.shape)
    v = directions(p, MODEL, seed=1)
    exact = run(p, **extra).second_vjp(v, c)
    for settings, bound in ((dict(storage_compression="bf16"), 0.05),
                            (dict(model_gradient_sampling_interval=3), 0.8)):
        got = run(p, **settings, **extra).second_vjp(v, c)
        err = np.linalg.norm(got.epsilon - exact.epsilon) / np.linalg.norm(exact.epsilon)
        print(f"second_vjp with {settings}: relative error of the epsilon part {err:.2e}")
        assert 0 < err < bound


def test_keep_lets_one_forward_serve_every_operator():
    p = problem(nt=24)
    res = run(p, stencil=4, pml_width=2, requires_grad=NAMES)
    data = res.receiver_data.copy()
    c = np.random.default_rng(1).standard_normal(data.shape)
    v, _ = pair(p)
    first = res.second_vjp(v, c, keep=True)
    jv = res.jvp(**v, keep=True)
    g = res.vjp(c, keep=True)
    again = res.second_vjp(v, c, keep=True)
    for name in NAMES:
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert np.array_equal(res.receiver_data, data)
    fresh = run(p, stencil=4, pml_width=2, requires_grad=NAMES)
    assert np.array_equal(fresh.jvp(**v, keep=True), jv)
    assert np.array_equal(fresh.vjp(c).epsilon, g.epsilon)
    res.second_vjp(v, c)  # without keep: freed
    with pytest.raises(RuntimeError, match="freed"):
        res.vjp(c)


def test_refusals_come_before_any_work():
    p = problem(nt=12)
    res = run(p, requires_grad=("epsilon",))
    c = np.zeros(res.receiver_data.shape)
    with pytest.raises(RuntimeError, match="second_vjp along \\['sigma'\\]"):
        res.second_vjp({"sigma": p["sigma"]}, c)
    with pytest.raises(ValueError, match="cotangent must have the shape"):
        res.second_vjp({"epsilon": p["epsilon"]}, c[..., :-1], keep=True)
    with pytest.raises(ValueError, match="not inputs"):
        res.second_vjp({"eps": p["epsilon"]}, c, keep=True)
    assert res.vjp(c).epsilon.shape == p["epsilon"].shape  # nothing was freed
    plain = run(p)
    with pytest.raises(RuntimeError, match="requires_grad"):
        plain.second_vjp({}, c)
    src = run(p, requires_grad=("source_amplitude",))
    with pytest.raises(RuntimeError, match="linear in it"):
        src.second_vjp({"source_amplitude": p["source_amplitude"]}, c)


# -- Debye media ---------------------------------------------------------------------------

DEBYE_NAMES = (*MODEL, *POLES, "source_amplitude")


def debye_pair(p, poles, seed=1):
    """Directions v, w of every input of a Debye run (the poles' too)."""
    v = directions(p, DEBYE_NAMES, seed=seed, dispersion=poles)
    w = directions(p, DEBYE_NAMES, seed=seed + 1, dispersion=poles)
    w["sigma"] = w["sigma"] * 0.01
    for d in (v, w):  # tau's direction a tenth of tau: differences stay in the linear range
        d["tau"] = d["tau"] * 0.1
    return v, w


def debye_run(system, backend="cpu", n_poles=2, nt=None, **kw):
    p = problem(nt=nt or 26) if system == "tm2d" else problem3(nt=nt or 14)
    poles = debye(np.shape(p["epsilon"]), n_poles=n_poles)
    extra = dict(stencil=4, pml_width=2, dispersion=poles, requires_grad=DEBYE_NAMES, **kw)
    if system == "maxwell3d":
        extra["receiver_component"] = ("ex", "ey", "hz")
    return p, poles, extra, run(p, system, backend, **extra)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("system,n_poles", [("tm2d", 2), ("tm2d", 4), ("maxwell3d", 2)])
def test_second_vjp_is_symmetric_with_debye_poles(backend, system, n_poles):
    """Every direction alone (the poles' delta_epsilon and tau too) and all
    together; 4 poles take the kernels' run-time pole count."""
    p, poles, _, res = debye_run(system, backend, n_poles)
    c = np.random.default_rng(3).standard_normal(res.receiver_data.shape)
    v, w = debye_pair(p, poles)
    for name in (*MODEL, *POLES):
        error, _ = symmetry_error(res, {name: v[name]}, {name: w[name]}, c)
        assert error <= 1e-12, (name, error)
    error, value = symmetry_error(res, v, w, c)
    print(f"{system} Debye ({n_poles} poles) {backend}: symmetry error {error:.1e}")
    assert error <= 1e-12 and value != 0


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_debye_second_vjp_matches_central_differences_quadratically(system):
    p, poles, extra, res = debye_run(system, nt=30 if system == "tm2d" else 16)
    c = np.random.default_rng(5).standard_normal(res.receiver_data.shape)
    v, w = debye_pair(p, poles)
    exact = inner(res.second_vjp(v, c), w)

    def f(h):
        q = {**p, **{k: p[k] + h * w[k] for k in (*MODEL, "source_amplitude")}}
        d = wavecore.Debye(*(getattr(poles, k) + h * w[k] for k in POLES))
        moved = {**extra, "dispersion": d}
        return float(np.vdot(c, run(q, system, **moved).jvp(**v)))

    errors = [abs((f(h) - f(-h)) / (2 * h) - exact) / abs(exact) for h in (1e-3, 1e-4)]
    print(f"{system} Debye second_vjp vs central differences: {errors[0]:.1e} (h=1e-3), "
          f"{errors[1]:.1e} (h=1e-4)")
    assert errors[1] < 1e-5 and errors[1] < errors[0] / 30


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_debye_backends_agree_and_storage_modes_match(system):
    """The three backends to rounding, batched models against their unbatched
    runs, and every storage mode bit for bit (the kept pole adjoints are
    written backward through the disk ring too)."""
    p, poles, extra, _ = debye_run(system, n_poles=2)
    data = run(p, system, **extra).receiver_data
    c = np.random.default_rng(2).standard_normal(data.shape)
    v, _ = debye_pair(p, poles)
    out = {b: run(p, system, b, **extra).second_vjp(v, c) for b in BACKENDS}
    for b in ("cpu", "cuda-emulated"):
        for name in DEBYE_NAMES:
            ref = getattr(out["reference"], name)
            err = np.abs(getattr(out[b], name) - ref).max() / np.abs(ref).max()
            assert err <= 1e-12, (b, name, err)
    for storage in (dict(storage_mode="cpu"), dict(storage_mode="disk", storage_chunk_steps=3)):
        got = run(p, system, **{**extra, **storage}).second_vjp(v, c)
        for name in DEBYE_NAMES:
            assert np.array_equal(getattr(got, name), getattr(out["cpu"], name)), (storage, name)


def test_debye_second_vjp_of_batched_models():
    p = problem(nt=22, batch=2)
    poles = debye(np.shape(p["epsilon"]), n_poles=2)  # per-model poles [P, B, nz, nx]
    extra = dict(stencil=4, pml_width=2, dispersion=poles, requires_grad=DEBYE_NAMES)
    res = run(p, **extra)
    c = np.random.default_rng(2).standard_normal(res.receiver_data.shape)
    v, _ = debye_pair(p, poles)
    both = res.second_vjp(v, c)
    one = {k: (p[k][1] if k in MODEL else p[k]) for k in p}
    poles1 = wavecore.Debye(*(getattr(poles, k)[:, 1] for k in POLES))
    v1 = {k: (v[k][:, 1] if k in POLES else v[k][1] if k in MODEL else v[k]) for k in v}
    alone = run(one, **{**extra, "dispersion": poles1}).second_vjp(v1, c[1])
    for name in (*MODEL, *POLES):
        ref = getattr(both, name)[:, 1] if name in POLES else getattr(both, name)[1]
        err = np.abs(getattr(alone, name) - ref).max() / np.abs(ref).max()
        assert err <= 1e-12, (name, err)


def test_debye_bf16_second_vjp_is_close():
    """bf16 snapshots (and kept adjoints) of a Debye run: close, not equal."""
    p = problem(nt=30, dtype=np.float32)
    poles = debye(np.shape(p["epsilon"]), n_poles=2, dtype=np.float32)
    extra = dict(stencil=4, pml_width=2, dispersion=poles, requires_grad=(*MODEL, *POLES))
    c = np.random.default_rng(6).standard_normal(run(p, **extra).receiver_data.shape)
    v = directions(p, (*MODEL, *POLES), seed=1, dispersion=poles)
    exact = run(p, **extra).second_vjp(v, c)
    got = run(p, storage_compression="bf16", **extra).second_vjp(v, c)
    for name in ("epsilon", "delta_epsilon"):
        a, b = getattr(got, name), getattr(exact, name)
        err = np.linalg.norm(a - b) / np.linalg.norm(b)
        print(f"Debye second_vjp with bf16: relative error of the {name} part {err:.2e}")
        assert 0 < err < 0.05, (name, err)


def test_debye_full_hessian_product_is_symmetric():
    p = problem(nt=26)
    poles = debye(np.shape(p["epsilon"]), n_poles=1)
    names = ("epsilon", "sigma", "delta_epsilon")
    extra = dict(stencil=4, pml_width=2, dispersion=poles, requires_grad=names)
    truth = wavecore.Debye(poles.delta_epsilon * 1.2, poles.tau)
    observed = run(p, stencil=4, pml_width=2, dispersion=truth).receiver_data
    res = run(p, **extra)
    u = directions(p, names, seed=4, dispersion=poles)
    v = directions(p, names, seed=5, dispersion=poles)
    a, b = inner(hvp(res, u, observed, "l2"), v), inner(hvp(res, v, observed, "l2"), u)
    assert abs(a - b) <= 1e-12 * max(abs(a), abs(b)), (a, b)


# -- the full Hessian ----------------------------------------------------------------------

@pytest.mark.parametrize("misfit", sorted(HESSIANS))
def test_full_hessian_product_is_its_pieces_and_symmetric(misfit):
    p = problem(nt=28)
    extra = dict(stencil=4, pml_width=2, requires_grad=("epsilon", "sigma"))
    truth = dict(p, epsilon=p["epsilon"] * 1.1)
    observed = run(truth, stencil=4, pml_width=2).receiver_data
    res = run(p, **extra)
    rng = np.random.default_rng(8)
    u = {k: p[k].mean() * rng.standard_normal(p[k].shape) for k in ("epsilon", "sigma")}
    v = {k: p[k].mean() * rng.standard_normal(p[k].shape) for k in ("epsilon", "sigma")}
    hu, hv = hvp(res, u, observed, misfit), hvp(res, v, observed, misfit)
    a, b = inner(hu, v), inner(hv, u)
    assert abs(a - b) <= 1e-12 * max(abs(a), abs(b)), (a, b)
    # the composition it stands for: vjp(H_phi J u) + second_vjp(u, grad phi)
    data = res.receiver_data
    _, grad = MISFITS[misfit](data, observed)
    gn = res.vjp(HESSIANS[misfit](data, observed, res.jvp(**u, keep=True)), keep=True)
    second = res.second_vjp(u, grad, keep=True)
    for name in u:
        ref = getattr(gn, name) + getattr(second, name)
        err = np.abs(getattr(hu, name) - ref).max() / np.abs(ref).max()
        assert err <= 1e-12, (name, err)
    # and the gradient's directional derivative: (g(m + h u) - g(m - h u)) / 2h
    def gradient(h):
        q = {**p, **{k: p[k] + h * u[k] * (0.01 if k == "sigma" else 1) for k in u}}
        r = run(q, **extra)
        return r.vjp(MISFITS[misfit](r.receiver_data, observed)[1]).epsilon

    small = {k: u[k] * (0.01 if k == "sigma" else 1) for k in u}
    exact = hvp(res, small, observed, misfit).epsilon
    fd = (gradient(1e-4) - gradient(-1e-4)) / 2e-4
    err = np.linalg.norm(fd - exact) / np.linalg.norm(exact)
    print(f"{misfit}: full Hessian product vs differences of the gradient {err:.1e}")
    assert err < 1e-5


def test_truncated_newton_reduces_the_misfit_of_two_parameters():
    from test_newton import layered_inversion_problem as inversion_problem

    q = inversion_problem()
    result = wavecore.inversion.invert(**q, parameters=("epsilon", "sigma"),
                                       method="truncated-newton", iterations=2,
                                       cg_iterations=4)
    misfits = [h["misfit"] for h in result.history]
    assert misfits[-1] < 0.5 * misfits[0], misfits
    assert all("cg_stop" in h for h in result.history[1:])


def test_truncated_newton_inverts_debye_poles():
    """Truncated Newton on the pole strength of a Debye medium (second_vjp of
    the poles): the misfit falls."""
    from test_newton import layered_inversion_problem as inversion_problem

    q = inversion_problem()
    poles = debye(q["epsilon"].shape, n_poles=1)
    truth = wavecore.Debye(poles.delta_epsilon * 1.3, poles.tau)
    inputs = ("epsilon", "sigma", "mu", "grid_spacing", "dt", "source_amplitude",
              "source_location", "receiver_location")
    observed = wavecore.tm2d(**{k: q[k] for k in inputs}, pml_width=q["pml_width"],
                             dispersion=truth).receiver_data
    result = wavecore.inversion.invert(**{**q, "observed": observed}, dispersion=poles,
                                       parameters=("delta_epsilon",),
                                       method="truncated-newton", iterations=2,
                                       cg_iterations=3)
    misfits = [h["misfit"] for h in result.history]
    print("truncated Newton on delta_epsilon, misfits", misfits)
    assert misfits[-1] < 0.5 * misfits[0], misfits


@pytest.mark.parametrize("backend", ("cpu", "reference"))
def test_callbacks_see_each_sweep_of_second_vjp(backend):
    """One callback runs in all three sweeps (state.sweep), backward ones with
    the adjoint state and gradients; it changes nothing in the result."""
    p = problem(nt=24)
    extra = dict(stencil=4, pml_width=2, requires_grad=("epsilon", "sigma"),
                 callback_frequency=5)
    res = run(p, backend=backend, **extra)
    c = np.random.default_rng(1).standard_normal(res.receiver_data.shape)
    v = directions(p, ("epsilon",), seed=2)
    seen = []

    def callback(state):
        field = "lam_ey" if state.is_backward else "ey"
        norm = float(np.abs(state.get_wavefield(field)).max())
        grads = sorted(state.gradients) if state.is_backward else []
        seen.append((state.sweep, state.step, state.is_backward, norm, grads))

    plain = res.second_vjp(v, c, keep=True)
    got = res.second_vjp(v, c, callback=callback)
    assert np.array_equal(got.epsilon, plain.epsilon)
    assert np.array_equal(got.sigma, plain.sigma)
    by_sweep = {}
    for sweep, step, backward, norm, grads in seen:
        by_sweep.setdefault(sweep, []).append(step)
        assert backward == (sweep != "tangent-image")
        assert not backward or grads == ["epsilon", "sigma"]
    assert by_sweep == {"adjoint-keep": [20, 15, 10, 5, 0], "tangent-image": [0, 5, 10, 15, 20],
                        "second-adjoint": [20, 15, 10, 5, 0]}, by_sweep
    assert max(n for s, _, _, n, _ in seen if s == "tangent-image") > 0
