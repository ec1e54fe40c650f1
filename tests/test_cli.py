"""The command line's small promises (issue 15): --version, an aligned
`wavecore info` that lists the optional packages, a clear message naming the
extra when one is missing, and gathers of few traces drawn without inventing
events between them."""

import importlib.util
import re
import sys

import numpy as np
import pytest

import wavecore
from conftest import write_job
from wavecore.__main__ import main

def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"wavecore {wavecore.__version__}"


def test_info_is_aligned_and_lists_the_optional_packages(capsys):
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    columns = {m.start() for m in (re.search(r" :( |$)", line) for line in lines) if m}
    assert len(columns) == 1, "\n".join(lines)  # one column of ':' for every line
    text = "\n".join(lines)
    for package in ("h5py", "distributed", "mpi4py", "segyio", "matplotlib", "tqdm"):
        assert re.search(rf"^  {package} +: ", text, re.M), package
    if importlib.util.find_spec("mpi4py") is None:
        assert re.search(r"mpi4py +: not installed", text)


def test_forward_without_h5py_names_the_extra_before_any_work(tmp_path, monkeypatch, capsys):
    from wavecore.jobs import survey

    def refuse(*args, **kwargs):
        raise AssertionError("a simulation ran before the missing package was reported")
    monkeypatch.setattr(survey, "forward_batch", refuse)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py raises ImportError
    path = write_job(tmp_path)
    for extra in ([], ["--dry-run"]):
        assert main(["forward", str(path), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert "h5py is not installed" in err and 'pip install "wavecore[hpc]"' in err
    assert not (tmp_path / "out.h5").exists()


def test_gathers_of_few_traces_are_wiggles_not_interpolated_images():
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    from wavecore import plots

    rng = np.random.default_rng(0)
    ax = plots.radargram(rng.standard_normal((2, 200)), 1e-11, title="two receivers")
    assert not ax.images and len(ax.lines) == 2  # one wiggle per trace, no image
    plots.pyplot().close(ax.figure)
    ax = plots.radargram(rng.standard_normal((60, 200)), 1e-11)
    assert ax.images[0].get_interpolation() == "nearest"  # never smoothed across traces
    plots.pyplot().close(ax.figure)


def test_cli_plot_of_a_two_receiver_shot(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    pytest.importorskip("h5py", reason="batch jobs write HDF5")
    from wavecore import plots
    from wavecore.jobs import run_forward_job

    path = write_job(tmp_path)
    run_forward_job(path)
    drawn = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda ax, p: (drawn.append(
        (len(ax.images), len(ax.lines), ax.get_xlabel())), save(ax, p))[1])
    assert main(["plot", str(tmp_path / "out.h5"), "--shot", "2",
                 "--out", str(tmp_path / "gather.png")]) == 0
    assert drawn == [(0, 2, "receiver")]
    assert (tmp_path / "gather.png").stat().st_size > 1000
