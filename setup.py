"""Build of wavecore's Cython/OpenMP CPU core.

OpenMP is probed by compiling, linking and running a small program. If that
fails the extensions are built without it (single-threaded), the build prints
a loud warning and ``wavecore.show_config()`` reports it.

The default build is portable and dispatched at run time. Each kernel module
(_tm2d, _maxwell3d) is built for the compiler's baseline target (no -march:
x86-64 with SSE2 on x86) and, on x86-64, again as tuned variants (_tm2d_v3,
_tm2d_v4, ...: -march=x86-64-v3 or -v4 with -mprefer-vector-width=256, from the
shims _<kernel>_<variant>.pyx that include the kernel's .pyx). _runtime, always
baseline, tells which x86-64 levels the CPU and OS support and the CPU backend
imports the best variant the CPU can run, never one it cannot
(wavecore/_cpu/variants.py). A wheel or a shared install thus runs on any node of
a cluster, about as fast as a native build where the node has AVX2 or AVX-512
(docs/performance.md). WAVECORE_MARCH=native builds one set of kernel modules
for the build machine only (no variants); such binaries crash with "illegal
instruction" on CPUs that lack the build machine's instructions.

Environment variables:
  WAVECORE_MARCH      value of -march, e.g. "native" (default: unset, the
                      dispatched build); with it, -mprefer-vector-width=256 where
                      the compiler takes it, and no variants
  WAVECORE_VARIANTS   the tuned variants to build on x86-64, separated by spaces
                      or commas (default: "v3 v4"; "none": the baseline only)
  WAVECORE_BUILD_JOBS extensions compiled at once (default: the usable CPUs; the
                      3-D core needs ~1.5 GB of memory per compile)
  WAVECORE_NO_OPENMP  set to 1 to build without OpenMP on purpose
  WAVECORE_EXTRA_CFLAGS  extra compiler flags, split on whitespace (opt-in tuning)
"""

from __future__ import annotations

import os
import platform
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


def _probe(flags: list[str], source: str, run: bool = True) -> tuple[bool, str]:
    """Compile and link ``source`` with ``flags`` and, with ``run``, run it;
    return (ok, output)."""
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
            if not run:
                return True, ""
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


def _march_flags(march: str) -> list[str]:
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


# The tuned variants of the kernel modules on x86-64 (name: flags, in order of
# preference, best last), and the kernel modules, slowest to compile first (the
# parallel build starts them first, best variant first: it compiles longest).
# wavecore/_cpu/variants.py knows which x86-64 level each variant needs.
# v4 takes a server tuning: with -mtune=generic the AVX-512 TM2D step ran
# 1.3x slower than -march=native on an AMD EPYC (stencil 8, in cache), with
# -mtune=icelake-server as fast or faster (docs/performance.md); tunings change
# the instruction schedule, never the results. v3 runs the same with any tuning.
X86_VARIANTS = {"v3": ["-march=x86-64-v3", "-mprefer-vector-width=256"],
                "v4": ["-march=x86-64-v4", "-mtune=icelake-server",
                       "-mprefer-vector-width=256"]}
KERNELS = ("_maxwell3d", "_tm2d")


def _is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def _variants() -> dict[str, list[str]]:
    """The builds of the kernel modules: variant name -> its -march flags. The
    first is the one under the kernel's own module name."""
    march = os.environ.get("WAVECORE_MARCH", "").strip()
    if march:
        flags = _march_flags(march)
        return {f"march={march}": flags} if flags else {"baseline": []}
    variants = {"baseline": []}
    wanted = os.environ.get("WAVECORE_VARIANTS", " ".join(X86_VARIANTS))
    wanted = [] if wanted.strip() == "none" else wanted.replace(",", " ").split()
    unknown = sorted(set(wanted) - set(X86_VARIANTS))
    if unknown:
        raise SystemExit(f"wavecore: WAVECORE_VARIANTS names unknown variants {unknown}; "
                         f"known: {list(X86_VARIANTS)} or 'none'")
    if not _is_x86_64():
        return variants
    for name, flags in X86_VARIANTS.items():
        if name not in wanted:
            continue
        ok, err = _probe(flags + ["-c"], "int f() { return 0; }", run=False)
        if ok:
            variants[name] = flags
        else:
            _loud(f"wavecore: the compiler rejects {' '.join(flags)}: the {name} variant of "
                  f"the CPU core is not built ({err.splitlines()[-1] if err else ''}).")
    return variants


def _module_suffix(variant: str, variants: dict) -> str:
    return "" if variant == next(iter(variants)) else f"_{variant}"


def _build_jobs() -> int:
    jobs = os.environ.get("WAVECORE_BUILD_JOBS", "").strip()
    if jobs:
        return max(1, int(jobs))
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


VARIANTS = _variants()


class BuildExt(build_ext):
    """Compiler flags per extension (its variant's -march); extensions compiled
    in parallel (WAVECORE_BUILD_JOBS)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # no --parallel / -j given
            self.parallel = _build_jobs()

    def build_extensions(self):
        omp_c, omp_l = _openmp_flags()
        compiler = " ".join(_compiler())

        def flags(variant: str) -> list[str]:
            return [
                "-std=c++17", "-O3",
                # Bitwise-reproducible arithmetic: no fast-math, no FMA contraction.
                "-ffp-contract=off", "-fno-fast-math",
                "-fopenmp-simd",
                # Each module keeps its own copies of the kernels' inline and
                # template functions: variants loaded together never share them.
                "-fvisibility=hidden",
                *VARIANTS.get(variant, []),
                *omp_c,
                # Python's CFLAGS carry -g: with debug information a full editable
                # install took 4.4 min on 2 cores (fresh clone), without it 3.4, and
                # the 3-D core is 9.5 MB instead of 46. WAVECORE_EXTRA_CFLAGS=-g
                # restores it.
                "-g0",
                *shlex.split(os.environ.get("WAVECORE_EXTRA_CFLAGS", "")),
            ]

        table = ";".join(f"{v}:{' '.join(flags(v))}" for v in VARIANTS)
        for ext in self.extensions:
            variant = EXTENSION_VARIANT.get(ext.name, "baseline")
            ext.extra_compile_args = [*flags(variant), "-Wno-unused-function"]
            ext.extra_link_args = [*omp_l]
            ext.define_macros = [
                *(ext.define_macros or []),
                ("WC_BUILD_FLAGS", _c_string(" ".join(flags(variant)))),
                ("WC_BUILD_COMPILER", _c_string(compiler)),
                ("WC_VARIANT", _c_string(variant)),
                ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            ]
            if ext.name.endswith("._runtime"):
                ext.define_macros.append(("WC_VARIANTS", _c_string(table)))
        print(f"wavecore: CPU core variants {list(VARIANTS)}, {self.parallel} parallel "
              "compile jobs", flush=True)
        super().build_extensions()


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: Headers every module includes: a change to one rebuilds the modules (setuptools
#: compares them with the objects; without them an edited header left stale binaries).
HEADERS = sorted(str(p.relative_to(ROOT)) for d in (CSRC, CPU) for p in (ROOT / d).glob("*.h"))


def _extension(name: str) -> Extension:
    return Extension(
        f"wavecore._cpu.{name}",
        [f"{CPU}/{name}.pyx"],
        include_dirs=[CSRC, CPU, np.get_include()],
        depends=HEADERS + [f"{CPU}/_buffers.pxd"],
        language="c++",
    )


# Kernel modules, every variant of the slowest first, then _runtime (baseline).
EXTENSION_VARIANT = {f"wavecore._cpu.{kernel}{_module_suffix(v, VARIANTS)}": v
                     for kernel in KERNELS for v in reversed(VARIANTS)}
EXTENSION_VARIANT["wavecore._cpu._runtime"] = "baseline"

setup(
    ext_modules=cythonize(
        [_extension(name.rsplit(".", 1)[1]) for name in EXTENSION_VARIANT],
        compiler_directives={"language_level": "3"},
        include_path=[CPU],
    ),
    cmdclass={"build_ext": BuildExt},
)
