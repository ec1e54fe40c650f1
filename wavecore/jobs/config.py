"""Job configuration (TOML), validated before anything runs.

Every error names the file and the key. A configuration for a 2-D
common-offset line survey::

    [model]
    builtin = "buried_pipe_and_void"   # or epsilon/sigma/mu: a number, "file.npy",
    spacing = 0.02                     # {file = "m.npz", key = "eps"} or
                                       # {file = "m.h5", dataset = "eps"}
    [wavelet]
    frequency = 4e8                    # Ricker peak (Hz)
    nt = 300
    dt = 4e-11                         # seconds (default: 0.9 x the stencil's CFL limit)

    [acquisition]                      # a line of shots: one source each, receivers
    first_source = [9, 10]             # at the source + each offset (cells)
    step = [0, 4]
    shots = 20
    receiver_offsets = [[0, 5]]

    [solver]
    system = "tm2d"
    stencil = 4
    pml_width = 20

Debye poles (``epsilon`` is then the infinite-frequency permittivity
eps_inf), as arrays given like epsilon (``[n_poles, *model_shape]``, or the
model's shape, a number or a list of numbers: one pole each, the same in
every cell)::

    [model.debye]
    delta_epsilon = "de.npy"
    tau = 1e-9

or per layer of an integer label array (``wavecore.Debye.from_layers``)::

    [model.debye]
    labels = "labels.npy"
    [model.debye.layers]
    0 = {}                                   # no poles
    1 = {delta_epsilon = [6.0], tau = [1e-9]}

    [output]
    path = "survey.h5"

    [parallel]
    executor = "processes"             # "processes" (default), "serial", "dask" or "mpi"
    workers = 2
    shots_per_task = 2
"""

from __future__ import annotations

import errno
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import _checks as checks
from ..state import M3D_FIELDS

SECTIONS = {
    "model": {"builtin", "epsilon", "sigma", "mu", "shape", "spacing", "debye"},
    "wavelet": {"type", "frequency", "nt", "dt", "amplitude"},
    "acquisition": {"first_source", "step", "shots", "receiver_offsets"},
    "solver": {"system", "stencil", "pml_width", "device", "n_threads", "source_component",
               "receiver_component"},
    "output": {"path", "overwrite"},
    "parallel": {"executor", "workers", "shots_per_task", "retries", "scheduler"},
    "inversion": {"observed", "parameters", "method", "iterations", "misfit", "frequencies",
                  "bounds", "batch_size", "smoothing", "fixed_rows", "checkpoint_dir", "seed",
                  "storage_mode", "storage_compression", "sampling_interval",
                  "cg_iterations"},
}
# [model.debye]: pole arrays (delta_epsilon and tau) or per layer (labels and layers).
DEBYE_ARRAYS = ("delta_epsilon", "tau")
DEBYE_LAYERED = ("labels", "layers")
# What the pole parameters are, for the messages (and their lower limits).
POLE_MEANING = {"delta_epsilon": "the strength of each pole (relative), >= 0",
                "tau": "the relaxation time of each pole in seconds, > 0"}
MODEL_PARAMETERS = ("epsilon", "sigma")
POLE_PARAMETERS = DEBYE_ARRAYS
REQUIRED = {"model": {"spacing"}, "wavelet": {"frequency", "nt"},
            "acquisition": {"first_source", "shots", "receiver_offsets"},
            "output": {"path"}}
# Keys whose values must be TOML booleans (true/false); a string such as
# "false" is an error, never truthy.
BOOLEANS = {"output": {"overwrite"}}
DEVICES = ("cpu", "cuda", "cuda-emulated")
EXECUTORS = ("processes", "serial", "dask", "mpi")
DEFAULT_EXECUTOR = "processes"


class ConfigError(ValueError):
    """An invalid job configuration; the message names the file and the key."""


@dataclass
class JobConfig:
    path: Path                 # the configuration file
    text: str                  # its text (stored with the output)
    model: dict
    wavelet: dict
    acquisition: dict
    solver: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    parallel: dict = field(default_factory=dict)
    inversion: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return 3 if self.solver.get("system", "tm2d") == "maxwell3d" else 2

    def resolve(self, value) -> Path:
        """A path from the configuration, relative to the configuration's folder."""
        p = Path(value)
        return p if p.is_absolute() else self.path.parent / p


def _fail(path: Path, key: str, message: str):
    raise ConfigError(f"{path}: [{key}] {message}")


def _number(path, key, value, *, integer=False, minimum=None, positive=False):
    """The library's own checks, their errors naming the file and the key."""
    try:
        if integer:
            return checks.integer(value, f"[{key}]", minimum)
        if positive:
            return checks.positive_float(value, f"[{key}]")
        if minimum == 0:
            return checks.nonnegative_float(value, f"[{key}]")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"[{key}] must be a number, got {value!r}")
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _cells(path, key, value, ndim, *, rows=False):
    """A cell [z, (y,) x] (or a list of them with rows=True) of integers."""
    items = value if rows else [value]
    if not isinstance(items, list) or (rows and not items):
        _fail(path, key, f"must be a {'non-empty list of ' if rows else ''}"
                         f"[{'z, y, x' if ndim == 3 else 'z, x'}] cell"
                         f"{'s' if rows else ''}, got {value!r}")
    for item in items:
        if (not isinstance(item, list) or len(item) != ndim
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)):
            _fail(path, key, f"must be {ndim} integers per cell, got {item!r}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _array_source(cfg: JobConfig, key: str, value, limit: dict, *, per_pole=False) -> None:
    """A model array given as a number (``limit``: the _number check), a file
    name, or {file, key} / {file, dataset}; with ``per_pole`` also a non-empty
    list of numbers (one pole each)."""
    p = cfg.path
    if _is_number(value):
        _number(p, key, value, **limit)
    elif per_pole and isinstance(value, list):
        if not value:
            _fail(p, key, "must not be an empty list (give one value per pole)")
        for item in value:
            _number(p, key, item, **limit)
    elif isinstance(value, str):
        if not cfg.resolve(value).exists():
            _fail(p, key, f"file {str(cfg.resolve(value))!r} does not exist")
    elif isinstance(value, dict):
        if "file" not in value or not (set(value) - {"file"}) <= {"key", "dataset"}:
            _fail(p, key, "must be {file = ..., key = ...} (.npz) or "
                          "{file = ..., dataset = ...} (HDF5)")
        if not cfg.resolve(value["file"]).exists():
            _fail(p, f"{key}.file", f"file {str(cfg.resolve(value['file']))!r} does not exist")
    else:
        _fail(p, key, f"must be a number, {'a list of numbers (one per pole), ' if per_pole else ''}"
                      f"a file name or a table, got {value!r}")


def _pole_limit(name: str) -> dict:
    return {"minimum": 0} if name == "delta_epsilon" else {"positive": True}


def _check_debye(cfg: JobConfig) -> None:
    """[model.debye]: delta_epsilon and tau (arrays), or labels and layers."""
    p, d = cfg.path, cfg.model["debye"]
    forms = "delta_epsilon and tau (pole arrays), or labels and [model.debye.layers] (per layer)"
    if not isinstance(d, dict):
        _fail(p, "model.debye", f"must be a table with {forms}, got {d!r}")
    for key in d:
        if key not in (*DEBYE_ARRAYS, *DEBYE_LAYERED):
            _fail(p, f"model.debye.{key}", f"unknown key; expected one of "
                                           f"{sorted((*DEBYE_ARRAYS, *DEBYE_LAYERED))}")
    arrays, layered = set(DEBYE_ARRAYS) & set(d), set(DEBYE_LAYERED) & set(d)
    if arrays and layered:
        _fail(p, "model.debye", f"give {forms}, not both (got {sorted(d)})")
    if not arrays and not layered:
        _fail(p, "model.debye", f"needs {forms}")
    for key in sorted(set(DEBYE_ARRAYS if arrays else DEBYE_LAYERED) - set(d)):
        _fail(p, f"model.debye.{key}", "is required with model.debye."
                                       f"{sorted(arrays or layered)[0]}")
    if arrays:
        for name in DEBYE_ARRAYS:
            _array_source(cfg, f"model.debye.{name}", d[name], _pole_limit(name),
                          per_pole=True)
        return
    _array_source(cfg, "model.debye.labels", d["labels"], {}, per_pole=False)
    if _is_number(d["labels"]):
        _fail(p, "model.debye.labels", "must be an integer array of the model's shape (a "
                                       f"file or a table), got {d['labels']!r}")
    layers = d["layers"]
    if not isinstance(layers, dict) or not layers:
        _fail(p, "model.debye.layers", "must be a table of label = {delta_epsilon = [...], "
                                       f"tau = [...]}} (or {{}}: no poles), got {layers!r}")
    for label, entry in layers.items():
        key = f"model.debye.layers.{label}"
        try:
            int(label)
        except ValueError:
            _fail(p, key, "unknown label: the layers' keys are the integer labels of "
                          "model.debye.labels")
        if not isinstance(entry, dict):
            _fail(p, key, "must be a table {delta_epsilon = [...], tau = [...]} (or {}: no "
                          f"poles), got {entry!r}")
        for name in entry:
            if name not in DEBYE_ARRAYS:
                _fail(p, f"{key}.{name}", f"unknown key; expected one of {list(DEBYE_ARRAYS)}")
        if entry and set(entry) != set(DEBYE_ARRAYS):
            _fail(p, key, "needs both delta_epsilon and tau (or neither: no poles)")
        lengths = {}
        for name, value in entry.items():
            values = value if isinstance(value, list) else [value]
            if not all(_is_number(v) for v in values):
                _fail(p, f"{key}.{name}", f"must be a number or a list of numbers, "
                                          f"{POLE_MEANING[name]}, got {value!r}")
            for v in values:
                _number(p, f"{key}.{name}", v, **_pole_limit(name))
            lengths[name] = len(values)
        if entry and lengths["delta_epsilon"] != lengths["tau"]:
            _fail(p, key, f"delta_epsilon has {lengths['delta_epsilon']} pole(s) and tau "
                          f"{lengths['tau']}; give one of each per pole")


def load_config(path) -> JobConfig:
    """Read and validate a job file; raise :class:`ConfigError` naming the key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for section in data:
        if section not in SECTIONS:
            _fail(path, section, f"unknown section; expected {sorted(SECTIONS)}")
        if not isinstance(data[section], dict):
            _fail(path, section, "must be a table")
        for key in data[section]:
            if key not in SECTIONS[section]:
                _fail(path, f"{section}.{key}",
                      f"unknown key; expected one of {sorted(SECTIONS[section])}")
    for section, keys in REQUIRED.items():
        for key in sorted(keys - set(data.get(section, {}))):
            _fail(path, f"{section}.{key}", "is required")
    for section, keys in BOOLEANS.items():
        for key in sorted(keys & set(data.get(section, {}))):
            if not isinstance(data[section][key], bool):
                _fail(path, f"{section}.{key}", "must be true or false (a TOML boolean, "
                                                f"unquoted), got {data[section][key]!r}")
    cfg = JobConfig(path=path, text=text, **{s: dict(data.get(s, {})) for s in SECTIONS})
    _check(cfg)
    return cfg


def _check(cfg: JobConfig) -> None:
    p = cfg.path
    s = cfg.solver
    if s.get("system", "tm2d") not in ("tm2d", "maxwell3d"):
        _fail(p, "solver.system", f"must be 'tm2d' or 'maxwell3d', got {s['system']!r}")
    if "stencil" in s:
        try:
            checks.stencil_order(s["stencil"], (2, 4, 6, 8))
        except (TypeError, ValueError) as exc:
            _fail(p, "solver.stencil", str(exc).removeprefix("stencil "))
    if "n_threads" in s:
        _number(p, "solver.n_threads", s["n_threads"], integer=True, minimum=1)
    if "pml_width" in s:
        try:
            checks.pml_widths(s["pml_width"], cfg.ndim)
        except (TypeError, ValueError) as exc:
            _fail(p, "solver.pml_width", f"{str(exc).removeprefix('pml_width ')} (cells: an "
                                         "integer >= 0, or one per axis, or two per axis)")
    if s.get("device", "cpu") not in DEVICES:
        _fail(p, "solver.device", f"must be one of {DEVICES}, got {s['device']!r}")
    for key, allowed in (("source_component", ("ex", "ey", "ez")),
                         ("receiver_component", M3D_FIELDS)):
        if key not in s:
            continue
        if cfg.ndim != 3:
            _fail(p, f"solver.{key}", "is a maxwell3d option (solver.system = 'maxwell3d')")
        values = s[key] if isinstance(s[key], list) and key == "receiver_component" else [s[key]]
        if not values or not all(isinstance(v, str) and v in allowed for v in values):
            what = "one or a list of" if key == "receiver_component" else "one of"
            _fail(p, f"solver.{key}", f"must be {what} {allowed}, got {s[key]!r}")
    m = cfg.model
    if "builtin" in m:
        if m["builtin"] != "buried_pipe_and_void":
            _fail(p, "model.builtin", f"unknown model {m['builtin']!r}; available: "
                                      "'buried_pipe_and_void'")
        if cfg.ndim != 2:
            _fail(p, "model.builtin", "is a 2-D model (solver.system = 'tm2d')")
    else:
        for key in ("epsilon", "sigma", "mu"):
            if key not in m:
                _fail(p, f"model.{key}", "is required without model.builtin")
            if _is_number(m[key]) and "shape" not in m:
                _fail(p, "model.shape", f"is required when model.{key} is a number")
            _array_source(cfg, f"model.{key}", m[key],
                          {"minimum": 0} if key == "sigma" else {"positive": True})
        if "shape" in m:
            _cells(p, "model.shape", m["shape"], cfg.ndim)
    if "debye" in m:
        _check_debye(cfg)
    try:
        checks.spacing(m["spacing"], "[model.spacing]", cfg.ndim)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: {exc} (metres)") from None
    w = cfg.wavelet
    if w.get("type", "ricker") != "ricker":
        _fail(p, "wavelet.type", f"only 'ricker' is available, got {w['type']!r}")
    _number(p, "wavelet.frequency", w["frequency"], positive=True)
    _number(p, "wavelet.nt", w["nt"], integer=True, minimum=1)
    if "dt" in w:
        _number(p, "wavelet.dt", w["dt"], positive=True)
    if "amplitude" in w:
        _number(p, "wavelet.amplitude", w["amplitude"])
    a = cfg.acquisition
    _cells(p, "acquisition.first_source", a["first_source"], cfg.ndim)
    _cells(p, "acquisition.step", a.get("step", [0] * cfg.ndim), cfg.ndim)
    _number(p, "acquisition.shots", a["shots"], integer=True, minimum=1)
    _cells(p, "acquisition.receiver_offsets", a["receiver_offsets"], cfg.ndim, rows=True)
    par = cfg.parallel
    if par.get("executor", DEFAULT_EXECUTOR) not in EXECUTORS:
        _fail(p, "parallel.executor", f"must be one of {EXECUTORS}, got {par['executor']!r}")
    for key in ("workers", "shots_per_task"):
        if key in par:
            _number(p, f"parallel.{key}", par[key], integer=True, minimum=1)
    if "retries" in par:
        _number(p, "parallel.retries", par["retries"], integer=True, minimum=0)
    if not isinstance(cfg.output["path"], str) or not cfg.output["path"]:
        _fail(p, "output.path", f"must be a file name, got {cfg.output['path']!r}")
    if cfg.inversion:
        _check_inversion(cfg)
    check_output(cfg, hdf5=not cfg.inversion)


def check_output(cfg: JobConfig, *, hdf5: bool) -> None:
    """The output path can be written: its folder exists and accepts files (a
    probe file is created and removed), it is not a folder, and an existing
    file to resume (``hdf5``, without ``output.overwrite``) is an HDF5 file."""
    p = cfg.path
    out = cfg.resolve(cfg.output["path"])
    parent = out.parent
    if not parent.is_dir():
        _fail(p, "output.path", f"{str(out)!r}: the folder {str(parent)!r} does not exist"
                                f"{'' if not parent.exists() else ' (it is not a folder)'}; "
                                "create it first")
    if out.is_dir():
        _fail(p, "output.path", f"{str(out)!r} is a folder; give a file name")
    if out.exists():
        if hdf5 and not cfg.output.get("overwrite", False) and not _is_hdf5(out):
            _fail(p, "output.path", f"{str(out)!r} exists and is not an HDF5 file (so it holds "
                                    "no job to resume); set output.overwrite = true to "
                                    "replace it, or choose another path")
        try:
            os.close(os.open(out, os.O_RDWR))
        except OSError as exc:
            _fail(p, "output.path", f"{str(out)!r} cannot be written: {_reason(exc)}")
        return
    probe = parent / f".wavecore-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        _fail(p, "output.path", f"{str(out)!r} cannot be created: {_reason(exc)}")
    os.unlink(probe)


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:  # the superblock signature, at 0, 512, 1024, ...
        for offset in (0, 512, 1024, 2048, 4096):
            f.seek(offset)
            if f.read(8) == b"\x89HDF\r\n\x1a\n":
                return True
    return False


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return f"the folder is on a read-only file system ({exc.strerror})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({exc.strerror})"
    return exc.strerror or str(exc)


def _check_inversion(cfg: JobConfig) -> None:
    p, inv = cfg.path, cfg.inversion
    if "observed" not in inv:
        _fail(p, "inversion.observed", "is required (the HDF5 file of `wavecore forward`)")
    if not cfg.resolve(inv["observed"]).exists():
        _fail(p, "inversion.observed", f"file {str(cfg.resolve(inv['observed']))!r} "
                                       "does not exist")
    params = inv.get("parameters", list(MODEL_PARAMETERS))
    allowed = (*MODEL_PARAMETERS, *POLE_PARAMETERS)
    if (not isinstance(params, list) or not params or not all(isinstance(v, str) for v in params)
            or not set(params) <= set(allowed) or len(set(params)) != len(params)):
        _fail(p, "inversion.parameters", f"must list some of {allowed} (each once; "
                                         f"delta_epsilon and tau need [model.debye]), got "
                                         f"{params!r}")
    poles = [v for v in params if v in POLE_PARAMETERS]
    if poles and "debye" not in cfg.model:
        _fail(p, "inversion.parameters", f"{poles} are Debye pole parameters, but the model "
                                         "has no poles: add [model.debye] (the starting poles)")
    method = inv.get("method", "lbfgs")
    newton = ("gauss-newton", "truncated-newton")
    if method not in ("lbfgs", "sd", "nlcg", *newton):
        _fail(p, "inversion.method", f"must be 'lbfgs', 'sd', 'nlcg', 'gauss-newton' or "
                                     f"'truncated-newton', got {inv['method']!r}")
    if method in newton:
        if cfg.parallel.get("executor", "serial") != "serial":  # default: serial here
            _fail(p, "parallel.executor", f"must be 'serial' with inversion.method = "
                                          f"{method!r} (its inner products reuse one "
                                          "forward run's snapshots in this process)")
        if inv.get("smoothing", 0):
            _fail(p, "inversion.smoothing", f"must be 0 with inversion.method = {method!r}")
    elif "cg_iterations" in inv:
        _fail(p, "inversion.cg_iterations", "only acts with inversion.method = "
                                            "'gauss-newton' or 'truncated-newton'")
    if "cg_iterations" in inv:
        _number(p, "inversion.cg_iterations", inv["cg_iterations"], integer=True, minimum=1)
    if inv.get("misfit", "l2") not in ("l2", "ncc", "huber"):
        _fail(p, "inversion.misfit", f"must be 'l2', 'ncc' or 'huber', got {inv['misfit']!r}")
    for key, minimum in (("iterations", 1), ("batch_size", 1), ("fixed_rows", 0), ("seed", 0)):
        if key in inv:
            _number(p, f"inversion.{key}", inv[key], integer=True, minimum=minimum)
    if inv.get("storage_mode", "auto") not in ("auto", "device", "cpu", "disk", "checkpoint"):
        _fail(p, "inversion.storage_mode", "must be 'auto', 'device', 'cpu', 'disk' or "
                                           f"'checkpoint', got {inv['storage_mode']!r}")
    if inv.get("storage_compression", "none") not in ("none", "bf16"):
        _fail(p, "inversion.storage_compression", "must be 'none' or 'bf16', got "
                                                  f"{inv['storage_compression']!r}")
    if "sampling_interval" in inv:
        _number(p, "inversion.sampling_interval", inv["sampling_interval"], integer=True,
                minimum=1)
    if "smoothing" in inv:
        _number(p, "inversion.smoothing", inv["smoothing"], minimum=0)
    freqs = inv.get("frequencies", [])
    if not isinstance(freqs, list) or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in freqs):
        _fail(p, "inversion.frequencies", f"must be a list of corner frequencies in Hz "
                                          f"(low to high; the full band follows), got {freqs!r}")
    bounds = inv.get("bounds", {})
    if not isinstance(bounds, dict) or not set(bounds) <= set(allowed):
        _fail(p, "inversion.bounds", f"must be a table of [lo, hi] pairs of {allowed}, e.g. "
                                     f"{{epsilon = [1, 25], tau = [1e-10, 1e-8]}}, got {bounds!r}")
    for key, pair in bounds.items():
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(_is_number(v) for v in pair) or pair[0] >= pair[1]):
            _fail(p, f"inversion.bounds.{key}", f"must be [lo, hi] with lo < hi, got {pair!r}")
        if key == "delta_epsilon" and pair[0] < 0:
            _fail(p, "inversion.bounds.delta_epsilon", f"must have lo >= 0 (the strength of a "
                                                       f"pole), got {pair!r}")
        if key == "tau" and pair[0] <= 0:
            _fail(p, "inversion.bounds.tau", f"must have lo > 0 (relaxation times in seconds, "
                                             f"above the time step; tau is inverted in log "
                                             f"space), got {pair!r}")
