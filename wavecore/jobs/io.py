"""Models in, receiver data out: .npy/.npz/HDF5 models, and an HDF5 file of
receiver data written shot by shot (a rerun resumes, an interrupted job
leaves the finished shots readable)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .. import __version__
from .._checks import pml_widths
from ..models import buried_pipe_and_void
from .config import ConfigError, JobConfig


def _load_array(cfg: JobConfig, key: str, value, shape, member: str | None = None):
    """The array of ``[model.<key>]`` (a number fills ``shape``); a file's
    .npz member or HDF5 dataset defaults to ``member`` (else ``key``)."""
    if isinstance(value, (int, float)):
        return np.full(shape, float(value), np.float32)
    if isinstance(value, str):
        file, inner = cfg.resolve(value), None
    else:
        file, inner = cfg.resolve(value["file"]), value.get("key") or value.get("dataset")
    inner = inner or member or key
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(file)
        if suffix == ".npz":
            with np.load(file) as z:
                return z[inner]
        if suffix in (".h5", ".hdf5"):
            import h5py  # noqa: PLC0415 - optional: wavecore[hpc]

            with h5py.File(file, "r") as f:
                return f[inner][...]
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{cfg.path}: [model.{key}] cannot read {str(file)!r}: {exc}") from None
    raise ConfigError(f"{cfg.path}: [model.{key}] {str(file)!r}: expected .npy, .npz or .h5")


def load_models(cfg: JobConfig):
    """(epsilon, sigma, mu, spacing) of the job, in one float dtype."""
    m = cfg.model
    spacing = m["spacing"]
    if "builtin" in m:
        if isinstance(spacing, list):
            if len(set(spacing)) != 1:
                raise ConfigError(f"{cfg.path}: [model.spacing] the built-in model has one "
                                  f"spacing for both axes, got {spacing!r}")
            spacing = spacing[0]
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
    for key, a in zip(("epsilon", "sigma", "mu"), arrays):
        _check_material(cfg, key, a)
    dtype = np.result_type(*arrays, np.float32)
    spacing = tuple(float(v) for v in spacing) if isinstance(spacing, list) else \
        (float(spacing),) * cfg.ndim
    return (*(np.ascontiguousarray(a, dtype) for a in arrays), spacing)


def load_debye(cfg: JobConfig, shape: tuple, dtype):
    """``(delta_epsilon, tau)`` of ``[model.debye]`` as ``[n_poles, *shape]``
    arrays (validated: real, finite, delta_epsilon >= 0, tau > 0), or None
    without poles. ``shape`` and ``dtype`` are the model's: poles from numbers
    take its dtype, pole files join the model's dtype as epsilon, sigma and mu do
    (a float64 file makes every array float64)."""
    d = cfg.model.get("debye")
    if d is None:
        return None
    shape = tuple(shape)
    if "labels" in d:
        return tuple(a.astype(dtype) for a in _debye_layers(cfg, d, shape))
    out, files = [], [dtype]
    for name in ("delta_epsilon", "tau"):
        key, value = f"debye.{name}", d[name]
        if isinstance(value, list):  # one number per pole, the same in every cell
            a = np.array(value, float).reshape(-1, *([1] * len(shape))) * np.ones(shape)
        elif isinstance(value, (int, float)):
            a = np.full((1, *shape), float(value))
        else:
            a = np.asarray(_load_array(cfg, key, value, shape, member=name))
            files.append(a.dtype)
            if a.shape == shape:
                a = a[None]  # the model's shape: one pole
            elif a.ndim != len(shape) + 1 or a.shape[1:] != shape or a.shape[0] < 1:
                raise ConfigError(f"{cfg.path}: [model.{key}] must have the model's shape "
                                  f"{list(shape)} (one pole) or [n_poles, {', '.join(map(str, shape))}], "
                                  f"got {list(a.shape)}")
        _check_material(cfg, key, a)
        out.append(a)
    de, tau = out
    if de.shape[0] != tau.shape[0]:
        raise ConfigError(f"{cfg.path}: [model.debye] delta_epsilon has {de.shape[0]} pole(s) "
                          f"and tau {tau.shape[0]}; give both for every pole")
    dtype = np.result_type(*files)
    return de.astype(dtype), tau.astype(dtype)


def _debye_layers(cfg: JobConfig, d: dict, shape: tuple):
    from .._debye import Debye  # noqa: PLC0415

    where = f"{cfg.path}: [model.debye.labels]"
    labels = np.asarray(_load_array(cfg, "debye.labels", d["labels"], shape, member="labels"))
    if labels.dtype.kind not in "iu":
        raise ConfigError(f"{where} must be an integer array (a layer label per cell), got "
                          f"dtype {labels.dtype}")
    if labels.shape != shape:
        raise ConfigError(f"{where} must have the model's shape {list(shape)}, got "
                          f"{list(labels.shape)}")
    table = {}
    for label, entry in d["layers"].items():
        table[int(label)] = ((np.atleast_1d(np.asarray(entry["delta_epsilon"], float)),
                              np.atleast_1d(np.asarray(entry["tau"], float)))
                             if entry else None)
    missing = sorted(set(np.unique(labels).tolist()) - set(table))
    if missing:
        raise ConfigError(f"{cfg.path}: [model.debye.layers] labels {missing} of "
                          f"model.debye.labels have no entry; give each a table, e.g. "
                          f"{missing[0]} = {{}} for a layer without poles")
    if not any(entry is not None and entry[0].size for entry in table.values()):
        raise ConfigError(f"{cfg.path}: [model.debye.layers] no layer has a pole; remove "
                          "[model.debye] to run without dispersion")
    debye = Debye.from_layers(labels, table)
    return debye.delta_epsilon, debye.tau


def check_debye_step(cfg: JobConfig, tau: np.ndarray, spacing, dt: float, v_max: float,
                     stencil: int) -> None:
    """The internal time step (the CFL-limited step the solver takes) is below the
    shortest relaxation time, as the pole update needs."""
    from ..cfl import cfl_condition  # noqa: PLC0415

    inner = cfl_condition(spacing, dt, v_max, stencil)[0]
    tau_min = float(tau.min())
    if not inner < tau_min:
        raise ConfigError(f"{cfg.path}: [model.debye.tau] the shortest relaxation time "
                          f"{tau_min:.4g} s must exceed the time step {inner:.4g} s (wavelet.dt "
                          "or its default); use a smaller wavelet.dt, or drop poles faster than "
                          "the step (add their delta_epsilon to epsilon)")


def _check_material(cfg: JobConfig, key: str, a: np.ndarray) -> None:
    """A model array is real, finite, and positive (sigma: >= 0), before any run."""
    where = f"{cfg.path}: [model.{key}]"
    if a.dtype.kind not in "fiu":
        raise ConfigError(f"{where} must hold real numbers, got dtype {a.dtype}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ConfigError(f"{where} must be finite, but {int(bad.sum())} value(s) are NaN or "
                          f"infinite (first at cell {np.argwhere(bad)[0].tolist()})")
    low = (a < 0) if key in ("sigma", "debye.delta_epsilon") else (a <= 0)
    if low.any():
        what = {"epsilon": "relative permittivity, > 0 (1 in air; with [model.debye] the "
                           "infinite-frequency permittivity eps_inf)",
                "mu": "relative permeability, > 0 (1 in most soils)",
                "sigma": "conductivity in S/m, >= 0",
                "debye.delta_epsilon": "strength of each pole (relative), >= 0",
                "debye.tau": "relaxation time of each pole in seconds, > 0"}[key]
        raise ConfigError(f"{where} is the {what}; got {float(a.min())!r} at cell "
                          f"{np.argwhere(low)[0].tolist()}")


def config_digest(cfg: JobConfig) -> str:
    """SHA-256 of the configuration text (stored for reference; resume keys on
    :func:`data_digest`)."""
    return hashlib.sha256(cfg.text.encode()).hexdigest()


# What determines the receiver data, as a flat {key: value} of the validated
# configuration with its defaults filled in; execution-only keys ([parallel],
# [output], solver.n_threads, comments, key order) are not in it, so editing
# them does not stop a resume. Model arrays enter by a digest of their values
# (not their file names), so a rewritten model file is noticed.
DATA_KEYS_VERSION = 1


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return (f"sha256:{hashlib.sha256(a.tobytes()).hexdigest()[:32]} "
            f"{a.dtype} {list(a.shape)}")


def data_keys(cfg: JobConfig, payload: dict) -> dict:
    """The keys that determine the job's data, normalized (defaults filled in,
    numbers as floats, the time step as used)."""
    w, a = cfg.wavelet, cfg.acquisition
    keys = {
        "model.epsilon": _array_digest(payload["epsilon"]),
        "model.sigma": _array_digest(payload["sigma"]),
        "model.mu": _array_digest(payload["mu"]),
        "model.spacing": [float(v) for v in payload["spacing"]],
        "wavelet.type": w.get("type", "ricker"),
        "wavelet.frequency": float(w["frequency"]),
        "wavelet.nt": int(w["nt"]),
        "wavelet.dt": float(payload["dt"]),
        "wavelet.amplitude": float(w.get("amplitude", 1.0)),
        "acquisition.first_source": list(a["first_source"]),
        "acquisition.step": list(a.get("step", [0] * cfg.ndim)),
        "acquisition.shots": int(a["shots"]),
        "acquisition.receiver_offsets": [list(r) for r in a["receiver_offsets"]],
        "solver.system": payload["system"],
    }
    if payload.get("tau") is not None:  # only with poles: other jobs keep their digest
        keys["model.debye.delta_epsilon"] = _array_digest(payload["delta_epsilon"])
        keys["model.debye.tau"] = _array_digest(payload["tau"])
    for k, v in sorted(payload["options"].items()):
        if k != "n_threads":  # how fast, not what: every thread count gives the same data
            keys[f"solver.{k}"] = v
    keys["solver.stencil"] = int(keys["solver.stencil"])
    keys["solver.pml_width"] = list(pml_widths(keys["solver.pml_width"], cfg.ndim))
    return keys


def debye_metadata(cfg: JobConfig, payload: dict) -> dict | None:
    """What reproduces the job's poles (None without): their count, the
    ``[model.debye]`` table as given (file names resolved), the digests and the
    ranges of the arrays as used. Stored as the HDF5 attribute ``dispersion``."""
    if payload.get("tau") is None:
        return None
    d = dict(cfg.model["debye"])
    source = {}
    for key, value in d.items():
        if isinstance(value, str):
            value = str(cfg.resolve(value))
        elif isinstance(value, dict) and "file" in value:
            value = {**value, "file": str(cfg.resolve(value["file"]))}
        source[key] = value
    de, tau = payload["delta_epsilon"], payload["tau"]
    return {"law": "debye", "n_poles": int(tau.shape[0]),
            "epsilon": "eps_inf (the infinite-frequency permittivity)", "source": source,
            "delta_epsilon": _array_digest(de), "tau": _array_digest(tau),
            "delta_epsilon_range": [float(de.min()), float(de.max())],
            "tau_range": [float(tau.min()), float(tau.max())]}


def data_digest(keys: dict) -> str:
    text = json.dumps({"version": DATA_KEYS_VERSION, **keys}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _differences(old: dict, new: dict) -> str:
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            out.append(f"[{k}] {_short(old.get(k, '(absent)'))} in the file, "
                       f"{_short(new.get(k, '(absent)'))} now")
    return "; ".join(out) or "(no key differs: the file was written by another version)"


def _short(v) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:57] + "..."


class ShotFile:
    """The job's HDF5 output: ``receiver_data [shots, ..., nt]`` (one chunk per
    shot, NaN until written), ``done [shots]``, the geometry and metadata."""

    def __init__(self, path: Path, cfg: JobConfig, shot_shape: tuple, dtype, meta: dict,
                 sources: np.ndarray, receivers: np.ndarray, keys: dict,
                 arrays: dict | None = None):
        import h5py  # noqa: PLC0415 - optional: wavecore[hpc]

        self.path = Path(path)
        n = len(sources)
        digest = data_digest(keys)
        if self.path.exists() and not cfg.output.get("overwrite", False):
            self.file = h5py.File(self.path, "a")
            try:
                self._check_resume(cfg, digest, keys)
            except BaseException:
                self.file.close()
                raise
            return
        self.file = h5py.File(self.path, "w")
        f = self.file
        f.create_dataset("receiver_data", (n, *shot_shape), dtype=dtype,
                         chunks=(1, *shot_shape), fillvalue=np.nan)
        f.create_dataset("done", (n,), dtype=bool)
        f.create_dataset("source_location", data=sources)
        f.create_dataset("receiver_location", data=receivers)
        for name, value in (arrays or {}).items():  # e.g. the Debye poles as used
            f.create_dataset(name, data=value, compression="gzip")
        f.attrs.update({"data_sha256": digest, "data_keys": json.dumps(keys, sort_keys=True),
                        "config_sha256": config_digest(cfg), "config": cfg.text,
                        "wavecore_version": __version__, "units": "V/m (E), A/m (H)",
                        "layout": "receiver_data[shot, (component,) receiver, time]",
                        **{k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
                           for k, v in meta.items()}})
        f.flush()

    def _check_resume(self, cfg: JobConfig, digest: str, keys: dict) -> None:
        """Resume only a job with the same data keys; say which keys differ."""
        attrs = self.file.attrs
        where = f"{cfg.path}: [output.path] {str(self.path)!r}"
        if "data_sha256" not in attrs:  # written before wavecore keyed resume on the data
            if attrs.get("config_sha256") == config_digest(cfg):
                # The very same text: same data. Record the data keys from now on.
                attrs.update({"data_sha256": digest,
                              "data_keys": json.dumps(keys, sort_keys=True)})
                return
            raise ConfigError(
                f"{where} was written by an older wavecore, which recorded only a hash of the "
                "configuration's text, and that text differs from this file's, so whether "
                "the data would match cannot be told. Resume it with the original file "
                "(its text is in the HDF5 attribute 'config'), or set output.overwrite = true "
                "(the finished shots are discarded) or choose another path")
        if attrs["data_sha256"] != digest:
            old = json.loads(attrs.get("data_keys", "{}"))
            raise ConfigError(
                f"{where} holds a job with another configuration: {_differences(old, keys)}. "
                "Restore those keys to resume, or set output.overwrite = true (the finished "
                "shots are discarded) or choose another path")

    def finished(self) -> set:
        return set(np.flatnonzero(self.file["done"][...]).tolist())

    def write(self, shot: int, data: np.ndarray) -> None:
        self.file["receiver_data"][shot] = data
        self.file["done"][shot] = True
        self.file.flush()  # the shot survives a later crash

    def close(self) -> None:
        self.file.close()


def read_shots(path) -> dict:
    """The receiver data, the done flags, the geometry and the metadata of a job
    file (and ``debye_delta_epsilon``, ``debye_tau``: the poles of a job with them)."""
    import h5py  # noqa: PLC0415

    with h5py.File(path, "r") as f:
        out = {k: f[k][...] for k in ("receiver_data", "done", "source_location",
                                       "receiver_location")}
        if "debye" in f:
            out.update({f"debye_{k}": f["debye"][k][...] for k in f["debye"]})
        out["attrs"] = dict(f.attrs)
    return out
