"""Debye poles in the CUDA kernels (wavecore/_gpu/kernels.cu: tm2d_debye_e,
tm2d_debye_adjoint_e, m3d_debye_e, m3d_debye_adjoint_e; DESIGN.md section 11).

The Debye kernels call the same _csrc cell updates as the CPU rows with the
same hooks, so on ``device="cuda-emulated"`` (kernels.cu compiled as C++, run
on the CPU; wavecore/_gpu/emulator.py) a dispersive run equals the CPU core:
receivers, final state (the polarizations too) and every gradient, float64
and float32 with bf16 snapshots, TM2D and 3-D, one and three poles, batched
models with different poles. A run without poles launches the kernels it
launched before (no Debye kernel); NVRTC compiles the Debye kernels without a
GPU; CUDA graphs replay a dispersive run. With a GPU (marker ``gpu``) the same
comparisons run on ``device="cuda"`` within the tolerances of tests/test_cuda.py.
"""

import numpy as np
import pytest

import test_cuda
import wavecore
from wavecore._gpu import graphs, source
from wavecore._gpu.emulator import EmulatedLauncher

device = test_cuda.device  # the fixture: "cuda-emulated", and "cuda" with a GPU
GRADS = ("epsilon", "sigma", "mu", "delta_epsilon", "tau", "source_amplitude")
TAU = (1.2e-9, 3e-10, 8e-11)  # relaxation times of the poles, > the internal dt
F64 = 1e-10  # float64 on a GPU, as tests/test_cuda.py (emulated: bit for bit)


def dispersion(p, n_poles, seed):
    """Poles that differ from cell to cell and from model to model (``epsilon``
    may carry a batch axis): delta_epsilon, tau ``[n_poles, *epsilon.shape]``."""
    rng = np.random.default_rng(seed)
    shape = (n_poles, *p["epsilon"].shape)
    dtype = p["epsilon"].dtype
    de = (1.0 + 4.0 * rng.random(shape)).astype(dtype)
    tau = np.stack([t * (0.7 + 0.6 * rng.random(shape[1:])) for t in TAU[:n_poles]])
    return wavecore.Debye(delta_epsilon=de, tau=tau.astype(dtype))


def problem(system, n_poles, seed, dtype=np.float64, batch=2):
    p = test_cuda.small(system, seed=seed, dtype=dtype, batch=batch)
    p["source_location"][1, 1] = p["source_location"][1, 0]  # sources sharing a cell
    return p, dispersion(p, n_poles, seed)


def run(system, p, device, debye, **kw):
    if system == "maxwell3d":
        kw.setdefault("receiver_component", ["ex", "ey", "ez", "hy"])
        kw.setdefault("source_component", "ey")
    return test_cuda.call(system, p, device, dispersion=debye, pml_width=2, **kw)


def compare(device, gpu, cpu, tol):
    """Emulated kernels: bit for bit (as tests/test_cuda.py); a GPU within ``tol``."""
    test_cuda.same(device, gpu, cpu, tol)


@pytest.mark.parametrize("system, order, n_poles", [
    ("tm2d", 2, 1), ("tm2d", 4, 3), ("maxwell3d", 2, 3), ("maxwell3d", 4, 1)])
def test_debye_cuda_forward_and_gradients_equal_cpu(device, system, order, n_poles):
    p, debye = problem(system, n_poles, seed=order + n_poles)
    kw = dict(stencil=order, requires_grad=GRADS)
    gpu, cpu = run(system, p, device, debye, **kw), run(system, p, "cpu", debye, **kw)
    assert np.abs(cpu.receiver_data).max() > 0
    compare(device, gpu.receiver_data, cpu.receiver_data, F64)
    pols = [name for name in cpu.final_state if name.startswith("pol_")]
    assert len(pols) == (1 if system == "tm2d" else 3)
    for name in cpu.final_state:
        assert np.abs(cpu.final_state[name]).max() > 0 or not name.startswith("pol_"), name
        compare(device, gpu.final_state[name], cpu.final_state[name], F64)
    assert gpu.final_state["pol_ey"].shape[:3] == (2, 2, n_poles)  # models, shots, poles
    y = np.random.default_rng(order).standard_normal(cpu.receiver_data.shape)
    g, c = gpu.vjp(y), cpu.vjp(y)
    for name in GRADS:
        assert np.abs(getattr(c, name)).max() > 0, name
        compare(device, getattr(g, name), getattr(c, name), F64)


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_debye_cuda_bf16_snapshots_equal_cpu(device, system):
    p, debye = problem(system, 2, seed=5, dtype=np.float32)
    kw = dict(stencil=4, requires_grad=GRADS, storage_compression="bf16")
    gpu, cpu = run(system, p, device, debye, **kw), run(system, p, "cpu", debye, **kw)
    compare(device, gpu.receiver_data, cpu.receiver_data, 1e-5)
    y = np.random.default_rng(3).standard_normal(cpu.receiver_data.shape).astype(np.float32)
    g, c = gpu.vjp(y), cpu.vjp(y)
    for name in GRADS:
        assert np.abs(getattr(c, name)).max() > 0, name
        # The emulated kernels encode and decode the very values of the CPU
        # core (same cell code, no contraction), so the bf16 gradients agree
        # bit for bit (measured: equal). On a GPU (not measured yet: no GPU
        # here) a float32 rounding difference could move the bf16 rounding of
        # a snapshot value by one unit (2^-8 relative), which the sums over
        # cells and steps average down: the 1e-4 of the bf16 case of
        # tests/test_cuda.py (test_cuda_storage_options_equal_cpu).
        compare(device, getattr(g, name), getattr(c, name), 1e-4)


def launched(monkeypatch, fn):
    """The kernel names the emulated launcher ran during ``fn()``."""
    names = []
    call = EmulatedLauncher.__call__

    def spy(self, kernel, *args):
        names.append(kernel)
        return call(self, kernel, *args)

    monkeypatch.setattr(EmulatedLauncher, "__call__", spy)
    fn()
    return set(names)


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_debye_kernels_only_for_dispersive_runs(monkeypatch, system):
    p, debye = problem(system, 1, seed=1, batch=None)
    prefix = "tm2d" if system == "tm2d" else "m3d"
    kw = dict(stencil=2, requires_grad=("epsilon",))

    def forward_and_adjoint(poles):
        res = run(system, p, "cuda-emulated", poles, **kw)
        res.vjp(np.ones_like(res.receiver_data))

    plain = launched(monkeypatch, lambda: forward_and_adjoint(None))
    poles = launched(monkeypatch, lambda: forward_and_adjoint(debye))
    e_kernels = {f"wc::gpu::{prefix}_e<double, 2>", f"wc::gpu::{prefix}_adjoint_e<double, 2>"}
    debye_kernels = {f"wc::gpu::{prefix}_debye_e<double, 2>",
                     f"wc::gpu::{prefix}_debye_adjoint_e<double, 2>"}
    assert e_kernels <= plain and not any("debye" in name for name in plain)
    # A dispersive run swaps the two E kernels for the Debye ones, nothing else.
    assert poles == (plain - e_kernels) | debye_kernels


def test_debye_name_expressions_are_a_module_of_their_own():
    plain, debye = source.name_expressions(), source.name_expressions(family="debye")
    assert not any("debye" in name for name in plain)  # a plain run compiles what it did
    # 2 systems x 2 dtypes x 2 kernels x 4 orders
    assert len(debye) == len(set(debye)) == 2 * 2 * 2 * 4
    assert "wc::gpu::m3d_debye_adjoint_e<float, 8>" in debye
    assert source.name_expressions("tm2d", np.float64, 4, family="debye") == [
        "wc::gpu::tm2d_debye_e<double, 4>", "wc::gpu::tm2d_debye_adjoint_e<double, 4>"]


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_debye_kernels_compile_with_nvrtc(system):
    # The module a dispersive float64 stencil-4 run compiles (as source._module does).
    test_cuda.nvrtc_compiles(source.name_expressions(system, np.float64, 4, family="debye"))


@pytest.fixture
def empty_graph_cache():
    graphs.clear_cuda_graph_cache()
    yield
    graphs.clear_cuda_graph_cache()


@pytest.mark.parametrize("system", ("tm2d", "maxwell3d"))
def test_debye_cuda_graph_equals_the_plain_run(device, system, empty_graph_cache):
    p, debye = problem(system, 2, seed=9)
    kw = dict(stencil=4)
    plain = run(system, p, device, debye, **kw)
    for call in range(2):  # captured, then replayed from the cache
        res = run(system, p, device, debye, experimental_cuda_graph=True, **kw)
        compare(device, res.receiver_data, plain.receiver_data, F64)
        assert {n for n in plain.final_state if n.startswith("pol_")} <= set(res.final_state)
        for name in plain.final_state:
            compare(device, res.final_state[name], plain.final_state[name], F64)
    info = graphs.cuda_graph_cache_info()
    assert info["entries"] == 1 and info["replays"] >= 2
    # A graph of a run without poles is another layout (n_poles is in the key).
    run(system, p, device, None, experimental_cuda_graph=True, **kw)
    assert graphs.cuda_graph_cache_info()["entries"] == 2
