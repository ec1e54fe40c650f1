// CPU mapping of the 3-D cell updates onto rows of cells (fixed z and y).
//
// Two row mappings (H cells, E cells) serve the forward and the adjoint; the
// cell updates themselves live in wavecore/_csrc/wc_maxwell3d.h.
#pragma once

#include "wc_cpu_dispatch.h"
#include "wc_maxwell3d.h"

namespace wc {
namespace cpu {

// ---- rows of equal coefficients ------------------------------------------------
//
// Most rows of a piecewise-constant model have the same update coefficients
// from end to end. Such a row reads its coefficients at one cell
// (UniformCoefficients) and its cells move no coefficient bytes; other rows
// read them per cell. uniform_e[r] and uniform_h[r] (built by
// wavecore.backends.cpu; null: no row is) flag the rows
// r = (model * nz + z) * ny + y whose domain cells have equal (ca, cb), and
// equal cq. The 64^3 two-layer forward with 2 threads runs ~8 % faster with
// them (python bench/ablation_maxwell3d.py; docs/performance.md).
struct M3dUniformRows {
  const uint8_t* e;
  const uint8_t* h;
};

// f(ModelCoefficients) or f(UniformCoefficients) for row (shot, z, y).
template <typename T, typename F>
inline void with_coefficients(const M3dParams<T>& p, const uint8_t* uniform, int64_t shot,
                              int64_t z, int64_t y, F&& f) {
  const int64_t model = shot / p.shots_per_model;
  if (uniform != nullptr && uniform[(model * p.nz + z) * p.ny + y]) {
    const int64_t m = model * m3d_numel(p) + (z * p.ny + y) * p.nx + p.pml_x0;
    f(UniformCoefficients<T>{p.ca + m, p.cb + m, p.cq + m});
  } else {
    f(ModelCoefficients{});
  }
}

// ---- rows of cells -------------------------------------------------------------
//
// cell(x, q, pz, py, px, edge) for every H (or E) cell of row (shot, z, y), q
// the cell's CPML memory indices and the flags std::bool_constant: the CPML
// segments and the interior are branch-free loops in which q grows with x; H
// rows on the last z or y plane, and the last cell of every H row, take the
// checked (edge) variant.

template <int O, typename T, typename F>
inline void m3d_h_cells(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y, F&& cell) {
  constexpr int M = Stencil<O>::M;
  const int64_t last = p.nx - M;  // last domain column: no half node after it
  with_flag(m3d_pml_h(z, p.pml_z0, p.pml_z1), [&](auto pz) {
    with_flag(m3d_pml_h(y, p.pml_y0, p.pml_y1), [&](auto py) {
      with_flag(z == p.nz - M || y == p.ny - M, [&](auto edge) {
        by_segment(M, p.pml_x0, p.pml_x1 - 1, last, [&](int64_t a, int64_t b, auto px) {
          const M3dPsiIndex q = m3d_psi_indices<T, M, true>(p, shot, z, y, a);
#pragma omp simd
          for (int64_t x = a; x < b; ++x) cell(x, m3d_psi_shift(q, x - a), pz, py, px, edge);
        });
      });
      cell(last, m3d_psi_indices<T, M, true>(p, shot, z, y, last), pz, py, std::true_type{},
           std::true_type{});
    });
  });
}

template <int O, typename T, typename F>
inline void m3d_e_cells(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y, F&& cell) {
  constexpr int M = Stencil<O>::M;
  with_flag(m3d_pml_e(z, p.pml_z0, p.pml_z1), [&](auto pz) {
    with_flag(m3d_pml_e(y, p.pml_y0, p.pml_y1), [&](auto py) {
      by_segment(M, p.pml_x0, p.pml_x1, p.nx - M + 1, [&](int64_t a, int64_t b, auto px) {
        const M3dPsiIndex q = m3d_psi_indices<T, M, false>(p, shot, z, y, a);
#pragma omp simd
        for (int64_t x = a; x < b; ++x) cell(x, m3d_psi_shift(q, x - a), pz, py, px);
      });
    });
  });
}

// ---- forward ------------------------------------------------------------------

template <typename T, int O, typename S, typename C>
inline void m3d_h_row_o(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y, S store,
                        C coef) {
  m3d_h_cells<O>(p, shot, z, y, [&, coef](int64_t x, M3dPsiIndex q, auto pz, auto py, auto px, auto edge) WC_INLINE_LAMBDA {
    m3d_h_cell<T, O, decltype(pz)::value, decltype(py)::value, decltype(px)::value, decltype(edge)::value>(p, shot, z, y, x, q, store, coef);
  });
}

template <typename T, int O, typename S, typename C, typename D = NoDebye>
inline void m3d_e_row_o(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y, S store_e,
                        S store_c, C coef, D debye = {}) {
  m3d_e_cells<O>(p, shot, z, y, [&, coef](int64_t x, M3dPsiIndex q, auto pz, auto py, auto px) WC_INLINE_LAMBDA {
    m3d_e_cell<T, O, decltype(pz)::value, decltype(py)::value, decltype(px)::value>(p, shot, z, y, x, q, store_e, store_c, coef, debye);
  });
}

// Row updates of step t with the order chosen at run time, called by the
// Cython time loop; their hooks store the snapshots of a stored step, or in a
// tangent sweep add its secondary sources (m3d_h_hooks, m3d_e_hooks).
template <typename T>
inline void m3d_h_row(const M3dParams<T>& p, const M3dUniformRows& uniform, int order,
                      int64_t shot, int64_t z, int64_t y, int64_t t) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    if (p.tangent) {  // a tangent sweep: model coefficients only (fewer instantiations)
      m3d_h_hooks<T, true>(p, t, [&](auto store) {
        m3d_h_row_o<T, O>(p, shot, z, y, store, ModelCoefficients{});
      });
      return;
    }
    with_coefficients(p, uniform.h, shot, z, y, [&](auto coef) {
      m3d_h_hooks<T, false>(p, t, [&](auto store) {
        m3d_h_row_o<T, O>(p, shot, z, y, store, coef);
      });
    });
  });
}

template <typename T>
inline void m3d_e_row(const M3dParams<T>& p, const M3dUniformRows& uniform, int order,
                      int64_t shot, int64_t z, int64_t y, int64_t t) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    auto rows = [&](auto coef, auto tangent) {
      constexpr bool TANGENT = decltype(tangent)::value;
      auto row = [&](auto store_e, auto store_c, auto debye) {
        m3d_e_row_o<T, O>(p, shot, z, y, store_e, store_c, coef, debye);
      };
      if (p.n_poles)  // Debye poles: their hooks too
        m3d_e_hooks<T, true, TANGENT>(p, t, row);
      else
        m3d_e_hooks<T, false, TANGENT>(p, t, row);
    };
    if (p.tangent)  // a tangent sweep: model coefficients only
      rows(ModelCoefficients{}, std::true_type{});
    else
      with_coefficients(p, uniform.e, shot, z, y,
                        [&](auto coef) { rows(coef, std::false_type{}); });
  });
}

template <typename T>
inline void m3d_sources_receivers(const M3dParams<T>& p, int64_t shot, int64_t t) {
  m3d_inject_sources(p, shot, t);
  m3d_record_receivers(p, shot, t);
}

// ---- adjoint ------------------------------------------------------------------

template <typename T, int O, typename I, typename C, typename D = NoDebye>
inline void m3d_adjoint_e_row_o(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                                I image, C coef, D debye = {}) {
  m3d_e_cells<O>(p, shot, z, y, [&, coef](int64_t x, M3dPsiIndex q, auto pz, auto py, auto px) WC_INLINE_LAMBDA {
    m3d_adjoint_e_cell<T, O, decltype(pz)::value, decltype(py)::value, decltype(px)::value>(p, shot, z, y, x, q, image, coef, debye);
  });
}

template <typename T, int O, typename I, typename C>
inline void m3d_adjoint_h_row_o(const M3dParams<T>& p, int64_t shot, int64_t z, int64_t y,
                                I image, C coef) {
  m3d_h_cells<O>(p, shot, z, y, [&, coef](int64_t x, M3dPsiIndex q, auto pz, auto py, auto px, auto edge) WC_INLINE_LAMBDA {
    m3d_adjoint_h_cell<T, O, decltype(pz)::value, decltype(py)::value, decltype(px)::value, decltype(edge)::value>(p, shot, z, y, x, q, image, coef);
  });
}

template <typename T>
inline void m3d_adjoint_e_row(const M3dParams<T>& p, const M3dUniformRows& uniform, int order,
                              int64_t shot, int64_t z, int64_t y, int64_t t) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    if (p.tangent) {  // second order's scatter: model coefficients only
      auto row = [&](auto image, auto... debye) {
        m3d_adjoint_e_row_o<T, O>(p, shot, z, y, image, ModelCoefficients{}, debye...);
      };
      if (p.n_poles)  // Debye poles: their images and scatter too
        m3d_debye_adjoint_e_hooks<T, true>(p, t, row);
      else
        m3d_adjoint_e_hooks<T, true>(p, t, row);
      return;
    }
    with_coefficients(p, uniform.e, shot, z, y, [&](auto coef) {
      // the images, keeping second order's values where asked
      auto row = [&](auto image, auto... debye) {
        m3d_adjoint_e_row_o<T, O>(p, shot, z, y, image, coef, debye...);
      };
      if (p.n_poles)  // Debye poles: their images too
        m3d_debye_adjoint_e_hooks<T, false>(p, t, row);
      else
        m3d_adjoint_e_hooks<T, false>(p, t, row);
    });
  });
}

template <typename T>
inline void m3d_adjoint_h_row(const M3dParams<T>& p, const M3dUniformRows& uniform, int order,
                              int64_t shot, int64_t z, int64_t y, int64_t t) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    if (p.tangent) {  // second order's scatter: model coefficients only
      m3d_adjoint_h_hooks<T, true>(p, t, [&](auto image) {
        m3d_adjoint_h_row_o<T, O>(p, shot, z, y, image, ModelCoefficients{});
      });
      return;
    }
    with_coefficients(p, uniform.h, shot, z, y, [&](auto coef) {
      m3d_adjoint_h_hooks<T, false>(
          p, t, [&](auto image) { m3d_adjoint_h_row_o<T, O>(p, shot, z, y, image, coef); });
    });
  });
}

template <typename T>
inline void m3d_adjoint_gather_row(const M3dParams<T>& p, int order, int64_t shot, int64_t z,
                                   int64_t y) {
  with_order(order, [&](auto o) {
    constexpr int O = decltype(o)::value;
    constexpr int M = Stencil<O>::M;
#pragma omp simd
    for (int64_t x = M; x < p.nx - M + 1; ++x) m3d_adjoint_gather_cell<T, O>(p, shot, z, y, x);
  });
}

}  // namespace cpu
}  // namespace wc
