"""Validation and normalization of models and acquisition (any dimension).

Runs before any heavy work. Everything returned is a numpy array with the
run's dtype and a batch-flattened layout:

* models ``[B, *shape]`` (B = 1 for an unbatched model),
* source amplitudes ``[B * S, n_sources, nt]``,
* locations ``[B * S, n, ndim]`` (int64, model cell indices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import describe, finite, float_array, int_array, integer, is_cupy_array

_AXIS_NAMES = {2: ("z", "x"), 3: ("z", "y", "x")}


@dataclass
class Models:
    epsilon: np.ndarray  #: [B, *shape]
    sigma: np.ndarray
    mu: np.ndarray
    batched: bool
    dtype: np.dtype

    @property
    def n_models(self) -> int:
        return self.epsilon.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.epsilon.shape[1:]


@dataclass
class Acquisition:
    source_amplitude: np.ndarray | None  #: [B*S, Ns, nt] or None
    source_location: np.ndarray          #: [B*S, Ns, ndim] int64 (Ns may be 0)
    receiver_location: np.ndarray        #: [B*S, Nr, ndim] int64 (Nr may be 0)
    n_shots: int                         #: S, shots per model
    nt: int                              #: user samples
    source_shape: tuple = ()             #: shape of the user's source_amplitude


def validate_models(epsilon, sigma, mu, ndim: int) -> Models:
    """Check the three material arrays: same shape and dtype, finite,
    ``epsilon > 0``, ``mu > 0``, ``sigma >= 0``; rank ``ndim`` or ``ndim + 1``."""
    arrays = {}
    for name, value in (("epsilon", epsilon), ("sigma", sigma), ("mu", mu)):
        arrays[name] = float_array(value, name)
    cupy_inputs = [n for n, v in (("epsilon", epsilon), ("sigma", sigma), ("mu", mu))
                   if is_cupy_array(v)]
    if cupy_inputs:  # float_array already raised; kept for clarity of intent
        raise TypeError(f"mixed numpy/CuPy inputs: {cupy_inputs}")
    eps = arrays["epsilon"]
    if eps.ndim not in (ndim, ndim + 1):
        axes = ", ".join(_AXIS_NAMES[ndim])
        raise ValueError(
            f"epsilon must have shape [{axes}] or [B, {axes}] ({ndim} or {ndim + 1} dims), "
            f"got shape {eps.shape}")
    for name in ("sigma", "mu"):
        if arrays[name].shape != eps.shape:
            raise ValueError(f"{name} must have the shape of epsilon {eps.shape}, "
                             f"got {arrays[name].shape}")
        if arrays[name].dtype != eps.dtype:
            raise TypeError(f"epsilon, sigma and mu must share one dtype; epsilon is "
                            f"{eps.dtype} but {name} is {arrays[name].dtype}")
    if min(eps.shape[-ndim:]) < 1:
        raise ValueError(f"the model must have at least one cell per axis, got {eps.shape}")
    for name, array in arrays.items():
        finite(array, name)
    if np.any(arrays["epsilon"] <= 0):
        raise ValueError(f"epsilon (relative permittivity) must be > 0 everywhere, "
                         f"min is {arrays['epsilon'].min()!r}")
    if np.any(arrays["mu"] <= 0):
        raise ValueError(f"mu (relative permeability) must be > 0 everywhere, "
                         f"min is {arrays['mu'].min()!r}")
    if np.any(arrays["sigma"] < 0):
        raise ValueError(f"sigma (conductivity, S/m) must be >= 0 everywhere, "
                         f"min is {arrays['sigma'].min()!r}")
    batched = eps.ndim == ndim + 1
    if batched and eps.shape[0] < 1:
        raise ValueError("a batched model needs at least one model (B >= 1)")
    shaped = {n: np.ascontiguousarray(a if batched else a[None]) for n, a in arrays.items()}
    return Models(shaped["epsilon"], shaped["sigma"], shaped["mu"], batched, eps.dtype)


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


def _locations(value, name: str, models: Models, ndim: int) -> np.ndarray:
    loc = int_array(value, name)
    loc = _split_batch(loc, name, 2, models)
    if loc.shape[-1] != ndim:
        raise ValueError(f"{name} must end with an axis of {ndim} indices "
                         f"({', '.join(_AXIS_NAMES[ndim])}), got shape {loc.shape}")
    shape = models.shape
    for axis in range(ndim):
        idx = loc[..., axis]
        if idx.size and (idx.min() < 0 or idx.max() >= shape[axis]):
            bad = idx[(idx < 0) | (idx >= shape[axis])].ravel()[0]
            raise ValueError(
                f"{name} index {int(bad)} on axis {_AXIS_NAMES[ndim][axis]} is outside the "
                f"model [0, {shape[axis] - 1}]; locations are cell indices of the model "
                "(negative indices are not allowed)")
    return loc.astype(np.int64)


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
    amp = src = None
    if source_amplitude is not None:
        amp = float_array(source_amplitude, "source_amplitude")
        if amp.dtype != models.dtype:
            raise TypeError(f"source_amplitude has dtype {amp.dtype} but the model is "
                            f"{models.dtype}; use one dtype")
        amp = _split_batch(amp, "source_amplitude", 2, models)
        finite(amp, "source_amplitude")
        src = _locations(source_location, "source_location", models, ndim)
        if src.shape[:3] != amp.shape[:3]:
            raise ValueError(
                f"source_location {src.shape} must match source_amplitude {amp.shape} on the "
                "shot and source axes")
    rec = None
    if receiver_location is not None:
        rec = _locations(receiver_location, "receiver_location", models, ndim)
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
    shape = tuple(np.shape(source_amplitude)) if source_amplitude is not None else ()
    return Acquisition(amp_flat, src_flat, rec_flat, n_shots, nt, shape)


def check_callback(callback, name: str):
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable or None, got {describe(callback)}")
    return callback
