// Compile-time dispatch helpers of the CPU row loops (TM2D and 3-D): turn a
// run-time stencil order or flag into a template argument, and split a row
// into its CPML and interior segments.
#pragma once

#include <cstdint>
#include <type_traits>

// A cell lambda called inside a vectorized row loop must inline like the cell
// updates themselves (without it GCC calls it and the loop runs ~40 % slower).
#if defined(__GNUC__) || defined(__clang__)
#define WC_INLINE_LAMBDA __attribute__((always_inline))
#else
#define WC_INLINE_LAMBDA
#endif

namespace wc {
namespace cpu {

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

// Call f(bool_constant) for a runtime flag.
template <typename F>
inline void with_flag(bool flag, F&& f) {
  if (flag) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// f(x0, x1, pml) for the left slab, the interior and the right slab of a row;
// `right` is the first column of the right slab (E or H staggering).
template <typename F>
inline void by_segment(int64_t first, int64_t x0, int64_t right, int64_t end, F&& f) {
  f(first, x0, std::true_type{});
  f(x0, right, std::false_type{});
  f(right, end, std::true_type{});
}

}  // namespace cpu
}  // namespace wc
