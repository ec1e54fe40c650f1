"""The CUDA kernels (wavecore/_gpu/kernels.cu), with and without a GPU.

Every numerical test runs twice: on ``device="cuda-emulated"`` (kernels.cu
compiled as C++ and every thread of the grid run in turn on the CPU, with the
launch sequence the GPU uses: wavecore/_gpu/emulator.py), which CI runs, and
on ``device="cuda"`` (marker ``gpu``), skipped with the reason where no GPU
is usable. They compare with the numpy reference and the CPU core: forward
data, adjoint dot products and gradients, both dtypes, all orders, TM2D and
3-D, storage modes, bf16 and callbacks. The emulated kernels equal the CPU
core bit for bit (same per-cell operations, no FMA contraction); on a GPU the
issue's tolerances apply. The struct layouts the kernels take by value are
checked against the compiler's, and the source is compiled by NVRTC and nvcc
where they exist. Select with ``pytest -k "cuda or gpu"``.
"""

import shutil
import subprocess

import numpy as np
import pytest

import test_maxwell3d as m3d
import test_tm2d_gradient as t2d
import wavecore
from conftest import rel_err
from wavecore._gpu import emulator, params, source
from wavecore.testing import dottest

SYSTEMS = {"tm2d": (t2d.problem, wavecore.tm2d), "maxwell3d": (m3d.problem, wavecore.maxwell3d)}
ALL = ("epsilon", "sigma", "mu", "source_amplitude")


def call(system, p, device, **kw):
    return SYSTEMS[system][1](**p, device=device, **kw)


def _gpu_status():
    return wavecore.backends.available_backends()["cuda"]


@pytest.fixture(params=["cuda-emulated", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "cuda" and not _gpu_status().startswith("available"):
        pytest.skip(f"no GPU: {_gpu_status()}")
    return request.param


def same(device, a, b, tol):
    """Emulated kernels equal the CPU core bit for bit; a GPU within ``tol``."""
    if device == "cuda-emulated":
        np.testing.assert_array_equal(a, b)
    else:
        assert rel_err(a, b) <= tol


def small(system, **kw):
    if system == "tm2d":
        return t2d.problem(nz=11, nx=13, nt=24, **kw)
    return m3d.problem(shape=(6, 7, 8), nt=20, **kw)


@pytest.mark.parametrize("kind", ("tm2d", "maxwell3d"))
@pytest.mark.parametrize("real, dtype", (("float", np.float32), ("double", np.float64)))
def test_cuda_struct_layout_matches_the_compiler(kind, real, dtype):
    size, offsets = emulator.layout(kind, real)
    mirror = params.params_dtype(kind, dtype)
    assert size == mirror.itemsize
    assert offsets == tuple(mirror.fields[name][1] for name in mirror.names)
    assert len(params.members(kind)) == len(mirror.names) > 50


def test_cuda_name_expressions_cover_every_kernel_and_instantiation():
    names = source.name_expressions()
    # 2 systems x 2 dtypes x (5 kernels x 4 orders + 2 shot kernels)
    assert len(names) == len(set(names)) == 2 * 2 * (5 * 4 + 2)
    assert "wc::gpu::m3d_adjoint_h<double, 8>" in names
    assert "wc::gpu::tm2d_sources_receivers<float>" in names
    text = source.kernel_source()
    assert '#include "' not in text  # self-contained for NVRTC
    for name in names:
        assert f"void {name.split('::')[-1].split('<')[0]}(" in text


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("order", (2, 4, 6, 8))
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_cuda_forward_equals_cpu_and_reference(device, system, order, dtype):
    p = small(system, seed=order, dtype=dtype)
    p["source_location"][1, 1] = p["source_location"][1, 0]  # sources sharing a cell add up
    pml = (2, 1, 0, 3, 1, 2) if system == "maxwell3d" else (2, 0, 3, 1)
    kw = dict(stencil=order, pml_width=pml)
    if system == "maxwell3d":
        kw.update(receiver_component=m3d.COMPONENTS, source_component="ez")
    gpu = call(system, p, device, **kw)
    cpu = call(system, p, "cpu", **kw)
    ref = SYSTEMS[system][1](**p, python_backend=True, **kw)
    assert np.abs(ref.receiver_data).max() > 0
    tol = 1e-10 if dtype == np.float64 else 1e-5
    same(device, gpu.receiver_data, cpu.receiver_data, tol)
    for name in cpu.final_state:
        if cpu.final_state[name].size:
            same(device, gpu.final_state[name], cpu.final_state[name], tol)
    assert rel_err(gpu.receiver_data, ref.receiver_data) <= tol


@pytest.mark.parametrize("system", SYSTEMS)
def test_cuda_batched_models_equal_cpu(device, system):
    p = small(system, seed=4, batch=2)  # two models x two shots: four shot grids
    kw = dict(stencil=6, pml_width=2, requires_grad=ALL)
    gpu, cpu = call(system, p, device, **kw), call(system, p, "cpu", **kw)
    assert gpu.receiver_data.shape[:2] == (2, 2)
    same(device, gpu.receiver_data, cpu.receiver_data, 1e-10)
    y = np.random.default_rng(2).standard_normal(cpu.receiver_data.shape)
    g, c = gpu.vjp(y), cpu.vjp(y)
    for name in ALL:
        same(device, getattr(g, name), getattr(c, name), 1e-10)


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("order", (2, 4, 6, 8))
def test_cuda_dot_product(device, system, order):
    p = small(system, seed=order)
    kw = dict(stencil=order, pml_width=2)
    if system == "maxwell3d":
        kw.update(receiver_component=["ex", "hz", "ey"], source_component="ey")

    def forward(amplitude):
        return call(system, {**p, "source_amplitude": amplitude}, device, **kw).receiver_data

    def adjoint(y):
        return call(system, p, device, requires_grad="source_amplitude",
                    **kw).vjp(y).source_amplitude

    y = np.random.default_rng(order).standard_normal(forward(p["source_amplitude"]).shape)
    assert dottest(forward, adjoint, p["source_amplitude"], y).relative_error <= 1e-12


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_cuda_gradients_equal_cpu(device, system, dtype):
    p = small(system, seed=7, dtype=dtype)
    kw = dict(stencil=4, pml_width=2)
    y = np.random.default_rng(1).standard_normal(call(system, p, "cpu", **kw).receiver_data.shape)
    gpu = call(system, p, device, requires_grad=ALL, **kw).vjp(y.astype(dtype))
    cpu = call(system, p, "cpu", requires_grad=ALL, **kw).vjp(y.astype(dtype))
    ref = SYSTEMS[system][1](**p, python_backend=True, requires_grad=ALL, **kw).vjp(
        y.astype(dtype))
    for name in ALL:
        g = getattr(gpu, name)
        assert np.abs(g).max() > 0, name
        tol = 1e-10 if dtype == np.float64 else 1e-4
        same(device, g, getattr(cpu, name), tol)
        assert rel_err(g, getattr(ref, name)) <= (1e-11 if dtype == np.float64 else 1e-4), name


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("storage", [dict(storage_mode="device"), dict(storage_mode="cpu"),
                                     dict(storage_mode="cpu", storage_chunk_steps=5),
                                     dict(storage_mode="disk", storage_chunk_steps=7),
                                     dict(storage_compression="bf16"),
                                     dict(model_gradient_sampling_interval=3)])
def test_cuda_storage_options_equal_cpu(device, system, storage, tmp_path):
    p = small(system, seed=3, dtype=np.float32)
    if storage.get("storage_mode") == "disk":
        storage = {**storage, "storage_path": str(tmp_path)}
    kw = dict(stencil=2, pml_width=2, requires_grad=("epsilon", "sigma"), **storage)
    y = np.ones(call(system, p, "cpu", stencil=2, pml_width=2).receiver_data.shape, np.float32)
    gpu_run = call(system, p, device, **kw)
    if storage.get("storage_chunk_steps") and storage.get("storage_mode") == "cpu":
        # host memory behind a staging chunk on the device: several chunks
        assert gpu_run.storage.n_chunks > 1
        kw.pop("storage_chunk_steps")  # the CPU core keeps "cpu" snapshots in one piece
    gpu = gpu_run.vjp(y)
    cpu = call(system, p, "cpu", **kw).vjp(y)
    for name in ("epsilon", "sigma"):
        same(device, getattr(gpu, name), getattr(cpu, name), 1e-4)


def test_cuda_callbacks_see_and_edit_the_fields(device):
    p = small("tm2d", seed=2)
    seen = []

    def zero_ey(state):
        seen.append(state.step)
        state.get_wavefield("ey", view="full")[...] = 0.0

    kw = dict(stencil=4, pml_width=2, forward_callback=zero_ey, callback_frequency=5)
    gpu = call("tm2d", p, device, **kw)
    steps, seen[:] = list(seen), []
    cpu = call("tm2d", p, "cpu", **kw)
    assert steps == seen == [0, 5, 10, 15, 20]
    same(device, gpu.receiver_data, cpu.receiver_data, 1e-10)


def test_cuda_bench_script_runs_emulated(capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import bench_gpu

    assert bench_gpu.main(["--emulated", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    runs = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows[2:]]
    # What was run, not how fast: timings are never asserted (and the emulated
    # ones mean nothing).
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in runs] == [
        ("tm2d", "24^2", "2", "float32", "4", "forward"),
        ("maxwell3d", "8^3", "1", "float32", "4", "forward"),
        ("tm2d", "24^2", "1", "float32", "4", "fwd+grad device")]


def test_cuda_device_option_errors():
    p = small("tm2d")
    with pytest.raises(ValueError, match="device must be one of"):
        wavecore.tm2d(**p, device="gpu")
    with pytest.raises(ValueError, match="python_backend=True"):
        wavecore.tm2d(**p, device="cuda-emulated", python_backend=True)
    with pytest.raises(ValueError, match="does not use it"):
        wavecore.tm2d(**p, device="cuda-emulated", n_threads=2)


def nvrtc_compiles(names):
    """Compile kernels.cu with NVRTC for the kernel name expressions ``names``
    (NVRTC needs no GPU: CuPy's bindings and the NVRTC library suffice); fail
    with NVRTC's log, skip where NVRTC is missing."""
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 - ImportError or a missing libnvrtc
        pytest.skip(f"NVRTC is not available through CuPy here ({type(exc).__name__}: {exc})")
    program = nvrtc.createProgram(source.kernel_source(), "kernels.cu", [], [])
    for name in names:
        nvrtc.addNameExpression(program, name)
    try:
        nvrtc.compileProgram(program, [*source.NVRTC_OPTIONS, "-arch=compute_80"])
    except Exception:  # noqa: BLE001
        pytest.fail(nvrtc.getProgramLog(program)[-3000:])
    assert nvrtc.getPTX(program)
    assert all(nvrtc.getLoweredName(program, name) for name in names)


def test_cuda_source_compiles_with_nvrtc():
    nvrtc_compiles(source.name_expressions())


def find_nvcc():
    """nvcc on PATH, else the one of NVIDIA's nvidia-cuda-nvcc wheel (the test extra)."""
    import importlib.util
    from pathlib import Path

    if shutil.which("nvcc"):
        return shutil.which("nvcc")
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(root).glob("cu*/bin/nvcc")) + [Path(root) / "cuda_nvcc/bin/nvcc"]:
            if candidate.is_file():
                return str(candidate)
    return None


def test_cuda_source_compiles_with_nvcc(tmp_path):
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("no nvcc (not on PATH, no nvidia-cuda-nvcc wheel: pip install -e "
                    "'.[test]' installs it on Linux)")
    cu = tmp_path / "kernels.cu"
    cu.write_text(source.kernel_source() + source.explicit_instantiations())
    build = subprocess.run([nvcc, "-std=c++17", "--fmad=false", "-arch=sm_80", "-c", str(cu),
                            "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    symbols = subprocess.run(["nm", "-C", str(tmp_path / "k.o")], capture_output=True,
                             text=True).stdout
    assert "wc::gpu::m3d_adjoint_h<double, 8>" in symbols


def test_cuda_launch_grid_limits():
    from wavecore._gpu.launch import grids

    geometry = dict(nx=203, ny=103, nz=53, n_shots=3)
    cells, shots = grids("maxwell3d", geometry, 4)
    assert cells == (7, 13, 3 * 50) and shots == (1, 1, 1)
    with pytest.raises(ValueError, match="65535"):
        grids("maxwell3d", {**geometry, "n_shots": 2000}, 4)
