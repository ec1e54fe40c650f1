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

from wavecore._cpu._buffers cimport (buffer_data as _data, check_adjoint_buffers, check_call,
                                     optional_data as _optional)

cnp.import_array()

ctypedef fused real_t:
    float
    double

cdef extern from "wc_maxwell3d.h" namespace "wc" nogil:
    cdef cppclass M3dParams[T]:
        T* ex
        T* ey
        T* ez
        T* hx
        T* hy
        T* hz
        T* psi_ey_z
        T* psi_ez_y
        T* psi_ez_x
        T* psi_ex_z
        T* psi_ex_y
        T* psi_ey_x
        T* psi_hy_z
        T* psi_hz_y
        T* psi_hz_x
        T* psi_hx_z
        T* psi_hx_y
        T* psi_hy_x
        const T* ca
        const T* cb
        const T* cq
        const T* az
        const T* bz
        const T* kz
        const T* az_h
        const T* bz_h
        const T* kz_h
        const T* ay
        const T* by
        const T* ky
        const T* ay_h
        const T* by_h
        const T* ky_h
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
        T rdy
        T rdx
        int64_t nz
        int64_t ny
        int64_t nx
        int64_t n_shots
        int64_t shots_per_model
        int64_t n_src
        int64_t n_rec
        int64_t nt
        int64_t src_component
        int64_t n_rec_comp
        int64_t rec_comp[6]
        int64_t pml_z0
        int64_t pml_z1
        int64_t pml_y0
        int64_t pml_y1
        int64_t pml_x0
        int64_t pml_x1
        int64_t pz0
        int64_t py0
        int64_t px0
        int64_t psi_z_n
        int64_t psi_y_n
        int64_t psi_x_n
        void* snap_ex
        void* snap_ey
        void* snap_ez
        void* snap_cx
        void* snap_cy
        void* snap_cz
        void* snap_sx
        void* snap_sy
        void* snap_sz
        int64_t snap_t0
        int64_t snap_interval
        int64_t snap_bf16
        T* lam_ex
        T* lam_ey
        T* lam_ez
        T* lam_hx
        T* lam_hy
        T* lam_hz
        T* lam_psi_ey_z
        T* lam_psi_ez_y
        T* lam_psi_ez_x
        T* lam_psi_ex_z
        T* lam_psi_ex_y
        T* lam_psi_ey_x
        T* lam_psi_hy_z
        T* lam_psi_hz_y
        T* lam_psi_hz_x
        T* lam_psi_hx_z
        T* lam_psi_hx_y
        T* lam_psi_hy_x
        T* w_hx_y
        T* w_hx_z
        T* w_hy_x
        T* w_hy_z
        T* w_hz_x
        T* w_hz_y
        T* v_ex_y
        T* v_ex_z
        T* v_ey_x
        T* v_ey_z
        T* v_ez_x
        T* v_ez_y
        T* grad_ca
        T* grad_cb
        T* grad_cq
        const T* rec_grad
        T* src_grad
        T* pol_ex
        T* pol_ey
        T* pol_ez
        const T* pole_a
        const T* pole_b
        const T* pole_c
        int64_t n_poles
        void* snap_pol_x
        void* snap_pol_y
        void* snap_pol_z
        void* snap_esum_x
        void* snap_esum_y
        void* snap_esum_z
        T* lam_pol_ex
        T* lam_pol_ey
        T* lam_pol_ez
        T* grad_pole_a
        T* grad_pole_b
        T* grad_pole_c

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


cdef int _fill(M3dParams[real_t]* p, object b, object dtype) except -1:
    p.ex = <real_t*> _data(b.ex, dtype, "ex")
    p.ey = <real_t*> _data(b.ey, dtype, "ey")
    p.ez = <real_t*> _data(b.ez, dtype, "ez")
    p.hx = <real_t*> _data(b.hx, dtype, "hx")
    p.hy = <real_t*> _data(b.hy, dtype, "hy")
    p.hz = <real_t*> _data(b.hz, dtype, "hz")
    p.psi_ey_z = <real_t*> _data(b.psi_ey_z, dtype, "psi_ey_z")
    p.psi_ez_y = <real_t*> _data(b.psi_ez_y, dtype, "psi_ez_y")
    p.psi_ez_x = <real_t*> _data(b.psi_ez_x, dtype, "psi_ez_x")
    p.psi_ex_z = <real_t*> _data(b.psi_ex_z, dtype, "psi_ex_z")
    p.psi_ex_y = <real_t*> _data(b.psi_ex_y, dtype, "psi_ex_y")
    p.psi_ey_x = <real_t*> _data(b.psi_ey_x, dtype, "psi_ey_x")
    p.psi_hy_z = <real_t*> _data(b.psi_hy_z, dtype, "psi_hy_z")
    p.psi_hz_y = <real_t*> _data(b.psi_hz_y, dtype, "psi_hz_y")
    p.psi_hz_x = <real_t*> _data(b.psi_hz_x, dtype, "psi_hz_x")
    p.psi_hx_z = <real_t*> _data(b.psi_hx_z, dtype, "psi_hx_z")
    p.psi_hx_y = <real_t*> _data(b.psi_hx_y, dtype, "psi_hx_y")
    p.psi_hy_x = <real_t*> _data(b.psi_hy_x, dtype, "psi_hy_x")
    p.ca = <real_t*> _data(b.ca, dtype, "ca")
    p.cb = <real_t*> _data(b.cb, dtype, "cb")
    p.cq = <real_t*> _data(b.cq, dtype, "cq")
    p.az = <real_t*> _data(b.az, dtype, "az")
    p.bz = <real_t*> _data(b.bz, dtype, "bz")
    p.kz = <real_t*> _data(b.kz, dtype, "kz")
    p.az_h = <real_t*> _data(b.az_h, dtype, "az_h")
    p.bz_h = <real_t*> _data(b.bz_h, dtype, "bz_h")
    p.kz_h = <real_t*> _data(b.kz_h, dtype, "kz_h")
    p.ay = <real_t*> _data(b.ay, dtype, "ay")
    p.by = <real_t*> _data(b.by, dtype, "by")
    p.ky = <real_t*> _data(b.ky, dtype, "ky")
    p.ay_h = <real_t*> _data(b.ay_h, dtype, "ay_h")
    p.by_h = <real_t*> _data(b.by_h, dtype, "by_h")
    p.ky_h = <real_t*> _data(b.ky_h, dtype, "ky_h")
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
    p.rdy = <real_t> g["rdy"]
    p.rdx = <real_t> g["rdx"]
    p.nz = g["nz"]
    p.ny = g["ny"]
    p.nx = g["nx"]
    p.n_shots = g["n_shots"]
    p.shots_per_model = g["shots_per_model"]
    p.n_src = g["n_src"]
    p.n_rec = g["n_rec"]
    p.nt = g["nt"]
    p.src_component = g["src_component"]
    p.n_rec_comp = g["n_rec_comp"]
    p.pml_z0 = g["pml_z0"]
    p.pml_z1 = g["pml_z1"]
    p.pml_y0 = g["pml_y0"]
    p.pml_y1 = g["pml_y1"]
    p.pml_x0 = g["pml_x0"]
    p.pml_x1 = g["pml_x1"]
    p.pz0 = g["pz0"]
    p.py0 = g["py0"]
    p.px0 = g["px0"]
    p.psi_z_n = g["psi_z_n"]
    p.psi_y_n = g["psi_y_n"]
    p.psi_x_n = g["psi_x_n"]
    components = g["rec_comp"]
    if len(components) > 6:
        raise ValueError(f"at most 6 receiver components, got {len(components)}")
    for c in range(6):
        p.rec_comp[c] = components[c] if c < len(components) else 0
    # Gradient machinery: absent for a plain forward run.
    snap_dtype = np.uint16 if g.get("snap_bf16", 0) else dtype
    p.snap_ex = _optional(b, "snap_ex", snap_dtype)
    p.snap_ey = _optional(b, "snap_ey", snap_dtype)
    p.snap_ez = _optional(b, "snap_ez", snap_dtype)
    p.snap_cx = _optional(b, "snap_cx", snap_dtype)
    p.snap_cy = _optional(b, "snap_cy", snap_dtype)
    p.snap_cz = _optional(b, "snap_cz", snap_dtype)
    p.snap_sx = _optional(b, "snap_sx", snap_dtype)
    p.snap_sy = _optional(b, "snap_sy", snap_dtype)
    p.snap_sz = _optional(b, "snap_sz", snap_dtype)
    p.snap_t0 = g.get("snap_t0", 0)
    p.snap_interval = g.get("snap_interval", 0)
    p.snap_bf16 = g.get("snap_bf16", 0)
    p.lam_ex = <real_t*> _optional(b, "lam_ex", dtype)
    p.lam_ey = <real_t*> _optional(b, "lam_ey", dtype)
    p.lam_ez = <real_t*> _optional(b, "lam_ez", dtype)
    p.lam_hx = <real_t*> _optional(b, "lam_hx", dtype)
    p.lam_hy = <real_t*> _optional(b, "lam_hy", dtype)
    p.lam_hz = <real_t*> _optional(b, "lam_hz", dtype)
    p.lam_psi_ey_z = <real_t*> _optional(b, "lam_psi_ey_z", dtype)
    p.lam_psi_ez_y = <real_t*> _optional(b, "lam_psi_ez_y", dtype)
    p.lam_psi_ez_x = <real_t*> _optional(b, "lam_psi_ez_x", dtype)
    p.lam_psi_ex_z = <real_t*> _optional(b, "lam_psi_ex_z", dtype)
    p.lam_psi_ex_y = <real_t*> _optional(b, "lam_psi_ex_y", dtype)
    p.lam_psi_ey_x = <real_t*> _optional(b, "lam_psi_ey_x", dtype)
    p.lam_psi_hy_z = <real_t*> _optional(b, "lam_psi_hy_z", dtype)
    p.lam_psi_hz_y = <real_t*> _optional(b, "lam_psi_hz_y", dtype)
    p.lam_psi_hz_x = <real_t*> _optional(b, "lam_psi_hz_x", dtype)
    p.lam_psi_hx_z = <real_t*> _optional(b, "lam_psi_hx_z", dtype)
    p.lam_psi_hx_y = <real_t*> _optional(b, "lam_psi_hx_y", dtype)
    p.lam_psi_hy_x = <real_t*> _optional(b, "lam_psi_hy_x", dtype)
    p.w_hx_y = <real_t*> _optional(b, "w_hx_y", dtype)
    p.w_hx_z = <real_t*> _optional(b, "w_hx_z", dtype)
    p.w_hy_x = <real_t*> _optional(b, "w_hy_x", dtype)
    p.w_hy_z = <real_t*> _optional(b, "w_hy_z", dtype)
    p.w_hz_x = <real_t*> _optional(b, "w_hz_x", dtype)
    p.w_hz_y = <real_t*> _optional(b, "w_hz_y", dtype)
    p.v_ex_y = <real_t*> _optional(b, "v_ex_y", dtype)
    p.v_ex_z = <real_t*> _optional(b, "v_ex_z", dtype)
    p.v_ey_x = <real_t*> _optional(b, "v_ey_x", dtype)
    p.v_ey_z = <real_t*> _optional(b, "v_ey_z", dtype)
    p.v_ez_x = <real_t*> _optional(b, "v_ez_x", dtype)
    p.v_ez_y = <real_t*> _optional(b, "v_ez_y", dtype)
    p.grad_ca = <real_t*> _optional(b, "grad_ca", dtype)
    p.grad_cb = <real_t*> _optional(b, "grad_cb", dtype)
    p.grad_cq = <real_t*> _optional(b, "grad_cq", dtype)
    p.rec_grad = <real_t*> _optional(b, "rec_grad", dtype)
    p.src_grad = <real_t*> _optional(b, "src_grad", dtype)
    # Debye poles (wavecore/_debye.py): absent for other laws.
    p.n_poles = g.get("n_poles", 0)
    p.pol_ex = <real_t*> _optional(b, "pol_ex", dtype)
    p.pol_ey = <real_t*> _optional(b, "pol_ey", dtype)
    p.pol_ez = <real_t*> _optional(b, "pol_ez", dtype)
    p.pole_a = <real_t*> _optional(b, "pole_a", dtype)
    p.pole_b = <real_t*> _optional(b, "pole_b", dtype)
    p.pole_c = <real_t*> _optional(b, "pole_c", dtype)
    p.snap_pol_x = _optional(b, "snap_pol_x", snap_dtype)
    p.snap_pol_y = _optional(b, "snap_pol_y", snap_dtype)
    p.snap_pol_z = _optional(b, "snap_pol_z", snap_dtype)
    p.snap_esum_x = _optional(b, "snap_esum_x", snap_dtype)
    p.snap_esum_y = _optional(b, "snap_esum_y", snap_dtype)
    p.snap_esum_z = _optional(b, "snap_esum_z", snap_dtype)
    p.lam_pol_ex = <real_t*> _optional(b, "lam_pol_ex", dtype)
    p.lam_pol_ey = <real_t*> _optional(b, "lam_pol_ey", dtype)
    p.lam_pol_ez = <real_t*> _optional(b, "lam_pol_ez", dtype)
    p.grad_pole_a = <real_t*> _optional(b, "grad_pole_a", dtype)
    p.grad_pole_b = <real_t*> _optional(b, "grad_pole_b", dtype)
    p.grad_pole_c = <real_t*> _optional(b, "grad_pole_c", dtype)
    if p.n_poles and (p.pol_ex == NULL or p.pol_ey == NULL or p.pol_ez == NULL
                      or p.pole_a == NULL or p.pole_b == NULL or p.pole_c == NULL):
        raise ValueError("n_poles > 0 needs pol_ex, pol_ey, pol_ez, pole_a, pole_b and pole_c")
    return 0


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
    # Fill the parameter struct of the buffers' dtype and run the loop without the GIL.
    cdef M3dParams[float] pf
    cdef M3dParams[double] pd
    cdef M3dUniformRows u
    dtype = check_call(buffers, "ex", order, n_threads)
    u.e = <const uint8_t*> _optional(buffers, "uniform_e", np.uint8)
    u.h = <const uint8_t*> _optional(buffers, "uniform_h", np.uint8)
    if dtype == np.float32:
        _fill(&pf, buffers, np.float32)
        _check_uniform(buffers, pf.nz * pf.ny * (pf.n_shots // pf.shots_per_model))
        with nogil:
            _steps(&pf, &u, order, t, n_steps, n_threads, reverse)
    else:
        _fill(&pd, buffers, np.float64)
        _check_uniform(buffers, pd.nz * pd.ny * (pd.n_shots // pd.shots_per_model))
        with nogil:
            _steps(&pd, &u, order, t, n_steps, n_threads, reverse)


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
