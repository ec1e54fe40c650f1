"""Agreement of wavecore.tm2d with TIDE 0.1.2: receivers, fields and gradients.

Usage: python bench/compare_tide_tm2d.py [--no-guard]

Runs the models of tests/test_tide_crosscheck.py (homogeneous lossy; layered with
an air void, a conductive layer and mu = 1.5) for stencils 2, 4 and 8 and three
CPML layouts, prints max |wavecore - TIDE| / max |TIDE| of the receiver data, of
the worst final field and of the gradients (stencils 2 and 4) and writes them to
bench/results/tm2d_tide_agreement_<date>.md. TIDE runs in its own interpreter
(WAVECORE_TIDE_PYTHON, see shared/tools/install-tide.sh).

--no-guard drops the 1e-9 that TIDE 0.1.2 (utils.setup_pml, eps=1e-9) and
wavecore (grid._A_DENOMINATOR_GUARD) add to the denominator of the CPML
coefficient a, on wavecore's side only: it shows what the guard is worth, and
writes <name>_no_guard.md.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import numpy as np

from wavecore.testing.tide import tide_python

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from test_tide_crosscheck import (TM2D_CASES, tm2d_agreement,  # noqa: E402
                                  tm2d_gradient_agreement)

CASES = TM2D_CASES


def main(argv=None) -> int:
    no_guard = "--no-guard" in (sys.argv[1:] if argv is None else argv)
    if no_guard:
        import wavecore.grid  # noqa: PLC0415

        wavecore.grid._A_DENOMINATOR_GUARD = 0.0
    if tide_python() is None:
        print("TIDE is not installed: set WAVECORE_TIDE_PYTHON (shared/tools/install-tide.sh)")
        return 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                      capture_output=True, text=True).stdout.strip():
        commit += "+dirty"
    lines = ["| model | dtype | " + " | ".join(f"stencil {o}, pml {p}" for o, p in CASES) + " |",
             "| --- | --- |" + " --- |" * len(CASES)]
    for name in ("homogeneous", "layered"):
        for dtype in (np.float64, np.float32):
            errors = [tm2d_agreement(name, o, p, dtype) for o, p in CASES]
            cells = []
            for e in errors:
                worst = max((v, k) for k, v in e.items() if k != "receivers")
                cells.append(f"{e['receivers']:.1e} (fields {worst[0]:.1e}, {worst[1]})")
            lines.append(f"| {name} | {dtype.__name__} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    lines += ["", "Receivers, then in brackets the worst final field. Gradients (float64, "
              "layered model, 150 steps):", ""]
    for order, pml in CASES[:2]:
        grads = tm2d_gradient_agreement(order, pml)
        lines.append(f"- stencil {order}, pml {pml}: "
                     + ", ".join(f"{k} {v:.1e}" for k, v in grads.items()))
        print(lines[-1], flush=True)
    date = datetime.date.today().isoformat()
    suffix = "_no_guard" if no_guard else ""
    out = REPO / "bench" / "results" / f"tm2d_tide_agreement_{date}{suffix}.md"
    out.write_text(f"# wavecore.tm2d vs TIDE 0.1.2: max |difference| / max |TIDE|\n\n"
                   f"- date {date}, commit {commit}, command "
                   f"`python bench/compare_tide_tm2d.py{' --no-guard' if no_guard else ''}`"
                   + (", wavecore without TIDE's 1e-9 CPML guard" if no_guard else "")
                   + "\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
