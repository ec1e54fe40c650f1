"""FWI driver: misfit gradients, the scaled objective's gradient, every method
reducing the misfit, frequency stages, mini-batches, checkpoints and resume,
errors, and ``wavecore demo --fwi``."""

import numpy as np
import pytest

import wavecore
from wavecore.__main__ import main
from wavecore.inversion import Bounds, MISFITS, invert
from wavecore.inversion.fwi import Problem

pytest.importorskip("scipy", reason="the FWI driver needs scipy (pip install wavecore[fwi])")


@pytest.mark.parametrize("name", sorted(MISFITS))
def test_misfit_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    syn, obs = rng.standard_normal((2, 3, 40)), rng.standard_normal((2, 3, 40))
    value, grad = MISFITS[name](syn, obs)
    d = rng.standard_normal(syn.shape)
    h = 1e-6
    fd = (MISFITS[name](syn + h * d, obs)[0] - MISFITS[name](syn - h * d, obs)[0]) / (2 * h)
    assert abs(fd - float(np.sum(grad * d))) <= 1e-6 * max(1.0, abs(fd))
    assert MISFITS[name](obs, obs)[0] == pytest.approx(0.0, abs=1e-12)


def tiny(dtype=np.float64):
    nz, nx, h = 14, 24, 0.04
    eps = np.full((nz, nx), 4.0, dtype)
    eps[2:4] = 1.0
    true = eps.copy()
    true[8:11, 10:14] = 9.0
    sig = np.full((nz, nx), 1e-3, dtype)
    mu = np.ones((nz, nx), dtype)
    dt = 0.45 * wavecore.max_stable_dt((h, h), wavecore.C0, 4)
    nt = 160
    amp = np.repeat(wavecore.ricker(4e8, nt, dt).astype(dtype)[None, None], 4, 0)
    src = np.array([[[1, 3 + 6 * s]] for s in range(4)])
    rec = np.array([[[1, c] for c in range(1, nx - 1, 2)]] * 4)
    kw = dict(stencil=4, pml_width=6)
    obs = wavecore.tm2d(true, sig, mu, h, dt, amp, src, rec, **kw).receiver_data
    mask = np.zeros((nz, nx), bool)
    mask[4:] = True
    return dict(observed=obs, epsilon=eps, sigma=sig, mu=mu, grid_spacing=h, dt=dt,
                source_amplitude=amp, source_location=src, receiver_location=rec,
                mask=mask, **kw), true


def test_scaled_objective_gradient_is_exact():
    p, _ = tiny()
    models = dict(epsilon=p["epsilon"], sigma=p["sigma"], mu=p["mu"])
    problem = Problem(p["observed"], models, p["grid_spacing"], p["dt"],
                      p["source_amplitude"], p["source_location"], p["receiver_location"],
                      system="tm2d", parameters=("epsilon", "sigma"), bounds=Bounds(),
                      misfit="l2", mask=p["mask"], smoothing=0.0,
                      options=dict(stencil=4, pml_width=6))
    x = problem.to_x(models) + 0.01
    f, g = problem(x)
    d = np.random.default_rng(0).standard_normal(x.size) * 1e-5  # O(d^2) error: 5e-7
    fd = (problem(x + d)[0] - problem(x - d)[0]) / 2
    assert fd == pytest.approx(float(g @ d), rel=1e-5)


@pytest.mark.parametrize("method", ["lbfgs", "sd", "nlcg"])
def test_every_method_reduces_the_misfit(method):
    p, true = tiny()
    res = invert(**p, parameters="epsilon", bounds=Bounds(epsilon=(1.0, 16.0)),
                 method=method, iterations=3, misfit="l2")
    misfits = [h["misfit"] for h in res.history]
    assert misfits[-1] < 0.8 * misfits[0]
    err = lambda e: np.linalg.norm((e - true)[p["mask"]])  # noqa: E731
    assert err(res.epsilon) < err(p["epsilon"])
    assert (res.epsilon[~p["mask"]] == p["epsilon"][~p["mask"]]).all()  # the air is fixed
    assert res.epsilon.min() >= 1.0 and res.epsilon.max() <= 16.0


def test_stages_batches_checkpoints_and_resume(tmp_path):
    p, _ = tiny()
    seen = []
    kw = dict(parameters=("epsilon", "sigma"), method="sd", frequencies=(3e8, None),
              batch_size=2, misfit="ncc", smoothing=0.7, checkpoint_dir=tmp_path)
    res = invert(**p, iterations=2, callback=seen.append, **kw)
    assert [(h["stage"], h["iteration"]) for h in res.history] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert seen == res.history
    assert len(list(tmp_path.glob("iter_*.npz"))) == 6
    more = invert(**p, iterations=3, **kw)  # resumes after the last checkpoint
    assert more.history[:6] == res.history
    assert [(h["stage"], h["iteration"]) for h in more.history[6:]] == [(1, 3)]


def test_invert_errors():
    p, _ = tiny()
    with pytest.raises(ValueError, match="method"):
        invert(**p, method="newton")
    with pytest.raises(ValueError, match="outside its bounds"):
        invert(**p, bounds=Bounds(epsilon=(2.0, 10.0)))
    with pytest.raises(ValueError, match="parameters"):
        invert(**p, parameters=("mu",))
    with pytest.raises(ValueError, match="Nyquist"):
        invert(**p, frequencies=(1e15,))


def test_demo_fwi_quick(tmp_path, capsys):
    assert main(["demo", "--fwi", "--quick", "--quiet", "--no-plot", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "misfit (full band)" in out and "permittivity error" in out
    saved = np.load(tmp_path / "fwi.npz")
    assert saved["misfit"][-1] < saved["misfit"][saved["stage"] == 1][0]


def test_shot_parallel_gradients_equal_serial():
    import concurrent.futures as cf
    import multiprocessing

    p, _ = tiny()
    serial = invert(**p, parameters=("epsilon", "sigma"), method="sd", iterations=2)
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        parallel = invert(**p, parameters=("epsilon", "sigma"), method="sd", iterations=2,
                          executor=ex, shots_per_task=1)
    for a, b in zip(serial.history, parallel.history):
        assert a["misfit"] == pytest.approx(b["misfit"], rel=1e-12)
    for name in ("epsilon", "sigma"):
        a, b = getattr(serial, name), getattr(parallel, name)
        assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()


def test_dask_gradients_equal_serial():
    distributed = pytest.importorskip("distributed", reason="Dask runs need wavecore[hpc]")
    p, _ = tiny()
    serial = invert(**p, parameters="epsilon", method="sd", iterations=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        parallel = invert(**p, parameters="epsilon", method="sd", iterations=1,
                          executor=client.get_executor(pure=False), shots_per_task=2)
    assert np.abs(serial.epsilon - parallel.epsilon).max() <= 1e-12 * serial.epsilon.max()
