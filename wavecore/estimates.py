"""What a run will need, computed before it starts (nothing is allocated or run).

Both functions take the arguments of :func:`wavecore.tm2d` (default) or, with
``system="maxwell3d"``, of :func:`wavecore.maxwell3d`, and validate them as
the run would.
"""

from __future__ import annotations

from dataclasses import replace

from . import _driver
from ._maxwell3d import MAXWELL3D
from ._tm2d import TM2D
from .result import MemoryEstimate
from .storage import StoragePlan

__all__ = ["estimate_storage", "estimate_storage_bytes", "estimate_memory"]

_SYSTEMS = {"tm2d": TM2D, "maxwell3d": MAXWELL3D}


def _physics(system: str):
    if system not in _SYSTEMS:
        raise ValueError(f"system must be one of {tuple(_SYSTEMS)}, got {system!r}")
    return _SYSTEMS[system]


def estimate_storage(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
                     receiver_location, *, system: str = "tm2d", **options) -> StoragePlan:
    """The snapshot storage a run with the same arguments would use.

    Returns a :class:`~wavecore.storage.StoragePlan`: ``.bytes`` (total snapshot
    bytes), ``.mode`` (what ``"auto"`` chooses), ``.n_snapshots``, ``.chunk``,
    ``.held_bytes`` (what the store holds in memory), with checkpointing
    ``.schedule`` (a :class:`~wavecore.checkpointing.Schedule`: ``.checkpoints``,
    ``.segments``, ``.recomputed_steps``, ``.held_bytes``, and of the disk level
    ``.disk_checkpoints``, ``.disk_accesses``, ``.disk_bytes``, ``.path``), and
    ``.fits`` / ``.available`` / ``.reason``: a plan that does not fit (a
    storage limit, the memory or the disk space) is returned with
    ``fits=False``, not raised; the run raises it. Invalid arguments raise.
    """
    return _driver.estimate(_physics(system), epsilon, sigma, mu, grid_spacing, dt,
                            source_amplitude, source_location, receiver_location, **options)[0]


def estimate_storage_bytes(*args, **options) -> int:
    """Snapshot bytes a run with these arguments stores (see :func:`estimate_storage`)."""
    return estimate_storage(*args, **options).bytes


def estimate_memory(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
                    receiver_location, *, system: str = "tm2d", **options) -> MemoryEstimate:
    """Bytes a run with the same arguments would allocate, by kind of array.

    Returns a :class:`~wavecore.result.MemoryEstimate` (``.forward``,
    ``.adjoint``, ``.peak``, ``.describe()``); a finished run reports the same
    in ``result.memory``. ``.available`` is the host memory available now (the
    least of MemAvailable, the cgroup limits and RLIMIT_AS/RLIMIT_DATA), and
    ``.fits`` / ``.reason`` say whether the whole run (with its snapshots, see
    :func:`estimate_storage`) fits it: the run raises that MemoryError before
    it allocates anything; this function does not.
    """
    storage, memory = _driver.estimate(_physics(system), epsilon, sigma, mu, grid_spacing, dt,
                                       source_amplitude, source_location, receiver_location,
                                       **options)
    if memory.fits and not storage.fits:  # the snapshots' limit is the one the run hits
        memory = replace(memory, fits=False, reason=storage.reason)
    return memory
