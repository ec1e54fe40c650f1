// Per-thread floating-point environment and OpenMP facts for the CPU core.
#pragma once

#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define WC_FTZ_X86 1
#elif defined(__aarch64__)
#define WC_FTZ_ARM64 1
#endif

namespace wc {
namespace cpu {

// Flush denormal results to zero and treat denormal inputs as zero in the
// calling thread; returns the previous control word for ftz_exit. Decaying
// CPML tails otherwise produce denormals that slow x86 cores by 10-100x.
inline std::uint64_t ftz_enter() {
#if defined(WC_FTZ_X86)
  const unsigned int old = _mm_getcsr();
  _mm_setcsr(old | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
  return old;
#elif defined(WC_FTZ_ARM64)
  std::uint64_t old;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
  __asm__ __volatile__("msr fpcr, %0" : : "r"(old | (1ull << 24)));  // FZ
  return old;
#else
  return 0;
#endif
}

inline void ftz_exit(std::uint64_t old) {
#if defined(WC_FTZ_X86)
  _mm_setcsr(static_cast<unsigned int>(old));
#elif defined(WC_FTZ_ARM64)
  __asm__ __volatile__("msr fpcr, %0" : : "r"(old));
#else
  (void)old;
#endif
}

// True when this thread currently flushes denormals (for tests).
inline bool ftz_active() {
#if defined(WC_FTZ_X86)
  return (_mm_getcsr() & 0x8040u) == 0x8040u;
#elif defined(WC_FTZ_ARM64)
  std::uint64_t v;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
  return (v >> 24) & 1u;
#else
  return false;
#endif
}

// Barrier of the enclosing parallel region (orphaned directive); a no-op
// without OpenMP. Cython's prange inside `with parallel()` is `omp for nowait`,
// so the time loops call this between dependent phases.
inline void barrier() {
#if defined(_OPENMP)
#pragma omp barrier
#endif
}

inline bool openmp_compiled() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

inline int openmp_max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int openmp_version() {
#if defined(_OPENMP)
  return _OPENMP;
#else
  return 0;
#endif
}

}  // namespace cpu
}  // namespace wc

#ifndef WC_BUILD_FLAGS
#define WC_BUILD_FLAGS "unknown"
#endif
#ifndef WC_BUILD_COMPILER
#define WC_BUILD_COMPILER "unknown"
#endif
