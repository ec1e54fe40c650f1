"""``wavecore.maxwell3d``: full 3-D Yee (Ex, Ey, Ez, Hx, Hy, Hz) modelling and gradients.

The run itself is shared with TM2D (:mod:`wavecore._driver`); this module
says what is particular to 3-D: six fields, twelve CPML memories, source and
receiver components, and the sizes its kernel reads.
"""

from __future__ import annotations

from . import _driver
from ._driver import Physics
from .plan import Plan
from .result import ForwardResult
from .state import M3D_FIELDS, M3D_MEMORIES

__all__ = ["maxwell3d", "MAXWELL3D"]

_COMPONENT_ID = {name: i for i, name in enumerate(M3D_FIELDS)}


def _geometry(plan: Plan) -> dict:
    """The sizes of ``wc::M3dParams``."""
    z, y, x = plan.axes
    return dict(
        rdz=1.0 / plan.spacing[0], rdy=1.0 / plan.spacing[1], rdx=1.0 / plan.spacing[2],
        nz=z.n_padded, ny=y.n_padded, nx=x.n_padded, n_shots=plan.n_total_shots,
        shots_per_model=plan.n_shots, n_src=plan.n_sources, n_rec=plan.n_receivers,
        nt=plan.nt_internal, src_component=_COMPONENT_ID[plan.source_component],
        n_rec_comp=len(plan.receiver_components),
        rec_comp=[_COMPONENT_ID[c] for c in plan.receiver_components],
        pml_z0=z.pml_start, pml_z1=z.pml_end, pml_y0=y.pml_start, pml_y1=y.pml_end,
        pml_x0=x.pml_start, pml_x1=x.pml_end, pz0=z.pml_lo, py0=y.pml_lo, px0=x.pml_lo,
        psi_z_n=z.n_slab, psi_y_n=y.n_slab, psi_x_n=x.n_slab)


_W = ("w_hx_y", "w_hx_z", "w_hy_x", "w_hy_z", "w_hz_x", "w_hz_y")
_V = ("v_ex_y", "v_ex_z", "v_ey_x", "v_ey_z", "v_ez_x", "v_ez_y")

#: The 3-D Yee system.
MAXWELL3D = Physics(
    kind="maxwell3d", ndim=3, fields=M3D_FIELDS, memories=M3D_MEMORIES,
    snapshots={"ca_cb": ("ex", "ey", "ez", "cx", "cy", "cz"), "cq": ("sx", "sy", "sz"),
               "debye": ("pol_x", "pol_y", "pol_z", "esum_x", "esum_y", "esum_z")},
    scratch=_W + _V, geometry=_geometry, tail_scratch=_W,
    e_components=("ex", "ey", "ez"), record_components=M3D_FIELDS,
    kept={"ca_cb": ("ex", "ey", "ez"), "cq": ("hx", "hy", "hz"),
          "debye": ("pol_x", "pol_y", "pol_z")})


def maxwell3d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
              receiver_location, *, source_component: str = "ey", receiver_component="ey",
              stencil: int = 2, pml_width=20, max_vel: float | None = None,
              nt: int | None = None, initial_state=None, freq_taper_frac: float = 0.0,
              time_pad_frac: float = 0.0, time_taper: bool = False, forward_callback=None,
              callback_frequency: int = 1, python_backend: bool = False,
              device: str | None = None,
              n_threads: int | None = None, compute_precision: str = "default",
              pml_power: float = 4.0, pml_sigma0_scale: float = 1.0,
              pml_kappa_max: float = 5.0, pml_alpha_max: float = 0.008, requires_grad=(),
              model_gradient_sampling_interval: int = 1, storage_mode: str = "auto",
              storage_path=None, storage_compression=False,
              storage_bytes_limit_device: int | None = None,
              storage_bytes_limit_host: int | None = None,
              storage_chunk_steps: int | None = None, checkpoint_count: int | None = None,
              backward_callback=None, experimental_cuda_graph: bool = False,
              progress: bool = False, dispersion=None) -> ForwardResult:
    """Simulate 3-D electromagnetic waves on the Yee grid with CPML boundaries.

    Axes are ``z`` (depth, axis 0), ``y`` (axis 1) and ``x`` (axis 2). The
    standard Yee cell of integer node ``(z, y, x)`` holds ``Ex`` at
    ``(z, y, x + 1/2)``, ``Ey`` at ``(z, y + 1/2, x)``, ``Ez`` at
    ``(z + 1/2, y, x)``, ``Hx`` at ``(z + 1/2, y + 1/2, x)``, ``Hy`` at
    ``(z + 1/2, y, x + 1/2)`` and ``Hz`` at ``(z, y + 1/2, x + 1/2)``; a source
    or receiver at cell ``(z, y, x)`` acts on its component at that position.
    H has its physical sign (TIDE stores -H).

    Parameters
    ----------
    epsilon, sigma, mu : ndarray, [nz, ny, nx] or [B, nz, ny, nx]
        Relative permittivity (> 0), conductivity in S/m (>= 0) and relative
        permeability (> 0), float32 or float64 (one dtype for all; it sets the
        compute precision). A leading ``B`` axis gives one model per batch entry.
    grid_spacing : float or (dz, dy, dx)
        Cell size in metres.
    dt : float
        Sample interval of sources and receivers, seconds. If it exceeds the
        stable step of the stencil, the run is sub-stepped (``step_ratio``).
    source_amplitude : ndarray [S, n_sources, nt] or [B, S, n_sources, nt], or None
        Source current moments (A m) per shot, model dtype; sources in one
        cell add up. Injected as ``E += -cb s / (dz dy dx)``.
    source_location : int ndarray [S, n_sources, 3] (or [B, S, ...]), or None
        Source cells ``(z, y, x)`` as indices into the model.
    receiver_location : int ndarray [S, n_receivers, 3] (or [B, S, ...]), or None
        Receiver cells ``(z, y, x)``.
    source_component : {"ex", "ey", "ez"}
        The electric component the sources drive (an electric dipole along it).
    receiver_component : str or list of str
        Recorded component among ``"ex", "ey", "ez", "hx", "hy", "hz"``. A
        single name gives data ``[S, n_receivers, nt]`` (as TIDE); a list gives
        ``[S, n_components, n_receivers, nt]`` in the list's order, all recorded
        in one run. E sample ``n`` is E after step ``n``, at ``(n + 1) dt``; H
        sample ``n`` is the H of step ``n``, half a time step earlier, at
        ``(n + 1/2) dt``, also in a sub-stepped run (see
        :func:`wavecore.resampling.sample_receivers`).
    stencil : {2, 4, 6, 8}
        Accuracy order of the staggered spatial derivatives.
    pml_width : int, (wz, wy, wx) or (z0, z1, y0, y1, x0, x1)
        CPML cells on each side; 0 makes that side a reflecting wall.
    max_vel, nt, initial_state, freq_taper_frac, time_pad_frac, time_taper,
    forward_callback, callback_frequency, python_backend, device, n_threads,
    compute_precision, pml_power, pml_sigma0_scale, pml_kappa_max, pml_alpha_max,
    requires_grad, model_gradient_sampling_interval, storage_mode, storage_path,
    storage_compression, storage_bytes_limit_device, storage_bytes_limit_host,
    storage_chunk_steps, checkpoint_count, backward_callback, experimental_cuda_graph,
    progress, dispersion
        As in :func:`wavecore.tm2d`. With ``dispersion`` each E component has
        its own polarization (``pol_ex``, ``pol_ey``, ``pol_ez``). The state (``initial_state``,
        ``final_state``, callback wavefields) holds the six fields and the
        twelve CPML memories ``psi_<field>_<axis>``, each memory only over the
        CPML slabs of its axis.

    Returns
    -------
    ForwardResult
        ``receiver_data`` (shape above; ``[B, ...]`` for batched models),
        ``final_state``, the internal ``dt`` and ``step_ratio``, ``memory``
        (bytes allocated); with ``requires_grad`` also ``vjp`` and ``close``.
    """
    return _driver.run(
        MAXWELL3D, epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
        receiver_location, source_component=source_component,
        receiver_component=receiver_component, stencil=stencil, pml_width=pml_width,
        max_vel=max_vel, nt=nt, initial_state=initial_state,
        freq_taper_frac=freq_taper_frac, time_pad_frac=time_pad_frac, time_taper=time_taper,
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

