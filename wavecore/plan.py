"""The plan of a run: every size and choice, computed once, no arrays.

A :class:`Plan` is what the backends execute. It is built by the public
functions after validation and never imports a backend (tests check the
import direction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .grid import Axis, CpmlOptions
from .resampling import sample_position
from .storage import StoragePlan

__all__ = ["Plan", "Resampling"]


@dataclass(frozen=True)
class Resampling:
    """Band-limited resampling options for CFL sub-stepping (see resampling.py)."""

    freq_taper_frac: float = 0.0
    time_pad_frac: float = 0.0
    time_taper: bool = False


@dataclass(frozen=True)
class Plan:
    """Shapes, discretization and execution choices of one run.

    Shots are flattened: shot ``n`` of the run is shot ``n % n_shots`` of
    model ``n // n_shots``; ``n_total_shots = n_models * n_shots``.
    """

    kind: str                        #: "tm2d" or "maxwell3d"
    dtype: str                       #: "float32" or "float64"
    order: int                       #: stencil order 2, 4, 6 or 8
    axes: tuple[Axis, ...]           #: one per spatial axis (z, x) or (z, y, x)
    spacing: tuple[float, ...]       #: metres, per axis
    n_models: int                    #: B (1 when the model is not batched)
    model_batched: bool              #: the user passed [B, ...] models
    n_shots: int                     #: shots per model, S
    n_sources: int
    n_receivers: int
    dt: float                        #: user sample interval
    inner_dt: float                  #: internal time step
    step_ratio: int                  #: internal steps per user sample
    nt: int                          #: user samples
    max_vel: float                   #: velocity used by the CFL condition
    cpml: CpmlOptions = field(default_factory=CpmlOptions)
    resampling: Resampling = field(default_factory=Resampling)
    callback_frequency: int = 1
    backend: str = "cpu"             #: "reference" or "cpu"
    n_threads: int = 1
    targets: frozenset = frozenset()  #: requested gradients
    interval: int = 1                #: model_gradient_sampling_interval
    storage: StoragePlan | None = None  #: snapshots (mode "none" without model gradients)
    source_component: str = "ey"     #: the E component the sources drive
    receiver_components: tuple[str, ...] = ("ey",)  #: recorded components, in data order
    component_axis: bool = False     #: data have a component axis before the receivers
    kernel_family: str = ""          #: the law's CUDA kernels (Material.kernel_family)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def nt_internal(self) -> int:
        return self.nt * self.step_ratio

    @property
    def receiver_positions(self) -> tuple[float, ...]:
        """Internal sample holding user sample 0 of each recorded component (data
        order): E is recorded after a step, H half a step earlier."""
        return tuple(sample_position(self.step_ratio, half_step=name.startswith("h"))
                     for name in self.receiver_components)

    @property
    def n_total_shots(self) -> int:
        return self.n_models * self.n_shots

    @property
    def model_shape(self) -> tuple[int, ...]:
        return tuple(a.n for a in self.axes)

    @property
    def padded_shape(self) -> tuple[int, ...]:
        return tuple(a.n_padded for a in self.axes)

    @property
    def domain_shape(self) -> tuple[int, ...]:
        return tuple(a.n_domain for a in self.axes)

    @property
    def pml_width(self) -> tuple[int, ...]:
        return tuple(w for a in self.axes for w in (a.pml_lo, a.pml_hi))

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading axes of per-shot outputs: (B, S) when batched, else (S,)."""
        return (self.n_models, self.n_shots) if self.model_batched else (self.n_shots,)

    @property
    def cells(self) -> int:
        """Model cells (the unit of the throughput figures)."""
        n = 1
        for a in self.axes:
            n *= a.n
        return n
