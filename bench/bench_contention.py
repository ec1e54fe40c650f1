"""OpenMP thread waits under CPU contention: 1 against 2 threads, with one
unrelated busy core and on an idle machine.

Usage::

    python bench/bench_contention.py                  # idle, busy pinned, busy unpinned
    python bench/bench_contention.py --busy none      # idle machine only
    python bench/bench_contention.py --rounds 5 --spin 10000 30000

Each configuration runs in a fresh interpreter (libgomp reads its wait policy
once, when it is loaded): a TM2D forward run (``--n`` x ``--n`` model, 20-cell
CPML, ``--shots`` shots, ``--nt`` steps, stencil 2, float32) after a short
warm-up call, best of ``--repeats`` calls (fewer where the calls exceed
``--budget`` seconds). Configurations:

- ``1 thread``: ``n_threads=1``;
- ``default (2 threads)``: ``n_threads`` left to its default (what a user gets;
  ``omp_get_max_threads()``, 2 on a 2-core machine), which adapts the thread
  count to contention (wavecore.backends.cpu.ThreadGovernor);
- ``before: one call, 2 threads``: the time loop as it was before (every step
  of the run in one call of the compiled core, 2 threads, fixed), for the
  idle-machine comparison;
- ``n_threads=2``: an explicit count, fixed, with libgomp's default waits (the
  behaviour of the default before the governor), in calls of ~0.1 s;
- ``n_threads=2, passive``: ``OMP_WAIT_POLICY=PASSIVE``;
- ``n_threads=2, spin N`` for each ``--spin N`` (``GOMP_SPINCOUNT``).

The busy core is a second process running ``while True: pass``, pinned to the
last CPU (``busy pinned``) or left to the scheduler (``busy unpinned``).
Configurations are interleaved, round after round, and each keeps its best
time. Results: bench/results/contention_<cpu>_<date>.{md,json}.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
BUSY = "import os, sys\nif sys.argv[1] == 'pinned':\n    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})\nwhile True:\n    pass\n"
LEGACY = "BENCH_CONTENTION_ONE_CALL"
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")


def child(args) -> None:
    """Time the forward run in this interpreter; print a JSON line."""
    import numpy as np  # noqa: PLC0415

    from bench_tm2d import DX, PML, make_problem  # noqa: PLC0415

    import wavecore  # noqa: PLC0415

    p = make_problem(args.n, args.shots, "float32")
    if os.environ.get(LEGACY):  # the time loop before issue 15: one call, fixed threads
        from wavecore import _stepping  # noqa: PLC0415

        _stepping.CHUNK_SECONDS = None

    def call(nt: int) -> float:
        w = wavecore.ricker(4e8, nt, p["dt"], dtype=p["dtype"])
        amp = np.ascontiguousarray(np.broadcast_to(w, (args.shots, 1, nt)))
        t0 = time.perf_counter()
        wavecore.tm2d(p["eps"], p["sig"], p["mu"], DX, p["dt"], amp, p["src"], p["rec"],
                      stencil=2, pml_width=PML,
                      n_threads=None if args.threads == 0 else args.threads)
        return time.perf_counter() - t0

    call(max(5, args.nt // 20))  # warm-up: imports, first-touch pages
    times, start = [], time.perf_counter()
    while len(times) < args.repeats and (not times or time.perf_counter() - start < args.budget):
        times.append(call(args.nt))
    print(json.dumps({"times": times, "wait_policy": {
        k: os.environ.get(k) for k in OMP_VARS if k in os.environ}}))


def configs(spins) -> list:
    out = [("1 thread", 1, {}), ("default (2 threads)", 0, {}),
           ("before: one call, 2 threads", 2, {LEGACY: "1"}), ("n_threads=2", 2, {}),
           ("n_threads=2, passive", 2, {"OMP_WAIT_POLICY": "PASSIVE"})]
    out += [(f"n_threads=2, spin {s}", 2, {"GOMP_SPINCOUNT": str(s)}) for s in spins]
    return out


def run_child(args, threads: int, env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(env_extra)
    cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--n", str(args.n),
           "--shots", str(args.shots), "--nt", str(args.nt), "--repeats", str(args.repeats),
           "--budget", str(args.budget)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--nt", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=15.0,
                    help="seconds of timed calls per configuration and round (at least one call)")
    ap.add_argument("--busy", nargs="+", default=["none", "pinned", "unpinned"],
                    choices=["none", "pinned", "unpinned"])
    ap.add_argument("--spin", type=int, nargs="*", default=[],
                    help="extra GOMP_SPINCOUNT values to try with 2 threads")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: PLC0415

    meta = machine_info()
    meta.update(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                command="python " + " ".join([sys.argv[0], *sys.argv[1:]]),
                loadavg_start=os.getloadavg(), case=dict(n=args.n, shots=args.shots, nt=args.nt,
                                                         stencil=2, dtype="float32"))
    table = {}
    for busy in args.busy:
        proc = None
        if busy != "none":
            proc = subprocess.Popen([sys.executable, "-c", BUSY, busy])
            time.sleep(0.5)
        try:
            for r in range(args.rounds):
                for name, threads, env in configs(args.spin):
                    res = run_child(args, threads, env)
                    entry = table.setdefault((busy, name), {"times": [], "env": env})
                    entry["times"] += res["times"]
                    entry["wait_policy"] = res["wait_policy"]
                    print(f"[{busy}] round {r + 1} {name}: "
                          + " ".join(f"{t:.3f}" for t in res["times"]), flush=True)
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    meta["loadavg_end"] = os.getloadavg()
    rows, records = [], []
    for busy in args.busy:
        one = min(table[(busy, "1 thread")]["times"])
        for name, _, _ in configs(args.spin):
            e = table[(busy, name)]
            best = min(e["times"])
            rows.append([busy, name, f"{best:.3f}", f"{sorted(e['times'])[len(e['times']) // 2]:.3f}",
                         len(e["times"]), f"{best / one:.2f}"])
            records.append(dict(busy=busy, config=name, env=e["env"], times=e["times"],
                                best=best, vs_1_thread=best / one, wait_policy=e["wait_policy"]))
    lines = ["# OpenMP waits under contention (bench/bench_contention.py)", "",
             f"- date: {meta['date']}; git: {meta['git']}; command: `{meta['command']}`",
             f"- CPU: {meta['cpu']}, {meta['cores']} cores; wavecore build: "
             f"`{meta['wavecore'].get('build')}`",
             f"- case: TM2D {args.n}^2 + 20-cell CPML, {args.shots} shots, {args.nt} steps, "
             "stencil 2, float32; best and median of the calls over "
             f"{args.rounds} interleaved rounds",
             f"- load average at start / end: {meta['loadavg_start'][0]:.2f} / "
             f"{meta['loadavg_end'][0]:.2f}", "",
             *markdown_table(["busy core", "config", "best s", "median s", "calls",
                              "best / 1 thread"], rows)]
    print("\n".join(lines))
    slug = cpu_slug(meta)
    stem = f"contention_{slug}_{meta['date'][:10]}" + (f"_{args.tag}" if args.tag else "")
    path = save_results(RESULTS, stem, lines, dict(meta=meta, results=records))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
