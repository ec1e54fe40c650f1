"""Small validators that turn bad input into errors naming the argument.

Every public function validates before doing any heavy work; these helpers
keep the messages uniform: the argument, what was expected, what was given.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class UnitWarning(UserWarning):
    """An argument looks like it is in the wrong unit (absolute permittivity,
    ``dt`` not in seconds, ...): the run would be wrong or take far too many
    internal steps. Raised as a warning before any work; make it an error with
    ``warnings.simplefilter("error", wavecore.UnitWarning)``."""


def warn(message: str, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside the wavecore
    package (the user's line, whichever public function led here)."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def describe(value) -> str:
    """Short description of a value for error messages."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_cupy_array(value) -> bool:
    """True for a CuPy array, decided without importing cupy."""
    return type(value).__module__.split(".")[0] == "cupy"


def positive_float(value, name: str) -> float:
    """A finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if not (isinstance(value, np.ndarray) and value.ndim == 0):
            raise TypeError(f"{name} must be a positive real number, got {describe(value)}")
    result = float(value)
    if not math.isfinite(result) or result <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return result


def nonnegative_float(value, name: str) -> float:
    """A finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {describe(value)}")
    result = float(value)
    if not math.isfinite(result) or result < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return result


def fraction(value, name: str) -> float:
    """A float in [0, 1]."""
    result = nonnegative_float(value, name)
    if result > 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return result


def integer(value, name: str, minimum: int | None = None) -> int:
    """An int (not a bool), optionally >= minimum."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        result = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {describe(value)}") from None
    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {result}")
    return result


def stencil_order(value, orders: Sequence[int]) -> int:
    """The stencil order as a Python int: an integer (numpy integers too) among
    ``orders``. Floats are refused, ``4.0`` included, like every integer option."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"stencil must be an integer among {tuple(orders)}, got {value!r}")
    try:
        order = operator.index(value)
    except TypeError:
        raise TypeError(f"stencil must be an integer among {tuple(orders)}, got "
                        f"{describe(value)}") from None
    if order not in orders:
        raise ValueError(f"stencil must be one of {tuple(orders)}, got {order!r}")
    return int(order)


def boolean(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def spacing(value, name: str, ndim: int) -> tuple[float, ...]:
    """A positive spacing per axis from a scalar or a sequence of ``ndim`` values."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (positive_float(value, name),) * ndim
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return (positive_float(value, name),) * ndim
    if not isinstance(value, (Sequence, np.ndarray)) or isinstance(value, str):
        raise TypeError(
            f"{name} must be a number or a sequence of {ndim} numbers, got {describe(value)}"
        )
    values = list(value)
    if len(values) != ndim:
        raise ValueError(f"{name} must have {ndim} values (one per axis), got {len(values)}")
    return tuple(positive_float(v, f"{name}[{i}]") for i, v in enumerate(values))


def pml_widths(value, ndim: int) -> tuple[int, ...]:
    """Per-side CPML widths (low, high per axis, in axis order) from an int,
    one value per axis, or two values per axis."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        widths = [int(value)] * (2 * ndim)
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = [integer(v, "pml_width") for v in value]
        if len(values) == ndim:
            widths = [w for w in values for _ in range(2)]
        elif len(values) == 2 * ndim:
            widths = values
        else:
            raise ValueError(
                f"pml_width must be an int, {ndim} values (one per axis) or {2 * ndim} "
                f"values (low and high per axis), got {len(values)} values"
            )
    else:
        raise TypeError(f"pml_width must be an int or a sequence of ints, got {describe(value)}")
    for w in widths:
        if w < 0:
            raise ValueError(f"pml_width values must be >= 0, got {tuple(widths)}")
    return tuple(widths)


def float_array(value, name: str) -> np.ndarray:
    """A numpy float32/float64 array (no copy when already one)."""
    if value is None:
        raise TypeError(f"{name} must be an array, got None")
    if is_cupy_array(value):
        raise TypeError(
            f"{name} is a CuPy array; tm2d and maxwell3d take CuPy inputs (and "
            "vjp a CuPy grad_receiver_data), but here pass a numpy array"
        )
    array = np.asarray(value)
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {array.dtype}")
    return array


def int_array(value, name: str) -> np.ndarray:
    """A numpy integer array."""
    if is_cupy_array(value):
        raise TypeError(
            f"{name} is a CuPy array; tm2d and maxwell3d take CuPy inputs (and "
            "vjp a CuPy grad_receiver_data), but here pass a numpy array"
        )
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {array.dtype}")
    return array


def finite(array: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite, but {bad} values are NaN or infinite")
