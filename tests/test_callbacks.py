"""Forward callbacks: when they run, what they see, and that edits act."""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, stable_dt

NZ, NX, NT = 14, 17, 23


def setup():
    eps, sig, mu = random_model(NZ, NX, seed=4)
    amp, src, rec = random_acquisition(NZ, NX, 2, 1, 3, NT)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    return (eps, sig, mu, 0.01, dt, amp, src, rec)


@pytest.mark.parametrize("frequency", (1, 5, 23, 40))
def test_callbacks_fire_at_documented_steps(backend, frequency):
    steps = []
    wavecore.tm2d(*setup(), pml_width=3, python_backend=backend == "reference",
                  forward_callback=lambda s: steps.append(s.step),
                  callback_frequency=frequency)
    assert steps == list(range(0, NT, frequency))


def test_callback_sees_fields_after_step_steps(backend):
    args = setup()
    seen = {}

    def grab(state):
        seen[state.step] = state.get_wavefield("ey", "pml").copy()

    wavecore.tm2d(*args, pml_width=3, python_backend=backend == "reference",
                  forward_callback=grab, callback_frequency=10)
    assert not seen[0].any()  # nothing has happened before step 0
    amp = args[5]
    short = wavecore.tm2d(*args[:5], amp[..., :10], *args[6:], pml_width=3,
                          python_backend=backend == "reference")
    np.testing.assert_array_equal(seen[10], short.final_state["ey"])


def test_views_and_models():
    captured = []
    wavecore.tm2d(*setup(), pml_width=(2, 3, 4, 5), stencil=4,
                  forward_callback=captured.append, callback_frequency=100)
    state = captured[0]
    full = state.get_wavefield("ey", "full")
    assert full.shape == (2, NZ + 5 + 3, NX + 9 + 3)  # halo 2 low, 1 high
    assert state.get_wavefield("ey", "pml").shape == (2, NZ + 5, NX + 9)
    assert state.get_wavefield("ey").shape == (2, NZ, NX)
    np.testing.assert_array_equal(state.get_model("epsilon"), setup()[0])
    assert state.get_model("ca", "full").shape == full.shape[1:]
    assert state.get_wavefield("psi_hz_x", "full").shape == (2, NZ + 5, 9)
    with pytest.raises(ValueError, match="view='full'"):
        state.get_wavefield("psi_hz_x")
    with pytest.raises(ValueError, match="view"):
        state.get_wavefield("ey", "everything")
    with pytest.raises(KeyError, match="available"):
        state.get_wavefield("ez")
    with pytest.raises(RuntimeError, match="backward"):
        state.get_gradient("epsilon")
    with pytest.raises(TypeError):
        state.wavefields["ey"] = np.zeros(1)  # the mapping is read-only
    assert state.time == 0.0 and state.progress == 0.0


def test_in_place_edits_act_on_following_steps(backend):
    # Zeroing every field and memory at step k must leave exactly the wave
    # excited by the sources of steps k..nt-1, i.e. a fresh run of them.
    args = setup()
    k = 9

    def wipe(state):
        if state.step == k:
            for array in state.wavefields.values():
                array[...] = 0

    ref = backend == "reference"
    edited = wavecore.tm2d(*args, pml_width=3, python_backend=ref, forward_callback=wipe,
                           callback_frequency=3)
    amp = args[5]
    fresh = wavecore.tm2d(*args[:5], amp[..., k:], *args[6:], pml_width=3,
                          python_backend=ref)
    np.testing.assert_array_equal(edited.receiver_data[..., k:], fresh.receiver_data)
    untouched = wavecore.tm2d(*args, pml_width=3, python_backend=ref)
    np.testing.assert_array_equal(edited.receiver_data[..., :k],
                                  untouched.receiver_data[..., :k])


def test_batched_callback_views():
    eps, sig, mu = random_model(NZ, NX, batch=2)
    amp, src, rec = random_acquisition(NZ, NX, 3, 1, 2, 5)
    shapes = []
    wavecore.tm2d(eps, sig, mu, 0.01, stable_dt((0.01, 0.01), 1, 1), amp, src, rec,
                  pml_width=2, forward_callback=lambda s: shapes.append(
                      (s.get_wavefield("hx").shape, s.get_model("cb").shape)),
                  callback_frequency=5)
    assert shapes == [((2, 3, NZ, NX), (2, NZ, NX))]


def test_callback_errors_propagate():
    def boom(state):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        wavecore.tm2d(*setup(), forward_callback=boom)
    with pytest.raises(TypeError, match="forward_callback"):
        wavecore.tm2d(*setup(), forward_callback=3)
