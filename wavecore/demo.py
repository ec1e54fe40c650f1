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

from ._tm2d import tm2d
from .models import buried_pipe_and_void
from .wavelets import ricker

__all__ = ["run_demo"]


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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
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
