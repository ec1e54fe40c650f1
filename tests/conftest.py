"""Shared fixtures: small random models and acquisitions, backend parametrization,
the small batch job the job tests start from."""

from __future__ import annotations

import numpy as np
import pytest

import wavecore

BACKENDS = ["reference", "cpu"]


def run_tm2d(backend: str, *args, **kwargs):
    """``wavecore.tm2d`` on the named backend ("reference" or "cpu")."""
    if backend == "reference":
        kwargs.setdefault("python_backend", True)
        kwargs.pop("n_threads", None)
    return wavecore.tm2d(*args, **kwargs)


def random_model(nz, nx, dtype=np.float64, seed=0, batch=None):
    """A smooth-ish heterogeneous model (epsilon, sigma, mu) with every
    parameter varying, so that coefficient mix-ups show."""
    rng = np.random.default_rng(seed)
    shape = (nz, nx) if batch is None else (batch, nz, nx)
    eps = 3.0 + 4.0 * rng.random(shape)
    sig = 5e-3 * rng.random(shape)
    mu = 1.0 + 0.5 * rng.random(shape)
    return tuple(a.astype(dtype) for a in (eps, sig, mu))


def random_acquisition(nz, nx, n_shots, n_src, n_rec, nt, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    amp = rng.standard_normal((n_shots, n_src, nt)).astype(dtype)
    src = np.stack([rng.integers(0, nz, (n_shots, n_src)), rng.integers(0, nx, (n_shots, n_src))], -1)
    rec = np.stack([rng.integers(0, nz, (n_shots, n_rec)), rng.integers(0, nx, (n_shots, n_rec))], -1)
    return amp, src, rec


def stable_dt(spacing, eps_min=1.0, mu_min=1.0, stencil=8, fraction=0.9):
    """A time step safely below the CFL limit of every stencil."""
    v = wavecore.C0 / np.sqrt(eps_min * mu_min)
    return fraction * wavecore.max_stable_dt(spacing, v, stencil)


SPACING3 = (0.01, 0.012, 0.011)


def random_problem_3d(n=(8, 9, 10), nt=24, shots=1, seed=0, dtype=np.float64,
                      sigma_max=0.02):
    """The arguments of a small heterogeneous ``maxwell3d`` run (two random sources
    and three random receivers per shot), spacing :data:`SPACING3`."""
    rng = np.random.default_rng(seed)
    eps = (3.0 + 3.0 * rng.random(n)).astype(dtype)
    sig = (sigma_max * rng.random(n)).astype(dtype)
    mu = (1.0 + 0.5 * rng.random(n)).astype(dtype)
    amp = rng.standard_normal((shots, 2, nt)).astype(dtype)
    src = np.stack([rng.integers(0, k, (shots, 2)) for k in n], -1)
    rec = np.stack([rng.integers(0, k, (shots, 3)) for k in n], -1)
    dt = stable_dt(SPACING3, float(eps.min()), float(mu.min()))
    return dict(epsilon=eps, sigma=sig, mu=mu, grid_spacing=SPACING3, dt=dt,
                source_amplitude=amp, source_location=src, receiver_location=rec)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a).max())


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


# A 6-shot forward job over a built-in model, for the job and CLI tests.
JOB = """
[model]
builtin = "buried_pipe_and_void"
spacing = 0.05

[wavelet]
frequency = 3e8
nt = 80

[acquisition]
first_source = [2, 4]
step = [0, 5]
shots = 6
receiver_offsets = [[0, 3], [1, 6]]

[solver]
stencil = 4
pml_width = 8

[output]
path = "out.h5"
"""


def write_job(tmp_path, text=JOB, name="job.toml", **sections):
    """The job file, with lines added to (or a new) section: section="key = value"."""
    for section, body in sections.items():
        if f"[{section}]\n" in text:
            text = text.replace(f"[{section}]\n", f"[{section}]\n{body}\n")
        else:
            text += f"\n[{section}]\n{body}\n"
    path = tmp_path / name
    path.write_text(text)
    return path
