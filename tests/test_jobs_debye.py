"""Jobs with Debye media: [model.debye] (pole arrays or per layer), its checks
with their exact messages, forward surveys with poles on every executor equal to
one direct tm2d call, the HDF5 record of the poles, and `wavecore fwi` for
delta_epsilon and tau (tau in log space)."""

import json

import numpy as np
import pytest

import wavecore
from conftest import write_job as write
from wavecore.__main__ import main
from wavecore.inversion import Bounds
from wavecore.inversion.fwi import SCALES, Problem
from wavecore.jobs import ConfigError, load_config, run_forward_job
from wavecore.jobs.fwi_job import run_fwi_job
from wavecore.jobs.io import read_shots
from wavecore.jobs.survey import job_payload

h5py = pytest.importorskip("h5py", reason="batch jobs write HDF5 (pip install wavecore[hpc])")

NZ, NX = 16, 40
BASE = f"""
[model]
epsilon = 4.0
sigma = 1e-3
mu = 1.0
shape = [{NZ}, {NX}]
spacing = 0.04

[wavelet]
frequency = 4e8
nt = 120
dt = 2e-11

[acquisition]
first_source = [1, 4]
step = [0, 6]
shots = 5
receiver_offsets = [[0, 3], [2, 6]]

[solver]
stencil = 4
pml_width = 6

[output]
path = "out.h5"

[parallel]
executor = "serial"
"""


def job(tmp_path, debye: str, text=BASE, name="job.toml"):
    """The job file with a [model.debye] table (TOML lines after the header)."""
    text = text.replace("spacing = 0.04\n", f"spacing = 0.04\n\n[model.debye]\n{debye}\n", 1)
    return write(tmp_path, text, name=name)


def labels():
    lab = np.zeros((NZ, NX), np.int64)
    lab[2:10] = 1
    lab[10:] = 2
    return lab


LAYERS = ('labels = "labels.npy"\n[model.debye.layers]\n0 = {}\n'
          '1 = {delta_epsilon = [6.0], tau = [1e-9]}\n'
          '2 = {delta_epsilon = [9.0, 3.0], tau = [2e-9, 1e-10]}')


# -- configuration -----------------------------------------------------------------

def test_pole_arrays_from_numbers_lists_npy_npz_and_hdf5(tmp_path):
    rng = np.random.default_rng(0)
    de = (1 + 4 * rng.random((2, NZ, NX))).astype(np.float32)
    tau = (10.0 ** rng.uniform(-10, -9, (NZ, NX))).astype(np.float32)  # one pole
    np.save(tmp_path / "de.npy", de)
    np.savez(tmp_path / "p.npz", relax=np.stack([tau, 2 * tau]))
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["tau"] = tau
    cases = [
        ('delta_epsilon = "de.npy"\ntau = {file = "p.npz", key = "relax"}',
         de, np.stack([tau, 2 * tau])),
        ('delta_epsilon = {file = "de.npy"}\ntau = [1e-9, 3e-10]', de,
         np.stack([np.full((NZ, NX), 1e-9), np.full((NZ, NX), 3e-10)])),
        ('delta_epsilon = 5.0\ntau = {file = "p.h5", dataset = "tau"}',
         np.full((1, NZ, NX), 5.0), tau[None]),
    ]
    for text, want_de, want_tau in cases:
        payload = job_payload(load_config(job(tmp_path, text)))
        assert payload["epsilon"].dtype == np.float32  # numbers take the model's dtype
        assert payload["delta_epsilon"].dtype == payload["tau"].dtype == np.float32
        np.testing.assert_array_equal(payload["delta_epsilon"], want_de.astype(np.float32))
        np.testing.assert_array_equal(payload["tau"], want_tau.astype(np.float32))
    plain = job_payload(load_config(write(tmp_path, BASE, name="plain.toml")))
    assert plain["delta_epsilon"] is None and plain["tau"] is None


def test_poles_per_layer_equal_debye_from_layers(tmp_path):
    np.save(tmp_path / "labels.npy", labels())
    payload = job_payload(load_config(job(tmp_path, LAYERS)))
    want = wavecore.Debye.from_layers(labels(), {0: None, 1: ([6.0], [1e-9]),
                                                 2: ([9.0, 3.0], [2e-9, 1e-10])})
    assert payload["tau"].shape == (2, NZ, NX)
    np.testing.assert_array_equal(payload["delta_epsilon"],
                                  want.delta_epsilon.astype(np.float32))
    np.testing.assert_array_equal(payload["tau"], want.tau.astype(np.float32))
    assert (payload["delta_epsilon"][:, :2] == 0).all()  # layer 0: no poles


# Checks of load_config (the keys), each with its exact message after "<file>: ".
KEY_ERRORS = [
    ("poles = 2\ntau = 1e-9",
     "[model.debye.poles] unknown key; expected one of ['delta_epsilon', 'labels', 'layers', "
     "'tau']"),
    ("tau = 1e-9", "[model.debye.delta_epsilon] is required with model.debye.tau"),
    ("delta_epsilon = 6.0\ntau = -1e-9", "[model.debye.tau] must be a finite number > 0, "
                                         "got -1e-09"),
    ("delta_epsilon = [6.0, -1.0]\ntau = [1e-9, 1e-10]",
     "[model.debye.delta_epsilon] must be a finite number >= 0, got -1.0"),
    ('delta_epsilon = 6.0\ntau = "nope.npy"',
     "[model.debye.tau] file '{dir}/nope.npy' does not exist"),
    ("delta_epsilon = 6.0\ntau = []",
     "[model.debye.tau] must not be an empty list (give one value per pole)"),
    ('delta_epsilon = 6.0\ntau = 1e-9\nlabels = "labels.npy"',
     "[model.debye] give delta_epsilon and tau (pole arrays), or labels and "
     "[model.debye.layers] (per layer), not both (got ['delta_epsilon', 'labels', 'tau'])"),
    ('labels = "labels.npy"', "[model.debye.layers] is required with model.debye.labels"),
    ('labels = "labels.npy"\n[model.debye.layers]\nsand = {}',
     "[model.debye.layers.sand] unknown label: the layers' keys are the integer labels of "
     "model.debye.labels"),
    ('labels = "labels.npy"\n[model.debye.layers]\n1 = {delta_epsilon = [6.0]}',
     "[model.debye.layers.1] needs both delta_epsilon and tau (or neither: no poles)"),
    ('labels = "labels.npy"\n[model.debye.layers]\n1 = {delta_epsilon = [6.0, 1.0], '
     'tau = [1e-9]}',
     "[model.debye.layers.1] delta_epsilon has 2 pole(s) and tau 1; give one of each per pole"),
    ('labels = "labels.npy"\n[model.debye.layers]\n1 = {delta_epsilon = [6.0], tau = [0.0]}',
     "[model.debye.layers.1.tau] must be a finite number > 0, got 0.0"),
    ('labels = "labels.npy"\n[model.debye.layers]\n1 = {delta_epsilon = "6", tau = [1e-9]}',
     "[model.debye.layers.1.delta_epsilon] must be a number or a list of numbers, the "
     "strength of each pole (relative), >= 0, got '6'"),
]


@pytest.mark.parametrize("text, message", KEY_ERRORS)
def test_bad_debye_keys_fail_with_exact_messages(tmp_path, text, message):
    np.save(tmp_path / "labels.npy", labels())
    path = job(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message.format(dir=tmp_path)}"


def test_bad_pole_arrays_fail_before_any_run(tmp_path, capsys):
    """Checks of the arrays (their values and shapes, the labels, the time step),
    made when the job is planned: `--dry-run` and a run report them alike, and
    nothing is written."""
    bad_tau = np.full((NZ, NX), 1e-9)
    bad_tau[3, 7] = 0.0
    np.save(tmp_path / "tau0.npy", bad_tau)
    np.save(tmp_path / "tau3d.npy", np.full((2, NZ, NX + 1), 1e-9))
    np.save(tmp_path / "labels.npy", labels())
    np.save(tmp_path / "flabels.npy", labels().astype(float))
    cases = [
        ('delta_epsilon = 6.0\ntau = "tau0.npy"',
         "[model.debye.tau] is the relaxation time of each pole in seconds, > 0; got 0.0 at "
         "cell [0, 3, 7]"),
        ('delta_epsilon = 6.0\ntau = "tau3d.npy"',
         f"[model.debye.tau] must have the model's shape [{NZ}, {NX}] (one pole) or "
         f"[n_poles, {NZ}, {NX}], got [2, {NZ}, {NX + 1}]"),
        ("delta_epsilon = [6.0, 1.0]\ntau = 1e-9",
         "[model.debye] delta_epsilon has 2 pole(s) and tau 1; give both for every pole"),
        ("delta_epsilon = 6.0\ntau = 1.5e-11",
         "[model.debye.tau] the shortest relaxation time 1.5e-11 s must exceed the time step "
         "2e-11 s (wavelet.dt or its default); use a smaller wavelet.dt, or drop poles "
         "faster than the step (add their delta_epsilon to epsilon)"),
        ('labels = "flabels.npy"\n[model.debye.layers]\n0 = {}',
         "[model.debye.labels] must be an integer array (a layer label per cell), got dtype "
         "float64"),
        ('labels = "labels.npy"\n[model.debye.layers]\n0 = {}\n'
         '1 = {delta_epsilon = 6.0, tau = 1e-9}',
         "[model.debye.layers] labels [2] of model.debye.labels have no entry; give each a "
         "table, e.g. 2 = {} for a layer without poles"),
        ('labels = "labels.npy"\n[model.debye.layers]\n0 = {}\n1 = {}\n2 = {}',
         "[model.debye.layers] no layer has a pole; remove [model.debye] to run without "
         "dispersion"),
    ]
    for text, message in cases:
        path = job(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            run_forward_job(path, dry_run=True)
        assert str(info.value) == f"{path}: {message}"
        assert main(["forward", str(path), "--quiet"]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "out.h5").exists()


# -- forward surveys ---------------------------------------------------------------

def direct(path, dispersion):
    """The job's data from one plain tm2d call, with the given poles."""
    cfg = load_config(path)
    p = job_payload(cfg)
    n = len(p["sources"])
    amp = np.repeat(p["amplitude"][None, None], n, 0)
    return wavecore.tm2d(p["epsilon"], p["sigma"], p["mu"], p["spacing"], p["dt"], amp,
                         p["sources"], p["receivers"], stencil=4, pml_width=6,
                         dispersion=dispersion).receiver_data


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_forward_job_with_poles_equals_a_direct_call(tmp_path, executor):
    np.save(tmp_path / "labels.npy", labels())
    text = BASE.replace('executor = "serial"',
                        f'executor = "{executor}"\nworkers = 2\nshots_per_task = 2')
    path = job(tmp_path, LAYERS, text)
    assert run_forward_job(path)["run"] == 5
    out = read_shots(tmp_path / "out.h5")
    debye = wavecore.Debye.from_layers(labels(), {0: None, 1: ([6.0], [1e-9]),
                                                  2: ([9.0, 3.0], [2e-9, 1e-10])})
    f32 = wavecore.Debye(debye.delta_epsilon.astype(np.float32), debye.tau.astype(np.float32))
    np.testing.assert_array_equal(out["receiver_data"], direct(path, f32))
    without = direct(path, None)  # the poles matter
    assert np.abs(out["receiver_data"] - without).max() > 0.05 * np.abs(without).max()
    # The record: the poles as used, their source and digests; resume keys on them.
    np.testing.assert_array_equal(out["debye_tau"], f32.tau)
    np.testing.assert_array_equal(out["debye_delta_epsilon"], f32.delta_epsilon)
    meta = json.loads(out["attrs"]["dispersion"])
    assert meta["n_poles"] == 2 and meta["law"] == "debye"
    assert meta["source"]["labels"] == str(tmp_path / "labels.npy")
    assert meta["source"]["layers"]["2"] == {"delta_epsilon": [9.0, 3.0], "tau": [2e-9, 1e-10]}
    keys = json.loads(out["attrs"]["data_keys"])
    assert keys["model.debye.tau"] == meta["tau"]
    other = job(tmp_path, LAYERS.replace("tau = [1e-9]", "tau = [1.5e-9]"), text, "other.toml")
    with pytest.raises(ConfigError, match=r"another configuration: \[model.debye.tau\]"):
        run_forward_job(other)


def test_dry_run_shows_the_poles_and_their_memory(tmp_path, capsys):
    path = job(tmp_path, "delta_epsilon = [6.0, 2.0]\ntau = [1e-9, 2e-10]")
    plan = run_forward_job(path, dry_run=True)
    plain = run_forward_job(write(tmp_path, BASE, name="plain.toml"), dry_run=True)
    assert plan["n_poles"] == 2 and "n_poles" not in plain
    assert plan["pole_bytes"] == plan["memory_per_task"] - plain["memory_per_task"] > 0
    assert main(["forward", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ("Debye poles: 2 per cell, delta_epsilon 2 to 6, tau 2e-10 to 1e-09 s (epsilon is "
            "eps_inf); they add") in out


# -- inversion ---------------------------------------------------------------------

def tiny_problem(parameters):
    nz, nx, h = 12, 20, 0.04
    dt = 0.45 * wavecore.max_stable_dt((h, h), wavecore.C0, 4)
    eps = np.full((nz, nx), 4.0)
    sig, mu = np.full((nz, nx), 1e-3), np.ones((nz, nx))
    rng = np.random.default_rng(3)
    de = 2 + 4 * rng.random((2, nz, nx))
    tau = 10.0 ** rng.uniform(-10, -8.5, (2, nz, nx))
    nt = 100
    amp = np.repeat(wavecore.ricker(4e8, nt, dt)[None, None], 2, 0)
    src = np.array([[[1, 5]], [[1, 14]]])
    rec = np.array([[[1, c] for c in range(2, nx - 2, 3)]] * 2)
    obs = wavecore.tm2d(eps, sig, mu, h, dt, amp, src, rec, stencil=4, pml_width=5,
                        dispersion=wavecore.Debye(de * 1.3, tau * 2)).receiver_data
    mask = np.zeros((nz, nx), bool)
    mask[2:] = True
    models = dict(epsilon=eps, sigma=sig, mu=mu, delta_epsilon=de, tau=tau)
    bounds = Bounds(delta_epsilon=(0.0, 20.0), tau=(5e-11, 1e-7))
    return Problem(obs, models, h, dt, amp, src, rec, system="tm2d", parameters=parameters,
                   bounds=bounds, misfit="l2", mask=mask, smoothing=0.0,
                   options=dict(stencil=4, pml_width=5)), models, mask


def test_tau_is_inverted_in_log_space():
    problem, models, mask = tiny_problem(("delta_epsilon", "tau"))
    x = problem.to_x(models)
    n = 2 * int(mask.sum())  # two poles per masked cell, for each parameter
    assert x.size == 2 * n
    np.testing.assert_allclose(x[n:], np.log(models["tau"][:, mask] / 5e-11).ravel()
                               / np.log(1e-7 / 5e-11), rtol=1e-12)
    np.testing.assert_allclose(x[:n], models["delta_epsilon"][:, mask].ravel() / 20.0,
                               rtol=1e-12)
    back = problem.to_models(x)
    for name in ("delta_epsilon", "tau"):
        np.testing.assert_allclose(back[name], models[name], rtol=1e-12)
    # Equal steps in x are equal factors in tau (decades, not seconds).
    assert SCALES["tau"].from_unit(0.5, 1e-10, 1e-8) == pytest.approx(1e-9, rel=1e-12)
    assert SCALES["delta_epsilon"].from_unit(0.5, 0.0, 20.0) == 10.0


@pytest.mark.parametrize("parameters", [("tau",), ("epsilon", "delta_epsilon", "tau")])
def test_scaled_objective_gradient_of_the_poles_is_exact(parameters):
    problem, models, _ = tiny_problem(parameters)
    x = problem.to_x(models)
    f, g = problem(x)
    d = np.random.default_rng(1).standard_normal(x.size) * 1e-5
    fd = (problem(x + d)[0] - problem(x - d)[0]) / 2
    assert fd == pytest.approx(float(g @ d), rel=1e-5)


FWI_TRUE = "delta_epsilon = 6.0\ntau = 1e-9"
FWI_START = "delta_epsilon = 3.0\ntau = 3e-10"
AIR = 4  # rows of air (eps 1, no poles in the truth: fixed in the inversion)


@pytest.fixture(scope="module")
def fwi_survey(tmp_path_factory):
    """The observed data: one Debye pole (delta_epsilon 6, tau 1 ns) below an
    air layer, 5 shots with receivers in the air, 5 ns."""
    tmp = tmp_path_factory.mktemp("fwi")
    text = (BASE.replace("epsilon = 4.0\n", 'epsilon = "eps.npy"\n')
            .replace("nt = 120", "nt = 250")
            .replace("first_source = [1, 4]\nstep = [0, 6]", "first_source = [1, 6]\nstep = [0, 5]")
            .replace("receiver_offsets = [[0, 3], [2, 6]]",
                     "receiver_offsets = [[0, -3], [0, 3], [0, 6], [0, 9]]"))
    eps = np.full((NZ, NX), 4.0, np.float32)
    eps[:AIR] = 1.0
    np.save(tmp / "eps.npy", eps)
    run_forward_job(job(tmp, FWI_TRUE.replace("6.0", "[6.0]"), text, "truth.toml"))
    return tmp, text


def bulk(z, name, rows=np.s_[:, AIR:AIR + 5]):
    """The mean of delta_epsilon or the geometric mean of tau in the rows below
    the air that the 5 ns of data see best."""
    a = z[name][rows].astype(np.float64)
    return a.mean() if name == "delta_epsilon" else np.exp(np.log(a).mean())


@pytest.mark.parametrize("parameters, start, method", [
    (["delta_epsilon", "tau"], FWI_START, "lbfgs"),
    (["tau"], "delta_epsilon = 6.0\ntau = 3e-10", "lbfgs"),
    (["delta_epsilon"], "delta_epsilon = 3.0\ntau = 1e-9", "lbfgs"),
])
def test_fwi_job_inverts_delta_epsilon_and_tau(fwi_survey, capsys, parameters, start, method):
    """`wavecore fwi` for the poles from a wrong start: the misfit falls and the
    poles below the air move towards the truth (in the bulk: the data of a few
    surface shots do not resolve each cell, and single cells overshoot)."""
    pytest.importorskip("scipy", reason="FWI needs scipy")
    tmp, text = fwi_survey
    inv = (f'\n[inversion]\nobserved = "out.h5"\nparameters = {json.dumps(parameters)}\n'
           f'iterations = 8\nmethod = "{method}"\nfixed_rows = {AIR}\n'
           'bounds = {delta_epsilon = [0.0, 20.0], tau = [1e-10, 1e-8]}\n')
    fwi_text = text.replace('path = "out.h5"', 'path = "fwi.npz"') + inv
    path = job(tmp, start, fwi_text, "fwi.toml")
    assert main(["fwi", str(path), "--dry-run"]) == 0
    assert "Debye poles: 1 per cell" in capsys.readouterr().out
    summary = run_fwi_job(path)
    assert summary["misfit_last"] < 0.9 * summary["misfit_first"]
    z = np.load(tmp / "fwi.npz")
    assert z["tau"].shape == z["delta_epsilon"].shape == (1, NZ, NX)
    for name in ("delta_epsilon", "tau"):  # the air keeps its start; all within the bounds
        np.testing.assert_array_equal(z[name][:, :AIR], z[f"start_{name}"][:, :AIR])
    assert z["tau"].min() >= np.float32(1e-10) and z["tau"].max() <= np.float32(1e-8)
    assert 0 <= z["delta_epsilon"].min() and z["delta_epsilon"].max() <= 20
    if "delta_epsilon" in parameters:
        assert abs(bulk(z, "delta_epsilon") - 6.0) < 0.8 * abs(bulk(z, "start_delta_epsilon") - 6)
    else:
        np.testing.assert_array_equal(z["delta_epsilon"], z["start_delta_epsilon"])
    if "tau" in parameters:
        err = lambda t: abs(np.log(t / 1e-9))  # noqa: E731 - decades from the truth
        assert err(bulk(z, "tau")) < 0.9 * err(bulk(z, "start_tau"))
    else:
        np.testing.assert_array_equal(z["tau"], z["start_tau"])


def test_fwi_pole_parameters_are_checked(tmp_path):
    pytest.importorskip("scipy", reason="FWI needs scipy")
    inv = '\n[inversion]\nobserved = "obs.h5"\nparameters = {params}\n{extra}\n'
    (tmp_path / "obs.h5").write_bytes(b"")
    plain = BASE + inv.format(params='["tau"]', extra="")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, plain))
    assert str(info.value).endswith(
        "[inversion.parameters] ['tau'] are Debye pole parameters, but the model has no "
        "poles: add [model.debye] (the starting poles)")
    bad = BASE + inv.format(params='["tau"]', extra="bounds = {tau = [0.0, 1e-8]}")
    with pytest.raises(ConfigError, match=r"\[inversion.bounds.tau\] must have lo > 0"):
        load_config(job(tmp_path, FWI_START, bad))
    below_dt = BASE + inv.format(params='["tau"]', extra="bounds = {tau = [1e-11, 1e-8]}")
    with pytest.raises(ConfigError) as info:
        run_fwi_job(job(tmp_path, FWI_START, below_dt), dry_run=True)
    assert "[inversion.bounds.tau] bounds of tau must have lo above the time step dt = " \
           "2e-11 s" in str(info.value)
    outside = BASE + inv.format(params='["delta_epsilon"]',
                                extra="bounds = {delta_epsilon = [4.0, 10.0]}")
    with pytest.raises(ConfigError) as info:
        run_fwi_job(job(tmp_path, FWI_START, outside), dry_run=True)
    assert str(info.value).endswith(
        "[inversion.bounds.delta_epsilon] the starting delta_epsilon ([model], 3 to 3) lies "
        "outside the bounds [4.0, 10.0]; widen them or change the starting model")


def test_the_debye_example_of_docs_jobs_md_plans(tmp_path, monkeypatch):
    """docs/jobs.md's per-layer [model.debye] added to its first job: the plan
    shows its two poles."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "jobs.md").read_text()
    python = re.findall(r"```python\n(.*?)```", doc, re.S)
    tomls = re.findall(r"```toml\n(.*?)```", doc, re.S)
    layers = next(t for t in tomls if "[model.debye.layers]" in t)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(python[0], namespace)
    exec(next(b for b in python if "labels.npy" in b), namespace)
    text = tomls[0].replace("\n[wavelet]", f"\n{layers}\n[wavelet]", 1)
    plan = run_forward_job(write(tmp_path, text, name="survey.toml"), dry_run=True)
    assert plan["n_poles"] == 2  # float32 like the model files
    np.testing.assert_allclose(plan["pole_ranges"]["tau"], [1e-10, 1e-9], rtol=1e-7)
