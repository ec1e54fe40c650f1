"""Snapshot storage for gradients: where the forward fields the adjoint needs live.

The solver asks the store for the buffer of a *chunk* of snapshots (a block of
``chunk`` consecutive stored steps), fills it, and hands it back; in reverse it
asks for the chunks again, last first. The store decides where they live:

``"device"``  where the fields live: RAM for the CPU backend (one array).
``"cpu"``     host RAM; on the CPU backend the same memory as ``"device"``.
``"disk"``    files under ``storage_path``: chunks are written by a background
              thread while the next chunk is computed, and read back (one
              chunk ahead) during the reverse pass. The files are deleted when
              the store closes: after ``vjp``, by ``close()``, on errors, on
              KeyboardInterrupt and at interpreter exit.
``"none"``    nothing stored (only source gradients are possible).
``"auto"``    ``"device"`` if the snapshots fit ``storage_bytes_limit_device``,
              else ``"cpu"`` if they fit ``storage_bytes_limit_host``, else
              ``"disk"``; the choice is reported in ``result.storage``.

With ``storage_compression="bf16"`` (float32 runs) every value is rounded to
the nearest bfloat16 (ties to even) when stored: half the bytes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._checks import describe, integer
from .memory import HOST

__all__ = ["StorageOptions", "StoragePlan", "SnapshotStore", "available_memory",
           "to_bf16", "from_bf16", "MODES"]

MODES = ("device", "cpu", "disk", "none", "auto")
_DEFAULT_CHUNK_BYTES = 64 << 20  # disk transfers of about this size


def to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), round to nearest, ties to even; NaN stays
    NaN (its sign and top payload bits kept, made quiet), as in wc_codec.h."""
    u = np.ascontiguousarray(values, np.float32).view(np.uint32)
    rounded = u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(nan, (u >> np.uint32(16)) | np.uint32(0x40),
                    rounded >> np.uint32(16)).astype(np.uint16)


def from_bf16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def available_memory() -> int:
    """Bytes of RAM available to new allocations (MemAvailable), or a large number if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


@dataclass(frozen=True)
class StorageOptions:
    """The user's storage arguments, validated."""

    mode: str = "auto"
    path: str | None = None
    compression: str = "none"
    bytes_limit_device: int | None = None
    bytes_limit_host: int | None = None
    chunk_steps: int | None = None

    @classmethod
    def from_arguments(cls, mode, path, compression, limit_device, limit_host, chunk_steps,
                       dtype) -> "StorageOptions":
        if mode not in MODES:
            raise ValueError(f"storage_mode must be one of {MODES}, got {mode!r}")
        if compression in (False, None, "none"):
            compression = "none"
        elif compression == "bf16":
            if np.dtype(dtype) != np.float32:
                raise ValueError("storage_compression='bf16' needs a float32 run (bfloat16 "
                                 f"keeps 8 bits of mantissa); the model is {np.dtype(dtype)}")
        else:
            raise ValueError(f"storage_compression must be False, 'none' or 'bf16', "
                             f"got {compression!r}")
        limits = []
        for name, value in (("storage_bytes_limit_device", limit_device),
                            ("storage_bytes_limit_host", limit_host)):
            limits.append(None if value is None else integer(value, name, minimum=0))
        if chunk_steps is not None:
            chunk_steps = integer(chunk_steps, "storage_chunk_steps", minimum=1)
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"storage_path must be a path, got {describe(path)}")
            path = os.fspath(path)
        return cls(mode, path, compression, limits[0], limits[1], chunk_steps)


@dataclass(frozen=True)
class StoragePlan:
    """What a run stores and where (computed before it starts).

    ``bytes`` is the total size of the snapshots; ``mode`` is the resolved
    mode (never ``"auto"``); ``chunk`` the stored steps per transfer.
    """

    mode: str
    requested_mode: str
    names: tuple[str, ...]     #: snapshot arrays per stored step
    n_snapshots: int           #: stored steps (ceil(nt_internal / interval))
    interval: int              #: model_gradient_sampling_interval
    slot_shape: tuple[int, ...]  #: one array of one stored step
    itemsize: int              #: bytes per value (2 for bf16)
    compression: str
    chunk: int
    path: str | None

    @property
    def bytes_per_snapshot(self) -> int:
        return len(self.names) * int(np.prod(self.slot_shape)) * self.itemsize

    @property
    def bytes(self) -> int:
        return self.n_snapshots * self.bytes_per_snapshot

    @property
    def n_chunks(self) -> int:
        return -(-self.n_snapshots // self.chunk) if self.n_snapshots else 0

    def describe(self) -> str:
        auto = " (chosen by 'auto')" if self.requested_mode == "auto" else ""
        return (f"{self.mode}{auto}: {self.n_snapshots} snapshots of {len(self.names)} arrays, "
                f"{self.bytes / 2**20:.1f} MiB ({self.compression})")


def plan_storage(opts: StorageOptions, names: tuple[str, ...], nt_internal: int, interval: int,
                 slot_shape: tuple[int, ...], dtype, host_backend: bool = True,
                 device_memory: int | None = None) -> StoragePlan:
    """Resolve the mode and check limits, memory and disk space up front.

    On a host backend (the CPU core, the reference) "device" and "cpu" are the
    same RAM, so ``storage_chunk_steps`` only acts with "disk" (or "auto"). On a
    device backend "device" means its memory (``device_memory`` bytes free) and
    "cpu" and "disk" chunks pass through a staging chunk there."""
    if opts.chunk_steps is not None:
        if opts.mode in ("device", "none") or (opts.mode == "cpu" and host_backend):
            where = "" if opts.mode != "cpu" else " on the CPU backend (same RAM as 'device')"
            raise ValueError(f"storage_chunk_steps sets the size of transfers to host memory or "
                             f"disk; it has no effect with storage_mode={opts.mode!r}{where}")
    itemsize = 2 if opts.compression == "bf16" else np.dtype(dtype).itemsize
    n_snapshots = -(-nt_internal // interval) if names else 0
    per_snapshot = len(names) * int(np.prod(slot_shape)) * itemsize
    total = n_snapshots * per_snapshot
    mode = opts.mode
    if not names:
        mode = "none"
    elif mode == "none":
        raise ValueError("model gradients need stored snapshots, but storage_mode='none'; "
                         "use 'device', 'cpu', 'disk' or 'auto' (or request only "
                         "'source_amplitude')")
    ram = available_memory()
    device_ram = ram if host_backend or device_memory is None else device_memory
    limit_device = (opts.bytes_limit_device if opts.bytes_limit_device is not None
                    else device_ram)
    limit_host = opts.bytes_limit_host if opts.bytes_limit_host is not None else ram
    if mode == "auto":
        mode = "device" if total <= limit_device else "cpu" if total <= limit_host else "disk"
    gib = lambda n: f"{n / 2**30:.3g} GiB"  # noqa: E731
    if (mode == "cpu" or (mode == "device" and host_backend)) and total > ram:
        raise MemoryError(f"the snapshots need {gib(total)} of RAM but only {gib(ram)} is "
                          "available; use storage_mode='disk', bf16 compression or a larger "
                          "model_gradient_sampling_interval")
    if mode == "device" and not host_backend and total > device_ram:
        raise MemoryError(f"the snapshots need {gib(total)} of device memory but only "
                          f"{gib(device_ram)} is free; use storage_mode='cpu', 'disk' or "
                          "'auto', bf16 compression or a larger model_gradient_sampling_interval")
    if mode == "device" and total > limit_device:
        raise MemoryError(f"the snapshots need {gib(total)} but storage_bytes_limit_device "
                          f"allows {gib(limit_device)}; use storage_mode='disk' or 'auto', "
                          "bf16 compression or a larger model_gradient_sampling_interval")
    if mode == "cpu" and total > limit_host:
        raise MemoryError(f"the snapshots need {gib(total)} but storage_bytes_limit_host "
                          f"allows {gib(limit_host)}; use storage_mode='disk' or 'auto'")
    path = None
    chunk = max(n_snapshots, 1)
    if mode == "disk" or (mode == "cpu" and not host_backend):
        if opts.chunk_steps is not None:
            chunk = min(opts.chunk_steps, max(n_snapshots, 1))
        else:  # disk, or host memory behind a device's staging chunk
            chunk = int(min(max(1, _DEFAULT_CHUNK_BYTES // max(per_snapshot, 1)),
                            max(n_snapshots, 1)))
    if mode == "disk":
        path = _check_disk(opts.path, total, 2 * chunk * per_snapshot)
    return StoragePlan(mode, opts.mode, names, n_snapshots, interval, tuple(slot_shape),
                       itemsize, opts.compression, chunk, path)


def _check_disk(path: str | None, total: int, ring: int) -> str:
    base = Path(path) if path is not None else Path(tempfile.gettempdir())
    if not base.is_dir():
        raise ValueError(f"storage_path {str(base)!r} is not an existing directory")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise ValueError(f"storage_path {str(base)!r} is not writable: {exc}") from None
    free = shutil.disk_usage(base).free
    if total > free:
        raise OSError(f"the snapshots need {total / 2**30:.3g} GiB on disk but {str(base)!r} has "
                      f"{free / 2**30:.3g} GiB free")
    if ring > available_memory():
        raise MemoryError(f"the disk transfer buffers need {ring / 2**30:.3g} GiB of RAM; "
                          "lower storage_chunk_steps")
    return str(base)


# Folders of open disk stores, removed at interpreter exit if still there.
_LIVE_DIRS: set[str] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _remove_live_dirs() -> None:  # pragma: no cover - runs at exit
    with _LIVE_LOCK:
        for folder in list(_LIVE_DIRS):
            shutil.rmtree(folder, ignore_errors=True)
        _LIVE_DIRS.clear()


def _remove_dir(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with _LIVE_LOCK:
        _LIVE_DIRS.discard(folder)


class SnapshotStore:
    """The snapshots of one run, laid out as ``plan`` says."""

    def __init__(self, plan: StoragePlan, dtype, memory=HOST):
        self.plan = plan
        self.memory = memory
        self.store_dtype = np.dtype(np.uint16 if plan.compression == "bf16" else dtype)
        self.closed = False
        self._arrays: dict[str, np.ndarray] = {}
        self._folder: str | None = None
        self._io: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future] = {}
        shape = plan.slot_shape
        # A backend with its own memory writes "cpu" and "disk" chunks into a
        # ring of two staging chunks there: each is copied to the host store
        # on a side stream while the next chunk is computed, and in the
        # reverse pass chunk c - 1 is copied back while chunk c is used.
        # "device" snapshots live in the backend's memory.
        self._staging: list = []
        self._transfers: dict[int, object] = {}  # chunk -> its pending copy
        host_empty = memory.host_empty
        if plan.mode == "device":
            self._arrays = {n: memory.empty((plan.n_snapshots, *shape), self.store_dtype)
                            for n in plan.names}
        elif plan.mode == "cpu":
            self._arrays = {n: host_empty((plan.n_snapshots, *shape), self.store_dtype)
                            for n in plan.names}
        elif plan.mode == "disk":
            self._folder = tempfile.mkdtemp(prefix="wavecore-snapshots-", dir=plan.path)
            with _LIVE_LOCK:
                _LIVE_DIRS.add(self._folder)
            self._finalizer = weakref.finalize(self, _remove_dir, self._folder)
            self._files = {n: open(os.path.join(self._folder, f"{n}.bin"), "w+b")
                           for n in plan.names}
            self._ring = [{n: host_empty((plan.chunk, *shape), self.store_dtype)
                           for n in plan.names} for _ in range(2)]
            self._io = ThreadPoolExecutor(1, thread_name_prefix="wavecore-snapshots")
        if memory.separate and plan.mode in ("cpu", "disk"):
            self._staging = [{n: memory.empty((plan.chunk, *shape), self.store_dtype)
                              for n in plan.names} for _ in range(2)]

    # -- layout -------------------------------------------------------------------
    def chunk_range(self, c: int) -> tuple[int, int]:
        """Stored-step indices ``[first, last)`` of chunk ``c``."""
        first = c * self.plan.chunk
        return first, min(first + self.plan.chunk, self.plan.n_snapshots)

    def chunk_of_step(self, t: int) -> int:
        return (t // self.plan.interval) // self.plan.chunk

    def chunk_steps(self, c: int, nt_internal: int) -> tuple[int, int]:
        """Internal steps ``[t0, t1)`` whose snapshots fall in chunk ``c``."""
        first, last = self.chunk_range(c)
        k = self.plan.interval
        return first * k, min(last * k, nt_internal)

    # -- forward ------------------------------------------------------------------
    def chunk_for_writing(self, c: int) -> dict[str, np.ndarray]:
        """Buffers ``[chunk, *slot_shape]`` the solver fills with chunk ``c``."""
        self._check_open()
        if self._staging:
            # The staging chunk last held chunk c - 2: its copy out must be done.
            self.memory.after(self._transfers.pop(c - 2, None))
            return self._staging[c % 2]
        if self.plan.mode == "disk":
            ring = self._ring[c % 2]
            self._wait(c - 2)  # the write that used this ring buffer must be done
            return ring
        first, last = self.chunk_range(c)
        return {n: a[first:last] for n, a in self._arrays.items()}

    def chunk_written(self, c: int) -> None:
        """Chunk ``c`` is complete: disk stores start writing it in the background."""
        first, last = self.chunk_range(c)
        if self._staging:  # from the backend's memory into the host store
            count = last - first
            if self.plan.mode == "disk":
                self._wait(c - 2)  # the ring buffer's previous chunk is on disk
                host = self._ring[c % 2]
            else:
                host = {n: a[first:last] for n, a in self._arrays.items()}
            names = list(host)
            handle = self.memory.download_async([host[n][:count] for n in names],
                                                [self._staging[c % 2][n][:count] for n in names])
            if self.plan.mode == "disk":
                self.memory.wait(handle)  # the file write below reads the ring buffer
            else:
                self._transfers[c] = handle
        if self.plan.mode != "disk":
            return
        ring = self._ring[c % 2]
        offset = first * int(np.prod(self.plan.slot_shape)) * self.store_dtype.itemsize
        count = last - first

        def write():
            for name, array in ring.items():
                os.pwrite(self._files[name].fileno(), memoryview(array[:count]).cast("B"),
                          offset)

        self._pending[c] = self._io.submit(write)

    def finish_forward(self) -> None:
        """Wait for every copy and write (raises if one failed)."""
        for c in sorted(self._transfers):
            self.memory.wait(self._transfers.pop(c))
        for c in sorted(self._pending):
            self._wait(c)

    # -- reverse ------------------------------------------------------------------
    def chunk_for_reading(self, c: int) -> dict[str, np.ndarray]:
        """Chunk ``c`` for the reverse pass; disk stores prefetch chunk ``c - 1``."""
        host = self._host_chunk_for_reading(c)
        if not self._staging:
            return host
        handle = self._transfers.pop(c, None)
        if handle is None:  # not prefetched
            handle = self._upload(c, host)
        self.memory.after(handle)
        if c > 0 and self.plan.mode == "cpu":  # chunk c - 1 while chunk c is used
            self._transfers[c - 1] = self._upload(c - 1, self._host_chunk_for_reading(c - 1))
        return self._staging[c % 2]

    def _upload(self, c: int, host: dict):
        first, last = self.chunk_range(c)
        names = list(host)
        return self.memory.upload_async([self._staging[c % 2][n][: last - first] for n in names],
                                        [host[n][: last - first] for n in names])

    def _host_chunk_for_reading(self, c: int) -> dict:
        self._check_open()
        if self.plan.mode != "disk":
            first, last = self.chunk_range(c)
            return {n: a[first:last] for n, a in self._arrays.items()}
        if c not in self._pending:
            self._pending[c] = self._io.submit(self._read, c)
        self._wait(c)
        if c > 0:
            self._pending[c - 1] = self._io.submit(self._read, c - 1)
        return self._ring[c % 2]

    def _read(self, c: int) -> None:
        first, last = self.chunk_range(c)
        offset = first * int(np.prod(self.plan.slot_shape)) * self.store_dtype.itemsize
        for name, array in self._ring[c % 2].items():
            view = memoryview(array[: last - first]).cast("B")
            got = os.preadv(self._files[name].fileno(), [view], offset)
            if got != view.nbytes:
                raise OSError(f"short read of snapshot chunk {c} from {self._folder}")

    def _wait(self, c: int) -> None:
        future = self._pending.pop(c, None)
        if future is None:
            return
        try:
            future.result()
        except OSError as exc:
            raise OSError(f"snapshot storage on disk failed in {self._folder!r}: {exc}") from exc

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the snapshots were freed (vjp or close() already ran); run the "
                               "forward again, or call vjp(..., keep=True) to reuse them")

    # -- lifetime -----------------------------------------------------------------
    def close(self) -> None:
        """Free the memory and delete the files (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._arrays = {}
        for handle in self._transfers.values():
            self.memory.wait(handle)
        self._transfers = {}
        self._staging = []
        if self.plan.mode == "disk":
            for future in self._pending.values():
                future.cancel()
            self._io.shutdown(wait=True)
            self._pending.clear()
            for f in self._files.values():
                f.close()
            self._ring = []
            self._finalizer()

    @property
    def folder(self) -> str | None:
        """The folder of a disk store (deleted at close)."""
        return self._folder
