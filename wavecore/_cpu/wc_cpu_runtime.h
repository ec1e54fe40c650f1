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

// Whether the running CPU, and the OS (it must save the AVX / AVX-512
// registers), can run code built for the x86-64 micro-architecture levels of
// the module variants: level 3 (AVX2, FMA, BMI1/2, ...) and level 4 (level 3
// with AVX-512 F/BW/CD/DQ/VL). GCC >= 12 tests the levels themselves; other
// compilers test their defining features (AVX2, FMA, BMI1/2; AVX-512
// F/BW/CD/DQ/VL). False on other architectures.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define WC_CPU_LEVELS_X86 1
#endif

inline bool cpu_has_x86_64_v3() {
#if defined(WC_CPU_LEVELS_X86)
  __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
  return __builtin_cpu_supports("x86-64-v3");
#else
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
#endif
#else
  return false;
#endif
}

inline bool cpu_has_x86_64_v4() {
#if defined(WC_CPU_LEVELS_X86)
  __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
  return __builtin_cpu_supports("x86-64-v4");
#else
  return cpu_has_x86_64_v3() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
#else
  return false;
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
// The module variant of a kernel module ("baseline", "v3", ...; setup.py) and,
// in _runtime, the variants of the build: "name:flags" entries joined by ";".
#ifndef WC_VARIANT
#define WC_VARIANT "unknown"
#endif
#ifndef WC_VARIANTS
#define WC_VARIANTS ""
#endif
