// Compiler glue shared by the CPU (C++17) and GPU (NVRTC) builds of the kernels.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define WC_HD __host__ __device__ __forceinline__
#define WC_CUDA 1
#elif defined(__GNUC__) || defined(__clang__)
// Cell updates must inline into the vectorized row loops; without the
// attribute GCC gives up on the order-8 updates once all orders share one
// translation unit (3x slower).
#define WC_HD inline __attribute__((always_inline))
#define WC_CUDA 0
#else
#define WC_HD inline
#define WC_CUDA 0
#endif

#if !defined(__CUDACC_RTC__)
#include <cstdint>
#else
// NVRTC has no standard headers; the few integer types wavecore needs.
typedef long long int64_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
#endif

#if defined(__GNUC__) || defined(__clang__) || defined(__CUDACC__)
#define WC_RESTRICT __restrict__
#else
#define WC_RESTRICT
#endif

namespace wc {

// Non-deduced context: `typename same<T>::type*` accepts nullptr for a T*.
template <typename T>
struct same {
  using type = T;
};

}  // namespace wc
