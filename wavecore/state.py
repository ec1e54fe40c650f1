"""Named wavefields and CPML memories: ``final_state`` out, ``initial_state`` in.

A :class:`WaveState` covers the domain (model + CPML, no halo):

* fields (``ey, hx, hz`` in 2-D, ``ex, ey, ez, hx, hy, hz`` in 3-D):
  ``[*batch, *domain_shape]``,
* CPML memories ``psi_<field>_<axis>``: the slabs of that axis only, i.e. the
  domain shape with that axis replaced by ``pml_lo + pml_hi`` (low slab first).

``batch`` is ``(S,)`` or ``(B, S)`` for batched models. Passing a run's
``final_state`` as ``initial_state`` of the next run continues it exactly
(when no CFL sub-stepping resamples the sources).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._checks import describe, float_array

__all__ = ["WaveState", "TM2D_FIELDS", "TM2D_MEMORIES", "M3D_FIELDS", "M3D_MEMORIES"]

#: TM2D field names.
TM2D_FIELDS = ("ey", "hx", "hz")
#: TM2D CPML memories and the axis (0 = z, 1 = x) whose slabs hold them.
TM2D_MEMORIES = {"psi_ey_z": 0, "psi_ey_x": 1, "psi_hx_z": 0, "psi_hz_x": 1}
#: Field values that are not degrees of freedom (never updated, held at 0):
#: the H component staggered along an axis has no node after the last E node.
TM2D_EDGE = {"hx": 0, "hz": 1}

#: 3-D field names (E first).
M3D_FIELDS = ("ex", "ey", "ez", "hx", "hy", "hz")
#: 3-D CPML memories ``psi_<f>_<a>`` (memory of dF/da) and the axis (0 = z, 1 = y,
#: 2 = x) whose slabs hold them: six of E derivatives (used by the H update),
#: six of H derivatives (used by the E update).
M3D_MEMORIES = {"psi_ey_z": 0, "psi_ez_y": 1, "psi_ez_x": 2, "psi_ex_z": 0, "psi_ex_y": 1,
                "psi_ey_x": 2, "psi_hy_z": 0, "psi_hz_y": 1, "psi_hz_x": 2, "psi_hx_z": 0,
                "psi_hx_y": 1, "psi_hy_x": 2}


def state_shapes(axes, batch_shape, memories: Mapping[str, int], fields,
                 extents: Mapping[str, int] = {}) -> dict:  # noqa: B006 - read only
    """Expected user-facing shape of every state array (``extents``: fields with
    a leading axis after the batch, e.g. the poles of a Debye polarization)."""
    domain = tuple(a.n_domain for a in axes)
    shapes = {name: (*batch_shape, *((extents[name],) if name in extents else ()), *domain)
              for name in fields}
    for name, axis in memories.items():
        shape = list(domain)
        shape[axis] = axes[axis].n_slab
        shapes[name] = (*batch_shape, *shape)
    return shapes


class WaveState(Mapping):
    """Read-only mapping of state names to numpy arrays (also as attributes)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self._arrays = dict(arrays)

    def __getitem__(self, name):
        return self._arrays[name]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def __getattr__(self, name):
        try:
            return self.__dict__["_arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._arrays.items())
        return f"WaveState({inner})"

    def copy(self) -> "WaveState":
        return WaveState({k: v.copy() for k, v in self._arrays.items()})


def validate_initial_state(initial_state, shapes: dict, dtype, batch_shape) -> dict:
    """Check an initial state against the expected shapes.

    Missing names start at zero. Arrays may omit the shot axes (then they are
    used for every shot); unknown names, wrong shapes or dtypes raise.
    Returns full-shape arrays (broadcast views, not copies).
    """
    if initial_state is None:
        return {}
    if not isinstance(initial_state, Mapping):
        raise TypeError(f"initial_state must be a mapping of names to arrays (e.g. a previous "
                        f"final_state), got {describe(initial_state)}")
    unknown = sorted(set(initial_state) - set(shapes))
    if unknown:
        raise ValueError(f"initial_state has unknown names {unknown}; expected a subset of "
                         f"{sorted(shapes)}")
    out = {}
    for name, value in initial_state.items():
        if value is None:
            continue
        array = float_array(value, f"initial_state[{name!r}]")
        if array.dtype != dtype:
            raise TypeError(f"initial_state[{name!r}] has dtype {array.dtype}, the model "
                            f"has {dtype}")
        full = shapes[name]
        spatial = full[len(batch_shape):]
        if array.shape not in (full, spatial):
            raise ValueError(
                f"initial_state[{name!r}] must have shape {full} (or {spatial} for every "
                f"shot), got {array.shape}; the domain includes the CPML")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"initial_state[{name!r}] must be finite")
        out[name] = np.broadcast_to(array, full)
    return out


def infer_shots(initial_state, fields, ndim: int, batched: bool) -> int | None:
    """Number of shots implied by an initial state (None if it does not say)."""
    if not isinstance(initial_state, Mapping):
        return None
    for name in fields:
        value = initial_state.get(name)
        if value is not None and np.ndim(value) == ndim + (2 if batched else 1):
            return int(np.shape(value)[1 if batched else 0])
    return None
