"""Run wavecore's CUDA kernels on the CPU: kernels.cu compiled as C++ with the
grid/block emulation of emulate.h, loaded with ctypes.

CI has no GPU; this is how it executes every kernel (tests named ``cuda``).
The library is built on first use with the system C++ compiler and cached
under ``$WAVECORE_CACHE`` (default ``~/.cache/wavecore``), keyed by a hash of
its source. Buffers are numpy arrays; the launch sequence is the one the GPU
runs (:mod:`wavecore._gpu.launch`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

from ..memory import EmulatedDeviceMemory
from .params import members
from .source import GPU, LAW_KERNELS, PARAMS, kernel_source, name_expressions

FLAGS = ("-std=c++17", "-O1", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math")
"""As the CPU core: no contraction, so each cell rounds exactly as it does there."""


def harness_source() -> str:
    """emulate.h + the kernels + a table of every instantiation (the kernels of
    every law's family too) + layout probes."""
    names = name_expressions() + [name for family in LAW_KERNELS
                                  for name in name_expressions(family=family)]
    entries = []
    for name in names:
        kind = "tm2d" if "tm2d_" in name else "maxwell3d"
        real = "float" if "<float" in name else "double"
        entries.append(f'  {{"{name}", &launch<wc::{PARAMS[kind]}<{real}>, &{name}>}},')
    layout = []
    for kind, struct in PARAMS.items():
        for real in ("float", "double"):
            offsets = ", ".join(f"(int64_t)offsetof(wc::{struct}<{real}>, {m[0]})"
                                for m in members(kind))
            layout.append(f'  if (!std::strcmp(name, "{struct}<{real}>")) {{\n'
                          f'    static const int64_t o[] = {{(int64_t)sizeof(wc::{struct}<{real}>), '
                          f'{offsets}}};\n    return o;\n  }}')
    return "\n".join([
        '#include "emulate.h"',
        "#include <cstddef>",
        kernel_source(),
        "using wc::emulate::launch;",
        "static const wc::emulate::Entry ENTRIES[] = {",
        *entries,
        "};",
        'extern "C" int wc_emu_launch(const char* name, const void* params, int64_t t,',
        "                             const unsigned* grid, const unsigned* block) {",
        "  for (const auto& e : ENTRIES)",
        "    if (!std::strcmp(e.name, name)) { e.launch(params, t, grid, block); return 0; }",
        "  return -1;",
        "}",
        "// sizeof, then offsetof of every member, of a parameter struct.",
        'extern "C" const int64_t* wc_emu_layout(const char* name) {',
        *layout,
        "  return nullptr;",
        "}",
    ])


def _cache_dir() -> Path:
    root = os.environ.get("WAVECORE_CACHE") or Path.home() / ".cache" / "wavecore"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _compiler() -> list:
    return shlex.split(os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++")


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The compiled emulation library (built on first use, then cached)."""
    source = harness_source()
    emulation = (GPU / "emulate.h").read_text()  # included by path: hash its text too
    key = hashlib.sha256((source + emulation + " ".join(FLAGS)).encode()).hexdigest()[:16]
    target = _cache_dir() / f"wavecore_cuda_emulator_{key}.so"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "harness.cpp"
            src.write_text(source)
            out = Path(tmp) / target.name
            cmd = [*_compiler(), *FLAGS, f"-I{GPU}", str(src), "-o", str(out)]
            build = subprocess.run(cmd, capture_output=True, text=True)
            if build.returncode != 0:
                raise RuntimeError("building the CUDA emulator failed:\n" + build.stderr[-4000:])
            os.replace(out, target)  # atomic: parallel test workers may race
    lib = ctypes.CDLL(str(target))
    lib.wc_emu_launch.restype = ctypes.c_int
    lib.wc_emu_launch.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int64,
                                  ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint)]
    lib.wc_emu_layout.restype = ctypes.POINTER(ctypes.c_int64)
    lib.wc_emu_layout.argtypes = [ctypes.c_char_p]
    return lib


def layout(kind: str, real: str) -> tuple:
    """(sizeof, offsets of the members) of the C++ struct, from the compiler."""
    ptr = library().wc_emu_layout(f"{PARAMS[kind]}<{real}>".encode())
    return ptr[0], tuple(ptr[i + 1] for i in range(len(members(kind))))


class EmulatedLauncher:
    """Launch kernels by name over numpy buffers, on the CPU."""

    name = "cuda-emulated"
    xp = np

    def __init__(self, kind: str, dtype, order: int, family: str = ""):
        self._lib = library()  # every kernel, those of every law's family too
        self.memory = EmulatedDeviceMemory()
        self._recording = None

    def capture(self, launches, kernels=()) -> list:
        """The emulated graph: the launches recorded in order (parameters copied,
        as a CUDA graph copies kernel arguments), not run."""
        self._recording = []
        try:
            launches()
            return self._recording
        finally:
            self._recording = None

    def replay(self, graph: list) -> None:
        for launch in graph:
            self._launch(*launch)

    def device_id(self) -> int:
        return 0

    def __call__(self, kernel: str, grid: tuple, block: tuple, params: np.ndarray, t: int):
        if self._recording is not None:
            self._recording.append((kernel, grid, block, params.copy(), t))
        else:
            self._launch(kernel, grid, block, params, t)

    def _launch(self, kernel: str, grid: tuple, block: tuple, params: np.ndarray, t: int):
        g = (ctypes.c_uint * 3)(*grid)
        b = (ctypes.c_uint * 3)(*block)
        rc = self._lib.wc_emu_launch(kernel.encode(), params.ctypes.data, t, g, b)
        if rc != 0:
            raise KeyError(f"no emulated kernel {kernel!r}")
