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

from wavecore._cpu._buffers cimport (buffer_data as _data, check_adjoint_buffers, check_call,
                                     optional_data as _optional)

cnp.import_array()

ctypedef fused real_t:
    float
    double

cdef extern from "wc_tm2d.h" namespace "wc" nogil:
    cdef cppclass Tm2dParams[T]:
        T* ey
        T* hx
        T* hz
        T* psi_ey_z
        T* psi_ey_x
        T* psi_hx_z
        T* psi_hz_x
        const T* ca
        const T* cb
        const T* cq
        const T* az
        const T* bz
        const T* kz
        const T* az_h
        const T* bz_h
        const T* kz_h
        const T* ax
        const T* bx
        const T* kx
        const T* ax_h
        const T* bx_h
        const T* kx_h
        const T* src_term
        const int64_t* src_index
        T* rec_data
        const int64_t* rec_index
        T rdz
        T rdx
        int64_t ny
        int64_t nx
        int64_t n_shots
        int64_t shots_per_model
        int64_t n_src
        int64_t n_rec
        int64_t nt
        int64_t pml_z0
        int64_t pml_z1
        int64_t pml_x0
        int64_t pml_x1
        int64_t pz0
        int64_t px0
        int64_t psi_z_rows
        int64_t psi_x_cols
        void* snap_ey
        void* snap_curl
        void* snap_sz
        void* snap_sx
        int64_t snap_t0
        int64_t snap_interval
        int64_t snap_bf16
        T* lam_ey
        T* lam_hx
        T* lam_hz
        T* lam_psi_ey_z
        T* lam_psi_ey_x
        T* lam_psi_hx_z
        T* lam_psi_hz_x
        T* w_z
        T* w_x
        T* v_z
        T* v_x
        T* grad_ca
        T* grad_cb
        T* grad_cq
        const T* rec_grad
        T* src_grad
        T* pol_ey
        const T* pole_a
        const T* pole_b
        const T* pole_c
        int64_t n_poles
        void* snap_pol
        void* snap_esum
        T* lam_pol_ey
        T* grad_pole_a
        T* grad_pole_b
        T* grad_pole_c

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


cdef int _fill(Tm2dParams[real_t]* p, object b, object dtype) except -1:
    p.ey = <real_t*> _data(b.ey, dtype, "ey")
    p.hx = <real_t*> _data(b.hx, dtype, "hx")
    p.hz = <real_t*> _data(b.hz, dtype, "hz")
    p.psi_ey_z = <real_t*> _data(b.psi_ey_z, dtype, "psi_ey_z")
    p.psi_ey_x = <real_t*> _data(b.psi_ey_x, dtype, "psi_ey_x")
    p.psi_hx_z = <real_t*> _data(b.psi_hx_z, dtype, "psi_hx_z")
    p.psi_hz_x = <real_t*> _data(b.psi_hz_x, dtype, "psi_hz_x")
    p.ca = <real_t*> _data(b.ca, dtype, "ca")
    p.cb = <real_t*> _data(b.cb, dtype, "cb")
    p.cq = <real_t*> _data(b.cq, dtype, "cq")
    p.az = <real_t*> _data(b.az, dtype, "az")
    p.bz = <real_t*> _data(b.bz, dtype, "bz")
    p.kz = <real_t*> _data(b.kz, dtype, "kz")
    p.az_h = <real_t*> _data(b.az_h, dtype, "az_h")
    p.bz_h = <real_t*> _data(b.bz_h, dtype, "bz_h")
    p.kz_h = <real_t*> _data(b.kz_h, dtype, "kz_h")
    p.ax = <real_t*> _data(b.ax, dtype, "ax")
    p.bx = <real_t*> _data(b.bx, dtype, "bx")
    p.kx = <real_t*> _data(b.kx, dtype, "kx")
    p.ax_h = <real_t*> _data(b.ax_h, dtype, "ax_h")
    p.bx_h = <real_t*> _data(b.bx_h, dtype, "bx_h")
    p.kx_h = <real_t*> _data(b.kx_h, dtype, "kx_h")
    p.src_term = <real_t*> _data(b.src_term, dtype, "src_term")
    p.src_index = <int64_t*> _data(b.src_index, np.int64, "src_index")
    p.rec_data = <real_t*> _data(b.rec_data, dtype, "rec_data")
    p.rec_index = <int64_t*> _data(b.rec_index, np.int64, "rec_index")
    g = b.geometry
    p.rdz = <real_t> g["rdz"]
    p.rdx = <real_t> g["rdx"]
    p.ny = g["ny"]
    p.nx = g["nx"]
    p.n_shots = g["n_shots"]
    p.shots_per_model = g["shots_per_model"]
    p.n_src = g["n_src"]
    p.n_rec = g["n_rec"]
    p.nt = g["nt"]
    p.pml_z0 = g["pml_z0"]
    p.pml_z1 = g["pml_z1"]
    p.pml_x0 = g["pml_x0"]
    p.pml_x1 = g["pml_x1"]
    p.pz0 = g["pz0"]
    p.px0 = g["px0"]
    p.psi_z_rows = g["psi_z_rows"]
    p.psi_x_cols = g["psi_x_cols"]
    # Gradient machinery: absent for a plain forward run.
    snap_dtype = np.uint16 if g.get("snap_bf16", 0) else dtype
    p.snap_ey = _optional(b, "snap_ey", snap_dtype)
    p.snap_curl = _optional(b, "snap_curl", snap_dtype)
    p.snap_sz = _optional(b, "snap_sz", snap_dtype)
    p.snap_sx = _optional(b, "snap_sx", snap_dtype)
    p.snap_t0 = g.get("snap_t0", 0)
    p.snap_interval = g.get("snap_interval", 0)
    p.snap_bf16 = g.get("snap_bf16", 0)
    p.lam_ey = <real_t*> _optional(b, "lam_ey", dtype)
    p.lam_hx = <real_t*> _optional(b, "lam_hx", dtype)
    p.lam_hz = <real_t*> _optional(b, "lam_hz", dtype)
    p.lam_psi_ey_z = <real_t*> _optional(b, "lam_psi_ey_z", dtype)
    p.lam_psi_ey_x = <real_t*> _optional(b, "lam_psi_ey_x", dtype)
    p.lam_psi_hx_z = <real_t*> _optional(b, "lam_psi_hx_z", dtype)
    p.lam_psi_hz_x = <real_t*> _optional(b, "lam_psi_hz_x", dtype)
    p.w_z = <real_t*> _optional(b, "w_z", dtype)
    p.w_x = <real_t*> _optional(b, "w_x", dtype)
    p.v_z = <real_t*> _optional(b, "v_z", dtype)
    p.v_x = <real_t*> _optional(b, "v_x", dtype)
    p.grad_ca = <real_t*> _optional(b, "grad_ca", dtype)
    p.grad_cb = <real_t*> _optional(b, "grad_cb", dtype)
    p.grad_cq = <real_t*> _optional(b, "grad_cq", dtype)
    p.rec_grad = <real_t*> _optional(b, "rec_grad", dtype)
    p.src_grad = <real_t*> _optional(b, "src_grad", dtype)
    # Debye poles (wavecore/_debye.py): absent for other laws.
    p.n_poles = g.get("n_poles", 0)
    p.pol_ey = <real_t*> _optional(b, "pol_ey", dtype)
    p.pole_a = <real_t*> _optional(b, "pole_a", dtype)
    p.pole_b = <real_t*> _optional(b, "pole_b", dtype)
    p.pole_c = <real_t*> _optional(b, "pole_c", dtype)
    p.snap_pol = _optional(b, "snap_pol", snap_dtype)
    p.snap_esum = _optional(b, "snap_esum", snap_dtype)
    p.lam_pol_ey = <real_t*> _optional(b, "lam_pol_ey", dtype)
    p.grad_pole_a = <real_t*> _optional(b, "grad_pole_a", dtype)
    p.grad_pole_b = <real_t*> _optional(b, "grad_pole_b", dtype)
    p.grad_pole_c = <real_t*> _optional(b, "grad_pole_c", dtype)
    if p.n_poles and (p.pol_ey == NULL or p.pole_a == NULL or p.pole_b == NULL
                      or p.pole_c == NULL):
        raise ValueError("n_poles > 0 needs pol_ey, pole_a, pole_b and pole_c")
    return 0


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
    # Fill the parameter struct of the buffers' dtype and run the loop without the GIL.
    cdef Tm2dParams[float] pf
    cdef Tm2dParams[double] pd
    dtype = check_call(buffers, "ey", order, n_threads)
    if dtype == np.float32:
        _fill(&pf, buffers, np.float32)
        with nogil:
            _steps(&pf, order, t, n_steps, n_threads, reverse)
    else:
        _fill(&pd, buffers, np.float64)
        with nogil:
            _steps(&pd, order, t, n_steps, n_threads, reverse)


cdef void _steps(Tm2dParams[real_t]* p, int order, int64_t t, int64_t n_steps, int n_threads,
                 bint reverse) noexcept nogil:
    if reverse:
        _run_adjoint(p, order, t, n_steps, n_threads)
    else:
        _run(p, order, t, n_steps, n_threads)
