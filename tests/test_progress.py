"""``progress=True``: a tqdm bar over the internal steps of the forward run and
of each vjp, on every backend and both systems (issue 15, item 6)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import wavecore

pytest.importorskip("tqdm")


def _tm2d(**kw):
    n, nt = 30, 40
    eps = np.full((n, n), 4.0, np.float32)
    dt = 0.9 * wavecore.max_stable_dt((0.01, 0.01), 1.5e8, 2)
    amp = wavecore.ricker(8e8, nt, dt, dtype=np.float32).reshape(1, 1, nt)
    return wavecore.tm2d(eps, np.zeros_like(eps), np.ones_like(eps), 0.01, dt, amp,
                         np.array([[[5, 10]]]), np.array([[[6, 20]]]), pml_width=5, **kw)


def _maxwell3d(**kw):
    n, nt = 12, 20
    eps = np.full((n, n, n), 4.0, np.float32)
    dt = 0.9 * wavecore.max_stable_dt((0.01,) * 3, 1.5e8, 2)
    amp = wavecore.ricker(8e8, nt, dt, dtype=np.float32).reshape(1, 1, nt)
    return wavecore.maxwell3d(eps, np.zeros_like(eps), np.ones_like(eps), 0.01, dt, amp,
                              np.array([[[4, 6, 6]]]), np.array([[[5, 6, 8]]]), pml_width=3,
                              **kw)


BACKENDS = [dict(device="cpu"), dict(device="cuda-emulated"), dict(python_backend=True)]


@pytest.mark.parametrize("system", [_tm2d, _maxwell3d], ids=["tm2d", "maxwell3d"])
@pytest.mark.parametrize("backend", BACKENDS, ids=["cpu", "cuda-emulated", "reference"])
def test_progress_bars_count_internal_steps(system, backend, capsys):
    res = system(progress=True, requires_grad=("epsilon",), **backend)
    res.vjp(np.ones_like(res.receiver_data))
    err = capsys.readouterr().err
    kind = system.__name__[1:]
    total = res.nt_internal
    assert f"{kind} forward: 100%" in err and f"{total}/{total}" in err, err
    assert f"{kind} gradient: 100%" in err, err


def test_no_bar_by_default(capsys):
    res = _tm2d(requires_grad=("epsilon",))
    res.vjp(np.ones_like(res.receiver_data))
    assert "forward" not in capsys.readouterr().err


def test_progress_must_be_a_bool():
    with pytest.raises(TypeError, match="progress must be True or False"):
        _tm2d(progress="yes")


def test_progress_without_tqdm_is_a_clear_error(monkeypatch):
    for name in [m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    with pytest.raises(ImportError, match="progress=True .* tqdm is not installed"):
        _tm2d(progress=True)
    _tm2d(progress=False)  # runs without tqdm


def test_progress_with_cuda_graphs(capsys):
    """The graph-replaying forward path (emulated) drives the bar too."""
    res = _tm2d(progress=True, device="cuda-emulated", experimental_cuda_graph=True)
    err = capsys.readouterr().err
    assert "tm2d forward: 100%" in err and f"{res.nt_internal}/{res.nt_internal}" in err, err
