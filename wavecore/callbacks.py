"""The state handed to forward (and, later, backward) callbacks.

When they run
-------------
With ``callback_frequency = f`` the forward callback runs before internal
steps ``0, f, 2f, ...`` (every step index below ``nt_internal`` that is a
multiple of ``f``), on every backend. At step ``n`` the wavefields are those
after ``n`` completed steps: at step 0 the initial state, at step ``f`` the
fields after ``f`` updates (sources of steps ``0..f-1`` injected). Steps are
internal steps: with CFL sub-stepping (``step_ratio > 1``) they are finer than
the user's samples.

The backward callback runs at the same step indices in reverse order
(``..., 2f, f, 0``): at step ``n`` the transposed steps ``nt - 1 .. n`` are
done, so the adjoint fields are those of the forward state at step ``n`` and
the gradients hold the contributions of steps ``>= n`` (complete at step 0).

Live buffers
------------
The arrays are the solver's own buffers, not copies: reading them is free and
in-place edits (``state.wavefields["ey"][...] *= 0.5``) act on the following
steps. The mappings themselves are read-only; rebinding a name cannot change
the solver's buffers and raises ``TypeError``. Models and coefficients are
read-only too: numpy views of them refuse writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

__all__ = ["CallbackState"]

_VIEWS = ("inner", "pml", "full")


class CallbackState:
    """Snapshot of a run at one internal step, with views of live buffers.

    Attributes
    ----------
    dt : float
        Internal time step, seconds.
    step : int
        Internal step index (fields are those after ``step`` steps).
    nt : int
        Internal steps of the run.
    is_backward : bool
        False in forward callbacks.
    sweep : str
        The pass over the time steps this state belongs to (wavecore._sweeps):
        ``"forward"``, ``"adjoint"`` (vjp), ``"tangent"`` (jvp: the scattered
        state), or one of ``second_vjp``'s three, ``"adjoint-keep"``,
        ``"tangent-image"`` and ``"second-adjoint"``.
    wavefields : Mapping[str, ndarray]
        Live wavefield buffers over the whole padded grid: ``ey, hx, hz``
        (shape ``[S, nz_padded, nx_padded]`` or ``[B, S, ...]`` for batched
        models) and the CPML memories ``psi_ey_z, psi_ey_x, psi_hx_z,
        psi_hz_x`` in their compact slab layout (see :mod:`wavecore.grid`).
        In backward callbacks: the adjoint fields ``lam_ey, lam_hx, lam_hz``
        and memories ``lam_psi_...`` (the adjoints of the forward state at
        ``step``).
    gradients : Mapping[str, ndarray]
        Backward callbacks only: the requested model gradients accumulated so
        far (steps ``>= step``), over the padded grid, before the CPML region
        is folded onto the edge cells (copies, not live).
    models : Mapping[str, ndarray]
        The material law's arrays (``epsilon, sigma, mu``, edge-replicated over
        the padded grid) and its coefficients (``ca, cb, cq``),
        shape ``[nz_padded, nx_padded]`` or ``[B, ...]``.
        Read-only: the run's coefficients are fixed before its first step
        (the CPU core also reads them once per row where a row's
        coefficients are equal), so numpy views of them refuse writes.
    """

    def __init__(self, *, dt: float, step: int, nt: int, wavefields: Mapping,
                 models: Mapping, axes, model_batched: bool,
                 gradients: Mapping | None = None, is_backward: bool = False,
                 sweep: str | None = None):
        self.dt = dt
        self.step = step
        self.nt = nt
        self.is_backward = is_backward
        self.sweep = sweep or ("adjoint" if is_backward else "forward")
        self.wavefields = MappingProxyType(dict(wavefields))
        self.models = MappingProxyType({k: _read_only(v) for k, v in models.items()})
        self.gradients = MappingProxyType(dict(gradients or {}))
        self._axes = tuple(axes)
        self._model_batched = model_batched

    @property
    def time(self) -> float:
        """Simulation time of the fields, ``step * dt`` seconds."""
        return self.step * self.dt

    @property
    def progress(self) -> float:
        """Fraction of the internal steps completed, in [0, 1]."""
        return self.step / self.nt if self.nt else 1.0

    def _view(self, array, view: str, name: str):
        if view not in _VIEWS:
            raise ValueError(f"view must be one of {_VIEWS}, got {view!r}")
        if "psi_" in name:
            if view != "full":
                raise ValueError(
                    f"{name} is a CPML memory stored only on the CPML slabs (compact layout); "
                    "it has no 'inner' or 'pml' view: use view='full'")
            return array
        if view == "full":
            return array
        region = [a.domain if view == "pml" else a.inner for a in self._axes]
        return array[(Ellipsis, *region)]

    def get_wavefield(self, name: str, view: str = "inner"):
        """A wavefield (live buffer view).

        Parameters
        ----------
        name : str
            ``"ey"``, ``"hx"``, ``"hz"`` or a CPML memory ``"psi_..."``.
        view : {"inner", "pml", "full"}
            The model region, the model plus CPML, or the whole padded grid
            (the only view of the CPML memories).
        """
        if name not in self.wavefields:
            raise KeyError(f"no wavefield {name!r}; available: {', '.join(self.wavefields)}")
        return self._view(self.wavefields[name], view, name)

    def get_model(self, name: str, view: str = "inner"):
        """A model or coefficient array (``epsilon, sigma, mu, ca, cb, cq`` for the
        non-dispersive law) in the given view."""
        if name not in self.models:
            raise KeyError(f"no model {name!r}; available: {', '.join(self.models)}")
        return self._view(self.models[name], view, name)

    def get_gradient(self, name: str, view: str = "inner"):
        """A gradient accumulated so far (backward callbacks only)."""
        if not self.is_backward:
            raise RuntimeError("gradients exist only in backward callbacks")
        if name not in self.gradients:
            raise KeyError(f"no gradient {name!r}; available: {', '.join(self.gradients)}")
        return self._view(self.gradients[name], view, name)

    def __repr__(self) -> str:
        kind = "backward" if self.is_backward else "forward"
        return f"CallbackState({kind}, step={self.step}/{self.nt}, dt={self.dt:.4g})"


def _read_only(array):
    """A view of a numpy array that refuses writes (other arrays as they are)."""
    if isinstance(array, np.ndarray):
        array = array.view()
        array.flags.writeable = False
    return array
