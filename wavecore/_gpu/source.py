"""The CUDA source of wavecore's kernels and the names of their instantiations.

The source is kernels.cu with the ``_csrc`` headers it includes pasted in
(NVRTC sees one self-contained text, and so does the CPU emulator). Kernels
are templates over the dtype and the stencil order; :func:`name_expressions`
lists the instantiations a run needs, which NVRTC compiles by name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parent.parent
CSRC = PACKAGE / "_csrc"
GPU = PACKAGE / "_gpu"
ORDERS = (2, 4, 6, 8)
DTYPES = (np.float32, np.float64)

# Kernel families: name -> whether it is templated on the stencil order.
KERNELS = {
    "tm2d": {"tm2d_h": True, "tm2d_e": True, "tm2d_sources_receivers": False,
             "tm2d_adjoint_rs": False, "tm2d_adjoint_e": True, "tm2d_adjoint_h": True,
             "tm2d_adjoint_gather": True},
    "maxwell3d": {"m3d_h": True, "m3d_e": True, "m3d_sources_receivers": False,
                  "m3d_adjoint_rs": False, "m3d_adjoint_e": True, "m3d_adjoint_h": True,
                  "m3d_adjoint_gather": True},
}
LAW_KERNELS = {
    "debye": {
        "tm2d": {"tm2d_debye_e": True, "tm2d_debye_adjoint_e": True},
        "maxwell3d": {"m3d_debye_e": True, "m3d_debye_adjoint_e": True},
    },
}
"""The kernels of a material law's family (``Material.kernel_family``, e.g. the
Debye law's "debye"), by system: ``<prefix>_<family>_<step>`` takes the place
of the plain ``<prefix>_<step>`` kernel in a run of that law. NVRTC compiles a
family in a module of its own, only for such runs (the Debye kernels take
several times longer to compile)."""
PARAMS = {"tm2d": "Tm2dParams", "maxwell3d": "M3dParams"}

_INCLUDE = re.compile(r'^#include "([^"]+)"\s*$', re.MULTILINE)


def ctype(dtype) -> str:
    """The C++ name of a floating dtype."""
    return {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]


def kernel_name(kind: str, kernel: str, dtype, order: int) -> str:
    """The C++ name expression of one kernel instantiation."""
    by_order = {**KERNELS[kind], **{k: v for family in LAW_KERNELS.values()
                                    for k, v in family[kind].items()}}[kernel]
    args = f"{ctype(dtype)}, {order}" if by_order else ctype(dtype)
    return f"wc::gpu::{kernel}<{args}>"


def name_expressions(kind: str | None = None, dtype=None, order: int | None = None,
                     family: str = "") -> list:
    """Name expressions of the kernels of ``kind``/``dtype``/``order`` (None: all):
    those every run takes, or those of a law's kernel ``family`` (LAW_KERNELS)."""
    families = LAW_KERNELS[family] if family else KERNELS
    names = []
    for k in KERNELS if kind is None else (kind,):
        for d in DTYPES if dtype is None else (dtype,):
            for o in ORDERS if order is None else (order,):
                for kernel, by_order in families[k].items():
                    if by_order or o == (order or ORDERS[0]):
                        names.append(kernel_name(k, kernel, d, o))
    return list(dict.fromkeys(names))


def explicit_instantiations(names=None) -> str:
    """C++ explicit instantiations of kernels (for nvcc, which has no name
    expressions): one line per kernel of ``names`` (default: all)."""
    lines = []
    for name in names or name_expressions():
        kind = "tm2d" if "::tm2d_" in name else "maxwell3d"
        real = "float" if "<float" in name else "double"
        lines.append(f"template __global__ void {name}(const wc::{PARAMS[kind]}<{real}>, int64_t);")
    return "\n".join(lines) + "\n"


def _inline(path: Path, seen: set) -> str:
    text = path.read_text()

    def include(match):
        name = match.group(1)
        if name in seen:
            return ""
        seen.add(name)
        local = path.parent / name
        return _inline(local if local.exists() else CSRC / name, seen)

    return _INCLUDE.sub(include, text.replace("#pragma once\n", ""))


@functools.lru_cache(maxsize=None)
def kernel_source() -> str:
    """kernels.cu with every ``#include "..."`` of the _csrc headers pasted in once."""
    return _inline(GPU / "kernels.cu", set())


def header_text(kind: str) -> str:
    """The header that defines the parameter struct of ``kind``."""
    return (CSRC / {"tm2d": "wc_tm2d.h", "maxwell3d": "wc_maxwell3d.h"}[kind]).read_text()


NVRTC_OPTIONS = ("-std=c++17", "--fmad=false")
"""No fused multiply-add: the GPU rounds each operation like the CPU core."""


@functools.lru_cache(maxsize=None)
def _module(device: int, kind: str, dtype_name: str, order: int, family: str = ""):
    import cupy  # noqa: PLC0415 - only on the CUDA path

    names = name_expressions(kind, np.dtype(dtype_name), order, family)
    with cupy.cuda.Device(device):
        module = cupy.RawModule(code=kernel_source(), options=NVRTC_OPTIONS,
                                name_expressions=names)
        module.compile()
    return module


def cupy_module(kind: str, dtype, order: int, family: str = ""):
    """The compiled RawModule of ``kind`` for ``dtype`` and ``order`` on the
    current CuPy device (compiled once per device and process; CuPy also
    caches the binary on disk); with ``family`` the module of a law's kernels."""
    import cupy  # noqa: PLC0415

    return _module(cupy.cuda.Device().id, kind, np.dtype(dtype).name, order, family)
