// Snapshot hooks of the cell updates, shared by TM2D and 3-D.
//
// A forward cell hands the values the gradient needs to a Store; an adjoint
// cell hands its adjoint values to an Image, which accumulates
// `grad += weight * adjoint * snapshot`; a tangent (linearized, Born) cell
// asks a Scatter for the secondary source `weight * d_coefficient * snapshot`
// of the background's stored step, the transpose of the Image (the forward
// cell runs on the scattered state; `scatters` tells it to add the term). The
// No* hooks compile to nothing, so a run without gradients pays nothing for
// them.
//
// Second order (second_vjp, wavecore._sweeps): an adjoint Image may also keep
// the adjoint values it images (`keep`); a tangent sweep's Scatter may image
// its scattered state against such kept values (`kept`, into grad_*); and an
// AdjointScatter, the transpose of a Scatter with respect to the background,
// adds `weight * d_coefficient * kept value` inside a transposed cell.
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

// f(zero) with `zero` a value of the element type of the run's snapshots:
// bf16{} when they are compressed, else T{} (the Store/Image hooks and the
// slot helpers are templates on that type: `using S = decltype(zero)`).
template <typename T, typename P, typename F>
WC_HD void with_snapshot_type(const P& p, F&& f) {
  if (p.snap_bf16) {
    f(bf16{});
  } else {
    f(T{});
  }
}

struct NoStore {
  static constexpr bool increments = false;
  static constexpr bool scatters = false;
  template <typename... A>
  WC_HD void operator()(int64_t, A...) const {}
};

struct NoImage {
  static constexpr bool scatters = false;
  template <typename... A>
  WC_HD void operator()(int64_t, A...) const {}
};

// One or two scalar values per cell (TM2D). The slot arrays a cell writes are
// all set: a hook function hands NoStore to a step that stores nothing (the
// arrays of a snapshot group, wavecore.Physics.snapshots, are set together),
// so the stores are unconditional and the CPU rows vectorize; a test of a
// pointer per cell kept them scalar (2.4x the cost of the plain E row).
template <typename StoreT>
struct Store {
  static constexpr bool increments = Codec<StoreT>::increments;
  static constexpr bool scatters = false;
  StoreT* a;  // slot array of the first value
  StoreT* b;  // slot array of the second value (two-value cells only)
  template <typename T>
  WC_HD void operator()(int64_t i, T va) const {
    a[i] = Codec<StoreT>::encode(va);
  }
  template <typename T>
  WC_HD void operator()(int64_t i, T va, T vb) const {
    a[i] = Codec<StoreT>::encode(va);
    b[i] = Codec<StoreT>::encode(vb);
  }
};

// grad_a += weight * adjoint * a_snapshot, and with N = 2 (the E update's ca,
// cb) the same for b; KEEPS (second order): `keep` receives the adjoint value
// itself. As for Store, every array is set (the accumulators of a gradient
// path, wavecore.Material.paths, are asked for together, with the path's
// snapshots): a hook function hands NoImage to a step without them, so the
// transposed rows vectorize. CHECKED instead tests each array per cell (null:
// skipped; keep too), for the rows of Debye runs, whose pole hooks test theirs
// too: one image type serves all their steps, so that those rows compile for
// few hook pairs.
template <typename T, typename StoreT, int N, bool KEEPS = false, bool CHECKED = false>
struct Image {
  static constexpr bool scatters = false;
  const StoreT* a;
  const StoreT* b;  // N = 2 only
  T* grad_a;
  T* grad_b;  // N = 2 only
  T weight;
  StoreT* keep;  // KEEPS or CHECKED only
  WC_HD static bool set(const void* q) { return !CHECKED || q != nullptr; }
  // This image, keeping the adjoint values in `into` as well.
  WC_HD Image<T, StoreT, N, true, CHECKED> keeping(StoreT* into) const {
    return {a, b, grad_a, grad_b, weight, into};
  }
  WC_HD void operator()(int64_t i, T adjoint) const {
    if constexpr (KEEPS || CHECKED)
      if (set(keep)) keep[i] = Codec<StoreT>::encode(adjoint);
    const T scaled = weight * adjoint;
    if (set(grad_a)) grad_a[i] += scaled * Codec<StoreT>::template decode<T>(a[i]);
    if constexpr (N == 2)
      if (set(grad_b)) grad_b[i] += scaled * Codec<StoreT>::template decode<T>(b[i]);
  }
};

template <typename T, typename StoreT>
using CheckedImage = Image<T, StoreT, 2, false, true>;

// A vector (x, y, z components) per cell (3-D): three slot arrays, all set
// (as Store: a step that stores nothing gets NoStore).
template <typename StoreT>
struct Store3 {
  static constexpr bool increments = Codec<StoreT>::increments;
  static constexpr bool scatters = false;
  StoreT* c[3];
  template <typename T>
  WC_HD void operator()(int64_t i, T vx, T vy, T vz) const {
    c[0][i] = Codec<StoreT>::encode(vx);
    c[1][i] = Codec<StoreT>::encode(vy);
    c[2][i] = Codec<StoreT>::encode(vz);
  }
};

// grad_a += weight * (adjoint . a_snapshot), with N = 2 the same for b (3-D
// vectors); KEEPS: `keep` receives the adjoint vector itself; CHECKED: as for
// Image.
template <typename T, typename StoreT, int N, bool KEEPS = false, bool CHECKED = false>
struct Image3 {
  static constexpr bool scatters = false;
  const StoreT* a[3];
  const StoreT* b[3];
  T* grad_a;
  T* grad_b;
  T weight;
  StoreT* keep[3];
  WC_HD static bool set(const void* q) { return !CHECKED || q != nullptr; }
  WC_HD Image3<T, StoreT, N, true, CHECKED> keeping(StoreT* const (&into)[3]) const {
    return {{a[0], a[1], a[2]}, {b[0], b[1], b[2]}, grad_a, grad_b, weight,
            {into[0], into[1], into[2]}};
  }
  WC_HD T dot(const StoreT* const* s, int64_t i, T lx, T ly, T lz) const {
    return lx * Codec<StoreT>::template decode<T>(s[0][i]) +
           ly * Codec<StoreT>::template decode<T>(s[1][i]) +
           lz * Codec<StoreT>::template decode<T>(s[2][i]);
  }
  WC_HD void operator()(int64_t i, T lx, T ly, T lz) const {
    if constexpr (KEEPS || CHECKED)
      if (set(keep[0])) {
        keep[0][i] = Codec<StoreT>::encode(lx);
        keep[1][i] = Codec<StoreT>::encode(ly);
        keep[2][i] = Codec<StoreT>::encode(lz);
      }
    if (set(grad_a)) grad_a[i] += weight * dot(a, i, lx, ly, lz);
    if constexpr (N == 2)
      if (set(grad_b)) grad_b[i] += weight * dot(b, i, lx, ly, lz);
  }
};

template <typename T, typename StoreT>
using CheckedImage3 = Image3<T, StoreT, 2, false, true>;

// The secondary source of one value per cell and step of a tangent run,
// weight * (da a_snapshot + db b_snapshot) with N = 2 (the E update: da, db the
// directions of ca and cb, or in bf16 of the increment and the mean) or
// weight * da a_snapshot with N = 1 (TM2D's H: the direction of cq). The
// directions are read at the model index m, the snapshots at the field index
// i. As a store it keeps nothing: a tangent run reads the background's slots.
// With `kept` (second order) the values a cell hands to its store, the
// scattered state's, are imaged against the kept adjoint values:
// grad_a += weight * kept * value_a (and grad_b with value_b, N = 2).
template <typename T, typename StoreT, int N>
struct Scatter {
  static constexpr bool increments = false;
  static constexpr bool scatters = true;
  const StoreT* a;
  const StoreT* b;  // N = 2 only
  const T* da;
  const T* db;
  T weight;
  const StoreT* kept;  // null: nothing imaged
  T* grad_a;
  T* grad_b;
  WC_HD void operator()(int64_t i, T va) const {
    if (kept && grad_a) grad_a[i] += weight * Codec<StoreT>::template decode<T>(kept[i]) * va;
  }
  WC_HD void operator()(int64_t i, T va, T vb) const {
    if (!kept) return;
    const T k = weight * Codec<StoreT>::template decode<T>(kept[i]);
    if (grad_a) grad_a[i] += k * va;
    if (grad_b) grad_b[i] += k * vb;
  }
  WC_HD T term(int64_t i, int64_t m) const {
    T s = da[m] * Codec<StoreT>::template decode<T>(a[i]);
    if constexpr (N == 2) s += db[m] * Codec<StoreT>::template decode<T>(b[i]);
    return weight * s;
  }
};

// The same for a vector per cell (3-D): component c is
// weight * d a_snapshot[c] with one direction d (of ca, cb or cq). With
// `kept` (second order) the vector a cell hands to its store is imaged
// against the kept adjoint vector: grad += weight * (kept . value).
template <typename T, typename StoreT>
struct Scatter3 {
  static constexpr bool increments = false;
  static constexpr bool scatters = true;
  const StoreT* a[3];
  const T* d;
  T weight;
  const StoreT* kept[3];  // null: nothing imaged
  T* grad;
  WC_HD void operator()(int64_t i, T vx, T vy, T vz) const {
    if (!kept[0] || !grad) return;
    grad[i] += weight * (Codec<StoreT>::template decode<T>(kept[0][i]) * vx +
                         Codec<StoreT>::template decode<T>(kept[1][i]) * vy +
                         Codec<StoreT>::template decode<T>(kept[2][i]) * vz);
  }
  WC_HD T term(int c, int64_t i, int64_t m) const {
    return weight * d[m] * Codec<StoreT>::template decode<T>(a[c][i]);
  }
};

// The image of a transposed cell (grad += weight * adjoint * snapshot; Base an
// Image, CheckedImage or Image3 without `keep`) that also adds the transpose
// of a tangent's secondary source with respect to the background: `term_a` =
// weight * da * kept and `term_b` = weight * db * kept, kept the adjoint values
// an earlier adjoint sweep kept at the same cell and step (its Image's
// `keep`). The transposed E cell adds term_b where it forms cb lam (before the
// CPML stretch) and term_a to ca lam; an H cell adds term_a (da the direction
// of cq) to cq lam. The directions are those of the coefficients themselves
// (never the bf16 increments').
template <typename T, typename StoreT, typename Base>
struct AdjointScatter : Base {
  static constexpr bool scatters = true;
  const StoreT* kept;
  const T* da;
  const T* db;
  WC_HD T term_a(int64_t i, int64_t m) const {
    return this->weight * da[m] * Codec<StoreT>::template decode<T>(kept[i]);
  }
  WC_HD T term_b(int64_t i, int64_t m) const {
    return this->weight * db[m] * Codec<StoreT>::template decode<T>(kept[i]);
  }
};

// The same for a vector per cell (3-D): component c of term_a is
// weight * da * kept[c] (term_b with db).
template <typename T, typename StoreT, typename Base>
struct AdjointScatter3 : Base {
  static constexpr bool scatters = true;
  const StoreT* kept[3];
  const T* da;
  const T* db;
  WC_HD T term_a(int c, int64_t i, int64_t m) const {
    return this->weight * da[m] * Codec<StoreT>::template decode<T>(kept[c][i]);
  }
  WC_HD T term_b(int c, int64_t i, int64_t m) const {
    return this->weight * db[m] * Codec<StoreT>::template decode<T>(kept[c][i]);
  }
};

// What an E update `E_new = ca E_old + cb curl` hands to its snapshots, the
// (E_old, curl) pair the gradients of ca and cb need, or, for bf16, the
// increment E_new - E_old and the mean (E_old + E_new) / 2. They carry the same
// information (wavecore/_gradient.py turns one into the other), but the
// gradient of epsilon is a multiple of the increment's alone, which E_old and
// curl give only as a difference of two large terms: rounded to bfloat16 each,
// they cancel badly at source cells, where E has a large slowly varying part.
// Full precision keeps the pair of the derivation (and TIDE's numbers).
template <typename S, typename T>
WC_HD void store_e_update(const S& store, int64_t i, T e_old, T curl, T e_new) {
  if constexpr (S::increments) {
    store(i, e_new - e_old, T(0.5) * (e_old + e_new));
  } else {
    store(i, e_old, curl);
  }
}

// The same for a vector E (3-D): `store_e` gets E_old or the increment,
// `store_c` the curl or the mean.
template <typename S, typename T>
WC_HD void store_e_update(const S& store_e, const S& store_c, int64_t i, const T (&e_old)[3],
                          const T (&curl)[3], const T (&e_new)[3]) {
  if constexpr (S::increments) {
    store_e(i, e_new[0] - e_old[0], e_new[1] - e_old[1], e_new[2] - e_old[2]);
    store_c(i, T(0.5) * (e_old[0] + e_new[0]), T(0.5) * (e_old[1] + e_new[1]),
            T(0.5) * (e_old[2] + e_new[2]));
  } else {
    store_e(i, e_old[0], e_old[1], e_old[2]);
    store_c(i, curl[0], curl[1], curl[2]);
  }
}

}  // namespace wc
