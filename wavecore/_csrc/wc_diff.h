// Staggered first derivatives of order 2, 4, 6 and 8, and the CPML stretch.
//
// Written once for every dimension and backend. `f` points at the centre node
// and `s` is the stride of the differentiated axis, so the same function takes
// z, y or x derivatives. The caller multiplies by 1/h.
#pragma once

#include "wc_config.h"
#include "wc_stencil.h"

namespace wc {

// Derivative half-way between f[0] and f[s], from integer nodes:
// sum_k c_k (f[k s] - f[(1 - k) s]).
template <typename T, int ORDER>
WC_HD T diff_to_half(const T* f, int64_t s) {
  using S = Stencil<ORDER>;
  T d = T(S::c1) * (f[s] - f[0]);
  if constexpr (S::M >= 2) d += T(S::c2) * (f[2 * s] - f[-s]);
  if constexpr (S::M >= 3) d += T(S::c3) * (f[3 * s] - f[-2 * s]);
  if constexpr (S::M >= 4) d += T(S::c4) * (f[4 * s] - f[-3 * s]);
  return d;
}

// Derivative at the integer node between the half nodes f[-s] and f[0]:
// sum_k c_k (f[(k - 1) s] - f[-k s]).
template <typename T, int ORDER>
WC_HD T diff_to_int(const T* f, int64_t s) {
  using S = Stencil<ORDER>;
  T d = T(S::c1) * (f[0] - f[-s]);
  if constexpr (S::M >= 2) d += T(S::c2) * (f[s] - f[-2 * s]);
  if constexpr (S::M >= 3) d += T(S::c3) * (f[2 * s] - f[-3 * s]);
  if constexpr (S::M >= 4) d += T(S::c4) * (f[3 * s] - f[-4 * s]);
  return d;
}

// CPML: advance the memory psi <- b psi + a d and return the stretched
// derivative d / kappa + psi (Roden-Gedney recursive convolution).
template <typename T>
WC_HD T cpml_stretch(T d, T& psi, T a, T b, T kappa) {
  psi = b * psi + a * d;
  return d / kappa + psi;
}

// Index of padded coordinate c in the compact CPML memory of its axis: c - M
// in the low slab (c < low_end), low_width + (c - high_start) in the high one.
// Both candidates are computed and one selected: where the condition is
// invariant along a vectorized row (a z-slab seen from an x-row) GCC 12 would
// otherwise turn a conditional read of low_width into a masked load, which it
// cannot vectorize, and leave the whole row scalar (it did so for the TM2D
// adjoint E rows with Debye images in the z slabs).
template <int M>
WC_HD int64_t cpml_slab_index(int64_t c, int64_t low_end, int64_t low_width,
                              int64_t high_start) {
  const int64_t low = c - M, high = low_width + (c - high_start);
  return c < low_end ? low : high;
}

// Transpose of cpml_stretch. Given the adjoint t of the stretched derivative
// and the carried adjoint lam_psi of the new memory, update lam_psi to the
// adjoint of the old memory and return the adjoint of the raw derivative.
template <typename T>
WC_HD T cpml_stretch_adjoint(T t, T& lam_psi, T a, T b, T kappa) {
  const T total = lam_psi + t;
  lam_psi = b * total;
  return t / kappa + a * total;
}

}  // namespace wc
