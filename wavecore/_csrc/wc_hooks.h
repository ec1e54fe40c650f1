// Snapshot hooks of the cell updates, shared by TM2D and 3-D.
//
// A forward cell hands the values the gradient needs to a Store; an adjoint
// cell hands its adjoint values to an Image, which accumulates
// `grad += weight * adjoint * snapshot`. The No* hooks compile to nothing, so
// a run without gradients pays nothing for them.
#pragma once

#include "wc_codec.h"
#include "wc_config.h"

namespace wc {

// Weight of the snapshot of step t in the gradient sum: the number of steps
// it stands for (k, or fewer for the last group); 0 if t is not stored. P is a
// parameter struct with snap_interval (k; 0 = nothing stored) and nt.
template <typename T, typename P>
WC_HD T snapshot_weight(const P& p, int64_t t) {
  if (p.snap_interval <= 0 || t % p.snap_interval != 0) return T(0);
  const int64_t left = p.nt - t;
  return T(left < p.snap_interval ? left : p.snap_interval);
}

// Offset of step t's slot in the chunk buffers ([slots, n_shots, numel]).
template <typename P>
WC_HD int64_t snapshot_offset(const P& p, int64_t t, int64_t numel) {
  return ((t - p.snap_t0) / p.snap_interval) * p.n_shots * numel;
}

struct NoStore {
  template <typename... A>
  WC_HD void operator()(int64_t, A...) const {}
};

struct NoImage {
  template <typename... A>
  WC_HD void operator()(int64_t, A...) const {}
};

// One or two scalar values per cell (TM2D).
template <typename StoreT>
struct Store {
  StoreT* a;  // slot array of the first value (null: not stored)
  StoreT* b;  // slot array of the second value
  template <typename T>
  WC_HD void operator()(int64_t i, T va) const {
    if (a) a[i] = Codec<StoreT>::encode(va);
  }
  template <typename T>
  WC_HD void operator()(int64_t i, T va, T vb) const {
    if (a) a[i] = Codec<StoreT>::encode(va);
    if (b) b[i] = Codec<StoreT>::encode(vb);
  }
};

// grad_a += weight * adjoint * a_snapshot (and the same for b).
template <typename T, typename StoreT>
struct Image {
  const StoreT* a;
  const StoreT* b;
  T* grad_a;
  T* grad_b;
  T weight;
  WC_HD void operator()(int64_t i, T adjoint) const {
    const T scaled = weight * adjoint;
    if (grad_a) grad_a[i] += scaled * Codec<StoreT>::template decode<T>(a[i]);
    if (grad_b) grad_b[i] += scaled * Codec<StoreT>::template decode<T>(b[i]);
  }
};

// A vector (x, y, z components) per cell (3-D): three slot arrays.
template <typename StoreT>
struct Store3 {
  StoreT* c[3];  // null: not stored
  template <typename T>
  WC_HD void operator()(int64_t i, T vx, T vy, T vz) const {
    if (c[0]) {
      c[0][i] = Codec<StoreT>::encode(vx);
      c[1][i] = Codec<StoreT>::encode(vy);
      c[2][i] = Codec<StoreT>::encode(vz);
    }
  }
};

// grad_a += weight * (adjoint . a_snapshot), the same for b (3-D vectors).
template <typename T, typename StoreT>
struct Image3 {
  const StoreT* a[3];
  const StoreT* b[3];
  T* grad_a;  // null: not accumulated
  T* grad_b;
  T weight;
  WC_HD T dot(const StoreT* const* s, int64_t i, T lx, T ly, T lz) const {
    return lx * Codec<StoreT>::template decode<T>(s[0][i]) +
           ly * Codec<StoreT>::template decode<T>(s[1][i]) +
           lz * Codec<StoreT>::template decode<T>(s[2][i]);
  }
  WC_HD void operator()(int64_t i, T lx, T ly, T lz) const {
    if (grad_a) grad_a[i] += weight * dot(a, i, lx, ly, lz);
    if (grad_b) grad_b[i] += weight * dot(b, i, lx, ly, lz);
  }
};

}  // namespace wc
