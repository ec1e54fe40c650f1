"""Readable numpy reference implementation of the 3-D Yee step (``python_backend=True``).

Written independently of the C++ kernels, with whole-array operations and a
table of the curl terms, so that it can check them. It works on the same
buffers (padded fields, compact CPML memories, coefficients). Fields are
viewed as ``[B, S, nz, ny, nx]`` so that ``[B, nz, ny, nx]`` coefficients
broadcast over shots.

One step, on the domain ``[M, n - M]`` of every axis (M = order / 2):

1. ``Hx += cq (dEy/dz - dEz/dy)``, ``Hy += cq (dEz/dx - dEx/dz)``,
   ``Hz += cq (dEx/dy - dEy/dx)``: derivatives at half nodes, absent (zero) on
   the last domain plane of their axis, where no half node exists;
2. ``Ex = ca Ex + cb (dHz/dy - dHy/dz)``, ``Ey = ca Ey + cb (dHx/dz - dHz/dx)``,
   ``Ez = ca Ez + cb (dHy/dx - dHx/dy)``;
3. sources add to their E component; 4. receivers record their components.

Inside the CPML slabs of axis ``a`` each derivative along ``a`` is replaced
by ``d/kappa + psi`` with ``psi <- b psi + a d``. The reverse step (for
gradients) is written from the algebra of this step, term by term:

R. ``lam[receivers] += g_t``; ``dJ/df_t = lam_E[sources]``;
A. ``w = stretch^T(+-cb lam_E)`` per curl term; images of ca and cb;
   ``lam_E <- ca lam_E``;
B. ``lam_H -= D+ w``; image of cq; ``v = stretch^T(+-cq lam_H)`` per term;
C. ``lam_E -= D- v``.

Debye media (``geometry["n_poles"]`` = P > 0; shared/DESIGN.md section 11):
each of Ex, Ey, Ez has its own P polarizations (``pol_ex, pol_ey, pol_ez``
``[N, P, nz, ny, nx]``), all three with the coefficients ``a_p, b_p, c_p`` of
the cell's own integer index (``pole_a, pole_b, pole_c`` ``[B, P, nz, ny,
nx]``; no staggered averaging). Per component, with ``E_old`` its value before
step 2:

2. ``E = ca E + cb curl H + s``, ``s = c_0 P_0 + c_1 P_1 + ...`` (poles in
   order, P of the previous step);
3. sources add to their component, then every component updates
   ``P_p = a_p P_p + b_p (E + E_old)`` (E holding the source); 4. receivers.

A stored step keeps ``P_p`` before its update (``snap_pol_x/_y/_z``) and
``E + E_old`` with the source (``snap_esum_x/_y/_z``). The transpose, with
``lam_P`` the adjoints of the polarizations (``lam_pol_ex/ey/ez``):

R. ``dJ/df_t = lam_E[sources] + sum_p b_p lam_P_p[sources]`` (source component);
A. per component ``q = sum_p b_p lam_P_p``, ``lt = lam_E + q``; ``lt`` replaces
   ``lam_E`` in the images of ca, cb and in ``w``; ``grad_pole_c += lt P_p``,
   ``grad_pole_a += lam_P_p P_p``, ``grad_pole_b += lam_P_p (E + E_old)``, each
   summed over the three components; ``lam_E <- ca lt + q``;
   ``lam_P_p <- a_p lam_P_p + c_p lt``.

With P = 0 (or no pole arrays) none of this runs.
"""

from __future__ import annotations

import numpy as np

from ..plan import Plan
from ..stencils import coefficients
from ..storage import from_bf16, to_bf16
from .reference_tm2d import (SnapshotSlots, diff_to_half, diff_to_int, e_update_snapshots,
                             over_poles, pole_sum)
from ..memory import HOST

LETTERS = ("z", "y", "x")

#: H update: H += cq * sum(sign * dE/daxis) over (E component, axis, sign).
H_TERMS = {"hx": (("ey", 0, 1), ("ez", 1, -1)),
           "hy": (("ez", 2, 1), ("ex", 0, -1)),
           "hz": (("ex", 1, 1), ("ey", 2, -1))}
#: E update: E = ca E + cb * sum(sign * dH/daxis) over (H component, axis, sign).
E_TERMS = {"ex": (("hz", 1, 1), ("hy", 0, -1)),
           "ey": (("hx", 0, 1), ("hz", 2, -1)),
           "ez": (("hy", 2, 1), ("hx", 1, -1))}
#: Snapshot names of the three E components, curl components and H increments.
SNAP_E = {"ex": "snap_ex", "ey": "snap_ey", "ez": "snap_ez"}
SNAP_C = {"ex": "snap_cx", "ey": "snap_cy", "ez": "snap_cz"}
SNAP_S = {"hx": "snap_sx", "hy": "snap_sy", "hz": "snap_sz"}
#: Debye: snapshots of the polarizations before their update and of E + E_old.
SNAP_POL = {"ex": "snap_pol_x", "ey": "snap_pol_y", "ez": "snap_pol_z"}
SNAP_ESUM = {"ex": "snap_esum_x", "ey": "snap_esum_y", "ez": "snap_esum_z"}
ADJ_POL = {"ex": "adj_pol_x", "ey": "adj_pol_y", "ez": "adj_pol_z"}  # second order


def _along(axis: int, index, ndim: int = 5):
    """Indexer taking ``index`` on spatial ``axis`` (0, 1, 2) of a 5-D array."""
    at = [slice(None)] * ndim
    at[ndim - 3 + axis] = index
    return tuple(at)


class ReferenceMaxwell3d(SnapshotSlots):
    """numpy 3-D stepping over the shared buffers."""

    name = "reference"
    memory = HOST

    def __init__(self, plan: Plan, buffers):
        self.plan = plan
        self.b = buffers
        self.coeffs = coefficients(plan.order)
        self.m = m = plan.axes[0].m
        self.n = plan.padded_shape
        self.shape5 = (plan.n_models, plan.n_shots, *self.n)
        self.slot_shape = self.shape5
        self.dom = (Ellipsis, *(slice(m, n - m + 1) for n in self.n))
        g = buffers.geometry
        self.rd = (g["rdz"], g["rdy"], g["rdx"])
        # CPML slab positions as indices into domain-shaped arrays (start at M).
        self.slab_e = [a.slab_e() - m for a in plan.axes]
        self.slab_h = [a.slab_h() - m for a in plan.axes]
        self._e_old = {}  # Debye: E before step 2, for the P update after the sources

    # -- helpers --------------------------------------------------------------
    def _view(self, name):
        """A per-shot buffer ``[N, ...]`` as ``[B, S, ...]``."""
        array = getattr(self.b, name)
        return array.reshape(self.plan.n_models, self.plan.n_shots, *array.shape[1:])

    def _profile(self, axis, half, index):
        """a, b, kappa of ``axis`` at the slab positions ``index``, shaped to broadcast."""
        letter, suffix = LETTERS[axis], "_h" if half else ""
        shape = [1, 1, 1]
        shape[axis] = -1
        return [getattr(self.b, f"{k}{letter}{suffix}")[index + self.m].reshape(shape)
                for k in "abk"]

    def _stretch(self, d, psi_name, axis, half, adjoint=False):
        """CPML stretch (or its transpose) of ``d`` on the slabs of ``axis``, in place.

        ``d`` is domain-shaped along the other axes and starts at padded index M
        along ``axis``; the memory (or its adjoint) ``psi_name`` is updated."""
        index = (self.slab_h if half else self.slab_e)[axis]
        if not len(index):
            return
        a, bb, k = self._profile(axis, half, index)
        psi = self._view(psi_name)
        at = _along(axis, index)
        if not adjoint:  # psi <- b psi + a d;  d <- d / k + psi
            raw = d[at]
            psi[...] = bb * psi + a * raw
            d[at] = raw / k + psi
        else:  # total = lam_psi + t;  lam_psi <- b total;  t <- t / k + a total
            total = psi + d[at]
            d[at] = d[at] / k + a * total
            psi[...] = bb * total

    def _domain_along(self, f, axis):
        """``f`` on the domain of the other two axes, whole along ``axis``."""
        m = self.m
        at = [slice(m, n - m + 1) for n in self.n]
        at[axis] = slice(None)
        return f[(Ellipsis, *at)]

    def _half_derivative(self, f, axis):
        """dF/daxis at the half nodes of the domain (zero on the last plane)."""
        m, n = self.m, self.n[axis]
        d = diff_to_half(self._domain_along(f, axis), axis - 3, m, n - m, self.coeffs)
        return d * self.rd[axis]

    def _pad_last(self, d, axis):
        """Append the absent last plane (zeros) along ``axis``."""
        pad = [(0, 0)] * d.ndim
        pad[d.ndim - 3 + axis] = (0, 1)
        return np.pad(d, pad)

    # -- snapshots ------------------------------------------------------------
    def _store(self, name, t, values):
        slot = None if self._tangent() else self._slot(name, t)
        if slot is not None:
            slot[self.dom] = to_bf16(values) if slot.dtype == np.uint16 else values

    def _load(self, name, t):
        values = self._slot(name, t)[self.dom]
        return from_bf16(values).astype(self.b.ex.dtype) if values.dtype == np.uint16 else values

    def _load_at(self, name, t, region):  # the domain is the only region here
        return self._load(name, t)

    def _scatter(self, direction, snapshot, t):
        """Tangent sweep: the secondary source ``weight * d * snapshot`` on the
        domain (``d`` = ``tan_<coefficient>``), or 0 where there is none."""
        d = self._direction(direction, t)
        if d is None or self._slot(snapshot, t) is None:
            return 0
        return self._weight(t) * (self._coefficient(d, self.dom) * self._load(snapshot, t))

    def _kept_slots(self, names, t):
        return [self._slot(n, t) for n in names]

    def _kept_term(self, direction, kept, t):
        """Second order, a tangent adjoint sweep: ``weight * d * kept`` on the
        domain, or 0 (see the TM2D reference)."""
        d = self._direction(direction, t)
        if d is None or self._slot(kept, t) is None:
            return 0
        return self._weight(t) * (self._coefficient(d, self.dom) * self._load(kept, t))

    def _image_kept(self, grad_name, direction, kept, t, values):
        """Second order, a tangent sweep: ``grad += weight * kept * values``."""
        grad = getattr(self.b, grad_name, None)
        if grad is None or self._direction(direction, t) is None or \
                self._slot(kept, t) is None:
            return
        grad.reshape(self._shape_of(grad_name))[self.dom] += (
            self._weight(t) * self._load(kept, t) * values)

    def _image(self, grad_name, snapshots, t, adjoints):
        """grad += weight * sum(adjoint * snapshot) over components (stored steps only)."""
        grad = getattr(self.b, grad_name, None)
        weight = self._weight(t)
        if grad is None or not weight or self._slot(snapshots[0], t) is None:
            return
        total = 0
        for s, lam in zip(snapshots, adjoints):
            values = self._load(s, t)
            if values.ndim < lam.ndim:  # E + E_old for every pole
                values = over_poles(values)
            total = total + lam * values
        grad.reshape(self._shape_of(grad_name))[self.dom] += weight * total

    # -- one step -------------------------------------------------------------
    def _update_h(self, t=None):
        cq = self.b.cq[:, None][self.dom]
        for h, terms in H_TERMS.items():
            total = 0
            for e, axis, sign in terms:
                d = self._half_derivative(self._view(e), axis)
                self._stretch(d, f"psi_{e}_{LETTERS[axis]}", axis, half=True)
                total = total + sign * self._pad_last(d, axis)
            self._store(SNAP_S[h], t, total)
            self._view(h)[self.dom] += cq * total
            if self._tangent():
                self._view(h)[self.dom] += self._scatter("tan_cq", SNAP_S[h], t)
                self._image_kept("grad_cq", "tan_cq", f"adj_{h}", t, total)

    def _update_e(self, t=None):
        m = self.m
        curls = {}
        for e, terms in E_TERMS.items():
            total = 0
            for h, axis, sign in terms:
                n = self.n[axis]
                d = diff_to_int(self._domain_along(self._view(h), axis), axis - 3, m,
                                n - m + 1, self.coeffs) * self.rd[axis]
                self._stretch(d, f"psi_{h}_{LETTERS[axis]}", axis, half=False)
                total = total + sign * d
            curls[e] = total
        ca, cb = self.b.ca[:, None][self.dom], self.b.cb[:, None][self.dom]
        for e, curl in curls.items():
            field = self._view(e)
            e_old = field[self.dom].copy()
            e_new = ca * e_old + cb * curl
            if self._tangent():
                e_new = e_new + (self._scatter("tan_ca", SNAP_E[e], t)
                                 + self._scatter("tan_cb", SNAP_C[e], t))
                self._image_kept("grad_ca", "tan_ca", f"adj_{e}", t, e_old)
                self._image_kept("grad_cb", "tan_ca", f"adj_{e}", t, curl)
            if self.n_poles:  # + sum_p c_p P_p, P of the previous step
                pol = self._poles(f"pol_{e}")[self.dom]
                self._store(SNAP_POL[e], t, pol)
                e_new = e_new + pole_sum(self._coefficient(self.b.pole_c, self.dom), pol)
                if self._tangent():
                    e_new = e_new + self._pole_scatter(t, self.dom, SNAP_POL[e])
                    self._image_kept_poles(t, self.dom, f"adj_{e}", ADJ_POL[e], before=pol)
                self._e_old[e] = e_old
            first, second = e_update_snapshots(e_old, curl, e_new,
                                               self._compressed(SNAP_E[e], t))
            self._store(SNAP_E[e], t, first)
            self._store(SNAP_C[e], t, second)
            field[self.dom] = e_new

    def _sources(self, t):
        b, plan = self.b, self.plan
        n = b.ex.shape[0]
        if b.src_index.shape[1]:
            field = getattr(b, plan.source_component).reshape(n, -1)
            shots = np.broadcast_to(np.arange(n)[:, None], b.src_index.shape)
            np.add.at(field, (shots, b.src_index), b.src_term[:, :, t])  # duplicates add up

    def _update_polarization(self, t=None):
        """Debye: ``P_p = a_p P_p + b_p (E + E_old)`` per component, E holding the source."""
        if not self.n_poles:
            return
        a = self._coefficient(self.b.pole_a, self.dom)
        bb = self._coefficient(self.b.pole_b, self.dom)
        for e in E_TERMS:
            esum = self._view(e)[self.dom] + self._e_old.pop(e)
            self._store(SNAP_ESUM[e], t, esum)
            if self._tangent():  # (E + E_old holds the source term)
                self._image_kept_poles(t, self.dom, f"adj_{e}", ADJ_POL[e], both=esum)
            pol = self._poles(f"pol_{e}")
            pol[self.dom] = a * pol[self.dom] + bb * over_poles(esum)
            if self._tangent():
                pol[self.dom] += self._pole_update_scatter(t, self.dom, SNAP_POL[e],
                                                           SNAP_ESUM[e])

    def _receivers(self, t):
        b, plan = self.b, self.plan
        n = b.ex.shape[0]
        n_rec = b.rec_index.shape[1]
        for c, name in enumerate(plan.receiver_components if n_rec else ()):
            field = getattr(b, name).reshape(n, -1)
            b.rec_data[:, c * n_rec : (c + 1) * n_rec, t] = np.take_along_axis(
                field, b.rec_index, axis=1)

    def forward(self, t0: int, n_steps: int) -> None:
        for t in range(t0, t0 + n_steps):
            self._update_h(t)
            self._update_e(t)
            self._sources(t)
            self._update_polarization(t)
            self._receivers(t)

    # -- the transposed step --------------------------------------------------
    def _adjoint_receivers_sources(self, t):
        b, plan = self.b, self.plan
        n = b.ex.shape[0]
        n_rec = b.rec_index.shape[1]
        shots = np.broadcast_to(np.arange(n)[:, None], b.rec_index.shape)
        for c, name in enumerate(plan.receiver_components if n_rec else ()):
            lam = getattr(b, f"lam_{name}").reshape(n, -1)
            np.add.at(lam, (shots, b.rec_index), b.rec_grad[:, c * n_rec : (c + 1) * n_rec, t])
        if b.src_index.shape[1]:
            lam = getattr(b, f"lam_{plan.source_component}").reshape(n, -1)
            if self.n_poles:  # the source also reaches P: lam_E + sum_p b_p lam_P_p
                e = plan.source_component
                q = pole_sum(b.pole_b[:, None], self._poles(f"lam_pol_{e}"))
                q = q + self._kept_fold(t, self.dom, f"adj_{e}", ADJ_POL[e], q.shape)
                lam = lam + q.reshape(n, -1)
            b.src_grad[:, :, t] = np.take_along_axis(lam, b.src_index, axis=1)

    def _adjoint_e(self, t):
        """Step A: transpose of E <- ca E + cb curl H (+ the Debye terms)."""
        lams = {e: self._view(f"lam_{e}")[self.dom].copy() for e in E_TERMS}
        order = tuple(E_TERMS)
        if self.n_poles:  # the adjoint of E after its update: lam_E + q (lt)
            lam_ps = {e: self._poles(f"lam_pol_{e}")[self.dom].copy() for e in order}
            pole_b = self._coefficient(self.b.pole_b, self.dom)
            qs = {e: pole_sum(pole_b, lam_ps[e]) for e in order}
            kept = {e: self._kept_pole_terms(t, self.dom, f"adj_{e}", ADJ_POL[e])
                    for e in order}  # second order's scatter, or zeros
            qs = {e: qs[e] + kept[e][0] for e in order}
            lams = {e: lams[e] + qs[e] for e in order}
            self._image("grad_pole_c", [SNAP_POL[e] for e in order], t,
                        [over_poles(lams[e]) for e in order])
            self._image("grad_pole_a", [SNAP_POL[e] for e in order], t,
                        [lam_ps[e] for e in order])
            self._image("grad_pole_b", [SNAP_ESUM[e] for e in order], t,
                        [lam_ps[e] for e in order])
            if self.b.grad_pole_a is not None:  # second order: keep the poles' adjoints
                for e in order:
                    self._keep(ADJ_POL[e], t, self.dom, lam_ps[e])
        self._image("grad_ca", [SNAP_E[e] for e in order], t, [lams[e] for e in order])
        self._image("grad_cb", [SNAP_C[e] for e in order], t, [lams[e] for e in order])
        images = (self.b.grad_ca is not None or self.b.grad_cb is not None) and \
            self._slot(SNAP_E["ex"], t) is not None
        term_a = dict.fromkeys(order, 0)
        term_b = dict.fromkeys(order, 0)
        for e in order:  # second order: keep the values, or add their scatter
            if images and self._tangent():
                term_a[e] = self._kept_term("tan_ca", f"adj_{e}", t)
                term_b[e] = self._kept_term("tan_cb", f"adj_{e}", t)
            elif images:
                self._keep(f"adj_{e}", t, self.dom, lams[e])
        ca, cb = self.b.ca[:, None][self.dom], self.b.cb[:, None][self.dom]
        for e, terms in E_TERMS.items():
            for h, axis, sign in terms:
                w = sign * (cb * lams[e] + term_b[e])
                self._stretch(w, f"lam_psi_{h}_{LETTERS[axis]}", axis, half=False,
                              adjoint=True)
                self._view(f"w_{h}_{LETTERS[axis]}")[self.dom] = w
            self._view(f"lam_{e}")[self.dom] = ca * lams[e] + term_a[e]
            if self.n_poles:
                self._view(f"lam_{e}")[self.dom] += qs[e]
                self._poles(f"lam_pol_{e}")[self.dom] = (
                    self._coefficient(self.b.pole_a, self.dom) * lam_ps[e]
                    + self._coefficient(self.b.pole_c, self.dom) * over_poles(lams[e])
                    + kept[e][1])

    def _adjoint_h(self, t):
        """Step B: transposes of the derivatives of H, then of the H update."""
        m = self.m
        for terms in E_TERMS.values():  # every H derivative the E update reads
            for h, axis, _ in terms:
                w = self._pad_last(self._view(f"w_{h}_{LETTERS[axis]}"), axis)
                n = self.n[axis]
                self._view(f"lam_{h}")[self.dom] -= diff_to_half(
                    self._domain_along(w, axis), axis - 3, m, n - m + 1,
                    self.coeffs) * self.rd[axis]
        lams = {h: self._view(f"lam_{h}")[self.dom] for h in H_TERMS}
        self._image("grad_cq", [SNAP_S[h] for h in H_TERMS], t, list(lams.values()))
        images = self.b.grad_cq is not None and self._slot(SNAP_S["hx"], t) is not None
        cq = self.b.cq[:, None][self.dom]
        for h, terms in H_TERMS.items():
            u = cq * lams[h]
            if images:  # second order: keep the values, or add their scatter
                u = u + self._kept_term("tan_cq", f"adj_{h}", t)
                self._keep(f"adj_{h}", t, self.dom, lams[h])
            for e, axis, sign in terms:
                n = self.n[axis]
                exists = _along(axis, slice(0, n - 2 * m))  # half nodes of the domain
                v = (sign * u)[exists].copy()
                self._stretch(v, f"lam_psi_{e}_{LETTERS[axis]}", axis, half=True,
                              adjoint=True)
                self._view(f"v_{e}_{LETTERS[axis]}")[self.dom] = self._pad_last(v, axis)

    def _adjoint_gather(self):
        """Step C: transposes of the derivatives of E."""
        m = self.m
        for h, terms in H_TERMS.items():
            for e, axis, _ in terms:
                n = self.n[axis]
                v = self._view(f"v_{e}_{LETTERS[axis]}")
                self._view(f"lam_{e}")[self.dom] -= diff_to_int(
                    self._domain_along(v, axis), axis - 3, m, n - m + 1,
                    self.coeffs) * self.rd[axis]

    def adjoint(self, t_end: int, n_steps: int) -> None:
        """Transposed steps ``t_end - 1`` down to ``t_end - n_steps``."""
        for t in range(t_end - 1, t_end - 1 - n_steps, -1):
            self._adjoint_receivers_sources(t)
            self._adjoint_e(t)
            self._adjoint_h(t)
            self._adjoint_gather()

    def synchronize(self) -> None:
        pass
