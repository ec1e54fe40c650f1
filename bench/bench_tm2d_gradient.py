"""Forward + gradient cost of ``wavecore.tm2d``: time, peak memory and stored bytes
for each storage mode, compression and sampling interval, side by side with TIDE.

Usage::

    python bench/bench_tm2d_gradient.py            # the target case, ~3-5 min on 2 cores
    python bench/bench_tm2d_gradient.py --nt 200   # shorter runs (a quick look)

What is measured (one case per fresh subprocess, so that peak memory is its own)
  * "forward": ``tm2d`` without gradients. "fwd+grad": ``tm2d(requires_grad=
    ("epsilon", "sigma"))`` then ``vjp`` (the whole gradient, chain rule
    included); "store" (the forward run storing snapshots) and "reverse" (vjp)
    split it. Best of ``--repeats`` runs after a warm-up run of each. Ratio "x fwd" = fwd+grad / forward of the same process.
  * Peak memory: the growth of the process's resident set (VmHWM after the
    first timed gradient run, reset through /proc/self/clear_refs before it,
    minus VmRSS before it), against the snapshot bytes the run reports
    (``result.storage.bytes``, = ``wavecore.estimate_storage_bytes``).
  * Gradient error: max |g - g_exact| / max |g_exact| of the epsilon and sigma
    gradients, g_exact from storage "device", no compression, k = 1; for epsilon
    also with the maximum of |g - g_exact| taken away from the sources (cells more
    than 2 cells from every source), where bf16's error is not the cancellation
    at the source cells.
  * TIDE 0.1.2 (own interpreter, ``torch.set_flush_denormal(True)``): the same
    inputs, forward alone and forward + ``backward()`` (its default storage,
    device = RAM on the CPU), k and bf16 where TIDE has them.

Model: ``bench_tm2d.make_problem`` (two layers, 1 cm cells, 20-cell CPML, one
source per shot, receivers every 2nd cell), 300 x 300, 4 shots, stencil 4,
float32, 2 threads, 1000 steps; the receiver-data gradient is the data itself
(the gradient of 0.5 |d|^2).
Results go to bench/results/tm2d_gradient_<cpu>_<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import wavecore
from bench_tm2d import (DX, FREQ, PML, cpu_slug, machine_info, make_problem, markdown_table,
                        save_results)
from wavecore.testing.tide import run_tide_tm2d, tide_python

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("epsilon", "sigma")

# (label, storage_mode, storage_compression, model_gradient_sampling_interval)
CASES = [("device", "device", False, 1), ("cpu", "cpu", False, 1), ("disk", "disk", False, 1),
         ("device bf16", "device", "bf16", 1), ("disk bf16", "disk", "bf16", 1),
         ("device k=2", "device", False, 2), ("device k=4", "device", False, 4),
         ("device k=8", "device", False, 8)]
TIDE_CASES = [("device", False, 1), ("device bf16", "bf16", 1), ("device k=4", False, 4)]


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def inputs(c: dict):
    p = make_problem(c["n"], c["shots"], c["dtype"])
    w = wavecore.ricker(FREQ, c["nt"], p["dt"], dtype=p["dtype"])
    amp = np.ascontiguousarray(np.broadcast_to(w, (c["shots"], 1, c["nt"])))
    return (p["eps"], p["sig"], p["mu"], DX, p["dt"], amp, p["src"], p["rec"])


def run_case(c: dict) -> dict:
    """Child process: time the forward and one storage case; save its gradient."""
    args = inputs(c)
    common = dict(stencil=c["stencil"], pml_width=PML, n_threads=c["threads"])
    grad_kw = dict(requires_grad=TARGETS, storage_mode=c["mode"],
                   storage_compression=c["compression"],
                   model_gradient_sampling_interval=c["k"])
    if c["mode"] == "disk":
        grad_kw["storage_path"] = c["path"]
    y = wavecore.tm2d(*args, **common).receiver_data  # warm-up; also dJ/dd of 0.5 |d|^2
    forward = []
    for _ in range(c["repeats"]):
        t0 = time.perf_counter()
        wavecore.tm2d(*args, **common)
        forward.append(time.perf_counter() - t0)
    wavecore.tm2d(*args, **common, **grad_kw).vjp(y)  # warm-up of the gradient path
    runs, peak = [], None
    for i in range(c["repeats"]):
        rss = memory_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
        t0 = time.perf_counter()
        res = wavecore.tm2d(*args, **common, **grad_kw)
        t1 = time.perf_counter()
        g = res.vjp(y)
        t2 = time.perf_counter()
        if i == 0:
            peak = (memory_kib("VmHWM") - rss) * 1024
            stored, chosen = res.storage.bytes, res.storage.describe()
            np.savez(c["out"], **{n: getattr(g, n) for n in TARGETS})
        runs.append((t2 - t0, t1 - t0, t2 - t1))
        del res, g
    best = min(runs)
    return dict(forward_s=min(forward), grad_s=best[0], store_s=best[1], reverse_s=best[2],
                peak_bytes=peak, stored_bytes=stored, storage=chosen, runs=len(runs))


def measure(c: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(c)], check=True,
                         capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_tide(base: dict, repeats: int) -> list:
    args = inputs(base)
    y = wavecore.tm2d(*args, stencil=base["stencil"], pml_width=PML,
                      n_threads=base["threads"]).receiver_data
    common = dict(stencil=base["stencil"], pml_width=PML, n_threads=base["threads"],
                  repeat=repeats)
    rows = [dict(label="forward", seconds=min(run_tide_tm2d(*args, **common)["seconds"]))]
    for label, compression, k in TIDE_CASES:
        r = run_tide_tm2d(*args, **common, requires_grad=TARGETS, grad_receiver_data=y,
                          options=dict(storage_compression=compression,
                                       model_gradient_sampling_interval=k))
        rows.append(dict(label=label, seconds=min(r["seconds"]),
                         grads={n: r[f"grad_{n}"] for n in TARGETS}))
        print(f"  TIDE {label:12s} fwd+grad {rows[-1]['seconds']:.3f} s", flush=True)
    return rows


def rel(a, b, where=None) -> float:
    """max |a - b| / max |b|, the maximum of the numerator over ``where`` (a mask)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b) if where is None else np.abs(a - b)[where]
    return float(diff.max() / np.abs(b).max())


def away_from_sources(shape, sources, radius=2) -> np.ndarray:
    """Mask of the cells more than ``radius`` cells (either axis) from every source."""
    mask = np.ones(shape, bool)
    for z, x in np.asarray(sources).reshape(-1, 2):
        mask[max(z - radius, 0):z + radius + 1, max(x - radius, 0):x + radius + 1] = False
    return mask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=300, help="grid cells per side")
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--nt", type=int, default=1000)
    ap.add_argument("--stencil", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-tide", action="store_true", help="skip TIDE")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return

    base = dict(n=args.n, shots=args.shots, nt=args.nt, stencil=args.stencil,
                threads=args.threads, dtype=args.dtype, repeats=max(1, args.repeats))
    meta = machine_info()
    meta.update(date=datetime.datetime.now().isoformat(timespec="seconds"),
                command=" ".join([Path(sys.executable).name] + sys.argv),
                loadavg_start=os.getloadavg(),
                case=f"{args.n}^2, {args.shots} shots, {args.nt} steps, stencil {args.stencil}, "
                     f"{args.dtype}, {args.threads} threads, PML {PML}, gradients {TARGETS}")
    print(f"{meta['cpu']}; git {meta['git']}; {meta['case']}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="wavecore-bench-") as tmp:
        for label, mode, compression, k in CASES:
            if compression == "bf16" and args.dtype != "float32":
                continue
            c = dict(base, mode=mode, compression=compression, k=k, path=tmp,
                     out=f"{tmp}/{len(rows)}.npz")
            r = dict(label=label, **measure(c))
            with np.load(c["out"]) as g:
                r["grads"] = {n: g[n] for n in TARGETS}
            rows.append(r)
            print(f"  {label:12s} forward {r['forward_s']:.3f} s  fwd+grad {r['grad_s']:.3f} s  "
                  f"peak +{r['peak_bytes'] / 2**20:.0f} MiB  stored "
                  f"{r['stored_bytes'] / 2**20:.0f} MiB", flush=True)
        left = os.listdir(tmp)
    exact = rows[0]["grads"]
    away = away_from_sources(exact["epsilon"].shape, inputs(base)[6])
    for r in rows:
        r["error"] = {n: rel(r["grads"][n], exact[n]) for n in TARGETS}
        r["error_away"] = rel(r["grads"]["epsilon"], exact["epsilon"], away)
    tide, python = [], None if args.no_tide else tide_python()
    if python:
        tide = measure_tide(base, max(1, args.repeats))
        for t in tide[1:]:
            t["error"] = {n: rel(t["grads"][n], exact[n]) for n in TARGETS}
        meta["tide"] = "TIDE 0.1.2 (torch.set_flush_denormal(True))"
    else:
        meta["tide"] = "TIDE skipped: " + ("--no-tide" if args.no_tide else "not installed")
    meta["loadavg_end"] = os.getloadavg()
    meta["files_left_in_storage_path"] = left
    report(args.out, meta, rows, tide)


def report(out_dir: Path, meta: dict, rows: list, tide: list) -> None:
    fwd = rows[0]["forward_s"]
    tide_by = {t["label"]: t for t in tide}
    head = ["storage", "forward s", "fwd+grad s", "store s", "reverse s", "x fwd",
            "stored MiB", "peak +MiB", "peak/stored", "err eps", "err eps off-src",
            "err sigma", "TIDE s", "x TIDE", "TIDE err eps"]
    table = []
    for r in rows:
        t = tide_by.get(r["label"])
        table.append([r["label"], f"{r['forward_s']:.3f}", f"{r['grad_s']:.3f}",
                      f"{r['store_s']:.3f}", f"{r['reverse_s']:.3f}",
                      f"{r['grad_s'] / r['forward_s']:.2f}",
                      f"{r['stored_bytes'] / 2**20:.0f}", f"{r['peak_bytes'] / 2**20:.0f}",
                      f"{r['peak_bytes'] / r['stored_bytes']:.2f}",
                      f"{r['error']['epsilon']:.1e}", f"{r['error_away']:.1e}",
                      f"{r['error']['sigma']:.1e}",
                      f"{t['seconds']:.3f}" if t else "-",
                      f"{t['seconds'] / r['grad_s']:.2f}" if t else "-",
                      f"{t['error']['epsilon']:.1e}" if t else "-"])
    lines = markdown_table(head, table)
    r0 = rows[0]
    targets = [
        ("fwd+grad >= 2x faster than TIDE (device, k=1)",
         f"{tide_by['device']['seconds'] / r0['grad_s']:.2f}x" if tide else "TIDE not run",
         None if not tide else bool(tide_by["device"]["seconds"] / r0["grad_s"] >= 2)),
        ("fwd+grad <= 2.5x own forward (device, k=1)", f"{r0['grad_s'] / fwd:.2f}x",
         bool(r0["grad_s"] / fwd <= 2.5)),
        ("peak memory <= stored bytes + 20 % (device, k=1)",
         f"{r0['peak_bytes'] / r0['stored_bytes']:.2f}x",
         bool(r0["peak_bytes"] <= 1.2 * r0["stored_bytes"])),
    ]
    if tide:
        targets.insert(1, ("TIDE forward for reference", f"{tide[0]['seconds']:.3f} s "
                           f"(wavecore {fwd:.3f} s)", None))
    verdicts = [f"[{ {True: 'PASS', False: 'MISS', None: 'INFO'}[ok]}] {what}: {value}"
                for what, value, ok in targets]
    print("\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts))
    stem = f"tm2d_gradient_{cpu_slug(meta)}_{meta['date'][:10]}"
    strip = lambda rs: [{k: v for k, v in r.items() if k != "grads"} for r in rs]  # noqa: E731
    md = ["# wavecore.tm2d forward + gradient", "",
          f"- date: {meta['date']}; git: {meta['git']}; command: `{meta['command']}`",
          f"- CPU: {meta['cpu']}, {meta['cores']} cores; python {meta['python']}, "
          f"numpy {meta['numpy']}; {meta['tide']}",
          f"- case: {meta['case']}",
          f"- load average at start / end: {meta['loadavg_start'][0]:.2f} / "
          f"{meta['loadavg_end'][0]:.2f}; files left in storage_path: "
          f"{meta['files_left_in_storage_path'] or 'none'}", "",
          "x fwd = fwd+grad / forward (same process). peak +MiB = growth of the resident set "
          "during one forward + vjp. err = max |g - g_exact| / max |g_exact| against the "
          "device, uncompressed, k = 1 gradient; off-src: the numerator's maximum over "
          "the cells more than 2 cells from every source. x TIDE = TIDE fwd+grad / wavecore fwd+grad.",
          "", "## Targets", ""] + [f"- {v}" for v in verdicts] + ["", "## Cases", ""] + lines
    path = save_results(out_dir, stem, md, dict(meta=meta, rows=strip(rows), tide=strip(tide),
                                                targets=targets))
    print(f"wrote {path} and {path.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
