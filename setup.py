"""Build of wavecore's Cython/OpenMP CPU core.

OpenMP is probed by compiling, linking and running a small program. If that
fails the extensions are built without it (single-threaded), the build prints
a loud warning and ``wavecore.show_config()`` reports it.

The default build is portable: no -march, so the compiler's baseline target
(x86-64 with SSE2 on x86), and a wheel or a shared install runs on any node of
a cluster. Tuning for the build machine is opt-in: with WAVECORE_MARCH=native
the 3-D step ran 1.3-1.4x and the TM2D step 1.1-2.0x faster on an AVX-512 VM
(side by side, docs/performance.md), but such binaries crash with "illegal
instruction" on CPUs that lack the build machine's instructions.

Environment variables:
  WAVECORE_MARCH      value of -march, e.g. "native" (default: unset, no -march,
                      portable); with it, -mprefer-vector-width=256 where the
                      compiler takes it
  WAVECORE_NO_OPENMP  set to 1 to build without OpenMP on purpose
  WAVECORE_EXTRA_CFLAGS  extra compiler flags, split on whitespace (opt-in tuning)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CSRC = "wavecore/_csrc"
CPU = "wavecore/_cpu"

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <cstdio>
    int main() {
      int n = 0;
      #pragma omp parallel reduction(+ : n)
      n += 1;
      std::printf("%d %d\\n", n, _OPENMP);
      return n >= 1 ? 0 : 1;
    }
    """
)


def _compiler() -> list[str]:
    cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++"
    return shlex.split(cxx)


def _probe(flags: list[str], source: str) -> tuple[bool, str]:
    """Compile, link and run ``source`` with ``flags``; return (ok, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        exe = Path(tmp) / "probe"
        src.write_text(source)
        try:
            build = subprocess.run(
                [*_compiler(), *flags, str(src), "-o", str(exe)],
                capture_output=True, text=True, timeout=120,
            )
            if build.returncode != 0:
                return False, build.stderr.strip()
            run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
            return run.returncode == 0, run.stdout.strip() or run.stderr.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            return False, str(exc)


def _loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n{textwrap.fill(message, 78)}\n{bar}\n", file=sys.stderr, flush=True)


def _openmp_flags() -> tuple[list[str], list[str]]:
    if os.environ.get("WAVECORE_NO_OPENMP") == "1":
        _loud("wavecore: WAVECORE_NO_OPENMP=1, building the CPU core WITHOUT OpenMP "
              "(single-threaded).")
        return [], []
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    for cflags, lflags in candidates:
        ok, out = _probe([*cflags, *lflags], OPENMP_PROBE)
        if ok:
            print(f"wavecore: OpenMP probe ran ({out}): building with {cflags + lflags}")
            return cflags, lflags
    _loud("wavecore: OpenMP is NOT available with this compiler (probe program failed "
          "to compile, link or run). The CPU core is built single-threaded; "
          "wavecore.show_config() will say so. Install an OpenMP runtime (e.g. libgomp or "
          "libomp) and rebuild for multi-threaded runs.")
    return [], []


def _march_flags() -> list[str]:
    march = os.environ.get("WAVECORE_MARCH", "").strip()
    if not march:
        return []
    ok, _ = _probe([f"-march={march}"], "int main() { return 0; }")
    if not ok:
        _loud(f"wavecore: the compiler rejects -march={march} (WAVECORE_MARCH): building "
              "for its default target instead.")
        return []
    # With AVX-512, 16-float vectors leave long scalar remainders on the short
    # CPML row segments; 8-float vectors run the 3-D step ~15 % faster
    # (measured on an AMD EPYC, see docs/performance.md). x86 compilers only.
    narrow = ["-mprefer-vector-width=256"]
    ok, _ = _probe([f"-march={march}", *narrow], "int main() { return 0; }")
    return [f"-march={march}", *(narrow if ok else [])]


class BuildExt(build_ext):
    def build_extensions(self):
        omp_c, omp_l = _openmp_flags()
        flags = [
            "-std=c++17", "-O3",
            # Bitwise-reproducible arithmetic: no fast-math, no FMA contraction.
            "-ffp-contract=off", "-fno-fast-math",
            "-fopenmp-simd",
            *_march_flags(),
            *omp_c,
            # Python's CFLAGS carry -g: with debug information a full editable
            # install took 4.4 min on 2 cores (fresh clone), without it 3.4, and
            # the 3-D core is 9.5 MB instead of 46. WAVECORE_EXTRA_CFLAGS=-g
            # restores it.
            "-g0",
            *shlex.split(os.environ.get("WAVECORE_EXTRA_CFLAGS", "")),
        ]
        compiler = " ".join(_compiler())
        for ext in self.extensions:
            ext.extra_compile_args = [*flags, "-Wno-unused-function"]
            ext.extra_link_args = [*omp_l]
            ext.define_macros = [
                *(ext.define_macros or []),
                ("WC_BUILD_FLAGS", '"' + " ".join(flags) + '"'),
                ("WC_BUILD_COMPILER", '"' + compiler + '"'),
                ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            ]
        super().build_extensions()


def _extension(name: str) -> Extension:
    return Extension(
        f"wavecore._cpu.{name}",
        [f"{CPU}/{name}.pyx"],
        include_dirs=[CSRC, CPU, np.get_include()],
        language="c++",
    )


setup(
    ext_modules=cythonize(
        [_extension("_runtime"), _extension("_tm2d"), _extension("_maxwell3d")],
        compiler_directives={"language_level": "3"},
        include_path=[CPU],
    ),
    cmdclass={"build_ext": BuildExt},
)
