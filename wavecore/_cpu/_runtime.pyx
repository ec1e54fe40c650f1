# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Facts about the compiled CPU core: OpenMP, threads, denormal handling, build flags,
the variants of the kernel modules and the x86-64 levels this CPU runs.

Always built for the baseline target, so that it imports on every CPU."""

from cython.parallel cimport prange
from libc.stdint cimport uint64_t

cdef extern from "wc_cpu_runtime.h" namespace "wc::cpu" nogil:
    uint64_t ftz_enter()
    void ftz_exit(uint64_t old)
    bint ftz_active()
    bint openmp_compiled()
    int openmp_max_threads()
    int openmp_version()
    bint cpu_has_x86_64_v3()
    bint cpu_has_x86_64_v4()

cdef extern from "wc_cpu_runtime.h" nogil:
    const char* WC_BUILD_FLAGS
    const char* WC_BUILD_COMPILER
    const char* WC_VARIANTS


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


def variants():
    """The builds of the kernel modules: {variant: flags}, in order of preference
    (best last); the first is under the kernels' own module names (setup.py)."""
    table = {}
    for entry in WC_VARIANTS.decode().split(";"):
        if entry:
            name, _, flags = entry.partition(":")
            table[name] = flags
    return table


def cpu_levels():
    """The x86-64 micro-architecture levels that this CPU and its OS support:
    {"x86-64-v3": bool, "x86-64-v4": bool} (False on other architectures)."""
    return {"x86-64-v3": bool(cpu_has_x86_64_v3()), "x86-64-v4": bool(cpu_has_x86_64_v4())}


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
