"""The storing forward and forward + gradient with and without the snapshot
pool (wavecore.memory.POOL), first call and repeated calls.

Usage::

    python bench/bench_memory_pool.py            # 300 x 300 TM2D, 4 shots, 200 steps
    python bench/bench_memory_pool.py --quick    # a tiny grid (a test)

What is measured, on ``bench_tm2d.make_problem`` (two layers, 1 cm cells, 20-cell
CPML), stencil 4, float32, 2 threads, device storage (host memory on the CPU):
  * forward: ``tm2d`` without gradients;
  * store: ``tm2d(requires_grad=("epsilon", "sigma"))`` (the storing forward);
  * fwd+grad: store then ``vjp`` (an FWI iteration's gradient);
each first alone in a fresh interpreter (its pages all new: what a single call
costs), then
repeated: rounds alternate the pool on and off (``WAVECORE_MEMORY_POOL``; the
pool emptied when it is turned off), best and median of ``--repeats`` calls
each, and the median of the rounds' fwd+grad / forward ratios. Results:
bench/results/memory_pool_<cpu>_<date>[_quick].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wavecore  # noqa: E402
from bench_tm2d import (DX, FREQ, PML, cpu_slug, machine_info, make_problem,  # noqa: E402
                        markdown_table, save_results)
from wavecore.memory import POOL  # noqa: E402


def setup(n, shots, nt, threads):
    p = make_problem(n, shots, np.float32)
    amp = (wavecore.ricker(FREQ, nt, p["dt"]) * np.ones((shots, 1, 1))).astype(np.float32)
    args = (p["eps"], p["sig"], p["mu"], DX, p["dt"], amp, p["src"], p["rec"])
    return args, dict(stencil=4, pml_width=PML, n_threads=threads)


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def calls(args, kw):
    def forward():
        wavecore.tm2d(*args, **kw)

    grad = dict(kw, requires_grad=("epsilon", "sigma"), storage_mode="device")

    def store():
        wavecore.tm2d(*args, **grad).gradient.close()

    def fwd_grad():
        r = wavecore.tm2d(*args, **grad)
        r.vjp(r.receiver_data)

    return {"forward": forward, "store": store, "fwd+grad": fwd_grad}


def child(c):
    """The first call of operation c["op"] in a fresh interpreter (all its pages new)."""
    args, kw = setup(c["n"], c["shots"], c["nt"], c["threads"])
    print(json.dumps(timed(calls(args, kw)[c["op"]])))


def first_call(c, op) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps({**c, "op": op})],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--nt", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    if a.quick:
        a.n, a.shots, a.nt, a.repeats = 60, 2, 40, 2
    c = dict(n=a.n, shots=a.shots, nt=a.nt, threads=a.threads)
    args, kw = setup(a.n, a.shots, a.nt, a.threads)
    fns = calls(args, kw)
    first = {k: first_call(c, k) for k in fns}
    times = {(mode, k): [] for mode in ("pool", "no pool") for k in fns}
    for r in range(a.repeats + 1):  # round 0 warms both up
        for mode in ("pool", "no pool"):
            os.environ["WAVECORE_MEMORY_POOL"] = "1" if mode == "pool" else "0"
            if mode == "no pool":
                POOL.release()
            for k, f in fns.items():
                t = timed(f)
                if r:
                    times[mode, k].append(t)
    os.environ.pop("WAVECORE_MEMORY_POOL", None)
    best = {f"{m} {k}": min(v) for (m, k), v in times.items()}
    median = {f"{m} {k}": statistics.median(v) for (m, k), v in times.items()}
    fwd = best["pool forward"]
    rows = [["first call (fresh process)", k, f"{first[k]:.3f}", "", f"{first[k] / first['forward']:.2f}x"]
            for k in fns]
    rows += [[f"repeated, {m}", k, f"{best[f'{m} {k}']:.3f}", f"{median[f'{m} {k}']:.3f}",
              f"{best[f'{m} {k}'] / fwd:.2f}x"] for m in ("pool", "no pool") for k in fns]
    ratio = best["pool fwd+grad"] / fwd
    # the same ratio round by round (each round's calls side by side): its
    # median shows how much of the best's ratio is drift between rounds
    rounds = statistics.median(g / f for g, f in zip(times["pool", "fwd+grad"],
                                                      times["pool", "forward"]))
    targets = [("repeated forward+gradient <= 2.5x the forward (issue 18; best / best)",
                f"{ratio:.2f}x (median of the rounds' ratios {rounds:.2f}x)", ratio <= 2.5)]
    meta = machine_info()
    meta["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# Snapshot pool: tm2d {a.n} x {a.n}, {a.shots} shots, {a.nt} steps, stencil 4, "
             f"float32, {a.threads} threads, device storage", "",
             f"{meta['cpu']} ({meta['cores']} cores), {meta['date']}, commit {meta['git']}", "",
             *markdown_table(["calls", "operation", "best (s)", "median (s)", "/ forward"], rows),
             "", "## Targets", ""]
    word = {True: "met", False: "NOT met"}
    lines += [f"- {t}: {v} ({word[ok]})" for t, v, ok in targets]
    print("\n".join(lines))
    stem = f"memory_pool_{cpu_slug(meta)}_{meta['date'][:10]}" + ("_quick" if a.quick else "")
    record = dict(meta=meta, config=c, first=first, best=best, median=median,
                  targets=[dict(target=t, value=v, passed=ok) for t, v, ok in targets])
    print(f"wrote {save_results(a.out, stem, lines, record)}")


if __name__ == "__main__":
    main()
