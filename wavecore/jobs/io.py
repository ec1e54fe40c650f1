"""Models in, receiver data out: .npy/.npz/HDF5 models, and an HDF5 file of
receiver data written shot by shot (a rerun resumes, an interrupted job
leaves the finished shots readable)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..models import buried_pipe_and_void
from .config import ConfigError, JobConfig


def _load_array(cfg: JobConfig, key: str, value, shape):
    if isinstance(value, (int, float)):
        return np.full(shape, float(value), np.float32)
    if isinstance(value, str):
        file, inner = cfg.resolve(value), None
    else:
        file, inner = cfg.resolve(value["file"]), value.get("key") or value.get("dataset")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(file)
        if suffix == ".npz":
            with np.load(file) as z:
                return z[inner or key]
        if suffix in (".h5", ".hdf5"):
            import h5py  # noqa: PLC0415 - optional: wavecore[hpc]

            with h5py.File(file, "r") as f:
                return f[inner or key][...]
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{cfg.path}: [model.{key}] cannot read {str(file)!r}: {exc}") from None
    raise ConfigError(f"{cfg.path}: [model.{key}] {str(file)!r}: expected .npy, .npz or .h5")


def load_models(cfg: JobConfig):
    """(epsilon, sigma, mu, spacing) of the job, in one float dtype."""
    m = cfg.model
    spacing = m["spacing"]
    if "builtin" in m:
        model = buried_pipe_and_void(spacing=float(spacing))
        arrays = [model.epsilon, model.sigma, model.mu]
    else:
        shape = tuple(m.get("shape", ()))
        arrays = [_load_array(cfg, k, m[k], shape) for k in ("epsilon", "sigma", "mu")]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ConfigError(f"{cfg.path}: [model] epsilon, sigma and mu have different "
                              f"shapes {[a.shape for a in arrays]}")
        if arrays[0].ndim != cfg.ndim:
            raise ConfigError(f"{cfg.path}: [model] the arrays are {arrays[0].ndim}-D but "
                              f"solver.system needs {cfg.ndim}-D")
    dtype = np.result_type(*arrays, np.float32)
    spacing = tuple(float(v) for v in spacing) if isinstance(spacing, list) else \
        (float(spacing),) * cfg.ndim
    return (*(np.ascontiguousarray(a, dtype) for a in arrays), spacing)


def config_digest(cfg: JobConfig) -> str:
    return hashlib.sha256(cfg.text.encode()).hexdigest()


class ShotFile:
    """The job's HDF5 output: ``receiver_data [shots, ..., nt]`` (one chunk per
    shot, NaN until written), ``done [shots]``, the geometry and metadata."""

    def __init__(self, path: Path, cfg: JobConfig, shot_shape: tuple, dtype, meta: dict,
                 sources: np.ndarray, receivers: np.ndarray):
        import h5py  # noqa: PLC0415 - optional: wavecore[hpc]

        self.path = Path(path)
        n = len(sources)
        digest = config_digest(cfg)
        if self.path.exists() and not cfg.output.get("overwrite", False):
            self.file = h5py.File(self.path, "a")
            if self.file.attrs.get("config_sha256") != digest:
                self.file.close()
                raise ConfigError(
                    f"{cfg.path}: [output.path] {str(self.path)!r} holds a job with another "
                    "configuration; set output.overwrite = true or choose another path")
            return
        self.file = h5py.File(self.path, "w")
        f = self.file
        f.create_dataset("receiver_data", (n, *shot_shape), dtype=dtype,
                         chunks=(1, *shot_shape), fillvalue=np.nan)
        f.create_dataset("done", (n,), dtype=bool)
        f.create_dataset("source_location", data=sources)
        f.create_dataset("receiver_location", data=receivers)
        f.attrs.update({"config_sha256": digest, "config": cfg.text,
                        "wavecore_version": __version__, "units": "V/m (E), A/m (H)",
                        "layout": "receiver_data[shot, (component,) receiver, time]",
                        **{k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
                           for k, v in meta.items()}})
        f.flush()

    def finished(self) -> set:
        return set(np.flatnonzero(self.file["done"][...]).tolist())

    def write(self, shot: int, data: np.ndarray) -> None:
        self.file["receiver_data"][shot] = data
        self.file["done"][shot] = True
        self.file.flush()  # the shot survives a later crash

    def close(self) -> None:
        self.file.close()


def read_shots(path) -> dict:
    """The receiver data, the done flags, the geometry and the metadata of a job file."""
    import h5py  # noqa: PLC0415

    with h5py.File(path, "r") as f:
        out = {k: f[k][...] for k in ("receiver_data", "done", "source_location",
                                       "receiver_location")}
        out["attrs"] = dict(f.attrs)
    return out
