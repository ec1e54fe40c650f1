"""maxwell3d: backend parity, exact adjoint, Taylor checks, storage modes, state,
components and input errors, on small grids (the numpy reference is the oracle).

The source-to-receiver map is linear, so the dot-product test checks the
transposed 3-D step (CPML recursions of all twelve memories, the last-plane
rule of the H update, halo, sources and every receiver component) exactly.
"""

import numpy as np
import pytest

import wavecore
from conftest import rel_err, stable_dt
from wavecore.testing import dottest, taylor_test

SPACING = (0.01, 0.012, 0.011)
ALL = ("epsilon", "sigma", "mu", "source_amplitude")
COMPONENTS = ["ex", "ey", "ez", "hx", "hy", "hz"]


def problem(shape=(6, 7, 8), nt=24, shots=2, n_src=2, n_rec=3, seed=0, dtype=np.float64,
            batch=None):
    rng = np.random.default_rng(seed)
    full = shape if batch is None else (batch, *shape)
    eps = 3.0 + 4.0 * rng.random(full)
    sig = 5e-2 * rng.random(full)  # loss tangents ~0.1: sigma matters
    mu = 1.0 + 0.5 * rng.random(full)
    amp = rng.standard_normal((shots, n_src, nt))

    def cells(n):
        return np.stack([rng.integers(0, s, (shots, n)) for s in shape], -1)

    dt = stable_dt(SPACING, float(eps.min()), float(mu.min()))
    return dict(epsilon=eps.astype(dtype), sigma=sig.astype(dtype), mu=mu.astype(dtype),
                grid_spacing=SPACING, dt=dt, source_amplitude=amp.astype(dtype),
                source_location=cells(n_src), receiver_location=cells(n_rec))


def run(p, backend="cpu", **kwargs):
    return wavecore.maxwell3d(**p, python_backend=backend == "reference", **kwargs)


@pytest.mark.parametrize("order", (2, 4, 6, 8))
@pytest.mark.parametrize("pml", (0, 2, (2, 0, 1, 3, 0, 2)))
def test_reference_and_compiled_forward_agree(order, pml):
    p = problem(seed=order)
    p["source_location"][1, 1] = p["source_location"][1, 0]  # a shared source cell too
    kw = dict(stencil=order, pml_width=pml, receiver_component=COMPONENTS,
              source_component="ez")
    ref, cpu = run(p, "reference", **kw), run(p, n_threads=2, **kw)
    assert ref.receiver_data.shape == (2, 6, 3, 24)
    assert np.abs(ref.receiver_data).max() > 0
    # Bit for bit, as in 2-D (bench/reference_parity.py).
    np.testing.assert_array_equal(cpu.receiver_data, ref.receiver_data)
    for name in ref.final_state:
        np.testing.assert_array_equal(cpu.final_state[name], ref.final_state[name], err_msg=name)


def test_batched_models_and_float32():
    p = problem(batch=2, shape=(5, 6, 7), dtype=np.float32)
    kw = dict(stencil=4, pml_width=2, receiver_component="hy")
    ref, cpu = run(p, "reference", **kw), run(p, **kw)
    assert cpu.receiver_data.shape == (2, 2, 3, 24) and cpu.receiver_data.dtype == np.float32
    assert rel_err(cpu.receiver_data, ref.receiver_data) <= 1e-5
    single = run({**p, **{k: p[k][1] for k in ("epsilon", "sigma", "mu")}}, **kw)
    assert rel_err(cpu.receiver_data[1], single.receiver_data) <= 1e-6


def test_compact_cpml_memories_cover_only_the_slabs():
    p = problem(shape=(5, 6, 7))
    res = run(p, stencil=4, pml_width=(2, 1, 0, 3, 4, 0), nt=24)
    domain = (5 + 3, 6 + 3, 7 + 4)
    state = res.final_state
    assert state["ex"].shape == (2, *domain)
    assert state["psi_hy_z"].shape == (2, 3, 9, 11)
    assert state["psi_ez_y"].shape == (2, 8, 3, 11)
    assert state["psi_hz_x"].shape == (2, 8, 9, 4)
    memory = wavecore.estimate_memory(**p, stencil=4, pml_width=(2, 1, 0, 3, 4, 0),
                                      system="maxwell3d")
    assert memory == res.memory
    item = 8
    assert memory.cpml_memories == item * 2 * 4 * (3 * 9 * 11 + 8 * 3 * 11 + 8 * 9 * 4)
    assert memory.fields == item * 2 * 6 * np.prod([a.n_padded for a in res.plan.axes])


def test_continuation_equals_one_run():
    p = problem(nt=30)
    kw = dict(stencil=4, pml_width=2, receiver_component=["ey", "hz"])
    whole = run(p, **kw)
    first = run({**p, "source_amplitude": p["source_amplitude"][..., :13]}, **kw)
    second = run({**p, "source_amplitude": p["source_amplitude"][..., 13:]},
                 initial_state=first.final_state, **kw)
    joined = np.concatenate([first.receiver_data, second.receiver_data], axis=-1)
    assert rel_err(joined, whole.receiver_data) <= 1e-12


@pytest.mark.parametrize("order", (2, 4, 6, 8))
@pytest.mark.parametrize("pml", (0, (2, 1, 0, 3, 1, 2)))
def test_dot_product_source_to_receivers(backend, order, pml):
    p = problem(seed=order, nt=20)
    p["source_location"][1, 1] = p["source_location"][1, 0]
    kw = dict(stencil=order, pml_width=pml, source_component=("ex", "ey", "ez")[order % 3],
              receiver_component=COMPONENTS)

    def forward(amplitude):
        return run({**p, "source_amplitude": amplitude}, backend, **kw).receiver_data

    def adjoint(y):
        return run(p, backend, requires_grad="source_amplitude", **kw).vjp(y).source_amplitude

    y = np.random.default_rng(order).standard_normal(forward(p["source_amplitude"]).shape)
    error = dottest(forward, adjoint, p["source_amplitude"], y).relative_error
    print(f"{backend}, stencil {order}, CPML {pml}: dot-product error {error:.1e}")  # pytest -s
    assert error <= 1e-12


@pytest.mark.parametrize("ratio, factor", ((2, 1.5), (3, 2.5)))
@pytest.mark.parametrize("taper", (False, True))
def test_dot_product_with_substepping(ratio, factor, taper):
    # nt = 16: the frequency taper is one bin long (a case that once broke the
    # resampling transpose). E receivers are decimated; H is decimated at odd
    # ratios and interpolated at even ones: every case is transposed exactly.
    p = problem(nt=16)
    p["dt"] *= factor / 0.9
    kw = dict(stencil=4, pml_width=2, time_pad_frac=0.3, freq_taper_frac=0.1, time_taper=taper,
              receiver_component=["ex", "hy", "hz"])
    res = run(p, requires_grad="source_amplitude", **kw)
    assert res.step_ratio == ratio
    y = np.random.default_rng(0).standard_normal(res.receiver_data.shape)
    test = dottest(lambda a: run({**p, "source_amplitude": a}, **kw).receiver_data,
                   lambda g: res.vjp(g, keep=True).source_amplitude, p["source_amplitude"], y)
    assert test.relative_error <= 1e-12
    res.close()


@pytest.mark.parametrize("order,pml", [(2, 0), (4, (2, 1, 0, 3, 1, 2)), (6, 2), (8, 1)])
def test_reference_and_compiled_gradients_agree(order, pml):
    # Not bit for bit in 3-D (unlike the forward and the 2-D gradients): most
    # values differ in their last bits; bench/reference_parity.py measures
    # <= 9.5e-16 relative.
    p = problem(seed=5)
    kw = dict(stencil=order, pml_width=pml, receiver_component=["ex", "hz"])
    y = np.random.default_rng(3).standard_normal(run(p, **kw).receiver_data.shape)
    ref = run(p, "reference", requires_grad=ALL, **kw).vjp(y)
    cpu = run(p, requires_grad=ALL, n_threads=2, **kw).vjp(y)
    for name in ALL:
        assert np.abs(getattr(ref, name)).max() > 0, name
        assert rel_err(getattr(cpu, name), getattr(ref, name)) <= 1e-14, name


@pytest.mark.parametrize("target", ALL)
def test_taylor_slopes(target):
    p = problem(nt=30, seed=3)
    kw = dict(stencil=4, pml_width=(2, 1, 0, 2, 1, 0), source_component="ex",
              receiver_component=["ex", "ey", "hz"])
    res = run(p, requires_grad=ALL, **kw)
    y = np.random.default_rng(1).standard_normal(res.receiver_data.shape)
    grads = res.vjp(y)
    x = p[target]
    direction = np.random.default_rng(2).standard_normal(x.shape) * np.abs(x).mean()
    if target == "sigma":
        direction = np.abs(direction)  # sigma + h d stays >= 0

    def j(value):
        return float(np.sum(y * run({**p, target: value}, **kw).receiver_data))

    check = taylor_test(j, x, getattr(grads, target), direction,
                        h0=2e-3 if target != "sigma" else 2e-2, n=4)
    assert np.all(np.abs(check.first_slopes - 1) < 0.1), check.first_slopes
    if target == "source_amplitude":  # linear: the second remainder is rounding only
        assert check.second.max() < 1e-9 * check.first.max()
    else:
        assert np.all(np.abs(check.second_slopes - 2) < 0.1), check.second_slopes


def test_central_differences_of_every_model_gradient():
    p = problem(nt=30, seed=7)
    kw = dict(stencil=8, pml_width=2)
    res = run(p, requires_grad=ALL, **kw)
    y = np.random.default_rng(7).standard_normal(res.receiver_data.shape)
    grads = res.vjp(y)
    for k, target in enumerate(ALL):
        x = p[target]
        d = np.random.default_rng(k).random(x.shape) * np.abs(x).mean() * 0.01
        h = 1e-3
        j = lambda v: float(np.sum(y * run({**p, target: v}, **kw).receiver_data))  # noqa
        fd = (j(x + h * d) - j(x - h * d)) / (2 * h)
        assert abs(fd - np.sum(getattr(grads, target) * d)) <= 1e-6 * abs(fd), target


def smooth(a, width=3.0):
    """Band-limit random traces (a Gaussian filter along time)."""
    g = np.exp(-0.5 * (np.arange(-8, 9) / width) ** 2)
    return np.apply_along_axis(lambda v: np.convolve(v, g, "same"), -1, a).astype(a.dtype)


def test_storage_modes_and_sampling(tmp_path):
    p = problem(nt=40, dtype=np.float32)
    p["source_amplitude"] = smooth(p["source_amplitude"])
    kw = dict(stencil=4, pml_width=2, requires_grad=("epsilon", "sigma", "mu"))
    y = smooth(np.random.default_rng(0).standard_normal(run(p, **kw).receiver_data.shape))
    exact = run(p, storage_mode="device", **kw).vjp(y)
    disk = run(p, storage_mode="disk", storage_path=tmp_path, storage_chunk_steps=3, **kw)
    assert disk.storage.mode == "disk" and disk.storage.n_chunks == 14
    g = disk.vjp(y)
    assert list(tmp_path.iterdir()) == []  # snapshot files deleted
    ref = run(p, "reference", storage_mode="disk", storage_path=tmp_path, **kw).vjp(y)
    for name in ("epsilon", "sigma", "mu"):
        assert np.array_equal(getattr(g, name), getattr(exact, name)), name
        assert rel_err(getattr(ref, name), getattr(exact, name)) <= 1e-4, name
    bf16 = run(p, storage_compression="bf16", **kw)
    assert bf16.storage.bytes == exact_bytes(p, kw) // 2
    assert np.array_equal(bf16.receiver_data, run(p, **kw).receiver_data)
    g16 = bf16.vjp(y)
    sampled = run(p, model_gradient_sampling_interval=2, **kw)
    assert sampled.storage.n_snapshots == 20
    g2 = sampled.vjp(y)
    l2 = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
    for name in ("epsilon", "sigma", "mu"):
        assert rel_err(getattr(g16, name), getattr(exact, name)) <= 1e-2, name
        # Measured 0.4-2 % (L2) for k = 2 on these band-limited traces.
        assert l2(getattr(g2, name), getattr(exact, name)) <= 0.05, name


def exact_bytes(p, kw):
    return wavecore.estimate_storage_bytes(**p, **kw, system="maxwell3d")


def test_snapshot_bytes_are_reported_before_the_run():
    p = problem(nt=20)
    kw = dict(stencil=4, pml_width=2)
    storage = wavecore.estimate_storage(**p, **kw, requires_grad=("epsilon", "mu"),
                                        system="maxwell3d")
    cells = 2 * np.prod([6 + 7, 7 + 7, 8 + 7])  # shots x padded cells (2 + 2 + 3 per axis)
    assert storage.names == ("ex", "ey", "ez", "cx", "cy", "cz", "sx", "sy", "sz")
    assert storage.bytes == 20 * 9 * cells * 8
    res = run(p, requires_grad=("epsilon", "mu"), **kw)
    assert res.storage == storage and res.memory.snapshots == storage.bytes
    res.close()


def test_callbacks_see_all_fields_and_edits_act():
    p = problem(nt=12)
    seen = []

    def callback(state):
        seen.append(state.step)
        assert set(state.wavefields) >= {"ex", "hz", "psi_hx_y"}
        if state.step == 6:
            state.wavefields["ey"][...] = 0

    kw = dict(stencil=2, pml_width=1, callback_frequency=3, source_component="ey")
    edited = run(p, forward_callback=callback, **kw)
    plain = run(p, **kw)
    assert seen == [0, 3, 6, 9]
    assert np.array_equal(edited.receiver_data[..., :6], plain.receiver_data[..., :6])
    assert not np.allclose(edited.receiver_data[..., 6:], plain.receiver_data[..., 6:])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_model_arrays_are_read_only_in_callbacks(backend):
    p = problem(nt=4)
    models = ("epsilon", "sigma", "mu", "ca", "cb", "cq")
    checked = []

    def callback(state):
        assert set(state.models) == set(models)
        for name in models:
            for view in ("inner", "pml", "full"):
                array = state.get_model(name, view)
                with pytest.raises(ValueError, match="read-only"):
                    array[...] = 1.0
                checked.append((state.step, name, view))

    kw = dict(stencil=2, pml_width=1)
    data = run(p, backend, forward_callback=callback, **kw).receiver_data
    # The callback ran before each of the 4 steps and tried every model in every view.
    assert checked == [(step, name, view) for step in range(4) for name in models
                       for view in ("inner", "pml", "full")]
    # The refused writes left the run as it was.
    np.testing.assert_array_equal(data, run(p, backend, **kw).receiver_data)


def blocky_problem(dtype=np.float64):
    """Piecewise-constant models (layers, a block, a lone odd cell): rows of
    the CPU core that read their coefficients once and rows that read them per
    cell, in two batched models with two shots each."""
    p = problem(shape=(7, 6, 9), shots=2, batch=2, dtype=dtype)
    for name, (top, bottom) in {"epsilon": (4.0, 9.0), "sigma": (0.0, 0.02),
                                "mu": (1.0, 1.0)}.items():
        m = np.full((2, 7, 6, 9), top)
        m[:, 4:] = bottom
        m[0, 1:3, 2:4, 3:6] = 2 * top + 1  # a block: rows through it are not uniform
        m[1, 5, 1, 0] = bottom + 0.5       # one cell on the model's edge
        p[name] = m.astype(dtype)
    p["mu"][1, :2] = 1.5  # cq changes with z only in the second model
    p["dt"] = stable_dt(SPACING, 4.0, 1.0)
    return p


def test_uniform_coefficient_rows_change_nothing(monkeypatch):
    from wavecore.backends import cpu

    p = blocky_problem()
    kw = dict(stencil=4, pml_width=(2, 1, 0, 3, 1, 2), receiver_component=["ey", "hx"],
              requires_grad=ALL)
    flags = []
    record = cpu.uniform_rows
    monkeypatch.setattr(cpu, "uniform_rows",
                        lambda *a: flags.append(record(*a)) or flags[-1])
    fast = run(p, n_threads=2, **kw)
    assert len(flags) == 2 and all(0 < f.mean() < 1 for f in flags)  # both kinds of rows
    monkeypatch.setattr(cpu, "uniform_rows", lambda plan, *c: np.zeros_like(record(plan, *c)))
    dense = run(p, n_threads=2, **kw)
    ref = run(p, "reference", **kw)
    y = np.random.default_rng(4).standard_normal(fast.receiver_data.shape)
    assert np.array_equal(fast.receiver_data, dense.receiver_data)
    assert rel_err(fast.receiver_data, ref.receiver_data) <= 1e-12
    for name in fast.final_state:
        assert np.array_equal(fast.final_state[name], dense.final_state[name]), name
    grads = [r.vjp(y) for r in (fast, dense, ref)]
    for name in ALL:
        assert np.array_equal(getattr(grads[0], name), getattr(grads[1], name)), name
        assert rel_err(getattr(grads[0], name), getattr(grads[2], name)) <= 1e-11, name


def test_uniform_rows_compare_bits():
    from types import SimpleNamespace

    from wavecore.backends.cpu import uniform_rows

    axis = SimpleNamespace(domain=slice(1, 5))
    plan = SimpleNamespace(axes=(axis,))
    ca = np.ones((1, 3, 6))
    ca[0, 1, 3] = 2.0   # a different value inside the domain
    ca[0, 2, 0] = 2.0   # outside the domain (the halo): ignored
    cb = np.zeros((1, 3, 6))
    cb[0, 0, 4] = -0.0  # equal to 0.0, but not the same bits
    assert uniform_rows(plan, ca).tolist() == [1, 0, 1]
    assert uniform_rows(plan, ca, cb).tolist() == [0, 0, 1]
    assert uniform_rows(plan, ca.astype(np.float32)).dtype == np.uint8


@pytest.mark.parametrize("kwargs, match", [
    (dict(source_component="hx"), "source_component"),
    (dict(receiver_component="e"), "unknown components"),
    (dict(receiver_component=["ex", "ex"]), "twice"),
    (dict(receiver_component=[]), "receiver_component"),
    (dict(grid_spacing=(0.01, 0.01)), "grid_spacing"),
    (dict(pml_width=(1, 2, 3, 4)), "pml_width"),
    (dict(pml_freq=1e9), "pml_freq"),
])
def test_bad_input_is_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        wavecore.maxwell3d(**{**problem(), **kwargs})


def test_locations_need_three_indices_and_stay_inside():
    p = problem()
    with pytest.raises(ValueError, match="3 indices"):
        run({**p, "receiver_location": p["receiver_location"][..., :2]})
    bad = p["source_location"].copy()
    bad[0, 0, 1] = 7
    with pytest.raises(ValueError, match="axis y"):
        run({**p, "source_location": bad})
