"""Backends execute a :class:`~wavecore.plan.Plan` on a set of buffers.

A backend is an object with a small protocol:

* ``Backend(plan, buffers)`` takes the prepared arrays (and uploads them
  where the device needs it),
* ``forward(t0, n_steps)`` advances the state by ``n_steps`` internal steps
  starting at step ``t0`` (injecting sources and recording receivers, and
  storing snapshots when the buffers have snapshot arrays),
* ``adjoint(t_end, n_steps)`` runs the transposed steps ``t_end - 1`` down to
  ``t_end - n_steps`` on the adjoint buffers,
* ``synchronize()`` waits for queued work.

The registry maps names to classes; a backend that cannot run raises an
error that says why. There is never a silent fallback to another backend.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Backend", "backend_class", "available_backends"]


class Backend(Protocol):
    name: str

    def forward(self, t0: int, n_steps: int) -> None: ...

    def adjoint(self, t_end: int, n_steps: int) -> None: ...

    def synchronize(self) -> None: ...


def backend_class(kind: str, name: str):
    """The backend class running ``kind`` ("tm2d", "maxwell3d") on ``name``
    ("reference", "cpu", "cuda" or "cuda-emulated")."""
    if (kind, name) == ("tm2d", "reference"):
        from .reference_tm2d import ReferenceTm2d

        return ReferenceTm2d
    if (kind, name) == ("maxwell3d", "reference"):
        from .reference_maxwell3d import ReferenceMaxwell3d

        return ReferenceMaxwell3d
    if name == "cpu" and kind in ("tm2d", "maxwell3d"):
        from .cpu import CpuBackend

        return CpuBackend
    if name in ("cuda", "cuda-emulated") and kind in ("tm2d", "maxwell3d"):
        from .._gpu.launch import backend_factory

        return backend_factory(name)
    raise ValueError(f"no backend {name!r} for {kind}")


def available_backends() -> dict[str, str]:
    """Backend name -> "available" or the reason it is not."""
    from .cpu import cpu_core_status

    status = {"reference": "available (numpy)"}

    status["cpu"] = cpu_core_status()
    from .._gpu.launch import cuda_status

    status["cuda"] = cuda_status()
    status["cuda-emulated"] = "available (CUDA kernels compiled as C++, run on the CPU)"
    return status
