"""Band-limited (FFT) resampling of sources and receivers for CFL sub-stepping.

When the stable internal step is a fraction ``1 / step_ratio`` of the user's
sample interval, sources are up-sampled and receiver data down-sampled in the
frequency domain, as TIDE and Deepwave do: no frequency above the user's
Nyquist frequency is introduced or kept. Time is the last axis.
"""

from __future__ import annotations

import math

from ._checks import boolean, fraction, integer
from ._xp import array_module

__all__ = ["upsample", "downsample"]


def _taper_end(spectrum, taper_len: int, xp):
    """Cosine taper from 1 to 0 over the last ``taper_len`` frequencies."""
    if taper_len <= 0 or spectrum.shape[-1] <= taper_len:
        return spectrum
    taper = 0.5 * (1.0 + xp.cos(xp.linspace(0.0, math.pi, taper_len)))
    spectrum = spectrum.copy()
    spectrum[..., -taper_len:] *= taper
    return spectrum


def _limit_band(spectrum, freq_taper_frac: float, xp):
    if freq_taper_frac > 0.0:
        return _taper_end(spectrum, int(freq_taper_frac * spectrum.shape[-1]), xp)
    if spectrum.shape[-1] > 1:
        spectrum = spectrum.copy()
        spectrum[..., -1] = 0  # the Nyquist bin is ambiguous: drop it
    return spectrum


def _check(step_ratio, freq_taper_frac, time_pad_frac, time_taper):
    return (
        integer(step_ratio, "step_ratio", minimum=1),
        fraction(freq_taper_frac, "freq_taper_frac"),
        fraction(time_pad_frac, "time_pad_frac"),
        boolean(time_taper, "time_taper"),
    )


def upsample(signal, step_ratio: int, freq_taper_frac: float = 0.0,
             time_pad_frac: float = 0.0, time_taper: bool = False):
    """Up-sample the last axis by ``step_ratio`` without adding frequencies.

    Parameters
    ----------
    signal : ndarray, [..., nt]
        Samples at the user's interval.
    step_ratio : int
        Output samples per input sample.
    freq_taper_frac : float
        Fraction of the spectrum, at its high end, tapered by a cosine before
        the transform back (0 drops only the Nyquist bin).
    time_pad_frac : float
        Zero padding appended before the FFT, as a fraction of ``nt``, to
        reduce wrap-around.
    time_taper : bool
        Apply a Hann window to the result (for tests of smooth signals).

    Returns
    -------
    ndarray, [..., nt * step_ratio]
    """
    step_ratio, freq_taper_frac, time_pad_frac, time_taper = _check(
        step_ratio, freq_taper_frac, time_pad_frac, time_taper)
    if signal.size == 0 or step_ratio == 1:
        return signal
    xp = array_module(signal)
    n_pad = int(time_pad_frac * signal.shape[-1]) if time_pad_frac > 0.0 else 0
    if n_pad:
        signal = xp.concatenate([signal, xp.zeros(signal.shape[:-1] + (n_pad,), signal.dtype)], -1)
    nt = signal.shape[-1]
    up_nt = nt * step_ratio
    spectrum = xp.fft.rfft(signal, norm="ortho") * math.sqrt(step_ratio)
    spectrum = _limit_band(spectrum, freq_taper_frac, xp)
    out = xp.fft.irfft(spectrum, n=up_nt, norm="ortho")  # zero-pads the spectrum
    if n_pad:
        out = out[..., : up_nt - n_pad * step_ratio]
    if time_taper:
        out = out * xp.hanning(out.shape[-1])
    return out.astype(signal.dtype, copy=False)


def downsample(signal, step_ratio: int, freq_taper_frac: float = 0.0,
               time_pad_frac: float = 0.0, time_taper: bool = False):
    """Down-sample the last axis by ``step_ratio``, removing the frequencies
    the coarser sampling cannot represent.

    Parameters are those of :func:`upsample`; ``time_taper`` is applied to the
    input here. Returns an array ``[..., nt // step_ratio]``.
    """
    step_ratio, freq_taper_frac, time_pad_frac, time_taper = _check(
        step_ratio, freq_taper_frac, time_pad_frac, time_taper)
    if signal.size == 0 or step_ratio == 1:
        return signal
    xp = array_module(signal)
    dtype = signal.dtype
    if time_taper:
        signal = signal * xp.hanning(signal.shape[-1])
    n_pad = int(time_pad_frac * (signal.shape[-1] // step_ratio)) if time_pad_frac > 0.0 else 0
    if n_pad:
        pad = xp.zeros(signal.shape[:-1] + (n_pad * step_ratio,), signal.dtype)
        signal = xp.concatenate([signal, pad], -1)
    down_nt = signal.shape[-1] // step_ratio
    spectrum = xp.fft.rfft(signal, norm="ortho")[..., : down_nt // 2 + 1]
    spectrum = _limit_band(spectrum, freq_taper_frac, xp)
    out = xp.fft.irfft(spectrum, n=down_nt, norm="ortho") / math.sqrt(step_ratio)
    if n_pad:
        out = out[..., : down_nt - n_pad]
    return out.astype(dtype, copy=False)
