"""Data misfits: value and gradient with respect to the synthetic data.

Each takes ``(synthetic, observed)`` of the same shape (time last) and returns
``(value, d value / d synthetic)``, in float64.
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


MISFITS = {"l2": l2, "ncc": ncc, "huber": huber}
