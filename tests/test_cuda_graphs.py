"""experimental_cuda_graph: chunking rule, cache keys, fallback warnings, and
graph replays equal to eager runs (emulated launcher in CI, a GPU with the
``gpu`` marker): cache reuse across calls, callbacks editing the live fields,
replaced arrays detected, a bounded thread-safe cache."""

import threading
import warnings

import numpy as np
import pytest

import test_cuda
import wavecore
from wavecore._gpu import graphs

device = test_cuda.device  # the fixture: "cuda-emulated", and "cuda" with a GPU


@pytest.fixture(autouse=True)
def empty_cache():
    graphs.clear_cuda_graph_cache()
    yield
    graphs.clear_cuda_graph_cache()
    wavecore.set_cuda_graph_cache_size(8)


def problem(system="tm2d", seed=0, **kw):
    return test_cuda.small(system, seed=seed, **kw)


def run(system, p, device, **kw):
    fn = wavecore.tm2d if system == "tm2d" else wavecore.maxwell3d
    return fn(**p, device=device, stencil=4, pml_width=2, **kw)


def test_graph_chunks_follow_callbacks_and_the_size_limit(monkeypatch):
    assert graphs.graph_chunks(100, 7, False) == [(0, 100)]
    assert graphs.graph_chunks(20, 8, True) == [(0, 8), (8, 16), (16, 20)]
    monkeypatch.setattr(graphs, "MAX_STEPS_PER_GRAPH", 30)
    assert graphs.graph_chunks(70, 1, False) == [(0, 30), (30, 60), (60, 70)]
    assert graphs.graph_chunks(70, 40, True) == [(0, 30), (30, 40), (40, 70)]


def test_graph_key_is_the_layout_not_the_call():
    p = problem()
    keys = {}

    def key(name, **kw):
        plan = wavecore.tm2d(**kw.pop("p", p), device="cuda-emulated", stencil=kw.pop(
            "stencil", 4), pml_width=kw.pop("pml", 2), **kw).plan
        geometry = dict(ny=plan.axes[0].n_padded, nx=plan.axes[1].n_padded,
                        n_shots=plan.n_total_shots, n_src=plan.n_sources,
                        n_rec=plan.n_receivers, nt=plan.nt_internal)
        keys[name] = graphs.graph_key(plan, geometry, graphs.graph_chunks(
            plan.nt_internal, plan.callback_frequency, False), "cuda-emulated", 0)

    key("base")
    key("other values", p={**p, "epsilon": p["epsilon"] * 2,
                           "source_amplitude": -p["source_amplitude"]})
    key("stencil", stencil=6)
    key("pml", pml=3)
    key("dtype", p={k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                        else v) for k, v in p.items()})
    assert keys["base"] == keys["other values"]
    assert len({keys[k] for k in ("base", "stencil", "pml", "dtype")}) == 4


@pytest.mark.parametrize("case, match", [
    (dict(device="cuda-emulated", requires_grad="epsilon"), "forward-only"),
    (dict(device="cpu"), "on the CPU"),
    (dict(python_backend=True), "numpy reference"),
])
def test_graph_option_is_ignored_with_a_reason(case, match):
    p = problem()
    with pytest.warns(RuntimeWarning, match=match):
        res = wavecore.tm2d(**p, experimental_cuda_graph=True, **case)
    assert graphs.cuda_graph_cache_info()["entries"] == 0
    assert np.abs(res.receiver_data).max() > 0


@pytest.mark.parametrize("system", ["tm2d", "maxwell3d"])
def test_graph_replays_equal_eager_runs_and_are_reused(device, system):
    p = problem(system, seed=3)
    eager = run(system, p, device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback here
        first = run(system, p, device, experimental_cuda_graph=True)
    np.testing.assert_array_equal(first.receiver_data, eager.receiver_data)
    for name in eager.final_state:
        np.testing.assert_array_equal(first.final_state[name], eager.final_state[name])
    # A compatible call with other models and sources replays the same graph.
    q = {**p, "epsilon": p["epsilon"] * 1.3, "source_amplitude": p["source_amplitude"][::-1]}
    second = run(system, q, device, experimental_cuda_graph=True)
    np.testing.assert_array_equal(second.receiver_data, run(system, q, device).receiver_data)
    info = graphs.cuda_graph_cache_info()
    assert info["entries"] == 1 and info["graphs"] == 1 and info["replays"] == 2
    # The first result is a copy, not the cached buffers the second call reused.
    np.testing.assert_array_equal(first.receiver_data, eager.receiver_data)


def test_graph_callbacks_edit_the_live_fields(device):
    p = problem(seed=5)
    steps = []

    def damp(state):
        steps.append(state.step)
        state.get_wavefield("ey", view="full")[...] *= 0.5

    kw = dict(forward_callback=damp, callback_frequency=6)
    eager = run("tm2d", p, device, **kw)
    graph = run("tm2d", p, device, experimental_cuda_graph=True, **kw)
    again = run("tm2d", p, device, experimental_cuda_graph=True, **kw)
    assert steps == [0, 6, 12, 18] * 3
    np.testing.assert_array_equal(graph.receiver_data, eager.receiver_data)
    np.testing.assert_array_equal(again.receiver_data, eager.receiver_data)
    assert graphs.cuda_graph_cache_info()["graphs"] == 4  # one per callback chunk


def test_graph_callback_cannot_replace_the_arrays(device):
    p = problem()

    def replace(state):
        state.wavefields["ey"] = state.wavefields["ey"].copy()

    with pytest.raises(TypeError):  # the callback state's mapping is read-only
        run("tm2d", p, device, experimental_cuda_graph=True, forward_callback=replace,
            callback_frequency=5)
    # and arrays swapped or resized behind its back are caught before the next replay
    a = np.zeros((2, 3))
    graphs.check_unchanged({"ey": (a, a.shape)}, {"ey": a})
    with pytest.raises(RuntimeError, match="replaced or resized 'ey'"):
        graphs.check_unchanged({"ey": (a, a.shape)}, {"ey": a.copy()})
    with pytest.raises(RuntimeError, match="replaced or resized 'ey'"):
        graphs.check_unchanged({"ey": (a, (3, 2))}, {"ey": a})


def test_graph_cache_is_bounded_and_clearable(device):
    wavecore.set_cuda_graph_cache_size(2)
    p = problem()
    for nt in (11, 12, 13):  # three layouts
        q = {**p, "source_amplitude": p["source_amplitude"][..., :nt]}
        run("tm2d", q, device, experimental_cuda_graph=True)
    assert graphs.cuda_graph_cache_info()["entries"] == 2
    wavecore.clear_cuda_graph_cache()
    assert graphs.cuda_graph_cache_info()["entries"] == 0
    with pytest.raises(ValueError, match="cache size"):
        wavecore.set_cuda_graph_cache_size(-1)


def test_graph_runs_from_threads(device):
    p = problem(seed=9)
    expected = run("tm2d", p, device).receiver_data
    results, errors = [], []

    def work():
        try:
            results.append(run("tm2d", p, device, experimental_cuda_graph=True).receiver_data)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_graph_benchmark_script_verifies_emulated():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import benchmark_maxwell3d_cuda_graph as bench

    assert bench.main(["--emulated", "--verify", "--repeats", "1"]) == 0
    assert bench.main(["--emulated", "--verify", "--repeats", "1", "--system", "tm2d"]) == 0
