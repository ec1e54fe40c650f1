"""Helpers for testing wavecore (and code built on it).

``dottest`` checks that an operator and its adjoint are transposes; ``taylor_test``
checks a gradient by the convergence rates of the Taylor remainders. Both are
used by wavecore's own tests. ``wavecore.testing.tide`` runs the peer TIDE,
``wavecore.testing.gprmax`` runs gprMax on a Hertzian-dipole problem.
"""

from .checks import dottest, taylor_test

__all__ = ["dottest", "taylor_test"]
