"""The optional packages a job needs, checked before any work."""

from __future__ import annotations

import importlib

from ..config import EXTRAS


class MissingExtra(ImportError):
    """An optional package a command needs is not installed; the message says
    what to install."""


def require(module: str, purpose: str | None = None):
    """Import ``module`` or raise :class:`MissingExtra` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        row = next((r for r in EXTRAS if r[0] == module), None)
        install = row[3] if row else f"pip install {module}"
        need = purpose or (row[2] if row else "this command")
        raise MissingExtra(f"{module} is not installed ({exc}); {need}. Install it: "
                           f"{install}") from None


def require_for_job(cfg, *, own_executor: bool = True) -> None:
    """The packages of a job's file: h5py (HDF5 output or input), scipy (an
    inversion), distributed (executor = "dask") or mpi4py (executor = "mpi")
    unless the caller passes its own executor."""
    from .config import DEFAULT_EXECUTOR  # noqa: PLC0415

    require("h5py", "batch jobs write and read HDF5 files")
    if cfg.inversion:
        require("scipy", "wavecore fwi runs scipy's optimizers")
    for key in ("epsilon", "sigma", "mu"):
        value = cfg.model.get(key)
        if isinstance(value, dict) and "dataset" in value:
            require("h5py", f"[model.{key}] is an HDF5 file")
    kind = cfg.parallel.get("executor", DEFAULT_EXECUTOR) if own_executor else None
    if kind == "dask":
        require("distributed", 'executor = "dask" runs on Dask')
    elif kind == "mpi":
        require("mpi4py", 'executor = "mpi" runs on mpi4py.futures')
