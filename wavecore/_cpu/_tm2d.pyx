# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""OpenMP time loops of the TM2D forward step and of its transpose.

A loop runs a chunk of steps inside one parallel region: every thread walks
the same time steps and shares the rows of all shots with the others (static
schedule), with an explicit barrier after each phase (H rows, E rows, sources
and receivers; in reverse: receivers and sources, E transpose, H gather, E
gather). The per-cell physics is in wavecore/_csrc/wc_tm2d.h.
"""

import numpy as np
cimport numpy as cnp
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t, uint64_t

from wavecore._cpu._buffers cimport check_adjoint_buffers, check_call, check_size
from wavecore._gpu.params import pack as pack_params

cnp.import_array()

ctypedef fused real_t:
    float
    double

cdef extern from "wc_tm2d.h" namespace "wc" nogil:
    # The struct is filled from wavecore._gpu.params.pack (its layout parsed from
    # the header); Cython only needs the members the loops below read.
    cdef cppclass Tm2dParams[T]:
        int64_t ny
        int64_t nx
        int64_t n_shots


    void tm2d_adjoint_receivers_sources[T](const Tm2dParams[T]& p, int64_t shot, int64_t t)

cdef extern from "wc_cpu_tm2d.h" namespace "wc::cpu" nogil:
    void tm2d_h_row[T](const Tm2dParams[T]& p, int order, int64_t shot, int64_t y, int64_t t)
    void tm2d_e_row[T](const Tm2dParams[T]& p, int order, int64_t shot, int64_t y, int64_t t)
    void tm2d_sources_receivers[T](const Tm2dParams[T]& p, int64_t shot, int64_t t)
    void tm2d_adjoint_e_row[T](const Tm2dParams[T]& p, int order, int64_t shot, int64_t y,
                               int64_t t)
    void tm2d_adjoint_h_row[T](const Tm2dParams[T]& p, int order, int64_t shot, int64_t y,
                               int64_t t)
    void tm2d_adjoint_gather_row[T](const Tm2dParams[T]& p, int order, int64_t shot, int64_t y)

cdef extern from "wc_cpu_runtime.h" namespace "wc::cpu" nogil:
    uint64_t ftz_enter()
    void ftz_exit(uint64_t old)
    void barrier()

cdef extern from "wc_cpu_runtime.h" nogil:
    const char* WC_BUILD_FLAGS
    const char* WC_VARIANT


def build():
    """The variant of this module ("baseline", "v3", ...) and its compiler flags."""
    return {"variant": WC_VARIANT.decode(), "flags": WC_BUILD_FLAGS.decode()}


cdef void _run(Tm2dParams[real_t]* p, int order, int64_t t0, int64_t n_steps,
               int n_threads) noexcept nogil:
    cdef int64_t m = order // 2
    cdef int64_t n_rows = p.ny - 2 * m + 1
    cdef int64_t n_items = p.n_shots * n_rows
    cdef int64_t t, item, shot
    cdef uint64_t fp_env
    with parallel(num_threads=n_threads):
        fp_env = ftz_enter()
        for t in range(t0, t0 + n_steps):
            # prange inside `parallel()` is `omp for nowait`: the barriers
            # order the phases (H reads E, E reads H, sources write E).
            for item in prange(n_items, schedule="static"):
                tm2d_h_row(p[0], order, item // n_rows, m + item % n_rows, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                tm2d_e_row(p[0], order, item // n_rows, m + item % n_rows, t)
            barrier()
            for shot in prange(p.n_shots, schedule="static"):
                tm2d_sources_receivers(p[0], shot, t)
            barrier()
        ftz_exit(fp_env)


cdef void _run_adjoint(Tm2dParams[real_t]* p, int order, int64_t t_end, int64_t n_steps,
                       int n_threads) noexcept nogil:
    cdef int64_t m = order // 2
    cdef int64_t n_rows = p.ny - 2 * m + 1
    cdef int64_t n_items = p.n_shots * n_rows
    cdef int64_t s, t, item, shot
    cdef uint64_t fp_env
    with parallel(num_threads=n_threads):
        fp_env = ftz_enter()
        for s in range(n_steps):
            t = t_end - 1 - s
            for shot in prange(p.n_shots, schedule="static"):
                tm2d_adjoint_receivers_sources(p[0], shot, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                tm2d_adjoint_e_row(p[0], order, item // n_rows, m + item % n_rows, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                tm2d_adjoint_h_row(p[0], order, item // n_rows, m + item % n_rows, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                tm2d_adjoint_gather_row(p[0], order, item // n_rows, m + item % n_rows)
            barrier()
        ftz_exit(fp_env)


_ADJOINT_BUFFERS = ("lam_ey", "lam_hx", "lam_hz", "lam_psi_ey_z", "lam_psi_ey_x",
                    "lam_psi_hx_z", "lam_psi_hz_x", "w_z", "w_x", "v_z", "v_x", "rec_grad",
                    "src_grad")


def adjoint(object buffers, int order, int64_t t_end, int64_t n_steps, int n_threads):
    """Run the transposed steps ``t_end - 1`` down to ``t_end - n_steps`` on the
    adjoint state in ``buffers`` (see the reverse step in wc_tm2d.h)."""
    check_adjoint_buffers(buffers, _ADJOINT_BUFFERS)
    _call(buffers, order, t_end, n_steps, n_threads, True)


def forward(object buffers, int order, int64_t t0, int64_t n_steps, int n_threads):
    """Advance the TM2D state in ``buffers`` by ``n_steps`` steps from internal step ``t0``.

    ``buffers`` carries the arrays named in ``Tm2dParams`` as attributes and a
    ``geometry`` dict of the sizes; it is filled by wavecore's CPU backend.
    """
    _call(buffers, order, t0, n_steps, n_threads, False)


cdef _call(object buffers, int order, int64_t t, int64_t n_steps, int n_threads, bint reverse):
    # The parameter struct of the buffers' dtype, packed with the layout parsed
    # from wc_tm2d.h (wavecore._gpu.params, shared with the CUDA kernels), and
    # the loop without the GIL; `packed` keeps the struct alive meanwhile.
    dtype = check_call(buffers, "ey", order, n_threads)
    packed = pack_params("tm2d", buffers, dtype)
    cdef void* data = cnp.PyArray_DATA(packed)
    if dtype == np.float32:
        check_size(packed, sizeof(Tm2dParams[float]))
        with nogil:
            _steps(<Tm2dParams[float]*> data, order, t, n_steps, n_threads, reverse)
    else:
        check_size(packed, sizeof(Tm2dParams[double]))
        with nogil:
            _steps(<Tm2dParams[double]*> data, order, t, n_steps, n_threads, reverse)


cdef void _steps(Tm2dParams[real_t]* p, int order, int64_t t, int64_t n_steps, int n_threads,
                 bint reverse) noexcept nogil:
    if reverse:
        _run_adjoint(p, order, t, n_steps, n_threads)
    else:
        _run(p, order, t, n_steps, n_threads)
