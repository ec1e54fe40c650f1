"""Full-waveform inversion with wavecore's exact gradients.

:mod:`.misfit` has the data misfits, :mod:`.fwi` the bounded
parameterization, the optimizers (scipy's L-BFGS-B, projected steepest
descent, nonlinear conjugate gradients), frequency continuation, shot
mini-batches, gradient smoothing and per-iteration checkpoints.
"""

from .fwi import Bounds, FwiResult, invert
from .misfit import MISFITS, huber, l2, ncc

__all__ = ["Bounds", "FwiResult", "invert", "MISFITS", "l2", "ncc", "huber"]
