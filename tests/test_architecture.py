"""Structure rules: import direction, lazy imports, build flags."""

import ast
import json
import subprocess
import sys
import textwrap
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import wavecore

PACKAGE = Path(wavecore.__file__).parent
ROOT = PACKAGE.parent


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_planner_never_imports_backends_or_devices():
    for module in ("plan.py", "grid.py", "cfl.py", "stencils.py", "_inputs.py", "state.py"):
        imports = _imports(PACKAGE / module)
        assert not any("backends" in m or "_cpu" in m or "cupy" in m for m in imports), \
            (module, imports)


REFERENCE_BACKENDS = ("wavecore.backends.reference_tm2d", "wavecore.backends.reference_maxwell3d")


def _forbidden(module: str) -> bool:
    """The compiled CPU core, the CUDA backend (and its emulator) or CuPy."""
    return (module.split(".")[0] in ("cupy", "cupyx")
            or any(module == p or module.startswith(p + ".")
                   for p in ("wavecore._cpu", "wavecore._gpu")))


def _module_file(module: str) -> Path | None:
    """The source file of a wavecore module, or None (not wavecore, not a module)."""
    parts = module.split(".")
    if parts[0] != "wavecore":
        return None
    base = ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _import_nodes(tree: ast.AST, functions: bool):
    """Import statements of a module; inside function bodies only if ``functions``
    (module-level code, class bodies and ``if`` blocks run at import time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if not functions and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))


def _absolute_imports(module: str, path: Path, functions: bool) -> set[str]:
    """The absolute names a module imports, with ``from a import b`` giving
    both ``a`` and ``a.b``."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in _import_nodes(ast.parse(path.read_text()), functions):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        else:
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _wavecore_imports(roots) -> dict[str, str]:
    """Every module reached from ``roots`` (all their imports, function-level
    ones too) through the imports that other wavecore modules run when they
    are imported, mapped to the module that imports it first."""
    reached = {root: "" for root in roots}
    todo = list(roots)
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if path is None:
            continue
        for name in sorted(_absolute_imports(module, path, functions=module in roots)):
            if name not in reached:
                reached[name] = module
                todo.append(name)
    return reached


def test_reference_backends_are_independent_of_the_compiled_core():
    """The numpy reference is the independent oracle: neither reference backend
    (any import in them) nor the wavecore modules they import (what those run
    at import time, transitively) may import the compiled core, the CUDA code
    or CuPy. Function-level imports of those other modules (e.g. cupy in
    memory.CupyMemory, which the reference never uses) are checked by running
    the reference with them refused (the next test)."""
    reached = _wavecore_imports(REFERENCE_BACKENDS)
    bad = {m: by for m, by in reached.items() if _forbidden(m)}
    assert not bad, f"reached (module: imported by): {bad}"
    # The walk did follow the imports, transitively (grid comes through plan).
    assert {"wavecore.plan", "wavecore.stencils", "wavecore.grid"} <= set(reached), reached


def test_reference_runs_never_import_the_compiled_core():
    """At run time: with the compiled core and CuPy refused from the start (as
    on a machine without them), forward runs and gradients of both systems on
    the reference backend work and try to import nothing of the compiled core,
    the CUDA code (beyond the pure-Python graph cache that ``import wavecore``
    loads) or CuPy."""
    code = textwrap.dedent("""
        import importlib.abc, json, sys
        attempts, refused = [], ["cupy", "cupyx"]

        def compiled(name):  # the extension modules of wavecore._cpu (variants.py is Python)
            return name.startswith("wavecore._cpu._")

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if compiled(name) or any(name == r or name.startswith(r + ".") for r in refused):
                    attempts.append(name)
                    raise ImportError(f"refused by the test: {name}")
                return None

        sys.meta_path.insert(0, Refuse())
        import numpy as np
        import wavecore
        from wavecore.backends import cpu
        at_import, attempts[:] = list(attempts), []
        # From now on also the CUDA modules that import wavecore did not load
        # (finders are asked only for modules not loaded yet).
        refused.append("wavecore._gpu")
        rng = np.random.default_rng(0)
        for run, shape, loc in ((wavecore.tm2d, (8, 9), [[[2, 3]]]),
                                (wavecore.maxwell3d, (5, 6, 7), [[[2, 3, 4]]])):
            eps, sig, mu = 4 + rng.random(shape), 1e-2 * rng.random(shape), np.ones(shape)
            amp = rng.standard_normal((1, 1, 12))
            res = run(eps, sig, mu, 0.01, 1e-12, amp, np.array(loc), np.array(loc),
                      stencil=4, pml_width=2, python_backend=True,
                      requires_grad=("epsilon", "sigma", "mu", "source_amplitude"))
            grads = res.vjp(np.ones_like(res.receiver_data))
            assert np.abs(grads.epsilon).max() > 0 and np.abs(grads.mu).max() > 0
        during_runs = list(attempts)
        loaded = [m for m in sys.modules if compiled(m)]
        # The refusal works: asked for the core now, the CPU backend cannot load it.
        core_missing = cpu._load_runtime()[1] is not None
        print(json.dumps({"core_missing": core_missing, "at_import": at_import,
                          "attempts": during_runs, "loaded": loaded}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    # The refusal works: the CPU backend cannot load the compiled core...
    assert facts["core_missing"], facts
    # ...and neither ``import wavecore`` nor the reference runs asked for any of it.
    assert facts["at_import"] == [] and facts["attempts"] == [] and facts["loaded"] == [], facts


def test_import_is_lazy():
    code = ("import sys, wavecore; bad = [m for m in ('cupy', 'torch', 'jax', 'matplotlib', "
            "'scipy') if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"import wavecore imported {out}"


# Options that give up IEEE rounding for speed: with any of them the compiled
# core, its CUDA kernels and the numpy reference would no longer agree bit for bit.
HOST_UNSAFE = ("-ffast-math", "-Ofast", "-funsafe-math-optimizations", "-ffinite-math-only",
               "-fassociative-math", "-freciprocal-math", "-fno-signed-zeros",
               "-fcx-limited-range", "-ffp-contract=fast", "-ffp-contract=on")
NVRTC_UNSAFE = ("use_fast_math", "ftz=true", "prec-div=false", "prec-sqrt=false", "fmad=true")


def assert_host_flags_exact(flags, what):
    flags = list(flags)
    assert not set(flags) & set(HOST_UNSAFE), (what, flags)
    contract = [f for f in flags if f.startswith("-ffp-contract=")]
    assert contract and contract[-1] == "-ffp-contract=off", (what, flags)


def test_no_fast_math_in_the_nvrtc_options(monkeypatch):
    from wavecore._gpu import source

    options = [o.lstrip("-") for o in source.NVRTC_OPTIONS]
    assert "fmad=false" in options and not set(options) & set(NVRTC_UNSAFE), options
    # ... and they are the options the kernels are compiled with: a stand-in
    # for cupy records what source.py hands to NVRTC.
    given = []

    class RawModule:
        def __init__(self, code, options, name_expressions):
            given.append(tuple(options))

        def compile(self):
            pass

    class Device:
        def __init__(self, index=0):
            self.id = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.ModuleType("cupy")
    fake.RawModule = RawModule
    fake.cuda = types.SimpleNamespace(Device=Device)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    source._module.cache_clear()
    try:
        source.cupy_module("maxwell3d", np.float32, 4)
    finally:
        source._module.cache_clear()  # never keep the stand-in's module
    assert given == [tuple(source.NVRTC_OPTIONS)]


def test_no_fast_math_in_the_emulator_build():
    from wavecore._gpu import emulator

    assert_host_flags_exact(emulator.FLAGS, "emulator FLAGS")
    assert "-fno-fast-math" in emulator.FLAGS
    # The compiler command may carry flags of its own (CXX="g++ ...").
    assert not set(emulator._compiler()) & set(HOST_UNSAFE), emulator._compiler()


def test_no_fast_math_in_the_built_extension():
    from wavecore.backends import cpu

    _runtime, _IMPORT_ERROR = cpu._load_runtime()
    if _IMPORT_ERROR is not None:
        pytest.skip(f"the compiled core is not built: {_IMPORT_ERROR}")
    # The flags the extension was compiled with (embedded as WC_BUILD_FLAGS).
    flags = _runtime.build_flags()["flags"].split()
    assert_host_flags_exact(flags, "WC_BUILD_FLAGS")
    assert "-fno-fast-math" in flags
    # Every variant of the kernel modules (v3 and v4 have fused multiply-add
    # instructions, so contraction is their risk) carries the same guarantees.
    for variant, variant_flags in cpu.built_variants().items():
        assert_host_flags_exact(variant_flags.split(), f"variant {variant}")
        assert "-fno-fast-math" in variant_flags.split(), variant
    # What the compiler made of them: a * b + c rounds twice (no fused
    # multiply-add), and isnan is not folded away (no finite-math-only). The
    # values make a fused result 2**-60 instead of 0.
    n = 67  # a vectorized loop and its scalar remainder
    a = np.full(n, 1 + 2.0**-30)
    out = np.full(n, np.nan)
    keeps_nan = _runtime.float_semantics(a, a, np.full(n, -(1 + 2.0**-29)), out, float("nan"))
    assert keeps_nan
    np.testing.assert_array_equal(out, 0.0)
    # The probe can fail: the exact result, which a fused multiply-add returns, is 2**-60.
    exact = Fraction(1 + 2.0**-30) ** 2 - Fraction(1 + 2.0**-29)
    assert exact == Fraction(1, 2**60) and (1 + 2.0**-30) ** 2 - (1 + 2.0**-29) == 0.0


def test_modules_stay_small():
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines < 800, f"{path.relative_to(ROOT)} has {lines} lines"
