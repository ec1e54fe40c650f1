"""The wheel holds every file wavecore reads at run time.

A wheel carries the package's Python modules, its compiled extensions and the
files that match ``[tool.setuptools.package-data]`` in pyproject.toml; nothing
else of the source tree. These tests check that list without building a
wheel (minutes): every non-Python file under wavecore/ matches a pattern, each
pattern matches a file (``py.typed`` included), and a run of the CUDA
emulation from a copy of the package laid out as a wheel lays it out (the
modules and the package data only) finds every file it opens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wavecore"
# Build outputs next to the sources (Cython's C++, compiled extensions, caches):
# in a wheel as compiled modules or not at all.
BUILD_OUTPUTS = ("_cpu/*.cpp", "_cpu/*.c", "_cpu/*.html", "**/*.so", "**/*.pyd", "**/*.pyc")


def package_data() -> list:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"]["wavecore"]


def packaged(patterns) -> set:
    """The files of wavecore/ that a wheel holds besides its compiled modules."""
    files = {p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    for pattern in patterns:  # setuptools expands package-data with glob
        files |= {p for p in PACKAGE.glob(pattern) if p.is_file()}
    return files


def test_every_data_file_of_the_package_is_package_data():
    outputs = {p for pattern in BUILD_OUTPUTS for p in PACKAGE.glob(pattern)}
    data = {p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".py"
            and "__pycache__" not in p.parts} - outputs
    missing = sorted(str(p.relative_to(PACKAGE)) for p in data - packaged(package_data()))
    assert not missing, f"not in pyproject's package-data, so not in a wheel: {missing}"
    # The CUDA path and its emulation read these at run time.
    for name in ("_gpu/kernels.cu", "_gpu/emulate.h", "_csrc/wc_tm2d.h", "py.typed"):
        assert PACKAGE / name in packaged(package_data()), name


def test_every_package_data_pattern_matches_a_file():
    for pattern in package_data():
        assert any(p.is_file() for p in PACKAGE.glob(pattern)), (
            f"package-data pattern {pattern!r} matches nothing under wavecore/")


# Runs from the wheel-like copy: a CUDA-emulated TM2D run and the 3-D kernel
# source, recording (audit hook) every file under the copy that is opened.
WHEEL_RUN = textwrap.dedent("""
    import json, os, sys
    stage = sys.argv[1]
    sys.path.insert(0, stage)
    opened = set()

    def audit(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.add(os.path.abspath(os.fsdecode(args[0])))

    sys.addaudithook(audit)
    import numpy as np
    import wavecore
    from wavecore._gpu import source

    assert wavecore.__file__.startswith(stage), wavecore.__file__
    n = 16
    model = np.full((n, n), 4.0), np.full((n, n), 1e-3), np.ones((n, n))
    dt = 0.9 * wavecore.max_stable_dt((0.01, 0.01), wavecore.C0 / 2, 4)
    amp = wavecore.ricker(1e9, 12, dt)[None, None]
    run = wavecore.tm2d(*model, 0.01, dt, amp, np.array([[[5, 7]]]), np.array([[[6, 3]]]),
                        stencil=4, pml_width=3, device="cuda-emulated")
    assert np.abs(run.receiver_data).max() > 0
    source.header_text("maxwell3d")
    print(json.dumps(sorted(os.path.relpath(p, stage) for p in opened
                            if p.startswith(stage) and not p.endswith((".py", ".pyc")))))
""")


def test_cuda_emulation_runs_from_a_wheel_layout(tmp_path):
    stage = tmp_path / "site"
    for path in packaged(package_data()):
        target = stage / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", WHEEL_RUN, str(stage)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    opened = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    for name in ("_gpu/kernels.cu", "_gpu/emulate.h", "_csrc/wc_tm2d.h", "_csrc/wc_maxwell3d.h"):
        assert os.path.join("wavecore", name) in opened, sorted(opened)
