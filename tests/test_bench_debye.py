"""bench/bench_debye.py --quick runs, prints its table and verdicts, and writes its
results pair (what it measures is not checked: no test asserts a timing)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_debye_benchmark_prints_the_table_and_writes_results(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench_debye.py"), "--quick",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    header = next(line for line in out.splitlines() if "fwd best s" in line)
    assert header.startswith("|") and "variant" in header
    for column in ("grad best s", "stored MiB", "peak +MiB", "x plain"):
        assert column in header
    for label in ("plain", "1 pole", "3 poles"):
        assert any(line.startswith("|") and f" {label} |" in line for line in out.splitlines())
    verdicts = [line for line in out.splitlines() if line.startswith("[")]
    assert any("forward, 1 pole <= 1.5x" in v and v[:6] in ("[PASS]", "[FAIL]") for v in verdicts)
    assert sum(v.startswith("[SKIP]") for v in verdicts) == 2  # the TIDE targets, no TIDE

    md, js = list(tmp_path.glob("debye_*_quick.md")), list(tmp_path.glob("debye_*_quick.json"))
    assert len(md) == 1 and len(js) == 1
    text = md[0].read_text()
    assert "## Targets" in text and "fwd best s" in text and "command:" in text
    record = json.loads(js[0].read_text())
    assert set(record["wavecore"]) == {"plain", "1 pole", "3 poles"}
    assert record["meta"]["git"] and record["meta"]["grad_nt"] == 20
    plain, one, three = (record["wavecore"][k] for k in ("plain", "1 pole", "3 poles"))
    for row in (plain, one, three):  # times are recorded, never asserted
        assert isinstance(row["forward_s"], float) and isinstance(row["grad_s"], float)
        assert row["peak_bytes"] > 0
    # The snapshots of a Debye run hold the poles' states and E_new + E_old too.
    assert plain["stored_bytes"] < one["stored_bytes"] < three["stored_bytes"]
    assert record["tide"] == {}
