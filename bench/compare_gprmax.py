"""Cross-check against gprMax 4.0.1: a Hertzian dipole, 3-D and 2-D, every field component.

Usage:
    WAVECORE_GPRMAX_PYTHON=/work/venv-gprmax/bin/python python bench/compare_gprmax.py [--quick]

gprMax runs in its own interpreter (WAVECORE_GPRMAX_PYTHON, default
/work/venv-gprmax/bin/python; ``pip install gprMax==4.0.1`` there). For each case
the script writes a gprMax input file (shown in the results), runs it (CPU, double
precision) and runs wavecore (stencil 2, float64) on the same cells with gprMax's
time step and gprMax's own source samples (read from its output file). The
conventions (sample times, source scaling, field signs, the 2-D axis rotation)
are in wavecore/testing/gprmax.py with the gprMax functions they come from.

gprMax's step is at its CFL limit, above wavecore's (0.99 of it), so wavecore
takes two internal steps per sample (step_ratio 2). Runs stop before anything
reflected by gprMax's PML can reach the receiver (wavecore's CPML is further
out); a check re-runs gprMax on a larger domain to show it. Columns:

- vs gprMax: wavecore's receiver against gprMax's (the samples at the same times);
- same steps: against gprMax run at half its step (#time_step_stability_factor
  0.5), i.e. with wavecore's internal step, at the same times: what remains is
  wavecore's band-limited source up-sampling and its cubic for H;
- k = 1: wavecore without sub-stepping at that half step, against that run sample
  for sample (the two codes' update equations alone);
- H at E's time: wavecore's H read a quarter sample late, where the receivers read
  it before today's fix (H at (n + 3/4) dt instead of (n + 1/2) dt).

Misfits: relative L2 (||wavecore - gprMax|| / ||gprMax||) and max
(max |wavecore - gprMax| / max |gprMax|) over the run. --quick runs the cases at
20 cells per wavelength only (~1 min); the default adds 50 cells per wavelength
(~5 min on 2 cores). Results: bench/results/gprmax_<date>.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tm2d import machine_info, markdown_table, save_results  # noqa: E402

from wavecore.testing.gprmax import (DipoleCase, compare, gprmax_python,  # noqa: E402
                                     gprmax_version, misfit, run_gprmax, source_samples)

REPO = Path(__file__).resolve().parent.parent
H = 0.005  # 5 mm cells

#: 20 cells per wavelength at the centre frequency (3 GHz), 50 at 1.2 GHz; the
#: domains are sized so that the run covers the whole pulse at the receiver.
QUICK = [DipoleCase("3-D z-dipole, free space, 20 cells/wavelength", ndim=3, cells=70,
                    spacing=H, frequency=3e9, polarisation="z"),
         DipoleCase("3-D x-dipole, sigma 0.05 S/m, 20 cells/wavelength", ndim=3, cells=70,
                    spacing=H, frequency=3e9, polarisation="x", sigma=0.05),
         DipoleCase("2-D line source, free space, 20 cells/wavelength", ndim=2, cells=70,
                    spacing=H, frequency=3e9)]
FULL = [DipoleCase("3-D z-dipole, free space, 50 cells/wavelength", ndim=3, cells=140,
                   spacing=H, frequency=1.2e9, polarisation="z"),
        DipoleCase("2-D line source, free space, 50 cells/wavelength", ndim=2, cells=140,
                   spacing=H, frequency=1.2e9)]
#: A run cut while its source is still on (0.8 periods): wavecore's sub-stepped
#: source up-sampling treats the cut trace as periodic.
CUT = DipoleCase("3-D z-dipole, 50 cells/wavelength, run cut at 0.8 periods", ndim=3,
                 cells=60, spacing=H, frequency=1.2e9, polarisation="z")


def fmt(m: dict | None, key: str) -> str:
    return "-" if m is None else f"{m[key]:.1e}"


def case_rows(r: dict) -> list:
    rows = []
    peak = max(m["peak"] for m in r["components"].values())
    hpeak = max(m["peak"] for c, m in r["components"].items() if c.startswith("h"))
    for c, m in r["components"].items():
        ref = hpeak if c.startswith("h") else peak
        if m["peak"] < 1e-12 * ref:  # zero by symmetry: both sides are rounding
            ours = np.abs(r["wavecore"]["data"][c]).max()
            rows.append([c, f"0 (gprMax {m['peak']:.0e}, wavecore {ours:.0e})", "-", "-", "-",
                         "-", "-"])
            continue
        late = r["h_at_e_time"].get(c)
        rows.append([c, fmt(m, "l2"), fmt(m, "max"), fmt(r["same_scheme"][c], "l2"),
                     fmt(r["control"][c], "l2"), fmt(late, "l2"), fmt(late, "max")])
    return rows


def boundary_check(case: DipoleCase, python: str, iterations: int) -> float:
    """Largest L2 misfit between gprMax on ``case`` and on a domain 20 cells larger
    (source and receiver kept in the middle), over the same iterations."""
    a = run_gprmax(case, python, iterations)
    b = run_gprmax(replace(case, cells=case.cells + 20), python, iterations)
    return max(misfit(b["data"][c][1:], a["data"][c][1:])["l2"] for c in a["data"]
               if np.abs(a["data"][c]).max() > 1e-6 * max(np.abs(v).max()
                                                          for v in a["data"].values()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 cells per wavelength only")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    python = gprmax_python()
    if python is None:
        print("gprMax not found: set WAVECORE_GPRMAX_PYTHON (pip install gprMax==4.0.1)")
        return 1
    meta = machine_info()
    meta.update(gprmax=gprmax_version(python), gprmax_python=python,
                date=datetime.datetime.now().isoformat(timespec="seconds"),
                command="python bench/compare_gprmax.py" + (" --quick" if args.quick else ""))
    cases = QUICK + ([] if args.quick else FULL)
    head = ["component", "vs gprMax L2", "max", "same steps L2", "k = 1 L2",
            "H at E's time L2", "max"]
    lines = [f"# wavecore vs gprMax {meta['gprmax']}: Hertzian dipole ({meta['date'][:10]})", "",
             f"- machine: {meta['cpu']}, {meta['cores']} cores; wavecore git {meta['git']}; "
             f"gprMax {meta['gprmax']} (CPU, double precision)",
             f"- command: `WAVECORE_GPRMAX_PYTHON={python} {meta['command']}`; each gprMax "
             "run: `python -m gprMax case.in -cpu_precision double --hide-progress-bars "
             "--log-level 30`",
             "- wavecore: stencil 2, float64, gprMax's dt and source samples; columns as in "
             "the script's docstring (vs gprMax at its dt; same steps = vs gprMax at dt/2; "
             "k = 1 = wavecore at dt/2; H read a quarter sample late)", ""]
    record = dict(meta=meta, cases=[])
    for case in cases:
        r = compare(case, python, half_step_runs=True)
        periods = (r["iterations"] - 1) * r["dt"] * case.frequency
        start = len(lines)
        lines += [f"## {case.name}", "",
                  f"{case.cells} cells per axis ({case.spacing * 1e3:g} mm, gprMax PML "
                  f"{case.gprmax_pml} inside, wavecore CPML {case.wavecore_pml} outside), "
                  f"gaussiandot {case.frequency / 1e9:g} GHz, receiver {case.offset[:case.ndim]} "
                  f"cells from the source; dt = {r['dt']:.6e} s (gprMax), {r['iterations']} "
                  f"iterations ({periods:.2f} periods); wavecore step_ratio "
                  f"{r['step_ratio']} (k = 1 run: {r['control_step_ratio']})", "",
                  *markdown_table(head, case_rows(r)), "",
                  "```", r["input"].rstrip(), "```", ""]
        print("\n".join(lines[start:start + 4 + len(r["components"]) + 2]), flush=True)
        record["cases"].append(dict(
            case=asdict(case), dt=r["dt"], iterations=r["iterations"],
            step_ratio=r["step_ratio"], components=r["components"],
            h_at_e_time=r["h_at_e_time"], same_scheme=r["same_scheme"], control=r["control"],
            input=r["input"]))
    first = cases[0]
    iterations = record["cases"][0]["iterations"]
    boundary = boundary_check(first, python, iterations)
    cut = compare(CUT, python, truncate=True)
    padded = compare(CUT, python, truncate=True, options=dict(time_pad_frac=0.5))
    last = (cut["gprmax"]["samples"][cut["iterations"] - 2]
            / np.abs(source_samples(CUT, cut["gprmax"])).max())
    whole = compare(CUT, python)
    worst = lambda r: max(m["l2"] for c, m in r["components"].items()  # noqa: E731
                          if m["peak"] > 1e-6 * max(x["peak"] for x in r["components"].values()))
    lines += ["## Checks", "",
              f"- gprMax's boundary: on a domain 20 cells larger, gprMax's receiver data of "
              f"the first case change by {boundary:.1e} (L2, worst component) over the "
              f"same {iterations} iterations: nothing from its PML reaches the receiver.",
              f"- Source cut while on ({CUT.name}; its last sample is {last:.0%} of its "
              f"peak): wavecore given only the samples of the run misfits gprMax by "
              f"{worst(cut):.1e} (L2, worst component), {worst(padded):.1e} with "
              f"time_pad_frac=0.5; given the "
              f"source until it has decayed (causality: later samples cannot change earlier "
              f"data, except through the FFT up-sampling) {worst(whole):.1e}. The "
              f"comparisons above always give the decayed source.", ""]
    print("\n".join(lines[-4:]))
    record.update(boundary_check=boundary, source_cut=dict(
        cut=worst(cut), whole=worst(whole), time_pad_frac_half=worst(padded), last_sample=last))
    stem = f"gprmax_{meta['date'][:10]}" + ("_quick" if args.quick else "")
    print(f"wrote {save_results(args.out, stem, lines, record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
