"""CUDA graph replay against eager launches (experimental_cuda_graph).

Usage:
    python bench/benchmark_maxwell3d_cuda_graph.py --verify            # maxwell3d
    python bench/benchmark_maxwell3d_cuda_graph.py --verify --system tm2d
    python bench/benchmark_maxwell3d_cuda_graph.py --emulated --verify # tiny grids, CPU
                                                                       # emulation, no GPU

For each grid size and chunk size (callback_frequency with a no-op forward
callback, or the whole run without one), it times a forward run eagerly and
with graphs (the graphs captured in a warm-up call, then replayed from the
cache), prints the speed-up and, with --verify, checks that both give the same
receiver data and final state bit for bit (any difference is reported and
makes the exit status 1). Results: bench/results/cuda_graph_<system>_<device>_<date>.{md,json}
(--out DIR to write them elsewhere; not written with --emulated, whose timings mean
nothing).
"""

from __future__ import annotations

import datetime
import re
import sys
import time
from pathlib import Path

import numpy as np

import wavecore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gpu import device_info, gpu_device, gpu_parser, problem  # noqa: E402
from bench_tm2d import machine_info, markdown_table, save_results  # noqa: E402


def timed(system: str, p: dict, device: str, chunk: int | None, graph: bool, repeats: int):
    fn = wavecore.tm2d if system == "tm2d" else wavecore.maxwell3d
    kw = dict(stencil=4, pml_width=10, device=device, experimental_cuda_graph=graph)
    if chunk:
        kw.update(forward_callback=lambda state: None, callback_frequency=chunk)
    fn(**p, **kw)  # compile, capture
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(**p, **kw)
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv=None) -> int:
    parser = gpu_parser(__doc__, repeats=3)
    parser.add_argument("--system", choices=("maxwell3d", "tm2d"), default="maxwell3d")
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args(argv)
    device = gpu_device(args.emulated, "benchmark_maxwell3d_cuda_graph")
    if device is None:
        return 2
    if args.emulated:
        sizes, nt, chunks = ((8,) if args.system == "maxwell3d" else (24,)), 8, (None, 4)
    elif args.system == "maxwell3d":
        sizes, nt, chunks = (32, 64, 96, 128), 400, (None, 100, 10)
    else:
        sizes, nt, chunks = (128, 256, 512, 1024), 1000, (None, 100, 10)
    rows, records, mismatches = [], [], 0
    for n in sizes:
        p = problem(args.system, n, 1, np.float32, nt)
        for chunk in chunks:
            eager_s, eager = timed(args.system, p, device, chunk, False, args.repeats)
            graph_s, graph = timed(args.system, p, device, chunk, True, args.repeats)
            same = None
            if args.verify:
                same = np.array_equal(eager.receiver_data, graph.receiver_data) and all(
                    np.array_equal(eager.final_state[k], graph.final_state[k])
                    for k in eager.final_state)
                mismatches += not same
            records.append(dict(n=n, nt=nt, chunk=chunk or nt, eager_s=eager_s,
                                graph_s=graph_s, speedup=eager_s / graph_s, bitwise_equal=same))
            dims = "^2" if args.system == "tm2d" else "^3"
            rows.append([f"{n}{dims}", nt, chunk or nt, f"{eager_s * 1e3:.1f}",
                         f"{graph_s * 1e3:.1f}", f"{eager_s / graph_s:.2f}x",
                         "-" if same is None else ("yes" if same else "NO")])
            print(" | ".join(map(str, rows[-1])), flush=True)
    meta = machine_info()
    meta.update(gpu=device_info(device), cache=wavecore.cuda_graph_cache_info(),
                date=datetime.datetime.now().isoformat(timespec="seconds"),
                command="python bench/benchmark_maxwell3d_cuda_graph.py "
                        + " ".join(argv if argv is not None else sys.argv[1:]))
    head = ["grid", "steps", "chunk", "eager ms", "graph ms", "speed-up", "bitwise equal"]
    lines = [f"# CUDA graphs, {args.system} forward ({meta['date'][:10]})", "",
             f"- device: {meta['gpu']}; git {meta['git']}; command: `{meta['command']}`",
             "- float32, stencil 4, 10-cell CPML, one shot; best of "
             f"{args.repeats} after a warm-up call that captures the graphs", "",
             *markdown_table(head, rows)]
    if mismatches:
        lines.append(f"\n**{mismatches} case(s) differ between graph and eager runs**")
    print("\n".join(lines))
    if not args.emulated:
        slug = re.sub(r"[^a-z0-9]+", "-", meta["gpu"]["name"].lower()).strip("-")
        stem = f"cuda_graph_{args.system}_{slug}_{meta['date'][:10]}"
        print(f"wrote {save_results(args.out, stem, lines, dict(meta=meta, cases=records))}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
