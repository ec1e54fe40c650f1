"""Figures (matplotlib, optional: ``pip install wavecore[plot]``): radargrams,
wavefield snapshots, model and gradient images, misfit curves. Each function
draws on ``ax`` (a new figure when None) and returns the axes."""

from __future__ import annotations

import numpy as np


def pyplot():
    """matplotlib.pyplot drawing to files (the Agg backend unless a notebook's
    inline backend is active); ImportError without matplotlib."""
    import matplotlib  # noqa: PLC0415

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _axes(ax):
    if ax is not None:
        return ax
    return pyplot().subplots(figsize=(8, 4.5), constrained_layout=True)[1]


WIGGLE_TRACES = 24  # radargrams of at most this many traces are drawn as wiggles


def radargram(traces: np.ndarray, dt: float, *, ax=None, clip: float = 0.99,
              gain: float | None = 1.0, title: str = "radargram", style: str = "auto",
              xlabel: str = "trace"):
    """Traces ``[n_traces, nt]`` as a B-scan (time down, ns), with a time-power
    gain ``t**gain`` (None: no gain) and a symmetric scale clipped at the
    ``clip`` quantile of |amplitude|.

    ``style``: ``"image"`` (one column of pixels per trace, never interpolated
    between traces), ``"wiggle"`` (a curve per trace, positive lobes filled),
    or ``"auto"``: wiggles for at most ``WIGGLE_TRACES`` traces, where an
    image would show too few columns to read (and smoothing across them
    would draw events that are not in the data).
    """
    if style not in ("auto", "image", "wiggle"):
        raise ValueError(f"style must be 'auto', 'image' or 'wiggle', got {style!r}")
    ax = _axes(ax)
    data = np.asarray(traces, np.float64)
    if data.ndim != 2:
        raise ValueError(f"traces must be [n_traces, nt], got shape {data.shape}")
    data = data.T
    t = np.arange(data.shape[0]) * dt
    if gain:
        data = data * (t[:, None] / t[-1] if t[-1] else 1.0) ** gain
    v = np.quantile(np.abs(data), clip) or 1.0
    if style == "wiggle" or (style == "auto" and data.shape[1] <= WIGGLE_TRACES):
        t_ns = t * 1e9
        for k in range(data.shape[1]):
            x = k + 0.45 * np.clip(data[:, k] / v, -1.0, 1.0)
            ax.plot(x, t_ns, color="k", lw=0.7)
            ax.fill_betweenx(t_ns, k, x, where=x > k, color="k", lw=0, interpolate=True)
        ax.set_xlim(-0.6, data.shape[1] - 0.4)
        ax.set_ylim(t_ns[-1], 0)
        if data.shape[1] <= 12:
            ax.set_xticks(range(data.shape[1]))
    else:
        ax.imshow(data, aspect="auto", cmap="gray", vmin=-v, vmax=v, interpolation="nearest",
                  extent=(-0.5, data.shape[1] - 0.5, t[-1] * 1e9, 0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("time (ns)")
    ax.set_title(title)
    return ax


def image(values: np.ndarray, spacing=None, *, ax=None, title: str = "", cmap: str = "viridis",
          symmetric: bool = False, label: str = ""):
    """A model, gradient or wavefield ``[nz, nx]`` (a 3-D array: its middle y slice)."""
    ax = _axes(ax)
    a = np.asarray(values, np.float64)
    if a.ndim == 3:
        a = a[:, a.shape[1] // 2]
    h = (1.0, 1.0) if spacing is None else (np.broadcast_to(spacing, (2,)) if np.ndim(
        spacing) == 0 else (spacing[0], spacing[-1]))
    kw = {}
    if symmetric:
        v = np.abs(a).max() or 1.0
        kw = dict(vmin=-v, vmax=v, cmap="RdBu_r")
    im = ax.imshow(a, cmap=kw.pop("cmap", cmap), extent=(0, a.shape[1] * h[1],
                                                         a.shape[0] * h[0], 0), **kw)
    ax.figure.colorbar(im, ax=ax, label=label)
    unit = "m" if spacing is not None else "cells"
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"z ({unit})")
    ax.set_title(title)
    return ax


def wavefield(field: np.ndarray, spacing=None, *, ax=None, title: str = "wavefield"):
    """A wavefield snapshot with a symmetric colour scale."""
    return image(field, spacing, ax=ax, title=title, symmetric=True)


def misfit_curve(misfits, *, ax=None, stages=None, title: str = "misfit"):
    """Misfit per iteration on a log scale (stage boundaries marked)."""
    ax = _axes(ax)
    m = np.asarray(misfits, float)
    ax.semilogy(m, ".-")
    if stages is not None:
        s = np.asarray(stages)
        for k in np.flatnonzero(np.diff(s)) + 1:
            ax.axvline(k - 0.5, color="0.7", lw=0.8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("misfit")
    ax.set_title(title)
    return ax


def save(ax, path) -> str:
    """Write the figure of ``ax`` and close it."""
    ax.figure.savefig(path, dpi=110)
    pyplot().close(ax.figure)
    return str(path)
