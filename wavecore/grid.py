"""Padded-grid layout and CPML profiles, per axis.

One :class:`Axis` describes how a model axis of ``n`` cells is embedded in the
padded computational grid: ``M = order // 2`` halo cells on the low side, the
low CPML slab, the model, the high CPML slab and ``M - 1`` halo cells on the
high side (TIDE 0.1.2's layout). The "domain" is CPML + model; wavefields in
``final_state`` and the ``"pml"`` callback view cover exactly the domain.

E lives on integer nodes ``i``; the staggered H component of this axis lives
at ``i + 1/2``. On the low side both CPML slabs cover ``[M, pml_start)``; on
the high side the E slab is ``[pml_end, n_padded - M]`` and the H slab starts
half a cell earlier, ``[pml_end - 1, n_padded - M - 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._checks import nonnegative_float, positive_float
from .constants import EP0
from .stencils import half_width

__all__ = ["Axis", "CpmlOptions", "cpml_profiles"]

# CPML conductivity below which the recursive-convolution coefficient a is
# taken as 0 (TIDE 0.1.2 uses the same absolute threshold, in S/m).
_SIGMA_NEGLIGIBLE = 1e-6
# TIDE 0.1.2 adds this to the denominator of a (tide.utils.setup_pml,
# eps=1e-9; a guard it does not need where a is nonzero); kept so that CPML runs
# agree with TIDE to rounding: without it float64 receiver data differ by up to
# 2.9e-12 (2-D) and 3.9e-11 (3-D) relative (bench/compare_tide_*.py --no-guard).
_A_DENOMINATOR_GUARD = 1e-9


@dataclass(frozen=True)
class Axis:
    """Layout of one axis of the padded grid."""

    n: int        #: model cells
    pml_lo: int   #: CPML cells before the model
    pml_hi: int   #: CPML cells after the model
    order: int    #: stencil order

    @property
    def m(self) -> int:
        """Halo width on the low side (``order // 2``); the high side has ``m - 1``."""
        return half_width(self.order)

    @property
    def n_padded(self) -> int:
        return self.n + self.pml_lo + self.pml_hi + 2 * self.m - 1

    @property
    def n_domain(self) -> int:
        """CPML + model cells."""
        return self.n + self.pml_lo + self.pml_hi

    @property
    def pml_start(self) -> int:
        """Padded index of the first model cell."""
        return self.m + self.pml_lo

    @property
    def pml_end(self) -> int:
        """Padded index of the first cell of the high E slab."""
        return self.pml_start + self.n

    @property
    def domain(self) -> slice:
        """Padded indices of the domain (CPML + model)."""
        return slice(self.m, self.m + self.n_domain)

    @property
    def inner(self) -> slice:
        """Padded indices of the model."""
        return slice(self.pml_start, self.pml_end)

    @property
    def pad(self) -> tuple[int, int]:
        """Cells added before and after the model (halo + CPML)."""
        return (self.pml_start, self.n_padded - self.pml_end)

    @property
    def n_slab(self) -> int:
        """Cells of the two CPML slabs together: the compact memory extent."""
        return self.pml_lo + self.pml_hi

    def slab_e(self) -> np.ndarray:
        """Padded indices of the E-node CPML cells (low slab, then high slab)."""
        return np.r_[self.m : self.pml_start, self.pml_end : self.m + self.n_domain]

    def slab_h(self) -> np.ndarray:
        """Padded indices of the half-node CPML cells (low slab, then high slab)."""
        hi = self.m + self.n_domain - 1  # last half node in the domain
        return np.r_[self.m : self.pml_start, self.pml_end - 1 : hi]


@dataclass(frozen=True)
class CpmlOptions:
    """CPML profile parameters (defaults equal TIDE 0.1.2's constants).

    With normalized depth ``d`` in [0, 1] into a slab and spacing ``h``:
    ``sigma = sigma0 d^power``, ``sigma0 = sigma0_scale (power + 1) / (150 pi h)``,
    ``kappa = 1 + (kappa_max - 1) d^power``,
    ``alpha = alpha_max (1 - d) + 0.1 alpha_max`` (S/m).
    """

    power: float = 4.0
    sigma0_scale: float = 1.0
    kappa_max: float = 5.0
    alpha_max: float = 0.008

    def __post_init__(self):
        positive_float(self.power, "pml_power")
        nonnegative_float(self.sigma0_scale, "pml_sigma0_scale")
        if nonnegative_float(self.kappa_max, "pml_kappa_max") < 1.0:
            raise ValueError(f"pml_kappa_max must be >= 1, got {self.kappa_max!r}")
        nonnegative_float(self.alpha_max, "pml_alpha_max")


def _profile(axis: Axis, offset: float, h: float, dt: float, opts: CpmlOptions):
    """a, b, kappa on nodes ``i + offset`` of the padded axis (float64)."""
    n = axis.n_padded
    a = np.zeros(n)
    b = np.zeros(n)
    kappa = np.ones(n)
    position = np.arange(n, dtype=np.float64) + offset
    sigma0 = opts.sigma0_scale * (opts.power + 1.0) / (150.0 * math.pi * h)
    sides = []
    if axis.pml_lo > 0:
        sides.append((axis.pml_start - position, axis.pml_lo))
    if axis.pml_hi > 0:  # inner edge of the high slab at pml_end - 1 (TIDE)
        sides.append((position - (axis.pml_end - 1), axis.pml_hi))
    for depth, width in sides:
        inside = depth >= 0.0
        d = np.clip(depth / width, 0.0, 1.0)
        sigma = sigma0 * d**opts.power
        k = 1.0 + (opts.kappa_max - 1.0) * d**opts.power
        alpha = opts.alpha_max * (1.0 - d) + 0.1 * opts.alpha_max
        bb = np.exp(-(sigma / k + alpha) * dt / EP0)
        with np.errstate(divide="ignore", invalid="ignore"):
            aa = sigma * (bb - 1.0) / (k * (sigma + k * alpha) + _A_DENOMINATOR_GUARD)
        aa = np.where(sigma > _SIGMA_NEGLIGIBLE, aa, 0.0)
        a = np.where(inside, aa, a)
        b = np.where(inside, bb, b)
        kappa = np.where(inside, k, kappa)
    return a, b, kappa


def cpml_profiles(axis: Axis, h: float, dt: float, opts: CpmlOptions, dtype) -> dict:
    """CPML coefficients of one axis on E nodes and on H (half) nodes.

    Returns a dict with ``a, b, k`` (integer nodes) and ``a_h, b_h, k_h`` (half
    nodes), each an array of length ``axis.n_padded`` in ``dtype``; outside the
    slabs ``a = b = 0`` and ``k = 1``. Computed in float64, then rounded.
    """
    a, b, k = _profile(axis, 0.0, h, dt, opts)
    a_h, b_h, k_h = _profile(axis, 0.5, h, dt, opts)
    cast = lambda v: np.ascontiguousarray(v, dtype=dtype)  # noqa: E731
    return {"a": cast(a), "b": cast(b), "k": cast(k),
            "a_h": cast(a_h), "b_h": cast(b_h), "k_h": cast(k_h)}
