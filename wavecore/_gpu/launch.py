"""The CUDA time loops: the launch sequence of a step and of its transpose.

One sequence serves both launchers: :class:`CupyLauncher` (a GPU, through
CuPy) and :class:`wavecore._gpu.emulator.EmulatedLauncher` (the same kernels
on the CPU, over separate host copies standing in for device memory). The
parameter struct is packed once per chunk of steps; inside the loop there is
no allocation and no host synchronization, only launches on the current
stream.
"""

from __future__ import annotations

import numpy as np

from ..memory import CupyMemory, adopt_buffers
from ..plan import Plan
from .params import members, pack
from .source import LAW_KERNELS, kernel_name

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
    cells = (_ceil(nx, BLOCK[0]), _ceil(ny, BLOCK[1]), z)
    if cells[1] > 65535 or cells[2] > 65535:
        what = "shots" if kind == "tm2d" else "shots x planes"
        raise ValueError(f"the launch grid {cells} exceeds CUDA's 65535 blocks in y or z "
                         f"({what} = {z}); run fewer shots per call")
    return cells, (_ceil(geometry["n_shots"], SHOT_BLOCK[0]), 1, 1)


PREFIX = {"tm2d": "tm2d", "maxwell3d": "m3d"}


class CudaBackend:
    """A run on wavecore's CUDA kernels (backend protocol of wavecore.backends).

    The arrays the kernels read (the pointer members of the parameter struct)
    are adopted into the launcher's memory when the backend is made, and stay
    there for the run; the driver copies back what it needs (wavecore.memory).
    """

    def __init__(self, plan: Plan, buffers, launcher):
        self.plan = plan
        self.kind = plan.kind
        self.dtype = np.dtype(plan.dtype)
        self.launcher = launcher
        self.name = launcher.name
        self.memory = launcher.memory
        self.buffers = buffers
        adopt_buffers(buffers, self.memory, [m[0] for m in members(self.kind) if m[2]])
        p = PREFIX[self.kind]
        self._names = {k: kernel_name(self.kind, f"{p}_{k}", self.dtype, plan.order)
                       for k in ("h", "e", "sources_receivers", "adjoint_rs", "adjoint_e",
                                 "adjoint_h", "adjoint_gather")}
        # A law's kernel family (the Debye poles: DESIGN.md section 11) replaces the
        # kernels of its steps; a run of the non-dispersive law launches the plain ones.
        family = plan.kernel_family
        for kernel in LAW_KERNELS[family][self.kind] if family else ():
            step = kernel.removeprefix(f"{p}_{family}_")
            self._names[step] = kernel_name(self.kind, kernel, self.dtype, plan.order)

    def _params(self):
        # Packed per chunk: the snapshot arrays and adjoint buffers change between chunks.
        b = self.buffers
        return pack(self.kind, b, self.dtype), grids(self.kind, b.geometry, self.plan.order)

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
        self.memory.synchronize()

    def capture(self, t0: int, n_steps: int):
        """A graph of the launches of steps ``[t0, t0 + n_steps)`` (not run)."""
        return self.launcher.capture(lambda: self.forward(t0, n_steps), self._names.values())

    def replay(self, graph) -> None:
        self.launcher.replay(graph)

    def device_id(self) -> int:
        return self.launcher.device_id()


class CupyLauncher:
    """Kernels compiled by NVRTC (wavecore._gpu.source), launched on the current
    CuPy stream over buffers in the current device's memory."""

    name = "cuda"

    def __init__(self, kind: str, dtype, order: int, family: str = ""):
        from .source import cupy_module  # noqa: PLC0415 - only on the CUDA path

        self.memory = CupyMemory()
        self._module = cupy_module(kind, dtype, order)
        # A law's kernels have a module of their own, compiled for its runs only.
        self._family = f"_{family}_" if family else None
        self._law_module = cupy_module(kind, dtype, order, family) if family else None
        self._functions = {}

    def _function(self, kernel: str):
        function = self._functions.get(kernel)
        if function is None:
            law = self._family is not None and self._family in kernel
            module = self._law_module if law else self._module
            function = self._functions[kernel] = module.get_function(kernel)
        return function

    def __call__(self, kernel: str, grid: tuple, block: tuple, params: np.ndarray, t: int):
        function = self._function(kernel)
        # A one-element structured array is passed by value as the C++ struct.
        function(grid, block, (params, np.int64(t)))

    def capture(self, launches, kernels):
        """Capture the kernels ``launches()`` enqueues into a cupy.cuda.Graph
        (``kernels``: their names, loaded before the capture starts)."""
        import cupy  # noqa: PLC0415

        for kernel in kernels:
            self._function(kernel)
        stream = cupy.cuda.Stream(non_blocking=True)
        with stream:
            stream.begin_capture()
            try:
                launches()
            finally:
                graph = stream.end_capture()
        return graph

    def replay(self, graph) -> None:
        import cupy  # noqa: PLC0415

        graph.launch(cupy.cuda.get_current_stream())

    def device_id(self) -> int:
        import cupy  # noqa: PLC0415

        return cupy.cuda.Device().id


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
        return CudaBackend(plan, buffers, launcher(plan.kind, plan.dtype, plan.order,
                                                   plan.kernel_family))

    return make
