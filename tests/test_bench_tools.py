"""The bit-identity and checkout-comparison tools of bench/ (what they measure is
not checked: no test asserts a timing)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import output_hashes  # noqa: E402


def test_output_hash_cases_are_distinct_and_cover_the_options():
    cases = list(output_hashes.cases())
    labels = [output_hashes.label(c) for c in cases]
    assert len(set(labels)) == len(labels)  # a repeated label would hide a case
    for option in ("n_poles", "bf16", "interval", "batch", "grad"):
        assert any(c.get(option) for c in cases), option
    assert {c["stencil"] for c in cases} == {2, 4, 6, 8}
    assert {c["system"] for c in cases} == {"tm2d", "maxwell3d"}
    assert any(c.get("n_poles", 0) > 3 for c in cases)  # the pole count at run time


@pytest.mark.parametrize("config", [
    dict(system="tm2d", dtype=np.float32, stencil=4, n_poles=2, grad=True, bf16=True),
    dict(system="maxwell3d", dtype=np.float64, stencil=2, n_poles=1, grad=True, interval=3)])
def test_output_hash_cases_hash_every_output(config):
    outputs = dict(output_hashes.case(**config))
    assert outputs["receiver_data"].any()
    assert any(name.startswith("pol_") for name in outputs)
    grads = [name for name in outputs if name.startswith("grad_")]
    assert {"grad_delta_epsilon", "grad_tau", "grad_epsilon"} <= set(grads)
    assert all(np.abs(outputs[name]).max() > 0 for name in grads)
    again = dict(output_hashes.case(**config))  # the same run gives the same bits
    assert all(np.array_equal(outputs[name], again[name]) for name in outputs)


def test_compare_checkouts_refuses_one_checkout(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "bench" / "compare_checkouts.py"),
                          str(REPO), "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2 and "give two checkout folders" in run.stderr
    assert not list(tmp_path.iterdir())


def test_compare_checkouts_child_reports_the_checkout_it_imported(monkeypatch):
    """The child's record (what the parent checks before trusting a timing): the
    wavecore it imported and its CPU variant; bench_debye's problem made small."""
    import compare_checkouts

    monkeypatch.setattr(compare_checkouts, "CASE",
                        {**compare_checkouts.CASE, "n": 40, "shots": 1, "nt": 10,
                         "grad_nt": 10})
    got = compare_checkouts.child()
    assert got["wavecore"].startswith(str(REPO / "wavecore"))
    assert got["variant"]
    assert set(got["times"]) == {"0", "1"}
    assert set(got["times"]["1"]) == set(compare_checkouts.MEASURES)
    json.dumps(got)
