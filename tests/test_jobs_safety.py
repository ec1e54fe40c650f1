"""Batch-job safety (issue 15): booleans, up-front validation of every key and
path, resume keyed on the data, workers that die with their parent."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import JOB, write_job as write
from wavecore.__main__ import main
from wavecore.jobs import ConfigError, load_config, run_forward_job
from wavecore.jobs import config as job_config
from wavecore.jobs import survey
from wavecore.jobs.io import read_shots

h5py = pytest.importorskip("h5py", reason="batch jobs write HDF5 (pip install wavecore[hpc])")

FILE_MODEL = JOB.replace('builtin = "buried_pipe_and_void"\n',
                         'epsilon = "eps.npy"\nsigma = 0.0\nmu = 1.0\nshape = [30, 60]\n')


@pytest.fixture
def no_simulation(monkeypatch):
    """Any simulation fails the test: the errors must come before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("a simulation ran before the configuration was validated")
    monkeypatch.setattr(survey, "forward_batch", refuse)


# -- item 1: booleans are TOML booleans --------------------------------------

BOOLEAN_KEYS = getattr(job_config, "BOOLEANS", {"output": {"overwrite"}})


@pytest.mark.parametrize("section, key", [(s, k) for s, ks in BOOLEAN_KEYS.items()
                                          for k in sorted(ks)])
@pytest.mark.parametrize("value", ['"false"', '"true"', "0", "1", '""'])
def test_booleans_must_be_toml_booleans(tmp_path, section, key, value):
    path = write(tmp_path, JOB.replace(f"[{section}]\n", f"[{section}]\n{key} = {value}\n"))
    with pytest.raises(ConfigError, match=rf"{path}: \[{section}\.{key}\] must be true or "
                                          "false"):
        load_config(path)


def test_overwrite_false_as_a_string_keeps_a_finished_job(tmp_path, capsys):
    path = write(tmp_path)
    run_forward_job(path)
    before = (tmp_path / "out.h5").read_bytes()
    text = JOB.replace('path = "out.h5"', 'path = "out.h5"\noverwrite = "false"')
    assert main(["forward", str(write(tmp_path, text)), "--quiet"]) == 2
    assert "[output.overwrite] must be true or false" in capsys.readouterr().err
    assert (tmp_path / "out.h5").read_bytes() == before
    text = JOB.replace('path = "out.h5"', 'path = "out.h5"\noverwrite = false')
    assert run_forward_job(write(tmp_path, text))["skipped"] == 6


# -- item 9: every bad value is a "file: [key] ..." error before any run -------

def _eps(value):
    def make(tmp_path):
        eps = np.full((30, 60), 4.0, np.float32)
        eps[3, 7] = value
        np.save(tmp_path / "eps.npy", eps)
    return make


def _readonly(tmp_path, monkeypatch):
    """A read-only folder. Root ignores permissions, so the file system's
    answer (EROFS) is injected at os.open for that folder."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_open = os.open

    def ro_open(path, flags, *args, **kwargs):
        if Path(path).parent == ro and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", ro_open)


CASES = {
    "pml_width string": (('pml_width = 8', 'pml_width = "10"'), None, "solver.pml_width",
                         "must be an int"),
    "pml_width negative": (('pml_width = 8', 'pml_width = -1'), None, "solver.pml_width",
                           ">= 0"),
    "spacing one value in a list": (("spacing = 0.05", "spacing = [0.02]"), None,
                                    "model.spacing", "must have 2 values"),
    "device gpu": (("stencil = 4", 'stencil = 4\ndevice = "gpu"'), None, "solver.device",
                   "must be one of"),
    "stencil as a float": (("stencil = 4", "stencil = 4.0"), None, "solver.stencil",
                           "must be an integer"),
    "model file with NaN": (None, _eps(np.nan), "model.epsilon", "must be finite"),
    "model file with epsilon 0": (None, _eps(0.0), "model.epsilon",
                                  "relative permittivity, > 0"),
    "epsilon 0 as a number": (('builtin = "buried_pipe_and_void"\n',
                               "epsilon = 0.0\nsigma = 0.0\nmu = 1.0\nshape = [30, 60]\n"),
                              None, "model.epsilon", "> 0"),
    "output in a missing folder": (('path = "out.h5"', 'path = "nowhere/out.h5"'), None,
                                   "output.path", "does not exist; create it"),
    "output on a read-only mount": (('path = "out.h5"', 'path = "ro/out.h5"'), "readonly",
                                    "output.path", "read-only file system"),
    "output is a folder": (('path = "out.h5"', 'path = "adir"'),
                           lambda t: (t / "adir").mkdir(), "output.path", "is a folder"),
    "output is not HDF5": (('path = "out.h5"', 'path = "notes.h5"'),
                           lambda t: (t / "notes.h5").write_text("my notes"), "output.path",
                           "is not an HDF5 file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_job_files_fail_up_front_naming_the_key(tmp_path, monkeypatch, capsys,
                                                     no_simulation, case):
    edit, prepare, key, message = CASES[case]
    text = FILE_MODEL if edit is None else JOB  # edit None: a model file
    if edit is not None:
        assert edit[0] in text
        text = text.replace(*edit)
    if prepare == "readonly":
        _readonly(tmp_path, monkeypatch)
    elif prepare is not None:
        prepare(tmp_path)
    path = write(tmp_path, text)
    for dry_run in ([], ["--dry-run"]):
        assert main(["forward", str(path), "--quiet", *dry_run]) == 2
        err = capsys.readouterr().err
        assert f"{path}: [{key}] " in err and message in err, err
        assert "Traceback" not in err
    with pytest.raises(ConfigError, match=rf"\[{key}\]"):
        run_forward_job(path)


# -- item 10: resume keys on what determines the data --------------------------

def test_resume_ignores_execution_only_edits(tmp_path):
    path = write(tmp_path)
    run_forward_job(path)
    edited = ("# a comment: resuming must not care\n" + JOB
              + '\n[parallel]\nexecutor = "serial"\nworkers = 1\nshots_per_task = 3\n')
    edited = edited.replace("stencil = 4", "stencil = 4\nn_threads = 2  # faster")
    summary = run_forward_job(write(tmp_path, edited))
    assert (summary["run"], summary["skipped"]) == (0, 6)
    # the defaults written out are the same data
    explicit = JOB.replace("nt = 80", "nt = 80\namplitude = 1.0\ntype = 'ricker'")
    assert run_forward_job(write(tmp_path, explicit))["skipped"] == 6


@pytest.mark.parametrize("edit, differs", [
    (("pml_width = 8", "pml_width = 9"), "[solver.pml_width] [8, 8, 8, 8] in the file, "
                                          "[9, 9, 9, 9] now"),
    (("nt = 80", "nt = 81"), "[wavelet.nt] 80 in the file, 81 now"),
    (("shots = 6", "shots = 5"), "[acquisition.shots] 6 in the file, 5 now"),
    (("stencil = 4", "stencil = 2"), "[solver.stencil] 4 in the file, 2 now"),
])
def test_resume_refusal_names_the_keys_that_differ(tmp_path, edit, differs):
    run_forward_job(write(tmp_path))
    with pytest.raises(ConfigError, match="another configuration") as info:
        run_forward_job(write(tmp_path, JOB.replace(*edit)))
    assert differs in str(info.value)


def test_resume_notices_a_rewritten_model_file(tmp_path):
    np.save(tmp_path / "eps.npy", np.full((30, 60), 4.0, np.float32))
    path = write(tmp_path, FILE_MODEL)
    run_forward_job(path)
    np.save(tmp_path / "eps.npy", np.full((30, 60), 5.0, np.float32))
    with pytest.raises(ConfigError, match=r"\[model.epsilon\] sha256:"):
        run_forward_job(path)


def test_files_of_the_old_text_hash(tmp_path):
    """Files written before resume keyed on the data hold only config_sha256 (of
    the text): the same text resumes (and is upgraded), another is refused."""
    path = write(tmp_path)
    run_forward_job(path, executor=None)
    with h5py.File(tmp_path / "out.h5", "a") as f:
        f["done"][3:] = False
        del f.attrs["data_sha256"], f.attrs["data_keys"]
    other = write(tmp_path, JOB + "\n# edited\n", name="other.toml")
    with pytest.raises(ConfigError, match="older wavecore, which recorded only a hash"):
        run_forward_job(other)
    summary = run_forward_job(path)
    assert (summary["run"], summary["skipped"]) == (3, 3)
    assert "data_sha256" in read_shots(tmp_path / "out.h5")["attrs"]
    assert run_forward_job(other)["skipped"] == 6  # now keyed on the data


# -- item 8: workers die with their parent --------------------------------------

def _table():
    """{pid: (ppid, state)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(d)] = (int(stat[1]), stat[0])
    return out


def _descendants(root):
    table, found, todo = _table(), set(), [root]
    while todo:
        p = todo.pop()
        for child, (ppid, _) in table.items():
            if ppid == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids):
    table = _table()
    return sorted(p for p in pids if p in table and table[p][1] != "Z")


def _cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_workers_die_with_a_killed_job(tmp_path, executor):
    if executor == "dask":
        pytest.importorskip("distributed", reason="Dask runs need wavecore[hpc]")
    # Shots long enough (about a second each on 2 cores) that the workers are
    # busy when the job is killed; 40 of them would take far longer than the wait.
    text = (JOB.replace("spacing = 0.05", "spacing = 0.02").replace("nt = 80", "nt = 20000")
            .replace("shots = 6", "shots = 40").replace("step = [0, 5]", "step = [0, 2]")
            + f'\n[parallel]\nexecutor = "{executor}"\nworkers = 2\n')
    path = write(tmp_path, text)
    job = subprocess.Popen([sys.executable, "-m", "wavecore", "forward", str(path), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = set()
    try:
        deadline = time.monotonic() + 120  # a bound against hanging, not a timing
        while time.monotonic() < deadline and job.poll() is None:
            seen |= _descendants(job.pid)
            workers = [p for p in _alive(seen) if "spawn_main" in _cmdline(p)]
            if len(workers) >= 2 and (tmp_path / "out.h5").exists():
                time.sleep(1.0)  # let them start on their shots
                break
            time.sleep(0.1)
        seen |= _descendants(job.pid)
        assert job.poll() is None, job.communicate()
        assert len([p for p in _alive(seen) if "spawn_main" in _cmdline(p)]) >= 2
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        deadline = time.monotonic() + 20
        while _alive(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = {p: _cmdline(p)[:120] for p in _alive(seen)}
        assert not survivors, f"processes outlived the killed job: {survivors}"
    finally:
        if job.poll() is None:
            job.kill()
        for p in _alive(seen):
            os.kill(p, signal.SIGKILL)


def test_sigterm_ends_the_job_and_its_workers(tmp_path):
    """SIGTERM (SLURM's time limit) exits the job (128 + 15) with its workers,
    the finished shots kept."""
    text = (JOB.replace("spacing = 0.05", "spacing = 0.02").replace("nt = 80", "nt = 20000")
            .replace("shots = 6", "shots = 40").replace("step = [0, 5]", "step = [0, 2]")
            + '\n[parallel]\nexecutor = "processes"\nworkers = 2\n')
    path = write(tmp_path, text)
    job = subprocess.Popen([sys.executable, "-m", "wavecore", "forward", str(path), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and job.poll() is None:
            seen |= _descendants(job.pid)
            if len([p for p in _alive(seen) if "spawn_main" in _cmdline(p)]) >= 2:
                time.sleep(1.0)
                break
            time.sleep(0.1)
        seen |= _descendants(job.pid)
        job.send_signal(signal.SIGTERM)
        assert job.wait(60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 20
        while _alive(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(seen)
        assert not read_shots(tmp_path / "out.h5")["done"].all()  # readable, partial
    finally:
        if job.poll() is None:
            job.kill()
        for p in _alive(seen):
            os.kill(p, signal.SIGKILL)


# -- item 15: the job of docs/jobs.md runs as written ---------------------------

def test_the_job_of_docs_jobs_md_fits_its_model(tmp_path, monkeypatch):
    """docs/jobs.md makes its model files (420 cells wide) and its job's line
    needs at least 417: the plan of the job as written works, one column less
    is refused up front."""
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "jobs.md").read_text()
    make_models = re.findall(r"```python\n(.*?)```", doc, re.S)[0]
    job = re.findall(r"```toml\n(.*?)```", doc, re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(make_models, {})
    path = write(tmp_path, job, name="survey.toml")
    plan = run_forward_job(path, dry_run=True)
    assert (plan["shots"], plan["steps"]) == (100, 600)
    for name, key in (("eps.npy", None), ("m.npz", "sigma"), ("m.h5", "mu")):
        if key is None:
            np.save(name, np.load(name)[:, :416])
        elif name.endswith(".npz"):
            np.savez(name, sigma=np.load(name)["sigma"][:, :416])
        else:
            with h5py.File(name, "a") as f:
                mu = f["mu"][:, :416]
                del f["mu"]
                f["mu"] = mu
    with pytest.raises(ConfigError, match=r"\[acquisition\] receivers leave the model "
                                          r"\(60, 416\)"):
        run_forward_job(path, dry_run=True)
