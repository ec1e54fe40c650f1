# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Facts about the compiled CPU core: OpenMP, threads, denormal handling, build flags."""

from cython.parallel cimport prange
from libc.stdint cimport uint64_t

cdef extern from "wc_cpu_runtime.h" namespace "wc::cpu" nogil:
    uint64_t ftz_enter()
    void ftz_exit(uint64_t old)
    bint ftz_active()
    bint openmp_compiled()
    int openmp_max_threads()
    int openmp_version()

cdef extern from "wc_cpu_runtime.h" nogil:
    const char* WC_BUILD_FLAGS
    const char* WC_BUILD_COMPILER


def openmp_enabled():
    """True when the extension was compiled and linked with OpenMP."""
    return bool(openmp_compiled())


def max_threads():
    """``omp_get_max_threads()`` (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return openmp_max_threads()


def openmp_spec():
    """The ``_OPENMP`` date macro of the compiler (e.g. 201511), 0 without OpenMP."""
    return openmp_version()


def build_flags():
    """The compiler and flags the extension was built with."""
    return {"compiler": WC_BUILD_COMPILER.decode(), "flags": WC_BUILD_FLAGS.decode()}


def caller_flushes_denormals():
    """Whether the calling thread currently flushes denormals (it should not)."""
    return bool(ftz_active())


def compute_threads_flush_denormals(int n_threads):
    """Enter a compute region as the time loops do and report whether every
    thread flushed denormals inside it and whether the caller's floating-point
    environment was restored afterwards."""
    cdef int flushed = 0
    cdef int total = 0
    cdef int i
    cdef uint64_t old
    before = bool(ftz_active())
    for i in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static",
                    chunksize=1):
        old = ftz_enter()
        flushed += ftz_active()
        total += 1
        ftz_exit(old)
    return {"threads": total, "flushed": flushed,
            "restored": bool(ftz_active()) == before}
