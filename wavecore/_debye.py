"""Multi-pole Debye media: ``wavecore.Debye`` and its material law.

A Debye medium has the relative permittivity

    eps(w) = eps_inf + sum_p delta_epsilon_p / (1 + j w tau_p)

(``e^{+j w t}``), so ``epsilon`` of a run with ``dispersion=Debye(...)`` is the
infinite-frequency permittivity ``eps_inf``. Each pole's polarization follows
``tau_p dP_p/dt + P_p = eps0 delta_epsilon_p E``, discretized by the trapezoidal
rule (TIDE 0.1.2's scheme, DESIGN.md section 11); the cell physics is in
``wavecore/_csrc/wc_debye.h`` and the step is described in
docs/dispersive-media.md. This module makes the coefficients of that step from
the user's arrays and turns the kernels' coefficient gradients back into
gradients of ``epsilon, sigma, delta_epsilon, tau`` (float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ._checks import describe, finite, float_array
from ._materials import GradientPath, NonDispersive, wide
from .constants import EP0, MU0

__all__ = ["Debye", "DebyeLaw", "pole_arrays"]


def pole_arrays(dispersion) -> tuple:
    """``(delta_epsilon, tau)`` of a dispersion given to an adapter (torch, JAX):
    an object with those attributes (``wavecore.Debye``, TIDE's
    ``DebyeDispersion``) or a ``(delta_epsilon, tau)`` pair of arrays, unconverted."""
    if hasattr(dispersion, "delta_epsilon") and hasattr(dispersion, "tau"):
        return dispersion.delta_epsilon, dispersion.tau
    if isinstance(dispersion, (tuple, list)) and len(dispersion) == 2:
        return tuple(dispersion)
    raise TypeError(f"dispersion must be a wavecore.Debye, an object with delta_epsilon and "
                    f"tau, or a (delta_epsilon, tau) pair, got {describe(dispersion)}")


@dataclass(frozen=True, eq=False)
class Debye:
    """Debye poles of a medium: ``delta_epsilon`` (relative, >= 0) and ``tau``
    (relaxation times in seconds, > 0), arrays ``[n_poles, *model_shape]``.

    ``model_shape`` is the shape of ``epsilon`` (with the leading batch axis of
    batched models, so poles may differ from model to model). A scalar or a
    model-shaped array is one pole; a sequence of scalars (shape ``[P]``) is P
    poles that are the same in every cell. Pass it as ``dispersion=`` to
    :func:`wavecore.tm2d` or :func:`wavecore.maxwell3d`; ``epsilon`` is then
    the infinite-frequency permittivity.

    >>> soil = wavecore.Debye(delta_epsilon=[6.0, 2.0], tau=[1e-9, 1e-10])
    """

    delta_epsilon: object
    tau: object

    def __post_init__(self):
        de = float_array(self.delta_epsilon, "delta_epsilon")
        tau = float_array(self.tau, "tau")
        if tau.size == 0:
            raise ValueError("a Debye medium needs at least one pole (tau is empty)")
        if de.shape != tau.shape:
            raise ValueError(f"delta_epsilon and tau must have one shape, got {de.shape} "
                             f"and {tau.shape}")
        finite(de, "delta_epsilon")
        finite(tau, "tau")
        if np.any(de < 0):
            raise ValueError(f"delta_epsilon (relative, the strength of each pole) must be "
                             f">= 0 everywhere, min is {float(de.min()):g}")
        if np.any(tau <= 0):
            raise ValueError(f"tau (relaxation times, seconds) must be > 0 everywhere, min "
                             f"is {float(tau.min()):g}")
        object.__setattr__(self, "delta_epsilon", de)
        object.__setattr__(self, "tau", tau)

    @classmethod
    def from_layers(cls, labels, poles) -> "Debye":
        """Pole arrays from a labelled model: ``labels`` is an integer array (the
        model's shape, e.g. the layer index of each cell) and ``poles`` maps each
        label to ``(delta_epsilon, tau)`` sequences of equal length P (or to
        ``None`` / ``()``: no dispersion there). Labels with fewer poles than the
        most get zero-strength poles (``delta_epsilon = 0``, which changes nothing).

        >>> Debye.from_layers(layer, {0: None, 1: ([6.0], [1e-9]), 2: ([9.0, 3.0], [2e-9, 1e-10])})
        """
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be an integer array (a label per cell), got "
                            f"{labels.dtype}")
        present = set(np.unique(labels).tolist())
        table = {}
        for key, value in dict(poles).items():
            de, tau = ((), ()) if value is None else value
            de, tau = np.atleast_1d(np.asarray(de, float)), np.atleast_1d(np.asarray(tau, float))
            if de.shape != tau.shape or de.ndim != 1:
                raise ValueError(f"label {key!r}: delta_epsilon and tau must be sequences of "
                                 f"one length, got {de.shape} and {tau.shape}")
            table[key] = (de, tau)
        missing = sorted(present - set(table))
        if missing:
            raise ValueError(f"labels {missing} of the model have no entry in poles; give "
                             f"None for a label without dispersion")
        n_poles = max((len(de) for de, _ in table.values()), default=0)
        if n_poles == 0:
            raise ValueError("no label has a pole; without poles, run without dispersion")
        de_out = np.zeros((n_poles, *labels.shape))
        # A pole of zero strength still needs a valid tau: the largest of the table.
        fill_tau = max(float(t.max()) for _, t in table.values() if t.size)
        tau_out = np.full((n_poles, *labels.shape), fill_tau)
        for key, (de, tau) in table.items():
            cells = labels == key
            for p in range(len(de)):
                de_out[p][cells] = de[p]
                tau_out[p][cells] = tau[p]
        return cls(de_out, tau_out)

    def law(self, e_components: tuple[str, ...], model_shape: tuple) -> "DebyeLaw":
        """The material law of a run with these poles (one polarization per E
        component of the system) for models of ``model_shape``."""
        return DebyeLaw(e_components, self.n_poles(model_shape),
                        {"delta_epsilon": self.delta_epsilon.shape, "tau": self.tau.shape})

    def n_poles(self, model_shape: tuple) -> int:
        """Poles for models of ``model_shape`` (a scalar or model-shaped array is one)."""
        tau = self.tau
        if tau.ndim <= 1:
            return max(tau.size, 1)
        return 1 if tau.shape == tuple(model_shape) else tau.shape[0]

    def arrays(self, model_shape: tuple, dtype, batched: bool) -> dict:
        """``delta_epsilon`` and ``tau`` as ``[B, P, *shape]`` arrays of ``dtype``
        for models of ``model_shape`` (``[B, *shape]`` when ``batched``)."""
        dtype = np.dtype(dtype)
        out = {}
        for name in ("delta_epsilon", "tau"):
            value = getattr(self, name)
            if value.ndim <= 1:  # scalar or [P]: the same poles everywhere
                value = value.reshape(-1, *([1] * len(model_shape)))
                value = np.broadcast_to(value, (value.shape[0], *model_shape))
            elif value.shape == tuple(model_shape):
                value = value[None]
            elif value.shape[1:] != tuple(model_shape):
                raise ValueError(
                    f"dispersion.{name} must have the shape [n_poles, *model_shape] = "
                    f"[P, {', '.join(map(str, model_shape))}] (or the model's shape for one "
                    f"pole), got {value.shape}")
            if value.dtype != dtype and getattr(self, name).ndim > 1:
                raise TypeError(f"dispersion.{name} must have the model's dtype {dtype}, got "
                                f"{value.dtype}")
            value = value.astype(dtype, copy=False)
            value = np.moveaxis(value, 0, 1) if batched else value[None]
            out[name] = np.ascontiguousarray(value)
        return out

    def __repr__(self) -> str:
        return (f"Debye(delta_epsilon={describe(self.delta_epsilon)}, "
                f"tau={describe(self.tau)})")


class DebyeLaw(NonDispersive):
    """``epsilon`` (eps_inf), ``sigma``, ``mu`` and P Debye poles
    ``delta_epsilon, tau`` (``[B, P, *shape]``), with the trapezoidal scheme:

        a_p = (2 tau_p - dt) / (2 tau_p + dt),  b_p = eps0 delta_eps_p dt / (2 tau_p + dt)
        den = eps0 eps_inf + sigma dt / 2 + sum_p b_p
        ca = (eps0 eps_inf - sigma dt / 2 - sum_p b_p) / den,  cb = dt / den,
        c_p = (1 - a_p) / den,  cq = dt / (mu0 mu)

    One law per system and pole count (its state names the E components).
    """

    name = "debye"
    inputs = ("epsilon", "sigma", "mu", "delta_epsilon", "tau")
    pole_inputs = ("delta_epsilon", "tau")
    coefficients = ("ca", "cb", "cq", "pole_a", "pole_b", "pole_c")
    source_coefficient = "cb"
    units = ("epsilon (eps_inf), delta_epsilon and mu relative, sigma in S/m, tau in "
             "seconds")

    def __init__(self, e_components: tuple[str, ...], n_poles: int,
                 input_shapes: dict | None = None):
        model = ("epsilon", "sigma", "delta_epsilon", "tau")
        self.paths = (GradientPath("ca_cb", ("ca", "cb"), model),
                      GradientPath("debye", ("pole_a", "pole_b", "pole_c"), model),
                      GradientPath("cq", ("cq",), ("mu",)))
        self.n_poles = int(n_poles)
        self.state = MappingProxyType({f"pol_{c}": c for c in e_components})
        self.state_extent = MappingProxyType({name: self.n_poles for name in self.state})
        self.kernel_scalars = MappingProxyType({"n_poles": self.n_poles})
        self.kernel_family = "debye"  # the E kernels with the poles (kernels.cu)
        #: the shapes of the user's delta_epsilon and tau (gradients come back so)
        self.input_shapes = dict(input_shapes or {})

    def user_gradient(self, name: str, grad: np.ndarray, batched: bool) -> np.ndarray:
        if name not in self.pole_inputs:
            return super().user_gradient(name, grad, batched)
        grad = np.moveaxis(grad, 1, 0) if batched else grad[0]
        # grad is now [P, *model_shape] (the model shape with its batch axis)
        shape = self.input_shapes.get(name, grad.shape)
        if len(shape) <= 1:  # a scalar or [P] was the same poles everywhere
            return grad.reshape(grad.shape[0], -1).sum(axis=1).reshape(shape)
        return grad.reshape(shape)  # [P, *model] or the model's shape (one pole)

    def model_direction(self, name: str, value: np.ndarray, batched: bool,
                        model_shape: tuple) -> np.ndarray:
        if name not in self.pole_inputs:
            return super().model_direction(name, value, batched, model_shape)
        expected = self.user_gradient(name, np.zeros(model_shape), batched).shape
        if np.shape(value) != expected:
            raise ValueError(f"the direction of {name!r} must have the shape of its input "
                             f"{expected}, got {np.shape(value)}")
        n_models, n_poles, *grid = model_shape
        per_pole = (n_poles, *((n_models,) if batched else ()), *grid)
        value = np.asarray(value, np.float64)
        if value.ndim <= 1:  # a scalar or [P]: the same poles everywhere
            value = np.broadcast_to(value.reshape((-1,) + (1,) * (len(per_pole) - 1)),
                                    per_pole)
        value = value.reshape(per_pole)
        return np.moveaxis(value, 0, 1) if batched else value[None]

    def increments_tangent(self, coefficients: dict, tangents: dict) -> dict:
        """As NonDispersive's, with the pole terms of curl (see from_increments):
        the direction of c_p gains -c_p d cb / cb."""
        out = super().increments_tangent(coefficients, tangents)
        if tangents.get("ca") is None or tangents.get("pole_c") is None:
            return out
        cb = coefficients["cb"].astype(np.float64)
        c = coefficients["pole_c"].astype(np.float64)
        return {**out, "pole_c": tangents["pole_c"] - c * (tangents["cb"] / cb)[:, None]}

    def snapshot_count(self, name: str) -> int:
        return self.n_poles if name.startswith("pol") else 1

    def extent(self, name: str) -> int:
        return self.n_poles if name in self.pole_inputs or name.startswith("pole_") else 1

    def check_step(self, arrays: dict, dt: float) -> None:
        tau_min = float(arrays["tau"].min())
        if not dt < tau_min:
            raise ValueError(
                f"the internal time step dt = {dt:.4g} s must be below the shortest Debye "
                f"relaxation time min(tau) = {tau_min:.4g} s (the trapezoidal pole update "
                "needs it); use a finer dt or drop poles faster than the step (they act as "
                "a static permittivity at radar frequencies: add their delta_epsilon to "
                "epsilon)")

    def unit_hints(self, arrays: dict, absolute_looking: float) -> list[str]:
        hints = super().unit_hints(arrays, absolute_looking)
        tau_max = float(arrays["tau"].max())
        if tau_max > 1e-3:
            hints.append(f"tau looks like it is not in seconds (its largest value is "
                         f"{tau_max:.3g} s; soils relax in 1e-11 to 1e-7 s): 1 ns is 1e-9")
        return hints

    # -- coefficients --------------------------------------------------------------
    @staticmethod
    def _poles(padded: dict, dt, T):
        """a_p, b_p and their sum over poles, in the arithmetic of type T."""
        tau, de = padded["tau"], padded["delta_epsilon"]
        two = T(2.0)
        tau_term = two * tau + dt
        a = (two * tau - dt) / tau_term
        b = (T(EP0) * de * dt) / tau_term
        b_sum = b[:, 0].copy()
        for p in range(1, b.shape[1]):  # in pole order, as the kernels sum
            b_sum += b[:, p]
        return a, b, b_sum

    def coefficients_of(self, padded: dict, dt: float, dtype) -> dict:
        T = np.dtype(dtype).type
        dt = T(dt)
        a, b, b_sum = self._poles(padded, dt, T)
        eps = padded["epsilon"] * T(EP0)
        loss = padded["sigma"] * dt / T(2.0)
        den = eps + loss + b_sum
        return {"ca": (eps - loss - b_sum) / den, "cb": dt / den,
                "cq": dt / (T(MU0) * padded["mu"]),
                "pole_a": a, "pole_b": b, "pole_c": (T(1.0) - a) / den[:, None]}

    def chain_rule(self, padded: dict, dt: float, grads: dict, targets) -> dict:
        out = {}
        if targets & {"mu"}:
            out.update(super().chain_rule(padded, dt, {"cq": grads["cq"]}, {"mu"}))
        model = targets & {"epsilon", "sigma", "delta_epsilon", "tau"}
        if not model:
            return out
        f64 = {k: wide(padded[k]) for k in self.inputs}  # complex too: chain_rule_tangent
        a, b, b_sum = self._poles(f64, dt, np.float64)
        e = EP0 * f64["epsilon"]
        h = 0.5 * dt * f64["sigma"]
        den = e + h + b_sum
        g = {k: np.asarray(grads[k], np.float64) for k in
             ("ca", "cb", "pole_a", "pole_b", "pole_c")}
        den2 = den**2
        # dJ/d(den) through cb and c_p, and dJ/dh = dJ/dB (ca has the same slope in both)
        through_den = -dt * g["cb"] / den2 - np.sum(g["pole_c"] * (1.0 - a), axis=1) / den2
        d_h = -2.0 * e * g["ca"] / den2 + through_den
        if "epsilon" in targets:
            out["epsilon"] = EP0 * (2.0 * (h + b_sum) * g["ca"] / den2 + through_den)
        if "sigma" in targets:
            out["sigma"] = 0.5 * dt * d_h
        if targets & {"delta_epsilon", "tau"}:
            tau_term = 2.0 * f64["tau"] + dt
            d_b = g["pole_b"] + d_h[:, None]
            if "delta_epsilon" in targets:
                out["delta_epsilon"] = d_b * EP0 * dt / tau_term
            if "tau" in targets:
                d_a = g["pole_a"] - g["pole_c"] / den[:, None]
                out["tau"] = d_a * 4.0 * dt / tau_term**2 - d_b * 2.0 * b / tau_term
        return out

    def tangent(self, padded: dict, dt: float, directions: dict) -> dict:
        f64 = {k: padded[k].astype(np.float64) for k in self.inputs}
        d = self._directions(padded, directions)
        a, b, b_sum = self._poles(f64, dt, np.float64)
        tau_term = 2.0 * f64["tau"] + dt
        d_a = 4.0 * dt * d["tau"] / tau_term**2
        d_b = (EP0 * dt * d["delta_epsilon"] - 2.0 * b * d["tau"]) / tau_term
        d_b_sum = np.sum(d_b, axis=1)
        h = 0.5 * dt * f64["sigma"]
        d_h = 0.5 * dt * d["sigma"]
        den = EP0 * f64["epsilon"] + h + b_sum
        d_den = EP0 * d["epsilon"] + d_h + d_b_sum
        # ca = 1 - 2 (h + B) / den, cb = dt / den, c_p = (1 - a_p) / den
        out = {"ca": 2.0 * ((h + b_sum) * d_den - (d_h + d_b_sum) * den) / den**2,
               "cb": -dt * d_den / den**2,
               "pole_a": d_a, "pole_b": d_b,
               "pole_c": -(d_a * den[:, None] + (1.0 - a) * d_den[:, None]) / den[:, None]**2}
        out["cq"] = self._cq_tangent(f64["mu"], dt, d["mu"])
        return out

    def from_increments(self, coefficients: dict, grads: dict) -> dict:
        """As NonDispersive.from_increments, with the pole terms of the E update:
        curl = (E_new - ca E_old - sum_p c_p P_p) / cb."""
        out = super().from_increments(coefficients, grads)
        if grads["ca"] is None or grads.get("pole_c") is None:
            return out
        cb = coefficients["cb"].astype(np.float64)
        c = coefficients["pole_c"].astype(np.float64)
        return {**out, "cb": out["cb"] - np.sum(c * grads["pole_c"], axis=1) / cb}
