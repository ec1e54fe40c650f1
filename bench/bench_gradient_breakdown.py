"""Where the time of a repeated forward + gradient call goes: the backend's
forward and adjoint kernels, and everything else (planning, buffers, the
chain rule, Python), as multiples of the plain forward call.

Usage::

    python bench/bench_gradient_breakdown.py           # 300 x 300 TM2D, 4 shots, 200 steps
    python bench/bench_gradient_breakdown.py --quick   # a tiny grid (a test)

The case of bench_memory_pool.py (stencil 4, float32, 2 threads, device
storage, the snapshot pool on): after two warm-up calls of each, ``--repeats``
rounds alternate a plain forward call and a forward + gradient call
(``requires_grad=("epsilon", "sigma")`` then ``vjp``). The CPU backend's
``forward`` and ``adjoint`` methods are timed in place (a wrapper around the
kernel call), so "rest" is the call's time outside them. Figures are medians
over the rounds, each against the same round's plain forward. Results:
bench/results/gradient_breakdown_<cpu>_<date>[_quick].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wavecore  # noqa: E402
from bench_memory_pool import setup  # noqa: E402
from bench_tm2d import cpu_slug, machine_info, markdown_table, save_results  # noqa: E402
from wavecore.backends.cpu import CpuBackend  # noqa: E402

KERNELS = ("forward", "adjoint")


def timing_kernels() -> dict:
    """Wrap CpuBackend.forward/adjoint to add their seconds to the returned dict."""
    spent = dict.fromkeys(KERNELS, 0.0)
    for name in KERNELS:
        method = getattr(CpuBackend, name)

        def timed(self, *args, _method=method, _name=name):
            start = time.perf_counter()
            try:
                return _method(self, *args)
            finally:
                spent[_name] += time.perf_counter() - start

        setattr(CpuBackend, name, timed)
    return spent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    a = ap.parse_args()
    n, shots, nt = (60, 2, 40) if a.quick else (300, 4, 200)
    args, kw = setup(n, shots, nt, a.threads)
    grad = dict(kw, requires_grad=("epsilon", "sigma"), storage_mode="device")
    spent = timing_kernels()

    def call(gradient: bool) -> dict:
        for k in spent:
            spent[k] = 0.0
        start = time.perf_counter()
        if gradient:
            res = wavecore.tm2d(*args, **grad)
            res.vjp(res.receiver_data)
        else:
            wavecore.tm2d(*args, **kw)
        total = time.perf_counter() - start
        return dict(total=total, **spent, rest=total - sum(spent.values()))

    for _ in range(2):  # first touch, the pool filled
        call(False), call(True)
    rounds = [dict(forward=call(False), gradient=call(True)) for _ in range(a.repeats)]

    def median(kind, part):
        return statistics.median(r[kind][part] / r["forward"]["total"] for r in rounds)

    rows = []
    for kind, label in (("forward", "plain forward"), ("gradient", "forward + gradient")):
        rows.append([label, f"{statistics.median(r[kind]['total'] for r in rounds) * 1e3:.1f}",
                     *(f"{median(kind, part):.2f}x" for part in
                       ("forward", "adjoint", "rest", "total"))])
    meta = machine_info()
    meta["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# Forward + gradient breakdown: TM2D {n}^2, {shots} shots, {nt} steps, stencil 4, "
             f"float32, {a.threads} threads", "",
             f"{meta['cpu']} ({meta['cores']} cores), {meta['date']}, commit {meta['git']}; "
             f"median of {a.repeats} interleaved rounds, each part / that round's plain forward",
             "", *markdown_table(["call", "median (ms)", "forward kernels", "adjoint kernels",
                                  "rest", "total"], rows)]
    print("\n".join(lines))
    stem = f"gradient_breakdown_{cpu_slug(meta)}_{meta['date'][:10]}" + (
        "_quick" if a.quick else "")
    record = dict(meta=meta, case=dict(n=n, shots=shots, nt=nt, threads=a.threads),
                  rounds=rounds)
    print(f"wrote {save_results(a.out, stem, lines, record)}")


if __name__ == "__main__":
    main()
