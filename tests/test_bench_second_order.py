"""bench/bench_second_order.py and bench/bench_newton.py --quick run, print their
tables and targets and write their results pairs (what they measure is not
checked: no test asserts a timing)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_quick(script, out, *extra):
    run = subprocess.run([sys.executable, str(REPO / "bench" / script), "--quick", "--out",
                          str(out), *extra], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_quick_second_order_benchmark(tmp_path):
    out = run_quick("bench_second_order.py", tmp_path)
    for label in ("forward", "fwd+grad", "store", "jvp", "GN product", "second_vjp",
                  "full HVP", "Born from scratch", "full HVP from scratch"):
        assert any(line.startswith("|") and f" {label}" in line for line in out.splitlines())
    assert "jvp <= 2.2x our forward" in out and "full HVP from scratch <= 2x" in out
    record = json.loads(next(tmp_path.glob("second_order_*_quick.json")).read_text())
    assert set(record["best"]) == {"forward", "fwd+grad", "store", "jvp", "GN product",
                                   "second_vjp", "full HVP"}
    assert record["tide"] is None and record["meta"]["git"]
    assert "## Targets" in next(tmp_path.glob("second_order_*_quick.md")).read_text()


def test_quick_second_order_benchmark_in_debye_media(tmp_path):
    out = run_quick("bench_second_order.py", tmp_path, "--debye", "1")
    assert "1-pole Debye medium" in out and "full HVP" in out and "TIDE" not in out
    record = json.loads(next(tmp_path.glob("second_order_*_debye_quick.json")).read_text())
    assert record["config"]["debye"] == 1 and record["tide"] is None


def test_quick_newton_benchmark(tmp_path):
    out = run_quick("bench_newton.py", tmp_path)
    assert "L-BFGS-B" in out and "Gauss-Newton" in out and "Truncated Newton" in out
    assert "Target:" in out
    record = json.loads(next(tmp_path.glob("newton_*_quick.json")).read_text())
    assert 2 <= len(record["lbfgs"]) <= 5 and 2 <= len(record["gauss_newton"]) <= 4
    assert 2 <= len(record["truncated_newton"]) <= 4
    assert all("cg_iterations" in h for h in record["gauss_newton"][1:])
    assert all("cg_stop" in h for h in record["truncated_newton"][1:])
    assert isinstance(record["reached"], bool) and isinstance(record["reached_truncated"], bool)
