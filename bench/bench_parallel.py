"""Shot-parallel throughput of a batch job: 1 and 2 local worker processes,
one OpenMP thread each (``wavecore forward`` with parallel.executor =
"processes"), and a Dask LocalCluster with 2 workers when Dask is installed.

Usage: python bench/bench_parallel.py [--shots 16] [--n 300] [--nt 2000]

Every run writes the same HDF5 job file from scratch; times include starting
the workers (spawned processes import wavecore). Target: 2 workers >= 1.7x
the throughput of 1 on 2 cores. Results: bench/results/parallel_<cpu>_<date>.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402

from wavecore.jobs import run_forward_job  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

JOB = """
[model]
epsilon = 6.0
sigma = 2e-3
mu = 1.0
shape = [{n}, {n}]
spacing = 0.01
[wavelet]
frequency = 8e8
nt = {nt}
[acquisition]
first_source = [5, 10]
step = [0, {step}]
shots = {shots}
receiver_offsets = [[0, 5], [0, 10], [0, 20]]
[solver]
stencil = 4
pml_width = 20
n_threads = 1
[output]
path = "out.h5"
overwrite = true
[parallel]
executor = "{executor}"
workers = {workers}
shots_per_task = 1
"""


def timed(tmp: Path, args, executor: str, workers: int) -> float:
    path = tmp / f"{executor}{workers}.toml"
    step = max(1, (args.n - 40) // args.shots)
    path.write_text(JOB.format(n=args.n, nt=args.nt, shots=args.shots, step=step,
                               executor=executor, workers=workers))
    return run_forward_job(path)["seconds"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--nt", type=int, default=2000)
    args = parser.parse_args(argv)
    runs = [("processes", 1), ("processes", 2)]
    if importlib.util.find_spec("distributed") is not None:
        runs.append(("dask", 2))
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for executor, workers in runs:
            times[(executor, workers)] = timed(Path(tmp), args, executor, workers)
    base = times[("processes", 1)]
    rows = [[e, w, f"{t:.2f}", f"{args.shots / t:.2f}", f"{base / t:.2f}x"]
            for (e, w), t in times.items()]
    speedup = base / times[("processes", 2)]
    meta = machine_info()
    meta.update(date=datetime.datetime.now().isoformat(timespec="seconds"),
                command="python bench/bench_parallel.py " + " ".join(argv or sys.argv[1:]))
    lines = [f"# Shot-parallel throughput ({meta['date'][:10]})", "",
             f"- machine: {meta['cpu']}, {meta['cores']} cores; git {meta['git']}; "
             f"command: `{meta['command']}`",
             f"- tm2d {args.n} x {args.n}, 20-cell CPML, stencil 4, float32, {args.nt} steps, "
             f"{args.shots} shots, one shot per task, one thread per worker", "",
             *markdown_table(["executor", "workers", "seconds", "shots/s", "vs 1 worker"], rows),
             "", f"[{'PASS' if speedup >= 1.7 else 'MISSED'}] 2 workers >= 1.7x 1 worker: "
                 f"{speedup:.2f}x"]
    print("\n".join(lines))
    stem = f"parallel_{cpu_slug(meta)}_{meta['date'][:10]}"
    save_results(RESULTS, stem, lines, dict(
        meta=meta, args=vars(args), seconds={f"{e}-{w}": t for (e, w), t in times.items()},
        speedup=speedup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
