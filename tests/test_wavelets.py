"""Source wavelets."""

import numpy as np
import pytest

import wavecore


@pytest.mark.parametrize("fn", [wavecore.ricker, wavecore.gaussian])
def test_peak_at_peak_time(fn):
    dt, f = 1e-11, 5e8
    w = fn(f, 400, dt)
    assert np.argmax(w) == round(1 / f / dt) and w.max() == pytest.approx(1.0)
    w = fn(f, 400, dt, peak_time=1.5e-9)
    assert np.argmax(w) == 150


def test_ricker_spectrum_peaks_at_freq():
    dt, f, n = 1e-11, 4e8, 16384
    w = wavecore.ricker(f, n, dt)
    spectrum = np.abs(np.fft.rfft(w))
    freqs = np.fft.rfftfreq(n, dt)
    assert freqs[np.argmax(spectrum)] == pytest.approx(f, rel=0.01)


def test_gaussian_derivative_is_derivative_of_gaussian():
    dt, f = 1e-12, 3e8
    g = wavecore.gaussian(f, 8000, dt)
    d = wavecore.gaussian_derivative(f, 8000, dt)
    numeric = np.gradient(g, dt)
    numeric /= np.abs(numeric).max()
    np.testing.assert_allclose(d, numeric, atol=1e-5)
    assert np.abs(d).max() == pytest.approx(1.0, abs=1e-6)


def test_morlet_and_sine_burst():
    dt, f = 1e-11, 5e8
    m = wavecore.morlet(f, 600, dt)
    assert m.max() == pytest.approx(1.0) and np.argmax(m) == 200
    s = wavecore.sine_burst(f, 600, dt, cycles=2)
    nonzero = np.nonzero(s)[0]
    assert (nonzero.max() - nonzero.min()) * dt <= 2 / f + dt


def test_dtype_and_errors():
    assert wavecore.ricker(1e8, 10, 1e-10, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="freq"):
        wavecore.ricker(-1.0, 10, 1e-10)
    with pytest.raises(ValueError, match="nt"):
        wavecore.gaussian(1e8, 0, 1e-10)
    with pytest.raises(TypeError, match="dtype"):
        wavecore.ricker(1e8, 10, 1e-10, dtype=np.int32)
