"""``show_config()``: what this wavecore build can do."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys

import numpy as np

__all__ = ["show_config", "config"]


def config() -> dict:
    """The facts :func:`show_config` prints, as a dict."""
    from . import __version__
    from .backends import available_backends
    from .backends.cpu import _IMPORT_ERROR, _runtime

    info = {
        "wavecore": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "backends": available_backends(),
    }
    if _IMPORT_ERROR is None:
        info["openmp"] = bool(_runtime.openmp_enabled())
        info["openmp_version"] = int(_runtime.openmp_spec())
        info["threads"] = int(_runtime.max_threads())
        info["build"] = _runtime.build_flags()
        if not info["openmp"]:
            info["warning"] = ("the CPU core was built WITHOUT OpenMP: runs are "
                               "single-threaded; rebuild with an OpenMP-capable compiler")
    else:
        info["openmp"] = False
        info["threads"] = 1
    # Never imports cupy: only reports whether it is installed.
    info["cupy"] = "installed" if importlib.util.find_spec("cupy") else "not installed"
    return info


def show_config() -> dict:
    """Print the version, backends, OpenMP status, threads and build flags.

    Returns the same facts as a dict.
    """
    info = config()
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key:<{width}} :")
            for k, v in value.items():
                print(f"  {k:<{width - 2}} : {v}")
        else:
            print(f"{key:<{width}} : {value}")
    return info
