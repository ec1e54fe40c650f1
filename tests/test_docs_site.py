"""The documentation site builds in strict mode (broken links, missing anchors
and unresolvable API references fail). The code examples of the pages run in
tests/test_docs_examples.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs site needs mkdocs (pip install -e .[docs])")
    pytest.importorskip("mkdocstrings", reason="the API reference needs mkdocstrings")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                            str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                           env=env)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("source_amplitude", "experimental_cuda_graph", "receiver_component",
                 "Bounds", "step_progress"):
        assert name in api, name  # docstrings rendered, not just headings
