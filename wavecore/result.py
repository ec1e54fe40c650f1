"""Results of wavecore runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import Plan
from .state import WaveState

__all__ = ["ForwardResult"]


@dataclass
class ForwardResult:
    """What a forward run returns.

    Attributes
    ----------
    receiver_data : ndarray
        ``[S, n_receivers, nt]`` (``[B, S, n_receivers, nt]`` for batched
        models): ``Ey`` at the receivers, sample ``n`` being the field after
        user step ``n`` (time last, unlike TIDE's time-first layout).
    final_state : WaveState
        Fields and CPML memories over the domain (model + CPML), to continue
        the run with ``initial_state=``.
    dt : float
        Internal time step, seconds (``plan.dt / step_ratio``).
    step_ratio : int
        Internal steps per user sample (1 unless the CFL condition required more).
    plan : Plan
        Every size and choice of the run.
    """

    receiver_data: np.ndarray
    final_state: WaveState
    dt: float
    step_ratio: int
    plan: Plan

    @property
    def nt(self) -> int:
        """User samples."""
        return self.plan.nt

    @property
    def nt_internal(self) -> int:
        return self.plan.nt_internal
