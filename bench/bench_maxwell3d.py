"""maxwell3d on the CPU: forward and gradient throughput, side by side with TIDE 0.1.2.

Usage:
    python bench/bench_maxwell3d.py            # sizes 32^3 .. 160^3, dtypes, threads, shots
    python bench/bench_maxwell3d.py --quick    # the target cases only (64^3)

Throughput is in model ("interior") cells per second: n^3 * shots * steps / time,
the unit of the issue's targets (the 20-cell CPML and the halo are extra work),
and per cell of the whole padded grid (the rate of the kernels themselves).
Model: two layers (eps 4 / 9, sigma 1e-3 / 1e-2), 1 cm cells, one y-directed
Ricker dipole per shot near the top, four receivers; the "smooth" model varies
eps and sigma from cell to cell (see make_problem). Each case is timed as the
best of ``--repeats`` runs after a warm-up run, in this process; TIDE runs in
its own interpreter (``torch.set_flush_denormal(True)``, its fast setting) on
the same arrays and thread count. The two alternate for ``--rounds`` rounds and
each keeps its best time: these shared VMs drift by +-20 % within minutes, and
interleaving puts both sides in the same windows. Results: ``bench/results/maxwell3d_<cpu>_<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import wavecore
from wavecore.testing.tide import tide_python

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gpu import problem  # noqa: E402
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPACING = 0.01

_TIDE = r"""
import json, sys, time
import numpy as np, torch
torch.set_flush_denormal(True)
from tide.maxwell.maxwell3d import maxwell3d
c = json.loads(sys.argv[2])
torch.set_num_threads(c["threads"])
d = np.load(sys.argv[1])
t = {k: torch.from_numpy(d[k]) for k in d.files}
best = []
for rep in range(c["repeats"] + 1):
    for k in ("epsilon", "sigma"):
        t[k] = t[k].detach().requires_grad_(c["grad"])
    start = time.perf_counter()
    out = maxwell3d(t["epsilon"], t["sigma"], t["mu"], c["spacing"], c["dt"], t["amp"], t["src"],
                    t["rec"], stencil=c["stencil"], pml_width=20, n_threads=c["threads"])
    if c["grad"]:
        out[-1].square().sum().backward()
    if rep:  # the first run is the warm-up
        best.append(time.perf_counter() - start)
print(json.dumps(min(best)))
"""


def make_problem(n: int, shots: int, dtype, nt: int, model: str = "layers") -> dict:
    """The two-layer n^3 model and acquisition of the module docstring; with
    ``model="smooth"``, permittivity and conductivity that change from cell to
    cell along every axis: every E row reads ca and cb per cell (mu, and so
    cq, stays uniform, as in most GPR models)."""
    p = problem("maxwell3d", n, shots, dtype, nt)
    if model == "smooth":
        z, y, x = np.meshgrid(*[np.linspace(0.0, 1.0, n)] * 3, indexing="ij")
        bump = np.sin(3 * x + 1) * np.cos(2 * y) * np.sin(4 * z + 0.5)
        p["epsilon"] = (6.5 + 2.5 * bump).astype(dtype)
        p["sigma"] = (5e-3 * (1.0 + bump)).astype(dtype)
    return p


def time_wavecore(case: dict, repeats: int) -> float:
    p = make_problem(case["n"], case["shots"], case["dtype"], case["nt"], case["model"])
    kw = dict(stencil=case["stencil"], pml_width=case["pml"], n_threads=case["threads"])
    best = []
    for rep in range(repeats + 1):
        start = time.perf_counter()
        if case["grad"]:
            res = wavecore.maxwell3d(**p, requires_grad=("epsilon", "sigma"),
                                     storage_mode="device", **kw)
            res.vjp(2 * res.receiver_data)
        else:
            wavecore.maxwell3d(**p, **kw)
        if rep:
            best.append(time.perf_counter() - start)
    return min(best)


def time_tide(python: str, case: dict, repeats: int) -> float:
    p = make_problem(case["n"], case["shots"], case["dtype"], case["nt"], case["model"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.npz"
        np.savez(path, epsilon=p["epsilon"], sigma=p["sigma"], mu=p["mu"],
                 amp=p["source_amplitude"], src=p["source_location"],
                 rec=p["receiver_location"])
        opts = dict(threads=case["threads"], spacing=SPACING, dt=p["dt"],
                    stencil=case["stencil"], grad=case["grad"], repeats=repeats)
        out = subprocess.run([python, "-c", _TIDE, str(path), json.dumps(opts)],
                             capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def plan_cases(quick: bool) -> list:
    def case(n, dtype="float32", stencil=4, threads=2, shots=1, grad=False, nt=100, tide=False,
             pml=20, model="layers"):
        return dict(n=n, dtype=dtype, stencil=stencil, threads=threads, shots=shots,
                    grad=grad, nt=nt, tide=tide, pml=pml, model=model)
    cases = [case(64, tide=True), case(64, grad=True, tide=True),
             case(64, tide=True, model="smooth")]
    if not quick:
        cases += [case(32, tide=True), case(32, grad=True, tide=True), case(96),
                  case(128, nt=50), case(160, nt=30), case(64, "float64", tide=True),
                  case(64, threads=1, tide=True), case(64, stencil=2), case(64, stencil=8),
                  case(64, shots=4), case(96, grad=True, nt=60),
                  # Without CPML: the interior cells alone (104^3 is the padded
                  # size of 64^3 with its 20-cell CPML).
                  case(64, pml=0), case(104, pml=0)]
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    python = tide_python()
    meta = machine_info()
    rows, records = [], []
    for c in plan_cases(args.quick):
        ours, theirs = float("inf"), None
        for _ in range(args.rounds if c["tide"] and python else 1):
            ours = min(ours, time_wavecore(c, args.repeats))
            if c["tide"] and python:
                theirs = min(theirs or float("inf"), time_tide(python, c, args.repeats))
        work = c["n"] ** 3 * c["shots"] * c["nt"]
        padded = (c["n"] + 2 * c["pml"] + c["stencil"] - 1) ** 3 * c["shots"] * c["nt"]
        record = dict(c, wavecore_s=ours, tide_s=theirs, wavecore_mcells=work / ours / 1e6,
                      wavecore_padded_mcells=padded / ours / 1e6,
                      tide_mcells=work / theirs / 1e6 if theirs else None,
                      speedup=theirs / ours if theirs else None)
        records.append(record)
        rows.append([f"{c['n']}^3", c["model"], c["pml"], c["dtype"], c["stencil"], c["threads"], c["shots"],
                     "fwd+grad" if c["grad"] else "forward", c["nt"], f"{ours:.3f}",
                     f"{record['wavecore_mcells']:.1f}", f"{record['wavecore_padded_mcells']:.0f}",
                     f"{theirs:.3f}" if theirs else "-",
                     f"{record['tide_mcells']:.1f}" if theirs else "-",
                     f"{record['speedup']:.2f}x" if theirs else "-"])
        print(" | ".join(str(x) for x in rows[-1]), flush=True)
    head = ["grid", "model", "CPML", "dtype", "stencil", "threads", "shots", "run", "steps",
            "wavecore s", "Mcells/s", "padded Mcells/s", "TIDE s", "TIDE Mcells/s", "speed-up"]
    table = markdown_table(head, rows)
    targets = []
    for r in records:
        if r["n"] == 64 and r["dtype"] == "float32" and r["stencil"] == 4 and \
                r["threads"] == 2 and r["shots"] == 1 and r["pml"] == 20 and r["speedup"]:
            what = "gradient" if r["grad"] else "float32 forward 64^3 stencil 4, 2 threads"
            what += f" ({r['model']} model)"
            targets.append(f"[{'PASS' if r['speedup'] >= 2 else 'MISSED'}] {what} >= 2x "
                           f"TIDE: {r['speedup']:.2f}x")
    date = datetime.date.today().isoformat()
    name = f"maxwell3d_{cpu_slug(meta)}_{date}" + ("_quick" if args.quick else "")
    command = ("python bench/bench_maxwell3d.py" + (" --quick" if args.quick else "") +
               f" --repeats {args.repeats} --rounds {args.rounds}")
    text = [f"# maxwell3d CPU benchmark ({date})", "",
            f"- machine: {meta['cpu']}, {meta['cores']} cores, caches {meta['cache']}",
            f"- git: {meta['git']}; command: `{command}`; TIDE: "
            f"{'0.1.2 at ' + python if python else 'not installed'}",
            "- Mcells/s = model cells x shots x steps / wall time; padded Mcells/s counts every "
            "cell of the grid (model, CPML and halo)",
            "", *table, "", *targets, ""]
    path = save_results(RESULTS, name, text, dict(meta=meta, date=date, command=command,
                                                   cases=records, targets=targets))
    print("\n".join(table + [""] + targets))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
