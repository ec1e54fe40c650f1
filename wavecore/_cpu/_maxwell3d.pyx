# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""OpenMP time loops of the 3-D Yee step and of its transpose.

As in the TM2D loops, a chunk of steps runs inside one parallel region: every
thread walks the same time steps and takes a static share of the rows (shot,
z, y) of all shots, with a barrier after each phase (H rows, E rows, sources
and receivers; in reverse: receivers and sources, E transpose, H transpose,
E gather). The per-cell physics is in wavecore/_csrc/wc_maxwell3d.h.
"""

import numpy as np
cimport numpy as cnp
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t, uint8_t, uint64_t

from wavecore._cpu._buffers cimport check_adjoint_buffers, check_call, check_size, optional_data
from wavecore._gpu.params import pack as pack_params

cnp.import_array()

ctypedef fused real_t:
    float
    double

cdef extern from "wc_maxwell3d.h" namespace "wc" nogil:
    # The struct is filled from wavecore._gpu.params.pack (its layout parsed from
    # the header); Cython only needs the members the loops below read.
    cdef cppclass M3dParams[T]:
        int64_t nz
        int64_t ny
        int64_t nx
        int64_t n_shots
        int64_t shots_per_model


    void m3d_adjoint_receivers_sources[T](const M3dParams[T]& p, int64_t shot, int64_t t)

cdef extern from "wc_cpu_maxwell3d.h" namespace "wc::cpu" nogil:
    cdef struct M3dUniformRows:
        const uint8_t* e
        const uint8_t* h
    void m3d_h_row[T](const M3dParams[T]& p, const M3dUniformRows& uniform, int order,
                      int64_t shot, int64_t z, int64_t y, int64_t t)
    void m3d_e_row[T](const M3dParams[T]& p, const M3dUniformRows& uniform, int order,
                      int64_t shot, int64_t z, int64_t y, int64_t t)
    void m3d_sources_receivers[T](const M3dParams[T]& p, int64_t shot, int64_t t)
    void m3d_adjoint_e_row[T](const M3dParams[T]& p, const M3dUniformRows& uniform, int order,
                              int64_t shot, int64_t z, int64_t y, int64_t t)
    void m3d_adjoint_h_row[T](const M3dParams[T]& p, const M3dUniformRows& uniform, int order,
                              int64_t shot, int64_t z, int64_t y, int64_t t)
    void m3d_adjoint_gather_row[T](const M3dParams[T]& p, int order, int64_t shot, int64_t z,
                                   int64_t y)

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


cdef void _run(M3dParams[real_t]* p, const M3dUniformRows* u, int order, int64_t t0,
               int64_t n_steps, int n_threads) noexcept nogil:
    cdef int64_t m = order // 2
    cdef int64_t n_y = p.ny - 2 * m + 1
    cdef int64_t n_rows = (p.nz - 2 * m + 1) * n_y
    cdef int64_t n_items = p.n_shots * n_rows
    cdef int64_t t, item, shot, row
    cdef uint64_t fp_env
    with parallel(num_threads=n_threads):
        fp_env = ftz_enter()
        for t in range(t0, t0 + n_steps):
            # prange inside `parallel()` is `omp for nowait`: the barriers
            # order the phases (H reads E, E reads H, sources write E).
            for item in prange(n_items, schedule="static"):
                row = item % n_rows
                m3d_h_row(p[0], u[0], order, item // n_rows, m + row // n_y, m + row % n_y, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                row = item % n_rows
                m3d_e_row(p[0], u[0], order, item // n_rows, m + row // n_y, m + row % n_y, t)
            barrier()
            for shot in prange(p.n_shots, schedule="static"):
                m3d_sources_receivers(p[0], shot, t)
            barrier()
        ftz_exit(fp_env)


cdef void _run_adjoint(M3dParams[real_t]* p, const M3dUniformRows* u, int order,
                       int64_t t_end, int64_t n_steps, int n_threads) noexcept nogil:
    cdef int64_t m = order // 2
    cdef int64_t n_y = p.ny - 2 * m + 1
    cdef int64_t n_rows = (p.nz - 2 * m + 1) * n_y
    cdef int64_t n_items = p.n_shots * n_rows
    cdef int64_t s, t, item, shot, row
    cdef uint64_t fp_env
    with parallel(num_threads=n_threads):
        fp_env = ftz_enter()
        for s in range(n_steps):
            t = t_end - 1 - s
            for shot in prange(p.n_shots, schedule="static"):
                m3d_adjoint_receivers_sources(p[0], shot, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                row = item % n_rows
                m3d_adjoint_e_row(p[0], u[0], order, item // n_rows, m + row // n_y, m + row % n_y, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                row = item % n_rows
                m3d_adjoint_h_row(p[0], u[0], order, item // n_rows, m + row // n_y, m + row % n_y, t)
            barrier()
            for item in prange(n_items, schedule="static"):
                row = item % n_rows
                m3d_adjoint_gather_row(p[0], order, item // n_rows, m + row // n_y,
                                       m + row % n_y)
            barrier()
        ftz_exit(fp_env)


ADJOINT_BUFFERS = (
    "lam_ex", "lam_ey", "lam_ez", "lam_hx", "lam_hy", "lam_hz", "lam_psi_ey_z",
    "lam_psi_ez_y", "lam_psi_ez_x", "lam_psi_ex_z", "lam_psi_ex_y", "lam_psi_ey_x",
    "lam_psi_hy_z", "lam_psi_hz_y", "lam_psi_hz_x", "lam_psi_hx_z", "lam_psi_hx_y",
    "lam_psi_hy_x", "w_hx_y", "w_hx_z", "w_hy_x", "w_hy_z", "w_hz_x", "w_hz_y", "v_ex_y",
    "v_ex_z", "v_ey_x", "v_ey_z", "v_ez_x", "v_ez_y", "rec_grad", "src_grad")


def adjoint(object buffers, int order, int64_t t_end, int64_t n_steps, int n_threads):
    """Run the transposed steps ``t_end - 1`` down to ``t_end - n_steps`` on the
    adjoint state in ``buffers`` (see the reverse step in wc_maxwell3d.h)."""
    check_adjoint_buffers(buffers, ADJOINT_BUFFERS)
    _call(buffers, order, t_end, n_steps, n_threads, True)


def forward(object buffers, int order, int64_t t0, int64_t n_steps, int n_threads):
    """Advance the 3-D state in ``buffers`` by ``n_steps`` steps from internal step ``t0``.

    ``buffers`` carries the arrays named in ``M3dParams`` as attributes and a
    ``geometry`` dict of the sizes; it is filled by wavecore's CPU backend.
    """
    _call(buffers, order, t0, n_steps, n_threads, False)


cdef _call(object buffers, int order, int64_t t, int64_t n_steps, int n_threads, bint reverse):
    # The parameter struct of the buffers' dtype, packed with the layout parsed
    # from wc_maxwell3d.h (wavecore._gpu.params, shared with the CUDA kernels),
    # and the loop without the GIL; `packed` keeps the struct alive meanwhile.
    cdef M3dUniformRows u
    cdef M3dParams[float]* pf
    cdef M3dParams[double]* pd
    dtype = check_call(buffers, "ex", order, n_threads)
    packed = pack_params("maxwell3d", buffers, dtype)
    cdef void* data = cnp.PyArray_DATA(packed)
    u.e = <const uint8_t*> optional_data(buffers, "uniform_e", np.uint8)
    u.h = <const uint8_t*> optional_data(buffers, "uniform_h", np.uint8)
    if dtype == np.float32:
        check_size(packed, sizeof(M3dParams[float]))
        pf = <M3dParams[float]*> data
        _check_uniform(buffers, pf.nz * pf.ny * (pf.n_shots // pf.shots_per_model))
        with nogil:
            _steps(pf, &u, order, t, n_steps, n_threads, reverse)
    else:
        check_size(packed, sizeof(M3dParams[double]))
        pd = <M3dParams[double]*> data
        _check_uniform(buffers, pd.nz * pd.ny * (pd.n_shots // pd.shots_per_model))
        with nogil:
            _steps(pd, &u, order, t, n_steps, n_threads, reverse)


cdef _check_uniform(object buffers, int64_t n_rows):
    # One flag per row (model, z, y) of the padded grid, or none.
    for name in ("uniform_e", "uniform_h"):
        flags = getattr(buffers, name, None)
        if flags is not None and flags.size != n_rows:
            raise ValueError(f"{name}: expected {n_rows} row flags, got {flags.size}")


cdef void _steps(M3dParams[real_t]* p, const M3dUniformRows* u, int order, int64_t t,
                 int64_t n_steps, int n_threads, bint reverse) noexcept nogil:
    if reverse:
        _run_adjoint(p, u, order, t, n_steps, n_threads)
    else:
        _run(p, u, order, t, n_steps, n_threads)
