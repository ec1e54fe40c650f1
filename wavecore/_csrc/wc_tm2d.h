// 2-D TM (Ey, Hx, Hz) Yee updates, one grid cell at a time.
//
// The only place where the TM2D physics is written: the Cython/OpenMP core maps
// rows of cells onto these functions and the CUDA kernels map threads onto
// them. Nothing here knows about threads, streams or Python.
//
// Grid layout (all arrays C-contiguous, x fastest). With M = ORDER / 2 the
// padded grid of ny x nx cells holds the model, the CPML and a halo of M cells
// on the low side and M - 1 on the high side of each axis (TIDE's layout):
//   rows [M, ny - M] and columns [M, nx - M] form the "domain" (model + CPML);
//   Ey lives on the nodes, Hx(y, x) at (y + 1/2, x), Hz(y, x) at (y, x + 1/2).
//   Hx is updated on rows [M, ny - M - 1], Hz on columns [M, nx - M - 1]; all
//   other halo values stay zero, which makes the edge of the domain a wall.
// CPML memories are stored only in the CPML slabs:
//   psi_*_z: [n_shots, pz0 + pz1, nx_dom]  (rows of the low then the high slab)
//   psi_*_x: [n_shots, ny_dom, px0 + px1]  (columns of the left then right slab)
// with ny_dom = ny - 2M + 1, nx_dom = nx - 2M + 1. On the high side the H slab
// starts half a cell earlier than the E slab (H rows pml_z1 - 1 .. ny - M - 1).
//
// H is stored with its physical sign: mu dH/dt = -curl E.
#pragma once

#include "wc_config.h"
#include "wc_debye.h"
#include "wc_diff.h"
#include "wc_hooks.h"

namespace wc {

// Everything a TM2D kernel touches, passed by reference on the CPU and by value
// to CUDA kernels. A numpy structured dtype mirrors it (see wavecore._layout).
template <typename T>
struct Tm2dParams {
  // Wavefields [n_shots, ny, nx] and CPML memories (layout above).
  T* ey;
  T* hx;
  T* hz;
  T* psi_ey_z;  // memory of dEy/dz, used by Hx
  T* psi_ey_x;  // memory of dEy/dx, used by Hz
  T* psi_hx_z;  // memory of dHx/dz, used by Ey
  T* psi_hz_x;  // memory of dHz/dx, used by Ey
  // Update coefficients [n_models, ny, nx].
  const T* ca;
  const T* cb;
  const T* cq;
  // CPML profiles on integer (E) and half (H) nodes, along z [ny] and x [nx].
  const T* az;
  const T* bz;
  const T* kz;
  const T* az_h;
  const T* bz_h;
  const T* kz_h;
  const T* ax;
  const T* bx;
  const T* kx;
  const T* ax_h;
  const T* bx_h;
  const T* kx_h;
  // Sources: term added to Ey [n_shots, n_src, nt], flat cell index [n_shots, n_src].
  const T* src_term;
  const int64_t* src_index;
  // Receivers: data [n_shots, n_rec, nt], flat cell index [n_shots, n_rec].
  T* rec_data;
  const int64_t* rec_index;
  T rdz;  // 1 / dz
  T rdx;  // 1 / dx
  int64_t ny;
  int64_t nx;
  int64_t n_shots;
  int64_t shots_per_model;
  int64_t n_src;
  int64_t n_rec;
  int64_t nt;      // internal steps of the whole run: the time stride of src/rec
  int64_t pml_z0;  // first interior row (M + pz0)
  int64_t pml_z1;  // first row of the high E slab (pml_z0 + model rows)
  int64_t pml_x0;
  int64_t pml_x1;
  int64_t pz0;     // low slab widths, for the compact memory index
  int64_t px0;
  int64_t psi_z_rows;  // pz0 + pz1
  int64_t psi_x_cols;  // px0 + px1

  // ---- gradients (unused by a forward run without them) --------------------
  // Snapshots of the current chunk, [slots, n_shots, ny, nx] of T or bf16:
  // E before the E update and the stretched curl of H (for ca and cb; in bf16
  // the increment and the mean of E, see store_e_update), and the stretched
  // dEy/dz and dEy/dx (for cq). Null when not stored.
  void* snap_ey;
  void* snap_curl;
  void* snap_sz;
  void* snap_sx;
  int64_t snap_t0;        // internal step stored in slot 0 of the chunk
  int64_t snap_interval;  // k: steps t with t % k == 0 are stored; 0 = none
  int64_t snap_bf16;      // 1: snapshots are bfloat16
  // Adjoint fields and CPML memories (layouts of the forward ones).
  T* lam_ey;
  T* lam_hx;
  T* lam_hz;
  T* lam_psi_ey_z;
  T* lam_psi_ey_x;
  T* lam_psi_hx_z;
  T* lam_psi_hz_x;
  // Stretched adjoints feeding the transposed derivatives [n_shots, ny, nx];
  // zero outside the cells that write them.
  T* w_z;
  T* w_x;
  T* v_z;
  T* v_x;
  // Per-shot gradient accumulators [n_shots, ny, nx] (null when not wanted).
  T* grad_ca;
  T* grad_cb;
  T* grad_cq;
  const T* rec_grad;  // dJ/d(receiver data) [n_shots, n_rec, nt]
  T* src_grad;        // dJ/d(source term) [n_shots, n_src, nt]

  // ---- Debye poles (wc_debye.h; n_poles = 0 and null pointers without) ------
  T* pol_ey;           // polarization [n_shots, n_poles, ny, nx]
  const T* pole_a;     // a_p, b_p, c_p [n_models, n_poles, ny, nx]
  const T* pole_b;
  const T* pole_c;
  int64_t n_poles;
  void* snap_pol;      // [slots, n_shots, n_poles, ny, nx]: P before the update
  void* snap_esum;     // [slots, n_shots, ny, nx]: E_new + E_old (with the source)
  T* lam_pol_ey;       // adjoint of pol_ey
  T* grad_pole_a;      // per-shot accumulators [n_shots, n_poles, ny, nx]
  T* grad_pole_b;
  T* grad_pole_c;

  // ---- tangent (linearized, Born) sweep ---------------------------------------
  // tangent = 1: the fields above are the scattered state, the snapshot slots
  // hold the background's stored steps (read, never written), and each cell
  // adds the secondary source of the coefficient directions (wc_hooks.h
  // Scatter): ca, cb (or, for bf16 snapshots, the increment and the mean) and
  // cq [n_models, ny, nx], the poles' [n_models, n_poles, ny, nx]. A null
  // direction does not move.
  int64_t tangent;
  const T* tan_ca;
  const T* tan_cb;
  const T* tan_cq;
  const T* tan_pole_a;
  const T* tan_pole_b;
  const T* tan_pole_c;

  // ---- second order (second_vjp; wavecore._sweeps) ---------------------------
  // The adjoint values the transposed cells image, [slots, n_shots, ny, nx] of T
  // or bf16 like the snapshots: lam_ey at the E cell, lam_hx and -lam_hz at the
  // H cells (null: not kept). An adjoint sweep (tangent = 0) writes them; a
  // tangent sweep images its scattered state against them into grad_*; a
  // tangent adjoint sweep (tangent = 1 in reverse) adds their secondary sources
  // weight * tan_<c> * kept (wc_hooks.h AdjointScatter; tan_* then hold the
  // coefficients' own directions, also with bf16 snapshots).
  void* adj_ey;
  void* adj_hx;
  void* adj_hz;
  // With Debye poles also the adjoints of the poles the transposed E cells
  // image (lam_P before their update), [slots, n_shots, n_poles, ny, nx]; the
  // kept lam_ey is then lt, the adjoint of E_new (wc_debye.h).
  void* adj_pol;
};

// ---- index helpers ---------------------------------------------------------

template <typename T>
WC_HD int64_t tm2d_numel(const Tm2dParams<T>& p) { return p.ny * p.nx; }

template <typename T>
WC_HD int64_t tm2d_model_offset(const Tm2dParams<T>& p, int64_t shot) {
  return (shot / p.shots_per_model) * p.ny * p.nx;
}

// Where the poles of cell j of a shot are (wc_debye.h).
template <typename T>
WC_HD PoleIndex tm2d_poles(const Tm2dParams<T>& p, int64_t shot, int64_t j) {
  const int64_t n = tm2d_numel(p);
  return PoleIndex{shot * p.n_poles * n + j, (shot / p.shots_per_model) * p.n_poles * n + j, n};
}

// The slots of step t of the kept pole adjoints (adj_pol, bytes of the
// snapshots' type), or null where none are kept or t is not stored.
template <typename T>
WC_HD void* tm2d_kept_pol_of(const Tm2dParams<T>& p, int64_t t) {
  if (p.adj_pol == nullptr || snapshot_weight<T>(p, t) == T(0)) return nullptr;
  return static_cast<char*>(p.adj_pol) +
         snapshot_offset(p, t, tm2d_numel(p) * p.n_poles) * (p.snap_bf16 ? 2 : sizeof(T));
}

template <typename T>
WC_HD bool tm2d_pml_row_e(const Tm2dParams<T>& p, int64_t y) {
  return y < p.pml_z0 || y >= p.pml_z1;
}
template <typename T>
WC_HD bool tm2d_pml_row_h(const Tm2dParams<T>& p, int64_t y) {
  return y < p.pml_z0 || y >= p.pml_z1 - 1;
}
template <typename T>
WC_HD bool tm2d_pml_col_e(const Tm2dParams<T>& p, int64_t x) {
  return x < p.pml_x0 || x >= p.pml_x1;
}
template <typename T>
WC_HD bool tm2d_pml_col_h(const Tm2dParams<T>& p, int64_t x) {
  return x < p.pml_x0 || x >= p.pml_x1 - 1;
}

// Compact memory index of a z-slab cell (row y must be in a slab).
template <typename T, int M>
WC_HD int64_t tm2d_psi_z_index(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                               int64_t high_start) {
  const int64_t r = cpml_slab_index<M>(y, p.pml_z0, p.pz0, high_start);
  return (shot * p.psi_z_rows + r) * (p.nx - 2 * M + 1) + (x - M);
}
// Compact memory index of an x-slab cell (column x must be in a slab).
template <typename T, int M>
WC_HD int64_t tm2d_psi_x_index(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                               int64_t high_start) {
  const int64_t c = cpml_slab_index<M>(x, p.pml_x0, p.px0, high_start);
  return (shot * (p.ny - 2 * M + 1) + (y - M)) * p.psi_x_cols + c;
}

// Compact indices of the CPML memories of one cell along z and x, for H
// (half-node) or E staggering. An index means something only where the cell
// is in that axis' slab; along a row segment that stays in the same slabs
// both grow with x, so a row loop computes them once (tm2d_psi_shift) and its
// cells read and write the memories at affine indices: the loop vectorizes,
// where an index chosen per cell between the two slabs would need gathers and
// scatters (the x-slab segments of the CPU rows then ran as scalar code).
struct Tm2dPsiIndex {
  int64_t z, x;
};

template <typename T, int M, bool H>
WC_HD Tm2dPsiIndex tm2d_psi_indices(const Tm2dParams<T>& p, int64_t shot, int64_t y,
                                    int64_t x) {
  const int64_t s = H ? 1 : 0;
  return {tm2d_psi_z_index<T, M>(p, shot, y, x, p.pml_z1 - s),
          tm2d_psi_x_index<T, M>(p, shot, y, x, p.pml_x1 - s)};
}

WC_HD Tm2dPsiIndex tm2d_psi_shift(Tm2dPsiIndex q, int64_t dx) { return {q.z + dx, q.x + dx}; }

// ---- forward updates -------------------------------------------------------

// Hx(y, x) += cq dEy/dz, for y in [M, ny - M - 1], x in [M, nx - M];
// q = tm2d_psi_indices<T, M, true>(p, shot, y, x), as for every H cell.
template <typename T, int ORDER, bool PML_Z, typename S = NoStore>
WC_HD void tm2d_hx_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                        Tm2dPsiIndex q, S store = {}) {
  const int64_t j = y * p.nx + x;
  const int64_t i = shot * tm2d_numel(p) + j;
  T d = diff_to_half<T, ORDER>(p.ey + i, p.nx) * p.rdz;
  if constexpr (PML_Z) {
    T& psi = p.psi_ey_z[q.z];
    d = cpml_stretch(d, psi, p.az_h[y], p.bz_h[y], p.kz_h[y]);
  }
  store(i, d);
  const int64_t m = tm2d_model_offset(p, shot) + j;
  p.hx[i] += p.cq[m] * d;
  if constexpr (S::scatters) p.hx[i] += store.term(i, m);
}

// Hz(y, x) -= cq dEy/dx, for y in [M, ny - M], x in [M, nx - M - 1].
template <typename T, int ORDER, bool PML_X, typename S = NoStore>
WC_HD void tm2d_hz_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                        Tm2dPsiIndex q, S store = {}) {
  const int64_t j = y * p.nx + x;
  const int64_t i = shot * tm2d_numel(p) + j;
  T d = diff_to_half<T, ORDER>(p.ey + i, 1) * p.rdx;
  if constexpr (PML_X) {
    T& psi = p.psi_ey_x[q.x];
    d = cpml_stretch(d, psi, p.ax_h[x], p.bx_h[x], p.kx_h[x]);
  }
  store(i, d);
  const int64_t m = tm2d_model_offset(p, shot) + j;
  p.hz[i] -= p.cq[m] * d;
  if constexpr (S::scatters) p.hz[i] -= store.term(i, m);
}

// Ey(y, x) = ca Ey + cb (dHx/dz - dHz/dx), for y in [M, ny - M], x in [M, nx - M]
// (q = tm2d_psi_indices<T, M, false>(p, shot, y, x), as for every E cell);
// with Debye poles (D not NoDebye) plus sum_p c_p P_p, and the poles advance.
// In a tangent step (S and D Scatter hooks) each update adds its secondary source.
template <typename T, int ORDER, bool PML_Z, bool PML_X, typename S = NoStore,
          typename D = NoDebye>
WC_HD void tm2d_ey_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                        Tm2dPsiIndex q, S store = {}, D debye = {}) {
  const int64_t j = y * p.nx + x;
  const int64_t i = shot * tm2d_numel(p) + j;
  const int64_t m = tm2d_model_offset(p, shot) + j;
  T dhz_dx = diff_to_int<T, ORDER>(p.hz + i, 1) * p.rdx;
  T dhx_dz = diff_to_int<T, ORDER>(p.hx + i, p.nx) * p.rdz;
  if constexpr (PML_X) {
    T& psi = p.psi_hz_x[q.x];
    dhz_dx = cpml_stretch(dhz_dx, psi, p.ax[x], p.bx[x], p.kx[x]);
  }
  if constexpr (PML_Z) {
    T& psi = p.psi_hx_z[q.z];
    dhx_dz = cpml_stretch(dhx_dz, psi, p.az[y], p.bz[y], p.kz[y]);
  }
  const T curl = dhx_dz - dhz_dx;
  const T e_old = p.ey[i];
  T e_new = p.ca[m] * e_old + p.cb[m] * curl;
  if constexpr (S::scatters) e_new += store.term(i, m);
  if constexpr (D::on)
    e_new = debye_e(p.pol_ey, p.pole_a, p.pole_b, p.pole_c, p.n_poles, tm2d_poles(p, shot, j),
                    0, i, e_old, e_new, debye);
  store_e_update(store, i, e_old, curl, e_new);
  p.ey[i] = e_new;
}

// Add the source terms of step t to Ey, in source order, so that sources
// sharing a cell add up the same way on every backend (and, with Debye poles,
// to the poles and the stored E_new + E_old of the cell: debye_inject).
template <typename T>
WC_HD void tm2d_inject_sources(const Tm2dParams<T>& p, int64_t shot, int64_t t) {
  T* ey = p.ey + shot * tm2d_numel(p);
  const T weight = snapshot_weight<T>(p, t);
  void* esum = nullptr;
  // (a tangent sweep reads the background's snapshots: it never writes them)
  if (p.n_poles && !p.tangent && p.snap_esum && weight != T(0))
    esum = static_cast<char*>(p.snap_esum) +
           snapshot_offset(p, t, tm2d_numel(p)) * (p.snap_bf16 ? 2 : sizeof(T));
  // (second order's tangent sweep images the term against the kept pole adjoints)
  void* kept = p.n_poles && p.tangent && weight != T(0) ? tm2d_kept_pol_of(p, t) : nullptr;
  for (int64_t k = 0; k < p.n_src; ++k) {
    const int64_t s = shot * p.n_src + k;
    const int64_t j = p.src_index[s];
    const T term = p.src_term[s * p.nt + t];
    ey[j] += term;
    if (p.n_poles == 0) continue;
    const int64_t i = shot * tm2d_numel(p) + j;
    const PoleIndex q = tm2d_poles(p, shot, j);
    if (p.snap_bf16) {
      debye_inject(p.pol_ey, p.pole_b, p.n_poles, q, term, static_cast<bf16*>(esum), i);
      debye_inject_image(p.grad_pole_b, static_cast<const bf16*>(kept), p.n_poles, q,
                         weight * term);
    } else {
      debye_inject(p.pol_ey, p.pole_b, p.n_poles, q, term, static_cast<T*>(esum), i);
      debye_inject_image(p.grad_pole_b, static_cast<const T*>(kept), p.n_poles, q,
                         weight * term);
    }
  }
}

// Record Ey at the receivers as sample t (Ey after step t).
template <typename T>
WC_HD void tm2d_record_receivers(const Tm2dParams<T>& p, int64_t shot, int64_t t) {
  const T* ey = p.ey + shot * tm2d_numel(p);
  for (int64_t k = 0; k < p.n_rec; ++k) {
    const int64_t r = shot * p.n_rec + k;
    p.rec_data[r * p.nt + t] = ey[p.rec_index[r]];
  }
}

// ---- adjoint (transposed) updates -----------------------------------------
//
// The reverse of step t, with lam_* the adjoints of the state after step t:
//   R. lam_ey[receivers] += dJ/dr_t; dJ/d(source term)_t = lam_ey[sources].
//   A. (E update transposed) image ca, cb; w = CPML-stretch^T(+-cb lam_ey);
//      lam_ey <- ca lam_ey.
//   B. (derivatives of H transposed) lam_hx -= D+_z(w_z), lam_hz -= D+_x(w_x);
//      image cq; v = CPML-stretch^T(+-cq lam_h).
//   C. (derivatives of E transposed) lam_ey -= D-_z(v_z) + D-_x(v_x).
// (D-)^T = -D+ and (D+)^T = -D- on the grid with its zero halo.

// Step R for one shot (in receiver, then source order).
template <typename T>
WC_HD void tm2d_adjoint_receivers_sources(const Tm2dParams<T>& p, int64_t shot, int64_t t) {
  T* lam = p.lam_ey + shot * tm2d_numel(p);
  for (int64_t k = 0; k < p.n_rec; ++k) {
    const int64_t r = shot * p.n_rec + k;
    lam[p.rec_index[r]] += p.rec_grad[r * p.nt + t];
  }
  for (int64_t k = 0; k < p.n_src; ++k) {
    const int64_t s = shot * p.n_src + k;
    const int64_t j = p.src_index[s];
    T g = lam[j];
    if (p.n_poles) {
      const PoleIndex q = tm2d_poles(p, shot, j);
      g += debye_fold(p.lam_pol_ey, p.pole_b, p.n_poles, q);
      // second order's tangent adjoint: the transposed d b_p (E_new + E_old)
      g += debye_kept_fold(p.tangent ? tm2d_kept_pol_of(p, t) : nullptr, p.snap_bf16 != 0,
                           p.tan_pole_b, p.n_poles, q, snapshot_weight<T>(p, t));
    }
    p.src_grad[s * p.nt + t] = g;
  }
}

// Step A at an E cell of the domain (with Debye poles, D not NoDebye: lam is
// first folded with the poles' adjoints, debye_adjoint_e).
template <typename T, int ORDER, bool PML_Z, bool PML_X, typename I = NoImage,
          typename D = NoDebye>
WC_HD void tm2d_adjoint_ey_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                                Tm2dPsiIndex q, I image = {}, D debye = {}) {
  const int64_t j = y * p.nx + x;
  const int64_t i = shot * tm2d_numel(p) + j;
  const int64_t m = tm2d_model_offset(p, shot) + j;
  T lam = p.lam_ey[i];
  T fold = T(0);
  if constexpr (D::on)
    lam = debye_adjoint_e(p.lam_pol_ey, p.pole_a, p.pole_b, p.pole_c, p.n_poles,
                          tm2d_poles(p, shot, j), 0, i, lam, fold, debye);
  image(i, lam);
  T wz = p.cb[m] * lam;
  if constexpr (I::scatters) wz += image.term_b(i, m);
  T wx = -wz;
  if constexpr (PML_Z) {
    T& psi = p.lam_psi_hx_z[q.z];
    wz = cpml_stretch_adjoint(wz, psi, p.az[y], p.bz[y], p.kz[y]);
  }
  if constexpr (PML_X) {
    T& psi = p.lam_psi_hz_x[q.x];
    wx = cpml_stretch_adjoint(wx, psi, p.ax[x], p.bx[x], p.kx[x]);
  }
  p.w_z[i] = wz;
  p.w_x[i] = wx;
  T next = p.ca[m] * lam;
  if constexpr (D::on) next += fold;
  if constexpr (I::scatters) next += image.term_a(i, m);
  p.lam_ey[i] = next;
}

// Step B at an Hx cell (rows [M, ny - M - 1]).
template <typename T, int ORDER, bool PML_Z, typename I = NoImage>
WC_HD void tm2d_adjoint_hx_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                                Tm2dPsiIndex q, I image = {}) {
  const int64_t j = y * p.nx + x;
  const int64_t i = shot * tm2d_numel(p) + j;
  const T lam = p.lam_hx[i] - diff_to_half<T, ORDER>(p.w_z + i, p.nx) * p.rdz;
  p.lam_hx[i] = lam;
  image(i, lam);
  const int64_t m = tm2d_model_offset(p, shot) + j;
  T v = p.cq[m] * lam;
  if constexpr (I::scatters) v += image.term_a(i, m);
  if constexpr (PML_Z) {
    T& psi = p.lam_psi_ey_z[q.z];
    v = cpml_stretch_adjoint(v, psi, p.az_h[y], p.bz_h[y], p.kz_h[y]);
  }
  p.v_z[i] = v;
}

// Step B at an Hz cell (columns [M, nx - M - 1]). Hz = Hz - cq d: the image
// gets -lam so that grad_cq accumulates lam * (-d).
template <typename T, int ORDER, bool PML_X, typename I = NoImage>
WC_HD void tm2d_adjoint_hz_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x,
                                Tm2dPsiIndex q, I image = {}) {
  const int64_t j = y * p.nx + x;
  const int64_t i = shot * tm2d_numel(p) + j;
  const T lam = p.lam_hz[i] - diff_to_half<T, ORDER>(p.w_x + i, 1) * p.rdx;
  p.lam_hz[i] = lam;
  image(i, -lam);
  const int64_t m = tm2d_model_offset(p, shot) + j;
  T v = -(p.cq[m] * lam);
  if constexpr (I::scatters) v += image.term_a(i, m);
  if constexpr (PML_X) {
    T& psi = p.lam_psi_ey_x[q.x];
    v = cpml_stretch_adjoint(v, psi, p.ax_h[x], p.bx_h[x], p.kx_h[x]);
  }
  p.v_x[i] = v;
}

// Step C at an E cell of the domain.
template <typename T, int ORDER>
WC_HD void tm2d_adjoint_gather_cell(const Tm2dParams<T>& p, int64_t shot, int64_t y,
                                    int64_t x) {
  const int64_t i = shot * tm2d_numel(p) + y * p.nx + x;
  p.lam_ey[i] -= diff_to_int<T, ORDER>(p.v_z + i, p.nx) * p.rdz +
                 diff_to_int<T, ORDER>(p.v_x + i, 1) * p.rdx;
}

// ---- snapshot hooks of step t (CPU rows and CUDA kernels) ---------------------

// Snapshot slot arrays of step t, or nulls when t is not stored.
template <typename StoreT, typename T>
WC_HD Store<StoreT> tm2d_store_of(const Tm2dParams<T>& p, void* base, int64_t t) {
  if (base == nullptr) return Store<StoreT>{nullptr, nullptr};
  const int64_t offset = snapshot_offset(p, t, tm2d_numel(p));
  return Store<StoreT>{static_cast<StoreT*>(base) + offset, nullptr};
}

template <typename T>
WC_HD bool tm2d_stores(const Tm2dParams<T>& p, int64_t t) {
  return snapshot_weight<T>(p, t) != T(0);
}

// The image of step t (I an Image type; `keep` left null): slot arrays of the
// snapshots and the accumulators (null with their snapshots).
template <typename I, typename StoreT, typename T>
WC_HD I tm2d_image_of(const Tm2dParams<T>& p, void* a, void* b,
                      typename same<T>::type* grad_a, typename same<T>::type* grad_b,
                      int64_t t) {
  const int64_t offset = snapshot_offset(p, t, tm2d_numel(p));
  return I{a ? static_cast<const StoreT*>(a) + offset : nullptr,
           b ? static_cast<const StoreT*>(b) + offset : nullptr,
           a ? grad_a : nullptr,
           b ? grad_b : nullptr,
           snapshot_weight<T>(p, t),
           nullptr};
}

// The slots of step t of a kept-adjoint array (adj_*), or null.
template <typename StoreT, typename T>
WC_HD StoreT* tm2d_kept_of(const Tm2dParams<T>& p, void* base, int64_t t) {
  return base ? static_cast<StoreT*>(base) + snapshot_offset(p, t, tm2d_numel(p)) : nullptr;
}

// The Debye snapshot slots of step t (nulls where not stored).
template <typename StoreT, typename T>
WC_HD DebyeStore<StoreT, 1> tm2d_debye_store_of(const Tm2dParams<T>& p, int64_t t) {
  const int64_t n = tm2d_numel(p);
  return DebyeStore<StoreT, 1>{
      {p.snap_pol ? static_cast<StoreT*>(p.snap_pol) + snapshot_offset(p, t, n * p.n_poles)
                  : nullptr},
      {p.snap_esum ? static_cast<StoreT*>(p.snap_esum) + snapshot_offset(p, t, n) : nullptr}};
}

template <typename StoreT, typename T>
WC_HD DebyeImage<T, StoreT, 1> tm2d_debye_image_of(const Tm2dParams<T>& p, int64_t t) {
  const int64_t n = tm2d_numel(p);
  return DebyeImage<T, StoreT, 1>{
      {static_cast<const StoreT*>(p.snap_pol) + snapshot_offset(p, t, n * p.n_poles)},
      {static_cast<const StoreT*>(p.snap_esum) + snapshot_offset(p, t, n)},
      p.grad_pole_a, p.grad_pole_b, p.grad_pole_c, snapshot_weight<T>(p, t)};
}

// ---- the hooks of a forward-direction step (CPU rows and CUDA kernels) -------
//
// f(hook_z, hook_x) for the H cells of step t: nothing (NoStore), the stored
// derivatives (Store) or, in a tangent sweep, their secondary sources
// (Scatter, where cq moves and the background stored dEy/dz, dEy/dx).
template <typename T, typename F>
WC_HD void tm2d_h_hooks(const Tm2dParams<T>& p, int64_t t, F&& f) {
  // (the arrays of a snapshot group are set together; Store writes them unchecked)
  const bool stored = tm2d_stores(p, t) && p.snap_sz != nullptr && p.snap_sx != nullptr;
  if (!stored || (p.tangent && p.tan_cq == nullptr)) {
    f(NoStore{}, NoStore{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    if (p.tangent) {
      const T w = snapshot_weight<T>(p, t);
      f(Scatter<T, S, 1>{tm2d_store_of<S>(p, p.snap_sz, t).a, nullptr, p.tan_cq, nullptr, w,
                         tm2d_kept_of<S>(p, p.adj_hx, t), p.grad_cq, nullptr},
        Scatter<T, S, 1>{tm2d_store_of<S>(p, p.snap_sx, t).a, nullptr, p.tan_cq, nullptr, w,
                         tm2d_kept_of<S>(p, p.adj_hz, t), p.grad_cq, nullptr});
    } else {
      f(tm2d_store_of<S>(p, p.snap_sz, t), tm2d_store_of<S>(p, p.snap_sx, t));
    }
  });
}

// f(hook, debye_hook) for the E cells of step t, as tm2d_h_hooks; POLES: the
// run has Debye poles (debye_hook is then a pole hook counted as Counted<., K>,
// K = 0: at run time), else NoDebye. In a tangent sweep the E update and the
// poles scatter together (ca, cb and the pole coefficients move with the same
// inputs; the driver passes all their directions) or not at all, so that each
// row compiles for few hook pairs.
template <typename T, bool POLES, int K, typename F>
WC_HD void tm2d_e_hooks(const Tm2dParams<T>& p, int64_t t, F&& f) {
  // Debye runs store the poles with E (their gradients move ca too: one set of
  // inputs), so a step that stores no E stores nothing.
  const bool stored = tm2d_stores(p, t) && p.snap_ey != nullptr && p.snap_curl != nullptr;
  const bool scatters = p.tangent && p.tan_ca != nullptr && p.snap_ey != nullptr &&
                        (!POLES || (p.tan_pole_a != nullptr && p.snap_pol != nullptr));
  if (!stored || (p.tangent && !scatters)) {
    if constexpr (POLES) f(NoStore{}, Counted<DebyeNoStore, K>{});
    else f(NoStore{}, NoDebye{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    if (!p.tangent) {
      const Store<S> store{tm2d_store_of<S>(p, p.snap_ey, t).a,
                           tm2d_store_of<S>(p, p.snap_curl, t).a};
      if constexpr (POLES) f(store, Counted<DebyeStore<S, 1>, K>{tm2d_debye_store_of<S>(p, t)});
      else f(store, NoDebye{});
      return;
    }
    const T w = snapshot_weight<T>(p, t);
    const Scatter<T, S, 2> scatter{tm2d_store_of<S>(p, p.snap_ey, t).a,
                                   tm2d_store_of<S>(p, p.snap_curl, t).a,
                                   p.tan_ca,
                                   p.tan_cb,
                                   w,
                                   tm2d_kept_of<S>(p, p.adj_ey, t),
                                   p.grad_ca,
                                   p.grad_cb};
    if constexpr (POLES) {
      const DebyeImage<T, S, 1> at = tm2d_debye_image_of<S>(p, t);
      const S* kept_pol = static_cast<const S*>(tm2d_kept_pol_of(p, t));
      f(scatter, Counted<DebyeScatter<T, S, 1>, K>{
                     {{at.pol[0]}, {at.esum[0]}, p.tan_pole_a, p.tan_pole_b, p.tan_pole_c, w,
                      {kept_pol ? scatter.kept : nullptr}, {kept_pol}, p.grad_pole_a,
                      p.grad_pole_b, p.grad_pole_c}});
    } else {
      f(scatter, NoDebye{});
    }
  });
}

// ---- the hooks of a transposed step (CPU rows and CUDA kernels) --------------
//
// f(image) for the E cells of step t without Debye poles: nothing (NoImage)
// where step t accumulates no gradient of ca, cb; else the Image of the stored
// snapshots, which an adjoint sweep of second order also has keep its adjoint
// values (adj_ey), or in a tangent adjoint sweep where ca and cb move the
// AdjointScatter of the kept values. ca, cb and their snapshots come together
// (one gradient path): the Image writes them unchecked.
template <typename T, typename F>
WC_HD void tm2d_adjoint_e_hooks(const Tm2dParams<T>& p, int64_t t, F&& f) {
  if (!tm2d_stores(p, t) || p.grad_ca == nullptr || p.grad_cb == nullptr ||
      p.snap_ey == nullptr || p.snap_curl == nullptr) {
    f(NoImage{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    using I = Image<T, S, 2>;
    const I image = tm2d_image_of<I, S>(p, p.snap_ey, p.snap_curl, p.grad_ca, p.grad_cb, t);
    S* const kept = tm2d_kept_of<S>(p, p.adj_ey, t);
    if (kept == nullptr)
      f(image);
    else if (!p.tangent)
      f(image.keeping(kept));
    else if (p.tan_ca != nullptr)
      f(AdjointScatter<T, S, I>{image, kept, p.tan_ca, p.tan_cb});
    else
      f(image);
  });
}

// f(image_z, image_x) for the Hx and Hz cells of step t, as tm2d_adjoint_e_hooks
// (cq: adj_hx, adj_hz).
template <typename T, typename F>
WC_HD void tm2d_adjoint_h_hooks(const Tm2dParams<T>& p, int64_t t, F&& f) {
  if (!tm2d_stores(p, t) || p.grad_cq == nullptr || p.snap_sz == nullptr ||
      p.snap_sx == nullptr) {
    f(NoImage{}, NoImage{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    using I = Image<T, S, 1>;
    const I image_z = tm2d_image_of<I, S>(p, p.snap_sz, nullptr, p.grad_cq, nullptr, t);
    const I image_x = tm2d_image_of<I, S>(p, p.snap_sx, nullptr, p.grad_cq, nullptr, t);
    S* const kept_z = tm2d_kept_of<S>(p, p.adj_hx, t);
    S* const kept_x = tm2d_kept_of<S>(p, p.adj_hz, t);
    if (kept_z == nullptr || kept_x == nullptr)
      f(image_z, image_x);
    else if (!p.tangent)
      f(image_z.keeping(kept_z), image_x.keeping(kept_x));
    else if (p.tan_cq != nullptr)
      f(AdjointScatter<T, S, I>{image_z, kept_z, p.tan_cq, nullptr},
        AdjointScatter<T, S, I>{image_x, kept_x, p.tan_cq, nullptr});
    else
      f(image_z, image_x);
  });
}

// Whether step t accumulates the Debye coefficient gradients.
template <typename T>
WC_HD bool tm2d_debye_images(const Tm2dParams<T>& p, int64_t t) {
  return p.grad_pole_a != nullptr && p.snap_pol != nullptr && tm2d_stores(p, t);
}

// f(image, debye_image) for the E cells of step t of a run with Debye poles
// (the pole hook counted as Counted<., K>, K = 0: at run time), as
// tm2d_adjoint_e_hooks: nothing where step t accumulates no gradient; the
// images of ca, cb (an empty Image where they are not asked for) and of the
// pole coefficients, which an adjoint sweep of second order also has keep lt
// (adj_ey) and the poles' adjoints (adj_pol); or in a tangent adjoint sweep
// where the coefficients move, the AdjointScatter and DebyeAdjointScatter of
// the kept values (ca, cb and the poles move together, as in tm2d_e_hooks).
template <typename T, int K, typename F>
WC_HD void tm2d_debye_adjoint_e_hooks(const Tm2dParams<T>& p, int64_t t, F&& f) {
  const bool images = tm2d_stores(p, t) && (p.grad_ca != nullptr || p.grad_cb != nullptr);
  const bool poles = tm2d_debye_images(p, t);
  if (!images && !poles) {
    f(NoImage{}, Counted<DebyeNoImage, K>{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    // (a checked image: poles only have an image with no accumulators)
    using I = CheckedImage<T, S>;
    auto image = images ? tm2d_image_of<I, S>(p, p.snap_ey, p.snap_curl, p.grad_ca, p.grad_cb, t)
                        : I{nullptr, nullptr, nullptr, nullptr, T(0), nullptr};
    if (!poles) {
      f(image, Counted<DebyeNoImage, K>{});
      return;
    }
    auto debye = tm2d_debye_image_of<S>(p, t);
    S* kept_e = tm2d_kept_of<S>(p, p.adj_ey, t);
    S* kept_pol = static_cast<S*>(tm2d_kept_pol_of(p, t));
    if (!p.tangent) {
      image.keep = kept_e;
      debye.keep_pol[0] = kept_pol;
      f(image, Counted<DebyeImage<T, S, 1>, K>{debye});
    } else if (p.tan_ca != nullptr && p.tan_pole_a != nullptr && kept_e != nullptr &&
               kept_pol != nullptr) {
      f(AdjointScatter<T, S, I>{image, kept_e, p.tan_ca, p.tan_cb},
        Counted<DebyeAdjointScatter<T, S, 1>, K>{
            {debye, {kept_e}, {kept_pol}, p.tan_pole_a, p.tan_pole_b, p.tan_pole_c}});
    } else {
      f(image, Counted<DebyeImage<T, S, 1>, K>{debye});
    }
  });
}

}  // namespace wc
