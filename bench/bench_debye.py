"""Cost of Debye poles in ``wavecore.tm2d``: forward and forward + gradient with 1 and
3 poles against the non-dispersive run, side by side with TIDE 0.1.2.

Usage::

    python bench/bench_debye.py                            # the target case, ~2-3 min
    python bench/bench_debye.py --nt 1000 --grad-nt 100    # the same, explicit
    python bench/bench_debye.py --quick                    # tiny grid, no TIDE (a test)

What is measured
  * Three wavecore variants on one problem: "plain" (no dispersion), "1 pole" and
    "3 poles" (``dispersion=wavecore.Debye(...)``, per-cell arrays, piecewise
    constant by layer). "forward": ``tm2d`` of ``--nt`` steps. "fwd+grad":
    ``tm2d(requires_grad=...)`` then ``vjp`` of ``--grad-nt`` steps (gradients of
    epsilon and sigma, and with poles of delta_epsilon and tau; storage "device",
    no compression, k = 1); "store" (the forward run keeping snapshots) and
    "reverse" (vjp) split it. The receiver-data gradient is the data itself.
  * Repeated calls: the three variants interleaved in one process (warm-up of each
    first), best of >= ``--repeats`` rounds (up to twice as many while the best two
    of a variant differ by more than 5 %).
  * First calls: each variant in a fresh interpreter (wavecore imported, inputs
    made): its first forward, then its first forward + gradient. The same child
    then measures the peak memory of a second forward + gradient: the growth of
    the resident set (VmHWM, reset through /proc/self/clear_refs, minus VmRSS
    before), against the snapshot bytes the run reports (``result.storage.bytes``).
  * TIDE 0.1.2 (``wavecore.testing.tide.run_tide_tm2d``: its own interpreter per
    variant, ``torch.set_flush_denormal(True)``), same inputs and steps: forward
    with TIDE's native CPU backend (Debye included), forward + ``backward()``: for
    the plain run TIDE's native backend, with poles its only Debye gradient path,
    the autograd Python reference (it warns and falls back). That path keeps every
    step's tensors, ~40 MB per step here, hence the short ``--grad-nt``. Its first
    call is reported apart from the best of the later ones. "grad diff" = max |g_TIDE -
    g_wavecore| / max |g_wavecore| (float32), per gradient, a check that both
    computed the same thing.

Model: ``bench_tm2d.make_problem`` (two layers eps_r 4 / 9, sigma 1e-3 / 5e-3 S/m,
1 cm cells, 20-cell CPML, one source per shot, receivers every 2nd cell), 300 x 300,
4 shots, stencil 4, float32, 2 threads. Poles (delta_epsilon, tau): (3, 0.8 ns),
(1.5, 0.15 ns), (1, 4 ns), their strengths doubled in the lower layer.
Results go to bench/results/debye_<cpu>_<date>[_quick].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wavecore  # noqa: E402
from bench_tm2d import (DX, FREQ, PML, cpu_slug, machine_info, make_problem,  # noqa: E402
                        markdown_table, save_results)
from wavecore.testing.tide import run_tide_tm2d, tide_python  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
POLES = ((3.0, 8e-10), (1.5, 1.5e-10), (1.0, 4e-9))  # (delta_epsilon, tau)
VARIANTS = (("plain", 0), ("1 pole", 1), ("3 poles", 3))
QUICK = dict(n=60, shots=2, nt=20, grad_nt=20, repeats=1)


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def debye(p: dict, n_poles: int):
    """Per-cell pole arrays [P, n, n] of the model's dtype: the POLES, their strengths
    doubled in the lower layer (where make_problem's eps_r is 9)."""
    if n_poles == 0:
        return None
    lower = (p["eps"] > p["eps"].min())[None]
    de = np.stack([np.full(p["eps"].shape, d) for d, _ in POLES[:n_poles]]) * (1 + lower)
    tau = np.stack([np.full(p["eps"].shape, t) for _, t in POLES[:n_poles]])
    return wavecore.Debye(de.astype(p["dtype"]), tau.astype(p["dtype"]))


def targets_of(n_poles: int) -> tuple:
    return ("epsilon", "sigma") + (("delta_epsilon", "tau") if n_poles else ())


class Problem:
    """The inputs of one case, for ``nt`` steps and each variant."""

    def __init__(self, c: dict):
        self.c, self.p = c, make_problem(c["n"], c["shots"], c["dtype"])
        self.disp = {P: debye(self.p, P) for _, P in VARIANTS}

    def args(self, nt: int) -> tuple:
        p = self.p
        w = wavecore.ricker(FREQ, nt, p["dt"], dtype=p["dtype"])
        amp = np.ascontiguousarray(np.broadcast_to(w, (self.c["shots"], 1, nt)))
        return (p["eps"], p["sig"], p["mu"], DX, p["dt"], amp, p["src"], p["rec"])

    def kwargs(self, n_poles: int, grad: bool = False) -> dict:
        kw = dict(stencil=self.c["stencil"], pml_width=PML, n_threads=self.c["threads"])
        if n_poles:
            kw["dispersion"] = self.disp[n_poles]
        if grad:
            kw.update(requires_grad=targets_of(n_poles), storage_mode="device")
        return kw

    def forward(self, n_poles: int, args: tuple):
        t0 = time.perf_counter()
        res = wavecore.tm2d(*args, **self.kwargs(n_poles))
        return time.perf_counter() - t0, res

    def gradient(self, n_poles: int, args: tuple, y):
        """(total, store, reverse) seconds, the result and the gradients."""
        t0 = time.perf_counter()
        res = wavecore.tm2d(*args, **self.kwargs(n_poles, grad=True))
        t1 = time.perf_counter()
        g = res.vjp(y)
        t2 = time.perf_counter()
        return (t2 - t0, t1 - t0, t2 - t1), res, g


def run_child(c: dict) -> dict:
    """Fresh interpreter, one variant: first forward, first fwd+grad, then the peak
    memory of a second fwd+grad."""
    prob, P = Problem(c), c["poles"]
    fwd_args, grad_args = prob.args(c["nt"]), prob.args(c["grad_nt"])
    first_forward, _ = prob.forward(P, fwd_args)
    y = wavecore.tm2d(*grad_args, **prob.kwargs(P)).receiver_data
    (first_grad, _, _), res, g = prob.gradient(P, grad_args, y)
    del res, g
    rss = memory_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
    _, res, g = prob.gradient(P, grad_args, y)
    peak = (memory_kib("VmHWM") - rss) * 1024
    return dict(first_forward_s=first_forward, first_grad_s=first_grad, peak_bytes=peak,
                stored_bytes=int(res.storage.bytes), storage=res.storage.describe())


def settled(times: list, repeats: int) -> bool:
    """Enough runs: >= repeats and the best two within 5 % (else up to 2x repeats)."""
    t = sorted(times)
    return len(t) >= 2 * repeats or (len(t) >= max(repeats, 2) and t[1] <= 1.05 * t[0])


def measure_repeated(c: dict) -> tuple:
    """The variants interleaved in this process: best forward and fwd+grad of each,
    and the gradients of the last fwd+grad (for the comparison with TIDE)."""
    prob = Problem(c)
    fwd_args, grad_args = prob.args(c["nt"]), prob.args(c["grad_nt"])
    ys = {}
    for _, P in VARIANTS:  # warm-up of every variant and path
        prob.forward(P, fwd_args)
        ys[P] = wavecore.tm2d(*grad_args, **prob.kwargs(P)).receiver_data
        prob.gradient(P, grad_args, ys[P])
    fwd = {P: [] for _, P in VARIANTS}
    while not all(settled(v, c["repeats"]) for v in fwd.values()):
        for _, P in VARIANTS:
            fwd[P].append(prob.forward(P, fwd_args)[0])
    grad, grads = {P: [] for _, P in VARIANTS}, {}
    while not all(settled([r[0] for r in v], c["repeats"]) for v in grad.values()):
        for _, P in VARIANTS:
            secs, res, g = prob.gradient(P, grad_args, ys[P])
            grad[P].append(secs)
            grads[P] = {n: np.array(getattr(g, n)) for n in targets_of(P)}
            del res, g
    rows = {}
    for _, P in VARIANTS:
        best = min(grad[P])
        rows[P] = dict(forward_s=min(fwd[P]), forward_runs=len(fwd[P]), grad_s=best[0],
                       store_s=best[1], reverse_s=best[2], grad_runs=len(grad[P]))
    return rows, ys, grads


def measure_tide(c: dict, ys: dict, grads: dict) -> dict:
    """TIDE: forward of every variant at nt, forward + backward at grad_nt; each call
    run ``repeat`` times in one TIDE process (the first is its first call)."""
    prob, out = Problem(c), {}
    fwd_args, grad_args = prob.args(c["nt"]), prob.args(c["grad_nt"])
    common = dict(stencil=c["stencil"], pml_width=PML, n_threads=c["threads"],
                  repeat=c["tide_repeat"])
    for label, P in VARIANTS:
        disp = dict(dispersion=prob.disp[P]) if P else {}
        r = run_tide_tm2d(*fwd_args, **common, **disp)
        row = dict(forward_first_s=float(r["seconds"][0]),
                   forward_s=float(min(r["seconds"][1:])))
        print(f"  TIDE {label:8s} forward  first {row['forward_first_s']:.3f} s  "
              f"best {row['forward_s']:.3f} s", flush=True)
        targets = targets_of(P)
        r = run_tide_tm2d(*grad_args, **common, **disp, requires_grad=targets,
                          grad_receiver_data=ys[P])
        row.update(grad_first_s=float(r["seconds"][0]), grad_s=float(min(r["seconds"][1:])),
                   grad_diff={n: rel(r[f"grad_{n}"], grads[P][n]) for n in targets})
        print(f"  TIDE {label:8s} fwd+grad first {row['grad_first_s']:.3f} s  "
              f"best {row['grad_s']:.3f} s", flush=True)
        out[P] = row
    return out


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def child(c: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(c)], check=True,
                         capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def evaluate(rows: dict, tide: dict, quick: bool) -> list:
    """(target, value, passed: True/False/None) of the issue's targets, then info lines."""
    plain, one, three = rows[0], rows[1], rows[3]
    t1 = tide.get(1)
    note = " (quick: not the target case)" if quick else ""
    out = [
        (f"forward, 1 pole <= 1.5x the non-dispersive forward{note}",
         f"{one['forward_s'] / plain['forward_s']:.2f}x",
         bool(one["forward_s"] <= 1.5 * plain["forward_s"])),
        (f"forward, 1 pole >= 3x faster than TIDE's Debye forward{note}",
         f"{t1['forward_s'] / one['forward_s']:.2f}x" if t1 else "TIDE not run",
         bool(t1["forward_s"] >= 3 * one["forward_s"]) if t1 else None),
        (f"fwd+grad, 1 pole >= 5x faster than TIDE's (its Python reference){note}",
         f"{t1['grad_s'] / one['grad_s']:.2f}x" if t1 else "TIDE not run",
         bool(t1["grad_s"] >= 5 * one["grad_s"]) if t1 else None),
    ]
    info = [("forward, 3 poles / non-dispersive",
             f"{three['forward_s'] / plain['forward_s']:.2f}x"),
            ("fwd+grad, 1 pole / non-dispersive", f"{one['grad_s'] / plain['grad_s']:.2f}x"),
            ("fwd+grad, 3 poles / non-dispersive", f"{three['grad_s'] / plain['grad_s']:.2f}x")]
    if tide.get(3):
        info += [("forward, 3 poles, TIDE / wavecore",
                  f"{tide[3]['forward_s'] / three['forward_s']:.2f}x"),
                 ("fwd+grad, 3 poles, TIDE / wavecore",
                  f"{tide[3]['grad_s'] / three['grad_s']:.2f}x")]
    return out + [(what, value, None) for what, value in info]


def verdict(target: str, value: str, passed) -> str:
    word = {True: "PASS", False: "FAIL"}.get(passed, "INFO" if "TIDE not" not in value else "SKIP")
    return f"[{word}] {target}: {value}"


def report(out_dir: Path, meta: dict, rows: dict, firsts: dict, tide: dict, quick: bool):
    head = ["variant", "fwd first s", "fwd best s", "x plain", "TIDE fwd first s",
            "TIDE fwd best s", "x TIDE", "grad first s", "grad best s", "store s", "reverse s",
            "x plain", "TIDE grad first s", "TIDE grad best s", "x TIDE", "stored MiB",
            "peak +MiB", "peak/stored"]
    table, plain = [], rows[0]
    for label, P in VARIANTS:
        r, f, t = rows[P], firsts[P], tide.get(P)
        table.append([label, f"{f['first_forward_s']:.3f}", f"{r['forward_s']:.3f}",
                      f"{r['forward_s'] / plain['forward_s']:.2f}",
                      f"{t['forward_first_s']:.3f}" if t else "-",
                      f"{t['forward_s']:.3f}" if t else "-",
                      f"{t['forward_s'] / r['forward_s']:.2f}" if t else "-",
                      f"{f['first_grad_s']:.3f}", f"{r['grad_s']:.3f}", f"{r['store_s']:.3f}",
                      f"{r['reverse_s']:.3f}", f"{r['grad_s'] / plain['grad_s']:.2f}",
                      f"{t['grad_first_s']:.3f}" if t else "-",
                      f"{t['grad_s']:.3f}" if t else "-",
                      f"{t['grad_s'] / r['grad_s']:.2f}" if t else "-",
                      f"{f['stored_bytes'] / 2**20:.1f}", f"{f['peak_bytes'] / 2**20:.1f}",
                      f"{f['peak_bytes'] / f['stored_bytes']:.2f}"])
    lines = markdown_table(head, table)
    diffs = [f"- {label}: " + ", ".join(f"{n} {v:.1e}" for n, v in tide[P]["grad_diff"].items())
             for label, P in VARIANTS if P in tide]
    targets = evaluate(rows, tide, quick)
    verdicts = [verdict(*t) for t in targets]
    print("\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts), flush=True)
    legend = (f"forward: {meta['nt']} steps; fwd+grad (tm2d with requires_grad, then vjp; "
              f"storage device, k = 1): {meta['grad_nt']} steps, the same for TIDE. 'first' = "
              "the first call in a fresh interpreter; 'best' = best of the repeated calls "
              "(wavecore: variants interleaved in one process; TIDE: the later calls of its "
              "process). x plain = variant / plain (wavecore); x TIDE = TIDE best / wavecore "
              "best. stored = result.storage.bytes; peak +MiB = growth of the resident set "
              "(VmHWM) during one fwd+grad call (the second in its process).")
    md = ["# Debye poles in wavecore.tm2d: forward and forward + gradient cost"
          + (" (quick)" if quick else ""), "",
          f"- date: {meta['date']}; git: {meta['git']}; command: `{meta['command']}`",
          f"- CPU: {meta['cpu']}, {meta['cores']} cores, caches {meta['cache']}; "
          f"python {meta['python']}, numpy {meta['numpy']}; "
          f"wavecore build: `{meta['wavecore'].get('build')}`; "
          f"CPU variant: {meta['cpu_variant']}",
          f"- case: {meta['case']}",
          f"- TIDE: {meta['tide']}",
          f"- load average at start / end: {meta['loadavg_start'][0]:.2f} / "
          f"{meta['loadavg_end'][0]:.2f}", "", legend, "",
          "## Targets", ""] + [f"- {v}" for v in verdicts] + ["", "## Cases", ""] + lines
    if diffs:
        md += ["", "## Gradient agreement with TIDE (max |g_TIDE - g| / max |g|, float32)", ""]
        md += diffs
    stem = f"debye_{cpu_slug(meta)}_{meta['date'][:10]}" + ("_quick" if quick else "")
    record = dict(meta=meta, wavecore={VARIANTS[i][0]: dict(rows[P], **firsts[P])
                                       for i, (_, P) in enumerate(VARIANTS)},
                  tide={label: tide[P] for label, P in VARIANTS if P in tide},
                  targets=[dict(target=t, value=v, passed=ok) for t, v, ok in targets])
    path = save_results(out_dir, stem, md, record)
    print(f"wrote {path} and {path.with_suffix('.json').name}")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK['n']}^2, {QUICK['shots']} shots, {QUICK['nt']} steps, no TIDE "
                         "(seconds; what a test runs)")
    ap.add_argument("--n", type=int, default=300, help="grid cells per side")
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--nt", type=int, default=1000, help="steps of the forward runs")
    ap.add_argument("--grad-nt", type=int, default=100,
                    help="steps of the fwd+grad runs (TIDE's Debye gradient keeps ~40 MB "
                         "a step at 300^2 x 4 shots)")
    ap.add_argument("--stencil", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=5, help="repeated calls, best taken")
    ap.add_argument("--tide-repeat", type=int, default=3,
                    help="TIDE calls per variant (the first reported apart)")
    ap.add_argument("--no-tide", action="store_true", help="skip TIDE")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
        args.no_tide = True
    c = dict(n=args.n, shots=args.shots, nt=args.nt, grad_nt=args.grad_nt,
             stencil=args.stencil, threads=args.threads, dtype=args.dtype,
             repeats=max(1, args.repeats), tide_repeat=max(2, args.tide_repeat))
    meta = machine_info()
    meta.update(date=datetime.datetime.now().isoformat(timespec="seconds"),
                command=" ".join([Path(sys.executable).name] + sys.argv), nt=args.nt,
                grad_nt=args.grad_nt, loadavg_start=os.getloadavg(),
                cpu_variant=os.environ.get("WAVECORE_CPU_VARIANT", "auto"),
                case=f"{args.n}^2, {args.shots} shots, stencil {args.stencil}, {args.dtype}, "
                     f"{args.threads} threads, PML {PML}; forward {args.nt} steps, fwd+grad "
                     f"{args.grad_nt} steps; poles (delta_epsilon, tau) {POLES} (x2 in the "
                     "lower layer)")
    print(f"{meta['cpu']}; git {meta['git']}; {meta['case']}", flush=True)
    firsts = {}
    for label, P in VARIANTS:
        firsts[P] = child(dict(c, poles=P))
        f = firsts[P]
        print(f"  {label:8s} first forward {f['first_forward_s']:.3f} s  first fwd+grad "
              f"{f['first_grad_s']:.3f} s  peak +{f['peak_bytes'] / 2**20:.1f} MiB  stored "
              f"{f['stored_bytes'] / 2**20:.1f} MiB", flush=True)
    rows, ys, grads = measure_repeated(c)
    for label, P in VARIANTS:
        r = rows[P]
        print(f"  {label:8s} forward {r['forward_s']:.3f} s ({r['forward_runs']} runs)  "
              f"fwd+grad {r['grad_s']:.3f} s ({r['grad_runs']} runs)", flush=True)
    python, tide = None if args.no_tide else tide_python(), {}
    if python:
        tide = measure_tide(c, ys, grads)
        meta["tide"] = (f"TIDE 0.1.2 ({python}; torch.set_flush_denormal(True)); forward: its "
                        "native CPU backend; fwd+grad: native (plain) and its autograd Python "
                        f"reference (poles); {c['tide_repeat']} calls per variant")
    else:
        meta["tide"] = "skipped: " + ("--no-tide" if args.no_tide else
                                      "no Python with TIDE (set WAVECORE_TIDE_PYTHON)")
    meta["loadavg_end"] = os.getloadavg()
    return report(args.out, meta, rows, firsts, tide, args.quick)


if __name__ == "__main__":
    main()
