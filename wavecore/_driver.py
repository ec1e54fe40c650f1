"""The run of any Yee system (``tm2d``, ``maxwell3d``): plan, buffers, time loop.

Flow: validate every input, build a :class:`~wavecore.plan.Plan` (no arrays),
prepare the buffers (padded models, coefficients, CPML profiles, source
terms), run the chosen backend chunk by chunk with callbacks in between, and
return a :class:`~wavecore.result.ForwardResult`. What differs between the 2-D
and the 3-D system (field names, CPML memories, the kernel's geometry) is a
:class:`Physics` description; everything else is written once, here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Callable, Mapping

import numpy as np

from . import _checks as checks
from ._gradient import GradientContext
from ._inputs import check_callback, check_units, validate_acquisition, validate_models
from ._stepping import check_progress, progress_bar
from ._sweeps import FORWARD, run_sweep
from ._xp import any_cupy, from_dlpack_like, to_cupy, to_numpy
from .backends import backend_class
from .backends.cpu import resolve_threads
from .callbacks import CallbackState
from .cfl import cfl_condition
from .checkpointing import CheckpointStore
from .gradients import parse_requires_grad
from .grid import Axis, CpmlOptions, cpml_profiles
from ._materials import NON_DISPERSIVE, Material
from .memory import (HOST, POOL, Available, device_free_bytes, format_bytes, host_available,
                     zeros_block)
from .plan import Plan, Resampling
from .resampling import sample_receivers, source_shift, upsample
from .result import ForwardResult, MemoryEstimate
from .state import WaveState, infer_shots, state_shapes, validate_initial_state
from .stencils import ORDERS
from .storage import SnapshotStore, StorageOptions, StoragePlan, plan_storage

__all__ = ["Physics", "run", "plan_run", "estimate", "RUN_DEFAULTS", "GRADIENT_OPTIONS"]

AXIS_LETTERS = {2: ("z", "x"), 3: ("z", "y", "x")}


@dataclass(frozen=True)
class Physics:
    """What distinguishes one Yee system from another."""

    kind: str                           #: "tm2d" or "maxwell3d"
    ndim: int
    fields: tuple[str, ...]             #: wavefields, E components first
    memories: Mapping[str, int]         #: CPML memory -> axis whose slabs hold it
    snapshots: Mapping[str, tuple]      #: gradient path (Material.paths) -> snapshot
    #: arrays per step
    scratch: tuple[str, ...]            #: adjoint scratch arrays over the padded grid
    geometry: Callable                  #: geometry(plan) -> the kernel's sizes
    edge: Mapping[str, int] = field(default_factory=dict)  #: fields held at 0 past the
    #: last E node along an axis (TM2D's H); 3-D updates every domain value
    tail_scratch: tuple[str, ...] = ()  #: scratch arrays that need one zero plane more
    e_components: tuple[str, ...] = ("ey",)  #: possible source components
    record_components: tuple[str, ...] = ("ey",)  #: possible receiver components
    material: Material = NON_DISPERSIVE  #: the medium's law (wavecore._materials)
    #: gradient path -> the adjoint values its transposed cells image, kept per
    #: stored step by second order's first sweep (wavecore._sweeps; ``adj_<name>``
    #: in the kernels' structs); empty: the system has no second_vjp
    kept: Mapping[str, tuple] = field(default_factory=dict)

    def snapshot_names(self, targets: frozenset) -> tuple[str, ...]:
        return self.material.snapshot_names(self.snapshots, targets)

    @property
    def state_fields(self) -> tuple[str, ...]:
        """The fields and the material law's own state arrays (shaped like fields)."""
        return (*self.fields, *self.material.state)

    @property
    def state_extent(self) -> Mapping[str, int]:
        """State arrays with a leading axis beside the shot axis (a law's poles)."""
        return self.material.state_extent

    def state_shape(self, name: str, n: int, grid) -> tuple[int, ...]:
        """Buffer shape of state array ``name`` for ``n`` shots on ``grid``."""
        extent = self.state_extent.get(name)
        return (n, *(() if extent is None else (extent,)), *grid)

    def with_dispersion(self, dispersion, model_shape) -> "Physics":
        """This system with the material law of ``dispersion`` (None: unchanged)
        for models of ``model_shape`` (the shape of ``epsilon``): a dispersion
        model (``wavecore.Debye``) names its law (``dispersion.law``)."""
        if dispersion is None:
            return self
        if not callable(getattr(dispersion, "law", None)):
            raise TypeError(f"dispersion must be a dispersion model such as wavecore.Debye "
                            f"(or None), got {checks.describe(dispersion)}")
        return replace(self, material=dispersion.law(self.e_components, model_shape))

    @property
    def state_edge(self) -> dict:
        """``edge`` for every name of ``state_fields`` (a law's state array lives
        on the grid of a field)."""
        return {**self.edge, **{name: self.edge[grid] for name, grid in
                                self.material.state.items() if grid in self.edge}}

    def kept_names(self, targets) -> tuple[str, ...]:
        """The kept adjoint values (``kept``) the second order of ``targets`` needs."""
        return tuple(n for p in self.material.active_paths(targets)
                     for n in self.kept.get(p.name, ()))

    @property
    def all_kept(self) -> tuple[str, ...]:
        return tuple(n for names in self.kept.values() for n in names)

    @property
    def all_snapshots(self) -> tuple[str, ...]:
        return tuple(n for names in self.snapshots.values() for n in names)

    @property
    def adjoint_names(self) -> tuple[str, ...]:
        """Adjoint fields and memories (the adjoint state)."""
        return tuple(f"lam_{n}" for n in (*self.state_fields, *self.memories))


#: Defaults of the options every system shares (the public signatures repeat them).
DEVICES = ("cpu", "cuda", "cuda-emulated")

RUN_DEFAULTS = dict(
    stencil=2, pml_width=20, max_vel=None, nt=None, initial_state=None,
    freq_taper_frac=0.0, time_pad_frac=0.0, time_taper=False, forward_callback=None,
    callback_frequency=1, python_backend=False, device=None, n_threads=None,
    compute_precision="default",
    pml_power=4.0, pml_sigma0_scale=1.0, pml_kappa_max=5.0, pml_alpha_max=0.008,
    requires_grad=(), model_gradient_sampling_interval=1, storage_mode="auto",
    storage_path=None, storage_compression=False, storage_bytes_limit_device=None,
    storage_bytes_limit_host=None, storage_chunk_steps=None, checkpoint_count=None,
    backward_callback=None,
    experimental_cuda_graph=False, progress=False, dispersion=None)

GRADIENT_OPTIONS = {"requires_grad", "model_gradient_sampling_interval", "storage_mode",
                    "storage_path", "storage_compression", "storage_bytes_limit_device",
                    "storage_bytes_limit_host", "storage_chunk_steps", "checkpoint_count"}


def run(physics: Physics, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
        source_location, receiver_location, **options) -> ForwardResult:
    """Validate, plan and run one forward simulation (see ``tm2d``/``maxwell3d``).

    Arrays of other frameworks (DLPack, CUDA array interface) become numpy
    (CPU) or CuPy (CUDA) arrays without a copy where possible. CuPy inputs
    (models, sources, receivers, initial state) are copied to the host for
    validation and planning, the run defaults to ``device="cuda"``, and the
    outputs (receiver data, final state, gradients) are CuPy arrays; otherwise
    numpy.
    """
    epsilon, sigma, mu, source_amplitude, source_location, receiver_location = map(
        from_dlpack_like, (epsilon, sigma, mu, source_amplitude, source_location,
                           receiver_location))
    if isinstance(options.get("initial_state"), Mapping):
        options["initial_state"] = {k: from_dlpack_like(v)
                                    for k, v in options["initial_state"].items()}
    cupy_io = any_cupy(epsilon, sigma, mu, source_amplitude, source_location,
                       receiver_location, options.get("initial_state"))
    if cupy_io:
        epsilon, sigma, mu, source_amplitude, source_location, receiver_location = map(
            to_numpy, (epsilon, sigma, mu, source_amplitude, source_location,
                       receiver_location))
        if options.get("initial_state") is not None:
            options["initial_state"] = to_numpy(options["initial_state"])
    if options.get("device") is None:
        options["device"] = "cuda" if cupy_io else "cpu"
    physics = physics.with_dispersion(options.get("dispersion"), np.shape(epsilon))
    plan, models, acq, initial = plan_run(physics, epsilon, sigma, mu, grid_spacing, dt,
                                          source_amplitude, source_location,
                                          receiver_location, **options)
    check_fits(physics, plan)  # before any of the run's arrays is allocated
    if _use_cuda_graph(plan, options):
        return _run_with_graphs(physics, plan, models, acq, initial,
                                options.get("forward_callback"), cupy_io,
                                options.get("progress", False))
    buffers = prepare_buffers(physics, plan, models, acq, initial)
    backend = backend_class(plan.kind, plan.backend)(plan, buffers)
    if options.get("n_threads") is None and hasattr(backend, "threads"):
        backend.threads.follow_contention()  # the default count adapts to busy cores
    store = None
    if plan.storage.mode == "checkpoint":
        store = CheckpointStore(plan.storage, plan.dtype, backend.memory, backend, buffers,
                                (*physics.state_fields, *physics.memories))
    elif plan.storage.mode != "none":
        store = SnapshotStore(plan.storage, plan.dtype, backend.memory)
    try:
        run_forward(physics, plan, backend, buffers, options.get("forward_callback"), store,
                    progress=options.get("progress", False))
    except BaseException:  # errors and KeyboardInterrupt: no files left behind
        if store is not None:
            store.close()
        raise
    gradient = None
    if plan.targets:
        gradient = GradientContext(physics, plan, backend, buffers, store, acq.source_shape,
                                   cupy_io, progress=options.get("progress", False))
    data = receiver_data(plan, buffers, backend.memory, padded=buffers.rec_padded)
    state = final_state(physics, plan, buffers, backend.memory)
    if cupy_io:
        data, state = to_cupy(data), WaveState(to_cupy(dict(state)))
    return ForwardResult(
        receiver_data=data,
        final_state=state,
        dt=plan.inner_dt,
        step_ratio=plan.step_ratio,
        plan=plan,
        memory=memory_estimate(physics, plan),
        gradient=gradient,
        backward_callback=options.get("backward_callback"),
    )


def _use_cuda_graph(plan: Plan, options: dict) -> bool:
    """experimental_cuda_graph: True where it applies; a warning that says why not."""
    if not checks.boolean(options.get("experimental_cuda_graph", False),
                          "experimental_cuda_graph"):
        return False
    why = None
    if plan.targets:
        why = "it covers forward-only runs, and this run computes gradients"
    elif plan.backend not in ("cuda", "cuda-emulated"):
        why = (f"it needs the CUDA backend (device='cuda'), and this run is on "
               f"{'the numpy reference' if plan.backend == 'reference' else 'the CPU'}")
    if why:
        warnings.warn(f"experimental_cuda_graph=True is ignored: {why}", RuntimeWarning,
                      stacklevel=4)
        return False
    return True


def _run_with_graphs(physics: Physics, plan: Plan, models, acq, initial, callback,
                     cupy_io: bool, progress: bool = False) -> ForwardResult:
    """A forward run replaying cached CUDA graphs (wavecore._gpu.graphs)."""
    from ._gpu import graphs  # noqa: PLC0415 - only with experimental_cuda_graph

    host = prepare_buffers(physics, plan, models, acq, initial)
    chunks = graphs.graph_chunks(plan.nt_internal, plan.callback_frequency,
                                 callback is not None)
    device = 0 if plan.backend == "cuda-emulated" else _cuda_device_id()
    key = graphs.graph_key(plan, host.geometry, chunks, plan.backend, device)
    entry, fresh = graphs.lookup(key), False
    if entry is None:
        entry, fresh = graphs.new_entry(backend_class(plan.kind, plan.backend), plan, host), True
        graphs.store(key, entry)
    b = entry.buffers
    bar, done = progress_bar(progress, plan.nt_internal, f"{plan.kind} forward"), [0]

    def advance(t: int) -> None:  # the bar, after the graphs before step t ran
        if bar is not None and t > done[0]:
            entry.backend.synchronize()
            bar.update(t - done[0])
            done[0] = t

    def callback_at(t0: int) -> None:
        advance(t0)
        if callback is None or t0 % plan.callback_frequency:
            return
        state = callback_state(physics, plan, b, t0)
        before = {k: (v, v.shape) for k, v in state.wavefields.items()}
        callback(state)
        graphs.check_unchanged(before, state.wavefields)

    with entry.lock:
        if not fresh:
            graphs.refresh(entry, host, plan.kind)
        try:
            graphs.run_chunks(entry, chunks, callback_at,
                              (*physics.state_fields, *physics.memories))
            advance(plan.nt_internal)
        finally:
            if bar is not None:
                bar.close()
        memory = entry.backend.memory
        data = receiver_data(plan, b, memory, padded=host.rec_padded)
        state = final_state(physics, plan, b, memory)
    if cupy_io:
        data, state = to_cupy(data), WaveState(to_cupy(dict(state)))
    return ForwardResult(receiver_data=data, final_state=state, dt=plan.inner_dt,
                         step_ratio=plan.step_ratio, plan=plan,
                         memory=memory_estimate(physics, plan))


def _cuda_device_id() -> int:
    import cupy  # noqa: PLC0415 - only on the CUDA path

    return cupy.cuda.Device().id


def estimate(physics: Physics, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
             source_location, receiver_location, **options) -> tuple[StoragePlan, MemoryEstimate]:
    """The storage plan and memory a run with these arguments would use (nothing runs)."""
    options = {**options, "forward_callback": None, "backward_callback": None}
    physics = physics.with_dispersion(options.get("dispersion"), np.shape(epsilon))
    plan = plan_run(physics, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                    source_location, receiver_location, **options)[0]
    return plan.storage, memory_fit(physics, plan)


def check_fits(physics: Physics, plan: Plan) -> None:
    """Raise before anything is allocated if the snapshots or the whole run do not
    fit (the errors ``estimate`` reports as ``fits=False``)."""
    est = memory_fit(physics, plan)  # the whole run, snapshots in RAM included
    if not est.fits:
        raise MemoryError(est.reason)
    plan.storage.check()  # storage limits, device memory, disk space


# -- planning -------------------------------------------------------------------

def _components(physics: Physics, source_component, receiver_component):
    """Validated (source component, receiver components, component axis in the data)."""
    if physics.ndim == 2:
        if (source_component, receiver_component) != ("ey", "ey"):
            raise ValueError("tm2d sources and receivers are always 'ey' (the only electric "
                             "component of the TM mode)")
        return "ey", ("ey",), False
    if source_component not in physics.e_components:
        raise ValueError(f"source_component must be one of {physics.e_components} (electric "
                         f"current sources), got {source_component!r}")
    if isinstance(receiver_component, str):
        names, axis = (receiver_component,), False
    elif isinstance(receiver_component, (list, tuple)) and receiver_component:
        names, axis = tuple(receiver_component), True
    else:
        raise TypeError(f"receiver_component must be a component name or a non-empty list of "
                        f"them, got {checks.describe(receiver_component)}")
    bad = [n for n in names if n not in physics.record_components]
    if bad:
        raise ValueError(f"receiver_component has unknown components {bad}; choose from "
                         f"{physics.record_components}")
    if len(set(names)) != len(names):
        raise ValueError(f"receiver_component lists a component twice: {list(names)}")
    return source_component, names, axis


def plan_run(physics: Physics, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
             source_location, receiver_location, *, source_component="ey",
             receiver_component="ey", **options):
    """Validate every argument and return ``(plan, models, acquisition, initial)``."""
    unknown = sorted(set(options) - set(RUN_DEFAULTS))
    if unknown:
        raise TypeError(f"unexpected keyword arguments {unknown}: not options of "
                        f"{physics.kind}")
    o = SimpleNamespace(**{**RUN_DEFAULTS, **options})
    ndim = physics.ndim
    if o.compute_precision != "default":
        raise ValueError(f"compute_precision must be 'default' (the model dtype sets the "
                         f"precision), got {o.compute_precision!r}")
    o.stencil = checks.stencil_order(o.stencil, ORDERS)  # a Python int, or an error
    python_backend = checks.boolean(o.python_backend, "python_backend")
    check_progress(o.progress)
    src_comp, rec_comps, comp_axis = _components(physics, source_component, receiver_component)
    models = validate_models(physics.material, (epsilon, sigma, mu), ndim=ndim,
                             dispersion=o.dispersion)
    spacing = checks.spacing(grid_spacing, "grid_spacing", ndim)
    dt = checks.positive_float(dt, "dt")
    widths = checks.pml_widths(o.pml_width, ndim)
    cpml = CpmlOptions(o.pml_power, o.pml_sigma0_scale, o.pml_kappa_max, o.pml_alpha_max)
    resampling = Resampling(checks.fraction(o.freq_taper_frac, "freq_taper_frac"),
                            checks.fraction(o.time_pad_frac, "time_pad_frac"),
                            checks.boolean(o.time_taper, "time_taper"))
    check_callback(o.forward_callback, "forward_callback")
    callback_frequency = checks.integer(o.callback_frequency, "callback_frequency", minimum=1)
    if o.device is None:
        o.device = "cpu"
    if o.device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {o.device!r}")
    if python_backend and o.device != "cpu":
        raise ValueError(f"python_backend=True runs the numpy reference on the CPU; it "
                         f"cannot run on device={o.device!r}")
    if python_backend or o.device != "cpu":
        if o.n_threads is not None:
            raise ValueError("n_threads sets the OpenMP threads of the CPU core; "
                             + ("the numpy reference (python_backend=True) is single-threaded"
                                if python_backend else f"device={o.device!r} does not use it"))
        threads = 1
    else:
        threads = resolve_threads(None if o.n_threads is None else checks.integer(
            o.n_threads, "n_threads", minimum=1))
    hint = infer_shots(o.initial_state, physics.fields, ndim, models.batched)
    acq = validate_acquisition(source_amplitude, source_location, receiver_location, o.nt,
                               models, ndim=ndim, n_shots_hint=hint)
    targets = parse_requires_grad(o.requires_grad, physics.material)
    interval = checks.integer(o.model_gradient_sampling_interval,
                              "model_gradient_sampling_interval", minimum=1)
    check_callback(o.backward_callback, "backward_callback")
    storage_opts = StorageOptions.from_arguments(
        o.storage_mode, o.storage_path, o.storage_compression, o.storage_bytes_limit_device,
        o.storage_bytes_limit_host, o.storage_chunk_steps, models.dtype, o.checkpoint_count)
    _check_gradient_options(physics.material, targets, acq, interval, storage_opts,
                            o.backward_callback)

    v_model = physics.material.max_velocity(models.arrays)
    max_vel = o.max_vel
    if max_vel is None:
        max_vel = v_model
    else:
        max_vel = checks.positive_float(max_vel, "max_vel")
        if max_vel < v_model * (1 - 1e-12):
            raise ValueError(f"max_vel={max_vel:.6g} m/s is below the model's fastest speed "
                             f"{v_model:.6g} m/s; the run would be unstable")
    inner_dt, step_ratio = cfl_condition(spacing, dt, max_vel, o.stencil)
    physics.material.check_step(models.arrays, inner_dt)
    axes = tuple(Axis(models.shape[d], widths[2 * d], widths[2 * d + 1], o.stencil)
                 for d in range(ndim))
    n_total = models.n_models * acq.n_shots
    plan = Plan(
        kind=physics.kind, dtype=models.dtype.name, order=o.stencil, axes=axes,
        spacing=spacing, n_models=models.n_models, model_batched=models.batched,
        n_shots=acq.n_shots, n_sources=acq.source_location.shape[1],
        n_receivers=acq.receiver_location.shape[1], dt=dt, inner_dt=inner_dt,
        step_ratio=step_ratio, nt=acq.nt, max_vel=max_vel, cpml=cpml, resampling=resampling,
        callback_frequency=callback_frequency,
        backend="reference" if python_backend else o.device, n_threads=threads,
        targets=targets, interval=interval, storage=_NO_STORAGE, source_component=src_comp,
        receiver_components=rec_comps, component_axis=comp_axis,
        kernel_family=physics.material.kernel_family)
    # Snapshots in RAM get what the rest of the run leaves of the available memory.
    host_backend = python_backend or o.device == "cpu"
    before = memory_estimate(physics, plan)
    rest = _host_bytes(before, plan, host_backend)
    names = physics.snapshot_names(targets)
    item = np.dtype(models.dtype).itemsize
    storage = plan_storage(storage_opts, names, acq.nt * step_ratio,
                           interval, (n_total, *(a.n_padded for a in axes)),
                           models.dtype, host_backend=host_backend,
                           device_memory=device_free_bytes(o.device), reserved=rest,
                           counts=tuple(physics.material.snapshot_count(n) for n in names),
                           state_bytes=before.fields + before.cpml_memories,
                           trace_bytes=n_total * plan.n_receivers * len(rec_comps)
                           * plan.nt_internal * item)
    plan = replace(plan, storage=storage)
    shapes = state_shapes(axes, plan.batch_shape, physics.memories, physics.state_fields,
                          physics.state_extent)
    initial = validate_initial_state(o.initial_state, shapes, models.dtype, plan.batch_shape)
    check_units(physics.material, models, spacing, dt, max_vel, o.max_vel is not None, step_ratio)
    return plan, models, acq, initial


def _check_gradient_options(material, targets, acq, interval, storage_opts,
                            backward_callback):
    """Options that only act with gradients must not be given without them."""
    if "source_amplitude" in targets and acq.source_amplitude is None:
        raise ValueError("requires_grad names 'source_amplitude' but the run has no sources")
    model_targets = targets - {"source_amplitude"}
    names = material.describe_inputs()
    if not targets and backward_callback is not None:
        raise ValueError("backward_callback runs during vjp, which needs requires_grad")
    if not model_targets:
        if interval != 1:
            raise ValueError("model_gradient_sampling_interval only acts on model gradients "
                             f"(requires_grad with {names})")
        defaults = StorageOptions()
        changed = [name for name, value, default in (
            ("storage_mode", storage_opts.mode, defaults.mode),
            ("storage_path", storage_opts.path, defaults.path),
            ("storage_compression", storage_opts.compression, defaults.compression),
            ("storage_bytes_limit_device", storage_opts.bytes_limit_device, None),
            ("storage_bytes_limit_host", storage_opts.bytes_limit_host, None),
            ("storage_chunk_steps", storage_opts.chunk_steps, None),
            ("checkpoint_count", storage_opts.checkpoint_count, None)) if value != default]
        if changed and not (changed == ["storage_mode"] and storage_opts.mode == "none"):
            raise ValueError(f"{', '.join(changed)} only act when model gradients are "
                             f"requested (requires_grad with {names}); "
                             "no snapshots are stored")


_NO_STORAGE = StoragePlan("none", "none", (), 0, 1, (), 1, "none", 1, None)


def memory_estimate(physics: Physics, plan: Plan) -> MemoryEstimate:
    """Bytes of the arrays a run allocates (computed from the plan alone)."""
    item = np.dtype(plan.dtype).itemsize
    n = plan.n_total_shots
    cells = math.prod(plan.padded_shape)
    memory_cells = sum(math.prod(s) for s in state_shapes(
        plan.axes, (n,), physics.memories, ()).values())
    fields = n * cells * sum(physics.state_extent.get(f, 1)
                             for f in physics.state_fields) * item
    memories = memory_cells * item
    material = physics.material
    coefficients = sum(map(material.extent, material.coefficients)) * plan.n_models * cells \
        * item
    models = sum(map(material.extent, material.inputs)) * plan.n_models * cells * item  # padded
    records = n * (plan.n_sources + plan.n_receivers * len(plan.receiver_components)) \
        * plan.nt_internal * item
    snapshots = plan.storage.held_bytes
    adjoint = 0
    if plan.targets:
        n_grads = sum(map(material.extent, material.gradient_coefficients(plan.targets)))
        adjoint = (fields + memories + n * cells * (len(physics.scratch) + n_grads) * item
                   + n * plan.n_sources * plan.nt_internal * item
                   + n * plan.n_receivers * len(plan.receiver_components) * plan.nt * item)
    return MemoryEstimate(fields=fields, cpml_memories=memories, coefficients=coefficients,
                          sources_receivers=records, snapshots=snapshots, adjoint=adjoint,
                          models=models)


def _host_bytes(est: MemoryEstimate, plan: Plan, host_backend: bool) -> int:
    """Host bytes of a run without its snapshots: everything on a host backend;
    the prepared arrays (which the backend then copies to its memory) otherwise."""
    if host_backend:
        return est.peak - est.snapshots
    return est.fields + est.cpml_memories + est.coefficients + est.models + est.sources_receivers


def memory_fit(physics: Physics, plan: Plan) -> MemoryEstimate:
    """``memory_estimate`` with ``available``, ``fits`` and ``reason``: the host
    bytes of the whole run (and, on a device backend, its device bytes) against
    what is available (MemAvailable, cgroup limits, RLIMIT_AS/RLIMIT_DATA)."""
    est = memory_estimate(physics, plan)
    host_backend = plan.backend in ("cpu", "reference", "cuda-emulated")
    storage = plan.storage
    host_snapshots = est.snapshots if host_backend or storage.mode in ("cpu", "disk") else 0
    need = _host_bytes(est, plan, host_backend) + host_snapshots
    have = POOL.counted(host_available())  # the snapshot pool's parked blocks serve runs
    where, available = "host memory", have
    if need <= have.bytes and not host_backend:
        free = device_free_bytes(plan.backend)
        on_device = est.peak - host_snapshots
        if storage.mode in ("cpu", "disk"):
            on_device += 2 * storage.chunk * storage.bytes_per_snapshot  # staging chunks
        if free is not None and on_device > free:
            need, where = on_device, "device memory"
            available = Available(free, "free device memory")
    if need <= available.bytes:
        return replace(est, available=available.bytes)
    gib = format_bytes
    shape = " x ".join(map(str, plan.model_shape))
    padded = " x ".join(map(str, plan.padded_shape))
    snap = {"device": "all snapshots in memory", "cpu": "all snapshots in host memory",
            "disk": "two chunks of snapshots in RAM", "none": "no snapshots",
            "checkpoint": "checkpoints and one segment of snapshots"}[storage.mode]
    advice = ("storage_mode='disk', bf16 compression or a larger "
              "model_gradient_sampling_interval, " if storage.mode in ("device", "cpu") else "")
    reason = (f"this run needs {gib(need)} of {where} but {available.describe()} is "
              f"available: {est.describe()}. It grows with the shots ({plan.n_shots} shots x "
              f"{plan.n_models} models), the model size ({shape}, padded to {padded} by "
              f"pml_width={plan.pml_width}), nt ({plan.nt_internal} internal steps of "
              f"traces{' and snapshots' if storage.mode != 'none' else ''}) and the storage "
              f"mode (storage_mode={storage.requested_mode!r}: {snap}); use {advice}fewer shots "
              "per run, a smaller model or a narrower pml_width")
    return replace(est, available=available.bytes, fits=False, reason=reason)


# -- buffers --------------------------------------------------------------------

def _pad_models(plan: Plan, models) -> dict:
    """Edge-pad the models into the CPML and halo (a pole axis is not padded)."""
    pad = [a.pad for a in plan.axes]
    return {name: np.pad(array, [(0, 0)] * (array.ndim - plan.ndim) + pad, mode="edge")
            for name, array in models.arrays.items()}


def _flat_index(plan: Plan, locations: np.ndarray) -> np.ndarray:
    """Model cell indices ``[N, n, ndim]`` -> flat indices into a padded shot."""
    flat = np.zeros(locations.shape[:-1], np.int64)
    for d, axis in enumerate(plan.axes):
        flat = flat * axis.n_padded + locations[..., d] + axis.pml_start
    return np.ascontiguousarray(flat, dtype=np.int64)


def prepare_buffers(physics: Physics, plan: Plan, models, acq, initial: dict
                    ) -> SimpleNamespace:
    """All arrays of the run in the layout of the kernels' parameter struct."""
    dtype = np.dtype(plan.dtype)
    n = plan.n_total_shots
    padded = _pad_models(plan, models)
    material = physics.material
    coeffs = material.coefficients_of(padded, plan.inner_dt, plan.dtype)
    profiles = {}
    for letter, axis, h in zip(AXIS_LETTERS[plan.ndim], plan.axes, plan.spacing):
        prof = cpml_profiles(axis, h, plan.inner_dt, plan.cpml, dtype)
        profiles.update({f"{k[0]}{letter}{k[1:]}": v for k, v in prof.items()})

    src_index = _flat_index(plan, acq.source_location)
    if plan.n_sources:
        amplitude = acq.source_amplitude
        if plan.step_ratio > 1:
            r = plan.resampling
            amplitude = upsample(amplitude, plan.step_ratio, r.freq_taper_frac,
                                 r.time_pad_frac, r.time_taper,
                                 shift=source_shift(plan.step_ratio))
        model_of_shot = np.arange(n) // plan.n_shots
        at_source = coeffs[material.source_coefficient].reshape(plan.n_models, -1)
        cb_at_source = at_source[model_of_shot[:, None], src_index]
        scale = dtype.type(-1.0 / float(np.prod(plan.spacing)))
        src_term = np.ascontiguousarray(amplitude * cb_at_source[..., None] * scale,
                                        dtype=dtype)
    else:
        amplitude = None
        src_term = np.zeros((n, 0, plan.nt_internal), dtype)

    n_channels = plan.n_receivers * len(plan.receiver_components)
    b = SimpleNamespace(
        **zeros_block({**{name: physics.state_shape(name, n, plan.padded_shape)
                          for name in physics.state_fields},
                       **state_shapes(plan.axes, (n,), physics.memories, ())}, dtype),
        **coeffs, **profiles,
        src_term=src_term, src_index=src_index,
        rec_data=np.zeros((n, n_channels, plan.nt_internal), dtype),
        rec_index=_flat_index(plan, acq.receiver_location),
        # Padding sources/receivers (location -1): masks [N, n] on the host, or None.
        src_padded=acq.source_padded, rec_padded=acq.receiver_padded,
        models=padded,
        # The internal source amplitude, kept for source gradients.
        src_amplitude=amplitude if plan.targets else None,
        **{f"snap_{name}": None for name in physics.all_snapshots},
    )
    b.geometry = physics.geometry(plan)
    b.geometry.update(
        snap_t0=0, snap_interval=plan.interval if plan.storage.mode != "none" else 0,
        snap_bf16=int(plan.storage.compression == "bf16"), **material.kernel_scalars)
    _load_state(physics, plan, b, initial)
    return b


def _load_state(physics: Physics, plan: Plan, b, initial: dict) -> None:
    """Copy an initial state into the buffers (zeroing the non-degrees of freedom)."""
    n = plan.n_total_shots
    edges = physics.state_edge
    for name, value in initial.items():
        value = value.reshape(n, *value.shape[len(plan.batch_shape):])
        if name in physics.state_fields:
            target = getattr(b, name)[state_domain(physics, plan, name)]
            target[...] = value
            if name in edges:  # H after the last E node is not on the grid
                edge = [slice(None)] * target.ndim
                edge[target.ndim - plan.ndim + edges[name]] = -1
                target[tuple(edge)] = 0
        else:
            getattr(b, name)[...] = value


# -- running --------------------------------------------------------------------

def batched(plan: Plan, array: np.ndarray) -> np.ndarray:
    """View ``[N, ...]`` per-shot arrays as ``[*batch_shape, ...]``."""
    return array.reshape(*plan.batch_shape, *array.shape[1:])


def model_view(plan: Plan, array: np.ndarray) -> np.ndarray:
    return array if plan.model_batched else array[0]


def callback_state(physics: Physics, plan: Plan, b, step: int,
                   sweep: str = "forward") -> CallbackState:
    names = (*physics.state_fields, *physics.memories)
    models = {k: model_view(plan, v) for k, v in b.models.items()}
    models.update({k: model_view(plan, getattr(b, k)) for k in physics.material.coefficients})
    return CallbackState(
        dt=plan.inner_dt, step=step, nt=plan.nt_internal,
        wavefields={k: batched(plan, getattr(b, k)) for k in names},
        models=models, axes=plan.axes, model_batched=plan.model_batched, sweep=sweep)


def run_forward(physics: Physics, plan: Plan, backend, b, callback, store=None, *,
                progress: bool = False) -> None:
    """The forward sweep (wavecore._sweeps): advance all internal steps, calling
    ``callback`` before steps 0, f, 2f, ... and filling the snapshot chunks of
    ``store``; ``progress`` draws a tqdm bar over the internal steps."""
    at = None if callback is None else (lambda t: callback(callback_state(physics, plan, b, t)))
    run_sweep(FORWARD, plan, backend, b, store, at, snapshot_names=physics.all_snapshots,
              progress=progress)


def receiver_data(plan: Plan, b, memory=HOST, padded=None) -> np.ndarray:
    """The user's receiver data; padding receivers (mask ``padded`` [N, Nr], the
    run's ``acq.receiver_padded``) read zeros."""
    data = memory.to_host(b.rec_data)
    if plan.step_ratio > 1 and data.size:
        data = sample_receivers(data, plan.step_ratio, plan.receiver_positions,
                                plan.resampling.time_taper)
    data = np.ascontiguousarray(data)
    if padded is not None:
        mask = np.broadcast_to(padded[:, None, :], (data.shape[0], len(
            plan.receiver_components), plan.n_receivers))
        data.reshape(mask.shape + data.shape[-1:])[mask] = 0
    if plan.component_axis:
        data = data.reshape(data.shape[0], len(plan.receiver_components), plan.n_receivers,
                            data.shape[-1])
    return batched(plan, data)


def state_domain(physics: Physics, plan: Plan, name: str) -> tuple:
    """Index of the domain (model + CPML, no halo) in state buffer ``name``."""
    lead = 2 if name in physics.state_extent else 1
    return (*(slice(None),) * lead, *(a.domain for a in plan.axes))


def final_state(physics: Physics, plan: Plan, b, memory=HOST) -> WaveState:
    """The state over the domain: views of the run's buffers in host memory (the
    run is over, so nothing writes them any more; copying gigabytes would only
    cost time), or copies from a device."""
    arrays = {name: batched(plan, memory.to_host(getattr(b, name)[
        state_domain(physics, plan, name)])) for name in physics.state_fields}
    arrays.update({name: batched(plan, memory.to_host(getattr(b, name)))
                   for name in physics.memories})
    return WaveState(arrays)
