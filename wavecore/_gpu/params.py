"""numpy mirrors of the kernels' parameter structs (``Tm2dParams<T>``,
``M3dParams<T>``), read from the C++ header so that the two cannot drift.

A kernel takes its struct by value; :func:`pack` fills one from a run's
buffers (device pointers of the arrays named like the struct's members) and
its geometry dict. The emulator checks the layout against the compiler's
``sizeof`` and ``offsetof`` (tests/test_cuda_emulated.py).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .source import PARAMS, header_text

_MEMBER = re.compile(r"^\s*(const\s+)?(T|int64_t|void)\s*(\*?)\s*(\w+)(?:\[(\d+)\])?;", re.MULTILINE)


@functools.lru_cache(maxsize=None)
def members(kind: str) -> tuple:
    """(name, base type, is pointer, count) of each member of the struct, in order."""
    text = header_text(kind)
    start = text.index(f"struct {PARAMS[kind]} {{")
    body = text[start:text.index("\n};", start)]
    found = [(m.group(4), m.group(2), m.group(3) == "*", int(m.group(5) or 1))
             for m in _MEMBER.finditer(body)]
    if not found:
        raise RuntimeError(f"no members parsed from struct {PARAMS[kind]}")
    return tuple(found)


@functools.lru_cache(maxsize=None)
def required_members(kind: str) -> frozenset:
    """Pointer members every run sets (those before the struct's "---- gradients"
    section: fields, memories, coefficients, profiles, sources and receivers)."""
    text = header_text(kind)
    start = text.index(f"struct {PARAMS[kind]} {{")
    body = text[start:text.index("// ---- gradients", start)]
    return frozenset(m.group(4) for m in _MEMBER.finditer(body) if m.group(3) == "*")


@functools.lru_cache(maxsize=None)
def params_dtype(kind: str, dtype) -> np.dtype:
    """The aligned numpy dtype with the layout of the C++ struct for ``dtype``."""
    real = np.dtype(dtype)
    fields = []
    for name, base, pointer, count in members(kind):
        if pointer:
            t = np.dtype(np.uint64)
        elif base == "T":
            t = real
        else:
            t = np.dtype(np.int64)
        fields.append((name, t, (count,)) if count > 1 else (name, t))
    return np.dtype(fields, align=True)


def _pointer(array, expected, name: str) -> int:
    if array.dtype != expected:
        raise TypeError(f"buffer {name!r} has dtype {array.dtype}, the kernels expect {expected}")
    if not array.flags.c_contiguous:
        raise ValueError(f"buffer {name!r} must be C-contiguous")
    data = getattr(array, "data", None)
    return int(data.ptr) if hasattr(data, "ptr") else int(array.ctypes.data)


def pack(kind: str, buffers, dtype) -> np.ndarray:
    """The parameter struct of a run as a one-element structured array.

    Pointer members take the arrays of ``buffers`` with the member's name
    (absent optional arrays are null; a missing required one raises); scalar
    members take ``buffers.geometry`` (snapshot settings and ``tangent``, the
    linearized sweep's switch, default to 0). The
    CUDA kernels and the CPU core (wavecore/_cpu) both take this struct.
    """
    real = np.dtype(dtype)
    geometry = buffers.geometry
    snap = np.dtype(np.uint16) if geometry.get("snap_bf16", 0) else real
    out = np.zeros(1, params_dtype(kind, real))
    required = required_members(kind)
    for name, base, pointer, _ in members(kind):
        if pointer:
            array = getattr(buffers, name, None)
            if array is None:
                if name in required:
                    raise ValueError(f"buffer {name!r} is missing: every {kind} run needs it")
                continue
            expected = {"T": real, "int64_t": np.dtype(np.int64), "void": snap}[base]
            out[name] = _pointer(array, expected, name)
        elif name == "rec_comp":
            comps = list(geometry["rec_comp"])
            out[name][0, :len(comps)] = comps
        elif name.startswith("snap_") or name == "tangent":  # 0: off
            out[name] = geometry.get(name, 0)
        else:
            out[name] = geometry[name]
    return out
