"""Forward throughput of ``wavecore.tm2d`` against TIDE and the memory-bandwidth roofline.

Usage::

    python bench/bench_tm2d.py            # default sweep, ~10 min on 2 cores
    python bench/bench_tm2d.py --quick    # targets + one out-of-cache grid, ~1-2 min
    python bench/bench_tm2d.py --full     # every combination (long)

What is measured
  * Throughput in Mcells/s = model cells (nz * nx, CPML excluded) x time steps x
    shots / seconds, best of >= 3 repeats after a warm-up that also picks the
    number of steps so that the stepping takes about ``--seconds``. "e2e" times the
    whole ``tm2d`` call; "steady" times the steps between forward callbacks (every
    nt/10 steps), leaving out set-up, the first step (fresh pages) and the copy of
    the final state ("ovh s" = e2e - nt x steady step time). Roofline uses steady.
  * TIDE 0.1.2 (PyTorch), run side by side in its own interpreter
    (``$WAVECORE_TIDE_PYTHON`` or /tmp/tide-venv/bin/python) on the same inputs
    and number of steps, timed e2e with flush-to-zero on, as wavecore is.
    Ratio = wavecore e2e / TIDE e2e throughput.
  * Copy bandwidth (``b[:] = a`` on 1 GiB arrays, bytes = read + write) with 1
    thread and with a thread per core (numpy copies release the GIL).
  * Roofline: bound = bandwidth / bytes per cell-step (see ``bytes_per_cell_step``),
    converted to model cells so that it compares with the throughput.

Model: two layers (eps_r 4 over 9, sigma 1e-3 / 5e-3 S/m), 1 cm cells, 20-cell
CPML, Ricker 400 MHz (10 cells per wavelength at 2.5x the peak frequency in the
slow layer), one source per shot, receivers every 2nd cell along a line, dt =
0.9 x the stencil-8 CFL limit for all stencils (so ``step_ratio`` is 1).
Results go to bench/results/tm2d_forward_<cpu>_<date>[_quick|_full].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from pathlib import Path

import numpy as np

import wavecore
from wavecore.constants import C0
from wavecore.testing.tide import tide_python

REPO = Path(__file__).resolve().parent.parent
DX, PML, FREQ = 0.01, 20, 4e8
EPS_TOP, EPS_BOTTOM = 4.0, 9.0
SIZES = (200, 300, 500, 1000, 2000)
MIN_NT, MAX_NT = 5, 50_000
TARGET = dict(n=300, shots=4, dtype="float32", nt=1000)  # the TIDE speed-up target case

LEGEND = ("Mc/s count model cells (CPML excluded). bound12/bound9 = copy bandwidth of the run's "
          "thread count / bytes per padded cell-step (12 words two-phase, 9 minimum), times "
          "n^2/(n+2*PML)^2 to convert padded to model cells. '% bound' = steady / bound12; "
          "ovh s = e2e seconds - nt x steady step time. WS = working set (3 fields x shots + 3 "
          "coefficients, padded), * = fits the reported L3. x TIDE = wavecore e2e / TIDE e2e, "
          "same inputs.")

# TIDE runner, executed by TIDE's interpreter: reads a JSON list of cases (each run at the
# number of steps wavecore ran, after a shorter warm-up), prints JSON.
TIDE_HELPER = r"""
import json, sys, time
import numpy as np, torch, tide
from tide.maxwell.tm2d import maxwelltm
torch.set_flush_denormal(True)
cases, out = json.load(open(sys.argv[1])), []
def run(c, d, nt):
    w = np.zeros(nt, d["wavelet"].dtype)
    k = min(nt, len(d["wavelet"]))
    w[:k] = d["wavelet"][:k]
    amp = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(w, (c["shots"], 1, nt))))
    t0 = time.perf_counter()
    maxwelltm(T["eps"], T["sig"], T["mu"], c["dx"], c["dt"], amp, T["src"], T["rec"],
              stencil=c["stencil"], pml_width=c["pml"], n_threads=c["threads"])
    return time.perf_counter() - t0
for c in cases:
    torch.set_num_threads(c["threads"])
    d = np.load(c["npz"])
    T, nt = {k: torch.from_numpy(d[k]) for k in d.files}, c["nt"]
    run(c, d, max(nt // 4, min(nt, 5)))  # warm-up
    times, R = [], c["repeats"]
    while len(times) < R or (len(times) < 2 * R and sorted(times)[1] > 1.05 * min(times)):
        times.append(run(c, d, nt))
    out.append(dict(nt=nt, times=times))
    rate = c["cells"] * nt / min(times) / 1e6
    print(f"  TIDE     {c['label']:28s} {nt:6d} steps  e2e {rate:6.0f} Mcells/s"
          f"  ({len(times)} runs)", file=sys.stderr, flush=True)
print(json.dumps(dict(results=out, torch=torch.__version__, tide=tide.__version__)))
"""


def bytes_per_cell_step(itemsize: int) -> dict:
    """Bytes of DRAM traffic of one TM2D forward step, per padded cell and shot.

    Minimum: read Ey, Hx, Hz, ca, cb, cq and write Ey, Hx, Hz once:
    (6 + 3) words. The two-phase implementation (an H pass, then an E pass)
    moves: H pass reads Ey, Hx, Hz, cq and writes Hx, Hz (4 + 2); E pass reads
    Hx, Hz, Ey, ca, cb and writes Ey (5 + 1): 12 words. The coefficients are
    shared by the shots of one model and may stay in cache on small grids; the
    CPML memories (4 more words, only in the 20-cell slabs: ~4 % of the cells
    at 2000^2) and the 1-D profiles are left out.
    """
    return {"minimum": (6 + 3) * itemsize, "two_phase": (4 + 2 + 5 + 1) * itemsize}


def roofline(bandwidth: float, n: int, itemsize: int) -> dict:
    """Bound in *model* Mcells/s: the kernel sweeps (n + 2 PML)^2 padded cells per
    step while the throughput counts n^2 model cells, hence the n^2 / padded factor."""
    padded, model = (n + 2 * PML) ** 2, n * n
    per_step = bytes_per_cell_step(itemsize)
    return {k: bandwidth / b / 1e6 * model / padded for k, b in per_step.items()}


def copy_bandwidth(thread_counts, nbytes=1 << 30, repeats=5) -> dict:
    """Best ``b[:] = a`` rate in bytes/s (read + write) for each thread count."""
    a, b, result = np.ones(nbytes // 8), np.zeros(nbytes // 8), {}
    for n in thread_counts:
        edges = [len(a) * i // n for i in range(n + 1)]
        chunks = list(zip(edges[:-1], edges[1:]))
        with ThreadPoolExecutor(n) as pool:
            best = np.inf
            for _ in range(repeats):
                t0 = time.perf_counter()
                list(pool.map(lambda c: np.copyto(b[c[0]:c[1]], a[c[0]:c[1]]), chunks))
                best = min(best, time.perf_counter() - t0)
        result[n] = 2 * a.nbytes / best
    return result


def make_problem(n: int, shots: int, dtype) -> dict:
    """Two-layer model, one source per shot near the top, receivers along a line."""
    step = int(0.4 * n)
    eps, sig = np.full((n, n), EPS_TOP), np.full((n, n), 1e-3)
    eps[step:], sig[step:] = EPS_BOTTOM, 5e-3
    depth = max(2, n // 10)
    src = np.array([[[depth, x]] for x in np.linspace(n // 10, n - n // 10, shots).astype(int)])
    rec = np.array([[[depth, x] for x in range(2, n - 2, 2)]] * shots)
    dt = 0.9 * wavecore.max_stable_dt((DX, DX), C0 / np.sqrt(EPS_TOP), 8)
    return dict(eps=eps.astype(dtype), sig=sig.astype(dtype), mu=np.ones((n, n), dtype),
                src=src, rec=rec, dt=dt, dtype=np.dtype(dtype))


def run_wavecore(p: dict, case: dict, nt: int):
    """One tm2d call; returns (e2e seconds, steady steps, their seconds).

    Callbacks every f = nt // 10 steps bracket the steady state: from step f
    (the first step touches fresh pages) to the last callback (before the final
    state is copied out)."""
    w = wavecore.ricker(FREQ, nt, p["dt"], dtype=p["dtype"])
    amp = np.ascontiguousarray(np.broadcast_to(w, (case["shots"], 1, nt)))
    f, stamps = max(1, nt // 10), []
    t0 = time.perf_counter()
    res = wavecore.tm2d(p["eps"], p["sig"], p["mu"], DX, p["dt"], amp, p["src"], p["rec"],
                        stencil=case["stencil"], pml_width=PML, n_threads=case["threads"],
                        forward_callback=lambda s: stamps.append(time.perf_counter()),
                        callback_frequency=f)
    t1 = time.perf_counter()
    assert res.step_ratio == 1 and res.receiver_data.shape[-1] == nt
    return t1 - t0, (len(stamps) - 2) * f, stamps[-1] - stamps[1]


def settled(times: list, repeats: int) -> bool:
    """Enough runs: >= repeats and the best two within 5 % (else up to 2x repeats)."""
    t = sorted(times)
    return len(t) >= 2 * repeats or (len(t) >= repeats and t[1] <= 1.05 * t[0])


def measure_wavecore(case: dict, seconds: float, repeats: int) -> dict:
    p = make_problem(case["n"], case["shots"], case["dtype"])
    cells = case["n"] ** 2 * case["shots"]
    nt = case["nt"] or max(MIN_NT, int(0.3 * seconds * 400e6 / cells))
    _, steps, secs = run_wavecore(p, case, nt)  # warm-up and calibration
    if not case["nt"]:
        nt = int(min(max(seconds * steps / secs, MIN_NT), MAX_NT))
    runs = []
    while not settled([r[2] / r[1] for r in runs], repeats):
        runs.append(run_wavecore(p, case, nt))
    e2e, step_s = min(r[0] for r in runs), min(r[2] / r[1] for r in runs)
    return dict(nt=nt, runs=len(runs), e2e_s=e2e, e2e_mcells=cells * nt / e2e / 1e6,
                steady_step_s=step_s, steady_mcells=cells / step_s / 1e6,
                overhead_s=e2e - nt * step_s)


def measure_tide(python: str, cases: list, repeats: int):
    """Run the TIDE cases in one TIDE process (one torch import): same inputs and number of
    steps as wavecore's timed runs, so that the e2e times compare like for like."""
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for i, c in enumerate(cases):
            p = make_problem(c["n"], c["shots"], c["dtype"])
            npz = f"{tmp}/case{i}.npz"
            np.savez(npz, eps=p["eps"], sig=p["sig"], mu=p["mu"], src=p["src"], rec=p["rec"],
                     wavelet=wavecore.ricker(FREQ, 1000, p["dt"], dtype=p["dtype"]))
            specs.append(dict(npz=npz, label=label(c), dx=DX, dt=p["dt"], pml=PML,
                              cells=c["n"] ** 2 * c["shots"], repeats=repeats, nt=c["wc"]["nt"],
                              **{k: c[k] for k in ("shots", "stencil", "threads")}))
        Path(f"{tmp}/cases.json").write_text(json.dumps(specs))
        sys.stdout.flush()
        proc = subprocess.run([python, "-c", TIDE_HELPER, f"{tmp}/cases.json"],
                              stdout=subprocess.PIPE, stderr=sys.stdout, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for c, s, r in zip(cases, specs, out["results"]):
        c["tide"] = dict(nt=r["nt"], e2e_s=min(r["times"]),
                         e2e_mcells=s["cells"] * r["nt"] / min(r["times"]) / 1e6)
    return {"torch": out["torch"], "tide": out["tide"]}


def plan_cases(mode: str, max_threads: int) -> list:
    """Case dicts (n, shots, threads, dtype, stencil, nt: None = auto, with_tide)."""
    cases, T = {}, min(2, max_threads)

    def add(n, shots, threads, dtype, stencil, nt=None, tide=False):
        key = (dtype, stencil, threads, n, shots)
        c = cases.setdefault(key, dict(n=n, shots=shots, threads=threads, dtype=dtype,
                                       stencil=stencil, nt=nt, with_tide=False))
        c["with_tide"] |= tide

    for st in (2, 4):  # the TIDE speed-up targets, at a fixed number of steps
        add(TARGET["n"], TARGET["shots"], T, TARGET["dtype"], st, TARGET["nt"], True)
    if mode == "quick":
        for n, s, thr, st, tide in [(2000, 4, T, 2, False), (2000, 16, T, 2, False),
                                    (2000, 4, T, 8, False), (1000, 4, 1, 2, False),
                                    (1000, 4, T, 2, True)]:
            add(n, s, thr, "float32", st, tide=tide)
    elif mode == "default":
        for n, st in product(SIZES, (2, 8)):
            for s in (1, 4, 16):
                add(n, s, T, "float32", st, tide=(s == 4 and st == 2))
            add(n, 4, 1, "float32", st)
            add(n, 4, T, "float64", st)
            add(n, 16, T, "float64", st)
        for n, thr, dtype, st in [(300, T, "float32", 8), (2000, T, "float32", 8),
                                  (300, 1, "float32", 2), (300, T, "float64", 2),
                                  (2000, T, "float64", 2)]:
            add(n, 4, thr, dtype, st, tide=True)
    else:
        for n, s, thr, dtype, st in product(SIZES, (1, 4, 16), sorted({1, T}),
                                            ("float32", "float64"), (2, 8)):
            add(n, s, thr, dtype, st, tide=dtype == "float32" and s <= 4)
        for n, st in product(SIZES, (4, 6)):
            add(n, 4, T, "float32", st, tide=True)
    return sorted(cases.values(), key=lambda c: (c["dtype"], c["stencil"], c["threads"],
                                                 c["n"], c["shots"]))


def label(c: dict) -> str:
    return f"{c['dtype']} st{c['stencil']} thr{c['threads']} {c['n']}^2 x{c['shots']}"


def git_revision(path: Path = REPO) -> str:
    """Short commit of the checkout at ``path``, with "+dirty" for uncommitted changes
    to tracked files."""
    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True,
                              text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def machine_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", text)
    cache = {}
    for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        level, kind = (idx / "level").read_text().strip(), (idx / "type").read_text().strip()
        if kind != "Instruction":
            cache[f"L{level}"] = (idx / "size").read_text().strip()
    return dict(cpu=model.group(1) if model else platform.processor(), cores=os.cpu_count(),
                cache=cache, hostname=platform.node(), python=platform.python_version(),
                numpy=np.__version__, wavecore=wavecore.config.config(),
                git=git_revision())


def cache_bytes(size: str) -> int:
    """Sysfs cache size ('491520K') in bytes."""
    return int(size[:-1]) << {"K": 10, "M": 20, "G": 30}[size[-1]]


def analyse(cases: list, bandwidth: dict, l3: int) -> list:
    """Add roofline columns to every case; return the target checks."""
    for c in cases:
        itemsize = np.dtype(c["dtype"]).itemsize
        bound = roofline(bandwidth[c["threads"]], c["n"], itemsize)
        c["bound_mcells"] = bound
        c["frac_of_bound"] = c["wc"]["steady_mcells"] / bound["two_phase"]
        c["working_set_mb"] = itemsize * (c["n"] + 2 * PML) ** 2 * (3 * c["shots"] + 3) / 1e6
        c["exceeds_l3"] = c["working_set_mb"] * 1e6 > l3
        if c.get("tide"):
            c["ratio_vs_tide"] = c["wc"]["e2e_mcells"] / c["tide"]["e2e_mcells"]
    targets, T = [], max(c["threads"] for c in cases)
    for c in cases:
        if c["nt"] == TARGET["nt"]:
            r = c.get("ratio_vs_tide")
            targets.append(dict(target=f"wavecore >= 2x TIDE, {label(c)}, {c['nt']} steps",
                                value=f"{r:.2f}x" if r else "TIDE not run",
                                passed=None if r is None else r >= 2))
        if c["n"] == max(SIZES) and c["shots"] >= 4 and c["threads"] == T:
            oc = "" if c["exceeds_l3"] else f" (WS {c['working_set_mb']:.0f} MB < reported L3)"
            targets.append(dict(target=f"within 2x of bandwidth bound, {label(c)}{oc}",
                                value=f"{100 * c['frac_of_bound']:.0f}% of 12-word bound",
                                passed=c["frac_of_bound"] >= 0.5))
    return targets


def table(cases: list) -> list:
    """Aligned Markdown table lines (readable in a terminal too)."""
    head = ["dtype", "st", "thr", "grid", "shots", "nt", "e2e Mc/s", "ovh s", "steady Mc/s",
            "bound12 Mc/s", "% bound", "bound9 Mc/s", "WS MB", "TIDE Mc/s", "x TIDE"]
    rows = []
    for c in cases:
        w, t = c["wc"], c.get("tide")
        rows.append([c["dtype"], c["stencil"], c["threads"], f"{c['n']}^2", c["shots"], w["nt"],
                     f"{w['e2e_mcells']:.0f}", f"{w['overhead_s']:.2f}",
                     f"{w['steady_mcells']:.0f}",
                     f"{c['bound_mcells']['two_phase']:.0f}", f"{100 * c['frac_of_bound']:.0f}",
                     f"{c['bound_mcells']['minimum']:.0f}",
                     f"{c['working_set_mb']:.0f}" + ("" if c["exceeds_l3"] else "*"),
                     f"{t['e2e_mcells']:.0f}" if t else "-",
                     f"{c['ratio_vs_tide']:.2f}" if t else "-"])
    return markdown_table(head, rows)


def markdown_table(head: list, rows: list) -> list:
    """Aligned Markdown table lines (readable in a terminal too)."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(str(x).rjust(w) for x, w in zip(r, widths)) + " |"
             for r in [head] + rows]
    return lines[:1] + ["|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"] + lines[1:]


def verdict(t: dict) -> str:
    word = {True: "PASS", False: "FAIL", None: "SKIP"}[t["passed"]]
    return f"[{word}] {t['target']}: {t['value']}"


def cpu_slug(meta: dict) -> str:
    """Short machine name for result files, e.g. 'intel-xeon-2c'."""
    cpu = re.sub(r"\(r\)|\(tm\)|processor|cpu", "", meta["cpu"].lower())
    return re.sub(r"[^a-z0-9]+", "-", cpu).strip("-") + f"-{meta['cores']}c"


def save_results(out_dir: Path, stem: str, lines: list, record: dict) -> Path:
    """Write ``<stem>.md`` (the lines) and ``<stem>.json`` (the record) under
    ``out_dir``, the pair every benchmark leaves in bench/results; returns the .md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=1))
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return out_dir / f"{stem}.md"


def write_results(out_dir: Path, mode: str, meta: dict, cases: list, targets: list, lines: list):
    stem = f"tm2d_forward_{cpu_slug(meta)}_{meta['date'][:10]}" + ("" if mode == "default" else f"_{mode}")
    bw = ", ".join(f"{n} thread(s) {b / 1e9:.1f} GB/s" for n, b in meta["copy_bandwidth"].items())
    md = [f"# wavecore.tm2d forward throughput ({mode})", "",
          f"- date: {meta['date']}; git: {meta['git']}; command: `{meta['command']}`",
          f"- CPU: {meta['cpu']}, {meta['cores']} cores, caches {meta['cache']}",
          f"- python {meta['python']}, numpy {meta['numpy']}, torch {meta.get('torch', '-')}, "
          f"TIDE {meta.get('tide', '-')}; wavecore build: `{meta['wavecore'].get('build')}`",
          f"- copy bandwidth (`b[:] = a`, 1 GiB, read + write): {bw}",
          f"- model: {meta['model']}",
          f"- load average at start / end: {meta['loadavg_start'][0]:.2f} / "
          f"{meta['loadavg_end'][0]:.2f}. {meta.get('tide_note', '')}", "",
          LEGEND, "",
          "## Targets", ""] + [f"- {verdict(t)}" for t in targets] + ["", "## Cases", ""] + lines
    md_path = save_results(out_dir, stem, md, dict(meta=meta, targets=targets, cases=cases))
    return md_path.with_suffix(".json"), md_path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="targets and 2000^2 grids (~1 min)")
    mode.add_argument("--full", action="store_true", help="every size/shots/threads/dtype/stencil")
    ap.add_argument("--seconds", type=float, help="wanted duration of one timed run")
    ap.add_argument("--repeats", type=int, help="timed runs per case, best taken (>= 3)")
    ap.add_argument("--no-tide", action="store_true", help="skip TIDE")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    seconds = args.seconds or {"quick": 0.5, "default": 1.0, "full": 1.5}[mode]
    repeats = max(3, args.repeats or 3)

    meta = machine_info()
    meta.update(date=datetime.datetime.now().isoformat(timespec="seconds"), mode=mode,
                command=" ".join([Path(sys.executable).name] + sys.argv), seconds=seconds,
                repeats=repeats, bytes_per_cell_step={n: bytes_per_cell_step(n) for n in (4, 8)},
                model=f"{SIZES} grids of {DX} m cells, eps_r {EPS_TOP}/{EPS_BOTTOM} at 40 % depth, "
                      f"sigma 1e-3/5e-3 S/m, PML {PML}, Ricker {FREQ / 1e6:.0f} MHz, "
                      "dt = 0.9 x stencil-8 CFL limit")
    cases = plan_cases(mode, meta["cores"])
    threads = sorted({c["threads"] for c in cases})
    meta["loadavg_start"] = os.getloadavg()
    print(f"{meta['cpu']}, {meta['cores']} cores; git {meta['git']}; {len(cases)} cases, "
          f"mode {mode}; load average {meta['loadavg_start'][0]:.2f}")
    bandwidth = meta["copy_bandwidth"] = copy_bandwidth(threads)
    print("copy bandwidth:", ", ".join(f"{n} thr {v / 1e9:.1f} GB/s" for n, v in bandwidth.items()))

    for c in cases:
        w = c["wc"] = measure_wavecore(c, seconds, repeats)
        print(f"  wavecore {label(c):28s} {w['nt']:6d} steps  e2e {w['e2e_mcells']:6.0f}  steady "
              f"{w['steady_mcells']:6.0f} Mcells/s  ({w['runs']} runs)", flush=True)
    python = None if args.no_tide else tide_python()
    tide_cases = [c for c in cases if c["with_tide"]]
    if python and tide_cases:
        try:
            meta.update(measure_tide(python, tide_cases, repeats))
        except (subprocess.CalledProcessError, ValueError) as exc:
            meta["tide_note"] = f"TIDE failed: {exc}"
    else:
        meta["tide_note"] = "TIDE skipped: " + ("--no-tide" if args.no_tide else
                                                "no Python with TIDE (set WAVECORE_TIDE_PYTHON)")
    if "tide_note" in meta:
        print(meta["tide_note"])

    meta["loadavg_end"] = os.getloadavg()
    targets = analyse(cases, bandwidth, cache_bytes(meta["cache"].get("L3", "0K")))
    lines = table(cases)
    print("\n" + LEGEND + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(verdict(t) for t in targets))
    for path in write_results(args.out, mode, meta, cases, targets, lines):
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


if __name__ == "__main__":
    main()
