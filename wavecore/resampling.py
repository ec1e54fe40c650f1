"""Sources and receivers of a CFL sub-stepped run.

When the stable internal step is a fraction ``1 / k`` (``k = step_ratio``) of
the user's sample interval, the run takes ``k`` internal steps per sample.

Sources are up-sampled in the frequency domain, as TIDE and Deepwave do: no
frequency above the user's Nyquist frequency is introduced. Source sample
``n`` is the current at ``(n + 1/2) dt``, internal sample ``m`` the current at
``(m + 1/2) dt / k``, so the band-limited source is delayed by ``(k - 1) / 2``
internal samples (:func:`source_shift`); without the delay (TIDE) a
sub-stepped run is early by ``(k - 1) / (2k)`` of a user sample.

Receivers are not resampled in the frequency domain: every time the user asks
for is one of the internal sampling times, so the receivers are decimated
(:func:`sample_receivers`). Receiver sample ``n`` of an E component is the field
at ``(n + 1) dt`` and internal sample ``m`` the field at ``(m + 1) dt / k``:
user sample ``n`` is internal sample ``n k + k - 1``, exactly. H is recorded
half a step earlier, at ``(n + 1/2) dt`` and ``(m + 1/2) dt / k``: user sample
``n`` is internal sample ``n k + (k - 1) / 2``, exact for odd ``k``; for even
``k`` it lies half-way between two internal samples and is interpolated by
the cubic through the four nearest (the three nearest at the ends of a run
with ``k = 2``), whose error, ``3/128 (w dt/k)^4`` relative at angular
frequency ``w``, is far below that of the time stepping. Decimation has no
window, so nothing wraps around and nothing rings at either end of a trace,
decayed or not (docs/decisions.md says why it replaced FFT down-sampling).

Every operator has its exact transpose, used by the gradients. Time is the last axis.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import boolean, fraction, integer
from ._xp import array_module

__all__ = ["upsample", "downsample", "upsample_adjoint", "downsample_adjoint", "source_shift",
           "sample_position", "sample_receivers", "sample_receivers_adjoint"]


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


def source_shift(step_ratio: int) -> float:
    """Delay in internal samples that puts up-sampled source sample ``n`` at
    ``(n + 1/2) dt``, as in an unsampled run: ``(k - 1) / 2``."""
    return (integer(step_ratio, "step_ratio", minimum=1) - 1) / 2.0


def sample_position(step_ratio: int, half_step: bool = False) -> float:
    """Internal sample that holds user sample 0 of a receiver (user sample
    ``n`` is at this plus ``n k``): ``k - 1`` for E, ``(k - 1) / 2`` for
    components recorded half a step earlier (H)."""
    k = integer(step_ratio, "step_ratio", minimum=1)
    return (k - 1) * (0.5 if half_step else 1.0)


#: Cubic interpolation half-way between the middle two of four samples, and
#: the quadratic through three samples at the ends (the target half a sample
#: after the first, or before the last, of them).
_CUBIC_MID = (-1 / 16, 9 / 16, 9 / 16, -1 / 16)
_QUADRATIC_START = (3 / 8, 3 / 4, -1 / 8)
_QUADRATIC_END = (-1 / 8, 3 / 4, 3 / 8)


def _taps(nt: int, step_ratio: int, position: float):
    """Internal indices ``[nt, taps]`` and weights ``[nt, taps]`` of user
    samples ``0 .. nt - 1`` at internal positions ``position + n k``."""
    k = step_ratio
    n_internal = nt * k
    centre = position + k * np.arange(nt)
    if float(position).is_integer():
        return centre.astype(np.int64)[:, None], np.ones((nt, 1))
    if not float(2 * position).is_integer():
        raise ValueError(f"receiver position {position} must be a whole or half sample")
    right = (centre + 0.5).astype(np.int64)  # first internal sample after the target
    index = right[:, None] + np.arange(-2, 2)[None, :]
    weights = np.tile(np.array(_CUBIC_MID), (nt, 1))
    start, end = index[:, 0] < 0, index[:, -1] >= n_internal
    index[start] = right[start, None] + np.array([-1, 0, 1, 1])
    weights[start] = (*_QUADRATIC_START, 0.0)
    index[end] = right[end, None] + np.array([-2, -1, 0, 0])
    weights[end] = (*_QUADRATIC_END, 0.0)
    if (index < 0).any() or (index >= n_internal).any():
        raise ValueError(f"{nt} samples at step ratio {k} leave no room for the "
                         f"interpolation at position {position}")
    return index, weights


def _window(n: int, time_taper: bool, dtype, xp):
    return xp.hanning(n).astype(dtype) if time_taper else None


def _by_component(signal, positions, operator):
    """``operator(block, position)`` on each block of channels ``[..., C * Nr, time]``
    (component-major: ``C = len(positions)`` blocks of ``Nr`` channels)."""
    if isinstance(positions, (int, float)):
        return operator(signal, float(positions))
    n = signal.shape[-2] // len(positions)
    xp = array_module(signal)
    return xp.concatenate([operator(signal[..., c * n:(c + 1) * n, :], float(position))
                           for c, position in enumerate(positions)], axis=-2)


def sample_receivers(signal, step_ratio: int, positions, time_taper: bool = False):
    """User samples ``[..., nt]`` of internal receiver samples ``[..., nt * k]``.

    Parameters
    ----------
    signal : ndarray, [..., nt * step_ratio] or [..., C * Nr, nt * step_ratio]
        Receiver traces at every internal step.
    step_ratio : int
        Internal steps per user sample, ``k``.
    positions : float or sequence of float
        Internal sample of user sample 0 (:func:`sample_position`): a whole
        number decimates, a half interpolates (see the module docstring). A
        sequence gives one per component, whose ``Nr`` channels follow each
        other on the second-last axis.
    time_taper : bool
        Apply a Hann window over the internal samples first (for tests of
        smooth signals, as in TIDE and Deepwave).

    Returns
    -------
    ndarray, [..., nt], the dtype of ``signal``.
    """
    k = integer(step_ratio, "step_ratio", minimum=1)
    time_taper = boolean(time_taper, "time_taper")
    if signal.shape[-1] % k:
        raise ValueError(f"{signal.shape[-1]} internal samples are not a whole number of "
                         f"user samples at step ratio {k}")

    def sample(block, position):
        xp = array_module(block)
        window = _window(block.shape[-1], time_taper, block.dtype, xp)
        if window is not None:
            block = block * window
        index, weights = _taps(block.shape[-1] // k, k, position)
        out = block[..., index[:, 0]] * xp.asarray(weights[:, 0], block.dtype)
        for j in range(1, index.shape[1]):
            out += block[..., index[:, j]] * xp.asarray(weights[:, j], block.dtype)
        return out

    return _by_component(signal, positions, sample)


def sample_receivers_adjoint(signal, step_ratio: int, positions, time_taper: bool = False):
    """Transpose of :func:`sample_receivers`: ``[..., nt] -> [..., nt * k]``."""
    k = integer(step_ratio, "step_ratio", minimum=1)
    time_taper = boolean(time_taper, "time_taper")

    def transpose(block, position):
        xp = array_module(block)
        index, weights = _taps(block.shape[-1], k, position)
        out = xp.zeros((*block.shape[:-1], block.shape[-1] * k), block.dtype)
        for j in range(index.shape[1]):
            # A column holds distinct indices: += loses no repeated index.
            out[..., index[:, j]] += block * xp.asarray(weights[:, j], block.dtype)
        window = _window(out.shape[-1], time_taper, out.dtype, xp)
        return out if window is None else out * window

    return _by_component(signal, positions, transpose)


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
