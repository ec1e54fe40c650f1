"""Batch jobs from TOML files: validation, HDF5 output, resume, executors
(serial, local processes, a Dask LocalCluster with 2 workers) and the CLI."""

import concurrent.futures as cf

import numpy as np
import pytest

import wavecore
from conftest import JOB, write_job as write
from wavecore.__main__ import main
from wavecore.jobs import ConfigError, load_config, run_forward_job
from wavecore.jobs.io import read_shots
from wavecore.jobs.survey import forward_batch, job_payload

h5py = pytest.importorskip("h5py", reason="batch jobs write HDF5 (pip install wavecore[hpc])")


def direct(cfg_path):
    """The job's data from one plain call of tm2d with every shot."""
    payload = job_payload(load_config(cfg_path))
    return forward_batch(payload, list(range(len(payload["sources"]))))


@pytest.mark.parametrize("change, match", [
    (dict(solver="threads = 2"), r"\[solver.threads\] unknown key"),
    (dict(parallel='executor = "slurm"'), r"\[parallel.executor\] must be one of"),
    (dict(wavelet="amplitude = 'big'"), r"\[wavelet.amplitude\] must be a number"),
    (dict(acquisition="receiver_offsets = [[0]]"), None),
    (dict(nothing="x = 1"), r"\[nothing\] unknown section"),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, change, match):
    path = write(tmp_path, **change)
    if match is None:  # a key given twice: TOML itself refuses
        match = "not valid TOML"
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_requires_and_checks_files(tmp_path):
    text = JOB.replace('builtin = "buried_pipe_and_void"\n', 'epsilon = "eps.npy"\nsigma = 0.0\n'
                       'mu = 1.0\nshape = [10, 12]\n')
    with pytest.raises(ConfigError, match=r"\[model.epsilon\] file .*eps.npy.* does not exist"):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"\[wavelet.nt\] is required"):
        load_config(write(tmp_path, JOB.replace("nt = 80\n", "")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, JOB + "[[["))
    with pytest.raises(ConfigError, match=r"\[acquisition\] sources leave the model"):
        run_forward_job(write(tmp_path, JOB.replace("shots = 6", "shots = 40")))


def test_models_from_npy_npz_and_hdf5(tmp_path):
    rng = np.random.default_rng(0)
    eps = (4 + rng.random((14, 40))).astype(np.float32)
    np.save(tmp_path / "eps.npy", eps)
    np.savez(tmp_path / "m.npz", conductivity=np.full_like(eps, 2e-3))
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["mu"] = np.ones_like(eps)
    text = JOB.replace('builtin = "buried_pipe_and_void"\n', 'epsilon = "eps.npy"\n'
                       'sigma = {file = "m.npz", key = "conductivity"}\n'
                       'mu = {file = "m.h5", dataset = "mu"}\n')
    path = write(tmp_path, text)
    payload = job_payload(load_config(path))
    np.testing.assert_array_equal(payload["epsilon"], eps)
    assert payload["sigma"].max() == np.float32(2e-3) and payload["mu"].min() == 1


def test_forward_job_writes_hdf5_with_metadata(tmp_path):
    path = write(tmp_path)
    summary = run_forward_job(path)
    assert summary == {**summary, "shots": 6, "run": 6, "skipped": 0}
    out = read_shots(tmp_path / "out.h5")
    assert out["done"].all()
    np.testing.assert_array_equal(out["receiver_data"], direct(path))
    attrs = out["attrs"]
    assert attrs["system"] == "tm2d" and attrs["stencil"] == 4 and attrs["nt"] == 80
    assert attrs["config"] == path.read_text() and attrs["wavecore_version"] == wavecore.__version__
    assert out["source_location"].shape == (6, 1, 2) and out["receiver_location"].shape == (6, 2, 2)


class FailingExecutor(cf.ThreadPoolExecutor):
    """Fails every batch that holds one of ``bad`` shots (a worker that dies)."""

    def __init__(self, bad):
        super().__init__(1)
        self.bad, self.calls = set(bad), 0

    def submit(self, fn, payload, batch):
        self.calls += 1
        if self.bad & set(batch):
            return super().submit(_raise, batch)
        return super().submit(fn, payload, batch)


def _raise(batch):
    raise OSError(f"worker lost while running {batch}")


def test_failed_shots_are_reported_and_a_rerun_resumes(tmp_path):
    path = write(tmp_path, parallel="shots_per_task = 2\nretries = 1")
    with FailingExecutor(bad=[3]) as ex, pytest.raises(RuntimeError, match=r"shots \[2, 3\] "
                                                       r"failed after 2 attempt"):
        run_forward_job(path, executor=ex)
    partial = read_shots(tmp_path / "out.h5")  # a valid file with the finished shots
    assert partial["done"].tolist() == [True, True, False, False, True, True]
    assert np.isnan(partial["receiver_data"][2:4]).all()
    summary = run_forward_job(path)
    assert (summary["run"], summary["skipped"]) == (2, 4)
    np.testing.assert_array_equal(read_shots(tmp_path / "out.h5")["receiver_data"],
                                  direct(path))
    other = write(tmp_path, JOB.replace("nt = 80", "nt = 81"), name="other.toml")
    with pytest.raises(ConfigError, match="another configuration"):
        run_forward_job(other)


def test_local_processes_equal_serial(tmp_path):
    path = write(tmp_path, parallel='executor = "processes"\nworkers = 2\nshots_per_task = 2')
    run_forward_job(path)
    np.testing.assert_array_equal(read_shots(tmp_path / "out.h5")["receiver_data"],
                                  direct(path))


def test_dask_local_cluster_equals_serial(tmp_path):
    pytest.importorskip("distributed", reason="Dask runs need wavecore[hpc]")
    path = write(tmp_path, parallel='executor = "dask"\nworkers = 2\nshots_per_task = 3')
    run_forward_job(path)
    np.testing.assert_array_equal(read_shots(tmp_path / "out.h5")["receiver_data"],
                                  direct(path))


def test_maxwell3d_job(tmp_path):
    text = """
[model]
epsilon = 4.0
sigma = 1e-3
mu = 1.0
shape = [8, 9, 10]
spacing = 0.02
[wavelet]
frequency = 1e9
nt = 30
[acquisition]
first_source = [2, 4, 2]
step = [0, 0, 2]
shots = 3
receiver_offsets = [[0, 0, 3], [1, 1, 1]]
[solver]
system = "maxwell3d"
receiver_component = ["ey", "hz"]
pml_width = 3
[output]
path = "m3d.h5"
"""
    path = write(tmp_path, text)
    run_forward_job(path)
    data = read_shots(tmp_path / "m3d.h5")["receiver_data"]
    assert data.shape == (3, 2, 2, 30)
    np.testing.assert_array_equal(data, direct(path))


def test_cli_forward_dry_run_and_errors(tmp_path, capsys):
    path = write(tmp_path)
    assert main(["forward", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 shots" in out and "estimated time" in out and "memory per task" in out
    assert not (tmp_path / "out.h5").exists()
    assert main(["forward", str(path), "--quiet"]) == 0
    assert "6 shot(s) run" in capsys.readouterr().out
    assert main(["forward", str(path), "--quiet"]) == 0
    assert "6 already done" in capsys.readouterr().out
    bad = write(tmp_path, name="bad.toml", solver="order = 4")
    assert main(["forward", str(bad)]) == 2
    assert "[solver.order] unknown key" in capsys.readouterr().err


def test_segy_export_reads_back(tmp_path):
    segyio = pytest.importorskip("segyio", reason="SEG-Y export needs segyio")
    from wavecore.jobs.export import write_segy

    path = write(tmp_path)
    run_forward_job(path)
    out = read_shots(tmp_path / "out.h5")
    segy = write_segy(tmp_path / "out.sgy", out["receiver_data"], 1.234e-11,
                      out["source_location"], out["receiver_location"], (0.05, 0.05))
    with segyio.open(str(segy), ignore_geometry=True) as f:
        traces = segyio.tools.collect(f.trace[:])
        assert traces.shape == (12, 80)
        np.testing.assert_array_equal(traces.reshape(6, 2, 80),
                                      out["receiver_data"].astype(np.float32))
        assert f.bin[segyio.BinField.Interval] == 12  # picoseconds
        assert f.header[3][segyio.TraceField.FieldRecord] == 2
        assert f.header[3][segyio.TraceField.GroupX] == int(round(
            out["receiver_location"][1][1][1] * 50))
        assert "1.234000e-11 s" in segyio.tools.wrap(f.text[0])


def test_gprmax_reader(tmp_path):
    from wavecore.jobs.export import read_gprmax

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "model.out", "w") as f:  # the layout gprMax writes
        f.attrs["dt"] = 2.5e-12
        f.attrs["Iterations"] = 50
        for k in (1, 2, 10):
            g = f.create_group(f"rxs/rx{k}")
            g.attrs["Position"] = (0.1 * k, 0.2, 0.0)
            for c in ("Ez", "Hx", "Hy"):
                g[c] = rng.standard_normal(50)
        f.create_group("srcs/src1").attrs["Position"] = (0.05, 0.2, 0.0)
    got = read_gprmax(tmp_path / "model.out")
    assert sorted(got["data"]) == ["Ez", "Hx", "Hy"] and got["data"]["Ez"].shape == (3, 50)
    assert got["dt"] == 2.5e-12
    np.testing.assert_allclose(got["receiver_positions"][:, 0], [0.1, 0.2, 1.0])
    with h5py.File(tmp_path / "model.out", "r") as f:
        np.testing.assert_array_equal(got["data"]["Hx"][2], f["rxs/rx10/Hx"][...])


def test_cli_plot_and_export(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    pytest.importorskip("segyio", reason="SEG-Y export needs segyio")
    path = write(tmp_path)
    run_forward_job(path)
    h5 = str(tmp_path / "out.h5")
    assert main(["plot", h5, "--out", str(tmp_path / "bscan.png")]) == 0
    assert main(["plot", h5, "--shot", "2", "--out", str(tmp_path / "gather.png")]) == 0
    assert main(["export", h5, "--segy", str(tmp_path / "o.sgy")]) == 0
    for name in ("bscan.png", "gather.png", "o.sgy"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert main(["demo", "--fwi", "--quick", "--quiet", "--out", str(tmp_path / "fwi")]) == 0
    assert (tmp_path / "fwi" / "fwi.png").exists()
    assert main(["plot", str(tmp_path / "fwi" / "fwi.npz"), "--out",
                 str(tmp_path / "inv.png")]) == 0
    assert (tmp_path / "inv_misfit.png").exists()


def test_cli_fwi_two_iterations(tmp_path, capsys):
    pytest.importorskip("scipy", reason="FWI needs scipy")
    truth = write(tmp_path, name="truth.toml")
    run_forward_job(truth)  # the observed data of the built-in model
    text = JOB.replace('builtin = "buried_pipe_and_void"\n', 'epsilon = 4.0\nsigma = 1e-3\n'
                       'mu = 1.0\nshape = [30, 60]\n').replace('path = "out.h5"',
                                                               'path = "fwi.npz"')
    text += ('\n[inversion]\nobserved = "out.h5"\nparameters = ["epsilon"]\niterations = 2\n'
             'method = "sd"\nbounds = {epsilon = [1.0, 20.0]}\nfixed_rows = 2\n'
             'storage_compression = "bf16"\nsampling_interval = 2\n'
             'checkpoint_dir = "ckpt"\n')
    path = write(tmp_path, text, name="fwi.toml")
    assert main(["fwi", str(path), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "of which snapshots" in plan and "per gradient" in plan
    assert not (tmp_path / "fwi.npz").exists()
    assert main(["fwi", str(path), "--quiet"]) == 0
    assert "3 iterations: misfit" in capsys.readouterr().out  # the start and two steps
    result = np.load(tmp_path / "fwi.npz")
    assert result["misfit"][-1] < result["misfit"][0]
    assert len(list((tmp_path / "ckpt").glob("iter_*.npz"))) == 3
    bad = write(tmp_path, text.replace('method = "sd"', 'method = "bfgs"'), name="bad.toml")
    assert main(["fwi", str(bad)]) == 2
    assert "[inversion.method]" in capsys.readouterr().err


def test_step_progress_follows_the_callbacks(tmp_path):
    from wavecore.jobs import step_progress

    p = job_payload(load_config(write(tmp_path)))
    callback, bar = step_progress(80, quiet=False)
    forward_batch({**p, "options": {**p["options"], "forward_callback": callback,
                                    "callback_frequency": 10}}, [0])
    assert bar.n == 70  # callbacks run before steps 0, 10, ..., 70
    bar.close()


def test_cli_fwi_gauss_newton(tmp_path, capsys):
    """method = "gauss-newton" runs serially (its inner products reuse one forward run)
    and is refused with a parallel executor, smoothing, or cg_iterations elsewhere."""
    pytest.importorskip("scipy", reason="FWI needs scipy")
    truth = write(tmp_path, name="truth.toml")
    run_forward_job(truth)
    text = JOB.replace('builtin = "buried_pipe_and_void"\n', 'epsilon = 4.0\nsigma = 1e-3\n'
                       'mu = 1.0\nshape = [30, 60]\n').replace('path = "out.h5"',
                                                               'path = "fwi.npz"')
    text += ('\n[inversion]\nobserved = "out.h5"\nparameters = ["epsilon", "sigma"]\n'
             'iterations = 2\nmethod = "gauss-newton"\ncg_iterations = 3\n'
             'bounds = {epsilon = [1.0, 20.0], sigma = [0.0, 0.05]}\nfixed_rows = 2\n')
    path = write(tmp_path, text, name="fwi.toml")
    assert main(["fwi", str(path), "--quiet"]) == 0
    result = np.load(tmp_path / "fwi.npz")
    assert result["misfit"][-1] < result["misfit"][0]
    for edit, key in (('cg_iterations = 3\n', 'smoothing = 1.0\n'),
                      ('method = "gauss-newton"\n', 'method = "lbfgs"\n')):
        bad = write(tmp_path, text.replace(edit, edit + key) if key.startswith("smooth")
                    else text.replace(edit, key), name="bad.toml")
        assert main(["fwi", str(bad)]) == 2
        err = capsys.readouterr().err
        assert ("[inversion.smoothing]" in err) if key.startswith("smooth") else \
            ("[inversion.cg_iterations]" in err), err
    parallel = write(tmp_path, text + '\n[parallel]\nexecutor = "processes"\n', name="par.toml")
    assert main(["fwi", str(parallel)]) == 2
    assert "[parallel.executor]" in capsys.readouterr().err
