"""Built-in models for demos and tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GprModel", "buried_pipe_and_void", "pipe_and_wet_layer"]


@dataclass
class GprModel:
    """A 2-D GPR model: material arrays ``[nz, nx]`` and the survey line.

    ``surface_row`` is the first soil row; ``antenna_row`` the row of the
    antennas (in the air, just above the ground).
    """

    epsilon: np.ndarray
    sigma: np.ndarray
    mu: np.ndarray
    spacing: float
    surface_row: int
    antenna_row: int
    description: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.epsilon.shape


def _air_over_soil(spacing, width, depth, air, eps_soil, sigma_soil):
    """Cell-centre depths z [nz, 1] and positions x [1, nx] (m), and epsilon and
    sigma of air above ``air`` metres over a homogeneous soil (and its mask)."""
    nz, nx = int(round(depth / spacing)), int(round(width / spacing))
    z = (np.arange(nz)[:, None] + 0.5) * spacing
    x = (np.arange(nx)[None, :] + 0.5) * spacing
    eps = np.ones((nz, nx))
    sig = np.zeros((nz, nx))
    soil = np.broadcast_to(z >= air, (nz, nx))
    eps[soil], sig[soil] = eps_soil, sigma_soil
    return z, x, eps, sig, soil


def buried_pipe_and_void(spacing: float = 0.01, width: float = 3.0, depth: float = 1.5,
                         dtype=np.float32) -> GprModel:
    """Layered soil with a buried metal pipe and an air-filled void.

    From the top: 10 cm of air, dry sand (epsilon 4, sigma 1 mS/m), a moist
    silt layer (epsilon 9, 5 mS/m) from ~0.55 m with a gentle dip, and wet clay
    (epsilon 16, 20 mS/m) below ~1.05 m. A metal pipe of 8 cm radius
    (modelled as sigma = 1e4 S/m) lies at 0.45 m depth, 1.0 m along the line;
    an elliptical air void (30 x 16 cm) at 0.7 m depth, 2.1 m along.

    Parameters
    ----------
    spacing : float
        Cell size in metres (both axes).
    width, depth : float
        Extent of the model in metres.
    dtype : numpy dtype
        float32 or float64.
    """
    air = 0.10
    z, x, eps, sig, soil = _air_over_soil(spacing, width, depth, air, 4.0, 1e-3)
    nz, nx = eps.shape
    silt = soil & (z >= air + 0.45 + 0.08 * x / width)
    eps[silt], sig[silt] = 9.0, 5e-3
    clay = soil & (z >= air + 0.95 - 0.05 * np.sin(2 * np.pi * x / width))
    eps[clay], sig[clay] = 16.0, 2e-2
    pipe = (z - (air + 0.45)) ** 2 + (x - 1.0) ** 2 <= 0.08**2
    sig[pipe] = 1e4
    void = ((z - (air + 0.70)) / 0.08) ** 2 + ((x - 2.1) / 0.15) ** 2 <= 1.0
    eps[void], sig[void] = 1.0, 0.0
    surface = int(np.ceil(air / spacing - 0.5))
    return GprModel(eps.astype(dtype), sig.astype(dtype), np.ones((nz, nx), dtype), spacing,
                    surface_row=surface, antenna_row=max(surface - 2, 0),
                    description="layered soil with a buried metal pipe and an air void")


def pipe_and_wet_layer(spacing: float = 0.04, width: float = 2.4, depth: float = 1.2,
                       dtype=np.float32) -> GprModel:
    """A small synthetic for inversion demos: 12 cm of air over dry sand
    (epsilon 4, 2 mS/m) with a water-filled plastic pipe (epsilon 16, 12 cm
    radius) at 0.4 m depth and a wet sand layer (epsilon 9, 10 mS/m) from 0.7 m."""
    air = 0.12
    z, x, eps, sig, soil = _air_over_soil(spacing, width, depth, air, 4.0, 2e-3)
    nz, nx = eps.shape
    wet = soil & (z >= air + 0.58)
    eps[wet], sig[wet] = 9.0, 1e-2
    pipe = (z - (air + 0.28)) ** 2 + (x - width / 2) ** 2 <= 0.12**2
    eps[pipe] = 16.0
    surface = int(np.ceil(air / spacing - 0.5))
    return GprModel(eps.astype(dtype), sig.astype(dtype), np.ones((nz, nx), dtype), spacing,
                    surface_row=surface, antenna_row=max(surface - 1, 0),
                    description="dry sand with a water-filled pipe over a wet layer")
