"""Full-waveform inversion with wavecore's exact gradients.

:mod:`.misfit` has the data misfits and their Hessians, :mod:`.newton` the
Gauss-Newton and full Hessian products and the inner solve, :mod:`.fwi` the bounded
parameterization, the optimizers (scipy's L-BFGS-B, projected steepest
descent, nonlinear conjugate gradients, projected Gauss-Newton and truncated Newton), frequency
continuation, shot mini-batches, gradient smoothing and per-iteration
checkpoints.
"""

from .fwi import Bounds, FwiResult, invert
from .misfit import HESSIANS, MISFITS, huber, l2, ncc
from .newton import conjugate_gradient, gauss_newton_hvp, hvp

__all__ = ["Bounds", "FwiResult", "invert", "MISFITS", "HESSIANS", "l2", "ncc", "huber",
           "gauss_newton_hvp", "hvp", "conjugate_gradient"]
