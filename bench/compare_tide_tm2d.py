"""Receiver-data agreement of wavecore.tm2d with TIDE 0.1.2, float32 and float64.

Usage: python bench/compare_tide_tm2d.py

Runs the models of tests/test_tide_crosscheck.py (homogeneous lossy; layered with
an air void, a conductive layer and mu = 1.5) for stencils 2, 4 and 8 and three
CPML layouts, prints max |wavecore - TIDE| / max |TIDE| and writes the table to
bench/results/tm2d_tide_agreement_<date>.md. TIDE runs in its own interpreter
(WAVECORE_TIDE_PYTHON, see shared/tools/install-tide.sh).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import numpy as np

import wavecore
from wavecore.testing.tide import run_tide_tm2d, tide_python

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from test_tide_crosscheck import models  # noqa: E402  (one definition of the models)

CASES = [(2, 20), (4, (10, 0, 5, 12)), (8, 15)]


def agreement(name: str, order: int, pml, dtype) -> float:
    eps, sig, mu = (a.astype(dtype) for a in models()[name])
    nt, dt, spacing = 250, 1e-11, (0.01, 0.012)
    w = wavecore.ricker(5e8, nt, dt)
    amp = (np.stack([w, -0.5 * w])[:, None, :] * 1e3).astype(dtype)
    src = np.array([[[5, 10]], [[30, 60]]])
    rec = np.array([[[5, c] for c in range(15, 65, 6)]] * 2)
    ours = wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order, pml_width=pml)
    peer = run_tide_tm2d(eps, sig, mu, spacing, dt, amp, src, rec, stencil=order, pml_width=pml)
    return float(np.abs(ours.receiver_data - peer["receiver_data"]).max()
                 / np.abs(peer["receiver_data"]).max())


def main() -> int:
    if tide_python() is None:
        print("TIDE is not installed: set WAVECORE_TIDE_PYTHON (shared/tools/install-tide.sh)")
        return 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    lines = ["| model | dtype | " + " | ".join(f"stencil {o}, pml {p}" for o, p in CASES) + " |",
             "| --- | --- |" + " --- |" * len(CASES)]
    for name in ("homogeneous", "layered"):
        for dtype in (np.float64, np.float32):
            errors = [agreement(name, o, p, dtype) for o, p in CASES]
            lines.append(f"| {name} | {dtype.__name__} | "
                         + " | ".join(f"{e:.1e}" for e in errors) + " |")
            print(lines[-1], flush=True)
    date = datetime.date.today().isoformat()
    out = REPO / "bench" / "results" / f"tm2d_tide_agreement_{date}.md"
    out.write_text(f"# wavecore.tm2d vs TIDE 0.1.2: max |difference| / max |TIDE|\n\n"
                   f"- date {date}, commit {commit}, command "
                   f"`python bench/compare_tide_tm2d.py`\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
