"""Bad input: every case raises a clear error before any heavy work (DESIGN section 10)."""

import sys
import types
import warnings

import numpy as np
import pytest

import wavecore

NZ, NX, NT = 10, 12, 8


def good():
    eps = np.full((NZ, NX), 4.0)
    sig = np.full((NZ, NX), 1e-3)
    mu = np.ones((NZ, NX))
    amp = np.ones((2, 1, NT))
    src = np.array([[[2, 3]], [[5, 6]]])
    rec = np.array([[[1, 1], [9, 11]], [[0, 0], [4, 4]]])
    return dict(epsilon=eps, sigma=sig, mu=mu, grid_spacing=0.01, dt=1e-11,
                source_amplitude=amp, source_location=src, receiver_location=rec)


def call(**changes):
    kwargs = good()
    kwargs.update(changes)
    return wavecore.tm2d(**kwargs)


def test_good_input_runs():
    assert call().receiver_data.shape == (2, 2, NT)


@pytest.mark.parametrize("name", ["epsilon", "sigma", "mu"])
def test_model_rank(name):
    with pytest.raises(ValueError, match="epsilon" if name == "epsilon" else name):
        call(**{name: np.ones(NZ)})


@pytest.mark.parametrize("name", ["sigma", "mu"])
def test_model_shape_mismatch(name):
    with pytest.raises(ValueError, match=f"{name} must have the shape of epsilon"):
        call(**{name: np.ones((NZ, NX + 1))})


@pytest.mark.parametrize("name,value,match", [
    ("epsilon", 0.0, "epsilon .* must be > 0"),
    ("epsilon", -2.0, "epsilon .* must be > 0"),
    ("mu", 0.0, "mu .* must be > 0"),
    ("sigma", -1e-3, "sigma .* must be >= 0"),
    ("epsilon", np.nan, "epsilon must be finite"),
    ("sigma", np.inf, "sigma must be finite"),
    ("mu", np.nan, "mu must be finite"),
])
def test_model_values(name, value, match):
    array = good()[name].copy()
    array[3, 4] = value
    with pytest.raises(ValueError, match=match):
        call(**{name: array})


def test_model_dtypes():
    with pytest.raises(TypeError, match="float32 or float64"):
        call(epsilon=np.full((NZ, NX), 4, dtype=np.int64))
    with pytest.raises(TypeError, match="share one dtype"):
        call(sigma=np.full((NZ, NX), 1e-3, np.float32))
    with pytest.raises(TypeError, match="source_amplitude has dtype float32"):
        call(source_amplitude=np.ones((2, 1, NT), np.float32))


def test_cupy_arrays_in_cupy_arrays_out(monkeypatch):
    # A stand-in for CuPy: arrays whose type lives in "cupy" (what wavecore
    # checks) with .get(), and a "cupy" module with asarray. The run itself
    # goes through the emulated CUDA kernels.
    class FakeCupyArray(np.ndarray):
        def get(self):
            return np.array(self.view(np.ndarray), copy=True)

    FakeCupyArray.__module__ = "cupy._core.core"
    fake_cupy = types.ModuleType("cupy")
    fake_cupy.asarray = lambda a: np.array(a, copy=True).view(FakeCupyArray)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    p = good()
    on_device = {k: (fake_cupy.asarray(v) if k in ("epsilon", "sigma", "mu",
                                                     "source_amplitude") else v)
                 for k, v in p.items()}
    ref = wavecore.tm2d(**p, requires_grad=("epsilon", "source_amplitude"))
    out = wavecore.tm2d(**on_device, device="cuda-emulated",
                        requires_grad=("epsilon", "source_amplitude"))
    assert isinstance(out.receiver_data, FakeCupyArray)
    assert all(isinstance(v, FakeCupyArray) for v in out.final_state.values())
    np.testing.assert_array_equal(out.receiver_data.get(), ref.receiver_data)
    residual = fake_cupy.asarray(ref.receiver_data)
    g, g_ref = out.vjp(residual), ref.vjp(ref.receiver_data)
    assert isinstance(g.epsilon, FakeCupyArray) and g.sigma is None
    np.testing.assert_array_equal(g.epsilon.get(), g_ref.epsilon)
    np.testing.assert_array_equal(g.source_amplitude.get(), g_ref.source_amplitude)
    with pytest.raises(TypeError, match="CuPy"):  # estimates take numpy only
        wavecore.estimate_memory(**on_device)


@pytest.mark.parametrize("location,match", [
    (np.array([[[-1, 3]], [[5, 6]]]), "negative indices are not allowed"),
    (np.array([[[2, 3]], [[NZ, 6]]]), "outside the model"),
    (np.array([[[2, NX]], [[5, 6]]]), "on axis x"),
])
def test_source_locations_outside(location, match):
    with pytest.raises(ValueError, match=match):
        call(source_location=location)


def test_receiver_location_outside():
    with pytest.raises(ValueError, match="receiver_location index -3"):
        call(receiver_location=np.array([[[0, -3]], [[0, 0]]]))


def test_location_dtype_and_shape():
    with pytest.raises(TypeError, match="integer array"):
        call(source_location=np.array([[[2.0, 3.0]], [[5.0, 6.0]]]))
    with pytest.raises(ValueError, match="axis of 2 indices"):
        call(source_location=np.array([[[2, 3, 4]], [[5, 6, 7]]]))
    with pytest.raises(ValueError, match="must match source_amplitude"):
        call(source_location=np.array([[[2, 3], [1, 1]], [[5, 6], [1, 1]]]))


def test_shot_counts_must_agree():
    with pytest.raises(ValueError, match="number of shots differs"):
        call(receiver_location=np.array([[[1, 1]]]))


def test_sources_need_locations_and_nt():
    with pytest.raises(ValueError, match="without source_location"):
        call(source_location=None)
    with pytest.raises(ValueError, match="without source_amplitude"):
        call(source_amplitude=None)
    with pytest.raises(ValueError, match="nt is required"):
        call(source_amplitude=None, source_location=None)
    with pytest.raises(ValueError, match="must agree"):
        call(nt=NT + 1)
    with pytest.raises(ValueError, match="nt must be >= 1"):
        call(source_amplitude=None, source_location=None, nt=0)


def test_amplitude_values_and_rank():
    amp = np.ones((2, 1, NT))
    amp[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="source_amplitude must be finite"):
        call(source_amplitude=amp)
    with pytest.raises(ValueError, match="model batch axis"):
        call(source_amplitude=np.ones((1, 2, 1, NT)))


def test_batched_model_batch_mismatch():
    b = good()
    batched = {k: np.stack([b[k]] * 3) for k in ("epsilon", "sigma", "mu")}
    with pytest.raises(ValueError, match="2 models on its first axis"):
        call(**batched, source_amplitude=np.ones((2, 2, 1, NT)))


@pytest.mark.parametrize("name,value,error,match", [
    ("grid_spacing", 0.0, ValueError, "grid_spacing"),
    ("grid_spacing", (0.01, 0.01, 0.01), ValueError, "2 values"),
    ("grid_spacing", "1cm", TypeError, "grid_spacing"),
    ("dt", -1e-11, ValueError, "dt must be a finite number > 0"),
    ("dt", float("nan"), ValueError, "dt"),
    ("stencil", 3, ValueError, "stencil must be one of"),
    ("stencil", True, TypeError, "stencil must be an integer"),
    ("stencil", 4.0, TypeError, "stencil must be an integer among .*got 4.0"),
    ("stencil", 4.5, TypeError, "stencil must be an integer"),
    ("stencil", "4", TypeError, "stencil must be an integer"),
    ("pml_width", -1, ValueError, "pml_width values must be >= 0"),
    ("pml_width", (1, 2, 3), ValueError, "pml_width must be an int, 2 values"),
    ("max_vel", 1.0, ValueError, "below the model's fastest speed"),
    ("max_vel", -3e8, ValueError, "max_vel"),
    ("callback_frequency", 0, ValueError, "callback_frequency must be >= 1"),
    ("n_threads", 0, ValueError, "n_threads must be >= 1"),
    ("n_threads", 1.5, TypeError, "n_threads must be an integer"),
    ("freq_taper_frac", 1.5, ValueError, "freq_taper_frac must be in"),
    ("time_pad_frac", -0.1, ValueError, "time_pad_frac"),
    ("time_taper", "yes", TypeError, "time_taper must be True or False"),
    ("python_backend", 1, TypeError, "python_backend"),
    ("compute_precision", "fp16", ValueError, "compute_precision must be 'default'"),
    ("pml_power", 0.0, ValueError, "pml_power"),
    ("pml_kappa_max", 0.5, ValueError, "pml_kappa_max must be >= 1"),
    ("pml_alpha_max", -1.0, ValueError, "pml_alpha_max"),
    ("pml_sigma0_scale", -1.0, ValueError, "pml_sigma0_scale"),
])
def test_option_validation(name, value, error, match):
    with pytest.raises(error, match=match):
        call(**{name: value})


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="unexpected keyword"):
        call(pml_freq=1e9)  # TIDE accepts and ignores this one


def test_threads_option_rejected_for_reference():
    with pytest.raises(ValueError, match="single-threaded"):
        call(python_backend=True, n_threads=2)


def test_errors_come_before_heavy_work(monkeypatch):
    # Validation must finish before any buffer is allocated: with nt = 10**9
    # the run would need ~100 GB of receiver data and hours of compute.
    import wavecore._driver as module

    def no_heavy_work(*args, **kwargs):
        raise AssertionError("buffers were prepared before the input was validated")

    monkeypatch.setattr(module, "prepare_buffers", no_heavy_work)
    with pytest.raises(ValueError, match="receiver_location"):
        call(source_amplitude=None, source_location=None, nt=10**9,
             receiver_location=np.array([[[0, NX]]]))


def test_stencil_is_stored_as_a_python_int():
    for value in (4, np.int64(4), np.int32(4)):
        order = call(stencil=value).plan.order
        assert order == 4 and type(order) is int


def test_errors_show_the_users_shapes_not_the_flattened_ones():
    # Shared shots with a batched model: the arrays are broadcast to [B, S, ...]
    # inside; messages must quote the shapes the caller passed.
    b = good()
    batched = {k: np.stack([b[k]] * 3) for k in ("epsilon", "sigma", "mu")}
    for models in ({}, batched):
        with pytest.raises(ValueError, match=r"got shape \(2, 1, 3\)$"):
            call(**models, source_location=np.array([[[2, 3, 4]], [[5, 6, 7]]]))
        with pytest.raises(ValueError, match=r"source_location \(2, 2, 2\) must match "
                                             r"source_amplitude \(2, 1, 8\)"):
            call(**models, source_location=np.array([[[2, 3], [1, 1]], [[5, 6], [1, 1]]]))
        with pytest.raises(ValueError, match=r"receiver_location must end with .* got shape "
                                             r"\(2, 2, 1\)"):
            call(**models, receiver_location=np.array([[[1], [9]], [[0], [4]]]))


# -- unit mistakes: UnitWarning before any work (issue 15, item 6) ---------------

def test_unit_warning_is_a_user_warning():
    assert issubclass(wavecore.UnitWarning, UserWarning)


@pytest.mark.parametrize("changes,match", [
    (dict(epsilon=np.full((NZ, NX), 4.0) * wavecore.EP0),
     r"dt = 1e-11 s needs [\d,]+ internal steps per sample .*epsilon looks absolute .*"
     r"epsilon / wavecore.EP0"),
    (dict(dt=1e-6), r"needs [\d,]+ internal steps .*dt = 1e-06 s is long .*in seconds"),
    (dict(mu=np.ones((NZ, NX)) * wavecore.MU0), r"mu looks absolute .*mu / wavecore.MU0"),
    (dict(grid_spacing=1e-6), r"grid_spacing \(1e-06, 1e-06\) is below 0.1 mm"),
    (dict(dt=5e-8), r"needs 1,071 internal steps per sample .*check the units"),
])
def test_unit_mistakes_warn_before_any_work(monkeypatch, changes, match):
    import wavecore._driver as module

    def no_heavy_work(*args, **kwargs):
        raise AssertionError("buffers were prepared before the unit warning")

    monkeypatch.setattr(module, "prepare_buffers", no_heavy_work)
    with warnings.catch_warnings():
        warnings.simplefilter("error", wavecore.UnitWarning)
        with pytest.raises(wavecore.UnitWarning, match=match):
            call(**changes)
        with pytest.raises(wavecore.UnitWarning, match=match):
            wavecore.estimate_memory(**{**good(), **changes})


def test_unit_warning_points_at_the_callers_line_and_quiet_runs_stay_quiet():
    with pytest.warns(wavecore.UnitWarning) as record:
        call(dt=1e-6, source_amplitude=np.ones((2, 1, 2)))
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call(dt=2e-10, source_amplitude=np.ones((2, 1, 4)))  # sub-stepped (ratio 12), fine
        call(epsilon=np.full((NZ, NX), 0.5))  # below 1 but relative-looking: no warning
