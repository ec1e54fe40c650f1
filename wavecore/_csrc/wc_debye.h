// Debye poles of one E value, shared by TM2D and 3-D, the CPU core and the
// CUDA kernels (docs/dispersive-media.md; DESIGN.md section 11).
//
// Per pole p of a cell, with the trapezoidal (bilinear) auxiliary equation of
// tau_p dP_p/dt + P_p = eps0 delta_eps_p E (wavecore/_debye.py makes the
// coefficients a_p, b_p, c_p and the Debye ca, cb):
//
//   E_new = ca E_old + cb curl + sum_p c_p P_p          (P of the previous step)
//   P_p  <- a_p P_p + b_p (E_new + E_old)
//
// The source term of the step is added to E_new afterwards, and with it
// b_p * term to each P_p of the source cell (debye_inject), so that P sees E
// with its source as in the scheme. Layouts (cells per shot n = numel): the
// polarization of shot s, pole p, cell j is pol[(s P + p) n + j]; the pole
// coefficients of model m are pole_x[(m P + p) n + j].
//
// Hooks, like Store/Image in wc_hooks.h: NoDebye compiles the poles out (the
// law of the run is not Debye); DebyeStore keeps the snapshots a gradient
// needs (P before the update, E_new + E_old), DebyeImage accumulates the
// coefficient gradients of the adjoint step and DebyeScatter adds the
// secondary sources of a tangent step (their transpose).
//
// Second order (wc_hooks.h; wavecore._sweeps): DebyeImage may keep the
// adjoints of the poles it images (`keep_pol`, beside the E image's kept
// adjoint lt); DebyeScatter may image the scattered poles against them
// (`kept_*`, into grad_*); and DebyeAdjointScatter adds, inside the transposed
// pole steps, the transpose of DebyeScatter's secondary sources with respect
// to the background.
#pragma once

#include "wc_codec.h"
#include "wc_config.h"

namespace wc {

// Where the poles of one cell are: pole p of the state at s + p * stride, of
// the coefficients at m + p * stride.
struct PoleIndex {
  int64_t s;       // (shot P) n + j
  int64_t m;       // (model P) n + j
  int64_t stride;  // n
};

struct NoDebye {
  static constexpr bool on = false;
  static constexpr bool scatters = false;
};

// Every hook below counts its poles at run time (poles = 0: the n_poles
// argument); Counted<H, NP> is hook H with NP poles fixed at compile time, so
// that the pole loops of a cell unroll and a row of cells vectorizes (the CPU
// rows choose it for 1-3 poles; the operations and their order are the same).
template <typename H, int NP>
struct Counted : H {
  static constexpr int poles = NP;
};

template <typename H>
WC_HD constexpr int64_t pole_count(int64_t n_poles) {
  return H::poles > 0 ? int64_t(H::poles) : n_poles;
}

// Poles on, nothing stored (or nothing accumulated, for the adjoint).
struct DebyeNoStore {
  static constexpr bool on = true;
  static constexpr bool scatters = false;
  static constexpr int poles = 0;
  template <typename... A>
  WC_HD void pole(A...) const {}
  template <typename T>
  WC_HD void sum(int, int64_t, T) const {}
};

// Snapshot slot arrays of the N E components of a cell (null: not stored).
template <typename StoreT, int N>
struct DebyeStore {
  static constexpr bool on = true;
  static constexpr bool scatters = false;
  static constexpr int poles = 0;
  StoreT* pol[N];   // P before the update, at the state index
  StoreT* esum[N];  // E_new + E_old, at the field index
  template <typename T>
  WC_HD void pole(int c, int64_t k, int64_t, T v, T) const {
    if (pol[c]) pol[c][k] = Codec<StoreT>::encode(v);
  }
  template <typename T>
  WC_HD void sum(int c, int64_t i, T v) const {
    if (esum[c]) esum[c][i] = Codec<StoreT>::encode(v);
  }
};

// The secondary sources of the pole terms of a tangent step, from the
// background's snapshots of the step (P before the update, E_new + E_old):
// weight * d c_p P_p in the E update and weight * (d a_p P_p + d b_p (E_new +
// E_old)) in the pole update, with d a_p, d b_p, d c_p the coefficient
// directions [n_models, P, n]. Nothing is stored. With `kept_pol` (second
// order) the scattered poles a cell hands to its store are imaged against the
// kept adjoints (lt of E at the field index, lam_P at the state index):
// grad_c += weight lt P, grad_a += weight lam_P P, grad_b += weight lam_P (E_new
// + E_old) (the source's share of the last: debye_inject_image).
template <typename T, typename StoreT, int N>
struct DebyeScatter {
  static constexpr bool on = true;
  static constexpr bool scatters = true;
  static constexpr int poles = 0;
  const StoreT* pol[N];
  const StoreT* esum[N];
  const T* da;
  const T* db;
  const T* dc;
  T weight;
  const StoreT* kept_e[N];    // null: nothing imaged
  const StoreT* kept_pol[N];
  T* grad_a;
  T* grad_b;
  T* grad_c;
  WC_HD void pole(int c, int64_t k, int64_t i, T before, T both) const {
    if (!kept_pol[c]) return;
    const T lam_p = weight * Codec<StoreT>::template decode<T>(kept_pol[c][k]);
    grad_c[k] += weight * Codec<StoreT>::template decode<T>(kept_e[c][i]) * before;
    grad_a[k] += lam_p * before;
    grad_b[k] += lam_p * both;
  }
  template <typename... A>
  WC_HD void sum(A...) const {}
  WC_HD T e_term(int c, int64_t k, int64_t m) const {
    return weight * dc[m] * Codec<StoreT>::template decode<T>(pol[c][k]);
  }
  WC_HD T pole_term(int c, int64_t k, int64_t m, int64_t i) const {
    return weight * (da[m] * Codec<StoreT>::template decode<T>(pol[c][k]) +
                     db[m] * Codec<StoreT>::template decode<T>(esum[c][i]));
  }
};

// The pole terms of the E update of component c: returns E_new with
// sum_p c_p P_p added, and advances every P_p of the cell (a tangent step,
// S::scatters: on the scattered state, plus the secondary sources).
template <typename T, typename S>
WC_HD T debye_e(T* pol, const T* pa, const T* pb, const T* pc, int64_t n_poles, PoleIndex q,
                int c, int64_t i, T e_old, T e_new, const S& store) {
  n_poles = pole_count<S>(n_poles);
  T s = pc[q.m] * pol[q.s];
  for (int64_t p = 1; p < n_poles; ++p) s += pc[q.m + p * q.stride] * pol[q.s + p * q.stride];
  if constexpr (S::scatters)
    for (int64_t p = 0; p < n_poles; ++p)
      s += store.e_term(c, q.s + p * q.stride, q.m + p * q.stride);
  e_new += s;
  const T both = e_new + e_old;
  store.sum(c, i, both);
  for (int64_t p = 0; p < n_poles; ++p) {
    const int64_t k = q.s + p * q.stride, m = q.m + p * q.stride;
    store.pole(c, k, i, pol[k], both);
    pol[k] = pa[m] * pol[k] + pb[m] * both;
    if constexpr (S::scatters) pol[k] += store.pole_term(c, k, m, i);
  }
  return e_new;
}

// The source term `term` added to E at a cell also reaches its poles; and the
// stored E_new + E_old of the step (esum, null when not stored) includes it.
template <typename T, typename StoreT>
WC_HD void debye_inject(T* pol, const T* pb, int64_t n_poles, PoleIndex q, T term,
                        StoreT* esum, int64_t i) {
  for (int64_t p = 0; p < n_poles; ++p)
    pol[q.s + p * q.stride] += pb[q.m + p * q.stride] * term;
  if (esum)
    esum[i] = Codec<StoreT>::encode(Codec<StoreT>::template decode<T>(esum[i]) + term);
}

// Second order, a tangent sweep imaging against kept adjoints: the source
// term's share of E_new + E_old, grad_b_p += weight lam_P_p term (kept_pol: the
// kept pole adjoints of the step at the state index; nothing when null).
template <typename T, typename StoreT>
WC_HD void debye_inject_image(T* grad_b, const StoreT* kept_pol, int64_t n_poles, PoleIndex q,
                              T weighted_term) {
  if (!kept_pol || !grad_b) return;
  for (int64_t p = 0; p < n_poles; ++p) {
    const int64_t k = q.s + p * q.stride;
    grad_b[k] += weighted_term * Codec<StoreT>::template decode<T>(kept_pol[k]);
  }
}

// Second order, a tangent adjoint sweep: sum_p weight d b_p lam_P_p (kept), what
// the adjoint of E_new + E_old gains from the transposed secondary sources
// d b_p (E_new + E_old) (the source term's adjoint gains it too); `kept` the
// step's kept pole adjoints (bf16 when `compressed`), 0 where null or db is.
template <typename T>
WC_HD T debye_kept_fold(const void* kept, bool compressed, const T* db, int64_t n_poles,
                        PoleIndex q, T weight) {
  if (kept == nullptr || db == nullptr) return T(0);
  T s = T(0);
  for (int64_t p = 0; p < n_poles; ++p) {
    const int64_t k = q.s + p * q.stride;
    const T lam_p = compressed ? Codec<bf16>::template decode<T>(static_cast<const bf16*>(kept)[k])
                               : static_cast<const T*>(kept)[k];
    s += db[q.m + p * q.stride] * lam_p;
  }
  return weight * s;
}

// ---- adjoint -------------------------------------------------------------------

// sum_p b_p lam_P_p: what the adjoint of E_new gains through the pole updates.
template <typename T>
WC_HD T debye_fold(const T* lam_pol, const T* pb, int64_t n_poles, PoleIndex q) {
  T s = pb[q.m] * lam_pol[q.s];
  for (int64_t p = 1; p < n_poles; ++p) s += pb[q.m + p * q.stride] * lam_pol[q.s + p * q.stride];
  return s;
}

// grad_pole_c[p] += w lt P_p, grad_pole_a[p] += w lam_P_p P_p,
// grad_pole_b[p] += w lam_P_p (E_new + E_old): per shot [n_shots, P, n],
// summed over the N components; `keep_pol` (null: not kept) receives lam_P_p.
template <typename T, typename StoreT, int N>
struct DebyeImage {
  static constexpr bool on = true;
  static constexpr bool scatters = false;
  static constexpr int poles = 0;
  const StoreT* pol[N];
  const StoreT* esum[N];
  T* grad_a;
  T* grad_b;
  T* grad_c;
  T weight;
  StoreT* keep_pol[N];
  WC_HD void operator()(int c, int64_t k, int64_t i, T lt, T lam_pol) const {
    if (keep_pol[c]) keep_pol[c][k] = Codec<StoreT>::encode(lam_pol);
    const T before = Codec<StoreT>::template decode<T>(pol[c][k]);
    const T scaled = weight * lam_pol;
    grad_c[k] += weight * lt * before;
    grad_a[k] += scaled * before;
    grad_b[k] += scaled * Codec<StoreT>::template decode<T>(esum[c][i]);
  }
};

struct DebyeNoImage {
  static constexpr bool on = true;
  static constexpr bool scatters = false;
  static constexpr int poles = 0;
  template <typename... A>
  WC_HD void operator()(A...) const {}
};

// The image of the transposed pole steps (DebyeImage) that also adds the
// transpose of DebyeScatter's secondary sources with respect to the
// background, from the kept adjoints of an earlier adjoint sweep (lt of E at
// the field index, lam_P at the state index): fold_term = weight d b_p lam_P_p
// joins the adjoint of E_new + E_old, pole_term = weight (d a_p lam_P_p + d c_p
// lt) the adjoint of P_p before the update. The directions are the pole
// coefficients' own (never the bf16 increments').
template <typename T, typename StoreT, int N>
struct DebyeAdjointScatter : DebyeImage<T, StoreT, N> {
  static constexpr bool scatters = true;
  const StoreT* kept_e[N];
  const StoreT* kept_pol[N];
  const T* da;
  const T* db;
  const T* dc;
  WC_HD T fold_term(int c, int64_t k, int64_t m) const {
    return this->weight * db[m] * Codec<StoreT>::template decode<T>(kept_pol[c][k]);
  }
  WC_HD T pole_term(int c, int64_t k, int64_t m, int64_t i) const {
    return this->weight * (da[m] * Codec<StoreT>::template decode<T>(kept_pol[c][k]) +
                           dc[m] * Codec<StoreT>::template decode<T>(kept_e[c][i]));
  }
};

// The transposed pole steps of component c: with lam the adjoint of E_new
// (after receivers), returns lt = lam + sum_p b_p lam_P_p (the adjoint of
// E_new through everything that reads it) and sets `fold` to the pole part;
// lam_P_p <- a_p lam_P_p + c_p lt. The caller then forms the adjoints of
// E_old (ca lt + fold) and of the curl (cb lt). With a DebyeAdjointScatter
// (I::scatters) the fold and the pole adjoints gain its terms.
template <typename T, typename I>
WC_HD T debye_adjoint_e(T* lam_pol, const T* pa, const T* pb, const T* pc, int64_t n_poles,
                        PoleIndex q, int c, int64_t i, T lam, T& fold, const I& image) {
  n_poles = pole_count<I>(n_poles);
  fold = debye_fold(lam_pol, pb, n_poles, q);
  if constexpr (I::scatters)
    for (int64_t p = 0; p < n_poles; ++p)
      fold += image.fold_term(c, q.s + p * q.stride, q.m + p * q.stride);
  const T lt = lam + fold;
  for (int64_t p = 0; p < n_poles; ++p) {
    const int64_t k = q.s + p * q.stride, m = q.m + p * q.stride;
    image(c, k, i, lt, lam_pol[k]);
    lam_pol[k] = pa[m] * lam_pol[k] + pc[m] * lt;
    if constexpr (I::scatters) lam_pol[k] += image.pole_term(c, k, m, i);
  }
  return lt;
}

}  // namespace wc
