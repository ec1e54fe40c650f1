"""Which build (variant) of the compiled kernel modules a process runs.

setup.py builds each kernel module (``_tm2d``, ``_maxwell3d``) for the
compiler's baseline target and, on x86-64, again as tuned variants
(``_tm2d_v3``, ``_tm2d_v4``, ...). ``_runtime``, always baseline, lists the
variants of the build and the x86-64 levels that the CPU and its OS support.
:func:`select` picks the best variant the CPU can run, or the one that
``WAVECORE_CPU_VARIANT`` names, and refuses one the CPU cannot run: a module
built for instructions the CPU lacks is never imported (its code could stop
the process with "illegal instruction"). Every variant computes the same
numbers bit for bit (no FMA contraction, no fast math); only the speed differs.
"""

from __future__ import annotations

import importlib

__all__ = ["ENV", "REQUIRES", "CpuVariantError", "runnable", "select", "module_name",
           "import_kernel"]

ENV = "WAVECORE_CPU_VARIANT"

# The x86-64 level each tuned variant needs (setup.py's X86_VARIANTS). The
# baseline needs nothing; a WAVECORE_MARCH build ("march=native", ...) is its
# only variant and runs where its builder says it does.
REQUIRES = {"v3": "x86-64-v3", "v4": "x86-64-v4"}


class CpuVariantError(RuntimeError):
    """The requested variant of the CPU core is not built or this CPU cannot run it."""


def runnable(variant: str, levels: dict) -> bool:
    """Whether a CPU with ``levels`` ({"x86-64-v3": bool, ...}) runs ``variant``;
    False for a variant name it does not know."""
    if variant == "baseline" or variant.startswith("march="):
        return True
    need = REQUIRES.get(variant)
    return need is not None and bool(levels.get(need))


def select(built: list, levels: dict, requested: str | None = None) -> str:
    """The variant to run.

    Parameters
    ----------
    built : list of str
        The variants of the build in order of preference, best last
        (``_runtime.variants()``).
    levels : dict
        x86-64 level -> whether this CPU supports it (``_runtime.cpu_levels()``).
    requested : str or None
        A variant name; None, "" or "auto" for the best one this CPU runs.

    Returns
    -------
    str
        The name of the variant.

    Raises
    ------
    CpuVariantError
        When ``requested`` is not built or this CPU cannot run it.
    """
    if requested in (None, "", "auto"):
        usable = [v for v in built if runnable(v, levels)]
        if not usable:
            raise CpuVariantError(f"no variant of the CPU core ({', '.join(built)}) runs "
                                  "on this CPU")
        return usable[-1]
    if requested not in built:
        raise CpuVariantError(f"CPU core variant {requested!r} is not in this build "
                              f"(built: {', '.join(built)}; or 'auto')")
    if not runnable(requested, levels):
        have = [level for level, ok in sorted(levels.items()) if ok]
        raise CpuVariantError(
            f"CPU core variant {requested!r} needs an {REQUIRES[requested]} CPU and this "
            "CPU (or its OS) is not one: it supports "
            f"{', '.join(have) if have else 'none of ' + ', '.join(sorted(levels))}; "
            f"variants it runs: {', '.join(v for v in built if runnable(v, levels))}")
    return requested


def module_name(kernel: str, variant: str, built: list) -> str:
    """The module of ``kernel`` ("_tm2d" or "_maxwell3d") built as ``variant``:
    the first variant of the build has the kernel's own name, the others a
    suffix (``wavecore._cpu._tm2d_v3``)."""
    suffix = "" if variant == built[0] else f"_{variant}"
    return f"wavecore._cpu.{kernel}{suffix}"


def import_kernel(kernel: str, variant: str, built: list, levels: dict):
    """Import the module of ``kernel`` built as ``variant``, after checking once
    more that this CPU runs it."""
    if not runnable(variant, levels):  # select() refuses these; never import one
        raise CpuVariantError(f"variant {variant!r} does not run on this CPU")
    module = importlib.import_module(module_name(kernel, variant, built))
    found = module.build()["variant"]
    if found != variant:
        raise ImportError(f"{module.__name__} is the {found!r} build, not {variant!r}: "
                          "a stale build? Reinstall wavecore")
    return module
