"""Where a run's buffers live: host memory, or the memory of a device.

The driver prepares every buffer in host memory; a backend then *adopts* the
arrays its kernels read (moving them to its memory) and the driver moves data
back only where it needs it: receiver data and final state at the end, model
gradients after the reverse pass, snapshot chunks for host or disk storage.
For the CPU core and the numpy reference adopting is the identity and nothing
is copied.
"""

from __future__ import annotations

import numpy as np


#: Alignment of zeros_block: the size of an x86-64 / arm64 transparent huge page.
HUGE_PAGE = 2 << 20
_ALIGN = 64  # each array of a block starts on a cache line


def zeros_block(shapes: dict, dtype) -> dict:
    """Zeroed host arrays ``{name: shape}`` carved from one allocation aligned to
    2 MiB.

    NumPy asks Linux for transparent huge pages on allocations of 4 MiB and
    more (``madvise``); one block for the many arrays of a 3-D run (six fields
    and twelve CPML memories of a few MiB each) gets them for all of it. The
    first step then faults once per 2 MiB instead of once per 4 KiB page, and
    the kernels' many concurrent streams need far fewer TLB entries.
    """
    dtype = np.dtype(dtype)
    sizes = {name: int(np.prod(shape)) * dtype.itemsize for name, shape in shapes.items()}
    offsets, total = {}, 0
    for name, size in sizes.items():
        offsets[name] = total
        total += -(-size // _ALIGN) * _ALIGN
    raw = np.zeros(total + HUGE_PAGE, np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    return {name: raw[start + offsets[name]:start + offsets[name] + sizes[name]]
            .view(dtype).reshape(shape) for name, shape in shapes.items()}


class HostMemory:
    """Buffers stay where they are (the CPU core, the numpy reference)."""

    name = "host"
    separate = False  # host arrays are the buffers themselves

    def adopt(self, array):
        return array

    def to_host(self, array) -> np.ndarray:
        return array

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def zeros_many(self, shapes: dict, dtype) -> dict:
        """Zeroed arrays ``{name: shape}`` (on the host: one huge-page block)."""
        return zeros_block(shapes, dtype)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def upload(self, device_array, host_array) -> None:
        device_array[...] = host_array

    def download(self, host_array, device_array) -> None:
        host_array[...] = device_array

    def host_empty(self, shape, dtype) -> np.ndarray:
        """Host memory the device copies to and from (pinned on a GPU)."""
        return np.empty(shape, dtype)

    # Copies that overlap computation. A handle orders later work after the
    # copy: `after(handle)` makes the compute stream wait for it (no host
    # wait), `wait(handle)` blocks the host until it is done. On the host
    # (and emulated) the copies are done at once and the handle is None.
    def download_async(self, host_arrays: list, device_arrays: list):
        for h, d in zip(host_arrays, device_arrays):
            self.download(h, d)

    def upload_async(self, device_arrays: list, host_arrays: list):
        for d, h in zip(device_arrays, host_arrays):
            self.upload(d, h)

    def after(self, handle) -> None:
        pass

    def wait(self, handle) -> None:
        pass

    def synchronize(self) -> None:
        pass


class EmulatedDeviceMemory(HostMemory):
    """Host arrays standing in for device memory: every adopted array is a
    separate copy, so a run through it checks that the driver moves every
    result back (``device="cuda-emulated"``)."""

    name = "emulated device"
    separate = True

    def adopt(self, array):
        return np.array(array, copy=True, order="C")

    def to_host(self, array) -> np.ndarray:
        return np.array(array, copy=True)


class CupyMemory(HostMemory):
    """Memory of the current CuPy device."""

    name = "cuda"
    separate = True

    def __init__(self):
        import cupy  # noqa: PLC0415 - only on the CUDA path

        self._cupy = cupy

    def adopt(self, array):
        return self._cupy.ascontiguousarray(self._cupy.asarray(array))

    def to_host(self, array) -> np.ndarray:
        return self._cupy.asnumpy(array)

    def zeros(self, shape, dtype):
        return self._cupy.zeros(shape, dtype)

    def zeros_many(self, shapes: dict, dtype) -> dict:
        return {name: self.zeros(shape, dtype) for name, shape in shapes.items()}

    def empty(self, shape, dtype):
        return self._cupy.empty(shape, dtype)

    def upload(self, device_array, host_array) -> None:
        device_array.set(np.ascontiguousarray(host_array))

    def download(self, host_array, device_array) -> None:
        device_array.get(out=host_array)

    def host_empty(self, shape, dtype) -> np.ndarray:
        import cupyx  # noqa: PLC0415

        return cupyx.empty_pinned(shape, dtype)

    def _copies(self, pairs, kind: int):
        """Enqueue copies on the side stream after the work queued so far on
        the current stream; return the event that marks their end."""
        cuda = self._cupy.cuda
        if not hasattr(self, "_side"):
            self._side = cuda.Stream(non_blocking=True)
        ready = cuda.Event(disable_timing=True)
        ready.record(cuda.get_current_stream())
        self._side.wait_event(ready)
        for dst, src, nbytes in pairs:
            cuda.runtime.memcpyAsync(dst, src, nbytes, kind, self._side.ptr)
        done = cuda.Event(disable_timing=True)
        done.record(self._side)
        return done

    def download_async(self, host_arrays: list, device_arrays: list):
        return self._copies([(h.ctypes.data, d.data.ptr, d.nbytes)
                             for h, d in zip(host_arrays, device_arrays)], 2)  # D2H

    def upload_async(self, device_arrays: list, host_arrays: list):
        return self._copies([(d.data.ptr, h.ctypes.data, d.nbytes)
                             for d, h in zip(device_arrays, host_arrays)], 1)  # H2D

    def after(self, handle) -> None:
        if handle is not None:
            self._cupy.cuda.get_current_stream().wait_event(handle)

    def wait(self, handle) -> None:
        if handle is not None:
            handle.synchronize()

    def synchronize(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()


HOST = HostMemory()


def adopt_buffers(buffers, memory, names) -> None:
    """Move the arrays ``names`` of ``buffers`` into ``memory`` (in place)."""
    if not memory.separate:
        return
    for name in names:
        value = getattr(buffers, name, None)
        if isinstance(value, np.ndarray):
            setattr(buffers, name, memory.adopt(value))


def device_free_bytes(device: str) -> int | None:
    """Free bytes of the memory a device backend allocates from (None: host RAM)."""
    if device != "cuda":
        return None
    try:
        import cupy  # noqa: PLC0415 - only on the CUDA path

        return int(cupy.cuda.runtime.memGetInfo()[0])
    except Exception:  # noqa: BLE001 - no usable GPU: the backend will say why
        return None
