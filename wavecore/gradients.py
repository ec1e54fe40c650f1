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

#: What ``requires_grad`` may name (with the non-dispersive law; a law's own
#: targets are ``Material.gradient_targets``).
GRADIENT_TARGETS = NON_DISPERSIVE.gradient_targets


@dataclass
class Gradients:
    """Gradients of a scalar loss with respect to the inputs of a run.

    Each is ``None`` unless requested with ``requires_grad``; otherwise it has
    the shape and dtype of the corresponding input (``[nz, nx]`` or
    ``[B, nz, nx]`` for the models, the shape of ``source_amplitude`` for it).
    A material law with other inputs adds its gradients as further attributes
    (:meth:`of`); iteration follows the law's ``gradient_targets``.
    """

    epsilon: np.ndarray | None = None
    sigma: np.ndarray | None = None
    mu: np.ndarray | None = None
    source_amplitude: np.ndarray | None = None

    #: The names this object iterates over (a class attribute, not a field:
    #: ``repr`` and comparison see the four fields above only).
    _names = GRADIENT_TARGETS

    @classmethod
    def of(cls, names, values=None) -> "Gradients":
        """Gradients of the targets ``names`` (a law's ``gradient_targets``), with
        ``values`` (name -> array) set; names beyond the four fields become
        attributes too (None unless set)."""
        out = cls()
        if tuple(names) != GRADIENT_TARGETS:
            out._names = tuple(names)
            for name in out._names:
                if not hasattr(out, name):
                    setattr(out, name, None)
        for name, value in (values or {}).items():
            setattr(out, name, value)
        return out

    def __iter__(self):
        yield from (getattr(self, name) for name in self._names)


def parse_requires_grad(requires_grad, material: Material = NON_DISPERSIVE
                        ) -> frozenset[str]:
    """A set of target names (of ``material.gradient_targets``) from a name or an
    iterable of names."""
    targets = material.gradient_targets
    if requires_grad is None or requires_grad is False:
        return frozenset()
    if isinstance(requires_grad, str):
        requires_grad = (requires_grad,)
    if not isinstance(requires_grad, Iterable):
        raise TypeError(f"requires_grad must be a name or a sequence of names from "
                        f"{targets}, got {requires_grad!r}")
    names = frozenset(requires_grad)
    unknown = sorted(n for n in names if n not in targets)
    if unknown:
        raise ValueError(f"requires_grad has unknown names {unknown}; choose from "
                         f"{targets}")
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

    ``padded`` is ``[B, *padded_shape]`` (or ``[B, P, *padded_shape]``: any
    leading axes); returns ``[B, *model_shape]`` (``[B, P, *model_shape]``).
    """
    out = padded
    lead = padded.ndim - len(axes)
    for dim, axis in enumerate(axes, start=lead):
        moved = np.moveaxis(out, dim, 0)
        core = moved[axis.pml_start : axis.pml_end].copy()
        core[0] += moved[: axis.pml_start].sum(axis=0)
        core[-1] += moved[axis.pml_end :].sum(axis=0)
        out = np.moveaxis(core, 0, dim)
    return out
