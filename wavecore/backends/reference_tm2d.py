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

For gradients the forward stores, at steps ``t % k == 0``, E before its
update and the stretched curl of H (for ca, cb; in bf16 the increment and the
mean of E, :func:`e_update_snapshots`) and the stretched derivatives of E (for
cq); :meth:`ReferenceTm2d.adjoint` runs the transposed steps in
reverse (written from the algebra of the step above, not from the kernels):

R. ``lam_E[receivers] += g_t``; ``dJ/df_t = lam_E[sources]``;
A. ``w = stretch^T(+-cb lam_E)``; ``grad_ca += lam_E E_t``, ``grad_cb += lam_E curl_t``;
   ``lam_E <- ca lam_E``;
B. ``lam_Hx -= D+_z w_z``, ``lam_Hz -= D+_x w_x``; ``grad_cq += lam_H s_t`` (with
   the sign of the H update); ``v = stretch^T(+-cq lam_H)``;
C. ``lam_E -= D-_z v_z + D-_x v_x``,

where ``stretch^T`` is the transpose of the CPML stretch with its memory.

Debye media (``geometry["n_poles"]`` = P > 0; shared/DESIGN.md section 11): each
E value has P polarizations ``P_p`` (``pol_ey`` ``[N, P, ny, nx]``) with the
per-cell coefficients ``a_p, b_p, c_p`` (``pole_a, pole_b, pole_c``
``[B, P, ny, nx]``; ``ca, cb`` then hold the poles' share too). Steps 2 and 3
become, with ``E_old`` the value before step 2:

2. ``Ey = ca Ey + cb curl + s``, ``s = c_0 P_0 + c_1 P_1 + ...`` (poles in
   order, P of the previous step);
3. ``Ey[source] += source_term[t]``, then ``P_p = a_p P_p + b_p (Ey + E_old)``
   (Ey holds the source; the kernels fold the source into P afterwards, equal
   to rounding); 4. receivers as before.

A stored step keeps, besides the snapshots above (whose bf16 increment is
``E_new - E_old`` with ``E_new = ca E_old + cb curl + s``), ``P_p`` before its
update (``snap_pol``) and ``Ey + E_old`` with the source (``snap_esum``). Its
transpose, with ``lam_P`` the adjoint of the polarizations (``lam_pol_ey``):

R. ``dJ/df_t = lam_E[sources] + sum_p b_p lam_P_p[sources]``;
A. ``q = sum_p b_p lam_P_p`` and ``lt = lam_E + q`` (the adjoint of E after
   step 2, seen by the receivers and by the P update); ``lt`` replaces
   ``lam_E`` in the images of ca, cb and in ``w``; ``grad_pole_c += lt P_p``,
   ``grad_pole_a += lam_P_p P_p``, ``grad_pole_b += lam_P_p (E + E_old)``
   (``[N, P, ny, nx]``); ``lam_E <- ca lt + q``; ``lam_P_p <- a_p lam_P_p + c_p lt``.

With P = 0 (or no pole arrays) none of this runs and the steps are the ones above.
"""

from __future__ import annotations

import numpy as np

from ..memory import HOST
from ..plan import Plan
from ..stencils import coefficients
from ..storage import from_bf16, to_bf16


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


def debye_poles(b) -> int:
    """P of a Debye run (``geometry["n_poles"]`` with its pole coefficients), else 0."""
    n_poles = b.geometry.get("n_poles") or 0
    return int(n_poles) if n_poles and getattr(b, "pole_a", None) is not None else 0


def pole_sum(coefficient: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``sum_p coefficient_p values_p`` over the pole axis 2 of ``[B, S, P, ...]``
    arrays (``coefficient`` may have S = 1), added in pole order."""
    total = coefficient[:, :, 0] * values[:, :, 0]
    for p in range(1, values.shape[2]):
        total = total + coefficient[:, :, p] * values[:, :, p]
    return total


def over_poles(values: np.ndarray) -> np.ndarray:
    """A per-cell ``[B, S, ...]`` array as ``[B, S, 1, ...]`` (broadcasts over poles)."""
    return values[:, :, None]


def e_update_snapshots(e_old, curl, e_new, compressed: bool):
    """The two snapshots of the E update ``E_new = ca E_old + cb curl``: ``(E_old,
    curl)``, or, compressed to bf16, the increment ``E_new - E_old`` and the mean
    ``(E_old + E_new) / 2``, which round to bf16 without the cancellation of
    ``(E_old, curl)`` in the gradient of epsilon (the gradient turns them back,
    see wavecore/_gradient.py)."""
    if compressed:
        return e_new - e_old, 0.5 * (e_old + e_new)
    return e_old, curl


class SnapshotSlots:
    """Where the snapshots of a step are (shared by the 2-D and 3-D references);
    needs ``self.b``, ``self.plan`` and ``self.slot_shape`` ``[B, S, *grid]``."""

    @property
    def n_poles(self) -> int:
        return debye_poles(self.b)

    @property
    def pole_shape(self):
        """``[B, S, P, *grid]``: per-shot polarizations, their snapshots and adjoints."""
        n_models, n_shots, *grid = self.slot_shape
        return (n_models, n_shots, self.n_poles, *grid)

    def _shape_of(self, name):
        """The ``[B, S, ...]`` shape of a snapshot or gradient array ``name``."""
        per_pole = name.startswith(("snap_pol", "grad_pole", "adj_pol"))
        return self.pole_shape if per_pole else self.slot_shape

    def _poles(self, name):
        """A per-shot polarization array (or its adjoint) as ``[B, S, P, *grid]``."""
        return getattr(self.b, name).reshape(self.pole_shape)

    @staticmethod
    def _coefficient(array, region):
        """A per-model coefficient ``[B, ...]`` on ``region``, broadcasting over shots."""
        return array[:, None][region]

    def _compressed(self, name, t):
        slot = self._slot(name, t)
        return slot is not None and slot.dtype == np.uint16

    def _weight(self, t):
        """Steps the snapshot of step t stands for (0: not stored)."""
        k = self.b.geometry.get("snap_interval", 0)
        if k <= 0 or t % k:
            return 0
        return min(k, self.plan.nt_internal - t)

    def _tangent(self) -> bool:
        """A tangent sweep (wavecore._sweeps): the state is the scattered one and
        the snapshots are the background's, read and never written."""
        return bool(self.b.geometry.get("tangent", 0))

    def _direction(self, name, t):
        """Tangent sweep: the direction ``tan_<coefficient>`` if it moves and step t
        is stored, else None."""
        if not self._tangent() or not self._weight(t):
            return None
        return getattr(self.b, name, None)

    def _pole_scatter(self, t, region, snapshot="snap_pol"):
        """Tangent sweep: ``weight * sum_p d c_p P_p`` (P the background's
        polarization before the update), or 0."""
        d = self._direction("tan_pole_c", t)
        if d is None or self._slot(snapshot, t) is None:
            return 0
        return self._weight(t) * pole_sum(self._coefficient(d, region),
                                          self._load_at(snapshot, t, region))

    def _pole_update_scatter(self, t, region, pol_snapshot, esum_snapshot):
        """Tangent sweep: ``weight * (d a_p P_p + d b_p (E + E_old))`` of the
        background, or 0."""
        da = self._direction("tan_pole_a", t)
        if da is None or self._slot(pol_snapshot, t) is None:
            return 0
        db = self._coefficient(self.b.tan_pole_b, region)
        return self._weight(t) * (
            self._coefficient(da, region) * self._load_at(pol_snapshot, t, region)
            + db * over_poles(self._load_at(esum_snapshot, t, region)))

    def _keep(self, name, t, region, values):
        """Second order: an adjoint sweep keeps the adjoint values it images
        (``adj_<field>``, when set and step t is stored)."""
        slot = None if self._tangent() else self._slot(name, t)
        if slot is not None:
            slot[region] = to_bf16(values) if slot.dtype == np.uint16 else values

    def _kept_term(self, direction, kept, t, region):
        """Second order, a tangent adjoint sweep: ``weight * d * kept`` (the
        transpose of a tangent's secondary source with respect to the
        background), or 0 where there is none."""
        d = self._direction(direction, t)
        if d is None or self._slot(kept, t) is None:
            return 0
        return self._weight(t) * (self._coefficient(d, region) * self._load_at(kept, t, region))

    def _image_kept(self, grad_name, direction, kept, t, region, values):
        """Second order, a tangent sweep: ``grad += weight * kept * values`` (the
        scattered state imaged against the kept adjoint values)."""
        grad = getattr(self.b, grad_name, None)
        if (grad is None or self._direction(direction, t) is None
                or self._slot(kept, t) is None):
            return
        grad.reshape(self._shape_of(grad_name))[region] += (
            self._weight(t) * self._load_at(kept, t, region) * values)

    def _image_kept_poles(self, t, region, kept_e, kept_pol, before=None, both=None):
        """Second order, a tangent sweep: the scattered poles imaged against the
        kept adjoints (lt of E, lam_P of the poles): ``grad_pole_c += weight lt
        P`` and ``grad_pole_a += weight lam_P P`` with P ``before`` the update,
        ``grad_pole_b += weight lam_P (E + E_old)`` with ``both``."""
        if self._direction("tan_pole_a", t) is None or self._slot(kept_pol, t) is None:
            return
        b, w = self.b, self._weight(t)
        lam_p = self._load_at(kept_pol, t, region)
        if before is not None:
            lt = over_poles(self._load_at(kept_e, t, region))
            b.grad_pole_c.reshape(self.pole_shape)[region] += w * lt * before
            b.grad_pole_a.reshape(self.pole_shape)[region] += w * lam_p * before
        if both is not None:
            b.grad_pole_b.reshape(self.pole_shape)[region] += w * lam_p * over_poles(both)

    def _kept_pole_terms(self, t, region, kept_e, kept_pol):
        """Second order, a tangent adjoint sweep: the transposes of the poles'
        secondary sources with respect to the background, ``(weight sum_p d b_p
        lam_P_p`` (joining the adjoint of E + E_old), ``weight (d a_p lam_P_p + d
        c_p lt))`` (joining the poles' adjoints), from the kept adjoints; or 0, 0."""
        d = self._direction("tan_pole_a", t)
        if d is None or self._slot(kept_pol, t) is None:
            return 0, 0
        b, w = self.b, self._weight(t)
        lam_p = self._load_at(kept_pol, t, region)
        lt = over_poles(self._load_at(kept_e, t, region))
        fold = w * pole_sum(self._coefficient(b.tan_pole_b, region), lam_p)
        poles = w * (self._coefficient(d, region) * lam_p
                     + self._coefficient(b.tan_pole_c, region) * lt)
        return fold, poles

    def _kept_fold(self, t, region, kept_e, kept_pol, shape):
        """``_kept_pole_terms``' fold on ``region`` of a zero ``shape`` array (the
        source term's adjoint gains it), or 0."""
        fold, _ = self._kept_pole_terms(t, region, kept_e, kept_pol)
        if isinstance(fold, int):
            return 0
        out = np.zeros(shape, fold.dtype)
        out[region] = fold
        return out

    def _slot(self, name, t):
        """Snapshot array ``name`` of step t as ``slot_shape``, or None."""
        array = getattr(self.b, name, None)
        if array is None or not self._weight(t):
            return None
        g = self.b.geometry
        return array[(t - g["snap_t0"]) // g["snap_interval"]].reshape(self._shape_of(name))


class ReferenceTm2d(SnapshotSlots):
    """numpy TM2D stepping over the shared buffers."""

    name = "reference"
    memory = HOST

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
        self.slot_shape = self.shape4
        #: The E nodes a step updates (the domain).
        self.dom = (Ellipsis, slice(self.m, self.ny - self.m + 1),
                    slice(self.m, self.nx - self.m + 1))
        self._e_old = None  # Debye: Ey before step 2, for the P update after the source

    # -- helpers --------------------------------------------------------------
    def _fields(self):
        b = self.b
        return (b.ey.reshape(self.shape4), b.hx.reshape(self.shape4), b.hz.reshape(self.shape4))

    @staticmethod
    def _slab(axis, index):
        """Indexer of the slab positions ``index`` along axis -2 or -1."""
        return (Ellipsis, index, slice(None)) if axis == -2 else (Ellipsis, index)

    @classmethod
    def _cpml(cls, d, psi, index, axis, a, bb, k):
        """Stretch ``d`` on the slab positions ``index`` along ``axis`` (in place):
        ``psi <- b psi + a d``, ``d <- d / k + psi``."""
        a, bb, k = (v.reshape((-1, 1) if axis == -2 else (-1,)) for v in (a, bb, k))
        at = cls._slab(axis, index)
        raw = d[at]
        psi[...] = bb * psi + a * raw
        d[at] = raw / k + psi

    @classmethod
    def _cpml_adjoint(cls, t, lam_psi, index, axis, a, bb, k):
        """Transpose of :meth:`_cpml` (in place on ``t``): with ``total = lam_psi + t``,
        ``lam_psi <- b total`` and ``t <- t / k + a total``."""
        a, bb, k = (v.reshape((-1, 1) if axis == -2 else (-1,)) for v in (a, bb, k))
        at = cls._slab(axis, index)
        total = lam_psi + t[at]
        t[at] = t[at] / k + a * total
        lam_psi[...] = bb * total

    def _view(self, name):
        """A per-shot buffer ``[N, ...]`` as ``[B, S, ...]``."""
        array = getattr(self.b, name)
        return array.reshape(self.plan.n_models, self.plan.n_shots, *array.shape[1:])

    _psi = _view

    # -- snapshots ------------------------------------------------------------

    def _store(self, name, t, region, values):
        slot = None if self._tangent() else self._slot(name, t)
        if slot is not None:
            slot[region] = to_bf16(values) if slot.dtype == np.uint16 else values

    def _load(self, name, t, region):
        values = self._slot(name, t)[region]
        return from_bf16(values).astype(self.b.ey.dtype) if values.dtype == np.uint16 else values

    _load_at = _load

    def _scatter(self, direction, snapshot, t, region):
        """Tangent sweep: the secondary source ``weight * d * snapshot`` on
        ``region`` (``d`` = ``tan_<coefficient>``), or 0 where there is none."""
        d = self._direction(direction, t)
        if d is None or self._slot(snapshot, t) is None:
            return 0
        return self._weight(t) * (self._coefficient(d, region) * self._load(snapshot, t, region))

    # -- one step -------------------------------------------------------------
    def _update_h(self, t=None):
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
        self._store("snap_sz", t, (Ellipsis, slice(m, ny - m), slice(m, nx - m + 1)), d)
        hx[..., m : ny - m, m : nx - m + 1] += cq[..., m : ny - m, m : nx - m + 1] * d
        hx_dom = (Ellipsis, slice(m, ny - m), slice(m, nx - m + 1))
        if self._tangent():
            hx[hx_dom] += self._scatter("tan_cq", "snap_sz", t, hx_dom)
            self._image_kept("grad_cq", "tan_cq", "adj_hx", t, hx_dom, d)
        # Hz at (y, x + 1/2): domain rows, columns [M, nx - M - 1].
        d = diff_to_half(ey[..., m : ny - m + 1, :], -1, m, nx - m, self.coeffs) * b.geometry["rdx"]
        if len(self.h_cols):
            cols = self.h_cols + m
            self._cpml(d, self._psi("psi_ey_x"), self.h_cols, -1,
                       *(p[cols] for p in x_profile))
        self._store("snap_sx", t, (Ellipsis, slice(m, ny - m + 1), slice(m, nx - m)), d)
        hz[..., m : ny - m + 1, m : nx - m] -= cq[..., m : ny - m + 1, m : nx - m] * d
        hz_dom = (Ellipsis, slice(m, ny - m + 1), slice(m, nx - m))
        if self._tangent():
            hz[hz_dom] -= self._scatter("tan_cq", "snap_sx", t, hz_dom)
            self._image_kept("grad_cq", "tan_cq", "adj_hz", t, hz_dom, d)

    def _update_e(self, t=None):
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
        curl = dhx_dz - dhz_dx
        e_old = ey[dom].copy()
        e_new = ca * e_old + cb * curl
        if self._tangent():
            e_new = e_new + (self._scatter("tan_ca", "snap_ey", t, dom)
                             + self._scatter("tan_cb", "snap_curl", t, dom))
            self._image_kept("grad_ca", "tan_ca", "adj_ey", t, dom, e_old)
            self._image_kept("grad_cb", "tan_ca", "adj_ey", t, dom, curl)
        if self.n_poles:  # + sum_p c_p P_p, P of the previous step
            pol = self._poles("pol_ey")[dom]
            self._store("snap_pol", t, dom, pol)
            e_new = e_new + pole_sum(self._coefficient(b.pole_c, dom), pol)
            if self._tangent():
                e_new = e_new + self._pole_scatter(t, dom)
                self._image_kept_poles(t, dom, "adj_ey", "adj_pol", before=pol)
            self._e_old = e_old
        first, second = e_update_snapshots(e_old, curl, e_new, self._compressed("snap_ey", t))
        self._store("snap_ey", t, dom, first)
        self._store("snap_curl", t, dom, second)
        ey[dom] = e_new

    def _sources(self, t):
        b = self.b
        n = b.ey.shape[0]
        if b.src_index.shape[1]:
            shots = np.broadcast_to(np.arange(n)[:, None], b.src_index.shape)
            ey = b.ey.reshape(n, -1)
            np.add.at(ey, (shots, b.src_index), b.src_term[:, :, t])  # duplicates add up

    def _update_polarization(self, t=None):
        """Debye: ``P_p = a_p P_p + b_p (Ey + E_old)``, Ey holding the source."""
        if not self.n_poles:
            return
        b, dom = self.b, self.dom
        esum = self._fields()[0][dom] + self._e_old
        self._store("snap_esum", t, dom, esum)
        if self._tangent():  # (E + E_old holds the source term)
            self._image_kept_poles(t, dom, "adj_ey", "adj_pol", both=esum)
        pol = self._poles("pol_ey")
        pol[dom] = (self._coefficient(b.pole_a, dom) * pol[dom]
                    + self._coefficient(b.pole_b, dom) * over_poles(esum))
        if self._tangent():
            pol[dom] += self._pole_update_scatter(t, dom, "snap_pol", "snap_esum")
        self._e_old = None

    def _receivers(self, t):
        b = self.b
        n = b.ey.shape[0]
        if b.rec_index.shape[1]:
            b.rec_data[:, :, t] = np.take_along_axis(b.ey.reshape(n, -1), b.rec_index, axis=1)

    def forward(self, t0: int, n_steps: int) -> None:
        for t in range(t0, t0 + n_steps):
            self._update_h(t)
            self._update_e(t)
            self._sources(t)
            self._update_polarization(t)
            self._receivers(t)

    # -- the transposed step --------------------------------------------------
    def _adjoint_receivers_sources(self, t):
        b = self.b
        n = b.lam_ey.shape[0]
        lam = b.lam_ey.reshape(n, -1)
        if b.rec_index.shape[1]:
            shots = np.broadcast_to(np.arange(n)[:, None], b.rec_index.shape)
            np.add.at(lam, (shots, b.rec_index), b.rec_grad[:, :, t])
        if b.src_index.shape[1]:
            if self.n_poles:  # the source also reaches P: lam_E + sum_p b_p lam_P_p
                q = pole_sum(b.pole_b[:, None], self._poles("lam_pol_ey"))
                q = q + self._kept_fold(t, self.dom, "adj_ey", "adj_pol", q.shape)
                lam = lam + q.reshape(n, -1)
            b.src_grad[:, :, t] = np.take_along_axis(lam, b.src_index, axis=1)

    def _image(self, grad_name, snapshot, t, region, adjoint):
        """grad[region] += weight * adjoint * snapshot (when step t is stored)."""
        grad = getattr(self.b, grad_name, None)
        weight = self._weight(t)
        if grad is not None and weight:
            values = self._load(snapshot, t, region)
            if values.ndim < adjoint.ndim:  # E + E_old for every pole
                values = over_poles(values)
            grad.reshape(self._shape_of(grad_name))[region] += weight * adjoint * values

    def _adjoint_e(self, t):
        """Step A: transpose of E <- ca E + cb (sz - sx) (+ the Debye terms)."""
        b, m, ny, nx = self.b, self.m, self.ny, self.nx
        dom = (Ellipsis, slice(m, ny - m + 1), slice(m, nx - m + 1))
        lam_e = self._view("lam_ey")
        lam = lam_e[dom].copy()
        lt = lam  # the adjoint of E after the E update
        if self.n_poles:  # which the receivers and the P update see: lam_E + q
            lam_pol = self._poles("lam_pol_ey")
            lam_p = lam_pol[dom].copy()
            q = pole_sum(self._coefficient(b.pole_b, dom), lam_p)
            fold, pole_terms = self._kept_pole_terms(t, dom, "adj_ey", "adj_pol")
            q = q + fold
            lt = lam + q
            self._image("grad_pole_c", "snap_pol", t, dom, over_poles(lt))
            self._image("grad_pole_a", "snap_pol", t, dom, lam_p)
            self._image("grad_pole_b", "snap_esum", t, dom, lam_p)
            if b.grad_pole_a is not None:  # second order: keep the poles' adjoints
                self._keep("adj_pol", t, dom, lam_p)
        self._image("grad_ca", "snap_ey", t, dom, lt)
        self._image("grad_cb", "snap_curl", t, dom, lt)
        images = b.grad_ca is not None or b.grad_cb is not None
        term_a = term_b = 0
        if images and self._tangent():  # second order: the kept values' scatter
            term_a = self._kept_term("tan_ca", "adj_ey", t, dom)
            term_b = self._kept_term("tan_cb", "adj_ey", t, dom)
        elif images:
            self._keep("adj_ey", t, dom, lt)
        wz = b.cb[:, None][dom] * lt + term_b
        wx = -wz
        if len(self.e_rows):
            rows = self.e_rows + m
            self._cpml_adjoint(wz, self._view("lam_psi_hx_z"), self.e_rows, -2,
                               b.az[rows], b.bz[rows], b.kz[rows])
        if len(self.e_cols):
            cols = self.e_cols + m
            self._cpml_adjoint(wx, self._view("lam_psi_hz_x"), self.e_cols, -1,
                               b.ax[cols], b.bx[cols], b.kx[cols])
        self._view("w_z")[dom] = wz
        self._view("w_x")[dom] = wx
        lam_e[dom] = b.ca[:, None][dom] * lt + term_a
        if self.n_poles:
            lam_e[dom] += q
            lam_pol[dom] = (self._coefficient(b.pole_a, dom) * lam_p
                            + self._coefficient(b.pole_c, dom) * over_poles(lt) + pole_terms)

    def _adjoint_h(self, t):
        """Step B: transposes of the derivatives of H, then of the H update."""
        b, m, ny, nx = self.b, self.m, self.ny, self.nx
        cq = b.cq[:, None]
        # Hx: rows [M, ny - M - 1], domain columns.
        hx_dom = (Ellipsis, slice(m, ny - m), slice(m, nx - m + 1))
        lam_hx = self._view("lam_hx")
        w_z = self._view("w_z")[..., :, m : nx - m + 1]
        lam_hx[hx_dom] -= diff_to_half(w_z, -2, m, ny - m, self.coeffs) * b.geometry["rdz"]
        self._image("grad_cq", "snap_sz", t, hx_dom, lam_hx[hx_dom])
        v = cq[hx_dom] * lam_hx[hx_dom]
        if b.grad_cq is not None:  # second order: keep, or the kept values' scatter
            v = v + self._kept_term("tan_cq", "adj_hx", t, hx_dom)
            self._keep("adj_hx", t, hx_dom, lam_hx[hx_dom])
        if len(self.h_rows):
            rows = self.h_rows + m
            self._cpml_adjoint(v, self._view("lam_psi_ey_z"), self.h_rows, -2,
                               b.az_h[rows], b.bz_h[rows], b.kz_h[rows])
        self._view("v_z")[hx_dom] = v
        # Hz: domain rows, columns [M, nx - M - 1]; Hz = Hz - cq sx.
        hz_dom = (Ellipsis, slice(m, ny - m + 1), slice(m, nx - m))
        lam_hz = self._view("lam_hz")
        w_x = self._view("w_x")[..., m : ny - m + 1, :]
        lam_hz[hz_dom] -= diff_to_half(w_x, -1, m, nx - m, self.coeffs) * b.geometry["rdx"]
        self._image("grad_cq", "snap_sx", t, hz_dom, -lam_hz[hz_dom])
        v = -(cq[hz_dom] * lam_hz[hz_dom])
        if b.grad_cq is not None:
            v = v + self._kept_term("tan_cq", "adj_hz", t, hz_dom)
            self._keep("adj_hz", t, hz_dom, -lam_hz[hz_dom])
        if len(self.h_cols):
            cols = self.h_cols + m
            self._cpml_adjoint(v, self._view("lam_psi_ey_x"), self.h_cols, -1,
                               b.ax_h[cols], b.bx_h[cols], b.kx_h[cols])
        self._view("v_x")[hz_dom] = v

    def _adjoint_gather(self):
        """Step C: transposes of the derivatives of E."""
        m, ny, nx = self.m, self.ny, self.nx
        dom = (Ellipsis, slice(m, ny - m + 1), slice(m, nx - m + 1))
        v_z = self._view("v_z")[..., :, m : nx - m + 1]
        v_x = self._view("v_x")[..., m : ny - m + 1, :]
        self._view("lam_ey")[dom] -= (
            diff_to_int(v_z, -2, m, ny - m + 1, self.coeffs) * self.b.geometry["rdz"]
            + diff_to_int(v_x, -1, m, nx - m + 1, self.coeffs) * self.b.geometry["rdx"])

    def adjoint(self, t_end: int, n_steps: int) -> None:
        """Transposed steps ``t_end - 1`` down to ``t_end - n_steps``."""
        for t in range(t_end - 1, t_end - 1 - n_steps, -1):
            self._adjoint_receivers_sources(t)
            self._adjoint_e(t)
            self._adjoint_h(t)
            self._adjoint_gather()

    def synchronize(self) -> None:
        pass
