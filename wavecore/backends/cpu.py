"""The compiled CPU backend: the Cython/OpenMP time loops of wavecore._cpu."""

from __future__ import annotations

import warnings

import numpy as np

from ..memory import HOST
from ..plan import Plan

_IMPORT_ERROR: Exception | None = None
try:
    from .._cpu import _maxwell3d, _runtime, _tm2d
except ImportError as exc:  # pragma: no cover - only on a broken install
    _runtime = _tm2d = _maxwell3d = None
    _IMPORT_ERROR = exc


def cpu_core_status() -> str:
    """"available (...)" or why the compiled core cannot be used."""
    if _IMPORT_ERROR is not None:
        return f"unavailable: the compiled extension did not import ({_IMPORT_ERROR})"
    omp = "OpenMP" if _runtime.openmp_enabled() else "NO OpenMP (single-threaded build)"
    return f"available (Cython, {omp})"


def require_cpu_core(kind: str = "tm2d"):
    """The compiled module running ``kind`` ("tm2d" or "maxwell3d")."""
    if _IMPORT_ERROR is not None:
        raise RuntimeError(
            "the compiled CPU core of wavecore is not importable: "
            f"{_IMPORT_ERROR}. Reinstall with `pip install -e .` (needs a C++17 compiler), "
            "or pass python_backend=True to run the numpy reference implementation.")
    return {"tm2d": _tm2d, "maxwell3d": _maxwell3d}[kind]


def default_threads() -> int:
    """Threads used when ``n_threads`` is None: ``omp_get_max_threads()``."""
    if _IMPORT_ERROR is not None:
        return 1
    return max(1, int(_runtime.max_threads()))


def resolve_threads(n_threads: int | None) -> int:
    """The thread count a run will use; warns when the build cannot honour it."""
    if n_threads is None:
        return default_threads()
    if n_threads > 1 and _IMPORT_ERROR is None and not _runtime.openmp_enabled():
        warnings.warn(f"n_threads={n_threads} has no effect: this build of wavecore has no "
                      "OpenMP and runs single-threaded (see wavecore.show_config())",
                      RuntimeWarning, stacklevel=3)
        return 1
    return n_threads


class CpuBackend:
    """A run on the CPU core (TM2D or 3-D); the buffers are used in place."""

    name = "cpu"
    memory = HOST

    def __init__(self, plan: Plan, buffers):
        self._kernels = require_cpu_core(plan.kind)
        self.plan = plan
        self.buffers = buffers
        if plan.kind == "maxwell3d":
            buffers.uniform_e = uniform_rows(plan, buffers.ca, buffers.cb)
            buffers.uniform_h = uniform_rows(plan, buffers.cq)

    def forward(self, t0: int, n_steps: int) -> None:
        self._kernels.forward(self.buffers, self.plan.order, t0, n_steps, self.plan.n_threads)

    def adjoint(self, t_end: int, n_steps: int) -> None:
        self._kernels.adjoint(self.buffers, self.plan.order, t_end, n_steps,
                              self.plan.n_threads)

    def synchronize(self) -> None:
        pass


def uniform_rows(plan: Plan, *coefficients: np.ndarray) -> np.ndarray:
    """One flag per row (model, z, y) of the padded grid: 1 where the coefficient
    arrays ``[n_models, *padded]`` hold one value each (bit for bit) along the
    row's domain cells.

    The 3-D rows of a piecewise-constant model are mostly uniform; the CPU core
    reads their coefficients once per row instead of once per cell (the same
    numbers; 12 of the ~115 bytes a float32 cell-step moves).
    """
    x = plan.axes[-1].domain
    uniform = np.ones(coefficients[0].shape[:-1], bool)
    for array in coefficients:
        row = array[..., x]
        bits = row.view(np.dtype(f"u{row.itemsize}"))
        uniform &= (bits == bits[..., :1]).all(axis=-1)
    return uniform.astype(np.uint8).ravel()
