"""Source wavelets for GPR simulations.

Each function returns a 1-D numpy array of ``nt`` samples ``w(n dt)``; the
peak (or the zero crossing of odd wavelets) is at ``peak_time``, one period
``1 / freq`` by default, as in TIDE. Sources are electric currents: in
:func:`wavecore.tm2d` the amplitude is a line current in amperes.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import integer, positive_float

__all__ = ["ricker", "gaussian", "gaussian_derivative", "morlet", "sine_burst"]


def _time_axis(freq, nt, dt, peak_time, dtype) -> tuple[np.ndarray, float]:
    freq = positive_float(freq, "freq")
    dt = positive_float(dt, "dt")
    nt = integer(nt, "nt", minimum=1)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    centre = 1.0 / freq if peak_time is None else float(peak_time)
    if not math.isfinite(centre):
        raise ValueError(f"peak_time must be finite, got {peak_time!r}")
    return np.arange(nt, dtype=np.float64) * dt - centre, freq


def ricker(freq: float, nt: int, dt: float, peak_time: float | None = None,
           dtype=np.float64) -> np.ndarray:
    """Zero-phase Ricker wavelet (Mexican hat) with unit peak.

    ``w(t) = (1 - 2 (pi f t)^2) exp(-(pi f t)^2)``, ``t`` relative to ``peak_time``.

    Parameters
    ----------
    freq : float
        Dominant (peak) frequency, Hz.
    nt : int
        Number of samples.
    dt : float
        Sample interval, seconds.
    peak_time : float, optional
        Time of the peak, seconds (default ``1 / freq``).
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    ndarray, [nt]
    """
    t, f = _time_axis(freq, nt, dt, peak_time, dtype)
    arg = (math.pi * f * t) ** 2
    return ((1.0 - 2.0 * arg) * np.exp(-arg)).astype(dtype)


def gaussian(freq: float, nt: int, dt: float, peak_time: float | None = None,
             dtype=np.float64) -> np.ndarray:
    """Gaussian pulse ``exp(-(pi f t)^2)`` with unit peak. Parameters as :func:`ricker`."""
    t, f = _time_axis(freq, nt, dt, peak_time, dtype)
    return np.exp(-((math.pi * f * t) ** 2)).astype(dtype)


def gaussian_derivative(freq: float, nt: int, dt: float, peak_time: float | None = None,
                        dtype=np.float64) -> np.ndarray:
    """First derivative of a Gaussian, normalized to unit peak magnitude.

    ``w(t) = -sqrt(2 e) (pi f t) exp(-(pi f t)^2)``; ``peak_time`` is its zero
    crossing. Parameters as :func:`ricker`.
    """
    t, f = _time_axis(freq, nt, dt, peak_time, dtype)
    phase = math.pi * f * t
    return (-math.sqrt(2.0 * math.e) * phase * np.exp(-(phase**2))).astype(dtype)


def morlet(freq: float, nt: int, dt: float, peak_time: float | None = None,
           cycles: float = 3.0, dtype=np.float64) -> np.ndarray:
    """Real Morlet pulse: a cosine of frequency ``freq`` under a Gaussian
    envelope ``exp(-(pi f t / cycles)^2)``. Parameters as :func:`ricker`."""
    t, f = _time_axis(freq, nt, dt, peak_time, dtype)
    cycles = positive_float(cycles, "cycles")
    envelope = np.exp(-((math.pi * f * t / cycles) ** 2))
    return (np.cos(2.0 * math.pi * f * t) * envelope).astype(dtype)


def sine_burst(freq: float, nt: int, dt: float, peak_time: float | None = None,
               cycles: float = 3.0, dtype=np.float64) -> np.ndarray:
    """``cycles`` periods of a cosine of frequency ``freq`` under a Hann
    envelope, centred on ``peak_time`` and zero outside. Parameters as :func:`ricker`."""
    t, f = _time_axis(freq, nt, dt, peak_time, dtype)
    cycles = positive_float(cycles, "cycles")
    duration = cycles / f
    window = 0.5 * (1.0 + np.cos(2.0 * math.pi * t / duration))
    pulse = window * np.cos(2.0 * math.pi * f * t)
    return np.where(np.abs(t) <= 0.5 * duration, pulse, 0.0).astype(dtype)
