"""Run the peer TIDE 0.1.2 (PyTorch) on the same problem, for cross-checks.

TIDE is not a dependency: it runs in its own interpreter (a virtual
environment made by ``shared/tools/install-tide.sh``), found through the
``WAVECORE_TIDE_PYTHON`` environment variable or at ``/tmp/tide-venv``.
Arrays travel through a temporary ``.npz`` file. Results are converted to
wavecore's conventions: receivers time-last, H with its physical sign (TIDE
stores -H).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .checks import peer_python

__all__ = ["tide_python", "run_tide_tm2d", "run_tide_maxwell3d"]

_DEFAULT = "/tmp/tide-venv/bin/python"

_SCRIPT = r"""
import json, sys, time
import numpy as np, torch
torch.set_flush_denormal(True)  # TIDE's fast setting: the fair comparison
opts = json.loads(sys.argv[3])
if opts["system"] == "tm2d":
    from tide.maxwell.tm2d import maxwelltm as propagate
    names = ["Ey", "Hx", "Hz", "m_Ey_x", "m_Ey_z", "m_Hx_z", "m_Hz_x", "receivers"]
else:
    from tide.maxwell.maxwell3d import maxwell3d as propagate
    names = ["Ex", "Ey", "Ez", "Hx", "Hy", "Hz"] + [f"m{i}" for i in range(12)] + ["receivers"]
if opts["n_threads"]:
    torch.set_num_threads(opts["n_threads"])
d = np.load(sys.argv[1])
t = {k: torch.from_numpy(d[k]) for k in d.files}
for name in opts["requires_grad"]:
    t[name].requires_grad_(True)
extra = {}
if "tau" in t:  # Debye poles [n_poles, *model_shape]
    from tide import DebyeDispersion
    extra["dispersion"] = DebyeDispersion(delta_epsilon=t["delta_epsilon"], tau=t["tau"])
born = [k for k in ("depsilon", "dsigma") if k in t]  # TIDE's Born run, J v
if opts.get("hvp"):  # maxwelltm_hvp (L2 misfit of "observed", TIDE's default)
    from tide.maxwell.tm2d import maxwelltm_hvp
    if opts["n_threads"]:
        torch.set_num_threads(opts["n_threads"])
    h = maxwelltm_hvp(t["epsilon"], t["sigma"], t["mu"], opts["grid_spacing"], opts["dt"],
                      t["source_amplitude"], t["source_location"], t["receiver_location"],
                      t["observed"].permute(2, 0, 1).contiguous(),
                      vepsilon=t.get("depsilon"), vsigma=t.get("dsigma"),
                      stencil=opts["stencil"], pml_width=opts["pml_width"],
                      hessian_mode=opts["hvp"])
    np.savez(sys.argv[2], hvp_epsilon=h[0].detach().numpy(), hvp_sigma=h[1].detach().numpy())
    sys.exit(0)
if born:
    if opts["system"] == "tm2d":
        from tide.maxwell.tm2d_born import borntm as propagate
    else:
        from tide.maxwell.maxwell3d_born import born3d as propagate
    extra.update({k: t[k] for k in born})
times, grads = [], {}
for _ in range(opts["repeat"]):
    for name in opts["requires_grad"]:
        t[name].grad = None
    start = time.perf_counter()
    out = propagate(t["epsilon"], t["sigma"], t["mu"], opts["grid_spacing"], opts["dt"],
                    t["source_amplitude"], t["source_location"], t["receiver_location"],
                    stencil=opts["stencil"], pml_width=opts["pml_width"],
                    n_threads=opts["n_threads"], **opts["options"], **extra)
    if opts["requires_grad"]:
        # grad_receiver_data arrives time-last; TIDE's receivers are time-first.
        (out[-1] * t["grad_receiver_data"].permute(2, 0, 1)).sum().backward()
        grads = {f"grad_{n}": t[n].grad.numpy() for n in opts["requires_grad"]}
    times.append(time.perf_counter() - start)
if born:  # (background state, scattered state, background receivers, scattered receivers)
    names, out = ["receivers"], [out[-1]]
np.savez(sys.argv[2], seconds=np.array(times), **grads,
         **{n: o.detach().numpy() for n, o in zip(names, out)})
"""


def tide_python() -> str | None:
    """Path of a Python interpreter that can import TIDE, or None."""
    return peer_python("WAVECORE_TIDE_PYTHON", _DEFAULT, "import tide.maxwell.tm2d")


def run_tide_tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
                  receiver_location, **kwargs) -> dict:
    """TIDE's ``maxwelltm`` on numpy inputs (wavecore's argument conventions).

    Returns a dict with ``receiver_data`` ``[S, n_receivers, nt]``, ``ey``,
    ``hx``, ``hz`` over the domain (physical sign) and ``seconds`` (one wall
    time per repeat, TIDE's call and, with gradients, its backward). With
    ``requires_grad`` (names as in wavecore) and ``grad_receiver_data``
    (wavecore's layout), also ``grad_<name>``: TIDE's autograd gradients of
    ``sum(grad_receiver_data * receiver_data)``. ``options`` are passed on to
    TIDE's ``maxwelltm`` as they are (e.g. ``model_gradient_sampling_interval``,
    ``storage_compression``). ``dispersion``: a :class:`wavecore.Debye` (its arrays
    as TIDE's ``DebyeDispersion``; ``requires_grad`` may then name
    ``delta_epsilon`` and ``tau``). ``born``: ``{"epsilon": d_eps, "sigma": d_sigma}``
    (either) runs TIDE's Born propagator ``borntm`` / ``born3d`` instead, and
    ``receiver_data`` is then its scattered data J v. ``hvp="full"`` or
    ``"gauss_newton"`` with ``born`` (the direction) and ``observed`` (wavecore's
    layout) runs ``maxwelltm_hvp`` (the L2 misfit) and returns
    ``{"epsilon": ..., "sigma": ...}``, its Hessian product.
    """
    return _run_tide("tm2d", epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                     source_location, receiver_location, **kwargs)


def run_tide_maxwell3d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                       source_location, receiver_location, **kwargs) -> dict:
    """TIDE's ``maxwell3d`` on numpy inputs; as :func:`run_tide_tm2d` with the six
    fields ``ex .. hz`` (physical sign). Pass ``source_component`` and
    ``receiver_component`` (one name, as TIDE takes) in ``options``."""
    return _run_tide("maxwell3d", epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                     source_location, receiver_location, **kwargs)


def _run_tide(system, epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
              receiver_location, *, stencil=2, pml_width=20, n_threads=None, repeat=1,
              python=None, requires_grad=(), grad_receiver_data=None, options=None,
              dispersion=None, born=None, hvp=None, observed=None) -> dict:
    ndim = 2 if system == "tm2d" else 3
    python = python or tide_python()
    if python is None:
        raise RuntimeError("TIDE is not available: set WAVECORE_TIDE_PYTHON to a Python "
                           "interpreter that can import tide (see shared/tools/install-tide.sh)")
    spacing = [float(v) for v in np.broadcast_to(np.asarray(grid_spacing, float), (ndim,))]
    widths = [int(w) for w in np.broadcast_to(np.asarray(pml_width), (2 * ndim,))] \
        if np.ndim(pml_width) == 0 or len(pml_width) != ndim else \
        [int(w) for w in pml_width for _ in range(2)]
    opts = {"system": system, "grid_spacing": spacing, "dt": float(dt),
            "stencil": int(stencil), "pml_width": widths, "n_threads": int(n_threads or 0),
            "repeat": int(repeat), "requires_grad": list(requires_grad),
            "options": dict(options or {}), "hvp": hvp}
    extra = {}
    if requires_grad:
        extra["grad_receiver_data"] = np.ascontiguousarray(grad_receiver_data)
    for name, value in (born or {}).items():
        extra[f"d{name}"] = np.asarray(value, epsilon.dtype)
    if hvp:
        extra["observed"] = np.ascontiguousarray(observed, epsilon.dtype)
    if dispersion is not None:
        extra["delta_epsilon"] = np.asarray(dispersion.delta_epsilon, epsilon.dtype)
        extra["tau"] = np.asarray(dispersion.tau, epsilon.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, epsilon=epsilon, sigma=sigma, mu=mu, source_amplitude=source_amplitude,
                 source_location=np.asarray(source_location, np.int64),
                 receiver_location=np.asarray(receiver_location, np.int64), **extra)
        run = subprocess.run([python, "-c", _SCRIPT, str(src), str(out), json.dumps(opts)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"TIDE failed:\n{run.stderr[-3000:]}")
        with np.load(out) as res:
            if hvp:
                return {"epsilon": res["hvp_epsilon"], "sigma": res["hvp_sigma"]}
            result = {"receiver_data": np.moveaxis(res["receivers"], 0, -1),
                      "seconds": res["seconds"]}
            for name in ("ex", "ey", "ez", "hx", "hy", "hz"):
                if name.capitalize() in res.files:  # TIDE stores -H
                    value = res[name.capitalize()]
                    result[name] = -value if name[0] == "h" else value
            result.update({k: res[k] for k in res.files if k.startswith("grad_")})
            return result
