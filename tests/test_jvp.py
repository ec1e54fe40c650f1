"""The linearized (Born, tangent-linear) run ``result.jvp``: the exact derivative
of the discrete forward map, and the exact transpose of ``vjp``.

The dot-product test ``<J v, w> = <v, J^T w>`` pairs the tangent sweep (its
secondary sources from the background's snapshots) with the adjoint sweep
(its images of the same snapshots): it checks the model directions end to end
(epsilon, sigma, mu, the source and, in Debye media, the poles), the
replicate-padded directions, the chain rule and its forward-mode counterpart
(``Material.tangent``). Central differences of the forward map check J v on
its own. The peer cross-check against TIDE's ``borntm`` / ``born3d`` is in
``test_tide_crosscheck.py``.
"""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, random_problem_3d, rel_err, stable_dt

SPACING = (0.01, 0.013)
MODEL = ("epsilon", "sigma", "mu")
POLES = ("delta_epsilon", "tau")
BACKENDS = ("cpu", "reference", "cuda-emulated")


def problem(nz=14, nx=16, nt=36, shots=2, n_src=2, n_rec=3, seed=0, dtype=np.float64,
            batch=None):
    eps, sig, mu = random_model(nz, nx, dtype, seed=seed, batch=batch)
    sig = (sig * 10).astype(dtype)  # loss tangents ~0.1: sigma matters
    amp, src, rec = random_acquisition(nz, nx, shots, n_src, n_rec, nt, dtype, seed=seed + 1)
    dt = stable_dt(SPACING, float(eps.min()), float(mu.min()))
    return dict(epsilon=eps, sigma=sig, mu=mu, grid_spacing=SPACING, dt=dt,
                source_amplitude=amp, source_location=src, receiver_location=rec)


def problem3(n=(7, 8, 9), nt=20, shots=2, seed=0, dtype=np.float64):
    return random_problem_3d(n, nt, shots, seed, dtype, sigma_max=0.05)


def debye(shape, n_poles=2, seed=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return wavecore.Debye((1.0 + 3.0 * rng.random((n_poles, *shape))).astype(dtype),
                          (10.0 ** rng.uniform(-10, -9, (n_poles, *shape))).astype(dtype))


def run(p, system="tm2d", backend="cpu", **kw):
    if backend == "reference":
        kw["python_backend"] = True
    elif backend == "cuda-emulated":
        kw["device"] = "cuda-emulated"
    return getattr(wavecore, system)(**p, **kw)


def directions(p, names, seed=7, dispersion=None):
    """Random directions of every input in ``names``, scaled like the inputs."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        if name in POLES:
            value = getattr(dispersion, name)
        else:
            value = p[name]
        out[name] = np.abs(value).mean() * rng.standard_normal(np.shape(value))
    return out


def dot_error(res, v, seed=11):
    """Relative difference of <J v, w> and <v, J^T w> for a random w."""
    w = np.random.default_rng(seed).standard_normal(res.receiver_data.shape)
    jv = res.jvp(**v, keep=True)
    g = res.vjp(w, keep=True)
    lhs = float(np.vdot(jv, w))
    rhs = sum(float(np.vdot(v[k], getattr(g, k))) for k in v)
    return abs(lhs - rhs) / max(abs(lhs), abs(rhs))


# -- exactness -------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order,pml", [(2, 0), (4, 3), (6, (2, 0, 4, 1)), (8, 2)])
def test_dot_product_of_every_model_direction_tm2d(backend, order, pml):
    p = problem(seed=order)
    names = (*MODEL, "source_amplitude")
    res = run(p, backend=backend, stencil=order, pml_width=pml, requires_grad=names)
    for name in names:  # each direction alone, then all together
        error = dot_error(res, directions(p, (name,)))
        assert error <= 1e-12, (name, error)
    error = dot_error(res, directions(p, names))
    print(f"tm2d {backend} stencil {order}: dot-product error {error:.1e}")
    assert error <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order,pml", [(2, 2), (4, (2, 0, 1, 3, 0, 2))])
def test_dot_product_of_every_model_direction_maxwell3d(backend, order, pml):
    p = problem3(seed=order)
    names = (*MODEL, "source_amplitude")
    res = run(p, "maxwell3d", backend, stencil=order, pml_width=pml, requires_grad=names,
              receiver_component=("ex", "ey", "hz"))
    for name in names:
        error = dot_error(res, directions(p, (name,)))
        assert error <= 1e-12, (name, error)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_dot_product_with_debye_poles(backend, system):
    p = problem(nt=30) if system == "tm2d" else problem3()
    poles = debye(np.shape(p["epsilon"]))
    names = (*MODEL, *POLES)
    res = run(p, system, backend, stencil=4, pml_width=2, dispersion=poles,
              requires_grad=names)
    for name in names:
        error = dot_error(res, directions(p, (name,), dispersion=poles))
        assert error <= 1e-12, (system, name, error)


def test_jvp_matches_central_differences():
    """J v against (F(m + h v) - F(m - h v)) / 2h (float64, every direction)."""
    p = problem(nt=40)
    poles = debye(p["epsilon"].shape, n_poles=1)
    names = (*MODEL, *POLES, "source_amplitude")
    res = run(p, stencil=4, pml_width=3, dispersion=poles, requires_grad=names)
    for name in names:
        v = directions(p, (name,), dispersion=poles)[name]
        h = 1e-4 if name != "source_amplitude" else 1.0  # linear in the source

        def data(sign):
            q = dict(p)
            d = poles
            if name in POLES:
                d = wavecore.Debye(**{**{k: getattr(poles, k) for k in POLES},
                                      name: getattr(poles, name) + sign * h * v})
            else:
                q[name] = p[name] + sign * h * v
            return run(q, stencil=4, pml_width=3, dispersion=d).receiver_data

        central = (data(1) - data(-1)) / (2 * h)
        jv = res.jvp(**{name: v}, keep=True)
        error = rel_err(jv, central)
        print(f"{name}: |J v - central difference| / |J v| = {error:.1e}")
        assert error <= 1e-6, (name, error)
    res.close()


def test_backends_give_the_same_jvp():
    p = problem()
    poles = debye(p["epsilon"].shape)
    names = (*MODEL, *POLES)
    v = directions(p, names, dispersion=poles)
    out = {b: run(p, backend=b, stencil=4, pml_width=3, dispersion=poles,
                  requires_grad=names).jvp(**v) for b in BACKENDS}
    assert rel_err(out["reference"], out["cpu"]) <= 1e-12
    assert rel_err(out["cuda-emulated"], out["cpu"]) <= 1e-12


# -- settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend,mode,chunk", [
    ("cpu", "cpu", None), ("cpu", "disk", 7), ("cuda-emulated", "cpu", 7),
    ("cuda-emulated", "disk", 7)])
def test_storage_modes_give_the_same_jvp(backend, mode, chunk, tmp_path):
    """Chunks streamed forward (disk reads and staging uploads prefetched in the
    tangent's direction) give the J v of snapshots kept in memory, bit for bit,
    and a vjp after it still reads every chunk."""
    p = problem(nt=40)
    v = directions(p, MODEL)
    w = np.random.default_rng(1).standard_normal((2, 3, 40))
    kept = run(p, backend=backend, requires_grad=MODEL, storage_mode="device")
    expected, gradient = kept.jvp(**v, keep=True), kept.vjp(w)
    where = dict(storage_path=str(tmp_path)) if mode == "disk" else {}
    res = run(p, backend=backend, requires_grad=MODEL, storage_mode=mode,
              storage_chunk_steps=chunk, **where)
    assert np.array_equal(res.jvp(**v, keep=True), expected)
    assert np.array_equal(res.vjp(w).epsilon, gradient.epsilon)


@pytest.mark.parametrize("settings", [dict(model_gradient_sampling_interval=3),
                                      dict(storage_compression="bf16")])
def test_approximate_snapshots_keep_jvp_the_transpose_of_vjp(settings):
    """With k > 1 or bf16 snapshots J v is an approximation (the secondary
    sources of the stored steps stand for k steps; bf16 rounds the background),
    but it is the exact transpose of the equally approximate vjp, so that
    Gauss-Newton operators stay symmetric."""
    p = problem(nt=40, dtype=np.float32)
    names = (*MODEL, "source_amplitude")
    res = run(p, requires_grad=names, **settings)
    error = dot_error(res, directions(p, names))
    assert error <= 1e-5, error  # float32 rounding


def band_limited_problem(nt=240, dtype=np.float32):
    """A 1 GHz Ricker in a 48 x 52 model (about 45 steps per period)."""
    p = problem(nz=48, nx=52, nt=nt, shots=1, dtype=dtype)
    p["source_amplitude"] = (wavecore.ricker(1e9, nt, p["dt"], peak_time=1.5e-9)
                             * np.ones((1, 2, 1))).astype(dtype)
    return p


@pytest.mark.parametrize("settings,limit", [(dict(model_gradient_sampling_interval=3), 0.35),
                                            (dict(storage_compression="bf16"), 0.01)])
def test_accuracy_of_approximate_snapshots(settings, limit):
    """What k > 1 and bf16 cost J v on band-limited data (printed; measured
    0.255 for k = 3 and 3.5e-3 for bf16, against 0.097 and 1.5e-3 for the vjp's
    epsilon gradient): relative L2 differences from full storage."""
    p = band_limited_problem()
    v = directions(p, ("epsilon", "sigma"))
    names = ("epsilon", "sigma")
    full, approx = run(p, requires_grad=names), run(p, requires_grad=names, **settings)
    exact, jv = full.jvp(**v, keep=True), approx.jvp(**v, keep=True)
    misfit = float(np.linalg.norm(jv - exact) / np.linalg.norm(exact))
    w = np.random.default_rng(2).standard_normal(exact.shape)
    g, g_exact = approx.vjp(w).epsilon, full.vjp(w).epsilon
    grad_misfit = float(np.linalg.norm(g - g_exact) / np.linalg.norm(g_exact))
    print(f"{settings}: |J v - exact| / |exact| = {misfit:.2e}; the vjp's epsilon "
          f"gradient: {grad_misfit:.2e}")
    assert 0 < misfit < limit


def test_batched_models_and_shots_equal_separate_runs():
    p = problem(batch=2, shots=2)
    v = directions(p, MODEL)
    batched = run(p, requires_grad=MODEL).jvp(**v)
    for b in range(2):
        q = {**p, **{k: p[k][b] for k in MODEL}}
        single = run(q, requires_grad=MODEL).jvp(**{k: v[k][b] for k in MODEL})
        assert rel_err(batched[b], single) <= 1e-13


def test_substepped_run_is_exact_too():
    p = problem(nt=24)
    p["dt"] = 2.5 * p["dt"]  # above the CFL step: internal steps are shorter
    res = run(p, requires_grad=(*MODEL, "source_amplitude"))
    assert res.step_ratio > 1
    assert dot_error(res, directions(p, (*MODEL, "source_amplitude"))) <= 1e-12


# -- lifetime, callbacks, errors -----------------------------------------------------------

def test_one_forward_serves_many_jvp_and_vjp_calls_and_keeps_its_outputs():
    p = problem()
    res = run(p, requires_grad=MODEL)
    data, ey = res.receiver_data.copy(), res.final_state["ey"].copy()
    v = directions(p, ("epsilon",))
    first = res.jvp(**v, keep=True)
    g = res.vjp(np.ones_like(data), keep=True)
    again = res.jvp(**v, keep=True)
    assert np.array_equal(first, again)
    assert np.array_equal(res.receiver_data, data) and np.array_equal(res.final_state["ey"], ey)
    assert np.array_equal(2 * first, res.jvp(epsilon=2 * v["epsilon"], keep=True))
    assert g.epsilon is not None
    res.jvp(**v)  # without keep: the snapshots are freed
    with pytest.raises(RuntimeError, match="freed"):
        res.jvp(**v)


def test_callbacks_see_the_scattered_state():
    p = problem(nt=20)
    res = run(p, requires_grad=("epsilon",))
    seen = []

    def callback(state):
        seen.append((state.step, float(np.abs(state.wavefields["ey"]).max())))

    res.jvp(epsilon=directions(p, ("epsilon",))["epsilon"], callback=callback, keep=True)
    assert [s for s, _ in seen] == list(range(20))
    assert seen[0][1] == 0.0 and seen[-1][1] > 0.0  # the scattered field starts at zero


def test_bad_directions_are_refused_before_any_work():
    p = problem()
    res = run(p, requires_grad=("epsilon",))
    with pytest.raises(RuntimeError, match="requires_grad"):
        res.jvp(sigma=p["sigma"], keep=True)
    with pytest.raises(ValueError, match="not inputs"):
        res.jvp(tau=p["sigma"], keep=True)
    with pytest.raises(ValueError, match="shape"):
        res.jvp(epsilon=p["epsilon"][1:], keep=True)
    with pytest.raises(ValueError, match="finite"):
        res.jvp(epsilon=np.full_like(p["epsilon"], np.nan), keep=True)
    assert res.jvp(epsilon=p["epsilon"]).shape == res.receiver_data.shape  # nothing was lost
    with pytest.raises(RuntimeError, match="requires_grad"):
        run(p).jvp(epsilon=p["epsilon"])
