"""Physical constants (SI units) used throughout wavecore."""

import math

#: Vacuum permittivity (F/m), CODATA 2018.
EP0 = 8.8541878128e-12
#: Vacuum permeability (H/m), 4 pi 1e-7.
MU0 = 1.2566370614359173e-06
#: Speed of light in vacuum (m/s), 1 / sqrt(EP0 MU0).
C0 = 1.0 / math.sqrt(EP0 * MU0)

__all__ = ["EP0", "MU0", "C0"]
