"""The demo (README's main job) and the command line."""

import subprocess
import sys

import numpy as np

from wavecore.demo import run_demo
from wavecore.models import buried_pipe_and_void


def test_quick_demo_writes_a_bscan_with_the_pipe(tmp_path):
    summary = run_demo(tmp_path, quick=True, quiet=True, plot=False)
    with np.load(tmp_path / "bscan.npz") as f:
        data, dt, positions = f["data"], float(f["dt"]), f["positions"]
    assert data.shape == (summary["traces"], summary["samples"])
    assert np.isfinite(data).all()
    # The pipe (1.0 m along the line) gives the strongest scattered energy:
    # after removing the direct wave, the loudest trace is near x = 1 m.
    scattered = data - data.mean(axis=0, keepdims=True)
    loudest = positions[np.argmax(np.abs(scattered).max(axis=1))]
    assert abs(loudest - 1.0) < 0.25, loudest
    assert summary["step_ratio"] == 1 and dt > 0


def test_model_layout():
    model = buried_pipe_and_void(spacing=0.02)
    assert model.shape == (75, 150)
    assert model.epsilon[0, 0] == 1.0 and model.epsilon[model.surface_row, 0] == 4.0
    assert model.sigma.max() == 1e4 and model.antenna_row < model.surface_row


def test_command_line(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "wavecore", *a],  # noqa: E731
                                    capture_output=True, text=True)
    info = run("info")
    assert info.returncode == 0 and "openmp" in info.stdout
    demo = run("demo", "--quick", "--quiet", "--no-plot", "--out", str(tmp_path))
    assert demo.returncode == 0, demo.stderr
    assert "traces" in demo.stdout and (tmp_path / "bscan.npz").exists()
    assert run("nonsense").returncode != 0
