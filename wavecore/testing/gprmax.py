"""Run gprMax (4.0.1) and wavecore on the same Hertzian-dipole problem, for cross-checks.

gprMax is not a dependency: it runs in its own interpreter, found through the
``WAVECORE_GPRMAX_PYTHON`` environment variable or at ``/work/venv-gprmax/bin/python``
(``python -m venv /work/venv-gprmax && /work/venv-gprmax/bin/pip install gprMax==4.0.1``).
A problem is described once (:class:`DipoleCase`): gprMax gets an input file
(``.in``) written from it, wavecore the same grid, time step, source samples
and receiver cell. gprMax's conventions, read in its source (4.0.1):

- ``solvers.Solver._solve`` stores the receivers *before* each update
  (``store_outputs(iteration)``, then H, then E): gprMax sample ``n`` is E at
  ``n dt`` and H at ``(n - 1/2) dt`` (its output file says so too:
  ``TimeSampleOffset`` 0 for E, ``-dt/2`` for H). wavecore's sample ``n`` (E at
  ``(n + 1) dt``, H at ``(n + 1/2) dt``) is gprMax's sample ``n + 1``.
- ``sources.HertzianDipole.calculate_waveform_values`` evaluates the waveform at
  ``(n + 1/2) dt`` for iteration ``n`` (the E update from ``n dt`` to
  ``(n + 1) dt``), as wavecore's source sample ``n``; ``update_electric`` adds
  ``-srce I dl / (dx dy dz)`` with ``srce = 1 / (eps / dt + sigma / 2)``
  (``materials.Material.calculate_update_coeffsE``), which is wavecore's ``cb``:
  wavecore's 3-D amplitude (a current moment) is ``I dl``, ``dl`` the cell size
  along the dipole; in 2-D (``dl = dz``, the cell thickness) it is the line
  current ``I``. gprMax writes these samples to its output file
  (``srcs/src1/excitation/samples``, units A); wavecore is given exactly them.
- ``cuda_opencl/knl_fields_updates.py`` (the same updates as the compiled CPU
  code): ``E = CA E + CB curl H``, ``H = DA H - DB curl E``: both fields with their
  physical sign, as wavecore. ``Ex[i, j, k]`` lies at ``((i + 1/2) dx, j dy, k dz)``,
  ``Hx[i, j, k]`` at ``(i dx, (j + 1/2) dy, (k + 1/2) dz)``, etc.: the Yee cell of
  wavecore's cell ``(z, y, x) = (k, j, i)``.
- ``grid.fdtd_grid.FDTDGrid.calculate_dt``: ``dt = 1 / (c sqrt(1/dx^2 + 1/dy^2 +
  1/dz^2))`` (2-D: the two in-plane spacings), rounded down, times
  ``#time_step_stability_factor`` (1 by default): Courant number 1, above
  wavecore's limit (0.99 of it), so wavecore sub-steps with ``step_ratio`` 2.
- 2-D is TMz (``Ez, Hx, Hy`` in the x-y plane, a one-cell-thick domain);
  wavecore's 2-D is TM in the (z, x) plane (``Ey, Hx, Hz``). The rotation
  gprMax (x, y, z) -> wavecore (z, x, y) maps gprMax cell ``(i, j)`` to wavecore
  cell ``(z, x) = (i, j)`` and the fields ``Ez -> Ey``, ``Hx -> Hz``, ``Hy -> Hx``
  with no sign change.
- Its constants are SciPy's (CODATA 2022), wavecore's ``EP0``/``MU0`` differ by
  ~1e-10 relative: far below the differences measured here.

The boundaries differ (gprMax's HORIPML, wavecore's CPML outside the same
cells), so the run stops before anything reflected by gprMax's PML can reach
the receiver (:func:`quiet_iterations`); wavecore's CPML lies further out.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .checks import peer_python

__all__ = ["DipoleCase", "gprmax_python", "gprmax_version", "gprmax_input", "quiet_iterations",
           "run_gprmax", "run_wavecore", "gaussiandot", "source_samples", "compare", "misfit",
           "shift_quarter_late", "resample_half_run", "with_stability_factor"]

_DEFAULT = "/work/venv-gprmax/bin/python"
_C = 299792458.0
COMPONENTS_3D = ("ex", "ey", "ez", "hx", "hy", "hz")
#: wavecore 2-D name -> gprMax TMz name (the rotation in the module docstring).
COMPONENTS_2D = {"ey": "ez", "hx": "hy", "hz": "hx"}


def gprmax_python() -> str | None:
    """Path of a Python interpreter that can import gprMax, or None (also when
    ``WAVECORE_GPRMAX_PYTHON`` is set empty)."""
    return peer_python("WAVECORE_GPRMAX_PYTHON", _DEFAULT, "import gprMax")


def gprmax_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import gprMax._version as v; print(v.__version__)"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


@dataclass(frozen=True)
class DipoleCase:
    """A Hertzian dipole (gprMax ``gaussiandot`` current) and one receiver.

    ``cells`` counts gprMax's domain cells per axis (in the plane in 2-D), its
    PML included; the source is in the middle cell, the receiver ``offset``
    cells away (gprMax axes x, y, z; 2-D: x, y). The medium is homogeneous;
    ``eps_r`` must stay near 1 for wavecore to sub-step at gprMax's time step.
    ``debye``: Debye poles ``((delta_epsilon, tau), ...)`` of the medium
    (gprMax's ``#add_dispersion_debye``, wavecore's ``dispersion=``); ``eps_r``
    is then eps_inf.
    """

    name: str
    ndim: int = 3
    cells: int = 60
    spacing: float = 0.005
    frequency: float = 1.2e9
    polarisation: str = "z"                 #: 3-D dipole axis (2-D: always z, TMz)
    offset: tuple = (4, 3, 2)
    eps_r: float = 1.0
    sigma: float = 0.0
    gprmax_pml: int = 10
    wavecore_pml: int = 10
    stability_factor: float = 1.0           #: gprMax's #time_step_stability_factor
    iterations: int | None = None           #: default: the quiet window
    debye: tuple = ()                       #: ((delta_epsilon, tau_seconds), ...)

    @property
    def source(self) -> tuple:
        c = self.cells // 2
        return (c,) * self.ndim

    @property
    def receiver(self) -> tuple:
        return tuple(s + o for s, o in zip(self.source, self.offset[:self.ndim]))

    @property
    def dt(self) -> float:
        """gprMax's time step (before its rounding in the last digits)."""
        return self.stability_factor / (_C * math.sqrt(self.ndim / self.spacing ** 2))


def gaussiandot_onset(frequency: float, level: float = 1e-7) -> float:
    """Time at which gprMax's ``gaussiandot`` (``-2 zeta (t - chi) exp(-zeta (t - chi)^2)``,
    ``chi = 1/f``, ``zeta = 2 pi^2 f^2``) first exceeds ``level`` (nearly: the
    Gaussian factor alone) of its peak."""
    zeta = 2.0 * math.pi ** 2 * frequency ** 2
    return 1.0 / frequency - math.sqrt(math.log(1.0 / level) / zeta)


def quiet_iterations(case: DipoleCase) -> int:
    """gprMax iterations whose last E sample precedes the earliest arrival,
    at the speed of light, of the source's onset reflected by the front face
    of any of gprMax's PML slabs (the image path to the receiver)."""
    h, n, p = case.spacing, case.cells, case.gprmax_pml
    src, rec = np.array(case.source, float), np.array(case.receiver, float)
    paths = []
    for axis in range(case.ndim):
        for face in (p, n - p):
            image = src.copy()
            image[axis] = 2 * face - src[axis]
            paths.append(np.linalg.norm(rec - image) * h)
    v = _C / math.sqrt(case.eps_r)
    arrival = gaussiandot_onset(case.frequency) + min(paths) / v
    return int(math.floor(arrival / case.dt))  # samples 0 .. this - 1 are before it


def gprmax_input(case: DipoleCase, iterations: int) -> str:
    h, n = case.spacing, case.cells
    p = case.gprmax_pml
    if case.ndim == 3:
        domain = f"{n * h:.6g} {n * h:.6g} {n * h:.6g}"
        pml = f"{p} {p} {p} {p} {p} {p}"
        pol = case.polarisation
    else:
        domain = f"{n * h:.6g} {n * h:.6g} {h:.6g}"
        pml = f"{p} {p} 0 {p} {p} 0"
        pol = "z"
    at = lambda cell: " ".join(f"{c * h:.6g}" for c in (tuple(cell) + (0,) * 3)[:3])  # noqa: E731
    lines = [f"#title: wavecore cross-check {case.name}",
             f"#domain: {domain}", f"#dx_dy_dz: {h:.6g} {h:.6g} {h:.6g}",
             f"#time_window: {int(iterations)}", f"#pml_cells: {pml}"]
    if case.stability_factor != 1.0:
        lines.append(f"#time_step_stability_factor: {case.stability_factor:.6g}")
    if case.eps_r != 1.0 or case.sigma != 0.0 or case.debye:
        lines.append(f"#material: {case.eps_r:.9g} {case.sigma:.9g} 1 0 medium")
        if case.debye:
            poles = " ".join(f"{de:.9g} {tau:.9g}" for de, tau in case.debye)
            lines.append(f"#add_dispersion_debye: {len(case.debye)} {poles} medium")
        lines.append(f"#box: 0 0 0 {domain} medium n")
    lines += [f"#waveform: gaussiandot 1 {case.frequency:.9g} pulse",
              f"#hertzian_dipole: {pol} {at(case.source)} pulse",
              f"#rx: {at(case.receiver)}"]
    return "\n".join(lines) + "\n"


def run_gprmax(case: DipoleCase, python: str | None = None, iterations: int | None = None,
               workdir: str | Path | None = None) -> dict:
    """Run gprMax (CPU, double precision) on ``case``; returns ``dt``, ``iterations``,
    ``data`` (component name, lower case, -> trace of gprMax's samples), the
    source ``samples`` (A, at ``(n + 1/2) dt``), ``dl``, ``input`` and ``command``."""
    import h5py  # noqa: PLC0415 - optional: wavecore[hpc]

    python = python or gprmax_python()
    if python is None:
        raise RuntimeError("gprMax not found: set WAVECORE_GPRMAX_PYTHON")
    if iterations is None:
        iterations = case.iterations or quiet_iterations(case)
    text = gprmax_input(case, iterations)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "case.in"
        path.write_text(text)
        command = [python, "-m", "gprMax", path.name, "-cpu_precision", "double",
                   "--hide-progress-bars", "--log-level", "30"]
        out = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        files = [Path(tmp) / f"case{ext}" for ext in (".h5", ".out")]
        files = [f for f in files if f.exists()]
        if out.returncode != 0 or not files:
            raise RuntimeError(f"gprMax failed ({out.returncode}):\n{out.stdout[-3000:]}"
                               f"\n{out.stderr[-3000:]}")
        with h5py.File(files[0], "r") as f:
            rx = f["rxs"][sorted(f["rxs"])[0]]
            src = f["srcs"][sorted(f["srcs"])[0]]
            result = dict(dt=float(f.attrs["dt"]), iterations=int(f.attrs["Iterations"]),
                          version=str(f.attrs.get("gprMax", "")),
                          data={name.lower(): rx[name][...].astype(np.float64) for name in rx},
                          h_offset=float(rx["Hx"].attrs.get("TimeSampleOffset", np.nan)),
                          samples=src["excitation"]["samples"][...].astype(np.float64),
                          dl=float(src["excitation"].attrs["SpatialScale"]),
                          source_offset=float(src["excitation"].attrs["TimeSampleOffset"]))
    result.update(input=text, command=" ".join(["python"] + command[1:]))
    return result


def gaussiandot(time, frequency: float):
    """gprMax's ``gaussiandot`` waveform (amplitude 1):
    ``-2 zeta (t - chi) exp(-zeta (t - chi)^2)``, ``chi = 1/f``, ``zeta = 2 pi^2 f^2``."""
    zeta, delay = 2.0 * math.pi ** 2 * frequency ** 2, np.asarray(time, float) - 1.0 / frequency
    return -2.0 * zeta * delay * np.exp(-zeta * delay ** 2)


def source_samples(case: DipoleCase, gprmax: dict, nt: int | None = None) -> np.ndarray:
    """wavecore's source samples (A, at ``(n + 1/2) dt``): gprMax's own, continued
    with the same waveform until it has decayed (to 1e-7 of its peak) when the run
    ends earlier (``nt=None``), or cut at ``nt``.

    A sub-stepped wavecore run up-samples its sources in the frequency domain,
    which treats the trace as periodic: a source cut while it is still on rings
    over the whole run (20-48 % misfit on a 3-D case cut at 0.8 periods).
    Samples past the last compared one change nothing before it (causality), so
    the source is continued rather than cut."""
    ours = gaussiandot((np.arange(len(gprmax["samples"])) + 0.5) * gprmax["dt"], case.frequency)
    theirs = gprmax["samples"]
    if np.abs(ours - theirs).max() > 1e-12 * np.abs(theirs).max():
        raise AssertionError("gprMax's source samples are not gaussiandot at (n + 1/2) dt")
    if nt is not None:
        return theirs[:nt]
    end = 2.0 / case.frequency - gaussiandot_onset(case.frequency)
    n_full = max(len(theirs) - 1, int(math.ceil(end / gprmax["dt"])) + 1)
    extra = gaussiandot((np.arange(len(theirs), n_full) + 0.5) * gprmax["dt"], case.frequency)
    return np.concatenate([theirs, extra])[:n_full]


def run_wavecore(case: DipoleCase, gprmax: dict, n_threads: int | None = None,
                 truncate: bool = False, options: dict | None = None) -> dict:
    """wavecore (stencil 2, float64) on ``case`` with gprMax's ``dt`` and source
    samples (:func:`source_samples`); returns ``data`` (wavecore component name ->
    trace of ``iterations - 1`` samples, gprMax's samples 1 ...), ``step_ratio``.
    ``options`` go to ``wavecore.maxwell3d`` / ``wavecore.tm2d`` (``time_pad_frac``...)."""
    options = dict(options or {})
    import wavecore  # noqa: PLC0415

    nt = gprmax["iterations"] - 1
    dt, h = gprmax["dt"], case.spacing
    current = source_samples(case, gprmax, nt if truncate else None)
    nt = len(current)
    shape = (case.cells,) * case.ndim
    eps, sig, mu = np.full(shape, case.eps_r), np.full(shape, case.sigma), np.ones(shape)
    if case.debye:
        options["dispersion"] = wavecore.Debye(
            np.stack([np.full(shape, float(de)) for de, _ in case.debye]),
            np.stack([np.full(shape, float(tau)) for _, tau in case.debye]))
    if case.ndim == 3:
        # gprMax cell (i, j, k) is wavecore's (z, y, x) = (k, j, i).
        src = np.array([[case.source[::-1]]])
        rec = np.array([[case.receiver[::-1]]])
        res = wavecore.maxwell3d(eps, sig, mu, h, dt, (current * gprmax["dl"])[None, None],
                                 src, rec, source_component="e" + case.polarisation,
                                 receiver_component=list(COMPONENTS_3D), stencil=2,
                                 pml_width=case.wavecore_pml, n_threads=n_threads, **options)
        m = gprmax["iterations"] - 1
        data = {c: res.receiver_data[0, i, 0, :m] for i, c in enumerate(COMPONENTS_3D)}
        return dict(data=data, step_ratio=res.step_ratio, inner_dt=res.dt)
    # 2-D: gprMax cell (i, j) is wavecore's (z, x) = (i, j); H through a callback.
    from wavecore.resampling import sample_position, sample_receivers  # noqa: PLC0415

    zr, xr = case.receiver
    internal = {"hx": [], "hz": []}

    def record(state):
        if state.step > 0:  # fields after `step` steps: internal H sample step - 1
            for name in internal:
                internal[name].append(float(state.get_wavefield(name)[0, zr, xr]))

    res = wavecore.tm2d(eps, sig, mu, h, dt, current[None, None], np.array([[case.source]]),
                        np.array([[case.receiver]]), stencil=2, pml_width=case.wavecore_pml,
                        forward_callback=record, n_threads=n_threads, **options)
    k, m = res.step_ratio, gprmax["iterations"] - 1
    data = {"ey": res.receiver_data[0, 0, :m]}
    for name, trace in internal.items():
        trace.append(float(res.final_state[name][0, zr + case.wavecore_pml,
                                                 xr + case.wavecore_pml]))
        data[name] = sample_receivers(np.array(trace)[None], k,
                                      sample_position(k, half_step=True))[0, :m]
    return dict(data=data, step_ratio=k, inner_dt=res.dt)


def misfit(ours, theirs) -> dict:
    """Relative L2 and max-norm misfit of two traces (``theirs`` the reference)."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    norm, peak = np.linalg.norm(theirs), np.abs(theirs).max()
    diff = ours - theirs
    return dict(l2=float(np.linalg.norm(diff) / norm) if norm > 0 else math.inf,
                max=float(np.abs(diff).max() / peak) if peak > 0 else math.inf,
                peak=float(peak), diff_peak=float(np.abs(diff).max()))


def shift_quarter_late(trace) -> np.ndarray:
    """``trace`` (uniform samples) read a quarter sample later, by the cubic through
    the four nearest samples (the last sample extrapolated): what a receiver read at
    E's time at step ratio 2 gave before the fix (``(n + 3/4) dt`` for ``(n + 1/2) dt``)."""
    x = np.asarray(trace, float)
    u = 0.25  # target at j + u between samples j and j + 1; nodes j - 1 .. j + 2
    w = np.array([-u * (u - 1) * (u - 2) / 6, (u + 1) * (u - 1) * (u - 2) / 2,
                  -(u + 1) * u * (u - 2) / 2, (u + 1) * u * (u - 1) / 6])
    padded = np.concatenate([[0.0], x, [3 * x[-1] - 3 * x[-2] + x[-3]] * 2])
    return sum(w[i] * padded[i:i + len(x)] for i in range(4))


def _names(case: DipoleCase):
    """(wavecore component, gprMax component) pairs of the case."""
    if case.ndim == 3:
        return [(c, c) for c in COMPONENTS_3D]
    return list(COMPONENTS_2D.items())


def _misfits(case, ours: dict, theirs: dict) -> dict:
    return {c: misfit(ours[c], theirs[g]) for c, g in _names(case)}


def resample_half_run(case: DipoleCase, half: dict, nt: int) -> dict:
    """gprMax's samples of a run at ``dt / 2`` at wavecore's user times of a run at
    ``dt``: E at ``(n + 1) dt`` is its sample ``2 n + 2``; H at ``(n + 1/2) dt`` lies
    half-way between its samples ``2 n + 1`` and ``2 n + 2`` and is interpolated as
    wavecore interpolates its own internal H samples (its sample ``m >= 1`` is H
    after ``m`` steps, wavecore's internal sample ``m - 1``)."""
    from wavecore.resampling import sample_receivers  # noqa: PLC0415

    out = {}
    for _, g in _names(case):
        trace = half["data"][g]
        if g.startswith("e"):
            out[g] = trace[2::2][:nt]
        else:
            out[g] = sample_receivers(trace[1:2 * nt + 1][None], 2, 0.5)[0]
    return out


def compare(case: DipoleCase, python: str | None = None, n_threads: int | None = None,
            truncate: bool = False, half_step_runs: bool = False,
            options: dict | None = None) -> dict:
    """Run both on ``case`` and return, per component (wavecore names), the misfit
    of wavecore against gprMax (``components``) and, for H, that of wavecore's H
    read a quarter sample late (``h_at_e_time``: where H was read before the fix).

    With ``half_step_runs``, gprMax also runs at half its time step (stability
    factor 0.5), which is wavecore's internal step: ``same_scheme`` compares
    wavecore's sub-stepped data with that run at the same times (both take the
    same steps, so what is left is wavecore's band-limited source up-sampling
    and its cubic for H), and ``control`` a wavecore run at that step, without
    sub-stepping, with it sample for sample (the two codes' schemes alone)."""
    gp = run_gprmax(case, python)
    wc = run_wavecore(case, gp, n_threads, truncate, options)
    nt = gp["iterations"] - 1
    theirs = {g: gp["data"][g][1:] for _, g in _names(case)}
    out = dict(case=case, components=_misfits(case, wc["data"], theirs), dt=gp["dt"],
               iterations=gp["iterations"], step_ratio=wc["step_ratio"], inner_dt=wc["inner_dt"],
               gprmax_version=gp["version"], h_offset=gp["h_offset"],
               source_offset=gp["source_offset"], dl=gp["dl"], input=gp["input"],
               command=gp["command"], gprmax=gp, wavecore=wc)
    out["h_at_e_time"] = {c: misfit(shift_quarter_late(wc["data"][c]), theirs[g])
                          for c, g in _names(case) if c.startswith("h")}
    if half_step_runs:
        half_case = with_stability_factor(case, 0.5)
        half = run_gprmax(half_case, python)
        if not math.isclose(half["dt"], gp["dt"] / 2, rel_tol=1e-15):
            raise AssertionError((half["dt"], gp["dt"]))
        out["same_scheme"] = _misfits(case, wc["data"], resample_half_run(case, half, nt))
        fine = run_wavecore(half_case, half, n_threads, truncate, options)
        out["control"] = _misfits(case, fine["data"],
                                  {g: half["data"][g][1:] for _, g in _names(case)})
        out["control_step_ratio"] = fine["step_ratio"]
    return out


def with_stability_factor(case: DipoleCase, factor: float) -> DipoleCase:
    """The same case at ``factor`` times gprMax's time step, over the same time."""
    base = case.iterations or quiet_iterations(case)
    return replace(case, name=f"{case.name}_f{factor:g}", stability_factor=factor,
                   iterations=int(math.floor((base - 1) / factor)) + 1)
