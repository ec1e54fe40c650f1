"""bench/bench_checkpointing.py and bench/bench_gradient_breakdown.py --quick run,
print their tables (the disk level and its in-memory twin, the disk price; the
kernel / rest breakdown) and write their results pairs (no timing is asserted)."""

import json

from test_bench_second_order import run_quick as bench


def test_quick_checkpointing_benchmark_has_the_disk_level(tmp_path):
    out = bench("bench_checkpointing.py", tmp_path, "--case", "tm2d300", "--rounds", "1",
                "--repeats", "0")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("|")}
    disk, twin = rows["checkpoint, 10% budget + disk"], rows[
        "checkpoint, 10% budget: the + disk schedule in RAM"]
    assert "on disk" in disk and "on disk" not in twin
    assert disk.split("|")[4].split("(")[0].strip() == twin.split("|")[4].strip()  # same
    assert "A disk checkpoint access" in out and "forward steps to write" in out
    record = json.loads(next(tmp_path.glob("checkpointing_tm2d300_*_quick.json")).read_text())
    assert record["disk_price"]["state_bytes"] > 0
    assert record["results"][0]["0.1+disk"]["schedule"]["disk_checkpoints"] > 0


def test_quick_gradient_breakdown(tmp_path):
    out = bench("bench_gradient_breakdown.py", tmp_path, "--repeats", "2")
    header = next(line for line in out.splitlines() if "forward kernels" in line)
    assert "adjoint kernels" in header and "rest" in header
    assert any(line.startswith("|") and "forward + gradient" in line
               for line in out.splitlines())
    record = json.loads(next(tmp_path.glob("gradient_breakdown_*_quick.json")).read_text())
    assert len(record["rounds"]) == 2
    assert record["rounds"][0]["gradient"]["adjoint"] > 0  # the wrapper saw the kernels


def test_quick_8gb_case_runs_with_and_without_the_disk_level(tmp_path):
    out = bench("bench_checkpointing.py", tmp_path, "--case", "m3d128")
    assert "checkpoint, 8 GB peak |" in out and "checkpoint, 8 GB peak + disk |" in out
    assert out.count("within 8 GB peak memory") == 2
