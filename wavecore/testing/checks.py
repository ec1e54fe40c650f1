"""Dot-product and Taylor tests (in the spirit of PyLops' ``dottest``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["dottest", "DotTest", "taylor_test", "TaylorTest"]


@dataclass
class DotTest:
    """``<F x, y>`` and ``<x, F^T y>`` and their relative difference."""

    forward: float
    adjoint: float

    @property
    def relative_error(self) -> float:
        scale = max(abs(self.forward), abs(self.adjoint))
        return abs(self.forward - self.adjoint) / scale if scale else 0.0


def dottest(forward: Callable, adjoint: Callable, x: np.ndarray, y: np.ndarray) -> DotTest:
    """Compare ``<forward(x), y>`` with ``<x, adjoint(y)>``.

    For a linear operator ``F`` and its adjoint the two agree to rounding
    (relative error 1e-16 to 1e-14 in float64; wavecore's own tests measure
    at most 6.7e-15), whatever ``x`` and ``y``; an adjoint
    that is only approximately the transpose shows as a larger error.
    """
    fx = np.asarray(forward(x), np.float64)
    aty = np.asarray(adjoint(y), np.float64)
    if fx.shape != np.shape(y) or aty.shape != np.shape(x):
        raise ValueError(f"shape mismatch: forward(x) {fx.shape} vs y {np.shape(y)}, "
                         f"adjoint(y) {aty.shape} vs x {np.shape(x)}")
    return DotTest(float(np.vdot(fx, y)), float(np.vdot(x, aty)))


@dataclass
class TaylorTest:
    """Remainders of a Taylor test for step sizes ``h``.

    ``first[i] = |f(x + h_i d) - f(x)|`` and
    ``second[i] = |f(x + h_i d) - f(x) - h_i <g, d>|``. With a correct gradient
    the first decays like ``h`` (slope 1 in log-log) and the second like
    ``h^2`` (slope 2); a wrong gradient keeps the second at slope 1.
    """

    h: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @staticmethod
    def _slopes(r: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.diff(np.log(r)) / np.diff(np.log(h))

    @property
    def first_slopes(self) -> np.ndarray:
        return self._slopes(self.first, self.h)

    @property
    def second_slopes(self) -> np.ndarray:
        return self._slopes(self.second, self.h)


def taylor_test(f: Callable[[np.ndarray], float], x: np.ndarray, gradient: np.ndarray,
                direction: np.ndarray, h0: float = 1e-2, n: int = 4,
                factor: float = 0.5) -> TaylorTest:
    """Taylor remainders of the scalar function ``f`` at ``x`` along ``direction``.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x, gradient, direction : ndarray
        The point, the gradient to check (``df/dx`` at ``x``) and a direction,
        all of one shape.
    h0, n, factor : float, int, float
        Step sizes ``h0 * factor**i`` for ``i < n``.
    """
    f0 = float(f(x))
    slope = float(np.vdot(gradient, direction))
    hs = h0 * factor ** np.arange(n)
    values = np.array([float(f(x + h * direction)) for h in hs])
    return TaylorTest(hs, np.abs(values - f0), np.abs(values - f0 - hs * slope))


def peer_python(variable: str, default: str, probe: str) -> str | None:
    """A Python interpreter of a peer code (TIDE, gprMax) kept outside wavecore's
    environment: the path in the environment variable ``variable`` (else
    ``default``) if it exists and runs ``probe`` (an import), or None, also
    when the variable is set empty."""
    import os  # noqa: PLC0415 - only for the peer cross-checks
    import subprocess  # noqa: PLC0415

    candidate = os.environ.get(variable, default)
    if not candidate or not os.path.exists(candidate):
        return None
    run = subprocess.run([candidate, "-c", probe], capture_output=True, text=True)
    return candidate if run.returncode == 0 else None
