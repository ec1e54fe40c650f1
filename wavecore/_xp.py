"""The array module (numpy or cupy) of an array, without importing cupy eagerly."""

from __future__ import annotations

import numpy as np

from ._checks import is_cupy_array


def array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if any(is_cupy_array(a) for a in arrays if a is not None):
        import cupy  # noqa: PLC0415 - only when the caller already uses CuPy

        return cupy
    return np
