"""Readable numpy reference implementation of the TM2D step (``python_backend=True``).

Written independently of the C++ kernels, with whole-array operations, so
that it can check them. It works on the same buffers (padded fields, compact
CPML memories, coefficients) and therefore has the same state and callback
semantics. Shots of model ``b`` are the rows ``b*S .. b*S + S - 1``; fields
are viewed as ``[B, S, ny, nx]`` so that the ``[B, ny, nx]`` coefficients
broadcast over shots.

The update of one step (E on integer nodes, H on half nodes, M = order/2):

1. ``Hx += cq dEy/dz`` on rows ``[M, ny-M-1]``; ``Hz -= cq dEy/dx`` on
   columns ``[M, nx-M-1]``;
2. ``Ey = ca Ey + cb (dHx/dz - dHz/dx)`` on the domain ``[M, n-M]``;
3. ``Ey[source] += source_term[t]``; 4. ``receivers[t] = Ey[receiver]``.

Inside the CPML slabs each derivative ``d`` is replaced by ``d/kappa + psi``
with ``psi <- b psi + a d``.
"""

from __future__ import annotations

import numpy as np

from ..plan import Plan
from ..stencils import coefficients


def _shift(f: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    """``f[..., start:stop, :]`` (axis -2) or ``f[..., start:stop]`` (axis -1)."""
    index = [slice(None)] * f.ndim
    index[axis] = slice(start, stop)
    return f[tuple(index)]


def diff_to_half(f: np.ndarray, axis: int, lo: int, hi: int, coeffs) -> np.ndarray:
    """Derivative (times h) at half nodes ``i + 1/2`` for ``i`` in ``[lo, hi)``:
    ``sum_k c_k (f[i + k] - f[i + 1 - k])``."""
    return sum(c * (_shift(f, axis, lo + k, hi + k) - _shift(f, axis, lo + 1 - k, hi + 1 - k))
               for k, c in enumerate(coeffs, start=1))


def diff_to_int(f: np.ndarray, axis: int, lo: int, hi: int, coeffs) -> np.ndarray:
    """Derivative (times h) at integer nodes ``i`` in ``[lo, hi)`` from half nodes
    (``f[j]`` sits at ``j + 1/2``): ``sum_k c_k (f[i + k - 1] - f[i - k])``."""
    return sum(c * (_shift(f, axis, lo + k - 1, hi + k - 1) - _shift(f, axis, lo - k, hi - k))
               for k, c in enumerate(coeffs, start=1))


class ReferenceTm2d:
    """numpy TM2D stepping over the shared buffers."""

    name = "reference"

    def __init__(self, plan: Plan, buffers):
        self.plan = plan
        self.b = buffers
        self.coeffs = coefficients(plan.order)
        z, x = plan.axes
        self.m = z.m
        self.ny, self.nx = plan.padded_shape
        # CPML slab positions as indices into the derivative arrays below,
        # which start at padded index M.
        self.h_rows = z.slab_h() - self.m
        self.h_cols = x.slab_h() - self.m
        self.e_rows = z.slab_e() - self.m
        self.e_cols = x.slab_e() - self.m
        self.shape4 = (plan.n_models, plan.n_shots, self.ny, self.nx)

    # -- helpers --------------------------------------------------------------
    def _fields(self):
        b = self.b
        return (b.ey.reshape(self.shape4), b.hx.reshape(self.shape4), b.hz.reshape(self.shape4))

    @staticmethod
    def _cpml(d, psi, index, axis, a, bb, k):
        """Stretch ``d`` on the slab positions ``index`` along ``axis`` (in place)."""
        ab_shape = [1] * d.ndim
        ab_shape[axis] = len(index)
        a, bb, k = (v.reshape(ab_shape) for v in (a, bb, k))
        if axis % d.ndim == d.ndim - 2:
            slab = d[..., index, :]
            psi[...] = bb * psi + a * slab
            d[..., index, :] = slab / k + psi
        else:
            slab = d[..., index]
            psi[...] = bb * psi + a * slab
            d[..., index] = slab / k + psi

    def _psi(self, name):
        psi = getattr(self.b, name)
        return psi.reshape(self.plan.n_models, self.plan.n_shots, *psi.shape[1:])

    # -- one step -------------------------------------------------------------
    def _update_h(self):
        b, m, ny, nx = self.b, self.m, self.ny, self.nx
        ey, hx, hz = self._fields()
        cq = b.cq[:, None]
        z_profile = (b.az_h, b.bz_h, b.kz_h)
        x_profile = (b.ax_h, b.bx_h, b.kx_h)
        # Hx at (y + 1/2, x): rows [M, ny - M - 1], domain columns.
        d = diff_to_half(ey[..., :, m : nx - m + 1], -2, m, ny - m, self.coeffs) * b.geometry["rdz"]
        if len(self.h_rows):
            rows = self.h_rows + m
            self._cpml(d, self._psi("psi_ey_z"), self.h_rows, -2,
                       *(p[rows] for p in z_profile))
        hx[..., m : ny - m, m : nx - m + 1] += cq[..., m : ny - m, m : nx - m + 1] * d
        # Hz at (y, x + 1/2): domain rows, columns [M, nx - M - 1].
        d = diff_to_half(ey[..., m : ny - m + 1, :], -1, m, nx - m, self.coeffs) * b.geometry["rdx"]
        if len(self.h_cols):
            cols = self.h_cols + m
            self._cpml(d, self._psi("psi_ey_x"), self.h_cols, -1,
                       *(p[cols] for p in x_profile))
        hz[..., m : ny - m + 1, m : nx - m] -= cq[..., m : ny - m + 1, m : nx - m] * d

    def _update_e(self):
        b, m, ny, nx = self.b, self.m, self.ny, self.nx
        ey, hx, hz = self._fields()
        dom = (Ellipsis, slice(m, ny - m + 1), slice(m, nx - m + 1))
        dhx_dz = diff_to_int(hx[..., :, m : nx - m + 1], -2, m, ny - m + 1, self.coeffs)
        dhx_dz = dhx_dz * b.geometry["rdz"]
        dhz_dx = diff_to_int(hz[..., m : ny - m + 1, :], -1, m, nx - m + 1, self.coeffs)
        dhz_dx = dhz_dx * b.geometry["rdx"]
        if len(self.e_rows):
            rows = self.e_rows + m
            self._cpml(dhx_dz, self._psi("psi_hx_z"), self.e_rows, -2,
                       b.az[rows], b.bz[rows], b.kz[rows])
        if len(self.e_cols):
            cols = self.e_cols + m
            self._cpml(dhz_dx, self._psi("psi_hz_x"), self.e_cols, -1,
                       b.ax[cols], b.bx[cols], b.kx[cols])
        ca, cb = b.ca[:, None][dom], b.cb[:, None][dom]
        ey[dom] = ca * ey[dom] + cb * (dhx_dz - dhz_dx)

    def _sources_and_receivers(self, t):
        b = self.b
        n = b.ey.shape[0]
        ey = b.ey.reshape(n, -1)
        if b.src_index.shape[1]:
            shots = np.broadcast_to(np.arange(n)[:, None], b.src_index.shape)
            np.add.at(ey, (shots, b.src_index), b.src_term[:, :, t])  # duplicates add up
        if b.rec_index.shape[1]:
            b.rec_data[:, :, t] = np.take_along_axis(ey, b.rec_index, axis=1)

    def forward(self, t0: int, n_steps: int) -> None:
        for t in range(t0, t0 + n_steps):
            self._update_h()
            self._update_e()
            self._sources_and_receivers(t)

    def synchronize(self) -> None:
        pass
