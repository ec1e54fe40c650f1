"""show_config, OpenMP reporting and denormal handling of the compiled core."""

import numpy as np

import wavecore
from wavecore._cpu import _runtime


def test_show_config_reports_the_build(capsys):
    info = wavecore.show_config()
    out = capsys.readouterr().out
    for key in ("wavecore", "numpy", "backends", "openmp", "threads", "build"):
        assert key in info and key in out
    assert info["wavecore"] == wavecore.__version__
    assert info["backends"]["reference"].startswith("available")
    assert info["backends"]["cpu"].startswith("available")
    assert info["openmp"] == _runtime.openmp_enabled()
    assert "-ffast-math" not in info["build"]["flags"].replace("-fno-fast-math", "")
    assert "-ffp-contract=off" in info["build"]["flags"]


def test_openmp_is_compiled_in():
    # The build probes OpenMP; on the CI and development machines it exists,
    # so a serial build here means the probe or the flags broke.
    assert _runtime.openmp_enabled(), "the CPU core was built without OpenMP"
    assert _runtime.openmp_spec() >= 200805
    assert _runtime.max_threads() >= 1


def test_compute_threads_flush_denormals_and_restore():
    report = _runtime.compute_threads_flush_denormals(2)
    assert report == {"threads": 2, "flushed": 2, "restored": True}
    assert not _runtime.caller_flushes_denormals()


def test_kernel_flushes_denormals_but_caller_does_not():
    n = 8
    eps, sig, mu = (np.full((n, n), 4.0, np.float32), np.zeros((n, n), np.float32),
                    np.ones((n, n), np.float32))
    tiny = np.float32(1e-39)  # a float32 denormal
    state = {"ey": np.full((n + 2, n + 2), tiny, np.float32)}
    dt = 0.9 * wavecore.max_stable_dt((0.01, 0.01), wavecore.C0 / 2)
    kw = dict(nt=1, pml_width=1, initial_state=state)
    cpu = wavecore.tm2d(eps, sig, mu, 0.01, dt, None, None, None, **kw)
    ref = wavecore.tm2d(eps, sig, mu, 0.01, dt, None, None, None, python_backend=True, **kw)
    assert not cpu.final_state["ey"].any()        # denormal inputs read as zero
    assert np.abs(ref.final_state["ey"]).max() > 0  # numpy keeps them
    assert np.float32(1e-38) * np.float32(0.01) > 0  # the caller's arithmetic is unchanged
    assert not _runtime.caller_flushes_denormals()
