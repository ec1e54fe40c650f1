"""``wavecore.tm2d``: 2-D TM (Ey, Hx, Hz) forward modelling.

Flow: validate every input, build a :class:`~wavecore.plan.Plan` (no arrays),
prepare the buffers (padded models, coefficients, CPML profiles, source
terms), run the chosen backend chunk by chunk with callbacks in between, and
return a :class:`~wavecore.result.ForwardResult`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import _checks as checks
from ._inputs import check_callback, validate_acquisition, validate_models
from .backends import backend_class
from ._tm2d_gradient import (GradientContext, attach_chunk, detach_snapshots, segments,
                             snapshot_names)
from .backends.cpu import resolve_threads
from .callbacks import CallbackState
from .cfl import cfl_condition
from .constants import C0, EP0, MU0
from .gradients import parse_requires_grad
from .grid import Axis, CpmlOptions, cpml_profiles
from .plan import Plan, Resampling
from .resampling import downsample, substep_shifts, upsample
from .result import ForwardResult
from .state import (TM2D_EDGE, TM2D_FIELDS, TM2D_MEMORIES, WaveState, infer_shots,
                    state_shapes, validate_initial_state)
from .stencils import ORDERS
from .storage import SnapshotStore, StorageOptions, StoragePlan, plan_storage

__all__ = ["tm2d", "estimate_storage", "estimate_storage_bytes"]


def tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
         receiver_location, *, stencil: int = 2, pml_width=20, max_vel: float | None = None,
         nt: int | None = None, initial_state=None, freq_taper_frac: float = 0.0,
         time_pad_frac: float = 0.0, time_taper: bool = False, forward_callback=None,
         callback_frequency: int = 1, python_backend: bool = False,
         n_threads: int | None = None, compute_precision: str = "default",
         pml_power: float = 4.0, pml_sigma0_scale: float = 1.0, pml_kappa_max: float = 5.0,
         pml_alpha_max: float = 0.008, requires_grad=(), model_gradient_sampling_interval: int = 1,
         storage_mode: str = "auto", storage_path=None, storage_compression=False,
         storage_bytes_limit_device: int | None = None,
         storage_bytes_limit_host: int | None = None, storage_chunk_steps: int | None = None,
         backward_callback=None) -> ForwardResult:
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
        Resampling options used when the run is sub-stepped (see
        :func:`wavecore.resampling.upsample`).
    forward_callback : callable, optional
        Called with a :class:`~wavecore.callbacks.CallbackState` before internal
        steps ``0, f, 2f, ...`` with ``f = callback_frequency``; its arrays are
        live buffers (in-place edits act on the following steps).
    callback_frequency : int
        Internal steps between callbacks.
    python_backend : bool
        Run the numpy reference implementation instead of the compiled core.
    n_threads : int, optional
        OpenMP threads of the compiled core (default: ``omp_get_max_threads()``).
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
    storage_mode : {"auto", "device", "cpu", "disk", "none"}
        Where the snapshots live (see :mod:`wavecore.storage`); the choice is
        in ``result.storage``.
    storage_path : path, optional
        Folder for ``"disk"`` snapshots (default: the temporary folder); the
        files are always deleted.
    storage_compression : False, "none" or "bf16"
        Store snapshots as bfloat16 (float32 runs): half the bytes; the
        forward data do not change.
    storage_bytes_limit_device, storage_bytes_limit_host : int, optional
        Byte limits for snapshots in device memory and host memory ("auto"
        picks the first mode that fits; an explicit mode that does not fit
        raises before the run).
    storage_chunk_steps : int, optional
        Snapshots per transfer to disk (default: about 64 MiB).
    backward_callback : callable, optional
        Called with a :class:`~wavecore.callbacks.CallbackState` during ``vjp``
        at steps ``..., 2f, f, 0`` (adjoint fields and gradients so far).

    Returns
    -------
    ForwardResult
        ``receiver_data`` ``[S, n_receivers, nt]`` (``[B, S, n_receivers, nt]``
        for batched models), ``final_state``, the internal ``dt`` and
        ``step_ratio``; with ``requires_grad`` also ``vjp`` and ``close``.
    """
    plan, models, acq, initial = plan_tm2d(
        epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
        receiver_location, stencil=stencil, pml_width=pml_width, max_vel=max_vel, nt=nt,
        initial_state=initial_state, freq_taper_frac=freq_taper_frac,
        time_pad_frac=time_pad_frac, time_taper=time_taper,
        forward_callback=forward_callback, callback_frequency=callback_frequency,
        python_backend=python_backend, n_threads=n_threads,
        compute_precision=compute_precision, pml_power=pml_power,
        pml_sigma0_scale=pml_sigma0_scale, pml_kappa_max=pml_kappa_max,
        pml_alpha_max=pml_alpha_max, requires_grad=requires_grad,
        model_gradient_sampling_interval=model_gradient_sampling_interval,
        storage_mode=storage_mode, storage_path=storage_path,
        storage_compression=storage_compression,
        storage_bytes_limit_device=storage_bytes_limit_device,
        storage_bytes_limit_host=storage_bytes_limit_host,
        storage_chunk_steps=storage_chunk_steps, backward_callback=backward_callback)
    buffers = prepare_buffers(plan, models, acq, initial)
    backend = backend_class("tm2d", plan.backend)(plan, buffers)
    store = None
    if plan.storage.mode != "none":
        store = SnapshotStore(plan.storage, plan.dtype)
    try:
        run_forward(plan, backend, buffers, forward_callback, store)
    except BaseException:  # errors and KeyboardInterrupt: no files left behind
        if store is not None:
            store.close()
        raise
    gradient = None
    if plan.targets:
        gradient = GradientContext(plan, backend, buffers, store, acq.source_shape)
    return ForwardResult(
        receiver_data=receiver_data(plan, buffers),
        final_state=final_state(plan, buffers),
        dt=plan.inner_dt,
        step_ratio=plan.step_ratio,
        plan=plan,
        gradient=gradient,
        backward_callback=backward_callback,
    )


def estimate_storage(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
                     receiver_location, **options) -> StoragePlan:
    """The snapshot storage a ``tm2d`` call with the same arguments would use.

    Validates everything as :func:`tm2d` does but runs nothing. Returns a
    :class:`~wavecore.storage.StoragePlan`: ``.bytes`` (total snapshot bytes),
    ``.mode`` (what ``"auto"`` chooses), ``.n_snapshots``, ``.chunk``.
    """
    forward_only = {"forward_callback": None, "backward_callback": None}
    defaults = dict(stencil=2, pml_width=20, max_vel=None, nt=None, initial_state=None,
                    freq_taper_frac=0.0, time_pad_frac=0.0, time_taper=False,
                    callback_frequency=1, python_backend=False, n_threads=None,
                    compute_precision="default", pml_power=4.0, pml_sigma0_scale=1.0,
                    pml_kappa_max=5.0, pml_alpha_max=0.008)
    unknown = sorted(set(options) - set(defaults) - set(forward_only) - _GRADIENT_OPTIONS)
    if unknown:
        raise TypeError(f"estimate_storage got unexpected keyword arguments {unknown}")
    merged = {**defaults, **forward_only, **options}
    plan = plan_tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
                     receiver_location, **merged)[0]
    return plan.storage


def estimate_storage_bytes(*args, **options) -> int:
    """Snapshot bytes a ``tm2d`` call with these arguments stores (see :func:`estimate_storage`)."""
    return estimate_storage(*args, **options).bytes


_GRADIENT_OPTIONS = {"requires_grad", "model_gradient_sampling_interval", "storage_mode",
                     "storage_path", "storage_compression", "storage_bytes_limit_device",
                     "storage_bytes_limit_host", "storage_chunk_steps"}


# -- planning -------------------------------------------------------------------

def plan_tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
              receiver_location, *, stencil, pml_width, max_vel, nt, initial_state,
              freq_taper_frac, time_pad_frac, time_taper, forward_callback,
              callback_frequency, python_backend, n_threads, compute_precision,
              pml_power, pml_sigma0_scale, pml_kappa_max, pml_alpha_max, requires_grad=(),
              model_gradient_sampling_interval=1, storage_mode="auto", storage_path=None,
              storage_compression=False, storage_bytes_limit_device=None,
              storage_bytes_limit_host=None, storage_chunk_steps=None,
              backward_callback=None):
    """Validate every argument and return ``(plan, models, acquisition, initial)``."""
    if compute_precision != "default":
        raise ValueError(f"compute_precision must be 'default' (the model dtype sets the "
                         f"precision), got {compute_precision!r}")
    if isinstance(stencil, bool) or stencil not in ORDERS:
        raise ValueError(f"stencil must be one of {ORDERS}, got {stencil!r}")
    python_backend = checks.boolean(python_backend, "python_backend")
    models = validate_models(epsilon, sigma, mu, ndim=2)
    spacing = checks.spacing(grid_spacing, "grid_spacing", 2)
    dt = checks.positive_float(dt, "dt")
    widths = checks.pml_widths(pml_width, 2)
    cpml = CpmlOptions(pml_power, pml_sigma0_scale, pml_kappa_max, pml_alpha_max)
    resampling = Resampling(checks.fraction(freq_taper_frac, "freq_taper_frac"),
                            checks.fraction(time_pad_frac, "time_pad_frac"),
                            checks.boolean(time_taper, "time_taper"))
    check_callback(forward_callback, "forward_callback")
    callback_frequency = checks.integer(callback_frequency, "callback_frequency", minimum=1)
    if python_backend:
        if n_threads is not None:
            raise ValueError("n_threads sets the threads of the compiled core; the numpy "
                             "reference (python_backend=True) is single-threaded")
        threads = 1
    else:
        threads = resolve_threads(None if n_threads is None else checks.integer(
            n_threads, "n_threads", minimum=1))
    hint = infer_shots(initial_state, TM2D_FIELDS, 2, models.batched)
    acq = validate_acquisition(source_amplitude, source_location, receiver_location, nt,
                               models, ndim=2, n_shots_hint=hint)
    targets = parse_requires_grad(requires_grad)
    interval = checks.integer(model_gradient_sampling_interval,
                              "model_gradient_sampling_interval", minimum=1)
    check_callback(backward_callback, "backward_callback")
    storage_opts = StorageOptions.from_arguments(
        storage_mode, storage_path, storage_compression, storage_bytes_limit_device,
        storage_bytes_limit_host, storage_chunk_steps, models.dtype)
    _check_gradient_options(targets, acq, interval, storage_opts, backward_callback)

    v_model = float(C0 / np.sqrt(np.min(models.epsilon.astype(np.float64)
                                        * models.mu.astype(np.float64))))
    if max_vel is None:
        max_vel = v_model
    else:
        max_vel = checks.positive_float(max_vel, "max_vel")
        if max_vel < v_model * (1 - 1e-12):
            raise ValueError(f"max_vel={max_vel:.6g} m/s is below the model's fastest speed "
                             f"{v_model:.6g} m/s; the run would be unstable")
    inner_dt, step_ratio = cfl_condition(spacing, dt, max_vel, stencil)
    axes = (Axis(models.shape[0], widths[0], widths[1], stencil),
            Axis(models.shape[1], widths[2], widths[3], stencil))
    n_total = models.n_models * acq.n_shots
    storage = plan_storage(storage_opts, snapshot_names(targets), acq.nt * step_ratio,
                           interval, (n_total, axes[0].n_padded, axes[1].n_padded),
                           models.dtype, host_backend=True)
    plan = Plan(
        kind="tm2d", dtype=models.dtype.name, order=stencil, axes=axes, spacing=spacing,
        n_models=models.n_models, model_batched=models.batched, n_shots=acq.n_shots,
        n_sources=acq.source_location.shape[1], n_receivers=acq.receiver_location.shape[1],
        dt=dt, inner_dt=inner_dt, step_ratio=step_ratio, nt=acq.nt, max_vel=max_vel,
        cpml=cpml, resampling=resampling, callback_frequency=callback_frequency,
        backend="reference" if python_backend else "cpu", n_threads=threads,
        targets=targets, interval=interval, storage=storage)
    shapes = state_shapes(axes, plan.batch_shape, TM2D_MEMORIES, TM2D_FIELDS)
    initial = validate_initial_state(initial_state, shapes, models.dtype, plan.batch_shape)
    return plan, models, acq, initial


def _check_gradient_options(targets, acq, interval, storage_opts, backward_callback):
    """Options that only act with gradients must not be given without them."""
    if "source_amplitude" in targets and acq.source_amplitude is None:
        raise ValueError("requires_grad names 'source_amplitude' but the run has no sources")
    model_targets = targets - {"source_amplitude"}
    if not targets and backward_callback is not None:
        raise ValueError("backward_callback runs during vjp, which needs requires_grad")
    if not model_targets:
        if interval != 1:
            raise ValueError("model_gradient_sampling_interval only acts on model gradients "
                             "(requires_grad with 'epsilon', 'sigma' or 'mu')")
        defaults = StorageOptions()
        changed = [name for name, value, default in (
            ("storage_mode", storage_opts.mode, defaults.mode),
            ("storage_path", storage_opts.path, defaults.path),
            ("storage_compression", storage_opts.compression, defaults.compression),
            ("storage_bytes_limit_device", storage_opts.bytes_limit_device, None),
            ("storage_bytes_limit_host", storage_opts.bytes_limit_host, None),
            ("storage_chunk_steps", storage_opts.chunk_steps, None)) if value != default]
        if changed and not (changed == ["storage_mode"] and storage_opts.mode == "none"):
            raise ValueError(f"{', '.join(changed)} only act when model gradients are "
                             "requested (requires_grad with 'epsilon', 'sigma' or 'mu'); "
                             "no snapshots are stored")


# -- buffers --------------------------------------------------------------------

def _pad_models(plan: Plan, models) -> dict:
    pad = [(0, 0)] + [a.pad for a in plan.axes]
    return {name: np.pad(getattr(models, name), pad, mode="edge")
            for name in ("epsilon", "sigma", "mu")}


def _coefficients(plan: Plan, padded: dict) -> dict:
    """ca, cb, cq over the padded grid, computed in the model dtype."""
    T = np.dtype(plan.dtype).type
    dt = T(plan.inner_dt)
    eps = T(EP0) * padded["epsilon"]
    loss = T(0.5) * padded["sigma"] * dt
    denominator = eps + loss
    return {"ca": (eps - loss) / denominator,
            "cb": dt / denominator,
            "cq": dt / (T(MU0) * padded["mu"])}


def _flat_index(plan: Plan, locations: np.ndarray) -> np.ndarray:
    """Cell indices ``[N, n, 2]`` of the model -> flat indices into a padded shot."""
    z, x = plan.axes
    return np.ascontiguousarray(
        (locations[..., 0] + z.pml_start) * x.n_padded + locations[..., 1] + x.pml_start,
        dtype=np.int64)


def prepare_buffers(plan: Plan, models, acq, initial: dict) -> SimpleNamespace:
    """All arrays of the run in the layout of ``wc::Tm2dParams``."""
    dtype = np.dtype(plan.dtype)
    z, x = plan.axes
    n = plan.n_total_shots
    ny, nx = plan.padded_shape
    padded = _pad_models(plan, models)
    coeffs = _coefficients(plan, padded)
    prof_z = cpml_profiles(z, plan.spacing[0], plan.inner_dt, plan.cpml, dtype)
    prof_x = cpml_profiles(x, plan.spacing[1], plan.inner_dt, plan.cpml, dtype)

    src_index = _flat_index(plan, acq.source_location)
    if plan.n_sources:
        amplitude = acq.source_amplitude
        if plan.step_ratio > 1:
            r = plan.resampling
            amplitude = upsample(amplitude, plan.step_ratio, r.freq_taper_frac,
                                 r.time_pad_frac, r.time_taper,
                                 shift=substep_shifts(plan.step_ratio)[0])
        model_of_shot = np.arange(n) // plan.n_shots
        cb_at_source = coeffs["cb"].reshape(plan.n_models, -1)[model_of_shot[:, None],
                                                               src_index]
        scale = dtype.type(-1.0 / (plan.spacing[0] * plan.spacing[1]))
        src_term = np.ascontiguousarray(amplitude * cb_at_source[..., None] * scale,
                                        dtype=dtype)
    else:
        amplitude = None
        src_term = np.zeros((n, 0, plan.nt_internal), dtype)

    b = SimpleNamespace(
        **{name: np.zeros((n, ny, nx), dtype) for name in TM2D_FIELDS},
        **{name: np.zeros(s, dtype) for name, s in
           state_shapes(plan.axes, (n,), TM2D_MEMORIES, ()).items()},
        **coeffs,
        az=prof_z["a"], bz=prof_z["b"], kz=prof_z["k"],
        az_h=prof_z["a_h"], bz_h=prof_z["b_h"], kz_h=prof_z["k_h"],
        ax=prof_x["a"], bx=prof_x["b"], kx=prof_x["k"],
        ax_h=prof_x["a_h"], bx_h=prof_x["b_h"], kx_h=prof_x["k_h"],
        src_term=src_term, src_index=src_index,
        rec_data=np.zeros((n, plan.n_receivers, plan.nt_internal), dtype),
        rec_index=_flat_index(plan, acq.receiver_location),
        models=padded,
        # The internal source amplitude, kept for source gradients.
        src_amplitude=amplitude if plan.targets else None,
        snap_ey=None, snap_curl=None, snap_sz=None, snap_sx=None,
    )
    b.geometry = dict(
        rdz=1.0 / plan.spacing[0], rdx=1.0 / plan.spacing[1], ny=ny, nx=nx, n_shots=n,
        shots_per_model=plan.n_shots, n_src=plan.n_sources, n_rec=plan.n_receivers,
        nt=plan.nt_internal, pml_z0=z.pml_start, pml_z1=z.pml_end, pml_x0=x.pml_start,
        pml_x1=x.pml_end, pz0=z.pml_lo, px0=x.pml_lo, psi_z_rows=z.n_slab,
        psi_x_cols=x.n_slab,
        snap_t0=0,
        snap_interval=plan.interval if plan.storage.mode != "none" else 0,
        snap_bf16=int(plan.storage.compression == "bf16"))
    _load_state(plan, b, initial)
    return b


def _load_state(plan: Plan, b, initial: dict) -> None:
    """Copy an initial state into the buffers (zeroing the non-degrees of freedom)."""
    n = plan.n_total_shots
    domain = (slice(None), *(a.domain for a in plan.axes))
    for name, value in initial.items():
        value = value.reshape(n, *value.shape[len(plan.batch_shape):])
        if name in TM2D_FIELDS:
            target = getattr(b, name)[domain]
            target[...] = value
            if name in TM2D_EDGE:  # H after the last E node is not on the grid
                edge = [slice(None)] * 3
                edge[1 + TM2D_EDGE[name]] = -1
                target[tuple(edge)] = 0
        else:
            getattr(b, name)[...] = value


# -- running --------------------------------------------------------------------

def _batched(plan: Plan, array: np.ndarray) -> np.ndarray:
    """View ``[N, ...]`` per-shot arrays as ``[*batch_shape, ...]``."""
    return array.reshape(*plan.batch_shape, *array.shape[1:])


def _model_view(plan: Plan, array: np.ndarray) -> np.ndarray:
    return array if plan.model_batched else array[0]


def callback_state(plan: Plan, b, step: int) -> CallbackState:
    names = (*TM2D_FIELDS, *TM2D_MEMORIES)
    models = {k: _model_view(plan, v) for k, v in b.models.items()}
    models.update({k: _model_view(plan, getattr(b, k)) for k in ("ca", "cb", "cq")})
    return CallbackState(
        dt=plan.inner_dt, step=step, nt=plan.nt_internal,
        wavefields={k: _batched(plan, getattr(b, k)) for k in names},
        models=models, axes=plan.axes, model_batched=plan.model_batched)


def run_forward(plan: Plan, backend, b, callback, store=None) -> None:
    """Advance all internal steps, calling ``callback`` before steps 0, f, 2f, ...
    and filling the snapshot chunks of ``store``."""
    current = None
    for t0, t1 in segments(plan, store, callback is not None):
        if callback is not None and t0 % plan.callback_frequency == 0:
            callback(callback_state(plan, b, t0))
        if store is not None:
            c = store.chunk_of_step(t0)
            if c != current:
                attach_chunk(b, store, c, store.chunk_for_writing(c))
                current = c
        backend.forward(t0, t1 - t0)
        if store is not None and t1 == store.chunk_steps(current, plan.nt_internal)[1]:
            backend.synchronize()
            store.chunk_written(current)
    backend.synchronize()
    if store is not None:
        store.finish_forward()
        detach_snapshots(b)


def receiver_data(plan: Plan, b) -> np.ndarray:
    data = b.rec_data
    if plan.step_ratio > 1 and data.size:
        r = plan.resampling
        data = downsample(data, plan.step_ratio, r.freq_taper_frac, r.time_pad_frac,
                          r.time_taper, shift=substep_shifts(plan.step_ratio)[1])
    return _batched(plan, np.ascontiguousarray(data))


def final_state(plan: Plan, b) -> WaveState:
    """The state over the domain: views of the run's buffers (the run is over, so
    nothing writes them any more; copying gigabytes would only cost time)."""
    domain = (slice(None), *(a.domain for a in plan.axes))
    arrays = {name: _batched(plan, getattr(b, name)[domain]) for name in TM2D_FIELDS}
    arrays.update({name: _batched(plan, getattr(b, name)) for name in TM2D_MEMORIES})
    return WaveState(arrays)
