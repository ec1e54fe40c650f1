"""Two checkouts (built in place) timed side by side on bench_debye's problem.

Usage::

    git worktree add /tmp/before <rev>
    (cd /tmp/before && python setup.py build_ext --inplace)
    python bench/compare_checkouts.py /tmp/before .           # 3 alternating rounds
    python bench/compare_checkouts.py A B --rounds 5 --suffix my_change

For a change that must make the CPU core faster without changing its results
(run bench/output_hashes.py on both as well). Each round runs, for each
checkout in turn, a fresh interpreter with that checkout first on
``PYTHONPATH``: bench_debye's 300^2 x 4-shot TM2D problem (stencil 4, float32,
2 threads) without poles and with one pole, the forward run (1000 steps) and
forward + gradient (100 steps; "store" the forward run keeping snapshots,
"reverse" the vjp), each after one warm-up call, best of 5 calls. A case keeps
its best over the rounds; alternating puts both checkouts in the same windows
of a shared machine. Results: bench/results/compare_checkouts_<cpu>_<date>[_<suffix>].
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tm2d import (cpu_slug, git_revision, machine_info, markdown_table,  # noqa: E402
                        save_results)

CASE = dict(n=300, shots=4, nt=1000, grad_nt=100, stencil=4, threads=2, dtype="float32")
MEASURES = ("forward", "grad", "store", "reverse")


def child() -> dict:
    """In the checkout's interpreter: best of 5 of every measure, 0 and 1 pole."""
    import bench_debye as b  # noqa: PLC0415 - the checkout's own bench and wavecore

    prob, out = b.Problem(CASE), {}
    for poles in (0, 1):
        fwd, grad = prob.args(CASE["nt"]), prob.args(CASE["grad_nt"])
        y = b.wavecore.tm2d(*grad, **prob.kwargs(poles)).receiver_data
        prob.forward(poles, fwd)
        prob.gradient(poles, grad, y)
        f = min(prob.forward(poles, fwd)[0] for _ in range(5))
        g = [prob.gradient(poles, grad, y)[0] for _ in range(5)]
        out[str(poles)] = dict(forward=f, grad=min(x[0] for x in g),
                               store=min(x[1] for x in g), reverse=min(x[2] for x in g))
    from wavecore.backends.cpu import cpu_variant  # noqa: PLC0415

    return dict(wavecore=b.wavecore.__file__, variant=cpu_variant(), times=out)


def run_checkout(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, str(path / "bench" / "compare_checkouts.py"),
                          "--child"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkouts", nargs="*", type=Path, help="two checkout folders, built")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--suffix", default="")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child()))
        return 0
    if len(args.checkouts) != 2:
        ap.error("give two checkout folders")
    paths = [p.resolve() for p in args.checkouts]
    labels = [f"{p.name} ({git_revision(p)})" for p in paths]
    best, variants, rounds = [{}, {}], ["", ""], []
    for r in range(args.rounds):
        for i, path in enumerate(paths):
            got = run_checkout(path)
            if not got["wavecore"].startswith(str(path)):
                raise SystemExit(f"{path}: imported wavecore from {got['wavecore']}")
            variants[i] = got["variant"]
            rounds.append(dict(round=r, checkout=labels[i], **got["times"]))
            for poles, times in got["times"].items():
                for m in MEASURES:
                    key = (poles, m)
                    best[i][key] = min(best[i].get(key, float("inf")), times[m])
            print(f"round {r + 1} {labels[i]}: " + ", ".join(
                f"{p} poles fwd {t['forward']:.3f} grad {t['grad']:.3f}"
                for p, t in got["times"].items()), flush=True)
    head = ["poles", "measure", labels[0], labels[1], "second / first"]
    rows = []
    for poles in ("0", "1"):
        for m in MEASURES:
            a, b = best[0][(poles, m)], best[1][(poles, m)]
            rows.append([poles, m, f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}"])
    table = "\n".join(markdown_table(head, rows))
    print(table)
    info = machine_info()
    date = datetime.date.today().isoformat()
    name = f"compare_checkouts_{cpu_slug(info)}_{date}" + (f"_{args.suffix}" if args.suffix
                                                          else "")
    header = (f"# Two checkouts side by side (bench_debye's problem)\n\n"
              f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; command: "
              f"`python bench/compare_checkouts.py {' '.join(map(str, args.checkouts))} "
              f"--rounds {args.rounds}`\n- checkouts: {labels[0]} (variant {variants[0]}), "
              f"{labels[1]} (variant {variants[1]})\n- case: {CASE}; seconds, best of 5 calls "
              f"per round, best over {args.rounds} alternating rounds\n\n")
    save_results(args.out, name, [header + table],
                 dict(case=CASE, checkouts=labels, variants=variants, rounds=rounds,
                      machine=info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
