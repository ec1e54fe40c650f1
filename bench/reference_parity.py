"""How closely the compiled CPU core reproduces the numpy reference, float64.

Usage: python bench/reference_parity.py

Runs the cases of tests/test_tm2d_parity.py and tests/test_maxwell3d.py that
the README's and docs/validation.md's agreement figures describe: random
heterogeneous epsilon, sigma and mu, two shots, several sources and receivers,
dz != dx (!= dy), every stencil order, symmetric and per-side CPML, with
gradients of epsilon, sigma, mu and the source amplitude for a random residual.
Prints, per case, max |core - reference| / max |reference| of the receiver data,
of the worst final-state array and of each gradient, and how many of their
values differ at all; then times the reference against the compiled core
(forward, float64, stencil 4, 20-cell CPML, 2 shots, best of 3) on 100 x 100
and 300 x 300 grids with 1 and 2 threads. Writes everything to
bench/results/reference_parity_<date>.md (+ .json).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import wavecore

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
from bench_tm2d import save_results  # noqa: E402
from conftest import random_acquisition, random_model, stable_dt  # noqa: E402
from test_maxwell3d import problem  # noqa: E402

TARGETS = ("epsilon", "sigma", "mu", "source_amplitude")
ORDERS = (2, 4, 6, 8)
PMLS_2D = (0, 4, (3, 0, 0, 5), (0, 2, 6, 1))
PMLS_3D = (0, 2, (2, 0, 1, 3, 0, 2))


def relative(a, b) -> float:
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a).max())


def compare(run, residual_seed=0) -> dict:
    """Forward and gradients on both backends; relative differences and counts."""
    ref = run(python_backend=True)
    cpu = run(n_threads=2)
    y = np.random.default_rng(residual_seed).standard_normal(ref.receiver_data.shape)
    g_ref, g_cpu = ref.vjp(y), cpu.vjp(y)
    row = {"receivers": relative(cpu.receiver_data, ref.receiver_data),
           "receivers_differing": int(np.sum(cpu.receiver_data != ref.receiver_data))}
    states = [(relative(cpu.final_state[k], v), k) for k, v in ref.final_state.items() if v.size]
    row["state"], row["state_worst"] = max(states)
    row["state_differing"] = int(sum(np.sum(cpu.final_state[k] != v)
                                     for k, v in ref.final_state.items()))
    for name in TARGETS:
        a, b = getattr(g_cpu, name), getattr(g_ref, name)
        row[name] = relative(a, b)
        row[f"{name}_differing"] = f"{int(np.sum(a != b))}/{a.size}"
    return row


def tm2d_case(order: int, pml) -> dict:
    nz, nx, nt = 19, 23, 40
    spacing = (0.01, 0.013)
    eps, sig, mu = random_model(nz, nx, seed=order)
    amp, src, rec = random_acquisition(nz, nx, 2, 3, 5, nt, seed=order + 7)
    dt = stable_dt(spacing, eps.min(), mu.min())
    return compare(lambda **kw: wavecore.tm2d(eps, sig, mu, spacing, dt, amp, src, rec,
                                              stencil=order, pml_width=pml,
                                              requires_grad=TARGETS, **kw))


def maxwell3d_case(order: int, pml) -> dict:
    p = problem(seed=order)
    p["source_location"][1, 1] = p["source_location"][1, 0]  # a shared source cell too
    return compare(lambda **kw: wavecore.maxwell3d(
        **p, stencil=order, pml_width=pml, source_component="ez",
        receiver_component=["ex", "ey", "ez", "hx", "hy", "hz"], requires_grad=TARGETS, **kw))


def speed(n: int, nt: int) -> dict:
    """Seconds of one forward run on each backend (best of 3) and the ratios."""
    eps, sig, mu = random_model(n, n, seed=1)
    amp, src, rec = random_acquisition(n, n, 2, 1, 10, nt, seed=2)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())

    def best(**kw):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, stencil=4, pml_width=20, **kw)
            times.append(time.perf_counter() - start)
        return min(times)

    row = {"grid": f"{n} x {n}", "steps": nt, "reference_s": best(python_backend=True)}
    for threads in (1, 2):
        row[f"core_{threads}_s"] = best(n_threads=threads)
        row[f"ratio_{threads}"] = row["reference_s"] / row[f"core_{threads}_s"]
    return row


def main() -> int:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                      capture_output=True, text=True).stdout.strip():
        commit += "+dirty"
    head = ("| system | stencil | CPML | receivers | worst final state | "
            + " | ".join(f"grad {t}" for t in TARGETS) + " |")
    lines = [head, "|" + " --- |" * (5 + len(TARGETS))]
    cases = []
    for system, case, pmls in (("tm2d", tm2d_case, PMLS_2D),
                               ("maxwell3d", maxwell3d_case, PMLS_3D)):
        for order in ORDERS:
            for pml in pmls:
                row = dict(system=system, stencil=order, pml=str(pml), **case(order, pml))
                cases.append(row)
                grads = " | ".join(f"{row[t]:.1e} ({row[t + '_differing']})" for t in TARGETS)
                lines.append(f"| {system} | {order} | {pml} | {row['receivers']:.1e} | "
                             f"{row['state']:.1e} ({row['state_worst']}) | {grads} |")
                print(lines[-1], flush=True)
    worst = {k: max(c[k] for c in cases) for k in ("receivers", "state", *TARGETS)}
    summary = ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
    timing = ["| grid | steps | reference s | core s, 1 thread | ratio | core s, 2 threads | ratio |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    speeds = [speed(100, 500), speed(300, 200)]
    for r in speeds:
        timing.append(f"| {r['grid']} | {r['steps']} | {r['reference_s']:.3f} | "
                      f"{r['core_1_s']:.3f} | {r['ratio_1']:.1f}x | {r['core_2_s']:.3f} | "
                      f"{r['ratio_2']:.1f}x |")
        print(timing[-1], flush=True)
    date = datetime.date.today().isoformat()
    md = ["# Compiled CPU core vs the numpy reference, float64: max |difference| / max |reference|",
          "", f"- date {date}, commit {commit}, command `python bench/reference_parity.py`, "
          "2 threads", "- in brackets: the worst final-state array; for gradients, the "
          "number of values that differ at all", "", *lines, "", f"Worst over all cases: {summary}",
          "", "## Speed (tm2d forward, float64, stencil 4, 20-cell CPML, 2 shots, best of 3)", "",
          *timing]
    out = save_results(REPO / "bench" / "results", f"reference_parity_{date}", md,
                       dict(date=date, commit=commit, cases=cases, worst=worst, speed=speeds))
    print(f"Worst over all cases: {summary}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
