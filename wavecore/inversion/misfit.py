"""Data misfits: value and gradient with respect to the synthetic data, and
their second derivatives.

Each misfit takes ``(synthetic, observed)`` of the same shape (time last) and
returns ``(value, d value / d synthetic)``, in float64. Its entry in
:data:`HESSIANS` takes ``(synthetic, observed, direction)`` and returns the
data-space Hessian applied to ``direction`` (the ``H_phi`` of a Gauss-Newton
product ``J^T H_phi J v``; see :func:`wavecore.inversion.gauss_newton_hvp`).
"""

from __future__ import annotations

import numpy as np


def l2(syn: np.ndarray, obs: np.ndarray):
    """0.5 * sum (syn - obs)^2."""
    r = np.asarray(syn, np.float64) - np.asarray(obs, np.float64)
    return 0.5 * float(np.sum(r * r)), r


def ncc(syn: np.ndarray, obs: np.ndarray, eps: float = 1e-30):
    """sum over traces of (1 - <syn, obs> / (|syn| |obs|)): insensitive to the
    amplitude of each trace (source strength, coupling), 0 for identical shapes."""
    s = np.asarray(syn, np.float64)
    o = np.asarray(obs, np.float64)
    ns = np.sqrt(np.sum(s * s, axis=-1, keepdims=True)) + eps
    no = np.sqrt(np.sum(o * o, axis=-1, keepdims=True)) + eps
    c = np.sum(s * o, axis=-1, keepdims=True) / (ns * no)
    grad = -(o / (ns * no) - c * s / (ns * ns))
    return float(np.sum(1.0 - c)), grad


def huber(syn: np.ndarray, obs: np.ndarray, delta: float | None = None):
    """Huber misfit of the residual: quadratic below ``delta``, linear above, so
    outliers (bad traces, spikes) pull less than in L2. Default ``delta``: 1 % of
    the largest observed amplitude."""
    r = np.asarray(syn, np.float64) - np.asarray(obs, np.float64)
    if delta is None:
        delta = 0.01 * float(np.abs(obs).max()) or 1.0
    a = np.abs(r)
    value = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return float(np.sum(value)), np.clip(r, -delta, delta)


def l2_hessian(syn: np.ndarray, obs: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The Hessian of :func:`l2` is the identity."""
    return np.asarray(direction, np.float64)


def ncc_hessian(syn: np.ndarray, obs: np.ndarray, direction: np.ndarray,
                eps: float = 1e-30) -> np.ndarray:
    """The Hessian of :func:`ncc` per trace applied to ``direction``: with
    a = <s, o>, |s|, |o| and c = a / (|s| |o|), the derivative of
    -(o / (|s| |o|) - a s / (|s|^3 |o|)) along d (not positive semi-definite:
    a Gauss-Newton step with it is not guaranteed to descend, and the
    conjugate-gradient loop stops at negative curvature)."""
    s = np.asarray(syn, np.float64)
    o = np.asarray(obs, np.float64)
    d = np.asarray(direction, np.float64)
    dot = lambda x, y: np.sum(x * y, axis=-1, keepdims=True)  # noqa: E731
    ns = np.sqrt(dot(s, s)) + eps
    no = np.sqrt(dot(o, o)) + eps
    a, sd, od = dot(s, o), dot(s, d), dot(o, d)
    hc = (-o * sd / ns**3 - (od * s + a * d) / ns**3 + 3.0 * a * sd * s / ns**5) / no
    return -hc


def huber_hessian(syn: np.ndarray, obs: np.ndarray, direction: np.ndarray,
                  delta: float | None = None) -> np.ndarray:
    """The Hessian of :func:`huber`: the identity where the residual is within
    ``delta`` (the quadratic part), zero where it is linear."""
    r = np.asarray(syn, np.float64) - np.asarray(obs, np.float64)
    if delta is None:
        delta = 0.01 * float(np.abs(obs).max()) or 1.0
    return np.where(np.abs(r) <= delta, np.asarray(direction, np.float64), 0.0)


MISFITS = {"l2": l2, "ncc": ncc, "huber": huber}
HESSIANS = {"l2": l2_hessian, "ncc": ncc_hessian, "huber": huber_hessian}
