"""Compile every CUDA kernel module with NVRTC, in parallel processes, and time each.

Usage:
    python bench/compile_kernels.py            # one process per module (16 modules)
    python bench/compile_kernels.py --jobs 4   # at most 4 at a time

A run compiles the modules it needs once per process (2 systems x 2 dtypes x 4
stencil orders: wavecore._gpu.source.cupy_module), each in a few seconds. CuPy >= 14
keeps the binaries of modules with name expressions in its disk cache
(``CUPY_CACHE_DIR``, default ~/.cupy/kernel_cache), so compiling them all here first,
in parallel, saves that time in every later process (bench/device_check.sh does it
before the GPU tests); an older CuPy recompiles in each process. Needs CuPy and a GPU.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import sys
import time

import numpy as np


def compile_one(job: tuple) -> tuple:
    from wavecore._gpu import source

    kind, dtype, order = job
    start = time.perf_counter()
    source.cupy_module(kind, dtype, order)
    return job, time.perf_counter() - start


def main(argv=None) -> int:
    from wavecore._gpu import source

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    jobs = [(kind, np.dtype(d).name, order) for kind in source.KERNELS for d in source.DTYPES
            for order in source.ORDERS]
    parser.add_argument("--jobs", type=int, default=len(jobs))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    # spawn: each worker initializes CUDA itself (a forked CUDA context is unusable).
    with cf.ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for (kind, dtype, order), seconds in pool.map(compile_one, jobs):
            print(f"{kind:9s} {dtype:7s} stencil {order}: {seconds:6.2f} s", flush=True)
    print(f"{len(jobs)} modules in {time.perf_counter() - start:.1f} s ({args.jobs} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
