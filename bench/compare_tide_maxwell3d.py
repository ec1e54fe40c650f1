"""Agreement of wavecore.maxwell3d with TIDE 0.1.2: receivers, fields and gradients.

Usage: python bench/compare_tide_maxwell3d.py [--no-guard]

Runs the cases of tests/test_tide_crosscheck.py (a two-layer model with random
conductivity and permeability, 9 x 10 x 11 cells, stencils 2/4/6/8, symmetric,
per-axis and per-side CPML, four source/receiver component pairs), prints
max |wavecore - TIDE| / max |TIDE| of the receiver data and of the worst final
field, in float64 and float32, and the gradient agreement; writes the table to
bench/results/maxwell3d_tide_agreement_<date>.md.

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
from test_tide_crosscheck import (MAXWELL3D_CASES, maxwell3d_agreement,  # noqa: E402
                                  maxwell3d_gradient_agreement)


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
    lines = ["| stencil | CPML | source -> receiver | dtype | receivers | worst field |",
             "| --- | --- | --- | --- | --- | --- |"]
    for order, pml, components in MAXWELL3D_CASES:
        for dtype in (np.float64, np.float32):
            e = maxwell3d_agreement(order, pml, components, dtype)
            worst = max((v, k) for k, v in e.items() if k != "receivers")
            lines.append(f"| {order} | {pml} | {components[0]} -> {components[1]} | "
                         f"{dtype.__name__} | {e['receivers']:.1e} | {worst[0]:.1e} "
                         f"({worst[1]}) |")
            print(lines[-1], flush=True)
    grads = maxwell3d_gradient_agreement()
    lines += ["", "Gradients (float64, stencil 4, CPML 3, ex -> ex): "
              + ", ".join(f"{k} {v:.1e}" for k, v in grads.items())]
    print(lines[-1])
    date = datetime.date.today().isoformat()
    suffix = "_no_guard" if no_guard else ""
    out = REPO / "bench" / "results" / f"maxwell3d_tide_agreement_{date}{suffix}.md"
    out.write_text(f"# wavecore.maxwell3d vs TIDE 0.1.2: max |difference| / max |TIDE|\n\n"
                   f"- date {date}, commit {commit}, command "
                   f"`python bench/compare_tide_maxwell3d.py{' --no-guard' if no_guard else ''}`"
                   + (", wavecore without TIDE's 1e-9 CPML guard" if no_guard else "")
                   + "\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
