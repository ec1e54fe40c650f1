"""Stencil-aware CFL condition and time sub-stepping."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._checks import positive_float
from .stencils import coefficient_sum

__all__ = ["CFL_SAFETY", "max_stable_dt", "cfl_condition"]

#: Fraction of the stability limit that an internal step may use. Close to 1
#: so that a user dt below the limit is kept; the margin absorbs rounding and
#: the CPML, which is slightly less stable than the interior scheme.
CFL_SAFETY = 0.99


def max_stable_dt(grid_spacing: Sequence[float], max_vel: float, stencil: int = 2) -> float:
    """Largest stable time step of the staggered scheme (seconds).

    ``dt_max = 1 / (v_max * sqrt(sum_i 1/h_i^2) * sum_k |c_k|)``: the
    von Neumann limit of the leapfrog scheme with an order-``stencil``
    staggered derivative on every axis.

    Parameters
    ----------
    grid_spacing : sequence of float
        One spacing per axis, metres.
    max_vel : float
        Largest wave speed in the model, m/s.
    stencil : int
        Accuracy order 2, 4, 6 or 8.
    """
    spacings = [positive_float(h, "grid_spacing") for h in grid_spacing]
    v = positive_float(max_vel, "max_vel")
    return 1.0 / (v * math.sqrt(sum(1.0 / h**2 for h in spacings)) * coefficient_sum(stencil))


def cfl_condition(
    grid_spacing: float | Sequence[float],
    dt: float,
    max_vel: float,
    stencil: int = 2,
    *,
    ndim: int = 2,
    safety: float = CFL_SAFETY,
) -> tuple[float, int]:
    """Internal time step and step ratio that keep a run stable.

    If ``dt <= safety * dt_max`` the run uses ``dt`` unchanged (ratio 1);
    otherwise it takes ``step_ratio = ceil(dt / (safety * dt_max))`` internal
    steps of ``dt / step_ratio`` per user sample.

    Parameters
    ----------
    grid_spacing : float or sequence of float
        Spacing in metres, one value for every axis or one per axis.
    dt : float
        The user's sample interval, seconds.
    max_vel : float
        Largest wave speed, m/s.
    stencil : int
        Accuracy order 2, 4, 6 or 8 (higher orders need smaller steps).
    ndim : int
        Number of spatial axes when ``grid_spacing`` is a scalar.
    safety : float
        Fraction of the limit to use, in (0, 1].

    Returns
    -------
    inner_dt : float
        Internal time step, seconds.
    step_ratio : int
        Internal steps per user sample.
    """
    if isinstance(grid_spacing, (int, float)):
        spacings = [float(grid_spacing)] * ndim
    else:
        spacings = [float(h) for h in grid_spacing]
    dt = positive_float(dt, "dt")
    if not 0.0 < safety <= 1.0:
        raise ValueError(f"safety must be in (0, 1], got {safety}")
    limit = safety * max_stable_dt(spacings, max_vel, stencil)
    step_ratio = max(1, math.ceil(dt / limit))
    return dt / step_ratio, step_ratio
