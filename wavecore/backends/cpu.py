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
import time
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
        self.threads = ThreadGovernor(plan.n_threads)  # the driver enables adaptation
        if plan.kind == "maxwell3d":
            buffers.uniform_e = uniform_rows(plan, buffers.ca, buffers.cb)
            buffers.uniform_h = uniform_rows(plan, buffers.cq)

    def forward(self, t0: int, n_steps: int) -> None:
        governor = self.threads
        governor.before()
        self._kernels.forward(self.buffers, self.plan.order, t0, n_steps, governor.n)
        governor.after()

    def adjoint(self, t_end: int, n_steps: int) -> None:
        governor = self.threads
        governor.before()
        self._kernels.adjoint(self.buffers, self.plan.order, t_end, n_steps, governor.n)
        governor.after()

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


def _run_queue_ns() -> int | None:
    """Nanoseconds the threads of this process have waited for a CPU while
    runnable (the second field of Linux's /proc/<pid>/task/<tid>/schedstat),
    summed over its threads; None where the kernel does not report it."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended, or no schedstat
    return total


def _idle_cpu_seconds() -> float | None:
    """Idle time of all CPUs since boot, seconds (/proc/stat), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
        return (int(fields[4]) + int(fields[5])) / _CLOCK_TICKS  # idle + iowait
    except (OSError, IndexError, ValueError):
        return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ThreadGovernor:
    """The thread count of each compiled call of a run (``n``).

    With ``n_threads`` left to its default, a run adapts its thread count to
    CPU contention between the calls of its time loop (each call runs about
    0.1 s of steps, wavecore/_stepping.py): the OpenMP threads of a step meet
    at three barriers, so a thread that shares its core with another program
    holds up all the others, and a 2-thread run on a machine with one busy core
    ran 1.3-37x slower than with 1 thread. After every window of at least
    :attr:`WINDOW` seconds of calls the governor compares the time the
    process's threads waited for a CPU (Linux schedstat) with the window: above
    :attr:`STARVED` of it, one thread fewer. While below ``n_threads``, it
    watches the idle time of the machine (/proc/stat) over windows of
    :attr:`IDLE_WINDOW` seconds, and adds a thread when a core's worth is
    idle. Results do not depend on the thread count (bit for bit), only the
    speed does. An explicit ``n_threads``, or a platform without these
    counters, keeps the count fixed.
    """

    WINDOW = 0.02        #: seconds of calls per contention check
    STARVED = 0.25       #: run-queue wait / window that counts as contention
    IDLE_WINDOW = 0.3    #: seconds of calls per idle check while reduced
    IDLE_CORE = 0.8      #: idle cores per extra thread
    clock = staticmethod(time.perf_counter)

    def __init__(self, n_threads: int):
        self.limit = self.n = max(1, int(n_threads))
        self.adapt = False
        self.history = []  # (seconds into the run, thread count) at each change
        self._start = self.clock()
        self._window = None

    def follow_contention(self) -> bool:
        """Adapt the thread count from now on (where the counters exist)."""
        self.adapt = self.limit > 1 and _run_queue_ns() is not None
        return self.adapt

    def before(self) -> None:
        if self.adapt and self._window is None:
            self._window = (self.clock(), _run_queue_ns(), _idle_cpu_seconds())

    def after(self) -> None:
        if not self.adapt:
            return
        t0, wait0, idle0 = self._window
        elapsed = self.clock() - t0
        reduced = self.n < self.limit
        if elapsed < (self.IDLE_WINDOW if reduced else self.WINDOW):
            return
        self._window = None
        starved = (_run_queue_ns() - wait0) * 1e-9 / elapsed
        if self.n > 1 and starved > self.STARVED:
            self._set(self.n - max(1, int(starved + 0.5)))
        elif reduced:
            idle1 = _idle_cpu_seconds()
            if idle0 is not None and idle1 is not None:
                self._set(self.n + int((idle1 - idle0) / elapsed / self.IDLE_CORE))

    def _set(self, n: int) -> None:
        n = max(1, min(self.limit, n))
        if n != self.n:
            self.n = n
            self.history.append((round(self.clock() - self._start, 3), n))
