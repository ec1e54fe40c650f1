"""``show_config()``: what this wavecore build can do."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys

import numpy as np

__all__ = ["show_config", "config"]


def config() -> dict:
    """The facts :func:`show_config` prints, as a dict."""
    from . import __version__
    from .backends import available_backends, cpu

    info = {
        "wavecore": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "backends": available_backends(),
    }
    runtime, error = cpu._load_runtime()
    if error is None:
        info["openmp"] = bool(runtime.openmp_enabled())
        info["openmp_version"] = int(runtime.openmp_spec())
        info["threads"] = int(runtime.max_threads())
        info.update(_variants(cpu, runtime))
        if not info["openmp"]:
            info["warning"] = ("the CPU core was built WITHOUT OpenMP: runs are "
                               "single-threaded; rebuild with an OpenMP-capable compiler")
    else:
        info["openmp"] = False
        info["threads"] = 1
    # Never imports cupy: only reports whether it is installed.
    info["cupy"] = "installed" if importlib.util.find_spec("cupy") else "not installed"
    info["extras"] = extras()
    return info


# The optional packages of the batch-job layer: (module, distribution, what
# needs it, how to install it). Reported by `wavecore info`; a job checks the
# ones it needs before any work (wavecore.jobs._extras.require).
EXTRAS = (
    ("h5py", "h5py", "batch jobs: HDF5 files", 'pip install "wavecore[hpc]"'),
    ("tqdm", "tqdm", "progress bars", 'pip install "wavecore[hpc]"'),
    ("distributed", "distributed", 'executor = "dask"', 'pip install "wavecore[hpc]"'),
    ("segyio", "segyio", "SEG-Y export", 'pip install "wavecore[hpc]"'),
    ("mpi4py", "mpi4py", 'executor = "mpi"', "pip install mpi4py (needs an MPI library)"),
    ("matplotlib", "matplotlib", "figures: demo, wavecore plot",
     'pip install "wavecore[plot]"'),
    ("scipy", "scipy", "inversion: wavecore fwi", 'pip install "wavecore[fwi]"'),
)


def extras() -> dict:
    """``{package: version or "not installed (...)"}`` for the optional
    packages, found without importing them."""
    out = {}
    for module, dist, purpose, install in EXTRAS:
        if importlib.util.find_spec(module) is None:
            out[module] = f"not installed (for {purpose}): {install}"
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "installed"
        out[module] = f"{version} (for {purpose})"
    return out


def _variants(cpu, runtime) -> dict:
    """The CPU's x86-64 levels, the variant of the kernels in use and its flags,
    and every variant of the build (those this CPU cannot run marked)."""
    from ._cpu.variants import runnable

    levels = runtime.cpu_levels()
    info = {"cpu_levels": (", ".join(k for k, ok in levels.items() if ok)
                          or "none of " + ", ".join(levels))}
    try:
        info["cpu_variant"] = cpu.cpu_variant()
        build = cpu.require_cpu_core("tm2d").build()
        info["build"] = {"compiler": runtime.build_flags()["compiler"],
                         "flags": build["flags"]}
    except (cpu.CpuVariantError, ImportError) as exc:
        info["cpu_variant"] = f"none ({exc})"
        info["build"] = runtime.build_flags()
    info["cpu_variants"] = {
        name: flags if runnable(name, levels) else f"(not on this CPU) {flags}"
        for name, flags in cpu.built_variants().items()}
    return info


def show_config() -> dict:
    """Print the version, backends, OpenMP status, threads, the variant of the CPU
    kernels in use with its flags, and the variants built.

    Returns the same facts as a dict.
    """
    info = config()
    for line in format_config(info):
        print(line)
    return info


def format_config(info: dict) -> list[str]:
    """The lines of :func:`show_config`: one column of keys (nested ones
    indented by two), the values aligned after it."""
    width = max([len(k) for k in info]
                + [len(k) + 2 for v in info.values() if isinstance(v, dict) for k in v])
    lines = []
    for key, value in info.items():
        if isinstance(value, dict):
            lines.append(f"{key:<{width}} :")
            lines += [f"  {k:<{width - 2}} : {v}" for k, v in value.items()]
        else:
            lines.append(f"{key:<{width}} : {value}")
    return lines
