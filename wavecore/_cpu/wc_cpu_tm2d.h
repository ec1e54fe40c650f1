// CPU mapping of the TM2D cell updates onto rows of cells.
//
// A row is split into the left CPML slab, the interior and the right slab so
// that each segment is a branch-free loop the compiler vectorizes; the cell
// updates themselves live in wavecore/_csrc/wc_tm2d.h.
#pragma once

#include <type_traits>

#include "wc_tm2d.h"

namespace wc {
namespace cpu {

template <typename T, int ORDER, bool PZ>
inline void hx_segment(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x0, int64_t x1) {
#pragma omp simd
  for (int64_t x = x0; x < x1; ++x) tm2d_hx_cell<T, ORDER, PZ>(p, shot, y, x);
}

template <typename T, int ORDER, bool PX>
inline void hz_segment(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x0, int64_t x1) {
#pragma omp simd
  for (int64_t x = x0; x < x1; ++x) tm2d_hz_cell<T, ORDER, PX>(p, shot, y, x);
}

template <typename T, int ORDER, bool PZ, bool PX>
inline void ey_segment(const Tm2dParams<T>& p, int64_t shot, int64_t y, int64_t x0, int64_t x1) {
#pragma omp simd
  for (int64_t x = x0; x < x1; ++x) tm2d_ey_cell<T, ORDER, PZ, PX>(p, shot, y, x);
}

// Update Hx and Hz on row y (a domain row) of one shot.
template <typename T, int ORDER>
inline void h_row(const Tm2dParams<T>& p, int64_t shot, int64_t y) {
  constexpr int M = Stencil<ORDER>::M;
  if (y < p.ny - M) {
    if (tm2d_pml_row_h(p, y)) {
      hx_segment<T, ORDER, true>(p, shot, y, M, p.nx - M + 1);
    } else {
      hx_segment<T, ORDER, false>(p, shot, y, M, p.nx - M + 1);
    }
  }
  const int64_t right = p.pml_x1 - 1;  // first column of the right H slab
  hz_segment<T, ORDER, true>(p, shot, y, M, p.pml_x0);
  hz_segment<T, ORDER, false>(p, shot, y, p.pml_x0, right);
  hz_segment<T, ORDER, true>(p, shot, y, right, p.nx - M);
}

template <typename T, int ORDER, bool PZ>
inline void ey_row_segments(const Tm2dParams<T>& p, int64_t shot, int64_t y) {
  constexpr int M = Stencil<ORDER>::M;
  ey_segment<T, ORDER, PZ, true>(p, shot, y, M, p.pml_x0);
  ey_segment<T, ORDER, PZ, false>(p, shot, y, p.pml_x0, p.pml_x1);
  ey_segment<T, ORDER, PZ, true>(p, shot, y, p.pml_x1, p.nx - M + 1);
}

// Update Ey on row y (a domain row) of one shot.
template <typename T, int ORDER>
inline void e_row(const Tm2dParams<T>& p, int64_t shot, int64_t y) {
  if (tm2d_pml_row_e(p, y)) {
    ey_row_segments<T, ORDER, true>(p, shot, y);
  } else {
    ey_row_segments<T, ORDER, false>(p, shot, y);
  }
}

// Call f(std::integral_constant<int, ORDER>) for the runtime stencil order.
template <typename F>
inline void with_order(int order, F&& f) {
  switch (order) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
  }
}

// Row updates with the order chosen at run time, called by the Cython time loop.
template <typename T>
inline void tm2d_h_row(const Tm2dParams<T>& p, int order, int64_t shot, int64_t y) {
  with_order(order, [&](auto o) { h_row<T, decltype(o)::value>(p, shot, y); });
}

template <typename T>
inline void tm2d_e_row(const Tm2dParams<T>& p, int order, int64_t shot, int64_t y) {
  with_order(order, [&](auto o) { e_row<T, decltype(o)::value>(p, shot, y); });
}

template <typename T>
inline void tm2d_sources_receivers(const Tm2dParams<T>& p, int64_t shot, int64_t t) {
  tm2d_inject_sources(p, shot, t);
  tm2d_record_receivers(p, shot, t);
}

}  // namespace cpu
}  // namespace wc
