# cython: language_level=3
"""Buffer access shared by the compiled time loops (TM2D and 3-D)."""

import numpy as np
cimport numpy as cnp


cdef inline void* buffer_data(cnp.ndarray a, object dtype, str name) except NULL:
    # Every buffer the kernel touches must be C-contiguous with the run's dtype;
    # the backend guarantees it, this guards against a broken caller.
    if not a.flags.c_contiguous or a.dtype != dtype:
        raise ValueError(f"{name}: expected a C-contiguous {np.dtype(dtype)} array, "
                         f"got {a.dtype} (contiguous={a.flags.c_contiguous})")
    if a.size == 0:
        return <void*> <size_t> 1  # never dereferenced: the loops over it are empty
    return cnp.PyArray_DATA(a)


cdef inline void* optional_data(object b, str name, object dtype) except? NULL:
    # Arrays a run may not have (gradients, snapshots): None -> null pointer.
    a = getattr(b, name, None)
    if a is None:
        return NULL
    return buffer_data(a, dtype, name)


cdef inline object check_call(object buffers, str field, int order, int n_threads):
    """The dtype of the run, after checking the order and the thread count."""
    if order not in (2, 4, 6, 8):
        raise ValueError(f"order must be 2, 4, 6 or 8, got {order}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    dtype = getattr(buffers, field).dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"unsupported dtype {dtype}")
    return dtype


cdef inline check_adjoint_buffers(object buffers, tuple names):
    missing = [name for name in names if getattr(buffers, name, None) is None]
    if missing:
        raise ValueError(f"the adjoint needs the buffers {missing}")


cdef inline check_size(object packed, size_t size):
    """The packed struct (wavecore._gpu.params) must have the compiler's size."""
    if packed.itemsize != size:
        raise RuntimeError(f"the parameter struct parsed from the header has "
                           f"{packed.itemsize} bytes but the compiled core's has {size}: "
                           "wavecore._gpu.params does not read the header like the compiler")
