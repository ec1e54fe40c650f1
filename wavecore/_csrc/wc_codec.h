// Snapshot encodings: the working precision, or bfloat16 (round to nearest even).
#pragma once

#include "wc_config.h"

#if !defined(__CUDACC_RTC__)
#include <cstring>
#endif

namespace wc {

// bfloat16 stored as its 16 raw bits.
struct bf16 {
  uint16_t bits;
};

WC_HD uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}

WC_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
#endif
}

// Round-to-nearest-even float32 -> bfloat16 (finite inputs; NaN stays NaN).
WC_HD bf16 to_bf16(float v) {
  const uint32_t u = float_bits(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(rounded >> 16)};
}

WC_HD float from_bf16(bf16 b) { return bits_float(static_cast<uint32_t>(b.bits) << 16); }

// encode<StoreT>(value) / decode<T>(stored): identity for StoreT == T.
// `increments`: what an E update stores (see store_e_update in wc_hooks.h).
template <typename StoreT>
struct Codec {
  static constexpr bool increments = false;
  template <typename T>
  WC_HD static StoreT encode(T v) { return static_cast<StoreT>(v); }
  template <typename T>
  WC_HD static T decode(StoreT v) { return static_cast<T>(v); }
};

template <>
struct Codec<bf16> {
  static constexpr bool increments = true;
  template <typename T>
  WC_HD static bf16 encode(T v) { return to_bf16(static_cast<float>(v)); }
  template <typename T>
  WC_HD static T decode(bf16 v) { return static_cast<T>(from_bf16(v)); }
};

}  // namespace wc
