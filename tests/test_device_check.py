"""bench/device_check.sh, the prepared check for a machine with a GPU: its
syntax, the steps it must run, and its control flow with stub commands (no
GPU, no build): every step is time-limited and reported, a failure does not
stop the run, the summary lands in $OUT and the exit status says it failed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "device_check.sh"
STEPS = ["nvidia-smi", "cupy-config", "python-env", "git", "build", "wavecore-info", "nvrtc-warmup",
         "pytest-gpu", "bench-gpu", "graphs-maxwell3d", "graphs-tm2d"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils' timeout")

# A stand-in for python: logs its arguments; pytest fails (or, with
# STUB_ALL_SKIPPED=1, skips every test as it does without a GPU); the build
# sleeps STUB_BUILD_SLEEP seconds.
STUB_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$STUB_LOG"
case "$*" in
  *"pip install"*) sleep "${STUB_BUILD_SLEEP:-0}"; echo "Successfully installed wavecore" ;;
  "-m pytest"*)
    if [[ "${STUB_ALL_SKIPPED:-0}" == 1 ]]; then echo "49 skipped, 436 deselected in 1.0s"; exit 0; fi
    echo "F."; echo "1 failed, 1 passed, 9 deselected in 0.01s"; exit 3 ;;
  *) echo "stub ran" ;;
esac
"""


def run_script(tmp_path: Path, **env) -> tuple[subprocess.CompletedProcess, Path, str]:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in {"python": STUB_PYTHON,
                       "nvidia-smi": '#!/usr/bin/env bash\necho "nvidia-smi $*" >> "$STUB_LOG"\n'
                                     'echo "GPU 0: Stub H200"\n'}.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    out, log = tmp_path / "out", tmp_path / "calls.log"
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("PYTHON", "OUT") and not k.startswith("DEVICE_CHECK_")}
    full_env.update(PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}", OUT=str(out),
                    STUB_LOG=str(log), **env)
    proc = subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True,
                          timeout=60)
    return proc, out, log.read_text() if log.exists() else ""


def summary_rows(out: Path) -> dict:
    """{step: (exit code, seconds, note)} from summary.txt."""
    rows = {}
    for line in (out / "summary.txt").read_text().splitlines():
        parts = line.split(None, 3)
        if parts and parts[0] in STEPS + ["total"]:
            rows[parts[0]] = (int(parts[1]), float(parts[2]), parts[3] if len(parts) > 3 else "")
    return rows


def test_device_check_syntax():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_device_check_names_every_required_step():
    text = SCRIPT.read_text()
    for required in ["nvidia-smi", "cupy.show_config()", "-m pip list", "git rev-parse HEAD",
                     "wavecore info",
                     "bench/compile_kernels.py",
                     "pip install --no-build-isolation --no-deps -e .", "-m pytest -m gpu",
                     "bench/bench_gpu.py --quick --out", "--system maxwell3d --out",
                     "--system tm2d --out", 'timeout --kill-after=10 "$limit"',
                     "summary.txt"]:
        assert required in text, required
    assert "benchmark_maxwell3d_cuda_graph.py --verify" in text


def test_device_check_goes_on_after_a_failure_and_writes_the_summary(tmp_path):
    proc, out, calls = run_script(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = summary_rows(out)
    assert list(rows) == STEPS + ["total"]
    codes = {name: rows[name][0] for name in STEPS}
    assert codes["pytest-gpu"] == 3
    assert "1 failed, 1 passed" in rows["pytest-gpu"][2]
    assert all(codes[name] == 0 for name in STEPS if name not in ("pytest-gpu", "git")), str(codes)
    assert rows["total"][0] == 1
    for name in STEPS:  # one log per step, starting with its command
        assert (out / f"{name}.log").read_text().startswith("$ ")
    # The steps after the failure ran, with the results folder passed on.
    assert f"bench/bench_gpu.py --quick --out {out}" in calls
    assert f"--verify --system maxwell3d --out {out}" in calls
    assert f"--verify --system tm2d --out {out}" in calls
    assert "nvidia-smi" in calls.splitlines()[0]
    assert proc.stdout.rstrip().endswith((out / "summary.txt").read_text().rstrip())


def test_device_check_times_out_a_hung_step_and_keeps_to_the_budget(tmp_path):
    proc, out, calls = run_script(tmp_path, STUB_BUILD_SLEEP="60", DEVICE_CHECK_BUDGET="3",
                                  DEVICE_CHECK_MIN_STEP="1")
    assert proc.returncode == 1
    # The 60-s build was killed, not waited for (it prints its last line after the sleep).
    assert "Successfully installed" not in (out / "build.log").read_text()
    rows = summary_rows(out)
    assert rows["build"][0] == 124 and "timed out" in rows["build"][2]
    after = STEPS[STEPS.index("build") + 1:]
    assert all(rows[name][0] == 125 and "skipped" in rows[name][2] for name in after), rows
    assert "-m pytest" not in calls


def test_device_check_counts_a_gpu_test_run_that_skipped_everything_as_failed(tmp_path):
    proc, out, _ = run_script(tmp_path, STUB_ALL_SKIPPED="1")
    rows = summary_rows(out)
    assert rows["pytest-gpu"][0] == 1 and "no test ran on the GPU" in rows["pytest-gpu"][2]
    assert all(rows[name][0] == 0 for name in STEPS if name not in ("pytest-gpu", "git"))
    assert proc.returncode == 1
