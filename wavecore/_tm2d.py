"""``wavecore.tm2d``: 2-D TM (Ey, Hx, Hz) forward modelling and gradients.

The run itself (validation, plan, buffers, time loop, gradients) is shared
with the 3-D system in :mod:`wavecore._driver`; this module says what is
particular to TM2D: its fields and CPML memories and the sizes its kernel
reads.
"""

from __future__ import annotations

from . import _driver
from ._driver import Physics
from .plan import Plan
from .result import ForwardResult
from .state import TM2D_EDGE, TM2D_FIELDS, TM2D_MEMORIES

__all__ = ["tm2d", "TM2D"]


def _geometry(plan: Plan) -> dict:
    """The sizes of ``wc::Tm2dParams`` (rows y = z, columns x)."""
    z, x = plan.axes
    return dict(
        rdz=1.0 / plan.spacing[0], rdx=1.0 / plan.spacing[1], ny=z.n_padded, nx=x.n_padded,
        n_shots=plan.n_total_shots, shots_per_model=plan.n_shots, n_src=plan.n_sources,
        n_rec=plan.n_receivers, nt=plan.nt_internal, pml_z0=z.pml_start, pml_z1=z.pml_end,
        pml_x0=x.pml_start, pml_x1=x.pml_end, pz0=z.pml_lo, px0=x.pml_lo,
        psi_z_rows=z.n_slab, psi_x_cols=x.n_slab)


#: The TM2D system.
TM2D = Physics(
    kind="tm2d", ndim=2, fields=TM2D_FIELDS, memories=TM2D_MEMORIES,
    snapshots={"ca_cb": ("ey", "curl"), "cq": ("sz", "sx"), "debye": ("pol", "esum")},
    scratch=("w_z", "w_x", "v_z", "v_x"), geometry=_geometry, edge=TM2D_EDGE,
    kept={"ca_cb": ("ey",), "cq": ("hx", "hz"), "debye": ("pol",)})


def tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
         receiver_location, *, stencil: int = 2, pml_width=20, max_vel: float | None = None,
         nt: int | None = None, initial_state=None, freq_taper_frac: float = 0.0,
         time_pad_frac: float = 0.0, time_taper: bool = False, forward_callback=None,
         callback_frequency: int = 1, python_backend: bool = False,
         device: str | None = None,
         n_threads: int | None = None, compute_precision: str = "default",
         pml_power: float = 4.0, pml_sigma0_scale: float = 1.0, pml_kappa_max: float = 5.0,
         pml_alpha_max: float = 0.008, requires_grad=(), model_gradient_sampling_interval: int = 1,
         storage_mode: str = "auto", storage_path=None, storage_compression=False,
         storage_bytes_limit_device: int | None = None,
         storage_bytes_limit_host: int | None = None, storage_chunk_steps: int | None = None,
         checkpoint_count: int | None = None,
         backward_callback=None, experimental_cuda_graph: bool = False,
         progress: bool = False, dispersion=None) -> ForwardResult:
    """Simulate 2-D TM-mode electromagnetic waves (Ey, Hx, Hz) with CPML boundaries.

    The model varies in depth ``z`` (axis 0) and ``x`` (axis 1); ``Ey`` points
    out of the plane. Sources are electric line currents (A) along ``y``.

    Parameters
    ----------
    epsilon, sigma, mu : ndarray, [nz, nx] or [B, nz, nx]
        Relative permittivity (> 0), conductivity in S/m (>= 0) and relative
        permeability (> 0), float32 or float64 (one dtype for all; it sets the
        compute precision). A leading ``B`` axis gives one model per batch entry.
    grid_spacing : float or (dz, dx)
        Cell size in metres.
    dt : float
        Sample interval of sources and receivers, seconds. If it exceeds the
        stable step of the stencil, the run is sub-stepped (see ``step_ratio``).
    source_amplitude : ndarray [S, n_sources, nt] or [B, S, n_sources, nt], or None
        Source currents (A) per shot, model dtype. Sources in one cell add up.
    source_location : int ndarray [S, n_sources, 2] (or [B, S, ...]), or None
        Source cells ``(z, x)`` as indices into the model.
    receiver_location : int ndarray [S, n_receivers, 2] (or [B, S, ...]), or None
        Receiver cells ``(z, x)``; they record ``Ey``.
    stencil : {2, 4, 6, 8}
        Accuracy order of the staggered spatial derivatives.
    pml_width : int, (wz, wx) or (z0, z1, x0, x1)
        CPML cells on each side; 0 makes that side a reflecting wall.
    max_vel : float, optional
        Velocity (m/s) for the CFL condition; default ``max(c0 / sqrt(epsilon mu))``.
    nt : int, optional
        Number of samples; required without sources, must match them otherwise.
    initial_state : mapping, optional
        Fields and CPML memories to start from (a previous ``final_state``);
        names missing start at zero.
    freq_taper_frac, time_pad_frac, time_taper
        Options of the sources' band-limited up-sampling when the run is
        sub-stepped (see :func:`wavecore.resampling.upsample`); receivers are
        then the internal samples at the user's times
        (:func:`wavecore.resampling.sample_receivers`), windowed too with
        ``time_taper``.
    forward_callback : callable, optional
        Called with a :class:`~wavecore.callbacks.CallbackState` before internal
        steps ``0, f, 2f, ...`` with ``f = callback_frequency``; its arrays are
        live buffers (in-place edits act on the following steps).
    callback_frequency : int
        Internal steps between callbacks.
    python_backend : bool
        Run the numpy reference implementation instead of the compiled core.
    device : {None, "cpu", "cuda", "cuda-emulated"}
        Where the compiled kernels run: the Cython/OpenMP core ("cpu"), the
        CUDA kernels on the current CuPy device ("cuda": needs CuPy and a GPU),
        or the same CUDA kernels compiled as C++ and run on the CPU
        ("cuda-emulated": slow; checks the GPU code without a GPU). None
        (default): "cuda" when the models are CuPy arrays, else "cpu". Not
        used with ``python_backend=True``. Outputs follow the inputs: CuPy
        arrays in, CuPy arrays out (receiver data, final state, gradients);
        numpy otherwise.
    n_threads : int, optional
        OpenMP threads of the compiled core (default: ``omp_get_max_threads()``;
        ``device="cpu"`` only).
    compute_precision : {"default"}
        Reserved; the model dtype sets the precision.
    pml_power, pml_sigma0_scale, pml_kappa_max, pml_alpha_max : float
        CPML profile (see :class:`wavecore.grid.CpmlOptions`); defaults equal
        TIDE's.
    requires_grad : str or sequence of str
        Any of ``"epsilon"``, ``"sigma"``, ``"mu"``, ``"source_amplitude"``: the
        result keeps what ``result.vjp(grad_receiver_data)`` needs to return
        these gradients (exact discrete adjoint of the run).
    model_gradient_sampling_interval : int
        ``k``: store the fields of every k-th internal step and weight each by
        the steps it stands for. Every step is still propagated (receiver data
        do not depend on ``k``); ``k = 1`` gives the exact gradient.
    storage_mode : {"auto", "device", "cpu", "disk", "checkpoint", "none"}
        Where the snapshots live (see :mod:`wavecore.storage`); the choice is
        in ``result.storage``. ``"checkpoint"`` keeps full states at a few
        checkpoints and recomputes the snapshots during the reverse pass
        (:mod:`wavecore.checkpointing`): the same gradients bit for bit, within
        ``storage_bytes_limit_host`` (CPU) or ``storage_bytes_limit_device``
        (GPU), by default half of the memory the rest of the run leaves;
        ``"auto"`` chooses it when the snapshots fit neither the memory nor
        the disk.
    storage_path : path, optional
        Folder for ``"disk"`` snapshots (default: the temporary folder), and
        with ``"checkpoint"`` a disk level for the checkpoints the memory
        budget cannot hold; the files are always deleted.
    storage_compression : False, "none" or "bf16"
        Store snapshots as bfloat16 (float32 runs): half the bytes; the
        forward data do not change.
    storage_bytes_limit_device, storage_bytes_limit_host : int, optional
        Byte limits for snapshots in device memory and host memory ("auto"
        picks the first mode that fits; an explicit mode that does not fit
        raises before the run).
    storage_chunk_steps : int, optional
        Snapshots per transfer to disk (default: about 64 MiB).
    checkpoint_count : int, optional
        ``storage_mode="checkpoint"`` only: keep this many checkpoints and
        recompute segments of one stored step (Revolve's setting; the least
        memory for that count), instead of the cheapest schedule within the
        byte limit. ``result.storage.schedule`` reports the schedule.
    backward_callback : callable, optional
        Called with a :class:`~wavecore.callbacks.CallbackState` during ``vjp``
        at steps ``..., 2f, f, 0`` (adjoint fields and gradients so far).
    experimental_cuda_graph : bool
        Forward-only runs on the CUDA backend: capture the kernel launches of a
        chunk of steps (``callback_frequency`` steps with a forward callback,
        else the whole run) in CUDA graphs, cached with their buffers for later
        compatible calls (see docs/performance.md). Ignored with a warning that
        says why elsewhere (gradients, the CPU, the reference).
    progress : bool
        Draw a tqdm progress bar over the internal steps of the forward run, and
        another over the reverse steps of each ``vjp`` (needs ``tqdm``: ``pip
        install tqdm`` or ``wavecore[hpc]``; an ImportError before the run
        otherwise). The bar advances about ten times a second.
    dispersion : wavecore.Debye, optional
        Debye poles of the medium (``delta_epsilon``, ``tau`` arrays
        ``[n_poles, *model_shape]``; see docs/dispersive-media.md); ``epsilon``
        is then the infinite-frequency permittivity. ``requires_grad`` may name
        ``"delta_epsilon"`` and ``"tau"``; the polarizations (``pol_<E
        component>``, ``[*batch, n_poles, *domain]``) are part of the state.

    Returns
    -------
    ForwardResult
        ``receiver_data`` ``[S, n_receivers, nt]`` (``[B, S, n_receivers, nt]``
        for batched models), ``final_state``, the internal ``dt`` and
        ``step_ratio``; with ``requires_grad`` also ``vjp`` and ``close``.
    """
    return _driver.run(
        TM2D, epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
        receiver_location, stencil=stencil, pml_width=pml_width, max_vel=max_vel, nt=nt,
        initial_state=initial_state, freq_taper_frac=freq_taper_frac,
        time_pad_frac=time_pad_frac, time_taper=time_taper,
        forward_callback=forward_callback, callback_frequency=callback_frequency,
        python_backend=python_backend, device=device, n_threads=n_threads,
        compute_precision=compute_precision, pml_power=pml_power,
        pml_sigma0_scale=pml_sigma0_scale, pml_kappa_max=pml_kappa_max,
        pml_alpha_max=pml_alpha_max, requires_grad=requires_grad,
        model_gradient_sampling_interval=model_gradient_sampling_interval,
        storage_mode=storage_mode, storage_path=storage_path,
        storage_compression=storage_compression,
        storage_bytes_limit_device=storage_bytes_limit_device,
        storage_bytes_limit_host=storage_bytes_limit_host,
        storage_chunk_steps=storage_chunk_steps, checkpoint_count=checkpoint_count,
        backward_callback=backward_callback,
        experimental_cuda_graph=experimental_cuda_graph, progress=progress,
        dispersion=dispersion)

