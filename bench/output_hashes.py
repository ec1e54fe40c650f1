"""Hashes of what the CPU core computes, to show a change keeps every bit.

Usage::

    python bench/output_hashes.py                  # prints one line per case and TOTAL
    python bench/output_hashes.py --out hashes.json
    WAVECORE_CPU_VARIANT=baseline python bench/output_hashes.py

Run it on the code before and after a change that must not change results (a
refactor, a vectorization fix, a new dispatch) and compare the lines: a case
whose hash differs names what changed. Every case runs small grids with the
CPML on every side (rows cross the slabs), two shots, and hashes (SHA-256 of
the raw bytes) the receiver data, the final state and, for gradient cases, every
gradient: TM2D and 3-D, float32 and float64, stencils 2/4/6/8, Debye media
with 1, 2, 3 and 5 poles (5: the pole count at run time, not compiled in),
bf16 snapshots, a sampling interval, batched models. The variants of a build
compute the same bits (no fast-math, no contraction), so the hashes also agree
between ``WAVECORE_CPU_VARIANT`` values. About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import numpy as np

import wavecore
from wavecore.backends.cpu import cpu_variant

TARGETS = ("epsilon", "sigma", "mu", "source_amplitude")
POLE_TARGETS = ("delta_epsilon", "tau")


def _model(shape, dtype, rng, batch=None):
    full = shape if batch is None else (batch, *shape)
    eps = (2.0 + 6.0 * rng.random(full)).astype(dtype)
    sig = (0.02 * rng.random(full)).astype(dtype)
    mu = (1.0 + 0.3 * rng.random(full)).astype(dtype)
    return eps, sig, mu


def _poles(n_poles, shape, dtype, rng):
    de = (1.0 + 3.0 * rng.random((n_poles, *shape))).astype(dtype)
    tau = (10.0 ** rng.uniform(-9.5, -8.5, (n_poles, *shape))).astype(dtype)
    return wavecore.Debye(de, tau)


def case(system, dtype, stencil, n_poles=0, grad=False, bf16=False, interval=1, batch=None):
    """Run one configuration; return its outputs as a list of (name, array)."""
    rng = np.random.default_rng(stencil * 7 + n_poles)
    if system == "tm2d":
        shape, spacing, nt, fn = (30, 34), (0.01, 0.012), 40, wavecore.tm2d
    else:
        shape, spacing, nt, fn = (16, 17, 18), (0.01, 0.011, 0.012), 20, wavecore.maxwell3d
    eps, sig, mu = _model(shape, dtype, rng, batch)
    shots = 2
    src = np.stack([rng.integers(2, k - 2, (shots, 2)) for k in shape], -1)
    rec = np.stack([rng.integers(0, k, (shots, 3)) for k in shape], -1)
    amp = rng.standard_normal((shots, 2, nt)).astype(dtype)
    dt = 0.3 * min(spacing) / 299792458.0  # a fixed number: recorded TOTALs depend on it
    kw = dict(stencil=stencil, pml_width=4)
    if n_poles:
        kw["dispersion"] = _poles(n_poles, eps.shape, dtype, rng)
    if grad:
        kw.update(requires_grad=TARGETS + (POLE_TARGETS if n_poles else ()),
                  storage_compression="bf16" if bf16 else False, model_gradient_sampling_interval=interval)
    res = fn(eps, sig, mu, spacing, dt, amp, src, rec, **kw)
    out = [("receiver_data", res.receiver_data)]
    out += sorted(res.final_state.items())
    if grad:
        g = res.vjp(np.cos(np.arange(res.receiver_data.size)).reshape(
            res.receiver_data.shape).astype(dtype))
        for name in TARGETS + (POLE_TARGETS if n_poles else ()):
            out.append((f"grad_{name}", getattr(g, name)))
    return out


def cases():
    for system in ("tm2d", "maxwell3d"):
        for dtype in (np.float32, np.float64):
            for stencil in (2, 4, 6, 8):
                yield dict(system=system, dtype=dtype, stencil=stencil)
                yield dict(system=system, dtype=dtype, stencil=stencil, grad=True)
        for n_poles in (1, 2, 3, 5):
            for stencil in (2, 4, 8):
                yield dict(system=system, dtype=np.float32, stencil=stencil, n_poles=n_poles)
                yield dict(system=system, dtype=np.float64, stencil=stencil, n_poles=n_poles,
                           grad=True)
            yield dict(system=system, dtype=np.float32, stencil=4, n_poles=n_poles, grad=True,
                       bf16=True)
        yield dict(system=system, dtype=np.float32, stencil=4, grad=True, bf16=True)
        yield dict(system=system, dtype=np.float64, stencil=4, n_poles=1, grad=True, interval=3)
        yield dict(system=system, dtype=np.float64, stencil=4, n_poles=2, grad=True, batch=2)


def label(c):
    parts = [c["system"], np.dtype(c["dtype"]).name, f"stencil {c['stencil']}"]
    for key, text in (("n_poles", "{} poles"), ("grad", "grad"), ("bf16", "bf16"),
                      ("interval", "interval {}"), ("batch", "batch {}")):
        if c.get(key):
            parts.append(text.format(c[key]))
    return ", ".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write {case: hash, TOTAL: hash} as JSON here")
    args = ap.parse_args(argv)
    total = hashlib.sha256()
    table = {}
    for c in cases():
        h = hashlib.sha256()
        for name, value in case(**c):
            h.update(name.encode())
            h.update(np.ascontiguousarray(value).tobytes())
        table[label(c)] = h.hexdigest()[:16]
        total.update(h.digest())
        print(f"{table[label(c)]}  {label(c)}", flush=True)
    table["TOTAL"] = total.hexdigest()[:16]
    print(f"{table['TOTAL']}  TOTAL ({len(table) - 1} cases; CPU variant {cpu_variant()})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(table, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
