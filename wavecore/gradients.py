"""From coefficient gradients to gradients with respect to the user's arrays.

The kernels accumulate ``dJ/dca``, ``dJ/dcb`` and ``dJ/dcq`` on the padded grid
(one accumulator per shot, summed here in a fixed order). This module applies
the chain rule of

    ca = (eps0 eps - sigma dt / 2) / (eps0 eps + sigma dt / 2)
    cb = dt / (eps0 eps + sigma dt / 2),      cq = dt / (mu0 mu)

and folds the edge-replicated padding (CPML and halo) back onto the edge cells
of the model, so that every gradient is with respect to the user's arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .constants import EP0, MU0

__all__ = ["Gradients", "GRADIENT_TARGETS", "parse_requires_grad", "material_gradients",
           "fold_padding"]

#: What ``requires_grad`` may name.
GRADIENT_TARGETS = ("epsilon", "sigma", "mu", "source_amplitude")


@dataclass
class Gradients:
    """Gradients of a scalar loss with respect to the inputs of a run.

    Each is ``None`` unless requested with ``requires_grad``; otherwise it has
    the shape and dtype of the corresponding input (``[nz, nx]`` or
    ``[B, nz, nx]`` for the models, the shape of ``source_amplitude`` for it).
    """

    epsilon: np.ndarray | None = None
    sigma: np.ndarray | None = None
    mu: np.ndarray | None = None
    source_amplitude: np.ndarray | None = None

    def __iter__(self):
        yield from (self.epsilon, self.sigma, self.mu, self.source_amplitude)


def parse_requires_grad(requires_grad) -> frozenset[str]:
    """A set of target names from a name or an iterable of names."""
    if requires_grad is None or requires_grad is False:
        return frozenset()
    if isinstance(requires_grad, str):
        requires_grad = (requires_grad,)
    if not isinstance(requires_grad, Iterable):
        raise TypeError(f"requires_grad must be a name or a sequence of names from "
                        f"{GRADIENT_TARGETS}, got {requires_grad!r}")
    names = frozenset(requires_grad)
    unknown = sorted(n for n in names if n not in GRADIENT_TARGETS)
    if unknown:
        raise ValueError(f"requires_grad has unknown names {unknown}; choose from "
                         f"{GRADIENT_TARGETS}")
    return names


def material_gradients(padded: dict, dt: float, grad_ca, grad_cb, grad_cq,
                       targets: frozenset[str]) -> dict:
    """Chain rule from coefficient gradients to ``epsilon``, ``sigma``, ``mu``.

    ``padded`` holds the edge-padded models ``[B, ...]``; the coefficient
    gradients have the same shape (None where not accumulated). Returns the
    padded gradients of the requested targets, computed in float64.
    """
    out = {}
    if targets & {"epsilon", "sigma"}:
        eps = padded["epsilon"].astype(np.float64)
        sigma = padded["sigma"].astype(np.float64)
        den = EP0 * eps + 0.5 * sigma * dt
        g_ca = np.asarray(grad_ca, np.float64)
        g_cb = np.asarray(grad_cb, np.float64)
        if "epsilon" in targets:
            # d ca / d eps = eps0 sigma dt / den^2,  d cb / d eps = -eps0 dt / den^2
            out["epsilon"] = EP0 * dt * (sigma * g_ca - g_cb) / den**2
        if "sigma" in targets:
            # d ca / d sigma = -eps0 eps dt / den^2,  d cb / d sigma = -dt^2 / (2 den^2)
            out["sigma"] = -dt * (EP0 * eps * g_ca + 0.5 * dt * g_cb) / den**2
    if "mu" in targets:
        mu = padded["mu"].astype(np.float64)
        out["mu"] = -dt / (MU0 * mu**2) * np.asarray(grad_cq, np.float64)
    return out


def fold_padding(padded: np.ndarray, axes) -> np.ndarray:
    """Transpose of edge padding: add the padded cells onto the model's edge cells.

    ``padded`` is ``[B, *padded_shape]``; returns ``[B, *model_shape]``.
    """
    out = padded
    for dim, axis in enumerate(axes, start=1):
        moved = np.moveaxis(out, dim, 0)
        core = moved[axis.pml_start : axis.pml_end].copy()
        core[0] += moved[: axis.pml_start].sum(axis=0)
        core[-1] += moved[axis.pml_end :].sum(axis=0)
        out = np.moveaxis(core, 0, dim)
    return out
