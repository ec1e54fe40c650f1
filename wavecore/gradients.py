"""From coefficient gradients to gradients with respect to the user's arrays.

The kernels accumulate the gradients of the material's coefficients (``dJ/dca``,
``dJ/dcb``, ``dJ/dcq`` for the non-dispersive law) on the padded grid (one
accumulator per shot, summed by the reverse pass in a fixed order). This module
applies the material's chain rule (:mod:`wavecore._materials`) and folds the
edge-replicated padding (CPML and halo) back onto the edge cells of the model,
so that every gradient is with respect to the user's arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ._materials import NON_DISPERSIVE, Material

__all__ = ["Gradients", "GRADIENT_TARGETS", "parse_requires_grad", "material_gradients",
           "fold_padding"]

#: What ``requires_grad`` may name.
GRADIENT_TARGETS = (*NON_DISPERSIVE.inputs, "source_amplitude")


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
        yield from (getattr(self, name) for name in GRADIENT_TARGETS)


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


def material_gradients(padded: dict, dt: float, grads: dict, targets: frozenset[str],
                       material: Material = NON_DISPERSIVE) -> dict:
    """Chain rule from coefficient gradients to the material's inputs.

    ``padded`` holds the edge-padded models ``[B, ...]``; ``grads`` maps each
    coefficient to its gradient of the same shape (None where not accumulated).
    Returns the padded gradients of the requested targets, computed in float64.
    """
    return material.chain_rule(padded, dt, grads, targets)


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
