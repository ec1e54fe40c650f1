// CPU mapping of the TM2D cell updates onto rows of cells.
//
// A row is split into the left CPML slab, the interior and the right slab so
// that each segment is a branch-free loop the compiler vectorizes; the cell
// updates themselves live in wavecore/_csrc/wc_tm2d.h. Every function here
// only chooses which cells, which template flags and which snapshot slot.
#pragma once

#include "wc_cpu_dispatch.h"
#include "wc_tm2d.h"

namespace wc {
namespace cpu {

// ---- forward ------------------------------------------------------------------

// ---- rows of cells -------------------------------------------------------------
//
// cell(x, q, pml) for the cells of one row, q the cell's CPML memory indices
// (tm2d_psi_indices) and pml a std::bool_constant: each loop is branch-free
// and q grows with x along it, so the memories are read and written at affine
// indices and the CPML segments vectorize like the interior. The Hx cells of
// row y (y < ny - M) take the row's z flag; the Hz and E cells are split into
// the x segments (by_segment), the E cells also take the row's z flag.

template <int ORDER, typename T, typename FZ, typename FX>
inline void tm2d_h_cells(const Tm2dParams<T>& p, int64_t shot, int64_t y, FZ&& hx_cell,
                         FX&& hz_cell) {
  constexpr int M = Stencil<ORDER>::M;
  if (y < p.ny - M) {
    with_flag(tm2d_pml_row_h(p, y), [&](auto pz) {
      const Tm2dPsiIndex q = tm2d_psi_indices<T, M, true>(p, shot, y, M);
#pragma omp simd
      for (int64_t x = M; x < p.nx - M + 1; ++x) hx_cell(x, tm2d_psi_shift(q, x - M), pz);
    });
  }
  by_segment(M, p.pml_x0, p.pml_x1 - 1, p.nx - M, [&](int64_t a, int64_t b, auto px) {
    const Tm2dPsiIndex q = tm2d_psi_indices<T, M, true>(p, shot, y, a);
#pragma omp simd
    for (int64_t x = a; x < b; ++x) hz_cell(x, tm2d_psi_shift(q, x - a), px);
  });
}

// cell(x, q, pz, px) for the E cells of row y.
template <int ORDER, typename T, typename F>
inline void tm2d_e_cells(const Tm2dParams<T>& p, int64_t shot, int64_t y, F&& cell) {
  constexpr int M = Stencil<ORDER>::M;
  with_flag(tm2d_pml_row_e(p, y), [&](auto pz) {
    by_segment(M, p.pml_x0, p.pml_x1, p.nx - M + 1, [&](int64_t a, int64_t b, auto px) {
      const Tm2dPsiIndex q = tm2d_psi_indices<T, M, false>(p, shot, y, a);
#pragma omp simd
      for (int64_t x = a; x < b; ++x) cell(x, tm2d_psi_shift(q, x - a), pz, px);
    });
  });
}

// ---- forward ------------------------------------------------------------------

template <typename T, int ORDER, typename S>
inline void h_row(const Tm2dParams<T>& p, int64_t shot, int64_t y, S store_z, S store_x) {
  tm2d_h_cells<ORDER>(
      p, shot, y,
      [&](int64_t x, Tm2dPsiIndex q, auto pz) WC_INLINE_LAMBDA {
        tm2d_hx_cell<T, ORDER, decltype(pz)::value>(p, shot, y, x, q, store_z);
      },
      [&](int64_t x, Tm2dPsiIndex q, auto px) WC_INLINE_LAMBDA {
        tm2d_hz_cell<T, ORDER, decltype(px)::value>(p, shot, y, x, q, store_x);
      });
}

template <typename T, int ORDER, typename S, typename D = NoDebye>
inline void e_row(const Tm2dParams<T>& p, int64_t shot, int64_t y, S store, D debye = {}) {
  tm2d_e_cells<ORDER>(p, shot, y, [&](int64_t x, Tm2dPsiIndex q, auto pz, auto px) WC_INLINE_LAMBDA {
    tm2d_ey_cell<T, ORDER, decltype(pz)::value, decltype(px)::value>(p, shot, y, x, q, store,
                                                                      debye);
  });
}

// f(integral_constant<int, K>): K = n_poles for 1-3 Debye poles (Counted hooks:
// the pole loops unroll and the rows vectorize), K = 0 (counted at run time) else.
template <typename F>
inline void with_poles(int64_t n_poles, F&& f) {
  switch (n_poles) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    default: f(std::integral_constant<int, 0>{}); break;
  }
}

// Row updates of step t with the order chosen at run time, called by the
// Cython time loop; their hooks store the snapshots of a stored step, or in a
// tangent sweep add its secondary sources (tm2d_h_hooks, tm2d_e_hooks).
template <typename T>
inline void tm2d_h_row(const Tm2dParams<T>& p, int order, int64_t shot, int64_t y, int64_t t) {
  with_order(order, [&](auto o) {
    tm2d_h_hooks(p, t, [&](auto store_z, auto store_x) {
      h_row<T, decltype(o)::value>(p, shot, y, store_z, store_x);
    });
  });
}

template <typename T>
inline void tm2d_e_row(const Tm2dParams<T>& p, int order, int64_t shot, int64_t y, int64_t t) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    if (p.n_poles) {  // Debye poles: their hooks too
      with_poles(p.n_poles, [&](auto k) {
        tm2d_e_hooks<T, true, decltype(k)::value>(
            p, t, [&](auto store, auto debye) { e_row<T, O>(p, shot, y, store, debye); });
      });
    } else {
      tm2d_e_hooks<T, false, 0>(
          p, t, [&](auto store, auto debye) { e_row<T, O>(p, shot, y, store, debye); });
    }
  });
}

template <typename T>
inline void tm2d_sources_receivers(const Tm2dParams<T>& p, int64_t shot, int64_t t) {
  tm2d_inject_sources(p, shot, t);
  tm2d_record_receivers(p, shot, t);
}

// ---- adjoint ------------------------------------------------------------------

template <typename T, int ORDER, typename I, typename D = NoDebye>
inline void adjoint_e_row(const Tm2dParams<T>& p, int64_t shot, int64_t y, I image,
                          D debye = {}) {
  tm2d_e_cells<ORDER>(p, shot, y, [&](int64_t x, Tm2dPsiIndex q, auto pz, auto px) WC_INLINE_LAMBDA {
    tm2d_adjoint_ey_cell<T, ORDER, decltype(pz)::value, decltype(px)::value>(p, shot, y, x, q,
                                                                              image, debye);
  });
}

template <typename T, int ORDER, typename I>
inline void adjoint_h_row(const Tm2dParams<T>& p, int64_t shot, int64_t y, I image_z,
                          I image_x) {
  tm2d_h_cells<ORDER>(
      p, shot, y,
      [&](int64_t x, Tm2dPsiIndex q, auto pz) WC_INLINE_LAMBDA {
        tm2d_adjoint_hx_cell<T, ORDER, decltype(pz)::value>(p, shot, y, x, q, image_z);
      },
      [&](int64_t x, Tm2dPsiIndex q, auto px) WC_INLINE_LAMBDA {
        tm2d_adjoint_hz_cell<T, ORDER, decltype(px)::value>(p, shot, y, x, q, image_x);
      });
}

template <typename T, int ORDER>
inline void adjoint_gather_row(const Tm2dParams<T>& p, int64_t shot, int64_t y) {
  constexpr int M = Stencil<ORDER>::M;
#pragma omp simd
  for (int64_t x = M; x < p.nx - M + 1; ++x) tm2d_adjoint_gather_cell<T, ORDER>(p, shot, y, x);
}

template <typename T>
inline void tm2d_adjoint_e_row(const Tm2dParams<T>& p, int order, int64_t shot, int64_t y,
                               int64_t t) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    if (p.n_poles) {  // Debye poles: their images too (tm2d_debye_adjoint_e_hooks)
      with_poles(p.n_poles, [&](auto k) {
        tm2d_debye_adjoint_e_hooks<T, decltype(k)::value>(p, t, [&](auto image, auto debye) {
          adjoint_e_row<T, O>(p, shot, y, image, debye);
        });
      });
    } else {  // the image, with second order's kept values or scatter (tm2d_adjoint_e_hooks)
      tm2d_adjoint_e_hooks(p, t, [&](auto image) { adjoint_e_row<T, O>(p, shot, y, image); });
    }
  });
}

template <typename T>
inline void tm2d_adjoint_h_row(const Tm2dParams<T>& p, int order, int64_t shot, int64_t y,
                               int64_t t) {
  with_order(order, [&](auto o) {
    tm2d_adjoint_h_hooks(p, t, [&](auto image_z, auto image_x) {
      adjoint_h_row<T, decltype(o)::value>(p, shot, y, image_z, image_x);
    });
  });
}

template <typename T>
inline void tm2d_adjoint_gather_row(const Tm2dParams<T>& p, int order, int64_t shot,
                                    int64_t y) {
  with_order(order, [&](auto o) { adjoint_gather_row<T, decltype(o)::value>(p, shot, y); });
}

}  // namespace cpu
}  // namespace wc
