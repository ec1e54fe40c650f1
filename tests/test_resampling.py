"""FFT resampling used by CFL sub-stepping."""

import numpy as np
import pytest

from wavecore.resampling import (downsample, downsample_adjoint, substep_shifts, upsample,
                                 upsample_adjoint)


def smooth_signal(n, cycles=3.0):
    t = np.arange(n) / n
    return np.sin(2 * np.pi * cycles * t) + 0.3 * np.cos(2 * np.pi * 2 * cycles * t)


@pytest.mark.parametrize("k", (2, 3, 5))
def test_upsample_then_downsample_is_identity_in_band(k):
    x = smooth_signal(64)[None, :]
    np.testing.assert_allclose(downsample(upsample(x, k), k), x, atol=1e-12)


@pytest.mark.parametrize("k", (2, 4))
def test_upsample_interpolates_a_band_limited_signal(k):
    n = 80
    x = smooth_signal(n)
    fine = upsample(x, k)
    exact = smooth_signal(n * k)  # the same periodic function on the fine grid
    np.testing.assert_allclose(fine, exact, atol=1e-12)
    np.testing.assert_allclose(fine[::k], x, atol=1e-12)


def test_shift_delays_the_signal():
    n, k = 80, 3
    x = smooth_signal(n)
    fine = upsample(x, k, shift=1.0)
    np.testing.assert_allclose(fine[1:], smooth_signal(n * k)[:-1], atol=1e-12)
    y = smooth_signal(n * k)
    np.testing.assert_allclose(downsample(y, k, shift=-(k - 1)), y[k - 1 :: k], atol=1e-12)
    assert substep_shifts(1) == (0.0, 0.0) and substep_shifts(4) == (1.5, -3.0)


def test_dtype_shape_and_trivial_ratio():
    x = np.ones((2, 3, 10), np.float32)
    assert upsample(x, 4).shape == (2, 3, 40) and upsample(x, 4).dtype == np.float32
    assert downsample(np.ones((5, 40)), 4).shape == (5, 10)
    assert upsample(x, 1) is x
    with pytest.raises(ValueError, match="freq_taper_frac"):
        upsample(x, 2, freq_taper_frac=2.0)
    with pytest.raises(ValueError, match="step_ratio"):
        upsample(x, 0)


def test_frequency_taper_and_time_taper():
    x = np.zeros(64)
    x[10] = 1.0
    plain = upsample(x, 2)
    tapered = upsample(x, 2, freq_taper_frac=0.5)
    sp, st = np.abs(np.fft.rfft(plain)), np.abs(np.fft.rfft(tapered))
    # The input band is bins 0..31 (bin 32, its Nyquist, is dropped); the taper
    # covers its upper half and leaves the lower half alone.
    np.testing.assert_allclose(st[:16], sp[:16], rtol=1e-12)
    assert st[31] < 0.05 * sp[31] and sp[32:].max() < 1e-12
    windowed = upsample(np.ones(32), 2, time_taper=True)
    assert windowed[0] == pytest.approx(0.0) and windowed[-1] == pytest.approx(0.0)


@pytest.mark.parametrize("nt", range(5, 23))
def test_adjoints_are_exact_transposes(nt):
    # Every length, both parities: the gradient of a sub-stepped run relies on
    # these being exact. Short frequency tapers (fewer than two bins) used to
    # keep the Nyquist bin and broke the transpose by up to 20 %.
    rng = np.random.default_rng(nt)
    for k, taper, pad, shift in ((3, 0.1, 0.3, 1.0), (2, 0.1, 0.0, -1.0), (3, 0.0, 0.3, -2.0),
                                 (4, 0.25, 0.1, 1.5)):
        x, y = rng.standard_normal(nt), rng.standard_normal(nt * k)
        opts = dict(freq_taper_frac=taper, time_pad_frac=pad, shift=shift)
        up = np.dot(upsample(x, k, **opts), y), np.dot(x, upsample_adjoint(y, k, **opts))
        down = np.dot(downsample(y, k, **opts), x), np.dot(y, downsample_adjoint(x, k, **opts))
        for a, b in (up, down):
            assert abs(a - b) <= 1e-12 * abs(a)
