"""The CUDA time loops: the launch sequence of a step and of its transpose.

One sequence serves both launchers: :class:`CupyLauncher` (a GPU, through
CuPy) and :class:`wavecore._gpu.emulator.EmulatedLauncher` (the same kernels
on the CPU). The parameter struct is packed once per chunk of steps; inside
the loop there is no allocation and no host synchronization, only launches
on the current stream.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..plan import Plan
from .params import pack
from .source import kernel_name

BLOCK = (32, 8, 1)
"""Threads per block of the cell kernels: 32 along x (coalesced rows)."""
SHOT_BLOCK = (64, 1, 1)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def grids(kind: str, geometry: dict, order: int) -> tuple:
    """(cell grid, shot grid) of a launch: x, y over the domain columns and rows,
    z over shots (TM2D) or shots x domain planes (3-D)."""
    m = order // 2
    nx = geometry["nx"] - 2 * m + 1
    ny = geometry["ny"] - 2 * m + 1
    z = geometry["n_shots"]
    if kind == "maxwell3d":
        z *= geometry["nz"] - 2 * m + 1
    if z > 2**31 - 1:
        raise ValueError(f"{z} shot-planes exceed the CUDA grid limit")
    cells = (_ceil(nx, BLOCK[0]), _ceil(ny, BLOCK[1]), z)
    return cells, (_ceil(geometry["n_shots"], SHOT_BLOCK[0]), 1, 1)


PREFIX = {"tm2d": "tm2d", "maxwell3d": "m3d"}


class CudaBackend:
    """A run on wavecore's CUDA kernels (backend protocol of wavecore.backends).

    ``launcher`` runs a named kernel; on a GPU the buffers are mirrored on the
    device (see :class:`CupyLauncher`).
    """

    def __init__(self, plan: Plan, buffers, launcher):
        self.plan = plan
        self.kind = plan.kind
        self.dtype = np.dtype(plan.dtype)
        self.launcher = launcher
        self.name = launcher.name
        self.buffers = buffers
        p = PREFIX[self.kind]
        self._names = {k: kernel_name(self.kind, f"{p}_{k}", self.dtype, plan.order)
                       for k in ("h", "e", "sources_receivers", "adjoint_rs", "adjoint_e",
                                 "adjoint_h", "adjoint_gather")}

    def _params(self):
        device = self.launcher.to_device(self.buffers)
        return pack(self.kind, device, self.dtype), grids(self.kind, device.geometry,
                                                         self.plan.order)

    def forward(self, t0: int, n_steps: int) -> None:
        params, (cells, shots) = self._params()
        launch, n = self.launcher, self._names
        for t in range(t0, t0 + n_steps):
            launch(n["h"], cells, BLOCK, params, t)
            launch(n["e"], cells, BLOCK, params, t)
            launch(n["sources_receivers"], shots, SHOT_BLOCK, params, t)

    def adjoint(self, t_end: int, n_steps: int) -> None:
        params, (cells, shots) = self._params()
        launch, n = self.launcher, self._names
        for t in range(t_end - 1, t_end - 1 - n_steps, -1):
            launch(n["adjoint_rs"], shots, SHOT_BLOCK, params, t)
            launch(n["adjoint_e"], cells, BLOCK, params, t)
            launch(n["adjoint_h"], cells, BLOCK, params, t)
            launch(n["adjoint_gather"], cells, BLOCK, params, t)

    def synchronize(self) -> None:
        self.launcher.synchronize(self.buffers)


class CupyLauncher:
    """Kernels compiled by NVRTC (wavecore._gpu.source) launched on the current
    CuPy stream.

    The run's buffers are host arrays prepared by the driver; they are copied
    to the device before a chunk of steps and back after it
    (:meth:`synchronize`), so callbacks and snapshot storage see host arrays.
    """

    name = "cuda"

    def __init__(self, kind: str, dtype, order: int):
        import cupy  # noqa: PLC0415 - only on the CUDA path

        from .source import cupy_module  # noqa: PLC0415

        self._cupy = cupy
        self._module = cupy_module(kind, dtype, order)
        self._functions = {}
        self._device = {}

    def to_device(self, buffers) -> SimpleNamespace:
        """Device copies of every array of ``buffers`` (refreshed from the host)."""
        cupy = self._cupy
        mirror = SimpleNamespace(geometry=dict(buffers.geometry))
        for name, value in vars(buffers).items():
            if isinstance(value, np.ndarray):
                held = self._device.get(name)
                if held is None or held.shape != value.shape or held.dtype != value.dtype:
                    held = cupy.empty(value.shape, value.dtype)
                    self._device[name] = held
                held.set(np.ascontiguousarray(value))
                setattr(mirror, name, held)
        for name in [n for n in self._device if not isinstance(getattr(buffers, n, None),
                                                                np.ndarray)]:
            del self._device[name]
        return mirror

    def __call__(self, kernel: str, grid: tuple, block: tuple, params: np.ndarray, t: int):
        function = self._functions.get(kernel)
        if function is None:
            function = self._functions[kernel] = self._module.get_function(kernel)
        function(grid, block, (params[0], np.int64(t)))

    def synchronize(self, buffers) -> None:
        self._cupy.cuda.get_current_stream().synchronize()
        for name, held in self._device.items():
            host = getattr(buffers, name, None)
            if isinstance(host, np.ndarray):
                held.get(out=host)


def cuda_status() -> str:
    """"available (...)" or why the CUDA backend cannot run here."""
    try:
        import cupy  # noqa: PLC0415
    except ImportError:
        return "unavailable: CuPy is not installed (pip install wavecore[cuda12] or [cuda13])"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - any driver error means no GPU
        return f"unavailable: no CUDA device ({exc})"
    if count < 1:
        return "unavailable: no CUDA device"
    return f"available (CuPy {cupy.__version__}, {count} device(s))"


def backend_factory(name: str):
    """A backend class-like factory ``(plan, buffers) -> CudaBackend`` for
    ``name`` "cuda" (a GPU through CuPy) or "cuda-emulated" (the CPU)."""
    if name == "cuda":
        status = cuda_status()
        if not status.startswith("available"):
            raise RuntimeError(f"device='cuda' cannot run: {status}")
        launcher = CupyLauncher
    else:
        from .emulator import EmulatedLauncher  # noqa: PLC0415

        launcher = EmulatedLauncher

    def make(plan: Plan, buffers) -> CudaBackend:
        return CudaBackend(plan, buffers, launcher(plan.kind, plan.dtype, plan.order))

    return make
