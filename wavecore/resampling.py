"""Band-limited (FFT) resampling of sources and receivers for CFL sub-stepping.

When the stable internal step is a fraction ``1 / k`` (``k = step_ratio``) of
the user's sample interval, sources are up-sampled and receiver data
down-sampled in the frequency domain, as TIDE and Deepwave do: no frequency
above the user's Nyquist frequency is introduced or kept. Time is the last axis.

Both functions take a ``shift`` in internal (fine) samples, a delay of the
band-limited signal: ``upsample(x)[m] = x((m - shift) / k)`` and
``downsample(y)[n] = y(n k - shift)``. :func:`wavecore.tm2d` uses it to keep
the timing of a sub-stepped run equal to that of an unsampled run: source
sample ``n`` is the current at ``(n + 1/2) dt`` and receiver sample ``n`` the
field at ``(n + 1) dt``, so sources are delayed by ``(k - 1) / 2`` and
receivers advanced by ``k - 1`` internal samples (see :func:`substep_shifts`).
Without the shifts (TIDE) a sub-stepped run is early by ``(k - 1) / (2k)``
of a user sample.
"""

from __future__ import annotations

import math

from ._checks import boolean, fraction, integer
from ._xp import array_module

__all__ = ["upsample", "downsample", "upsample_adjoint", "downsample_adjoint", "substep_shifts"]


def _taper_end(spectrum, taper_len: int, xp):
    """Cosine taper from 1 to 0 over the last ``taper_len`` frequencies."""
    if taper_len <= 0 or spectrum.shape[-1] <= taper_len:
        return spectrum
    taper = 0.5 * (1.0 + xp.cos(xp.linspace(0.0, math.pi, taper_len)))
    spectrum = spectrum.copy()
    spectrum[..., -taper_len:] *= taper
    return spectrum


def _limit_band(spectrum, freq_taper_frac: float, xp):
    """Taper the high end of the spectrum and always drop its last bin.

    The last bin goes even when the taper is shorter than two bins (it would
    keep it at 1): an even-length signal's Nyquist bin is ambiguous, and
    dropping it is what makes the up-sampler the exact transpose of the
    down-sampler."""
    if freq_taper_frac > 0.0:
        spectrum = _taper_end(spectrum, int(freq_taper_frac * spectrum.shape[-1]), xp)
    if spectrum.shape[-1] > 1:
        spectrum = spectrum.copy()
        spectrum[..., -1] = 0
    return spectrum


def _check(step_ratio, freq_taper_frac, time_pad_frac, time_taper, shift):
    shift = float(shift)
    if not math.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift!r}")
    return (
        integer(step_ratio, "step_ratio", minimum=1),
        fraction(freq_taper_frac, "freq_taper_frac"),
        fraction(time_pad_frac, "time_pad_frac"),
        boolean(time_taper, "time_taper"),
        shift,
    )


def _delay(spectrum, n: int, shift: float, xp):
    """Delay a real signal of ``n`` samples by ``shift`` samples (its rfft given)."""
    if shift == 0.0:
        return spectrum
    freqs = xp.fft.rfftfreq(n)[: spectrum.shape[-1]]
    return spectrum * xp.exp(-2j * math.pi * freqs * shift)


def substep_shifts(step_ratio: int) -> tuple[float, float]:
    """``(source_shift, receiver_shift)`` in internal samples that keep a run
    sub-stepped by ``step_ratio`` on the timing of an unsampled run."""
    k = integer(step_ratio, "step_ratio", minimum=1)
    return (k - 1) / 2.0, -(k - 1.0)


def upsample(signal, step_ratio: int, freq_taper_frac: float = 0.0,
             time_pad_frac: float = 0.0, time_taper: bool = False, shift: float = 0.0):
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
    shift : float
        Delay of the result in output samples (circular: pad if it matters).

    Returns
    -------
    ndarray, [..., nt * step_ratio]
    """
    step_ratio, freq_taper_frac, time_pad_frac, time_taper, shift = _check(
        step_ratio, freq_taper_frac, time_pad_frac, time_taper, shift)
    if signal.size == 0 or (step_ratio == 1 and shift == 0.0):
        return signal
    xp = array_module(signal)
    n_pad = int(time_pad_frac * signal.shape[-1]) if time_pad_frac > 0.0 else 0
    if n_pad:
        signal = xp.concatenate([signal, xp.zeros(signal.shape[:-1] + (n_pad,), signal.dtype)], -1)
    nt = signal.shape[-1]
    up_nt = nt * step_ratio
    spectrum = xp.fft.rfft(signal, norm="ortho") * math.sqrt(step_ratio)
    spectrum = _limit_band(spectrum, freq_taper_frac, xp)
    spectrum = _delay(spectrum, nt, shift / step_ratio, xp)
    out = xp.fft.irfft(spectrum, n=up_nt, norm="ortho")  # zero-pads the spectrum
    if n_pad:
        out = out[..., : up_nt - n_pad * step_ratio]
    if time_taper:
        out = out * xp.hanning(out.shape[-1])
    return out.astype(signal.dtype, copy=False)


def downsample(signal, step_ratio: int, freq_taper_frac: float = 0.0,
               time_pad_frac: float = 0.0, time_taper: bool = False, shift: float = 0.0):
    """Down-sample the last axis by ``step_ratio``, removing the frequencies
    the coarser sampling cannot represent.

    Parameters are those of :func:`upsample`; ``time_taper`` is applied to the
    input here and ``shift`` (a delay, in input samples) before sampling.
    Returns an array ``[..., nt // step_ratio]``.
    """
    step_ratio, freq_taper_frac, time_pad_frac, time_taper, shift = _check(
        step_ratio, freq_taper_frac, time_pad_frac, time_taper, shift)
    if signal.size == 0 or (step_ratio == 1 and shift == 0.0):
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
    spectrum = _delay(xp.fft.rfft(signal, norm="ortho"), signal.shape[-1], shift, xp)
    spectrum = spectrum[..., : down_nt // 2 + 1]
    spectrum = _limit_band(spectrum, freq_taper_frac, xp)
    out = xp.fft.irfft(spectrum, n=down_nt, norm="ortho") / math.sqrt(step_ratio)
    if n_pad:
        out = out[..., : down_nt - n_pad]
    return out.astype(dtype, copy=False)


def upsample_adjoint(signal, step_ratio: int, freq_taper_frac: float = 0.0,
                     time_pad_frac: float = 0.0, time_taper: bool = False, shift: float = 0.0):
    """Transpose of :func:`upsample` with the same arguments: ``[..., nt * k] -> [..., nt]``.

    With orthonormal FFTs the up-sampler is ``k`` times the transpose of the
    down-sampler with the opposite shift (band limit, taper, padding and
    cropping all transpose onto each other), which is what this returns.
    """
    if signal.size == 0 or (step_ratio == 1 and shift == 0.0):
        return signal
    return downsample(signal, step_ratio, freq_taper_frac, time_pad_frac, time_taper,
                      shift=-shift) * step_ratio


def downsample_adjoint(signal, step_ratio: int, freq_taper_frac: float = 0.0,
                       time_pad_frac: float = 0.0, time_taper: bool = False,
                       shift: float = 0.0):
    """Transpose of :func:`downsample` with the same arguments: ``[..., nt] -> [..., nt * k]``."""
    if signal.size == 0 or (step_ratio == 1 and shift == 0.0):
        return signal
    return upsample(signal, step_ratio, freq_taper_frac, time_pad_frac, time_taper,
                    shift=-shift) / step_ratio
