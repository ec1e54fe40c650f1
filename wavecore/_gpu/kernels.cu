// CUDA kernels of wavecore: thin wrappers that map one thread to one cell and
// call the per-cell updates of wavecore/_csrc (the only place the physics is
// written). Assembled with the header text and compiled by NVRTC through CuPy
// (wavecore/_gpu/source.py); compiled as C++ with a grid/block emulation
// (wavecore/_gpu/emulate.h) so that CI runs the same kernels on the CPU.
//
// Launch geometry (wavecore/_gpu/launch.py): x and y of the thread grid run
// over the domain columns and rows, z over shots (TM2D) or shots x planes
// (3-D); the source/receiver kernels take one thread per shot. Every kernel
// takes the parameter struct by value and the internal step t.
#include "wc_maxwell3d.h"
#include "wc_tm2d.h"

namespace wc {
namespace gpu {

template <bool B>
struct Flag {
  static constexpr bool value = B;
};

// f(Flag<flag>{}) for a run-time flag: the template flags of the cell updates.
template <typename F>
WC_HD void with_flag(bool flag, F&& f) {
  if (flag) {
    f(Flag<true>{});
  } else {
    f(Flag<false>{});
  }
}

// f(hook, hook) for the snapshots of step t: `None` (NoStore or NoImage) when
// nothing is stored or imaged at t, else make(zero of the stored type, k) for
// k = 0, 1 in the working precision or bf16.
template <typename T, typename None, typename P, typename Make, typename F>
WC_HD void with_hooks(const P& p, int64_t t, bool active, Make&& make, F&& f) {
  if (!active || snapshot_weight<T>(p, t) == T(0)) {
    f(None{}, None{});
  } else {
    with_snapshot_type<T>(p, [&](auto zero) { f(make(zero, 0), make(zero, 1)); });
  }
}

struct Cell {
  int64_t shot, z, y, x;
  bool inside;
};

// The cell of this thread in a TM2D launch (z unused).
template <int ORDER>
WC_HD Cell tm2d_cell(int64_t ny, int64_t nx) {
  constexpr int M = Stencil<ORDER>::M;
  Cell c;
  c.x = M + int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  c.y = M + int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  c.shot = blockIdx.z;
  c.z = 0;
  c.inside = c.x < nx - M + 1 && c.y < ny - M + 1;
  return c;
}

// The cell of this thread in a 3-D launch: blockIdx.z = shot * planes + plane.
template <int ORDER>
WC_HD Cell m3d_cell(int64_t nz, int64_t ny, int64_t nx) {
  constexpr int M = Stencil<ORDER>::M;
  const int64_t planes = nz - 2 * M + 1;
  Cell c;
  c.x = M + int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  c.y = M + int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  c.shot = int64_t(blockIdx.z) / planes;
  c.z = M + int64_t(blockIdx.z) % planes;
  c.inside = c.x < nx - M + 1 && c.y < ny - M + 1;
  return c;
}

WC_HD int64_t shot_thread() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }

// ---- TM2D ---------------------------------------------------------------------

// The H cells of a thread: fz(pz) for Hx (rows below the last), fx(px) for Hz
// (columns before the last), with the CPML flags; the E cell: f(pz, px).
template <typename T, int ORDER, typename FZ, typename FX>
WC_HD void tm2d_h_flags(const Tm2dParams<T>& p, const Cell& c, FZ&& fz, FX&& fx) {
  constexpr int M = Stencil<ORDER>::M;
  if (c.y < p.ny - M) with_flag(tm2d_pml_row_h(p, c.y), fz);
  if (c.x < p.nx - M) with_flag(tm2d_pml_col_h(p, c.x), fx);
}

template <typename T, typename F>
WC_HD void tm2d_e_flags(const Tm2dParams<T>& p, const Cell& c, F&& f) {
  with_flag(tm2d_pml_row_e(p, c.y), [&](auto pz) {
    with_flag(tm2d_pml_col_e(p, c.x), [&](auto px) { f(pz, px); });
  });
}

// The hooks of a step (nothing, the stored snapshots or, in a tangent sweep,
// the secondary sources) are chosen by tm2d_h_hooks / tm2d_e_hooks, as on the
// CPU rows (wavecore/_cpu/wc_cpu_tm2d.h).
template <typename T, int ORDER>
__global__ void tm2d_h(const Tm2dParams<T> p, int64_t t) {
  const Cell c = tm2d_cell<ORDER>(p.ny, p.nx);
  if (!c.inside) return;
  constexpr int M = Stencil<ORDER>::M;
  const Tm2dPsiIndex q = tm2d_psi_indices<T, M, true>(p, c.shot, c.y, c.x);
  tm2d_h_hooks(p, t, [&](auto store_z, auto store_x) {
    tm2d_h_flags<T, ORDER>(
        p, c,
        [&](auto pz) {
          tm2d_hx_cell<T, ORDER, decltype(pz)::value>(p, c.shot, c.y, c.x, q, store_z);
        },
        [&](auto px) {
          tm2d_hz_cell<T, ORDER, decltype(px)::value>(p, c.shot, c.y, c.x, q, store_x);
        });
  });
}

template <typename T, int ORDER, bool POLES>
WC_HD void tm2d_e_step(const Tm2dParams<T>& p, int64_t t) {
  const Cell c = tm2d_cell<ORDER>(p.ny, p.nx);
  if (!c.inside) return;
  constexpr int M = Stencil<ORDER>::M;
  const Tm2dPsiIndex q = tm2d_psi_indices<T, M, false>(p, c.shot, c.y, c.x);
  tm2d_e_hooks<T, POLES, 0>(p, t, [&](auto store, auto debye) {
    tm2d_e_flags(p, c, [&](auto pz, auto px) {
      tm2d_ey_cell<T, ORDER, decltype(pz)::value, decltype(px)::value>(p, c.shot, c.y, c.x, q,
                                                                      store, debye);
    });
  });
}

template <typename T, int ORDER>
__global__ void tm2d_e(const Tm2dParams<T> p, int64_t t) {
  tm2d_e_step<T, ORDER, false>(p, t);
}

// The E kernel of a run with Debye poles (n_poles > 0; a run without takes
// tm2d_e, which compiles the poles out): the cell updates its poles too, and
// a stored step keeps their snapshots (P before the update, E_new + E_old).
template <typename T, int ORDER>
__global__ void tm2d_debye_e(const Tm2dParams<T> p, int64_t t) {
  tm2d_e_step<T, ORDER, true>(p, t);
}

template <typename T>
__global__ void tm2d_sources_receivers(const Tm2dParams<T> p, int64_t t) {
  const int64_t shot = shot_thread();
  if (shot >= p.n_shots) return;
  tm2d_inject_sources(p, shot, t);
  tm2d_record_receivers(p, shot, t);
}

template <typename T>
__global__ void tm2d_adjoint_rs(const Tm2dParams<T> p, int64_t t) {
  const int64_t shot = shot_thread();
  if (shot < p.n_shots) tm2d_adjoint_receivers_sources(p, shot, t);
}

template <typename T, int ORDER>
__global__ void tm2d_adjoint_e(const Tm2dParams<T> p, int64_t t) {
  const Cell c = tm2d_cell<ORDER>(p.ny, p.nx);
  if (!c.inside) return;
  constexpr int M = Stencil<ORDER>::M;
  const Tm2dPsiIndex q = tm2d_psi_indices<T, M, false>(p, c.shot, c.y, c.x);
  // the image, with second order's kept values or scatter (tm2d_adjoint_e_hooks)
  tm2d_adjoint_e_hooks(p, t, [&](auto image) {
    tm2d_e_flags(p, c, [&](auto pz, auto px) {
      tm2d_adjoint_ey_cell<T, ORDER, decltype(pz)::value, decltype(px)::value>(
          p, c.shot, c.y, c.x, q, image);
    });
  });
}

// Step A with Debye poles: the adjoint of E is folded with the poles'
// adjoints; a stored step accumulates the gradients of ca, cb (when asked
// for) and of the pole coefficients (when asked for), with second order's
// kept values or scatter (tm2d_debye_adjoint_e_hooks).
template <typename T, int ORDER>
__global__ void tm2d_debye_adjoint_e(const Tm2dParams<T> p, int64_t t) {
  const Cell c = tm2d_cell<ORDER>(p.ny, p.nx);
  if (!c.inside) return;
  constexpr int M = Stencil<ORDER>::M;
  const Tm2dPsiIndex q = tm2d_psi_indices<T, M, false>(p, c.shot, c.y, c.x);
  tm2d_debye_adjoint_e_hooks<T, 0>(p, t, [&](auto image, auto debye) {
    tm2d_e_flags(p, c, [&](auto pz, auto px) {
      tm2d_adjoint_ey_cell<T, ORDER, decltype(pz)::value, decltype(px)::value>(
          p, c.shot, c.y, c.x, q, image, debye);
    });
  });
}

template <typename T, int ORDER>
__global__ void tm2d_adjoint_h(const Tm2dParams<T> p, int64_t t) {
  const Cell c = tm2d_cell<ORDER>(p.ny, p.nx);
  if (!c.inside) return;
  constexpr int M = Stencil<ORDER>::M;
  const Tm2dPsiIndex q = tm2d_psi_indices<T, M, true>(p, c.shot, c.y, c.x);
  tm2d_adjoint_h_hooks(p, t, [&](auto image_z, auto image_x) {
    tm2d_h_flags<T, ORDER>(
        p, c,
        [&](auto pz) {
          tm2d_adjoint_hx_cell<T, ORDER, decltype(pz)::value>(p, c.shot, c.y, c.x, q, image_z);
        },
        [&](auto px) {
          tm2d_adjoint_hz_cell<T, ORDER, decltype(px)::value>(p, c.shot, c.y, c.x, q, image_x);
        });
  });
}

template <typename T, int ORDER>
__global__ void tm2d_adjoint_gather(const Tm2dParams<T> p, int64_t t) {
  const Cell c = tm2d_cell<ORDER>(p.ny, p.nx);
  if (c.inside) tm2d_adjoint_gather_cell<T, ORDER>(p, c.shot, c.y, c.x);
}

// ---- 3-D ----------------------------------------------------------------------
//
// Every cell takes the checked (EDGE) H variant: on a GPU the three compares
// cost nothing next to the memory traffic, and it halves the instantiations.

template <typename T, int ORDER, typename F>
WC_HD void m3d_h_flags(const M3dParams<T>& p, const Cell& c, F&& f) {
  with_flag(m3d_pml_h(c.z, p.pml_z0, p.pml_z1), [&](auto pz) {
    with_flag(m3d_pml_h(c.y, p.pml_y0, p.pml_y1), [&](auto py) {
      with_flag(m3d_pml_h(c.x, p.pml_x0, p.pml_x1), [&](auto px) { f(pz, py, px); });
    });
  });
}

template <typename T, int ORDER, typename F>
WC_HD void m3d_e_flags(const M3dParams<T>& p, const Cell& c, F&& f) {
  with_flag(m3d_pml_e(c.z, p.pml_z0, p.pml_z1), [&](auto pz) {
    with_flag(m3d_pml_e(c.y, p.pml_y0, p.pml_y1), [&](auto py) {
      with_flag(m3d_pml_e(c.x, p.pml_x0, p.pml_x1), [&](auto px) { f(pz, py, px); });
    });
  });
}

// The hooks of a step are chosen by m3d_h_hooks / m3d_e_hooks (as on the CPU
// rows of wavecore/_cpu/wc_cpu_maxwell3d.h).
template <typename T, int ORDER>
__global__ void m3d_h(const M3dParams<T> p, int64_t t) {
  constexpr int M = Stencil<ORDER>::M;
  const Cell c = m3d_cell<ORDER>(p.nz, p.ny, p.nx);
  if (!c.inside) return;
  const M3dPsiIndex q = m3d_psi_indices<T, M, true>(p, c.shot, c.z, c.y, c.x);
  auto run = [&](auto store) {
    m3d_h_flags<T, ORDER>(p, c, [&](auto pz, auto py, auto px) {
      m3d_h_cell<T, ORDER, decltype(pz)::value, decltype(py)::value, decltype(px)::value, true>(
          p, c.shot, c.z, c.y, c.x, q, store);
    });
  };
  if (p.tangent)
    m3d_h_hooks<T, true>(p, t, run);
  else
    m3d_h_hooks<T, false>(p, t, run);
}

template <typename T, int ORDER, bool POLES>
WC_HD void m3d_e_step(const M3dParams<T>& p, int64_t t) {
  constexpr int M = Stencil<ORDER>::M;
  const Cell c = m3d_cell<ORDER>(p.nz, p.ny, p.nx);
  if (!c.inside) return;
  const M3dPsiIndex q = m3d_psi_indices<T, M, false>(p, c.shot, c.z, c.y, c.x);
  auto run = [&](auto store_e, auto store_c, auto debye) {
    m3d_e_flags<T, ORDER>(p, c, [&](auto pz, auto py, auto px) {
      m3d_e_cell<T, ORDER, decltype(pz)::value, decltype(py)::value, decltype(px)::value>(
          p, c.shot, c.z, c.y, c.x, q, store_e, store_c, ModelCoefficients{}, debye);
    });
  };
  if (p.tangent)
    m3d_e_hooks<T, POLES, true>(p, t, run);
  else
    m3d_e_hooks<T, POLES, false>(p, t, run);
}

template <typename T, int ORDER>
__global__ void m3d_e(const M3dParams<T> p, int64_t t) {
  m3d_e_step<T, ORDER, false>(p, t);
}

// The E kernel of a 3-D run with Debye poles (as tm2d_debye_e; each E
// component has its poles).
template <typename T, int ORDER>
__global__ void m3d_debye_e(const M3dParams<T> p, int64_t t) {
  m3d_e_step<T, ORDER, true>(p, t);
}

template <typename T>
__global__ void m3d_sources_receivers(const M3dParams<T> p, int64_t t) {
  const int64_t shot = shot_thread();
  if (shot >= p.n_shots) return;
  m3d_inject_sources(p, shot, t);
  m3d_record_receivers(p, shot, t);
}

template <typename T>
__global__ void m3d_adjoint_rs(const M3dParams<T> p, int64_t t) {
  const int64_t shot = shot_thread();
  if (shot < p.n_shots) m3d_adjoint_receivers_sources(p, shot, t);
}

template <typename T, int ORDER>
__global__ void m3d_adjoint_e(const M3dParams<T> p, int64_t t) {
  constexpr int M = Stencil<ORDER>::M;
  const Cell c = m3d_cell<ORDER>(p.nz, p.ny, p.nx);
  if (!c.inside) return;
  const M3dPsiIndex q = m3d_psi_indices<T, M, false>(p, c.shot, c.z, c.y, c.x);
  auto run = [&](auto image) {
    m3d_e_flags<T, ORDER>(p, c, [&](auto pz, auto py, auto px) {
      m3d_adjoint_e_cell<T, ORDER, decltype(pz)::value, decltype(py)::value,
                         decltype(px)::value>(p, c.shot, c.z, c.y, c.x, q, image);
    });
  };
  // the image, with second order's kept values or scatter (m3d_adjoint_e_hooks)
  if (p.tangent)
    m3d_adjoint_e_hooks<T, true>(p, t, run);
  else
    m3d_adjoint_e_hooks<T, false>(p, t, run);
}

// Step A of a 3-D run with Debye poles (as tm2d_debye_adjoint_e;
// m3d_debye_adjoint_e_hooks).
template <typename T, int ORDER>
__global__ void m3d_debye_adjoint_e(const M3dParams<T> p, int64_t t) {
  constexpr int M = Stencil<ORDER>::M;
  const Cell c = m3d_cell<ORDER>(p.nz, p.ny, p.nx);
  if (!c.inside) return;
  const M3dPsiIndex q = m3d_psi_indices<T, M, false>(p, c.shot, c.z, c.y, c.x);
  auto run = [&](auto image, auto debye) {
    m3d_e_flags<T, ORDER>(p, c, [&](auto pz, auto py, auto px) {
      m3d_adjoint_e_cell<T, ORDER, decltype(pz)::value, decltype(py)::value,
                         decltype(px)::value>(p, c.shot, c.z, c.y, c.x, q, image,
                                              ModelCoefficients{}, debye);
    });
  };
  if (p.tangent)
    m3d_debye_adjoint_e_hooks<T, true>(p, t, run);
  else
    m3d_debye_adjoint_e_hooks<T, false>(p, t, run);
}

template <typename T, int ORDER>
__global__ void m3d_adjoint_h(const M3dParams<T> p, int64_t t) {
  constexpr int M = Stencil<ORDER>::M;
  const Cell c = m3d_cell<ORDER>(p.nz, p.ny, p.nx);
  if (!c.inside) return;
  const M3dPsiIndex q = m3d_psi_indices<T, M, true>(p, c.shot, c.z, c.y, c.x);
  auto run = [&](auto image) {
    m3d_h_flags<T, ORDER>(p, c, [&](auto pz, auto py, auto px) {
      m3d_adjoint_h_cell<T, ORDER, decltype(pz)::value, decltype(py)::value,
                         decltype(px)::value, true>(p, c.shot, c.z, c.y, c.x, q, image);
    });
  };
  if (p.tangent)
    m3d_adjoint_h_hooks<T, true>(p, t, run);
  else
    m3d_adjoint_h_hooks<T, false>(p, t, run);
}

template <typename T, int ORDER>
__global__ void m3d_adjoint_gather(const M3dParams<T> p, int64_t t) {
  const Cell c = m3d_cell<ORDER>(p.nz, p.ny, p.nx);
  if (c.inside) m3d_adjoint_gather_cell<T, ORDER>(p, c.shot, c.z, c.y, c.x);
}

}  // namespace gpu
}  // namespace wc
