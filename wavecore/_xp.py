"""The array module (numpy or cupy) of an array, without importing cupy eagerly."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._checks import is_cupy_array


def array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if any(is_cupy_array(a) for a in arrays if a is not None):
        import cupy  # noqa: PLC0415 - only when the caller already uses CuPy

        return cupy
    return np


def any_cupy(*values) -> bool:
    """True if any value (or any value of a mapping among them) is a CuPy array."""
    for value in values:
        items = value.values() if isinstance(value, Mapping) else (value,)
        if any(is_cupy_array(v) for v in items):
            return True
    return False


def to_numpy(value):
    """A CuPy array copied to the host (mappings converted item by item); anything
    else unchanged."""
    if isinstance(value, Mapping):
        return {k: to_numpy(v) for k, v in value.items()}
    return value.get() if is_cupy_array(value) else value


def to_cupy(value):
    """An array (or each array of a mapping) on the current CuPy device."""
    import cupy  # noqa: PLC0415 - only when the caller passed CuPy arrays

    if isinstance(value, Mapping):
        return {k: to_cupy(v) for k, v in value.items()}
    return None if value is None else cupy.asarray(value)


def from_dlpack_like(value):
    """numpy for CPU arrays of other frameworks (torch, JAX, ...: ``__dlpack__``),
    CuPy for CUDA ones (``__dlpack__`` or ``__cuda_array_interface__``), without a
    copy where the producer allows; numpy and CuPy arrays and anything else are
    returned unchanged."""
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        return value
    if hasattr(value, "__dlpack_device__") and hasattr(value, "__dlpack__"):
        if int(value.__dlpack_device__()[0]) == 1:  # kDLCPU
            return np.from_dlpack(value)
        import cupy  # noqa: PLC0415 - a CUDA array was passed

        return cupy.from_dlpack(value)
    if hasattr(value, "__cuda_array_interface__"):
        import cupy  # noqa: PLC0415

        return cupy.asarray(value)
    return value
