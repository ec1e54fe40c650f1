"""``wavecore demo``: a 2-D GPR B-scan over the built-in model.

A common-offset survey: one transmitter and one receiver 10 cm apart move
along the surface; every position is one shot. Shots run in batches through
:func:`wavecore.tm2d` with a callback that drives the progress bar. The data
are saved as ``bscan.npz``; with matplotlib installed, ``radargram.png``
shows the model and the processed radargram.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from . import plots
from ._tm2d import tm2d
from .models import buried_pipe_and_void
from .wavelets import ricker

__all__ = ["run_demo", "run_fwi_demo"]


class Progress:
    """A one-line text progress bar on stderr (no dependency)."""

    def __init__(self, total: float, label: str, stream=sys.stderr, quiet: bool = False):
        self.total, self.label, self.stream, self.quiet = total, label, stream, quiet
        self.start = time.perf_counter()
        self._last = -1.0

    def update(self, done: float) -> None:
        if self.quiet:
            return
        fraction = min(max(done / self.total, 0.0), 1.0)
        if fraction - self._last < 0.01 and fraction < 1.0:
            return
        self._last = fraction
        elapsed = time.perf_counter() - self.start
        left = f"{elapsed * (1 - fraction) / fraction:6.1f}s left" if fraction > 0 else ""
        bar = "#" * int(30 * fraction)
        self.stream.write(f"\r{self.label} [{bar:<30}] {100 * fraction:5.1f}%  "
                          f"{elapsed:6.1f}s elapsed {left}")
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


def run_demo(out_dir: str | Path = "wavecore_demo", *, quick: bool = False,
             n_threads: int | None = None, batch: int = 10, quiet: bool = False,
             plot: bool = True) -> dict:
    """Simulate the B-scan and write its outputs; return a summary dict.

    Parameters
    ----------
    out_dir : path
        Folder for ``bscan.npz`` (and ``radargram.png``).
    quick : bool
        Coarser grid and fewer traces (a few seconds; used by the tests).
    n_threads : int, optional
        Threads of the compiled core.
    batch : int
        Shots per call of :func:`wavecore.tm2d`.
    quiet : bool
        No progress bar.
    plot : bool
        Write the PNG when matplotlib is available.
    """
    spacing = 0.02 if quick else 0.01
    model = buried_pipe_and_void(spacing=spacing)
    freq = 200e6 if quick else 400e6           # antenna centre frequency
    dt = (3.6e-11 if quick else 1.8e-11)
    window = 30e-9                               # two-way time window
    nt = int(round(window / dt))
    offset = int(round(0.10 / spacing))          # transmitter-receiver offset
    step = int(round((0.10 if quick else 0.05) / spacing))
    margin = int(round(0.15 / spacing))
    xs = np.arange(margin, model.shape[1] - margin - offset, step)
    n_traces = len(xs)
    row = model.antenna_row
    wavelet = ricker(freq, nt, dt, dtype=model.epsilon.dtype)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = np.zeros((n_traces, nt), model.epsilon.dtype)
    progress = Progress(n_traces, f"B-scan, {n_traces} traces", quiet=quiet)
    started = time.perf_counter()
    result = None
    for first in range(0, n_traces, batch):
        x = xs[first : first + batch]
        shots = len(x)
        amplitude = np.broadcast_to(wavelet, (shots, 1, nt)).copy()
        sources = np.stack([np.full(shots, row), x], -1)[:, None, :]
        receivers = np.stack([np.full(shots, row), x + offset], -1)[:, None, :]
        callback = (lambda state, first=first, shots=shots:
                    progress.update(first + shots * state.progress))
        result = tm2d(model.epsilon, model.sigma, model.mu, spacing, dt, amplitude, sources,
                      receivers, stencil=4, pml_width=20, forward_callback=callback,
                      callback_frequency=max(nt // 20, 1), n_threads=n_threads)
        data[first : first + shots] = result.receiver_data[:, 0, :]
        progress.update(first + shots)
    seconds = time.perf_counter() - started

    positions = (xs + offset / 2) * spacing
    np.savez(out_dir / "bscan.npz", data=data, dt=dt, positions=positions,
             spacing=spacing, epsilon=model.epsilon, sigma=model.sigma,
             frequency=freq, offset=offset * spacing)
    summary = {
        "traces": n_traces, "samples": nt, "dt": dt, "seconds": seconds,
        "grid": model.shape, "step_ratio": result.step_ratio,
        "mcells_per_s": model.epsilon.size * nt * result.step_ratio * n_traces / seconds / 1e6,
        "npz": str(out_dir / "bscan.npz"), "png": None,
    }
    if plot:
        summary["png"] = _plot(out_dir / "radargram.png", model, data, dt, positions)
    return summary


def _plot(path: Path, model, data, dt, positions) -> str | None:
    try:
        plt = plots.pyplot()
    except ImportError:
        return None
    # Remove the direct wave (mean trace) and apply a linear time gain for display.
    shown = data - data.mean(axis=0, keepdims=True)
    shown = shown * (np.arange(data.shape[1]) * dt * 1e9)[None, :]
    clip = np.percentile(np.abs(shown), 99.5) or 1.0
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 7), constrained_layout=True)
    nz, nx = model.shape
    extent = (0, nx * model.spacing, nz * model.spacing, 0)
    im = ax0.imshow(model.epsilon, extent=extent, cmap="viridis", aspect="auto")
    pipe = model.sigma > 1
    ax0.contour(np.linspace(0, nx * model.spacing, nx), np.linspace(0, nz * model.spacing, nz),
                pipe, levels=[0.5], colors="w")
    ax0.set(title=f"Model: {model.description}", xlabel="x (m)", ylabel="depth (m)")
    fig.colorbar(im, ax=ax0, label="relative permittivity")
    ax1.imshow(shown.T, extent=(positions[0], positions[-1], data.shape[1] * dt * 1e9, 0),
               cmap="gray", vmin=-clip, vmax=clip, aspect="auto")
    ax1.set(title="Radargram (Ey, mean trace removed, linear gain)", xlabel="x (m)",
            ylabel="two-way time (ns)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def run_fwi_demo(out_dir: str | Path = "wavecore_demo", *, quick: bool = False,
                 n_threads: int | None = None, quiet: bool = False, plot: bool = True) -> dict:
    """Invert the built-in pipe-and-wet-layer synthetic for permittivity.

    Surface reflection survey (sources every 20 cm, receivers every 12 cm),
    300 MHz Ricker, a homogeneous sand starting model below the known air
    layer, L-BFGS-B over two frequency stages (below 200 MHz, then the full
    band). Writes ``fwi.npz`` (true, starting and inverted models, misfit
    history) and, with matplotlib, ``fwi.png``; returns a summary with the
    misfit reduction and the model error.
    """
    from .cfl import max_stable_dt  # noqa: PLC0415
    from .constants import C0  # noqa: PLC0415
    from .inversion import Bounds, invert  # noqa: PLC0415
    from .models import pipe_and_wet_layer  # noqa: PLC0415

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = pipe_and_wet_layer(spacing=0.06 if quick else 0.04)
    h = model.spacing
    nz, nx = model.shape
    dt = 0.45 * max_stable_dt((h, h), C0, 4)
    nt = int(round(1.2 * 2 * 1.2 / (C0 / 2) / dt))  # two-way time to 1.2 m in sand, +20 %
    shots = list(range(2, nx - 2, max(1, int(round(0.2 / h)))))
    receivers = list(range(1, nx - 1, max(1, int(round(0.12 / h)))))
    src = np.array([[[model.antenna_row, s]] for s in shots])
    rec = np.array([[[model.antenna_row, r] for r in receivers]] * len(shots))
    amp = np.repeat(ricker(3e8, nt, dt).astype(np.float32)[None, None], len(shots), 0)
    kw = dict(stencil=4, pml_width=10, n_threads=n_threads)
    observed = tm2d(model.epsilon, model.sigma, model.mu, h, dt, amp, src, rec,
                    **kw).receiver_data
    mask = np.zeros(model.shape, bool)
    mask[model.surface_row:] = True
    eps0 = np.where(mask, 4.0, model.epsilon).astype(np.float32)
    iterations = 6 if quick else 60
    progress = Progress(2 * iterations, "FWI", quiet=quiet)
    done = {"n": 0}

    def tick(entry):
        done["n"] += 1
        progress.update(done["n"])

    start = time.perf_counter()
    result = invert(observed, eps0, model.sigma, model.mu, h, dt, amp, src, rec,
                    parameters="epsilon", bounds=Bounds(epsilon=(1.0, 25.0)),
                    iterations=iterations, frequencies=(2e8, None), mask=mask,
                    callback=tick, **kw)
    progress.update(2 * iterations)
    seconds = time.perf_counter() - start

    def error(eps):
        return float(np.linalg.norm((eps - model.epsilon)[mask])
                     / np.linalg.norm(model.epsilon[mask]))

    history = result.history
    first_full = next(h_["misfit"] for h_ in history if h_["stage"] == 1)
    summary = dict(grid=model.shape, shots=len(shots), steps=nt, iterations=len(history),
                   seconds=seconds, misfit_reduction=history[-1]["misfit"] / first_full,
                   model_error_start=error(eps0), model_error_final=error(result.epsilon),
                   npz=str(out_dir / "fwi.npz"), png=None)
    np.savez(out_dir / "fwi.npz", true=model.epsilon, start=eps0, inverted=result.epsilon,
             misfit=np.array([h_["misfit"] for h_ in history]),
             stage=np.array([h_["stage"] for h_ in history]))
    if plot:
        summary["png"] = _plot_fwi(out_dir / "fwi.png", model.epsilon, eps0, result.epsilon,
                                   history)
    return summary


def _plot_fwi(path: Path, true, start, inverted, history) -> str | None:
    try:
        plt = plots.pyplot()
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), constrained_layout=True)
    for ax, values, title in zip(axes.flat, (true, start, inverted),
                                 ("true permittivity", "starting model", "inverted")):
        plots.image(values, ax=ax, title=title)
    plots.misfit_curve([h_["misfit"] for h_ in history], ax=axes.flat[3],
                       stages=[h_["stage"] for h_ in history])
    return plots.save(axes.flat[0], path)
