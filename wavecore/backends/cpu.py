"""The compiled CPU backend: the Cython/OpenMP time loops of wavecore._cpu.

The compiled modules are imported on first use, not with ``import wavecore``:
``_runtime`` (always built for the baseline target), then the kernel module of
a run's kind in the variant chosen once per process (wavecore/_cpu/variants.py):
the best one this CPU runs, or the one ``WAVECORE_CPU_VARIANT`` or
:func:`use_cpu_variant` names.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings

import numpy as np

from .._cpu.variants import ENV, CpuVariantError, import_kernel, select
from ..memory import HOST
from ..plan import Plan

__all__ = ["CpuBackend", "CpuVariantError", "cpu_core_status", "cpu_variant",
           "use_cpu_variant", "require_cpu_core", "runtime", "resolve_threads"]

KERNELS = {"tm2d": "_tm2d", "maxwell3d": "_maxwell3d"}

# The variant this process runs and its kernel modules, imported on first use.
_lock = threading.RLock()
_chosen: dict = {"variant": None, "modules": {}}


@functools.cache
def _load_runtime():
    """(_runtime, None), or (None, the ImportError) on a broken install."""
    try:
        from .._cpu import _runtime
    except ImportError as exc:  # pragma: no cover - only on a broken install
        return None, exc
    return _runtime, None


def runtime():
    """The ``_runtime`` module of the compiled core (OpenMP, build, CPU facts)."""
    module, error = _load_runtime()
    if error is not None:
        raise RuntimeError(
            "the compiled CPU core of wavecore is not importable: "
            f"{error}. Reinstall with `pip install -e .` (needs a C++17 compiler), "
            "or pass python_backend=True to run the numpy reference implementation.")
    return module


def built_variants() -> dict:
    """The variants of the kernel modules in this build: {name: compiler flags},
    best last."""
    return dict(runtime().variants()) or {"baseline": runtime().build_flags()["flags"]}


def use_cpu_variant(name: str | None = None) -> str:
    """Run the CPU kernels of variant ``name`` from the next run on.

    Parameters
    ----------
    name : str or None
        "baseline", "v3", "v4" (x86-64 builds; ``wavecore info`` lists them) or
        "auto". None: the ``WAVECORE_CPU_VARIANT`` environment variable, else
        "auto" (the best variant this CPU runs).

    Returns
    -------
    str
        The variant now in use.

    Raises
    ------
    CpuVariantError
        When the variant is not built or this CPU cannot run it; the variant in
        use does not change then.
    """
    rt = runtime()
    requested = os.environ.get(ENV) if name is None else name
    variant = select(list(built_variants()), rt.cpu_levels(), requested)
    with _lock:
        if variant != _chosen["variant"]:
            _chosen["variant"], _chosen["modules"] = variant, {}
    return variant


def cpu_variant() -> str:
    """The variant of the CPU kernels this process runs (chosen on first use)."""
    return _chosen["variant"] or use_cpu_variant()


def cpu_core_status() -> str:
    """"available (...)" or why the compiled core cannot be used."""
    _, error = _load_runtime()
    if error is not None:
        return f"unavailable: the compiled extension did not import ({error})"
    try:
        variant = cpu_variant()
        for kind in KERNELS:
            require_cpu_core(kind)
    except (CpuVariantError, ImportError) as exc:
        return f"unavailable: {exc}"
    omp = "OpenMP" if runtime().openmp_enabled() else "NO OpenMP (single-threaded build)"
    return f"available (Cython, {omp}, variant {variant})"


def require_cpu_core(kind: str = "tm2d"):
    """The compiled module running ``kind`` ("tm2d" or "maxwell3d"), of the
    variant in use (imported once)."""
    cpu_variant()  # chosen on first use
    with _lock:
        variant, modules = _chosen["variant"], _chosen["modules"]
        if kind not in modules:
            modules[kind] = import_kernel(KERNELS[kind], variant, list(built_variants()),
                                          runtime().cpu_levels())
        return modules[kind]


def default_threads() -> int:
    """Threads used when ``n_threads`` is None: ``omp_get_max_threads()``."""
    module, error = _load_runtime()
    if error is not None:
        return 1
    return max(1, int(module.max_threads()))


def resolve_threads(n_threads: int | None) -> int:
    """The thread count a run will use; warns when the build cannot honour it."""
    if n_threads is None:
        return default_threads()
    module, error = _load_runtime()
    if n_threads > 1 and error is None and not module.openmp_enabled():
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
