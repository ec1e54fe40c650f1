"""Results of wavecore runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .gradients import Gradients
from .memory import format_bytes
from .plan import Plan
from .state import WaveState
from ._sweeps import check_capable

__all__ = ["ForwardResult", "MemoryEstimate"]


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of the arrays a run allocates, computed from its plan before it starts.

    ``forward`` is what the forward run holds (fields, CPML memories,
    coefficients, padded models, source and receiver traces, snapshots in RAM or the disk
    transfer buffers); ``adjoint`` what ``vjp`` adds on top (adjoint state,
    scratch arrays, gradient accumulators).
    """

    fields: int
    cpml_memories: int
    coefficients: int
    sources_receivers: int
    snapshots: int
    adjoint: int
    #: The models padded into the CPML (kept for callbacks and the chain rule).
    models: int = 0
    #: Host bytes available when it was computed (the least of MemAvailable, the
    #: cgroup limits and RLIMIT_AS/RLIMIT_DATA), whether the run fits them and,
    #: if not, why (the MemoryError the run raises).
    available: int | None = field(default=None, compare=False)
    fits: bool = field(default=True, compare=False)
    reason: str = field(default="", compare=False)

    @property
    def forward(self) -> int:
        return (self.fields + self.cpml_memories + self.coefficients + self.models
                + self.sources_receivers + self.snapshots)

    @property
    def peak(self) -> int:
        """Forward and adjoint arrays together (the peak during ``vjp``)."""
        return self.forward + self.adjoint

    def describe(self) -> str:
        mib = format_bytes
        return (f"forward {mib(self.forward)} (fields {mib(self.fields)}, CPML memories "
                f"{mib(self.cpml_memories)}, coefficients {mib(self.coefficients)}, models "
                f"{mib(self.models)}, "
                f"snapshots {mib(self.snapshots)}), adjoint +{mib(self.adjoint)}")


@dataclass
class ForwardResult:
    """What a forward run returns.

    Attributes
    ----------
    receiver_data : ndarray
        ``[S, n_receivers, nt]`` (``[B, S, n_receivers, nt]`` for batched
        models): the recorded component at the receivers, sample ``n`` being
        the field after user step ``n`` (time last, unlike TIDE's time-first
        layout). ``maxwell3d`` with a list of receiver components adds a
        component axis: ``[S, n_components, n_receivers, nt]``.
    final_state : WaveState
        Fields and CPML memories over the domain (model + CPML), to continue
        the run with ``initial_state=``.
    dt : float
        Internal time step, seconds (``plan.dt / step_ratio``).
    step_ratio : int
        Internal steps per user sample (1 unless the CFL condition required more).
    plan : Plan
        Every size and choice of the run.
    memory : MemoryEstimate
        Bytes the run allocates (also available before a run, from
        ``wavecore.estimate_memory``).

    With ``requires_grad``, the result also holds what the adjoint needs (the
    snapshots and the run's buffers) until :meth:`vjp` runs without
    ``keep=True`` or :meth:`close` is called; it is a context manager.
    """

    receiver_data: np.ndarray
    final_state: WaveState
    dt: float
    step_ratio: int
    plan: Plan
    memory: MemoryEstimate | None = None
    gradient: object = field(default=None, repr=False)
    backward_callback: object = field(default=None, repr=False)

    @property
    def storage(self):
        """The :class:`~wavecore.storage.StoragePlan` of the snapshots (None without
        model gradients): mode (the one "auto" chose), bytes, snapshots, chunks."""
        return self.plan.storage

    def vjp(self, grad_receiver_data, *, keep: bool = False) -> Gradients:
        """Gradients of ``sum(grad_receiver_data * receiver_data)`` with respect to the
        requested inputs (a vector-Jacobian product of the whole run).

        Parameters
        ----------
        grad_receiver_data : ndarray
            ``dJ/d(receiver_data)``, the shape of ``receiver_data``.
        keep : bool
            Keep the snapshots for another ``vjp`` (default: free them).

        Returns
        -------
        Gradients
            ``epsilon``, ``sigma``, ``mu``, ``source_amplitude`` (None where not
            requested), each shaped like the corresponding input.
        """
        check_capable("vjp", self)
        return self.gradient.vjp(grad_receiver_data, keep=keep,
                                 backward_callback=self.backward_callback)

    def jvp(self, *, keep: bool = False, callback=None, **directions):
        """The Jacobian-vector product J v of the run: the receiver data of its
        linearization (the Born or tangent-linear run) along ``directions``.

        Parameters
        ----------
        **directions : ndarray
            Any of ``epsilon``, ``sigma``, ``mu``, ``source_amplitude`` (and, in
            Debye media, ``delta_epsilon``, ``tau``), each shaped like its input;
            every one must be in the run's ``requires_grad``.
        keep : bool
            Keep the snapshots for more ``jvp`` / ``vjp`` calls (default: free them,
            as ``vjp`` does).
        callback : callable, optional
            Called with a :class:`~wavecore.callbacks.CallbackState` of the
            scattered (tangent) state before steps 0, f, 2f, ... (``f`` the run's
            ``callback_frequency``).

        Returns
        -------
        ndarray
            ``J v``, shaped like ``receiver_data``: the exact derivative of the
            discrete forward map along ``v`` (with
            ``model_gradient_sampling_interval=1`` and uncompressed snapshots; see
            docs/second-order.md for the other settings). It reuses the snapshots
            stored for ``vjp``: no background run is repeated, and
            ``<jvp(v), w> = <v, vjp(w)>`` to rounding for every setting.
        """
        check_capable("jvp", self, directions=tuple(directions))
        return self.gradient.jvp(directions, keep=keep, callback=callback)

    def second_vjp(self, direction: dict, cotangent, *, keep: bool = False, callback=None):
        """The gradient of ``<cotangent, J(m) v>`` with respect to the run's
        ``requires_grad`` inputs: the second-order adjoint, the derivative of
        ``vjp(cotangent)`` along ``v``.

        Parameters
        ----------
        direction : dict
            ``v``: any of the inputs ``jvp`` takes (``epsilon``, ``sigma``, ``mu``,
            ``source_amplitude`` and, in Debye media, ``delta_epsilon``, ``tau``),
            each shaped like its input and in the run's ``requires_grad``.
        cotangent : ndarray
            ``c``, shaped like ``receiver_data``.
        keep : bool
            Keep the snapshots for more calls (default: free them, as ``vjp`` does).
        callback : callable, optional
            Called with a :class:`~wavecore.callbacks.CallbackState` in each of
            the three sweeps (``state.sweep``: ``"adjoint-keep"`` and
            ``"second-adjoint"`` after the transposed steps ..., f, 0, with the
            adjoint state and the gradients accumulated so far, as a backward
            callback; ``"tangent-image"`` before steps 0, f, 2f, ... with the
            scattered state, as jvp's).

        Returns
        -------
        Gradients
            ``grad_m <c, J(m) v>`` in every ``requires_grad`` input: the exact
            derivative of the discrete map (with
            ``model_gradient_sampling_interval=1`` and uncompressed snapshots; see
            docs/second-order.md). With a misfit ``phi`` the full Hessian product
            is ``vjp(H_phi J v) + second_vjp(v, grad phi)``
            (:func:`wavecore.inversion.hvp` composes it in three sweeps). It runs
            three sweeps over the stored snapshots (an adjoint keeping its
            values, a tangent, an adjoint driven by them) and keeps, while it
            runs, a second store of adjoint values in the snapshots' place.
        """
        check_capable("second_vjp", self, directions=tuple(direction))
        return self.gradient.second_vjp(direction, cotangent, keep=keep, callback=callback)

    def close(self) -> None:
        """Free the snapshots and delete their files (idempotent)."""
        if self.gradient is not None:
            self.gradient.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def nt(self) -> int:
        """User samples."""
        return self.plan.nt

    @property
    def nt_internal(self) -> int:
        return self.plan.nt_internal
