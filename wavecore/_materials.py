"""Material laws: the inputs of a law, how they become the kernels' coefficients,
the forward and reverse chain rule, and which snapshots each gradient needs.

A :class:`Physics` (wavecore._driver) says what a Yee system is (fields,
memories, the snapshot arrays of each gradient path); its ``material`` says
what the medium is. The driver, the reverse pass, the memory estimate,
callbacks and the adapters ask the material for names and formulas instead of
spelling out ``epsilon, sigma, mu`` and ``ca, cb, cq``. Today there is one law,
:data:`NON_DISPERSIVE`; a new law (Debye, Lorentz) is a new :class:`Material`
here (or in its own module) plus its cell physics in ``_csrc``.

A law also declares its own per-cell state arrays (``state``), its gradient
targets (``gradient_targets``) and its unit hints (``unit_hints``); the engine
handles them generically. What a new law still touches outside its own file:
the kernels (``_csrc``, the CUDA kernels, the numpy reference and the Cython
core, whose parameter structs are mirrored by hand in ``_cpu``;
``_gpu/params.py`` parses them from the headers) and the public signatures
(``tm2d``/``maxwell3d``, the estimates and the adapters name the arrays; see
docs/decisions.md, "A material law beside the Yee system").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .constants import C0, EP0, MU0

__all__ = ["GradientPath", "Material", "NonDispersive", "NON_DISPERSIVE", "wide"]


def wide(array) -> np.ndarray:
    """``array`` in float64, or complex128 when it is complex: the chain rules
    evaluate on complex models too (:meth:`Material.chain_rule_tangent`)."""
    array = np.asarray(array)
    return array.astype(np.complex128 if np.iscomplexobj(array) else np.float64)


@dataclass(frozen=True)
class GradientPath:
    """One way gradients flow through the kernels: the coefficients whose
    gradients the adjoint kernels accumulate (``grad_<coefficient>``) from the
    snapshots of the system's ``Physics.snapshots[name]``, and the law's inputs
    whose gradients follow from them."""

    name: str                        #: key of ``Physics.snapshots``
    coefficients: tuple[str, ...]    #: accumulated as ``grad_<name>``
    inputs: tuple[str, ...]          #: inputs whose gradients need this path


class Material:
    """A material law (subclass and fill in the class attributes and methods)."""

    name: str = ""
    inputs: tuple[str, ...] = ()        #: the law's arrays, in call order
    coefficients: tuple[str, ...] = ()  #: kernel coefficient arrays on the padded grid
    paths: tuple[GradientPath, ...] = ()
    source_coefficient: str = ""        #: the coefficient that scales an E source
    units: str = ""                     #: the inputs' units (for ``check_units``)
    #: The law's own per-cell state (e.g. a Debye polarization per E component):
    #: name -> the field whose grid it lives on. The driver allocates these arrays
    #: with the fields (model dtype) and treats them as fields of the state:
    #: callbacks' ``wavefields``, ``final_state``/``initial_state``, the memory
    #: estimate and the adjoint state (``lam_<name>``).
    state: Mapping[str, str] = MappingProxyType({})
    #: State arrays with a leading axis beside the shot axis (name -> its length;
    #: e.g. the poles of a Debye polarization, ``[n_shots, P, *grid]``).
    state_extent: Mapping[str, int] = MappingProxyType({})
    #: Inputs with a leading axis beside the model batch axis (``[B, P, *shape]``,
    #: e.g. Debye poles); the driver takes them from the run's ``dispersion``.
    pole_inputs: tuple[str, ...] = ()

    # -- names ----------------------------------------------------------------
    @property
    def gradient_targets(self) -> tuple[str, ...]:
        """What ``requires_grad`` may name: the law's inputs, then the source."""
        return (*self.inputs, "source_amplitude")

    def describe_inputs(self) -> str:
        """``'a', 'b' or 'c'`` (for messages)."""
        quoted = [repr(n) for n in self.inputs]
        return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def active_paths(self, targets) -> tuple[GradientPath, ...]:
        return tuple(p for p in self.paths if set(targets) & set(p.inputs))

    def gradient_coefficients(self, targets) -> tuple[str, ...]:
        """Coefficients whose gradients the adjoint accumulates for ``targets``."""
        return tuple(c for p in self.active_paths(targets) for c in p.coefficients)

    def snapshot_names(self, snapshots, targets) -> tuple[str, ...]:
        """The snapshot arrays (``Physics.snapshots``) the gradients of ``targets`` need."""
        return tuple(n for p in self.active_paths(targets) for n in snapshots[p.name])

    # -- the law --------------------------------------------------------------
    #: Scalars of the kernels' parameter structs that the law sets (every law
    #: sets them all: a non-dispersive run has no poles).
    kernel_scalars: Mapping[str, int] = MappingProxyType({"n_poles": 0})
    #: The CUDA kernels of the law's steps (wavecore/_gpu/source.py LAW_KERNELS):
    #: "" for the plain kernels, else a family whose kernels replace them.
    kernel_family: str = ""

    def snapshot_count(self, name: str) -> int:
        """Arrays per shot of snapshot ``name`` (the poles of a polarization)."""
        return 1

    def extent(self, name: str) -> int:
        """Arrays per model of an input or a coefficient (its pole axis), 1 if none."""
        return 1

    def user_gradient(self, name: str, grad: np.ndarray, batched: bool) -> np.ndarray:
        """The gradient of input ``name`` shaped like the user's array, from the
        model gradient ``[B, ...]`` (float64)."""
        return grad if batched else grad[0]

    def model_direction(self, name: str, value: np.ndarray, batched: bool,
                        model_shape: tuple) -> np.ndarray:
        """The transpose of :meth:`user_gradient`: a direction of input ``name``
        shaped like the user's array -> the model array ``model_shape``
        (``[B, ...]``, float64). Raises if ``value`` has another shape."""
        expected = self.user_gradient(name, np.zeros(model_shape), batched).shape
        if np.shape(value) != expected:
            raise ValueError(f"the direction of {name!r} must have the shape of its input "
                             f"{expected}, got {np.shape(value)}")
        value = np.asarray(value, np.float64)
        return value if batched else value[None]

    def increments_tangent(self, coefficients: dict, tangents: dict) -> dict:
        """The transpose of :meth:`from_increments`: coefficient directions ->
        the directions of the bf16 snapshots' values (the increment and the mean
        of E take the places of ca and cb), so that a tangent run on bf16
        snapshots is the transpose of the gradient on them."""
        raise NotImplementedError

    def check_values(self, arrays: dict) -> None:
        """Raise on values outside the law's domain (arrays finite, one shape)."""
        raise NotImplementedError

    def check_step(self, arrays: dict, dt: float) -> None:
        """Raise if the internal step ``dt`` does not suit the law (e.g. Debye
        poles need dt < min(tau)); called once the CFL step is known."""

    def unit_hints(self, arrays: dict, absolute_looking: float) -> list[str]:
        """Hints for inputs that look like a unit mistake (``check_units``; e.g.
        a whole model below ``absolute_looking``: absolute instead of relative)."""
        return []

    def max_velocity(self, arrays: dict) -> float:
        """The fastest wave speed of the models (m/s), for the CFL condition."""
        raise NotImplementedError

    def coefficients_of(self, padded: dict, dt: float, dtype) -> dict:
        """The kernel coefficients from the padded inputs, in the model dtype."""
        raise NotImplementedError

    def chain_rule(self, padded: dict, dt: float, grads: dict, targets) -> dict:
        """Input gradients (padded, float64) from coefficient gradients ``grads``
        (``{coefficient: array or None}``) for the requested ``targets``."""
        raise NotImplementedError

    def from_increments(self, coefficients: dict, grads: dict) -> dict:
        """Coefficient gradients from the images of bf16 snapshots (see NonDispersive)."""
        raise NotImplementedError

    def _directions(self, padded: dict, directions: dict) -> dict:
        """Every input's direction in float64, of its padded shape (zero if not given)."""
        unknown = sorted(set(directions) - set(self.inputs))
        if unknown:
            raise ValueError(f"directions {unknown} are not inputs of the {self.name} law "
                             f"({self.describe_inputs()})")
        return {k: np.broadcast_to(np.asarray(directions.get(k, 0.0), np.float64),
                                   padded[k].shape) for k in self.inputs}

    def chain_rule_tangent(self, padded: dict, dt: float, grads: dict, targets,
                           directions: dict) -> dict:
        """The derivative of :meth:`chain_rule` along the model ``directions``
        (``{input: padded array}``) with ``grads`` held fixed: the coefficients'
        second derivatives acting on ``grads`` (second order's term of the
        curvature of ca, cb, cq in the inputs). Taken by the complex step,
        ``Im chain_rule(m + i h d) / h``, exact to rounding for a chain rule that
        is analytic in the models and evaluates in :func:`wide` (no ``abs``, no
        cast to real): no second derivative is written out by hand."""
        d = self._directions(padded, directions)
        size = max((float(np.max(np.abs(v))) for v in d.values() if v.size), default=0.0)
        if size == 0.0:
            return {k: np.zeros(padded[k].shape) for k in targets if k in self.inputs}
        h = 1e-30 / size
        moved = {k: padded[k].astype(np.complex128) + (1j * h) * d[k] for k in self.inputs}
        return {k: np.imag(v) / h for k, v in self.chain_rule(moved, dt, grads, targets).items()}

    def tangent(self, padded: dict, dt: float, directions: dict) -> dict:
        """The directional derivatives of the coefficients (float64,
        ``{coefficient: array}``) along ``directions`` (``{input: padded array}``;
        inputs left out do not move): the forward-mode counterpart of
        :meth:`chain_rule`, whose transpose it is (the linearized, Born, run
        injects these)."""
        raise NotImplementedError


class NonDispersive(Material):
    """Relative permittivity ``epsilon``, conductivity ``sigma`` (S/m) and
    relative permeability ``mu``:

        ca = (eps0 eps - sigma dt / 2) / (eps0 eps + sigma dt / 2)
        cb = dt / (eps0 eps + sigma dt / 2),      cq = dt / (mu0 mu)
    """

    name = "non-dispersive"
    inputs = ("epsilon", "sigma", "mu")
    coefficients = ("ca", "cb", "cq")
    paths = (GradientPath("ca_cb", ("ca", "cb"), ("epsilon", "sigma")),
             GradientPath("cq", ("cq",), ("mu",)))
    source_coefficient = "cb"
    units = "epsilon and mu relative, sigma in S/m"

    def check_values(self, arrays: dict) -> None:
        if np.any(arrays["epsilon"] <= 0):
            raise ValueError(f"epsilon (relative permittivity) must be > 0 everywhere, "
                             f"min is {float(arrays['epsilon'].min()):g}")
        if np.any(arrays["mu"] <= 0):
            raise ValueError(f"mu (relative permeability) must be > 0 everywhere, "
                             f"min is {float(arrays['mu'].min()):g}")
        if np.any(arrays["sigma"] < 0):
            raise ValueError(f"sigma (conductivity, S/m) must be >= 0 everywhere, "
                             f"min is {float(arrays['sigma'].min()):g}")

    def unit_hints(self, arrays: dict, absolute_looking: float) -> list[str]:
        eps_max, mu_max = float(arrays["epsilon"].max()), float(arrays["mu"].max())
        hints = []
        if eps_max < absolute_looking:
            hints.append(f"epsilon looks absolute (F/m; its largest value is {eps_max:.3g}): "
                         "pass the relative permittivity (epsilon / wavecore.EP0; 1 for air, "
                         "81 for water)")
        if mu_max < absolute_looking:
            hints.append(f"mu looks absolute (H/m; its largest value is {mu_max:.3g}): pass "
                         "the relative permeability (mu / wavecore.MU0; 1 for most soils)")
        return hints

    def max_velocity(self, arrays: dict) -> float:
        return float(C0 / np.sqrt(np.min(arrays["epsilon"].astype(np.float64)
                                          * arrays["mu"].astype(np.float64))))

    def coefficients_of(self, padded: dict, dt: float, dtype) -> dict:
        T = np.dtype(dtype).type
        dt = T(dt)
        eps = T(EP0) * padded["epsilon"]
        loss = T(0.5) * padded["sigma"] * dt
        denominator = eps + loss
        return {"ca": (eps - loss) / denominator,
                "cb": dt / denominator,
                "cq": dt / (T(MU0) * padded["mu"])}

    def chain_rule(self, padded: dict, dt: float, grads: dict, targets) -> dict:
        out = {}
        if targets & {"epsilon", "sigma"}:
            eps = wide(padded["epsilon"])
            sigma = wide(padded["sigma"])
            den = EP0 * eps + 0.5 * sigma * dt
            g_ca = np.asarray(grads["ca"], np.float64)
            g_cb = np.asarray(grads["cb"], np.float64)
            if "epsilon" in targets:
                # d ca / d eps = eps0 sigma dt / den^2,  d cb / d eps = -eps0 dt / den^2
                out["epsilon"] = EP0 * dt * (sigma * g_ca - g_cb) / den**2
            if "sigma" in targets:
                # d ca / d sigma = -eps0 eps dt / den^2,  d cb / d sigma = -dt^2 / (2 den^2)
                out["sigma"] = -dt * (EP0 * eps * g_ca + 0.5 * dt * g_cb) / den**2
        if "mu" in targets:
            mu = wide(padded["mu"])
            out["mu"] = -dt / (MU0 * mu**2) * np.asarray(grads["cq"], np.float64)
        return out

    def tangent(self, padded: dict, dt: float, directions: dict) -> dict:
        eps = padded["epsilon"].astype(np.float64)
        sigma = padded["sigma"].astype(np.float64)
        mu = padded["mu"].astype(np.float64)
        d = self._directions(padded, directions)
        den = EP0 * eps + 0.5 * sigma * dt
        # ca = 1 - sigma dt / den, cb = dt / den, d den = eps0 d eps + dt / 2 d sigma
        d_den = EP0 * d["epsilon"] + 0.5 * dt * d["sigma"]
        return {"ca": dt * (sigma * d_den - den * d["sigma"]) / den**2,
                "cb": -dt * d_den / den**2, "cq": self._cq_tangent(mu, dt, d["mu"])}

    @staticmethod
    def _cq_tangent(mu, dt: float, d_mu):
        """d cq along d_mu (cq = dt / (mu0 mu)), float64."""
        return -dt * d_mu / (MU0 * mu**2)

    def from_increments(self, coefficients: dict, grads: dict) -> dict:
        """dJ/dca, dJ/dcb from the images of bf16 snapshots, the increment
        dE = E_new - E_old and the mean (E_old + E_new) / 2 of each E update
        (wc_hooks.h store_e_update): E_old = mean - dE / 2 and
        curl = (E_new - ca E_old) / cb = ((1 - ca) mean + (1 + ca) dE / 2) / cb,
        with the run's own ca and cb (exact for them; float64 here)."""
        g_de, g_mean = grads["ca"], grads["cb"]
        if g_de is None:
            return grads
        ca = coefficients["ca"].astype(np.float64)
        cb = coefficients["cb"].astype(np.float64)
        return {**grads, "ca": g_mean - 0.5 * g_de,
                "cb": ((1.0 - ca) * g_mean + 0.5 * (1.0 + ca) * g_de) / cb}


    def increments_tangent(self, coefficients: dict, tangents: dict) -> dict:
        """E_old = mean - dE / 2 and curl = ((1 - ca) mean + (1 + ca) dE / 2) / cb
        (see from_increments): d ca E_old + d cb curl = t_dE dE + t_mean mean."""
        d_ca, d_cb = tangents.get("ca"), tangents.get("cb")
        if d_ca is None:
            return tangents
        ca = coefficients["ca"].astype(np.float64)
        cb = coefficients["cb"].astype(np.float64)
        return {**tangents, "ca": -0.5 * d_ca + 0.5 * (1.0 + ca) * d_cb / cb,
                "cb": d_ca + (1.0 - ca) * d_cb / cb}


#: The law of every run today.
NON_DISPERSIVE = NonDispersive()
