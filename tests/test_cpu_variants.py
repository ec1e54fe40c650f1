"""Variants of the compiled CPU kernels: identical numbers, selection, reporting.

setup.py builds the kernel modules for the baseline target and, on x86-64, as
tuned variants (v3: AVX2, v4: AVX-512); the backend imports the best one the
CPU runs (wavecore/_cpu/variants.py). Every variant must compute the baseline's
numbers bit for bit, forward and gradients; the selection must never pick or
accept a variant the CPU cannot run.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wavecore
from conftest import random_acquisition, stable_dt
from wavecore._cpu import variants
from wavecore._cpu.variants import CpuVariantError, select
from wavecore.backends import cpu

CPU_DIR = Path(wavecore.__file__).parent / "_cpu"
ALL = ("epsilon", "sigma", "mu", "source_amplitude")
BUILT = list(cpu.built_variants())
LEVELS = cpu.runtime().cpu_levels()


@pytest.fixture
def restore_variant():
    before = cpu.cpu_variant()
    yield
    cpu.use_cpu_variant(before)


def tm2d_problem(dtype):
    # Rows long enough for 16-float vectors and their remainders, CPML widths
    # that differ per side, a layered model with a random block.
    nz, nx, nt = 26, 53, 30
    rng = np.random.default_rng(3)
    eps = np.where(np.arange(nz)[:, None] < 11, 4.0, 9.0) + np.zeros((nz, nx))
    eps[5:15, 20:31] += 3 * rng.random((10, 11))
    sig = 0.02 * rng.random((nz, nx))
    mu = 1.0 + 0.3 * rng.random((nz, nx))
    amp, src, rec = random_acquisition(nz, nx, 3, 2, 4, nt, dtype, seed=5)
    return dict(epsilon=eps.astype(dtype), sigma=sig.astype(dtype), mu=mu.astype(dtype),
                grid_spacing=(0.01, 0.012), dt=stable_dt((0.01, 0.012), 4.0, 1.0),
                source_amplitude=amp, source_location=src, receiver_location=rec)


def maxwell3d_problem(dtype):
    # Layers (rows whose coefficients are read once) and a random block (rows
    # read per cell); x rows of 37 cells.
    shape, nt = (9, 8, 37), 20
    rng = np.random.default_rng(4)
    eps = np.where(np.arange(shape[0])[:, None, None] < 4, 4.0, 9.0) + np.zeros(shape)
    eps[2:6, 2:5, 10:25] += 3 * rng.random((4, 3, 15))
    sig = np.where(np.arange(shape[0])[:, None, None] < 4, 0.0, 0.02) + np.zeros(shape)
    mu = np.ones(shape)
    amp = rng.standard_normal((2, 2, nt)).astype(dtype)
    cells = [np.stack([rng.integers(0, s, (2, n)) for s in shape], -1) for n in (2, 3)]
    return dict(epsilon=eps.astype(dtype), sigma=sig.astype(dtype), mu=mu.astype(dtype),
                grid_spacing=(0.01, 0.012, 0.011), dt=stable_dt((0.01, 0.012, 0.011), 4.0, 1.0),
                source_amplitude=amp, source_location=cells[0], receiver_location=cells[1])


CASES = {"tm2d": (wavecore.tm2d, tm2d_problem, dict(pml_width=(4, 3, 5, 6))),
         "maxwell3d": (wavecore.maxwell3d, maxwell3d_problem,
                       dict(pml_width=(2, 3, 1, 2, 4, 5), receiver_component=["ey", "hz"]))}


def outputs(kind, variant, dtype, order):
    """Receiver data, final state and every gradient of one run on ``variant``."""
    fn, make, kw = CASES[kind]
    cpu.use_cpu_variant(variant)
    res = fn(**make(dtype), stencil=order, n_threads=2, requires_grad=ALL, **kw)
    residual = np.random.default_rng(6).standard_normal(res.receiver_data.shape)
    grads = res.vjp(residual.astype(dtype))
    assert cpu.require_cpu_core(kind).build()["variant"] == variant
    return {"receiver_data": res.receiver_data, **res.final_state,
            **{f"grad {name}": getattr(grads, name) for name in ALL}}


def skip_unless_runnable(variant):
    if variant not in BUILT:
        pytest.skip(f"variant {variant} is not in this build (built: {', '.join(BUILT)})")
    if not variants.runnable(variant, LEVELS):
        pytest.skip(f"this CPU cannot run variant {variant} (it needs "
                    f"{variants.REQUIRES[variant]}; CPU levels: {LEVELS})")


@pytest.mark.parametrize("variant", sorted(variants.REQUIRES))
@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("dtype, order", [(np.float32, 4), (np.float32, 8), (np.float64, 2)])
def test_variant_matches_baseline_bit_for_bit(restore_variant, variant, kind, dtype, order):
    skip_unless_runnable(variant)
    base = outputs(kind, BUILT[0], dtype, order)
    tuned = outputs(kind, variant, dtype, order)
    assert base.keys() == tuned.keys()
    for name, value in base.items():
        assert value.dtype == dtype and np.abs(value).max() > 0, name
        assert np.array_equal(value, tuned[name]), (
            f"{kind} {name}: {variant} differs from {BUILT[0]} by up to "
            f"{np.abs(value - tuned[name]).max():.3g} (max |value| {np.abs(value).max():.3g})")


def test_variant_modules_carry_their_flags(restore_variant):
    for variant in BUILT:
        if not variants.runnable(variant, LEVELS):
            continue
        cpu.use_cpu_variant(variant)
        for kind in CASES:
            build = cpu.require_cpu_core(kind).build()
            assert build == {"variant": variant, "flags": cpu.built_variants()[variant]}
            march = {"v3": "-march=x86-64-v3", "v4": "-march=x86-64-v4"}.get(variant)
            assert (march in build["flags"]) if march else ("x86-64-v" not in build["flags"])


# ---- selection, with fake capability sets ------------------------------------------

NONE = {"x86-64-v3": False, "x86-64-v4": False}
V3 = {"x86-64-v3": True, "x86-64-v4": False}
V4 = {"x86-64-v3": True, "x86-64-v4": True}
FULL = ["baseline", "v3", "v4"]


@pytest.mark.parametrize("built, levels, expected", [
    (FULL, V4, "v4"), (FULL, V3, "v3"), (FULL, NONE, "baseline"), (FULL, {}, "baseline"),
    (["baseline", "v3"], V4, "v3"), (["baseline", "v4"], V3, "baseline"),
    (["baseline"], V4, "baseline"), (["march=native"], NONE, "march=native")])
def test_automatic_selection_takes_the_best_runnable_variant(built, levels, expected):
    assert select(built, levels) == expected
    assert select(built, levels, "auto") == select(built, levels, "") == expected


@pytest.mark.parametrize("requested, levels, match", [
    ("v4", V3, "needs an x86-64-v4 CPU.*supports x86-64-v3; variants it runs: baseline, v3"),
    ("v3", NONE, "needs an x86-64-v3 CPU.*none of"), ("v5", V4, "not in this build"),
    ("native", V4, "not in this build")])
def test_an_override_the_cpu_cannot_run_is_refused(requested, levels, match):
    with pytest.raises(CpuVariantError, match=match):
        select(FULL, levels, requested)


def test_overrides_the_cpu_runs_are_taken():
    assert [select(FULL, V4, v) for v in FULL] == FULL
    assert select(FULL, V3, "baseline") == "baseline"


def test_unknown_variants_never_count_as_runnable():
    assert not variants.runnable("v5", V4)
    assert select(["baseline", "v5"], V4) == "baseline"


def test_use_cpu_variant_refuses_what_this_cpu_lacks(restore_variant, monkeypatch):
    tuned = [v for v in BUILT if v in variants.REQUIRES]
    if not tuned:
        pytest.skip(f"no tuned variant in this build ({', '.join(BUILT)})")
    before = cpu.cpu_variant()
    monkeypatch.setattr(cpu.runtime(), "cpu_levels", lambda: dict(NONE), raising=False)
    for variant in tuned:
        with pytest.raises(CpuVariantError, match=f"needs an {variants.REQUIRES[variant]}"):
            cpu.use_cpu_variant(variant)
        assert cpu.cpu_variant() == before  # unchanged
        with pytest.raises(CpuVariantError):  # and never imported
            variants.import_kernel("_tm2d", variant, BUILT, NONE)
    assert cpu.use_cpu_variant("auto") == BUILT[0]


def test_the_machine_gets_its_best_variant():
    assert cpu.cpu_variant() == select(BUILT, LEVELS, os.environ.get(variants.ENV))


# ---- the environment override and reporting, in fresh processes ----------------------

PROBE = """
import json, sys, wavecore
loaded = lambda: sorted(m for m in sys.modules if m.startswith("wavecore._cpu._"))
out = {"after_import": loaded()}
try:
    info = wavecore.show_config()
    out.update(variant=info["cpu_variant"], flags=info["build"]["flags"],
               variants=info["cpu_variants"], cpu=info["backends"]["cpu"])
except Exception as exc:
    out["error"] = repr(exc)
out["loaded"] = loaded()
print(json.dumps(out))
"""


def probe(variant=None):
    env = {k: v for k, v in os.environ.items() if k != variants.ENV}
    if variant is not None:
        env[variants.ENV] = variant
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, check=True)
    return run.stdout, json.loads(run.stdout.strip().splitlines()[-1])


def test_show_config_reports_the_variant_in_use_and_every_variant_built():
    out, found = probe()
    best = select(BUILT, LEVELS)
    assert found["variant"] == best and re.search(rf"^cpu_variant +: {best}$", out, re.M)
    assert found["flags"] == cpu.built_variants()[best]
    assert f"variant {best}" in found["cpu"]
    assert list(found["variants"]) == BUILT
    for name, flags in found["variants"].items():
        assert flags.endswith(cpu.built_variants()[name])
        assert flags.startswith("(not on this CPU)") != variants.runnable(name, LEVELS)
    assert found["after_import"] == []  # import wavecore loads no compiled module
    # show_config loads _runtime and the kernels of the variant in use, no other
    assert found["loaded"] == sorted(["wavecore._cpu._runtime",
                                      *(variants.module_name(k, best, BUILT)
                                        for k in ("_tm2d", "_maxwell3d"))])


def test_environment_override_selects_the_baseline():
    out, found = probe(BUILT[0])
    assert found["variant"] == BUILT[0] and re.search(rf"^cpu_variant +: {BUILT[0]}$", out, re.M)
    assert found["flags"] == cpu.built_variants()[BUILT[0]]
    assert found["loaded"] == ["wavecore._cpu._maxwell3d", "wavecore._cpu._runtime",
                               "wavecore._cpu._tm2d"]


def test_environment_override_the_build_lacks_is_reported():
    _, found = probe("v9")
    assert found["variant"].startswith("none (CPU core variant 'v9' is not in this build")
    assert found["cpu"].startswith("unavailable: CPU core variant 'v9'")
    assert found["loaded"] == ["wavecore._cpu._runtime"]
    with pytest.raises(subprocess.CalledProcessError) as err:
        subprocess.run([sys.executable, "-c", "import numpy as np, wavecore; "
                        "wavecore.tm2d(*np.ones((3, 8, 8)), 0.01, 1e-11, None, None, None, nt=1)"],
                       env={**os.environ, variants.ENV: "v9"}, capture_output=True,
                       text=True, check=True)
    assert "CpuVariantError: CPU core variant 'v9' is not in this build" in err.value.stderr


# ---- the shims that build the variants ---------------------------------------------

@pytest.mark.parametrize("variant", sorted(variants.REQUIRES))
@pytest.mark.parametrize("kernel", ["_tm2d", "_maxwell3d"])
def test_variant_shims_include_their_kernel_with_its_directives(kernel, variant):
    shim = (CPU_DIR / f"{kernel}_{variant}.pyx").read_text().splitlines()
    main = (CPU_DIR / f"{kernel}.pyx").read_text().splitlines()
    assert shim[:2] == main[:2]  # Cython reads the directives of the compiled file only
    assert shim[-1] == f'include "{kernel}.pyx"'
