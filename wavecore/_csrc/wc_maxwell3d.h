// 3-D Yee updates (Ex, Ey, Ez, Hx, Hy, Hz), one grid cell at a time.
//
// The only place where the 3-D physics is written: the Cython/OpenMP core maps
// rows of cells onto these functions (and CUDA kernels will map threads onto
// them). Nothing here knows about threads, streams or Python.
//
// Grid layout (all arrays [n_shots, nz, ny, nx], C-contiguous, x fastest). Each
// axis is padded as in TM2D (see wc_tm2d.h and wavecore/grid.py): M = ORDER / 2
// halo cells before the domain, M - 1 after; the domain (model + CPML) is
// [M, n - M] on every axis. The standard Yee cell: with integer node (z, y, x)
//   Ex at (z, y, x + 1/2), Ey at (z, y + 1/2, x), Ez at (z + 1/2, y, x),
//   Hx at (z + 1/2, y + 1/2, x), Hy at (z + 1/2, y, x + 1/2),
//   Hz at (z, y + 1/2, x + 1/2),
// all six stored at array index (z, y, x). Every component is updated on the
// whole domain; a derivative towards a half node (in the H update) is absent
// on the last domain plane of its axis, where that half node does not exist
// (TIDE 0.1.2 does the same). Halo values stay zero: the edge is a wall.
//
// Physical signs (H is not negated as in TIDE):
//   Hx += cq (dEy/dz - dEz/dy)   Ex = ca Ex + cb (dHz/dy - dHy/dz)
//   Hy += cq (dEz/dx - dEx/dz)   Ey = ca Ey + cb (dHx/dz - dHz/dx)
//   Hz += cq (dEx/dy - dEy/dx)   Ez = ca Ez + cb (dHy/dx - dHx/dy)
//
// CPML memories psi_<f>_<a> (memory of dF/da) are stored only in the slabs of
// axis a: [n_shots, Dz, Dy, Dx] with D = n - 2M + 1 (the domain) on the other
// axes and the slab cells (low slab, then high) on axis a. As in TM2D the high
// H slab starts half a cell before the high E slab.
#pragma once

#include "wc_coefficients.h"
#include "wc_config.h"
#include "wc_debye.h"
#include "wc_diff.h"
#include "wc_hooks.h"

namespace wc {

template <typename T>
struct M3dParams {
  // Wavefields.
  T* ex;
  T* ey;
  T* ez;
  T* hx;
  T* hy;
  T* hz;
  // CPML memories of the E derivatives (H update) and of the H derivatives (E update).
  T* psi_ey_z;
  T* psi_ez_y;
  T* psi_ez_x;
  T* psi_ex_z;
  T* psi_ex_y;
  T* psi_ey_x;
  T* psi_hy_z;
  T* psi_hz_y;
  T* psi_hz_x;
  T* psi_hx_z;
  T* psi_hx_y;
  T* psi_hy_x;
  // Update coefficients [n_models, nz, ny, nx].
  const T* ca;
  const T* cb;
  const T* cq;
  // CPML profiles on integer (E) and half (H) nodes of each axis.
  const T* az;
  const T* bz;
  const T* kz;
  const T* az_h;
  const T* bz_h;
  const T* kz_h;
  const T* ay;
  const T* by;
  const T* ky;
  const T* ay_h;
  const T* by_h;
  const T* ky_h;
  const T* ax;
  const T* bx;
  const T* kx;
  const T* ax_h;
  const T* bx_h;
  const T* kx_h;
  // Sources: term added to the source component [n_shots, n_src, nt], flat cell index.
  const T* src_term;
  const int64_t* src_index;
  // Receivers: data [n_shots, n_rec_comp, n_rec, nt], flat cell index [n_shots, n_rec].
  T* rec_data;
  const int64_t* rec_index;
  T rdz;
  T rdy;
  T rdx;
  int64_t nz;
  int64_t ny;
  int64_t nx;
  int64_t n_shots;
  int64_t shots_per_model;
  int64_t n_src;
  int64_t n_rec;
  int64_t nt;             // internal steps of the run: the time stride of src/rec
  int64_t src_component;  // 0, 1, 2 = ex, ey, ez
  int64_t n_rec_comp;     // components recorded per receiver
  int64_t rec_comp[6];    // 0..5 = ex, ey, ez, hx, hy, hz
  int64_t pml_z0;         // first model plane (M + low CPML width)
  int64_t pml_z1;         // first plane of the high E slab
  int64_t pml_y0;
  int64_t pml_y1;
  int64_t pml_x0;
  int64_t pml_x1;
  int64_t pz0;  // low slab widths
  int64_t py0;
  int64_t px0;
  int64_t psi_z_n;  // slab cells per axis (low + high)
  int64_t psi_y_n;
  int64_t psi_x_n;

  // ---- gradients (unused by a forward run without them) --------------------
  // Snapshots of the current chunk, [slots, n_shots, nz, ny, nx] of T or bf16:
  // E before its update (snap_e*), the stretched curl of H (snap_c*), both
  // for ca and cb (in bf16 the increment and the mean of E: store_e_update),
  // and the stretched curl of E added to H (snap_s*, for cq).
  void* snap_ex;
  void* snap_ey;
  void* snap_ez;
  void* snap_cx;
  void* snap_cy;
  void* snap_cz;
  void* snap_sx;
  void* snap_sy;
  void* snap_sz;
  int64_t snap_t0;
  int64_t snap_interval;
  int64_t snap_bf16;
  // Adjoint fields and memories (layouts of the forward ones).
  T* lam_ex;
  T* lam_ey;
  T* lam_ez;
  T* lam_hx;
  T* lam_hy;
  T* lam_hz;
  T* lam_psi_ey_z;
  T* lam_psi_ez_y;
  T* lam_psi_ez_x;
  T* lam_psi_ex_z;
  T* lam_psi_ex_y;
  T* lam_psi_ey_x;
  T* lam_psi_hy_z;
  T* lam_psi_hz_y;
  T* lam_psi_hz_x;
  T* lam_psi_hx_z;
  T* lam_psi_hx_y;
  T* lam_psi_hy_x;
  // Stretched adjoints feeding the transposed derivatives: w_<h>_<a> for dH/da
  // (E update), v_<e>_<a> for dE/da (H update). The w arrays hold one extra
  // zero plane after the last shot: the transposed z derivative on the last
  // domain plane reads one plane past the grid (where w is zero).
  T* w_hx_y;
  T* w_hx_z;
  T* w_hy_x;
  T* w_hy_z;
  T* w_hz_x;
  T* w_hz_y;
  T* v_ex_y;
  T* v_ex_z;
  T* v_ey_x;
  T* v_ey_z;
  T* v_ez_x;
  T* v_ez_y;
  T* grad_ca;
  T* grad_cb;
  T* grad_cq;
  const T* rec_grad;  // dJ/d(receiver data), the layout of rec_data
  T* src_grad;        // dJ/d(source term) [n_shots, n_src, nt]

  // ---- Debye poles (wc_debye.h; n_poles = 0 and null pointers without) ------
  // Each E component has its own polarization [n_shots, n_poles, nz, ny, nx];
  // the pole coefficients [n_models, n_poles, nz, ny, nx] are those of the
  // cell's integer index for all three.
  T* pol_ex;
  T* pol_ey;
  T* pol_ez;
  const T* pole_a;
  const T* pole_b;
  const T* pole_c;
  int64_t n_poles;
  void* snap_pol_x;   // [slots, n_shots, n_poles, nz, ny, nx]: P before the update
  void* snap_pol_y;
  void* snap_pol_z;
  void* snap_esum_x;  // [slots, n_shots, nz, ny, nx]: E_new + E_old (with the source)
  void* snap_esum_y;
  void* snap_esum_z;
  T* lam_pol_ex;
  T* lam_pol_ey;
  T* lam_pol_ez;
  T* grad_pole_a;     // per shot [n_shots, n_poles, nz, ny, nx], summed over components
  T* grad_pole_b;
  T* grad_pole_c;

  // ---- tangent (linearized, Born) sweep (as in Tm2dParams) --------------------
  int64_t tangent;
  const T* tan_ca;
  const T* tan_cb;
  const T* tan_cq;
  const T* tan_pole_a;
  const T* tan_pole_b;
  const T* tan_pole_c;

  // ---- second order (second_vjp; wavecore._sweeps) ---------------------------
  // The adjoint vectors the transposed cells image, [slots, n_shots, nz, ny, nx]
  // of T or bf16 like the snapshots (null: not kept): lam_E at the E cell,
  // lam_H at the H cell; written, imaged against and scattered as in
  // Tm2dParams (wc_tm2d.h).
  void* adj_ex;
  void* adj_ey;
  void* adj_ez;
  void* adj_hx;
  void* adj_hy;
  void* adj_hz;
  // With Debye poles also the adjoints of each component's poles
  // [slots, n_shots, n_poles, nz, ny, nx] (lam_P before their update; the kept
  // lam_E is then lt, as in Tm2dParams).
  void* adj_pol_x;
  void* adj_pol_y;
  void* adj_pol_z;
};

// ---- index helpers ---------------------------------------------------------

template <typename T>
WC_HD int64_t m3d_numel(const M3dParams<T>& p) { return p.nz * p.ny * p.nx; }

template <typename T>
WC_HD int64_t m3d_model_offset(const M3dParams<T>& p, int64_t shot) {
  return (shot / p.shots_per_model) * m3d_numel(p);
}

// Is a plane in a CPML slab, for E nodes and for half (H) nodes?
WC_HD bool m3d_pml_e(int64_t c, int64_t lo, int64_t hi) { return c < lo || c >= hi; }
WC_HD bool m3d_pml_h(int64_t c, int64_t lo, int64_t hi) { return c < lo || c >= hi - 1; }

// Compact index of a CPML memory along AXIS (0 = z, 1 = y, 2 = x); `high_start`
// is the first padded index of the high slab (E: pml_1, H: pml_1 - 1).
template <typename T, int M, int AXIS>
WC_HD int64_t m3d_psi_index(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                            int64_t x, int64_t high_start) {
  int64_t dz = p.nz - 2 * M + 1, dy = p.ny - 2 * M + 1, dx = p.nx - 2 * M + 1;
  int64_t rz = z - M, ry = y - M, rx = x - M;
  if constexpr (AXIS == 0) {
    dz = p.psi_z_n;
    rz = cpml_slab_index<M>(z, p.pml_z0, p.pz0, high_start);
  } else if constexpr (AXIS == 1) {
    dy = p.psi_y_n;
    ry = cpml_slab_index<M>(y, p.pml_y0, p.py0, high_start);
  } else {
    dx = p.psi_x_n;
    rx = cpml_slab_index<M>(x, p.pml_x0, p.px0, high_start);
  }
  return ((shot * dz + rz) * dy + ry) * dx + rx;
}

// Compact indices of the CPML memories of one cell along z, y and x, for H
// (half-node) or E staggering. An index means something only where the cell
// is in that axis' slab; along a row segment that stays in the same slabs they
// grow with x, so a row loop computes them once (m3d_psi_shift).
struct M3dPsiIndex {
  int64_t z, y, x;
};

template <typename T, int M, bool H>
WC_HD M3dPsiIndex m3d_psi_indices(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                                  int64_t x) {
  const int64_t s = H ? 1 : 0;
  return {m3d_psi_index<T, M, 0>(p, shot, z, y, x, p.pml_z1 - s),
          m3d_psi_index<T, M, 1>(p, shot, z, y, x, p.pml_y1 - s),
          m3d_psi_index<T, M, 2>(p, shot, z, y, x, p.pml_x1 - s)};
}

WC_HD M3dPsiIndex m3d_psi_shift(M3dPsiIndex q, int64_t dx) {
  return {q.z + dx, q.y + dx, q.x + dx};
}

template <typename T>
WC_HD T* m3d_component(const M3dParams<T>& p, int64_t c) {
  T* const fields[6] = {p.ex, p.ey, p.ez, p.hx, p.hy, p.hz};
  return fields[c];
}

template <typename T>
WC_HD T* m3d_pol_component(const M3dParams<T>& p, int64_t c) {
  T* const fields[3] = {p.pol_ex, p.pol_ey, p.pol_ez};
  return fields[c];
}

template <typename T>
WC_HD T* m3d_adjoint_pol_component(const M3dParams<T>& p, int64_t c) {
  T* const fields[3] = {p.lam_pol_ex, p.lam_pol_ey, p.lam_pol_ez};
  return fields[c];
}

// Where the poles of cell j of a shot are (wc_debye.h).
template <typename T>
WC_HD PoleIndex m3d_poles(const M3dParams<T>& p, int64_t shot, int64_t j) {
  const int64_t n = m3d_numel(p);
  return PoleIndex{shot * p.n_poles * n + j, (shot / p.shots_per_model) * p.n_poles * n + j, n};
}

// The slots of step t of the kept pole adjoints of E component c (adj_pol_*,
// bytes of the snapshots' type), or null where none are kept or t is not stored.
template <typename T>
WC_HD void* m3d_kept_pol(const M3dParams<T>& p, int64_t c, int64_t t) {
  void* const base[3] = {p.adj_pol_x, p.adj_pol_y, p.adj_pol_z};
  if (base[c] == nullptr || snapshot_weight<T>(p, t) == T(0)) return nullptr;
  return static_cast<char*>(base[c]) +
         snapshot_offset(p, t, m3d_numel(p) * p.n_poles) * (p.snap_bf16 ? 2 : sizeof(T));
}

template <typename T>
WC_HD T* m3d_adjoint_component(const M3dParams<T>& p, int64_t c) {
  T* const fields[6] = {p.lam_ex, p.lam_ey, p.lam_ez, p.lam_hx, p.lam_hy, p.lam_hz};
  return fields[c];
}

// ---- forward updates -------------------------------------------------------
//
// Template flags: PZ/PY/PX = the cell is in a CPML slab of that axis; EDGE =
// the cell may lie on the last domain plane of some axis (checked at run time;
// false lets the common case skip the checks).

// Stretched derivative towards a half node along one axis (H update).
template <typename T, int ORDER, bool PML>
WC_HD T m3d_d_half(const T* f, int64_t stride, T rd, T* psi, const T* a, const T* b,
                   const T* k, int64_t c) {
  T d = diff_to_half<T, ORDER>(f, stride) * rd;
  if constexpr (PML) d = cpml_stretch(d, *psi, a[c], b[c], k[c]);
  return d;
}

// H at (z, y, x) of the domain; q = m3d_psi_indices<T, M, true>(p, shot, z, y, x).
template <typename T, int ORDER, bool PZ, bool PY, bool PX, bool EDGE, typename S = NoStore,
          typename C = ModelCoefficients>
WC_HD void m3d_h_cell(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y, int64_t x,
                      M3dPsiIndex q, S store = {}, C coef = {}) {
  constexpr int M = Stencil<ORDER>::M;
  const int64_t sz = p.ny * p.nx, sy = p.nx;
  const int64_t j = (z * p.ny + y) * p.nx + x;
  const int64_t i = shot * m3d_numel(p) + j;
  T ey_z = T(0), ex_z = T(0), ez_y = T(0), ex_y = T(0), ez_x = T(0), ey_x = T(0);
  if (!EDGE || z < p.nz - M) {
    ey_z = m3d_d_half<T, ORDER, PZ>(p.ey + i, sz, p.rdz, p.psi_ey_z + (PZ ? q.z : 0), p.az_h,
                                    p.bz_h, p.kz_h, z);
    ex_z = m3d_d_half<T, ORDER, PZ>(p.ex + i, sz, p.rdz, p.psi_ex_z + (PZ ? q.z : 0), p.az_h,
                                    p.bz_h, p.kz_h, z);
  }
  if (!EDGE || y < p.ny - M) {
    ez_y = m3d_d_half<T, ORDER, PY>(p.ez + i, sy, p.rdy, p.psi_ez_y + (PY ? q.y : 0), p.ay_h,
                                    p.by_h, p.ky_h, y);
    ex_y = m3d_d_half<T, ORDER, PY>(p.ex + i, sy, p.rdy, p.psi_ex_y + (PY ? q.y : 0), p.ay_h,
                                    p.by_h, p.ky_h, y);
  }
  if (!EDGE || x < p.nx - M) {
    ez_x = m3d_d_half<T, ORDER, PX>(p.ez + i, 1, p.rdx, p.psi_ez_x + (PX ? q.x : 0), p.ax_h,
                                    p.bx_h, p.kx_h, x);
    ey_x = m3d_d_half<T, ORDER, PX>(p.ey + i, 1, p.rdx, p.psi_ey_x + (PX ? q.x : 0), p.ax_h,
                                    p.bx_h, p.kx_h, x);
  }
  const T cx = ey_z - ez_y, cy = ez_x - ex_z, cz = ex_y - ey_x;
  store(i, cx, cy, cz);
  const int64_t m = m3d_model_offset(p, shot) + j;
  const T c = coef.cq(p, m);
  p.hx[i] += c * cx;
  p.hy[i] += c * cy;
  p.hz[i] += c * cz;
  if constexpr (S::scatters) {  // a tangent step: the secondary source
    p.hx[i] += store.term(0, i, m);
    p.hy[i] += store.term(1, i, m);
    p.hz[i] += store.term(2, i, m);
  }
}

// Stretched derivative at an integer node along one axis (E update).
template <typename T, int ORDER, bool PML>
WC_HD T m3d_d_int(const T* f, int64_t stride, T rd, T* psi, const T* a, const T* b,
                  const T* k, int64_t c) {
  T d = diff_to_int<T, ORDER>(f, stride) * rd;
  if constexpr (PML) d = cpml_stretch(d, *psi, a[c], b[c], k[c]);
  return d;
}

// E at (z, y, x) of the domain, q = m3d_psi_indices<T, M, false>(p, shot, z, y, x);
// `store_e` gets E before the update, `store_c` the stretched curl of H (in
// bf16 the increment and the mean of E: see store_e_update).
// With Debye poles (D not NoDebye) each component adds its pole terms and
// advances its poles (debye_e).
template <typename T, int ORDER, bool PZ, bool PY, bool PX, typename S = NoStore,
          typename C = ModelCoefficients, typename D = NoDebye>
WC_HD void m3d_e_cell(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y, int64_t x,
                      M3dPsiIndex q, S store_e = {}, S store_c = {}, C coef = {},
                      D debye = {}) {
  const int64_t sz = p.ny * p.nx, sy = p.nx;
  const int64_t j = (z * p.ny + y) * p.nx + x;
  const int64_t i = shot * m3d_numel(p) + j;
  const int64_t qz = PZ ? q.z : 0, qy = PY ? q.y : 0, qx = PX ? q.x : 0;
  const T hy_z = m3d_d_int<T, ORDER, PZ>(p.hy + i, sz, p.rdz, p.psi_hy_z + qz, p.az, p.bz,
                                         p.kz, z);
  const T hx_z = m3d_d_int<T, ORDER, PZ>(p.hx + i, sz, p.rdz, p.psi_hx_z + qz, p.az, p.bz,
                                         p.kz, z);
  const T hz_y = m3d_d_int<T, ORDER, PY>(p.hz + i, sy, p.rdy, p.psi_hz_y + qy, p.ay, p.by,
                                         p.ky, y);
  const T hx_y = m3d_d_int<T, ORDER, PY>(p.hx + i, sy, p.rdy, p.psi_hx_y + qy, p.ay, p.by,
                                         p.ky, y);
  const T hz_x = m3d_d_int<T, ORDER, PX>(p.hz + i, 1, p.rdx, p.psi_hz_x + qx, p.ax, p.bx,
                                         p.kx, x);
  const T hy_x = m3d_d_int<T, ORDER, PX>(p.hy + i, 1, p.rdx, p.psi_hy_x + qx, p.ax, p.bx,
                                         p.kx, x);
  const T curl[3] = {hz_y - hy_z, hx_z - hz_x, hy_x - hx_y};
  const T e_old[3] = {p.ex[i], p.ey[i], p.ez[i]};
  const int64_t m = m3d_model_offset(p, shot) + j;
  const T a = coef.ca(p, m), b = coef.cb(p, m);
  T e_new[3] = {a * e_old[0] + b * curl[0], a * e_old[1] + b * curl[1],
                a * e_old[2] + b * curl[2]};
  if constexpr (S::scatters)  // a tangent step: the secondary sources
    for (int k = 0; k < 3; ++k) e_new[k] += store_e.term(k, i, m) + store_c.term(k, i, m);
  if constexpr (D::on) {
    const PoleIndex pq = m3d_poles(p, shot, j);
    e_new[0] = debye_e(p.pol_ex, p.pole_a, p.pole_b, p.pole_c, p.n_poles, pq, 0, i, e_old[0],
                       e_new[0], debye);
    e_new[1] = debye_e(p.pol_ey, p.pole_a, p.pole_b, p.pole_c, p.n_poles, pq, 1, i, e_old[1],
                       e_new[1], debye);
    e_new[2] = debye_e(p.pol_ez, p.pole_a, p.pole_b, p.pole_c, p.n_poles, pq, 2, i, e_old[2],
                       e_new[2], debye);
  }
  store_e_update(store_e, store_c, i, e_old, curl, e_new);
  p.ex[i] = e_new[0];
  p.ey[i] = e_new[1];
  p.ez[i] = e_new[2];
}

// Add the source terms of step t to the source component, in source order
// (and, with Debye poles, to its poles and stored E_new + E_old: debye_inject).
template <typename T>
WC_HD void m3d_inject_sources(const M3dParams<T>& p, int64_t shot, int64_t t) {
  T* e = m3d_component(p, p.src_component) + shot * m3d_numel(p);
  const T weight = snapshot_weight<T>(p, t);
  void* esum = nullptr;
  // (second order's tangent sweep images the term against the kept pole adjoints)
  void* kept = p.n_poles && p.tangent ? m3d_kept_pol(p, p.src_component, t) : nullptr;
  // (a tangent sweep reads the background's snapshots: it never writes them)
  if (p.n_poles && !p.tangent && weight != T(0)) {
    void* const sums[3] = {p.snap_esum_x, p.snap_esum_y, p.snap_esum_z};
    esum = sums[p.src_component];
    if (esum)
      esum = static_cast<char*>(esum) +
             snapshot_offset(p, t, m3d_numel(p)) * (p.snap_bf16 ? 2 : sizeof(T));
  }
  for (int64_t k = 0; k < p.n_src; ++k) {
    const int64_t s = shot * p.n_src + k;
    const int64_t j = p.src_index[s];
    const T term = p.src_term[s * p.nt + t];
    e[j] += term;
    if (p.n_poles == 0) continue;
    T* pol = m3d_pol_component(p, p.src_component);
    const int64_t i = shot * m3d_numel(p) + j;
    const PoleIndex q = m3d_poles(p, shot, j);
    if (p.snap_bf16) {
      debye_inject(pol, p.pole_b, p.n_poles, q, term, static_cast<bf16*>(esum), i);
      debye_inject_image(p.grad_pole_b, static_cast<const bf16*>(kept), p.n_poles, q,
                         weight * term);
    } else {
      debye_inject(pol, p.pole_b, p.n_poles, q, term, static_cast<T*>(esum), i);
      debye_inject_image(p.grad_pole_b, static_cast<const T*>(kept), p.n_poles, q,
                         weight * term);
    }
  }
}

// Record sample t of every receiver component (E after step t, and H of step t).
template <typename T>
WC_HD void m3d_record_receivers(const M3dParams<T>& p, int64_t shot, int64_t t) {
  for (int64_t c = 0; c < p.n_rec_comp; ++c) {
    const T* f = m3d_component(p, p.rec_comp[c]) + shot * m3d_numel(p);
    for (int64_t k = 0; k < p.n_rec; ++k) {
      const int64_t r = (shot * p.n_rec_comp + c) * p.n_rec + k;
      p.rec_data[r * p.nt + t] = f[p.rec_index[shot * p.n_rec + k]];
    }
  }
}

// ---- adjoint (transposed) updates -----------------------------------------
//
// The reverse of step t, with lam_* the adjoints of the state after step t:
//   R. lam_<c>[receivers] += dJ/dr_t (every recorded component);
//      dJ/d(source term)_t = lam_<source component>[sources].
//   A. (E update transposed) image ca, cb; w = CPML-stretch^T(+-cb lam_E);
//      lam_E <- ca lam_E.
//   B. (derivatives of H transposed) lam_H -= D+(w); image cq;
//      v = CPML-stretch^T(+-cq lam_H) where the forward derivative exists.
//   C. (derivatives of E transposed) lam_E -= D-(v).
// (D-)^T = -D+ and (D+)^T = -D- on the grid with its zero halo.

template <typename T>
WC_HD void m3d_adjoint_receivers_sources(const M3dParams<T>& p, int64_t shot, int64_t t) {
  for (int64_t c = 0; c < p.n_rec_comp; ++c) {
    T* lam = m3d_adjoint_component(p, p.rec_comp[c]) + shot * m3d_numel(p);
    for (int64_t k = 0; k < p.n_rec; ++k) {
      const int64_t r = (shot * p.n_rec_comp + c) * p.n_rec + k;
      lam[p.rec_index[shot * p.n_rec + k]] += p.rec_grad[r * p.nt + t];
    }
  }
  const T* lam = m3d_adjoint_component(p, p.src_component) + shot * m3d_numel(p);
  for (int64_t k = 0; k < p.n_src; ++k) {
    const int64_t s = shot * p.n_src + k;
    const int64_t j = p.src_index[s];
    T g = lam[j];
    if (p.n_poles) {
      const PoleIndex q = m3d_poles(p, shot, j);
      g += debye_fold(m3d_adjoint_pol_component(p, p.src_component), p.pole_b, p.n_poles, q);
      // second order's tangent adjoint: the transposed d b_p (E_new + E_old)
      g += debye_kept_fold(p.tangent ? m3d_kept_pol(p, p.src_component, t) : nullptr,
                           p.snap_bf16 != 0, p.tan_pole_b, p.n_poles, q,
                           snapshot_weight<T>(p, t));
    }
    p.src_grad[s * p.nt + t] = g;
  }
}

// Step A at an E cell of the domain (q as for m3d_e_cell; with Debye poles
// each component is first folded with its poles' adjoints, debye_adjoint_e).
template <typename T, int ORDER, bool PZ, bool PY, bool PX, typename I = NoImage,
          typename C = ModelCoefficients, typename D = NoDebye>
WC_HD void m3d_adjoint_e_cell(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                              int64_t x, M3dPsiIndex q, I image = {}, C coef = {},
                              D debye = {}) {
  const int64_t j = (z * p.ny + y) * p.nx + x;
  const int64_t i = shot * m3d_numel(p) + j;
  const int64_t m = m3d_model_offset(p, shot) + j;
  T lx = p.lam_ex[i], ly = p.lam_ey[i], lz = p.lam_ez[i];
  T fx = T(0), fy = T(0), fz = T(0);
  if constexpr (D::on) {
    const PoleIndex pq = m3d_poles(p, shot, j);
    lx = debye_adjoint_e(p.lam_pol_ex, p.pole_a, p.pole_b, p.pole_c, p.n_poles, pq, 0, i, lx,
                         fx, debye);
    ly = debye_adjoint_e(p.lam_pol_ey, p.pole_a, p.pole_b, p.pole_c, p.n_poles, pq, 1, i, ly,
                         fy, debye);
    lz = debye_adjoint_e(p.lam_pol_ez, p.pole_a, p.pole_b, p.pole_c, p.n_poles, pq, 2, i, lz,
                         fz, debye);
  }
  image(i, lx, ly, lz);
  const T b = coef.cb(p, m);
  T tx = b * lx, ty = b * ly, tz = b * lz;
  if constexpr (I::scatters) {  // second order: the kept values' secondary sources
    tx += image.term_b(0, i, m);
    ty += image.term_b(1, i, m);
    tz += image.term_b(2, i, m);
  }
  // cx = hz_y - hy_z, cy = hx_z - hz_x, cz = hy_x - hx_y
  T hz_y = tx, hy_z = -tx, hx_z = ty, hz_x = -ty, hy_x = tz, hx_y = -tz;
  if constexpr (PZ) {
    hy_z = cpml_stretch_adjoint(hy_z, p.lam_psi_hy_z[q.z], p.az[z], p.bz[z], p.kz[z]);
    hx_z = cpml_stretch_adjoint(hx_z, p.lam_psi_hx_z[q.z], p.az[z], p.bz[z], p.kz[z]);
  }
  if constexpr (PY) {
    hz_y = cpml_stretch_adjoint(hz_y, p.lam_psi_hz_y[q.y], p.ay[y], p.by[y], p.ky[y]);
    hx_y = cpml_stretch_adjoint(hx_y, p.lam_psi_hx_y[q.y], p.ay[y], p.by[y], p.ky[y]);
  }
  if constexpr (PX) {
    hz_x = cpml_stretch_adjoint(hz_x, p.lam_psi_hz_x[q.x], p.ax[x], p.bx[x], p.kx[x]);
    hy_x = cpml_stretch_adjoint(hy_x, p.lam_psi_hy_x[q.x], p.ax[x], p.bx[x], p.kx[x]);
  }
  p.w_hz_y[i] = hz_y;
  p.w_hy_z[i] = hy_z;
  p.w_hx_z[i] = hx_z;
  p.w_hz_x[i] = hz_x;
  p.w_hy_x[i] = hy_x;
  p.w_hx_y[i] = hx_y;
  const T a = coef.ca(p, m);
  T next[3] = {a * lx, a * ly, a * lz};
  if constexpr (D::on) {
    next[0] += fx;
    next[1] += fy;
    next[2] += fz;
  }
  if constexpr (I::scatters)
    for (int k = 0; k < 3; ++k) next[k] += image.term_a(k, i, m);
  p.lam_ex[i] = next[0];
  p.lam_ey[i] = next[1];
  p.lam_ez[i] = next[2];
}

// The adjoint of one stretched half-node derivative: v = stretch^T(u), or 0
// where the forward derivative is absent (last plane of its axis).
template <typename T, bool PML>
WC_HD T m3d_v(bool exists, T u, T* lam_psi, const T* a, const T* b, const T* k, int64_t c) {
  if (!exists) return T(0);
  if constexpr (PML) u = cpml_stretch_adjoint(u, *lam_psi, a[c], b[c], k[c]);
  return u;
}

// Step B at an H cell of the domain (q as for m3d_h_cell).
template <typename T, int ORDER, bool PZ, bool PY, bool PX, bool EDGE, typename I = NoImage,
          typename C = ModelCoefficients>
WC_HD void m3d_adjoint_h_cell(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                              int64_t x, M3dPsiIndex q, I image = {}, C coef = {}) {
  constexpr int M = Stencil<ORDER>::M;
  const int64_t sz = p.ny * p.nx, sy = p.nx;
  const int64_t j = (z * p.ny + y) * p.nx + x;
  const int64_t i = shot * m3d_numel(p) + j;
  const T lx = p.lam_hx[i] - diff_to_half<T, ORDER>(p.w_hx_z + i, sz) * p.rdz -
               diff_to_half<T, ORDER>(p.w_hx_y + i, sy) * p.rdy;
  const T ly = p.lam_hy[i] - diff_to_half<T, ORDER>(p.w_hy_z + i, sz) * p.rdz -
               diff_to_half<T, ORDER>(p.w_hy_x + i, 1) * p.rdx;
  const T lz = p.lam_hz[i] - diff_to_half<T, ORDER>(p.w_hz_y + i, sy) * p.rdy -
               diff_to_half<T, ORDER>(p.w_hz_x + i, 1) * p.rdx;
  p.lam_hx[i] = lx;
  p.lam_hy[i] = ly;
  p.lam_hz[i] = lz;
  image(i, lx, ly, lz);
  const int64_t m = m3d_model_offset(p, shot) + j;
  const T c = coef.cq(p, m);
  T ux = c * lx, uy = c * ly, uz = c * lz;
  if constexpr (I::scatters) {  // second order: the kept values' secondary sources
    ux += image.term_a(0, i, m);
    uy += image.term_a(1, i, m);
    uz += image.term_a(2, i, m);
  }
  // Hx += q (ey_z - ez_y), Hy += q (ez_x - ex_z), Hz += q (ex_y - ey_x)
  const bool has_z = !EDGE || z < p.nz - M;
  const bool has_y = !EDGE || y < p.ny - M;
  const bool has_x = !EDGE || x < p.nx - M;
  const int64_t qz = PZ && has_z ? q.z : 0, qy = PY && has_y ? q.y : 0, qx = PX && has_x ? q.x : 0;
  p.v_ey_z[i] = m3d_v<T, PZ>(has_z, ux, p.lam_psi_ey_z + qz, p.az_h, p.bz_h, p.kz_h, z);
  p.v_ex_z[i] = m3d_v<T, PZ>(has_z, -uy, p.lam_psi_ex_z + qz, p.az_h, p.bz_h, p.kz_h, z);
  p.v_ez_y[i] = m3d_v<T, PY>(has_y, -ux, p.lam_psi_ez_y + qy, p.ay_h, p.by_h, p.ky_h, y);
  p.v_ex_y[i] = m3d_v<T, PY>(has_y, uz, p.lam_psi_ex_y + qy, p.ay_h, p.by_h, p.ky_h, y);
  p.v_ez_x[i] = m3d_v<T, PX>(has_x, uy, p.lam_psi_ez_x + qx, p.ax_h, p.bx_h, p.kx_h, x);
  p.v_ey_x[i] = m3d_v<T, PX>(has_x, -uz, p.lam_psi_ey_x + qx, p.ax_h, p.bx_h, p.kx_h, x);
}

// Step C at an E cell of the domain.
template <typename T, int ORDER>
WC_HD void m3d_adjoint_gather_cell(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                                   int64_t x) {
  const int64_t sz = p.ny * p.nx, sy = p.nx;
  const int64_t i = shot * m3d_numel(p) + (z * p.ny + y) * p.nx + x;
  p.lam_ex[i] -= diff_to_int<T, ORDER>(p.v_ex_z + i, sz) * p.rdz +
                 diff_to_int<T, ORDER>(p.v_ex_y + i, sy) * p.rdy;
  p.lam_ey[i] -= diff_to_int<T, ORDER>(p.v_ey_z + i, sz) * p.rdz +
                 diff_to_int<T, ORDER>(p.v_ey_x + i, 1) * p.rdx;
  p.lam_ez[i] -= diff_to_int<T, ORDER>(p.v_ez_y + i, sy) * p.rdy +
                 diff_to_int<T, ORDER>(p.v_ez_x + i, 1) * p.rdx;
}

// ---- snapshot hooks of step t (CPU rows and CUDA kernels) ---------------------

// Snapshot slots of step t: three arrays from `base` (null when not stored).
template <typename StoreT, typename T>
WC_HD Store3<StoreT> m3d_store(const M3dParams<T>& p, void* const (&base)[3], int64_t t) {
  Store3<StoreT> s{{nullptr, nullptr, nullptr}};
  if (base[0] == nullptr) return s;
  const int64_t offset = snapshot_offset(p, t, m3d_numel(p));
  for (int c = 0; c < 3; ++c) s.c[c] = static_cast<StoreT*>(base[c]) + offset;
  return s;
}

// The image of step t (I an Image3 type; `keep` left null): slot arrays of
// the snapshots and the accumulators (null with their snapshots).
template <typename I, typename StoreT, typename T>
WC_HD I m3d_image(const M3dParams<T>& p, void* const (&a)[3], void* const (&b)[3],
                  typename same<T>::type* grad_a, typename same<T>::type* grad_b,
                  int64_t t) {
  I image{{nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr},
          a[0] ? grad_a : nullptr,      b[0] ? grad_b : nullptr,
          snapshot_weight<T>(p, t),     {nullptr, nullptr, nullptr}};
  const int64_t offset = snapshot_offset(p, t, m3d_numel(p));
  for (int c = 0; c < 3; ++c) {
    if (a[0]) image.a[c] = static_cast<const StoreT*>(a[c]) + offset;
    if (b[0]) image.b[c] = static_cast<const StoreT*>(b[c]) + offset;
  }
  return image;
}

template <typename T>
WC_HD bool m3d_stores(const M3dParams<T>& p, int64_t t) {
  return snapshot_weight<T>(p, t) != T(0);
}

// The kept adjoint vectors of step t (adj_e*: e = true, adj_h*), or nulls.
template <typename StoreT, typename T>
WC_HD Store3<StoreT> m3d_kept(const M3dParams<T>& p, bool e, int64_t t) {
  void* const base[3] = {e ? p.adj_ex : p.adj_hx, e ? p.adj_ey : p.adj_hy,
                         e ? p.adj_ez : p.adj_hz};
  return m3d_store<StoreT>(p, base, t);
}

// The Debye snapshot slots of step t (nulls where not stored).
template <typename StoreT, typename T>
WC_HD DebyeStore<StoreT, 3> m3d_debye_store(const M3dParams<T>& p, int64_t t) {
  const int64_t n = m3d_numel(p);
  void* const pol[3] = {p.snap_pol_x, p.snap_pol_y, p.snap_pol_z};
  void* const sum[3] = {p.snap_esum_x, p.snap_esum_y, p.snap_esum_z};
  DebyeStore<StoreT, 3> s{{nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr}};
  for (int c = 0; c < 3; ++c) {
    if (pol[c]) s.pol[c] = static_cast<StoreT*>(pol[c]) + snapshot_offset(p, t, n * p.n_poles);
    if (sum[c]) s.esum[c] = static_cast<StoreT*>(sum[c]) + snapshot_offset(p, t, n);
  }
  return s;
}

template <typename StoreT, typename T>
WC_HD DebyeImage<T, StoreT, 3> m3d_debye_image(const M3dParams<T>& p, int64_t t) {
  const int64_t n = m3d_numel(p);
  void* const pol[3] = {p.snap_pol_x, p.snap_pol_y, p.snap_pol_z};
  void* const sum[3] = {p.snap_esum_x, p.snap_esum_y, p.snap_esum_z};
  DebyeImage<T, StoreT, 3> image{{nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr},
                                 p.grad_pole_a, p.grad_pole_b, p.grad_pole_c,
                                 snapshot_weight<T>(p, t)};
  for (int c = 0; c < 3; ++c) {
    image.pol[c] = static_cast<const StoreT*>(pol[c]) + snapshot_offset(p, t, n * p.n_poles);
    image.esum[c] = static_cast<const StoreT*>(sum[c]) + snapshot_offset(p, t, n);
  }
  return image;
}

// ---- the hooks of a forward-direction step (CPU rows and CUDA kernels) -------
//
// f(hook) for the H cells of step t: nothing (NoStore), the stored curl of E
// (Store3) or, in a tangent sweep (TANGENT: the caller's p.tangent, a template
// flag so that the CPU rows compile the tangent's hooks for model coefficients
// only) where cq moves, its secondary source (Scatter3); as tm2d_h_hooks.
template <typename T, bool TANGENT, typename F>
WC_HD void m3d_h_hooks(const M3dParams<T>& p, int64_t t, F&& f) {
  void* const s[3] = {p.snap_sx, p.snap_sy, p.snap_sz};
  if (!m3d_stores(p, t) || s[0] == nullptr || (TANGENT && p.tan_cq == nullptr)) {
    f(NoStore{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    const Store3<S> at = m3d_store<S>(p, s, t);
    if constexpr (TANGENT)
    {
      const Store3<S> kept = m3d_kept<S>(p, false, t);
      f(Scatter3<T, S>{{at.c[0], at.c[1], at.c[2]}, p.tan_cq, snapshot_weight<T>(p, t),
                       {kept.c[0], kept.c[1], kept.c[2]}, p.grad_cq});
    }
    else
      f(at);
  });
}

// f(hook_e, hook_c, debye_hook) for the E cells of step t (POLES: the run has
// Debye poles, else debye_hook is NoDebye; TANGENT as for m3d_h_hooks); as
// tm2d_e_hooks (in a tangent sweep the E update and the poles scatter together
// or not at all).
template <typename T, bool POLES, bool TANGENT, typename F>
WC_HD void m3d_e_hooks(const M3dParams<T>& p, int64_t t, F&& f) {
  void* const e[3] = {p.snap_ex, p.snap_ey, p.snap_ez};
  void* const k[3] = {p.snap_cx, p.snap_cy, p.snap_cz};
  // as tm2d_e_hooks: a step that stores no E stores nothing
  const bool stored = m3d_stores(p, t) && e[0] != nullptr && k[0] != nullptr;
  const bool scatters = TANGENT && p.tan_ca != nullptr && e[0] != nullptr &&
                        (!POLES || (p.tan_pole_a != nullptr && p.snap_pol_x != nullptr));
  if (!stored || (TANGENT && !scatters)) {
    if constexpr (POLES) f(NoStore{}, NoStore{}, DebyeNoStore{});
    else f(NoStore{}, NoStore{}, NoDebye{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    const Store3<S> se = m3d_store<S>(p, e, t), sc = m3d_store<S>(p, k, t);
    if constexpr (!TANGENT) {
      if constexpr (POLES) f(se, sc, m3d_debye_store<S>(p, t));
      else f(se, sc, NoDebye{});
    } else {
      const T w = snapshot_weight<T>(p, t);
      const Store3<S> kept = m3d_kept<S>(p, true, t);
      const Scatter3<T, S> scatter_e{{se.c[0], se.c[1], se.c[2]}, p.tan_ca, w,
                                     {kept.c[0], kept.c[1], kept.c[2]}, p.grad_ca};
      const Scatter3<T, S> scatter_c{{sc.c[0], sc.c[1], sc.c[2]}, p.tan_cb, w,
                                     {kept.c[0], kept.c[1], kept.c[2]}, p.grad_cb};
      if constexpr (POLES) {
        const DebyeImage<T, S, 3> at = m3d_debye_image<S>(p, t);
        DebyeScatter<T, S, 3> scatter{{at.pol[0], at.pol[1], at.pol[2]},
                                      {at.esum[0], at.esum[1], at.esum[2]},
                                      p.tan_pole_a, p.tan_pole_b, p.tan_pole_c, w,
                                      {nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr},
                                      p.grad_pole_a, p.grad_pole_b, p.grad_pole_c};
        for (int c = 0; c < 3; ++c) {  // second order: image against the kept values
          scatter.kept_pol[c] = static_cast<const S*>(m3d_kept_pol(p, c, t));
          scatter.kept_e[c] = scatter.kept_pol[c] ? kept.c[c] : nullptr;
        }
        f(scatter_e, scatter_c, scatter);
      } else {
        f(scatter_e, scatter_c, NoDebye{});
      }
    }
  });
}

// ---- the hooks of a transposed step (CPU rows and CUDA kernels) --------------
//
// f(image) for the E cells of step t without Debye poles, as
// tm2d_adjoint_e_hooks (TANGENT as for m3d_h_hooks: the caller's p.tangent).
template <typename T, bool TANGENT, typename F>
WC_HD void m3d_adjoint_e_hooks(const M3dParams<T>& p, int64_t t, F&& f) {
  void* const e[3] = {p.snap_ex, p.snap_ey, p.snap_ez};
  void* const k[3] = {p.snap_cx, p.snap_cy, p.snap_cz};
  if (!m3d_stores(p, t) || e[0] == nullptr || k[0] == nullptr || p.grad_ca == nullptr ||
      p.grad_cb == nullptr) {
    f(NoImage{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    using I = Image3<T, S, 2>;
    const I image = m3d_image<I, S>(p, e, k, p.grad_ca, p.grad_cb, t);
    const Store3<S> kept = m3d_kept<S>(p, true, t);
    if (kept.c[0] == nullptr)
      f(image);
    else if constexpr (!TANGENT)
      f(image.keeping(kept.c));
    else if (p.tan_ca != nullptr)
      f(AdjointScatter3<T, S, I>{image, {kept.c[0], kept.c[1], kept.c[2]}, p.tan_ca, p.tan_cb});
    else
      f(image);
  });
}

// f(image) for the H cells of step t, as m3d_adjoint_e_hooks (cq: adj_h*).
template <typename T, bool TANGENT, typename F>
WC_HD void m3d_adjoint_h_hooks(const M3dParams<T>& p, int64_t t, F&& f) {
  void* const s[3] = {p.snap_sx, p.snap_sy, p.snap_sz};
  void* const none[3] = {nullptr, nullptr, nullptr};
  if (!m3d_stores(p, t) || s[0] == nullptr || p.grad_cq == nullptr) {
    f(NoImage{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    using I = Image3<T, S, 1>;
    const I image = m3d_image<I, S>(p, s, none, p.grad_cq, nullptr, t);
    const Store3<S> kept = m3d_kept<S>(p, false, t);
    if (kept.c[0] == nullptr)
      f(image);
    else if constexpr (!TANGENT)
      f(image.keeping(kept.c));
    else if (p.tan_cq != nullptr)
      f(AdjointScatter3<T, S, I>{image, {kept.c[0], kept.c[1], kept.c[2]}, p.tan_cq, nullptr});
    else
      f(image);
  });
}

// Whether step t accumulates the Debye coefficient gradients.
template <typename T>
WC_HD bool m3d_debye_images(const M3dParams<T>& p, int64_t t) {
  return p.grad_pole_a != nullptr && p.snap_pol_x != nullptr && m3d_stores(p, t);
}

// f(image, debye_image) for the E cells of step t of a run with Debye poles, as
// tm2d_debye_adjoint_e_hooks (TANGENT as for m3d_h_hooks: the caller's
// p.tangent): nothing (NoImage, DebyeNoImage) where step t accumulates no
// gradient; else the images (keeping second order's values in an adjoint
// sweep), or in a tangent adjoint sweep where the coefficients move the
// AdjointScatter3 and DebyeAdjointScatter of the kept values.
template <typename T, bool TANGENT, typename F>
WC_HD void m3d_debye_adjoint_e_hooks(const M3dParams<T>& p, int64_t t, F&& f) {
  void* const e[3] = {p.snap_ex, p.snap_ey, p.snap_ez};
  void* const k[3] = {p.snap_cx, p.snap_cy, p.snap_cz};
  const bool images = m3d_stores(p, t) && e[0] != nullptr &&
                      (p.grad_ca != nullptr || p.grad_cb != nullptr);
  const bool poles = m3d_debye_images(p, t);
  if (!images && !poles) {
    f(NoImage{}, DebyeNoImage{});
    return;
  }
  with_snapshot_type<T>(p, [&](auto zero) {
    using S = decltype(zero);
    // (a checked image: poles only have an image with no accumulators)
    using I = CheckedImage3<T, S>;
    auto image = images ? m3d_image<I, S>(p, e, k, p.grad_ca, p.grad_cb, t)
                        : I{{nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr},
                            nullptr, nullptr, T(0), {nullptr, nullptr, nullptr}};
    if (!poles) {
      f(image, DebyeNoImage{});
      return;
    }
    auto debye = m3d_debye_image<S>(p, t);
    const Store3<S> kept = m3d_kept<S>(p, true, t);
    S* kept_pol[3];
    for (int c = 0; c < 3; ++c) kept_pol[c] = static_cast<S*>(m3d_kept_pol(p, c, t));
    if constexpr (!TANGENT) {
      for (int c = 0; c < 3; ++c) {
        image.keep[c] = kept.c[c];
        debye.keep_pol[c] = kept_pol[c];
      }
      f(image, debye);
    } else {
      if (p.tan_ca != nullptr && p.tan_pole_a != nullptr && kept.c[0] != nullptr &&
          kept_pol[0] != nullptr)
        f(AdjointScatter3<T, S, I>{image, {kept.c[0], kept.c[1], kept.c[2]}, p.tan_ca, p.tan_cb},
          DebyeAdjointScatter<T, S, 3>{debye,
                                       {kept.c[0], kept.c[1], kept.c[2]},
                                       {kept_pol[0], kept_pol[1], kept_pol[2]},
                                       p.tan_pole_a, p.tan_pole_b, p.tan_pole_c});
      else
        f(image, debye);
    }
  });
}

}  // namespace wc
