"""Builds of the CPU core with different -march values, timed side by side.

Usage:
    python bench/compare_builds.py                        # native, default, default@v3, @baseline
    python bench/compare_builds.py --march native ""      # the -march values ("" = none)
    python bench/compare_builds.py --variants v3          # run-time variants of the default build
    python bench/compare_builds.py --workdir DIR --reuse  # reuse the builds kept in DIR

Copies the tracked files of this checkout into one folder per -march value under
--workdir and builds each in place (``WAVECORE_MARCH=<value> python setup.py
build_ext --inplace``: 2.5-5 min each on 2 cores). "" is the default build, which
dispatches at run time between its variants (the best one the CPU runs);
``--variants`` adds columns "default@<variant>" that run that build with
``WAVECORE_CPU_VARIANT=<variant>``. Then, for --rounds rounds, column after
column: a probe in a fresh process (the first call and the best of three
later calls of tm2d 300^2 x 4 shots x 1000 steps with stencils 2, 4 and 8, and of
maxwell3d 64^3 x 100 steps, forward and forward + gradient), ``bench_tm2d.py --quick
--no-tide`` and ``bench_maxwell3d.py --quick``, each on the copy's build. Each case
keeps its best over the rounds: interleaving puts every build in the same windows of
a shared machine. "x first" is the time of a build over the time of the first build
(for rates, the inverse ratio). Results:
bench/results/compare_builds_<cpu>_<date>[_<suffix>].{md,json}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

# (label, system, n, shots, steps, stencil, gradient)
PROBE_CASES = [("tm2d 300^2 x4, stencil 2", "tm2d", 300, 4, 1000, 2, False),
               ("tm2d 300^2 x4, stencil 4", "tm2d", 300, 4, 1000, 4, False),
               ("tm2d 300^2 x4, stencil 8", "tm2d", 300, 4, 1000, 8, False),
               ("maxwell3d 64^3, forward", "maxwell3d", 64, 1, 100, 4, False),
               ("maxwell3d 64^3, forward + gradient", "maxwell3d", 64, 1, 100, 4, True)]

PROBE = r"""
import json, sys, time
import numpy as np
import wavecore
sys.path.insert(0, sys.argv[1])
from bench_gpu import problem
info = wavecore.config.config()
out = {"flags": info["build"]["flags"], "variant": info.get("cpu_variant"),
       "file": wavecore.__file__}
for label, system, n, shots, nt, stencil, grad in json.loads(sys.argv[2]):
    p = problem(system, n, shots, np.float32, nt)
    fn = wavecore.tm2d if system == "tm2d" else wavecore.maxwell3d
    times = []
    for _ in range(4):
        start = time.perf_counter()
        if grad:
            res = fn(**p, stencil=stencil, pml_width=20, n_threads=2,
                     requires_grad=("epsilon", "sigma"), storage_mode="device")
            res.vjp(np.ones_like(res.receiver_data))
        else:
            fn(**p, stencil=stencil, pml_width=20, n_threads=2)
        times.append(time.perf_counter() - start)
    out[label] = {"first_s": times[0], "repeated_s": min(times[1:])}
print(json.dumps(out))
"""


def folder_name(march: str) -> str:
    return march or "default"


def prepare(march: str, workdir: Path, reuse: bool) -> tuple:
    """A copy of the tracked files with the core built in place for ``march``,
    and the seconds the build took (None: reused)."""
    copy = workdir / folder_name(march)
    if reuse and list((copy / "wavecore" / "_cpu").glob("_maxwell3d*.so")):
        return copy, None
    shutil.rmtree(copy, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    print(f"building {copy} (WAVECORE_MARCH={march!r})", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=copy,
                   env={**os.environ, "WAVECORE_MARCH": march}, check=True,
                   stdout=subprocess.DEVNULL)
    return copy, time.perf_counter() - start


def run_round(copy: Path, env: dict, out: Path, variant: str | None) -> tuple:
    """The probe and both benchmarks on one build (with ``variant``, the run-time
    variant it must run): ({case: (unit, value)}, flags of the variant run)."""
    found = {}
    probe = subprocess.run([sys.executable, "-c", PROBE, str(copy / "bench"),
                            json.dumps(PROBE_CASES)], cwd=copy, env=env, capture_output=True,
                           text=True, check=True)
    record = json.loads(probe.stdout.strip().splitlines()[-1])
    if not record["file"].startswith(str(copy)):
        raise RuntimeError(f"the probe imported {record['file']}, not the build in {copy}")
    if variant is not None and record["variant"] != variant:
        raise RuntimeError(f"the probe ran variant {record['variant']}, not {variant}")
    for label, *_ in PROBE_CASES:
        found[f"{label}, first call"] = ("s", record[label]["first_s"])
        found[f"{label}, repeated"] = ("s", record[label]["repeated_s"])
    subprocess.run([sys.executable, "bench/bench_tm2d.py", "--quick", "--no-tide", "--out",
                    str(out)], cwd=copy, env=env, check=True, stdout=subprocess.DEVNULL)
    for path in out.glob("tm2d_forward_*.json"):
        for c in json.loads(path.read_text())["cases"]:
            label = (f"bench_tm2d {c['n']}^2 x{c['shots']}, stencil {c['stencil']}, "
                     f"{c['threads']} thr")
            found[label + ", e2e"] = ("Mcells/s", c["wc"]["e2e_mcells"])
            found[label + ", steady"] = ("Mcells/s", c["wc"]["steady_mcells"])
        path.unlink()
    subprocess.run([sys.executable, "bench/bench_maxwell3d.py", "--quick", "--repeats", "3"],
                   cwd=copy, env=env, check=True, stdout=subprocess.DEVNULL)
    latest = max((copy / "bench" / "results").glob("maxwell3d_*_quick.json"),
                 key=lambda p: p.stat().st_mtime)
    for c in json.loads(latest.read_text())["cases"]:
        label = f"bench_maxwell3d {c['n']}^3 {c['model']}, {'fwd+grad' if c['grad'] else 'forward'}"
        found[label] = ("s", c["wavecore_s"])
    return found, record["flags"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--march", nargs="+", default=["native", ""])
    parser.add_argument("--variants", nargs="*", default=["v3", "baseline"],
                        help="run-time variants of the default build, one column each")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/wavecore-builds"))
    parser.add_argument("--reuse", action="store_true", help="keep builds found in --workdir")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--suffix", default="", help="appended to the result file names")
    args = parser.parse_args(argv)
    if args.variants and "" not in args.march:
        parser.error("--variants needs the default build: add \"\" to --march")
    builds = {m: prepare(m, args.workdir, args.reuse) for m in args.march}
    # column label -> (copy, WAVECORE_CPU_VARIANT or None)
    columns = {folder_name(m): (builds[m][0], None) for m in args.march}
    columns.update({f"default@{v}": (builds[""][0], v) for v in args.variants})
    best, flags = {}, {}
    for r in range(args.rounds):
        for label, (copy, variant) in columns.items():
            print(f"round {r + 1}: {label}", flush=True)
            env = {**os.environ, "PYTHONPATH": str(copy)}
            env.pop("WAVECORE_CPU_VARIANT", None)
            if variant is not None:
                env["WAVECORE_CPU_VARIANT"] = variant
            found, flags[label] = run_round(copy, env, args.workdir / "tmp", variant)
            for case, (unit, value) in found.items():
                old = best.setdefault(case, {"unit": unit}).get(label)
                keep = max if unit == "Mcells/s" else min
                best[case][label] = value if old is None else keep(old, value)
    labels = list(columns)
    first = labels[0]
    head = ["case", "unit", *labels, *(f"{m} x {first}" for m in labels[1:])]
    rows = []
    for case, values in best.items():
        def ratio(m):
            a, b = values[m], values[first]
            return a / b if values["unit"] == "s" else b / a
        rows.append([case, values["unit"], *(f"{values[m]:.3f}" if values["unit"] == "s"
                                              else f"{values[m]:.0f}" for m in labels),
                     *(f"{ratio(m):.2f}" for m in labels[1:])])
    meta = machine_info()
    date = datetime.date.today().isoformat()
    build_s = {folder_name(m): t for m, (_, t) in builds.items()}
    lines = [f"# CPU core builds side by side ({date})", "",
             f"- machine: {meta['cpu']}, {meta['cores']} cores; git {meta['git']}",
             f"- command: `python bench/compare_builds.py {' '.join(argv or sys.argv[1:])}`; "
             f"{args.rounds} interleaved rounds, best of each case",
             *(f"- {m}: `{flags[m]}`" for m in labels),
             "- build_ext --inplace times: " + ", ".join(
                 f"{m} {t:.0f} s" if t is not None else f"{m} reused"
                 for m, t in build_s.items()),
             "- s: seconds (lower is better); Mcells/s (higher is better); "
             f"'x {first}' = time ratio to the {first} build", "",
             *markdown_table(head, rows)]
    print("\n".join(lines))
    stem = f"compare_builds_{cpu_slug(meta)}_{date}"
    stem += f"_{args.suffix}" if args.suffix else ""
    record = dict(meta=meta, flags=flags, best=best, build_s=build_s)
    print(f"wrote {save_results(args.out, stem, lines, record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
