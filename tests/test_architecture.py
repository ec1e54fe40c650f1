"""Structure rules: import direction, lazy imports, build flags."""

import ast
import subprocess
import sys
from pathlib import Path

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


def test_reference_backend_is_independent_of_the_compiled_core():
    imports = _imports(PACKAGE / "backends" / "reference_tm2d.py")
    assert not any("_cpu" in m or "cupy" in m for m in imports), imports


def test_import_is_lazy():
    code = ("import sys, wavecore; bad = [m for m in ('cupy', 'torch', 'jax', 'matplotlib', "
            "'scipy') if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"import wavecore imported {out}"


def test_no_fast_math_in_the_build():
    setup = (ROOT / "setup.py").read_text()
    assert "-ffast-math" not in setup and "use_fast_math" not in setup


def test_modules_stay_small():
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines < 800, f"{path.relative_to(ROOT)} has {lines} lines"
