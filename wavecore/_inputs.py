"""Validation and normalization of models and acquisition (any dimension).

Runs before any heavy work. Everything returned is a numpy array with the
run's dtype and a batch-flattened layout:

* models ``[B, *shape]`` (B = 1 for an unbatched model),
* source amplitudes ``[B * S, n_sources, nt]``,
* locations ``[B * S, n, ndim]`` (int64, model cell indices).

Shots may have different numbers of sources and receivers: a location of
``-1`` on every axis (:data:`PAD`) is a padding entry, and ragged nested
lists are padded with it. Padding entries are mapped here to a valid dummy
cell (cell 0 of the model) with a zero source amplitude, and their masks
(``Acquisition.source_padded`` / ``receiver_padded``) let the driver zero
their receiver data and the adjoint inputs and source gradients: every
backend runs them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import (UnitWarning, describe, finite, float_array, int_array, integer,
                      is_cupy_array, warn)
from .constants import C0

_AXIS_NAMES = {2: ("z", "x"), 3: ("z", "y", "x")}

#: The location of a padding source or receiver: -1 on every axis.
PAD = -1

#: Internal steps per user sample above which a run warns (UnitWarning) of a
#: likely unit mistake. A grid resolving 10 cells per wavelength at the slowest
#: speed carries frequencies whose Nyquist interval is at most
#: ``10 sqrt(ndim) sum|c_k| (v_max / v_min) / (2 * 0.99)`` internal steps:
#: about 100 for air and water (v_max / v_min = 9) in a 3-D order-8 model, the
#: extreme case. 1000 leaves a factor 10 above any run whose samples do not
#: alias what the grid can carry, while unit mistakes give 10^4 - 10^5
#: (absolute permittivity: 167,909; dt = 1e-6 s: 24,982).
STEP_RATIO_WARNING = 1000

#: Largest value of a whole epsilon (or mu) model that is taken for an
#: absolute permittivity (permeability) in F/m (H/m): relative values of real
#: media are >= 1, absolute ones ~1e-11 (EP0 = 8.85e-12) and ~1e-6 (MU0).
ABSOLUTE_LOOKING = 1e-3


@dataclass
class Models:
    """The validated arrays of a material law (``material.inputs`` -> ``[B, *shape]``),
    also as attributes (``models.epsilon``)."""

    arrays: dict  #: name -> [B, *shape], in the law's input order
    batched: bool
    dtype: np.dtype

    def __getattr__(self, name):
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def n_models(self) -> int:
        return next(iter(self.arrays.values())).shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return next(iter(self.arrays.values())).shape[1:]


@dataclass
class Acquisition:
    source_amplitude: np.ndarray | None  #: [B*S, Ns, nt] or None
    source_location: np.ndarray          #: [B*S, Ns, ndim] int64 (Ns may be 0)
    receiver_location: np.ndarray        #: [B*S, Nr, ndim] int64 (Nr may be 0)
    n_shots: int                         #: S, shots per model
    nt: int                              #: user samples
    source_shape: tuple = ()             #: shape of the user's source_amplitude
    source_padded: np.ndarray | None = None    #: [B*S, Ns] bool, None without padding
    receiver_padded: np.ndarray | None = None  #: [B*S, Nr] bool, None without padding


def validate_models(material, values, ndim: int, dispersion=None) -> Models:
    """Check the arrays of a material law (``values`` in ``material.inputs`` order,
    without its ``pole_inputs``, which come from ``dispersion``): same shape and
    dtype, finite, rank ``ndim`` or ``ndim + 1``, then the law's own bounds
    (``material.check_values``; e.g. ``epsilon > 0``, ``mu > 0``, ``sigma >= 0``).
    Pole inputs become ``[B, P, *shape]`` arrays of the models' dtype."""
    names = tuple(n for n in material.inputs if n not in material.pole_inputs)
    arrays = {}
    for name, value in zip(names, values, strict=True):
        arrays[name] = float_array(value, name)
    cupy_inputs = [n for n, v in zip(names, values) if is_cupy_array(v)]
    if cupy_inputs:  # float_array already raised; kept for clarity of intent
        raise TypeError(f"mixed numpy/CuPy inputs: {cupy_inputs}")
    first = names[0]
    eps = arrays[first]
    if eps.ndim not in (ndim, ndim + 1):
        axes = ", ".join(_AXIS_NAMES[ndim])
        raise ValueError(
            f"{first} must have shape [{axes}] or [B, {axes}] ({ndim} or {ndim + 1} dims), "
            f"got shape {eps.shape}")
    for name in names[1:]:
        if arrays[name].shape != eps.shape:
            raise ValueError(f"{name} must have the shape of {first} {eps.shape}, "
                             f"got {arrays[name].shape}")
        if arrays[name].dtype != eps.dtype:
            raise TypeError(f"{', '.join(names[:-1])} and {names[-1]} must share one dtype; "
                            f"{first} is {eps.dtype} but {name} is {arrays[name].dtype}")
    if min(eps.shape[-ndim:]) < 1:
        raise ValueError(f"the model must have at least one cell per axis, got {eps.shape}")
    for name, array in arrays.items():
        finite(array, name)
    material.check_values(arrays)
    batched = eps.ndim == ndim + 1
    if batched and eps.shape[0] < 1:
        raise ValueError("a batched model needs at least one model (B >= 1)")
    shaped = {n: np.ascontiguousarray(a if batched else a[None]) for n, a in arrays.items()}
    if material.pole_inputs:
        shaped.update(dispersion.arrays(eps.shape, eps.dtype, batched))
    return Models(shaped, batched, eps.dtype)


def _split_batch(array: np.ndarray, name: str, tail: int, models: Models) -> np.ndarray:
    """Return ``array`` as ``[B, S, *tail_dims]`` (shared shots are broadcast)."""
    if array.ndim == tail + 1:
        return np.broadcast_to(array[None], (models.n_models, *array.shape))
    if array.ndim == tail + 2:
        if not models.batched:
            raise ValueError(f"{name} has a model batch axis (shape {array.shape}) but the "
                             f"model is not batched")
        if array.shape[0] != models.n_models:
            raise ValueError(f"{name} has {array.shape[0]} models on its first axis, the "
                             f"model batch has {models.n_models}")
        return array
    expect = f"{tail + 1}" + (f" or {tail + 2}" if models.batched else "")
    raise ValueError(f"{name} must have {expect} dimensions, got shape {array.shape}")


def _pad_ragged(value, name: str, fill):
    """Nested lists whose innermost arrays differ in length along their
    source/receiver axis (axis -2: ``[n, ndim]`` locations, ``[n, nt]``
    amplitudes) -> one array, shorter shots padded with ``fill``. Anything
    else is returned unchanged."""
    if not isinstance(value, (list, tuple)):
        return value
    try:
        array = np.asarray(value)
        if array.dtype != object:
            return array
    except ValueError:  # numpy >= 1.24: "inhomogeneous shape"
        pass
    items = [_pad_ragged(item, f"{name}[{i}]", fill) for i, item in enumerate(value)]
    items = [np.asarray(item) for item in items]
    full = [a for a in items if a.size]
    if not full:
        return np.asarray(value)
    ref = full[0]
    if ref.ndim < 2:
        raise ValueError(f"{name} is a ragged list: its items must be arrays [n, ...] (one "
                         f"per shot), got {name}[0] of shape {ref.shape}")
    out = []
    for i, item in enumerate(items):
        if item.size == 0 and item.shape != ref.shape[:-2] + (0,) + ref.shape[-1:]:
            item = np.zeros(ref.shape[:-2] + (0,) + ref.shape[-1:], ref.dtype)  # [] shot
        if item.ndim != ref.ndim or item.shape[:-2] != ref.shape[:-2] \
                or item.shape[-1] != ref.shape[-1]:
            raise ValueError(
                f"{name}[{i}] has shape {item.shape} but another shot has {ref.shape}: only "
                "the number of sources or receivers (the axis before the last) may differ "
                "between shots")
        out.append(item.astype(np.result_type(ref.dtype, item.dtype), copy=False))
    n = max(a.shape[-2] for a in out)
    padded = [np.concatenate([a, np.full(a.shape[:-2] + (n - a.shape[-2],) + a.shape[-1:],
                                         fill, a.dtype)], axis=-2) for a in out]
    return np.stack(padded)


def _locations(value, name: str, models: Models, ndim: int):
    """Validated locations ``[B, S, n, ndim]`` (int64, padding entries mapped to
    cell 0) and the mask ``[B, S, n]`` of the padding entries."""
    loc = int_array(_pad_ragged(value, name, PAD), name)
    user_shape = loc.shape
    loc = _split_batch(loc, name, 2, models)
    if loc.shape[-1] != ndim:
        raise ValueError(f"{name} must end with an axis of {ndim} indices "
                         f"({', '.join(_AXIS_NAMES[ndim])}), got shape {user_shape}")
    padded = np.all(loc == PAD, axis=-1)
    shape = models.shape
    for axis in range(ndim):
        idx = loc[..., axis][~padded]
        if idx.size and (idx.min() < 0 or idx.max() >= shape[axis]):
            bad = idx[(idx < 0) | (idx >= shape[axis])].ravel()[0]
            raise ValueError(
                f"{name} index {int(bad)} on axis {_AXIS_NAMES[ndim][axis]} is outside the "
                f"model [0, {shape[axis] - 1}]; locations are cell indices of the model "
                f"(negative indices are not allowed, except {PAD} on every axis, which "
                "marks a padding source or receiver)")
    loc = loc.astype(np.int64)
    if padded.any():
        loc = np.where(padded[..., None], 0, loc)
    return loc, padded


def validate_acquisition(source_amplitude, source_location, receiver_location, nt,
                         models: Models, ndim: int, n_shots_hint: int | None = None
                         ) -> Acquisition:
    """Check sources, receivers and ``nt`` against the model.

    ``source_amplitude`` is ``[S, Ns, nt]`` (``[B, S, Ns, nt]`` per model for a
    batched model), ``source_location`` ``[S, Ns, ndim]`` and
    ``receiver_location`` ``[S, Nr, ndim]`` (or with the ``B`` axis). Sources
    and their locations go together; without sources ``nt`` is required.
    ``n_shots_hint`` gives S when neither sources nor receivers do (from an
    initial state).
    """
    if (source_amplitude is None) != (source_location is None):
        given = "source_amplitude" if source_amplitude is not None else "source_location"
        missing = "source_location" if source_amplitude is not None else "source_amplitude"
        raise ValueError(f"{given} was given without {missing}; pass both or neither")
    amp = src = src_pad = rec_pad = None
    user_amp_shape = ()
    if source_amplitude is not None:
        amp = float_array(_pad_ragged(source_amplitude, "source_amplitude", 0.0),
                          "source_amplitude")
        user_amp_shape = amp.shape
        if amp.dtype != models.dtype:
            raise TypeError(f"source_amplitude has dtype {amp.dtype} but the model is "
                            f"{models.dtype}; use one dtype")
        amp = _split_batch(amp, "source_amplitude", 2, models)
        finite(amp, "source_amplitude")
        src, src_pad = _locations(source_location, "source_location", models, ndim)
        if src.shape[:3] != amp.shape[:3]:
            user_src_shape = np.shape(_pad_ragged(source_location, "source_location", PAD))
            raise ValueError(
                f"source_location {user_src_shape} must match source_amplitude "
                f"{user_amp_shape} on the shot and source axes")
        if src_pad.any():  # padding sources inject nothing (a new array: not the user's)
            amp = np.where(src_pad[..., None], amp.dtype.type(0), amp)
    rec = None
    if receiver_location is not None:
        rec, rec_pad = _locations(receiver_location, "receiver_location", models, ndim)
    counts = {}
    if amp is not None:
        counts["source_amplitude"] = amp.shape[1]
    if rec is not None:
        counts["receiver_location"] = rec.shape[1]
    if len(set(counts.values())) > 1:
        raise ValueError(f"the number of shots differs between arrays: {counts}")
    if counts:
        n_shots = next(iter(counts.values()))
        if n_shots_hint is not None and n_shots_hint != n_shots:
            raise ValueError(f"initial_state has {n_shots_hint} shots but the acquisition "
                             f"has {n_shots}")
    else:
        n_shots = n_shots_hint or 1
    if n_shots < 1:
        raise ValueError("at least one shot is needed (the shot axis has length 0)")
    if nt is None:
        if amp is None:
            raise ValueError("nt is required when there is no source_amplitude")
        nt = amp.shape[-1]
    else:
        nt = integer(nt, "nt", minimum=1)
        if amp is not None and amp.shape[-1] != nt:
            raise ValueError(f"nt={nt} but source_amplitude has {amp.shape[-1]} samples; "
                             "they must agree (or omit nt)")
    if nt < 1:
        raise ValueError(f"source_amplitude must have at least one time sample, got {nt}")
    B = models.n_models
    flat = lambda a, tail: np.ascontiguousarray(a.reshape(B * n_shots, *tail))  # noqa: E731
    if amp is None:
        amp_flat = None
        src_flat = np.zeros((B * n_shots, 0, ndim), np.int64)
    else:
        amp_flat = flat(amp, amp.shape[2:])
        src_flat = flat(src, src.shape[2:])
    if rec is None:
        rec_flat = np.zeros((B * n_shots, 0, ndim), np.int64)
    else:
        rec_flat = flat(rec, rec.shape[2:])
    masks = [None if m is None or not m.any() else flat(m, m.shape[2:])
             for m in (src_pad, rec_pad)]
    return Acquisition(amp_flat, src_flat, rec_flat, n_shots, nt, tuple(user_amp_shape),
                       *masks)


def check_units(material, models: Models, spacing, dt: float, max_vel: float,
                max_vel_given: bool, step_ratio: int) -> None:
    """Warn (:class:`UnitWarning`, before any work) when the arguments look like
    a unit mistake: the material law's hints (``material.unit_hints``; e.g. a
    whole epsilon or mu model below :data:`ABSOLUTE_LOOKING`, absolute instead of
    relative values), or more than
    :data:`STEP_RATIO_WARNING` internal steps per sample, with the likely cause."""
    hints = material.unit_hints(models.arrays, ABSOLUTE_LOOKING)
    if step_ratio <= STEP_RATIO_WARNING and not hints:
        return
    if dt > 1e-7:
        hints.append(f"dt = {dt:.3g} s is long for radar (sample intervals are 1e-12 to "
                     "1e-9 s): is it in seconds (0.1 ns is 1e-10)?")
    if min(spacing) < 1e-4:
        hints.append(f"grid_spacing {tuple(float(h) for h in spacing)} is below 0.1 mm: is "
                     "it in metres (1 cm is 0.01)?")
    if max_vel_given and max_vel > C0 * 1.000001:
        hints.append(f"max_vel = {max_vel:.3g} m/s is faster than light ({C0:.6g} m/s)")
    what = (f"dt = {dt:.3g} s needs {step_ratio:,} internal steps per sample (more than "
            f"{STEP_RATIO_WARNING:,}: a run of nt samples takes nt x {step_ratio:,} steps)"
            if step_ratio > STEP_RATIO_WARNING else
            f"the run takes {step_ratio:,} internal steps per sample")
    warn(f"{what}; this looks like a unit mistake: " + "; ".join(
        hints or [f"check the units: {material.units}, grid_spacing "
                  f"{tuple(float(h) for h in spacing)} in metres, dt in seconds (a long "
                  "run with few output samples is fine: silence this with "
                  "warnings.filterwarnings('ignore', category=wavecore.UnitWarning))"]),
         UnitWarning)


def check_callback(callback, name: str):
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable or None, got {describe(callback)}")
    return callback
