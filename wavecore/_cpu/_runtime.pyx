# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Facts about the compiled CPU core: OpenMP, threads, denormal handling, build flags,
the variants of the kernel modules and the x86-64 levels this CPU runs.

Always built for the baseline target, so that it imports on every CPU. Also two
test hooks that run shared C++ code with the core's compiler flags: the
bfloat16 snapshot codec of ``wc_codec.h`` (:func:`bf16_encode`,
:func:`bf16_decode`) and a floating-point probe (:func:`float_semantics`).
"""

from cython.parallel cimport prange
from libc.math cimport isnan
from libc.stdint cimport uint16_t, uint64_t

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

cdef extern from "wc_codec.h" namespace "wc" nogil:
    cdef struct bf16:
        uint16_t bits
    bf16 to_bf16(float v)
    float from_bf16(bf16 b)


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


def bf16_encode(const float[::1] values, uint16_t[::1] out):
    """Test hook: ``out[i] = wc::to_bf16(values[i]).bits``, the encoder the
    compiled core applies to bf16 snapshots (``wc_codec.h``), compiled with the
    core's flags. Not part of the API; tests compare it with
    :func:`wavecore.storage.to_bf16`."""
    if out.shape[0] != values.shape[0]:
        raise ValueError("values and out must have the same length")
    cdef Py_ssize_t i
    with nogil:
        for i in range(values.shape[0]):
            out[i] = to_bf16(values[i]).bits


def bf16_decode(const uint16_t[::1] bits, float[::1] out):
    """Test hook: ``out[i] = wc::from_bf16(bits[i])`` (``wc_codec.h``)."""
    if out.shape[0] != bits.shape[0]:
        raise ValueError("bits and out must have the same length")
    cdef Py_ssize_t i
    cdef bf16 b
    with nogil:
        for i in range(bits.shape[0]):
            b.bits = bits[i]
            out[i] = from_bf16(b)


def float_semantics(const double[::1] a, const double[::1] b, const double[::1] c,
                    double[::1] out, double nan):
    """Test hook: ``out[i] = a[i] * b[i] + c[i]`` and ``isnan(nan)``, compiled
    with the flags of the whole core (one build_ext pass compiles every
    extension with them). Contraction into a fused multiply-add
    (``-ffp-contract=fast`` on an FMA machine) rounds once instead of twice and
    shows in ``out``; ``-ffast-math`` (finite-math-only) folds ``isnan`` to
    false. Returns ``isnan(nan)``."""
    cdef Py_ssize_t i
    cdef bint is_nan
    with nogil:
        for i in range(a.shape[0]):
            out[i] = a[i] * b[i] + c[i]
        is_nan = isnan(nan)
    return bool(is_nan)
