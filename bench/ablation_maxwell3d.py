"""What each CPU optimisation of the 3-D step is worth, measured side by side.

Usage:
    python bench/ablation_maxwell3d.py [--rounds 12] [--n 64] [--threads 2]

Runs the float32, stencil-4 forward of bench_maxwell3d's two-layer n^3 model
(20-cell CPML, 100 steps) in four variants, round-robin in this process, and
reports the best of ``--rounds`` runs of each (these shared 2-core VMs drift by
+-20 % within minutes; the best of many interleaved runs is the stable
figure):

- ``as built``: the package as it is;
- ``per-cell coefficients``: no row takes its coefficients once (every row
  reads ca, cb, cq per cell, as a smooth model's rows do);
- ``separate buffers``: every field and CPML memory in its own allocation
  instead of one 2 MiB-aligned (huge-page) block;
- ``neither``.

"call" times the whole ``maxwell3d`` call; "steady" the 99 steps after the
first (the first step touches fresh memory). Results:
``bench/results/ablation_maxwell3d_<cpu>_<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

import wavecore
from wavecore import _driver, memory
from wavecore.backends import cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_maxwell3d import make_problem  # noqa: E402
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _separate(shapes: dict, dtype) -> dict:
    return {name: np.zeros(shape, dtype) for name, shape in shapes.items()}


def _per_cell(plan, *coefficients):
    return np.zeros_like(UNIFORM_ROWS(plan, *coefficients))


UNIFORM_ROWS, ZEROS_BLOCK = cpu.uniform_rows, memory.zeros_block
VARIANTS = {
    "as built": (UNIFORM_ROWS, ZEROS_BLOCK),
    "per-cell coefficients": (_per_cell, ZEROS_BLOCK),
    "separate buffers": (UNIFORM_ROWS, _separate),
    "neither": (_per_cell, _separate),
}


def use(variant: str) -> None:
    rows, block = VARIANTS[variant]
    cpu.uniform_rows = rows
    _driver.zeros_block = memory.zeros_block = block


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    nt = 100
    p = make_problem(args.n, 1, np.float32, nt)
    kw = dict(stencil=4, pml_width=20, n_threads=args.threads)

    steady = []
    forward = cpu.CpuBackend.forward

    def timed_forward(self, t0, n_steps):
        forward(self, t0, 1)
        start = time.perf_counter()
        forward(self, t0 + 1, n_steps - 1)
        steady.append(time.perf_counter() - start)

    cpu.CpuBackend.forward = timed_forward
    reference = None
    times = {v: [] for v in VARIANTS}
    try:
        for _ in range(args.rounds + 1):  # the first round warms up
            for variant in VARIANTS:
                use(variant)
                start = time.perf_counter()
                data = wavecore.maxwell3d(**p, **kw).receiver_data
                times[variant].append((time.perf_counter() - start, steady[-1]))
                if reference is None:
                    reference = data
                elif not np.array_equal(data, reference):
                    raise AssertionError(f"{variant}: results differ from 'as built'")
    finally:
        use("as built")
        cpu.CpuBackend.forward = forward

    cells = args.n ** 3 * nt
    base = min(c for c, _ in times["as built"][1:])
    rows, records = [], []
    for variant, runs in times.items():
        call = min(c for c, _ in runs[1:])
        still = min(s for _, s in runs[1:])
        records.append(dict(variant=variant, call_s=call, steady_s=still,
                            mcells=cells / call / 1e6))
        rows.append([variant, f"{call:.3f}", f"{still:.3f}", f"{cells / call / 1e6:.1f}",
                     f"{call / base:.2f}"])
    table = markdown_table(["variant", "call s", "steady s (99 steps)", "Mcells/s",
                            "time / as built"], rows)
    meta = machine_info()
    date = datetime.date.today().isoformat()
    command = "python bench/ablation_maxwell3d.py " + " ".join(argv or sys.argv[1:])
    text = [f"# maxwell3d CPU ablation ({date})", "",
            f"- machine: {meta['cpu']}, {meta['cores']} cores; git: {meta['git']}",
            f"- command: `{command.strip()}`; {args.n}^3 two-layer model, float32, stencil 4, "
            f"20-cell CPML, {args.threads} threads, {nt} steps, best of {args.rounds} "
            "interleaved rounds; every variant's receiver data equal bit for bit",
            "", *table, ""]
    path = save_results(RESULTS, f"ablation_maxwell3d_{cpu_slug(meta)}_{date}", text, dict(
        meta=meta, date=date, command=command.strip(), n=args.n, threads=args.threads,
        rounds=args.rounds, variants=records))
    print("\n".join(table))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
