"""wavecore on a CUDA GPU: Gcells/s of tm2d and maxwell3d, forward and gradient,
against the card's memory-bandwidth roofline.

Usage:
    python bench/bench_gpu.py              # the full sweep (needs CuPy and a GPU)
    python bench/bench_gpu.py --quick      # the target cases only
    python bench/bench_gpu.py --emulated   # smoke run of the script on tiny grids through
                                           # the CPU emulation of the kernels (no GPU;
                                           # the numbers mean nothing and nothing is written)

Throughput is the steady rate per time step, from two runs of nt1 and nt2 steps
(t(nt2) - t(nt1)) / (nt2 - nt1): it leaves out compilation, the upload of the
state and the download of the results. Gcells/s counts model cells x shots.
The roofline divides the device-to-device copy bandwidth measured in the same
run (a CuPy copy of 1 GiB, read + write) by the bytes a cell-step moves at
least in the two-pass step (without CPML): TM2D 12 words (H pass reads ey, hx,
hz, cq and writes hx, hz; E pass reads hx, hz, ey, ca, cb and writes ey),
3-D 21 words (H: E 3, H 3, cq read, H 3 written; E: H 3, E 3, ca, cb read,
E 3 written). A case with ``poles`` P runs Debye media (wavecore.Debye: P poles
in every cell, the *_debye_e kernels); each E value then also reads and writes
its P polarizations and reads a_p, b_p, c_p: 5 P words more (TM2D 12 + 5 P,
3-D 21 + 15 P). Results:
bench/results/gpu_<device>_<date>.{md,json} (--out DIR to write them elsewhere).
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from pathlib import Path

import numpy as np

import wavecore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tm2d import machine_info, markdown_table, save_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = {"tm2d": 12, "maxwell3d": 21}
PML = 20


def problem(system: str, n: int, shots: int, dtype, nt: int) -> dict:
    """Two layers (eps 4 / 9, sigma 1e-3 / 1e-2) on 1 cm cells, one Ricker source per
    shot near the top (1 GHz, x1e3), four receivers; dt = 0.9 x the stencil-8 limit."""
    ndim = 2 if system == "tm2d" else 3
    shape = (n,) * ndim
    eps = np.full(shape, 4.0)
    sig = np.full(shape, 1e-3)
    eps[n // 2:] = 9.0
    sig[n // 2:] = 1e-2
    spacing = (0.01,) * ndim
    dt = 0.9 * wavecore.max_stable_dt(spacing, wavecore.C0 / 2.0, 8)
    wavelet = wavecore.ricker(1e9, nt, dt) * 1e3
    row = [3] if ndim == 2 else [3, n // 2]  # near the top; mid-y in 3-D
    src = [[row + [2 + (s * (n - 4)) // max(shots, 1)]] for s in range(shots)]
    rec = [[row + [int(c)] for c in np.linspace(1, n - 2, 4)]] * shots
    return dict(epsilon=eps.astype(dtype), sigma=sig.astype(dtype), mu=np.ones(shape, dtype),
                grid_spacing=spacing, dt=dt,
                source_amplitude=np.repeat(wavelet[None, None], shots, 0).astype(dtype),
                source_location=np.array(src), receiver_location=np.array(rec))


TAU = (1e-9, 3e-10, 1e-10)  # Debye relaxation times, above the cases' dt (~3.5e-11 s)


def debye(poles: int):
    """``poles`` (<= 3) Debye poles of strength 2, the same in every cell."""
    return wavecore.Debye(delta_epsilon=[2.0] * poles, tau=list(TAU[:poles]))


def words(case: dict) -> int:
    """Words a cell-step moves at least (module docstring)."""
    components = 1 if case["system"] == "tm2d" else 3
    return WORDS[case["system"]] + 5 * case.get("poles", 0) * components


def run_once(case: dict, nt: int, device: str) -> float:
    system = case["system"]
    p = problem(system, case["n"], case["shots"], case["dtype"], nt)
    fn = wavecore.tm2d if system == "tm2d" else wavecore.maxwell3d
    kw = dict(stencil=case["stencil"], pml_width=PML, device=device)
    if case.get("poles"):
        kw["dispersion"] = debye(case["poles"])
    start = time.perf_counter()
    if case["grad"]:
        res = fn(**p, requires_grad=("epsilon", "sigma"), storage_mode=case["storage"],
                 storage_compression=case["bf16"], **kw)
        res.vjp(np.ones_like(res.receiver_data))
    else:
        fn(**p, **kw)
    return time.perf_counter() - start


def steady(case: dict, device: str, repeats: int) -> dict:
    nt1, nt2 = case["nt"], 2 * case["nt"]
    run_once(case, nt1, device)  # compile and warm up
    t1 = min(run_once(case, nt1, device) for _ in range(repeats))
    t2 = min(run_once(case, nt2, device) for _ in range(repeats))
    per_step = max(t2 - t1, 1e-12) / (nt2 - nt1)
    ndim = 2 if case["system"] == "tm2d" else 3
    cells = case["n"] ** ndim * case["shots"]
    return dict(t1=t1, t2=t2, step_s=per_step, gcells=cells / per_step / 1e9)


def copy_bandwidth(device: str) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write), or NaN."""
    if device != "cuda":
        return float("nan")
    import cupy

    a = cupy.ones(1 << 28, cupy.float32)  # 1 GiB
    b = cupy.empty_like(a)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    b[...] = a
    best = float("inf")
    for _ in range(5):
        start.record()
        b[...] = a
        stop.record()
        stop.synchronize()
        best = min(best, cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return 2 * a.nbytes / best


def device_info(device: str) -> dict:
    if device != "cuda":
        return dict(name="cpu-emulation")
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    return dict(name=props["name"].decode(), memory_gb=props["totalGlobalMem"] / 2**30,
                cupy=cupy.__version__, runtime=cupy.cuda.runtime.runtimeGetVersion())


def plan_cases(quick: bool, emulated: bool) -> list:
    def case(system, n, shots=1, dtype="float32", stencil=4, grad=False, storage="device",
             bf16=False, nt=200, poles=0):
        return dict(system=system, n=n, shots=shots, dtype=dtype, stencil=stencil, grad=grad,
                    storage=storage, bf16=bf16, nt=nt, poles=poles)
    if emulated:
        return [case("tm2d", 24, 2, nt=4), case("maxwell3d", 8, nt=2),
                case("tm2d", 24, nt=4, grad=True)]
    # Gradient runs with device storage keep every step's snapshots in GPU memory
    # (wavecore.estimate_storage): the runs of 32 and 64 steps need 16 and 33 GiB for
    # 4096^2 x 4 shots (TM2D), 19 and 38 GiB for 256^3, which fit an 80 GB card (200
    # and 400 steps needed 102 and 204 GiB). The 4096^2 forward gives the TM2D
    # gradient its forward step time (grad/fwd).
    cases = [case("tm2d", 8192, 4), case("maxwell3d", 256, nt=100), case("tm2d", 4096, 4),
             case("tm2d", 4096, 4, grad=True, nt=32),
             case("maxwell3d", 256, nt=32, grad=True),
             case("tm2d", 4096, 4, poles=3)]  # Debye media: next to the plain 4096^2 row
    if quick:
        return cases
    for n, shots in ((256, 1), (256, 32), (1024, 1), (1024, 8), (2048, 4), (4096, 1),
                     (8192, 1)):
        cases.append(case("tm2d", n, shots))
    for st in (2, 6, 8):
        cases.append(case("tm2d", 4096, 4, stencil=st))
        cases.append(case("maxwell3d", 256, stencil=st, nt=100))
    for n in (64, 128, 384, 512):
        cases.append(case("maxwell3d", n, nt=100 if n <= 384 else 40))
    cases += [case("tm2d", 4096, 4, dtype="float64"), case("maxwell3d", 256, dtype="float64",
                                                           nt=100)]
    for storage, bf16 in (("cpu", False), ("disk", False), ("device", True)):
        cases.append(case("tm2d", 2048, 4, grad=True, storage=storage, bf16=bf16))
        cases.append(case("maxwell3d", 128, grad=True, storage=storage, bf16=bf16, nt=100))
    return cases


def gpu_parser(doc: str, repeats: int) -> argparse.ArgumentParser:
    """The options every GPU benchmark takes: --emulated, --repeats and --out."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--emulated", action="store_true")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="results folder (default: bench/results)")
    return parser


def gpu_device(emulated: bool, script: str) -> str | None:
    """"cuda-emulated" or "cuda"; None (after saying why) without a usable GPU."""
    if emulated:
        return "cuda-emulated"
    status = wavecore.backends.available_backends()["cuda"]
    if not status.startswith("available"):
        print(f"{script}: no GPU here ({status}); --emulated runs the script on the CPU")
        return None
    return "cuda"


def main(argv=None) -> int:
    parser = gpu_parser(__doc__, repeats=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    device = gpu_device(args.emulated, "bench_gpu")
    if device is None:
        return 2
    bandwidth = copy_bandwidth(device)
    rows, records = [], []
    forward_rate = {}
    for c in plan_cases(args.quick, args.emulated):
        r = steady(c, device, args.repeats)
        item = np.dtype(c["dtype"]).itemsize
        bound = bandwidth / (words(c) * item) / 1e9
        key = (c["system"], c["n"], c["shots"], c["dtype"], c["stencil"], c["poles"])
        if not c["grad"]:
            forward_rate[key] = r["step_s"]
        ratio = r["step_s"] / forward_rate[key] if c["grad"] and key in forward_rate else None
        records.append({**c, **r, "bound_gcells": bound, "grad_over_forward": ratio})
        dims = "^2" if c["system"] == "tm2d" else "^3"
        run = ("fwd+grad " + c["storage"] + (" bf16" if c["bf16"] else "")) if c["grad"] else "forward"
        run += f" debye{c['poles']}" if c["poles"] else ""
        rows.append([c["system"], f"{c['n']}{dims}", c["shots"], c["dtype"], c["stencil"], run,
                     f"{r['step_s'] * 1e3:.3f}", f"{r['gcells']:.2f}", f"{bound:.1f}",
                     f"{100 * r['gcells'] / bound:.0f}" if bound == bound else "-",
                     f"{ratio:.2f}" if ratio else "-"])
        print(" | ".join(str(x) for x in rows[-1]), flush=True)
    head = ["system", "grid", "shots", "dtype", "stencil", "run", "ms/step", "Gcells/s",
            "bound Gcells/s", "% bound", "grad/fwd"]
    meta = machine_info()
    meta.update(gpu=device_info(device), copy_bandwidth_gbs=bandwidth / 1e9,
                date=datetime.datetime.now().isoformat(timespec="seconds"),
                command="python bench/bench_gpu.py" + (" --quick" if args.quick else ""))
    lines = [f"# wavecore GPU benchmark ({meta['date'][:10]})", "",
             f"- device: {meta['gpu']}; copy bandwidth {bandwidth / 1e9:.0f} GB/s",
             f"- git: {meta['git']}; command: `{meta['command']}`",
             f"- bound = copy bandwidth / ({WORDS['tm2d']} (TM2D) or {WORDS['maxwell3d']} (3-D)"
             " + 5 P (TM2D) or 15 P (3-D) with P Debye poles"
             " words x itemsize); steady per-step times from runs of nt and 2 nt steps", "",
             *markdown_table(head, rows)]
    print("\n".join(lines))
    if args.emulated:
        return 0
    slug = re.sub(r"[^a-z0-9]+", "-", meta["gpu"]["name"].lower()).strip("-")
    stem = f"gpu_{slug}_{meta['date'][:10]}" + ("_quick" if args.quick else "")
    print(f"wrote {save_results(args.out, stem, lines, dict(meta=meta, cases=records))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
