"""initial_state / final_state: continuation, shapes, layout."""

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, random_model, run_tm2d, stable_dt


@pytest.mark.parametrize("order,pml", [(2, 5), (4, (3, 0, 2, 6)), (8, 0)])
def test_two_half_runs_equal_one_run(backend, order, pml):
    nz, nx, nt = 18, 21, 60
    eps, sig, mu = random_model(nz, nx, seed=order)
    amp, src, rec = random_acquisition(nz, nx, 2, 2, 4, nt)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    kw = dict(stencil=order, pml_width=pml, python_backend=backend == "reference")
    full = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, **kw)
    first = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp[..., :25], src, rec, **kw)
    second = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp[..., 25:], src, rec,
                           initial_state=first.final_state, **kw)
    joined = np.concatenate([first.receiver_data, second.receiver_data], -1)
    np.testing.assert_array_equal(joined, full.receiver_data)
    for name, value in full.final_state.items():
        np.testing.assert_array_equal(second.final_state[name], value)


def test_continuation_without_sources_needs_nt():
    nz, nx = 12, 12
    eps, sig, mu = random_model(nz, nx)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    amp, src, rec = random_acquisition(nz, nx, 2, 1, 3, 20)
    first = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, pml_width=3)
    # Free propagation from the state: shots come from the state, nt is required.
    free = wavecore.tm2d(eps, sig, mu, 0.01, dt, None, None, rec,
                         initial_state=first.final_state, nt=15, pml_width=3)
    zero_src = wavecore.tm2d(eps, sig, mu, 0.01, dt, np.zeros((2, 1, 15)), src, rec,
                             initial_state=first.final_state, pml_width=3)
    np.testing.assert_array_equal(free.receiver_data, zero_src.receiver_data)
    assert np.abs(free.receiver_data).max() > 0
    with pytest.raises(ValueError, match="nt is required"):
        wavecore.tm2d(eps, sig, mu, 0.01, dt, None, None, rec, initial_state=first.final_state)


def test_final_state_shapes_and_names():
    nz, nx, S = 10, 13, 3
    eps, sig, mu = random_model(nz, nx)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    amp, src, rec = random_acquisition(nz, nx, S, 1, 2, 8)
    res = wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec, stencil=6,
                        pml_width=(2, 3, 4, 5))
    fs = res.final_state
    assert set(fs) == {"ey", "hx", "hz", "psi_ey_z", "psi_ey_x", "psi_hx_z", "psi_hz_x"}
    dom = (nz + 5, nx + 9)
    for name in ("ey", "hx", "hz"):
        assert fs[name].shape == (S, *dom)
    assert fs.psi_ey_z.shape == fs.psi_hx_z.shape == (S, 5, dom[1])
    assert fs.psi_ey_x.shape == fs.psi_hz_x.shape == (S, dom[0], 9)
    # H after the last E node is not part of the grid and stays zero.
    assert not fs.hx[:, -1, :].any() and not fs.hz[:, :, -1].any()


def test_initial_state_for_every_shot_and_edge_values_ignored(backend):
    nz, nx, nt = 9, 11, 6
    eps, sig, mu = random_model(nz, nx)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    rng = np.random.default_rng(0)
    state = {name: rng.standard_normal((nz + 4, nx + 4)) for name in ("ey", "hx", "hz")}
    # Receivers next to the last model row and column, where the edge values
    # (and the rows and columns before them) reach within nt steps.
    rec = np.array([[[nz - 1, 5], [4, nx - 1]], [[nz - 1, nx - 1], [2, 2]]])

    def run(state):
        return run_tm2d(backend, eps, sig, mu, 0.01, dt, None, None, rec, nt=nt, pml_width=2,
                        initial_state=state).receiver_data

    data = run(state)
    assert data.shape == (2, 2, nt)
    # The same state given per shot gives the same data.
    np.testing.assert_array_equal(run({k: np.stack([v, v]) for k, v in state.items()}), data)
    # H after the last E node (the last hx row, the last hz column) is not a
    # degree of freedom: the run zeroes it, so changing it changes nothing...
    for name, edge in (("hx", np.s_[-1, :]), ("hz", np.s_[:, -1])):
        edited = {k: v.copy() for k, v in state.items()}
        edited[name][edge] = 1e3
        np.testing.assert_array_equal(run(edited), data, err_msg=name)
    # ...while the same edit one row or column earlier reaches the receivers:
    # the check above could see a nonzero edge.
    for name, inner in (("hx", np.s_[-2, :]), ("hz", np.s_[:, -2])):
        edited = {k: v.copy() for k, v in state.items()}
        edited[name][inner] = 1e3
        assert np.abs(run(edited) - data).max() > 1e-3 * np.abs(data).max(), name


def test_initial_state_errors():
    nz, nx = 8, 8
    eps, sig, mu = random_model(nz, nx)
    dt = stable_dt((0.01, 0.01), eps.min(), mu.min())
    amp, src, rec = random_acquisition(nz, nx, 1, 1, 1, 4)
    call = lambda state: wavecore.tm2d(eps, sig, mu, 0.01, dt, amp, src, rec,  # noqa: E731
                                       pml_width=2, initial_state=state)
    with pytest.raises(ValueError, match="unknown names"):
        call({"ez": np.zeros((12, 12))})
    with pytest.raises(ValueError, match=r"must have shape \(1, 12, 12\)"):
        call({"ey": np.zeros((8, 8))})
    with pytest.raises(TypeError, match="dtype"):
        call({"ey": np.zeros((12, 12), np.float32)})
    with pytest.raises(ValueError, match="finite"):
        call({"ey": np.full((12, 12), np.nan)})
    with pytest.raises(TypeError, match="mapping"):
        call(np.zeros((12, 12)))
