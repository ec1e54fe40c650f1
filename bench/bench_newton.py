"""Gauss-Newton and truncated Newton against L-BFGS on the built-in two-parameter
synthetic: iterations, wall time and wave-equation sweeps to the same misfit.

Usage::

    python bench/bench_newton.py            # spacing 4 cm (~2-4 min)
    python bench/bench_newton.py --quick    # spacing 6 cm, few iterations (a test)

Problem: ``wavecore.models.pipe_and_wet_layer`` (dry sand, a water-filled pipe, a
wet layer), epsilon and sigma both inverted from a homogeneous sand start below
the known air rows; surface survey (sources every 20 cm, receivers every 12 cm),
300 MHz Ricker, stencil 4, float32, one full-band stage, bounds epsilon [1, 25],
sigma [0, 0.05] S/m, 2 threads. L-BFGS-B runs ``--lbfgs-iterations``; its final
misfit is the target. Gauss-Newton (``method="gauss-newton"``) and truncated
Newton (``method="truncated-newton"``, the full Hessian), with
``--cg-iterations`` inner CG iterations at most, run ``--gn-iterations``; the
table gives where they first reach that misfit. "sweeps" counts the passes over
the time steps: a forward (with or without snapshots), a vjp and a jvp count one
each (L-BFGS: 2 per evaluation; the Newton methods: 2 for the gradient, 2 (GN)
or 3 (full: second_vjp's three sweeps) per CG iteration, 1 per line-search
trial). Both are timed in this process one after the other; the
model error is the relative L2 error of epsilon and of sigma below the air.
Results go to bench/results/newton_<cpu>_<date>[_quick].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wavecore  # noqa: E402
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402
from wavecore.inversion import Bounds, invert  # noqa: E402
from wavecore.models import pipe_and_wet_layer  # noqa: E402


def setup(spacing, threads):
    model = pipe_and_wet_layer(spacing=spacing)
    h = model.spacing
    nz, nx = model.shape
    dt = 0.45 * wavecore.max_stable_dt((h, h), wavecore.C0, 4)
    nt = int(round(1.2 * 2 * 1.2 / (wavecore.C0 / 2) / dt))
    shots = list(range(2, nx - 2, max(1, int(round(0.2 / h)))))
    receivers = list(range(1, nx - 1, max(1, int(round(0.12 / h)))))
    src = np.array([[[model.antenna_row, s]] for s in shots])
    rec = np.array([[[model.antenna_row, r] for r in receivers]] * len(shots))
    amp = np.repeat(wavecore.ricker(3e8, nt, dt).astype(np.float32)[None, None], len(shots), 0)
    kw = dict(stencil=4, pml_width=10, n_threads=threads)
    observed = wavecore.tm2d(model.epsilon, model.sigma, model.mu, h, dt, amp, src, rec,
                             **kw).receiver_data
    mask = np.zeros(model.shape, bool)
    mask[model.surface_row:] = True
    eps0 = np.where(mask, 4.0, model.epsilon).astype(np.float32)
    sig0 = np.where(mask, 2e-3, model.sigma).astype(np.float32)
    args = (observed, eps0, sig0, model.mu, h, dt, amp, src, rec)
    common = dict(parameters=("epsilon", "sigma"),
                  bounds=Bounds(epsilon=(1.0, 25.0), sigma=(0.0, 0.05)), mask=mask, **kw)
    return model, mask, args, common, dict(grid=model.shape, shots=len(shots), steps=nt)


def error(values, truth, mask):
    return float(np.linalg.norm((values - truth)[mask]) / np.linalg.norm(truth[mask]))


def run(method, args, common, iterations, cg=None):
    """The inversion, its history and the wall time at each history entry."""
    history = []
    began = time.perf_counter()

    def callback(entry):
        history.append({**entry, "seconds": time.perf_counter() - began})

    extra = {} if cg is None else {"cg_iterations": cg}
    result = invert(*args, method=method, iterations=iterations, callback=callback,
                    **common, **extra)
    return result, history


def to_target(history, target):
    """The first entry at or below ``target`` (None if never)."""
    return next((h for h in history if h["misfit"] <= target), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                    help="results folder")
    ap.add_argument("--spacing", type=float, default=0.04)
    ap.add_argument("--lbfgs-iterations", type=int, default=30)
    ap.add_argument("--gn-iterations", type=int, default=15)
    ap.add_argument("--cg-iterations", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.quick:
        a.spacing, a.lbfgs_iterations, a.gn_iterations, a.cg_iterations = 0.06, 4, 3, 3
    model, mask, args, common, size = setup(a.spacing, a.threads)
    lb, lb_hist = run("lbfgs", args, common, a.lbfgs_iterations)
    target = lb_hist[-1]["misfit"]
    start = lb_hist[0]["misfit"]
    rows = [["L-BFGS-B", len(lb_hist) - 1, f"{lb_hist[-1]['seconds']:.1f}",
             2 * lb_hist[-1]["evaluations"], f"{target / start:.3e}",
             f"{error(lb.epsilon, model.epsilon, mask):.3f}",
             f"{error(lb.sigma, model.sigma, mask):.3f}"]]
    newton, summary = {}, []
    # sweeps per inner product: Gauss-Newton jvp + vjp, truncated Newton second_vjp's three
    for method, label, per_cg in (("gauss-newton", "Gauss-Newton", 2),
                                  ("truncated-newton", "Truncated Newton", 3)):
        result, hist = run(method, args, common, a.gn_iterations, cg=a.cg_iterations)
        hit = to_target(hist, target)
        upto = hist[:hist.index(hit) + 1] if hit is not None else hist
        cg_total = sum(h.get("cg_iterations", 0) for h in upto)
        outer = len(upto) - 1
        trials = upto[-1]["evaluations"] - outer
        sweeps = 2 * outer + per_cg * cg_total + trials
        rows += [[f"{label}, to the target" if hit else f"{label} (target missed)", outer,
                  f"{upto[-1]['seconds']:.1f}", sweeps, f"{upto[-1]['misfit'] / start:.3e}",
                  "", ""],
                 [f"{label}, all {len(hist) - 1} iterations", len(hist) - 1,
                  f"{hist[-1]['seconds']:.1f}", "", f"{hist[-1]['misfit'] / start:.3e}",
                  f"{error(result.epsilon, model.epsilon, mask):.3f}",
                  f"{error(result.sigma, model.sigma, mask):.3f}"]]
        newton[method] = dict(history=hist, reached=hit is not None)
        summary += [f"{label} {'reached it' if hit else 'did NOT reach it'} in {outer} "
                    f"iterations ({cg_total} CG iterations in all, at most "
                    f"{a.cg_iterations} each; {trials} line-search trials). Its iterations: "
                    + ", ".join(f"{h['misfit'] / start:.2e} ({h.get('cg_iterations', 0)} CG, "
                                f"{h.get('cg_stop', '-')})" for h in hist)]
    meta = machine_info()
    meta["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# Newton methods vs L-BFGS-B, pipe_and_wet_layer {size['grid'][0]} x "
             f"{size['grid'][1]}, {size['shots']} shots, {size['steps']} steps, epsilon + sigma",
             "", f"{meta['cpu']} ({meta['cores']} cores), {meta['date']}, commit {meta['git']}",
             "", *markdown_table(["method", "iterations", "seconds", "sweeps",
                                  "misfit / start", "eps error", "sigma error"], rows), "",
             f"Target: L-BFGS-B's misfit after {a.lbfgs_iterations} iterations.", ""]
    lines += [f"- {line}" for line in summary]
    print("\n".join(lines))
    stem = f"newton_{cpu_slug(meta)}_{meta['date'][:10]}" + ("_quick" if a.quick else "")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    record = dict(meta=meta, config=config, size=size, lbfgs=lb_hist,
                  gauss_newton=newton["gauss-newton"]["history"],
                  truncated_newton=newton["truncated-newton"]["history"],
                  reached=newton["gauss-newton"]["reached"],
                  reached_truncated=newton["truncated-newton"]["reached"])
    path = save_results(a.out, stem, lines, record)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
