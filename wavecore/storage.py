"""Snapshot storage for gradients: where the forward fields the adjoint needs live.

The solver asks the store for the buffer of a *chunk* of snapshots (a block of
``chunk`` consecutive stored steps), fills it, and hands it back; in reverse it
asks for the chunks again, last first. The store decides where they live:

``"device"``  where the fields live: RAM for the CPU backend (one array).
``"cpu"``     host RAM; on the CPU backend the same memory as ``"device"``.
``"disk"``    files under ``storage_path``: chunks are written by a background
              thread while the next chunk is computed, and read back (one
              chunk ahead) during the reverse pass. The files have no name:
              they are unlinked as soon as they are created (``O_TMPFILE``
              where the file system has it), so the kernel frees their space
              when the store closes them (after ``vjp``, by ``close()``, when
              the result is dropped) or when the process ends, however it
              ends (SIGKILL, SIGTERM, SIGHUP included). Every write and read
              is complete or raises, naming the path and the bytes.
``"checkpoint"`` full states of the run at a few checkpoints and one segment
              of snapshots; reading passes recompute each segment from a
              checkpoint (wavecore.checkpointing), within
              ``storage_bytes_limit_host`` (CPU) / ``storage_bytes_limit_device``
              (GPU) or ``checkpoint_count``: the same gradients, bit for bit.
``"none"``    nothing stored (only source gradients are possible).
``"auto"``    ``"device"`` if the snapshots fit ``storage_bytes_limit_device``,
              else ``"cpu"`` if they fit ``storage_bytes_limit_host``, else
              ``"disk"`` if the disk has room, else ``"checkpoint"``; the
              choice is reported in ``result.storage``. The
              limits default to the memory the rest of the run leaves of what
              is available (MemAvailable, cgroup limits, RLIMIT_AS/DATA).

With ``storage_compression="bf16"`` (float32 runs) every value is rounded to
the nearest bfloat16 (ties to even) when stored: half the bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import threading
import warnings
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._checks import describe, integer
from .memory import HOST, POOL, carve, carved_bytes, host_available

__all__ = ["StorageOptions", "StoragePlan", "SnapshotStore", "available_memory",
           "to_bf16", "from_bf16", "MODES"]

MODES = ("device", "cpu", "disk", "checkpoint", "none", "auto")
_DEFAULT_CHUNK_BYTES = 64 << 20  # disk transfers of about this size
_THREAD_NAME = "wavecore-snapshots"


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
    """Bytes of host memory available to new allocations: the least of MemAvailable,
    the room under the process's cgroup limits and RLIMIT_AS / RLIMIT_DATA (see
    :func:`wavecore.memory.host_available`)."""
    return host_available().bytes


@dataclass(frozen=True)
class StorageOptions:
    """The user's storage arguments, validated."""

    mode: str = "auto"
    path: str | None = None
    compression: str = "none"
    bytes_limit_device: int | None = None
    bytes_limit_host: int | None = None
    chunk_steps: int | None = None
    checkpoint_count: int | None = None

    @classmethod
    def from_arguments(cls, mode, path, compression, limit_device, limit_host, chunk_steps,
                       dtype, checkpoint_count=None) -> "StorageOptions":
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
        if checkpoint_count is not None:
            checkpoint_count = integer(checkpoint_count, "checkpoint_count", minimum=1)
            if mode != "checkpoint":
                raise ValueError(f"checkpoint_count sets the checkpoints of "
                                 f"storage_mode='checkpoint'; it has no effect with "
                                 f"storage_mode={mode!r}")
        return cls(mode, path, compression, limits[0], limits[1], chunk_steps,
                   checkpoint_count)


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
    #: Whether the run can store these snapshots: False when they exceed a
    #: storage limit, the memory left for them or the free disk space; ``reason``
    #: says which, ``available`` the bytes that limit leaves (the run raises).
    fits: bool = field(default=True, compare=False)
    available: int | None = field(default=None, compare=False)
    reason: str = field(default="", compare=False)
    error: type = field(default=MemoryError, compare=False, repr=False)
    #: Arrays per name and stored step (``names`` order; empty: one each): a
    #: Debye polarization snapshot holds every pole, ``[n_shots, P, *grid]``.
    counts: tuple[int, ...] = ()
    #: storage_mode "checkpoint": the schedule (wavecore.checkpointing.Schedule;
    #: ``chunk`` is its segment), else None
    schedule: object = None

    def count(self, name: str) -> int:
        return self.counts[self.names.index(name)] if self.counts else 1

    def shape_of(self, name: str) -> tuple[int, ...]:
        """The shape of snapshot ``name`` of one stored step (the pole axis, if
        any, folded into the first axis: ``[n_shots * P, *grid]``)."""
        first, *rest = self.slot_shape
        return (first * self.count(name), *rest)

    @property
    def bytes_per_snapshot(self) -> int:
        arrays = sum(self.counts) if self.counts else len(self.names)
        return arrays * int(np.prod(self.slot_shape)) * self.itemsize

    @property
    def bytes(self) -> int:
        return self.n_snapshots * self.bytes_per_snapshot

    @property
    def held_bytes(self) -> int:
        """Bytes the store holds in memory: every snapshot (device, cpu), two
        chunks (disk), the checkpoints, working state and one segment
        (checkpoint)."""
        if self.mode in ("device", "cpu"):
            return self.bytes
        if self.mode == "disk":
            return 2 * self.chunk * self.bytes_per_snapshot
        if self.mode == "checkpoint":  # no schedule: nothing fits (the run raises)
            return self.schedule.held_bytes if self.schedule is not None else 0
        return 0

    @property
    def checkpoints(self) -> int:
        """Restart states kept (0 unless storage_mode is "checkpoint")."""
        return self.schedule.checkpoints if self.schedule is not None else 0

    @property
    def recomputed_steps(self) -> int:
        """Internal steps a reverse pass recomputes (0 unless checkpointing)."""
        return self.schedule.recomputed_steps if self.schedule is not None else 0

    @property
    def n_chunks(self) -> int:
        return -(-self.n_snapshots // self.chunk) if self.n_snapshots else 0

    def describe(self) -> str:
        auto = " (chosen by 'auto')" if self.requested_mode == "auto" else ""
        text = (f"{self.mode}{auto}: {self.n_snapshots} snapshots of {len(self.names)} arrays, "
                f"{self.bytes / 2**20:.1f} MiB ({self.compression})")
        if self.mode == "checkpoint":
            text = (f"checkpoint{auto}: {self.n_snapshots} stored steps of {len(self.names)} "
                    f"arrays ({self.bytes / 2**20:.1f} MiB in full, {self.compression})")
            if self.schedule is not None:
                text += f"; {self.schedule.describe()}"
        return text if self.fits else f"{text}; does not fit: {self.reason}"

    def check(self) -> None:
        """Raise the run's error (MemoryError, or OSError for disk space) if the
        snapshots do not fit."""
        if not self.fits:
            raise self.error(self.reason)


def plan_storage(opts: StorageOptions, names: tuple[str, ...], nt_internal: int, interval: int,
                 slot_shape: tuple[int, ...], dtype, host_backend: bool = True,
                 device_memory: int | None = None, reserved: int = 0,
                 counts: tuple[int, ...] = (), state_bytes: int = 0,
                 trace_bytes: int = 0) -> StoragePlan:
    """Resolve the mode and check limits, memory and disk space up front.

    On a host backend (the CPU core, the reference) "device" and "cpu" are the
    same RAM, so ``storage_chunk_steps`` only acts with "disk" (or "auto"), and
    ``storage_path`` only with "disk", "checkpoint" (its disk level) or "auto"
    on every backend. On a device
    backend "device" means its memory (``device_memory`` bytes free) and "cpu"
    and "disk" chunks pass through a staging chunk there. ``reserved`` is the
    host memory the rest of the run needs (fields, memories, coefficients,
    traces, adjoint): snapshots in RAM get what is left of the available memory.
    ``state_bytes`` (one full state of the run) and ``trace_bytes`` (its
    receiver traces) size the checkpoints of storage_mode "checkpoint", whose
    budget is ``storage_bytes_limit_host`` (host backends) or
    ``storage_bytes_limit_device`` (device backends), by default
    ``DEFAULT_BUDGET_FRACTION`` of the memory the rest of the run leaves.

    Arguments that are wrong raise; a plan that is valid but does not fit is
    returned with ``fits=False`` and the reason (the run raises it)."""
    if opts.chunk_steps is not None:
        if opts.mode == "checkpoint":
            raise ValueError("storage_chunk_steps sets the size of transfers to host memory or "
                             "disk; with storage_mode='checkpoint' the schedule sets the "
                             "segments (storage_bytes_limit_host/_device, checkpoint_count)")
        if opts.mode in ("device", "none") or (opts.mode == "cpu" and host_backend):
            where = "" if opts.mode != "cpu" else " on the CPU backend (same RAM as 'device')"
            raise ValueError(f"storage_chunk_steps sets the size of transfers to host memory or "
                             f"disk; it has no effect with storage_mode={opts.mode!r}{where}")
    if opts.path is not None and opts.mode in ("device", "cpu"):
        raise ValueError(f"storage_path is the folder of disk snapshots and checkpoints; it "
                         f"has no effect with storage_mode={opts.mode!r} (use "
                         "storage_mode='disk', 'checkpoint' or 'auto')")
    itemsize = 2 if opts.compression == "bf16" else np.dtype(dtype).itemsize
    n_snapshots = -(-nt_internal // interval) if names else 0
    counts = tuple(counts) if counts and any(c != 1 for c in counts) else ()
    per_snapshot = (sum(counts) if counts else len(names)) * _prod(slot_shape) * itemsize
    total = n_snapshots * per_snapshot
    mode = opts.mode
    if not names:
        mode = "none"
    elif mode == "none":
        raise ValueError("model gradients need stored snapshots, but storage_mode='none'; "
                         "use 'device', 'cpu', 'disk' or 'auto' (or request only "
                         "'source_amplitude')")
    host = POOL.counted(host_available())  # the pool's parked blocks serve runs too
    ram = max(host.bytes - reserved, 0)  # what the snapshots may take of the host
    device_ram = ram if host_backend or device_memory is None else device_memory
    limit_device = (opts.bytes_limit_device if opts.bytes_limit_device is not None
                    else device_ram)
    limit_host = opts.bytes_limit_host if opts.bytes_limit_host is not None else ram
    disk = None
    if mode == "auto":
        mode = "device" if total <= limit_device else "cpu" if total <= limit_host else "disk"
        if mode == "disk":  # nothing holds them but the disk: checkpoint if it cannot
            disk = _check_disk(opts.path)
            if total > disk[1]:
                mode = "checkpoint"
    if mode == "checkpoint":
        # a disk level where the caller named a folder, or "auto" found the disk too small
        if disk is None and opts.path is not None:
            disk = _check_disk(opts.path)
        return _plan_checkpoints(opts, names, nt_internal, interval, slot_shape, itemsize,
                                 counts, per_snapshot, n_snapshots, state_bytes, trace_bytes,
                                 device_ram,
                                 opts.bytes_limit_host if host_backend
                                 else opts.bytes_limit_device, host_backend, disk)
    gib = lambda n: f"{n / 2**30:.3g} GiB"  # noqa: E731
    rest = f" (the rest of the run takes {gib(reserved)})" if reserved else ""
    problem, available, error = "", None, MemoryError
    if (mode == "cpu" or (mode == "device" and host_backend)) and total > ram:
        problem, available = (f"the snapshots need {gib(total)} of RAM but only {gib(ram)} is "
                              f"left of the {host.describe()} available{rest}; use "
                              "storage_mode='disk', bf16 compression or a larger "
                              "model_gradient_sampling_interval"), ram
    elif mode == "device" and not host_backend and total > device_ram:
        problem, available = (f"the snapshots need {gib(total)} of device memory but only "
                              f"{gib(device_ram)} is free; use storage_mode='cpu', 'disk' or "
                              "'auto', bf16 compression or a larger "
                              "model_gradient_sampling_interval"), device_ram
    elif mode == "device" and total > limit_device:
        problem, available = (f"the snapshots need {gib(total)} but storage_bytes_limit_device "
                              f"allows {gib(limit_device)}; use storage_mode='disk' or 'auto', "
                              "bf16 compression or a larger model_gradient_sampling_interval"
                              ), limit_device
    elif mode == "cpu" and total > limit_host:
        problem, available = (f"the snapshots need {gib(total)} but storage_bytes_limit_host "
                              f"allows {gib(limit_host)}; use storage_mode='disk' or 'auto'"
                              ), limit_host
    path = None
    chunk = max(n_snapshots, 1)
    if mode == "disk" or (mode == "cpu" and not host_backend):
        if opts.chunk_steps is not None:
            chunk = min(opts.chunk_steps, max(n_snapshots, 1))
        else:  # disk, or host memory behind a device's staging chunk
            chunk = int(min(max(1, _DEFAULT_CHUNK_BYTES // max(per_snapshot, 1)),
                            max(n_snapshots, 1)))
    if mode == "disk":
        path, free = disk or _check_disk(opts.path)
        if total > free and not problem:
            problem, available, error = (
                f"the snapshots need {gib(total)} on disk but {path!r} has {gib(free)} free; "
                "use another storage_path, bf16 compression or a larger "
                "model_gradient_sampling_interval"), free, OSError
    if not problem and available is None:
        available = free if mode == "disk" else device_ram if mode == "device" else \
            ram if mode == "cpu" else None
    return StoragePlan(mode, opts.mode, names, n_snapshots, interval, tuple(slot_shape),
                       itemsize, opts.compression, chunk, path, fits=not problem,
                       available=available, reason=problem, error=error, counts=counts)


def _plan_checkpoints(opts, names, nt_internal, interval, slot_shape, itemsize, counts,
                      per_snapshot, n_snapshots, state_bytes, trace_bytes, room, limit,
                      host_backend, disk=None) -> StoragePlan:
    """The plan of storage_mode "checkpoint" (wavecore.checkpointing): the
    cheapest schedule within the limit (``limit``, else
    DEFAULT_BUDGET_FRACTION of ``room``, the memory the rest of the run leaves),
    or ``checkpoint_count`` checkpoints; with ``disk`` (folder, free bytes)
    checkpoints may also go to disk, within DISK_FRACTION of its free space."""
    from .checkpointing import (DEFAULT_BUDGET_FRACTION, DISK_FRACTION,  # noqa: PLC0415
                                plan_schedule)

    budget = limit if limit is not None else int(room * DEFAULT_BUDGET_FRACTION)
    path, free = disk if disk is not None else (None, 0)
    schedule = plan_schedule(n_snapshots, interval, nt_internal, per_snapshot, state_bytes,
                             trace_bytes, budget, opts.checkpoint_count,
                             disk_bytes=int(free * DISK_FRACTION), path=path)
    gib = lambda n: f"{n / 2**30:.3g} GiB"  # noqa: E731
    where = "host memory" if host_backend else "device memory"
    problem = ""
    if schedule is None:
        name = ("storage_bytes_limit_host" if host_backend else "storage_bytes_limit_device")
        source = f"{name}={limit}" if limit is not None else (
            f"{DEFAULT_BUDGET_FRACTION:.0%} of the {gib(room)} of {where} the rest of the run "
            "leaves")
        on_disk = path is not None and free * DISK_FRACTION >= state_bytes
        states, where_else = (1, f", the checkpoints on disk in {path!r}") if on_disk else (2, "")
        least = states * state_bytes + per_snapshot + trace_bytes
        problem = (f"checkpointing needs at least {gib(least)} ({states} state(s) of the run "
                   f"of {gib(state_bytes)}, one stored step of {gib(per_snapshot)} and a copy "
                   f"of the traces{where_else}) but its budget is {gib(budget)} ({source}); "
                   "raise the limit, or use fewer shots per run or a smaller model")
    elif schedule.held_bytes > room:
        problem = (f"the {schedule.checkpoints} checkpoints need {gib(schedule.held_bytes)} "
                   f"of {where} but the rest of the run leaves {gib(room)}; use a smaller "
                   "checkpoint_count or a storage limit")
    chunk = schedule.segment if schedule is not None else 1
    return StoragePlan("checkpoint", opts.mode, names, n_snapshots, interval,
                       tuple(slot_shape), itemsize, opts.compression, chunk, path,
                       fits=not problem, available=budget, reason=problem,
                       counts=counts, schedule=schedule)


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _check_disk(path: str | None) -> tuple[str, int]:
    """The disk folder (must exist and be writable) and its free bytes."""
    base = Path(path) if path is not None else Path(tempfile.gettempdir())
    if not base.is_dir():
        raise ValueError(f"storage_path {str(base)!r} is not an existing directory")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise ValueError(f"storage_path {str(base)!r} is not writable: {exc}") from None
    return str(base), shutil.disk_usage(base).free


def _open_unlinked(folder: str, name: str) -> int:
    """A read-write file in ``folder`` that has no name: the kernel frees it when
    its last descriptor closes, also when the process is killed."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            return os.open(folder, os.O_RDWR | flag | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:  # file systems without O_TMPFILE
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    fd, filename = tempfile.mkstemp(prefix=f"wavecore-{name}-", suffix=".bin", dir=folder)
    os.unlink(filename)
    return fd


def _write_all(fd: int, data: memoryview, offset: int, what: str) -> None:
    """Write all of ``data`` at ``offset`` (looping on short writes) or raise an
    OSError (ENOSPC when the disk takes nothing) naming ``what`` and the bytes."""
    _transfer_all(lambda view, at: os.pwrite(fd, view, at), data, offset, f"writing {what}",
                  "written", errno.ENOSPC, "the disk took no more")


def _read_all(fd: int, data: memoryview, offset: int, what: str) -> None:
    """Fill ``data`` from ``offset`` (looping on short reads) or raise (EIO when
    the file ends early)."""
    _transfer_all(lambda view, at: os.preadv(fd, [view], at), data, offset, f"reading {what}",
                  "read", errno.EIO, "the file ends there")


def _transfer_all(op, data: memoryview, offset: int, doing: str, done_word: str,
                  short_errno: int, short_reason: str) -> None:
    done, total = 0, data.nbytes
    while done < total:
        try:
            n = op(data[done:], offset + done)
        except InterruptedError:
            continue
        except OSError as exc:
            raise OSError(exc.errno, f"{doing}: {done} of {total} bytes at offset {offset} "
                          f"{done_word}: {exc.strerror or exc}") from exc
        if n <= 0:
            raise OSError(short_errno, f"{doing}: {done} of {total} bytes at offset {offset} "
                          f"{done_word}, {short_reason} ({os.strerror(short_errno)})")
        done += n


def _close_disk(fds: list, io) -> None:
    """Close a disk store's files (which frees them) and stop its thread."""
    if io is not None:
        # Dropped from the store's own thread (its last task held the last
        # reference): that thread is finishing, it cannot wait for itself.
        own = threading.current_thread().name.startswith(_THREAD_NAME)
        io.shutdown(wait=not own, cancel_futures=True)
    while fds:
        try:
            os.close(fds.pop())
        except OSError:
            pass


def clean_stale_folders(base: str) -> list[str]:
    """Remove ``wavecore-snapshots-*`` folders that older versions of wavecore
    left in ``base`` when their process was killed; warn about each.

    A folder is removed when it belongs to this user, holds only snapshot files,
    and no live process has a file of it open (``/proc/*/fd``); folders that
    may be in use, or that cannot be checked, are reported and kept."""
    try:
        entries = [e for e in os.scandir(base)
                   if e.name.startswith("wavecore-snapshots-") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    if not entries:
        return []
    open_paths = _open_file_paths()
    removed = []
    for entry in entries:
        folder = entry.path
        try:
            files = list(os.scandir(folder))
            size = sum(f.stat(follow_symlinks=False).st_size for f in files)
            mine = entry.stat(follow_symlinks=False).st_uid == os.getuid()
        except OSError:
            continue
        only_snapshots = all(f.name.endswith(".bin") and stat.S_ISREG(
            f.stat(follow_symlinks=False).st_mode) for f in files)
        in_use = open_paths is None or any(p.startswith(folder + os.sep) for p in open_paths)
        if mine and only_snapshots and not in_use:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            warnings.warn(f"removed {folder!r} ({size / 2**20:.1f} MiB): snapshots left by a "
                          "wavecore run that was killed (older versions kept named files)",
                          ResourceWarning, stacklevel=3)
        else:
            why = ("it may be in use" if mine and only_snapshots else
                   "it belongs to another user" if not mine else "it holds other files")
            warnings.warn(f"{folder!r} ({size / 2**20:.1f} MiB) looks like snapshots left by a "
                          f"killed wavecore run; not removed because {why}", ResourceWarning,
                          stacklevel=3)
    return removed


def _open_file_paths() -> list[str] | None:
    """Paths of every file open in a process this user can see (None: unknown)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    paths = []
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    paths.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
        except PermissionError:
            if os.stat(f"/proc/{pid}").st_uid == os.getuid():
                return None  # one of ours we cannot read: cannot tell
        except OSError:
            pass
    return paths


class ChunkLayout:
    """Where a store's chunks fall in the run (``self.plan``, a StoragePlan):
    shared by every store of the chunk protocol."""

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


class SnapshotStore(ChunkLayout):
    """The snapshots of one run, laid out as ``plan`` says."""

    def __init__(self, plan: StoragePlan, dtype, memory=HOST):
        self.plan = plan
        self.memory = memory
        self.store_dtype = np.dtype(np.uint16 if plan.compression == "bf16" else dtype)
        self.closed = False
        self._arrays: dict[str, np.ndarray] = {}
        self._folder: str | None = None
        self._fds: dict[str, int] = {}
        self._io: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future] = {}
        shape = plan.shape_of
        # A backend with its own memory writes "cpu" and "disk" chunks into a
        # ring of two staging chunks there: each is copied to the host store
        # on a side stream while the next chunk is computed, and in the
        # reverse pass chunk c - 1 is copied back while chunk c is used.
        # "device" snapshots live in the backend's memory.
        self._staging: list = []
        self._transfers: dict[int, object] = {}  # chunk -> its pending copy
        self._write_direction = 1
        host_empty = memory.host_empty
        self._block = None  # host snapshots: one block of wavecore.memory.POOL
        shapes = {n: (plan.n_snapshots, *shape(n)) for n in plan.names}
        if plan.mode in ("device", "cpu") and not memory.separate:
            self._block = POOL.take(carved_bytes(shapes, self.store_dtype))
            self._arrays = carve(self._block, shapes, self.store_dtype)
            # back to the pool at close(), or when the store is dropped unclosed
            self._give_back = weakref.finalize(self, POOL.give, self._block)
        elif plan.mode == "device":
            self._arrays = {n: memory.empty(s, self.store_dtype) for n, s in shapes.items()}
        elif plan.mode == "cpu":
            self._arrays = {n: host_empty(s, self.store_dtype) for n, s in shapes.items()}
        elif plan.mode == "disk":
            self._folder = plan.path
            clean_stale_folders(plan.path)
            fds: list[int] = []  # closed by close(), or when the store is dropped
            self._io = ThreadPoolExecutor(1, thread_name_prefix=_THREAD_NAME)
            self._finalizer = weakref.finalize(self, _close_disk, fds, self._io)
            for n in plan.names:
                fds.append(_open_unlinked(plan.path, n))
                self._fds[n] = fds[-1]
            self._ring = [{n: host_empty((plan.chunk, *shape(n)), self.store_dtype)
                           for n in plan.names} for _ in range(2)]
        if memory.separate and plan.mode in ("cpu", "disk"):
            self._staging = [{n: memory.empty((plan.chunk, *shape(n)), self.store_dtype)
                              for n in plan.names} for _ in range(2)]

    # -- forward ------------------------------------------------------------------
    def chunk_for_writing(self, c: int, direction: int = 1) -> dict[str, np.ndarray]:
        """Buffers ``[chunk, *slot_shape]`` the solver fills with chunk ``c``, in a
        pass that writes the chunks in ``direction`` (+1: the forward, c, c + 1,
        ...; -1: the adjoint values a reverse pass keeps, c, c - 1, ...)."""
        self._check_open()
        if direction not in (-1, 1):
            raise ValueError(f"direction must be -1 or +1, got {direction!r}")
        self._write_direction = direction
        before = c - 2 * direction  # the chunk that last used this ring / staging buffer
        if self._staging:
            # The staging chunk last held chunk `before`: its copy out must be done.
            self.memory.after(self._transfers.pop(before, None))
            return self._staging[c % 2]
        if self.plan.mode == "disk":
            ring = self._ring[c % 2]
            self._wait(before)  # the write that used this ring buffer must be done
            return ring
        first, last = self.chunk_range(c)
        return {n: a[first:last] for n, a in self._arrays.items()}

    def chunk_written(self, c: int) -> None:
        """Chunk ``c`` is complete: disk stores start writing it in the background."""
        first, last = self.chunk_range(c)
        if self._staging:  # from the backend's memory into the host store
            count = last - first
            if self.plan.mode == "disk":
                self._wait(c - 2 * self._write_direction)  # the ring's previous chunk is on disk
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
        count = last - first

        def write():
            for name, array in ring.items():
                offset = first * _prod(self.plan.shape_of(name)) * self.store_dtype.itemsize
                _write_all(self._fds[name], memoryview(array[:count]).cast("B"), offset,
                           f"snapshot chunk {c} of {name!r} to {self._folder!r}")

        self._pending[c] = self._io.submit(write)

    def finish_forward(self) -> None:
        """Wait for every copy and write (raises if one failed)."""
        for c in sorted(self._transfers):
            self.memory.wait(self._transfers.pop(c))
        for c in sorted(self._pending):
            self._wait(c)

    # -- reading (the reverse pass, a tangent pass) ----------------------------------
    def chunk_for_reading(self, c: int, direction: int = -1) -> dict[str, np.ndarray]:
        """Chunk ``c`` for a pass that reads the chunks in ``direction`` (-1: the
        reverse pass, c, c - 1, ...; +1: a tangent pass, c, c + 1, ...); disk and
        staged stores prefetch the next chunk of that direction meanwhile."""
        if direction not in (-1, 1):
            raise ValueError(f"direction must be -1 or +1, got {direction!r}")
        host = self._host_chunk_for_reading(c, direction)
        if not self._staging:
            return host
        handle = self._transfers.pop(c, None)
        if handle is None:  # not prefetched
            handle = self._upload(c, host)
        self.memory.after(handle)
        following = c + direction
        if 0 <= following < self.plan.n_chunks and self.plan.mode == "cpu":
            self._transfers[following] = self._upload(
                following, self._host_chunk_for_reading(following, direction))
        return self._staging[c % 2]

    def _upload(self, c: int, host: dict):
        first, last = self.chunk_range(c)
        names = list(host)
        return self.memory.upload_async([self._staging[c % 2][n][: last - first] for n in names],
                                        [host[n][: last - first] for n in names])

    def _host_chunk_for_reading(self, c: int, direction: int = -1) -> dict:
        self._check_open()
        if self.plan.mode != "disk":
            first, last = self.chunk_range(c)
            return {n: a[first:last] for n, a in self._arrays.items()}
        if c not in self._pending:
            self._pending[c] = self._io.submit(self._read, c)
        self._wait(c)
        following = c + direction
        if 0 <= following < self.plan.n_chunks and following not in self._pending:
            self._pending[following] = self._io.submit(self._read, following)
        return self._ring[c % 2]

    def _read(self, c: int) -> None:
        first, last = self.chunk_range(c)
        for name, array in self._ring[c % 2].items():
            offset = first * _prod(self.plan.shape_of(name)) * self.store_dtype.itemsize
            _read_all(self._fds[name], memoryview(array[: last - first]).cast("B"), offset,
                      f"snapshot chunk {c} of {name!r} from {self._folder!r}")

    def _wait(self, c: int) -> None:
        future = self._pending.pop(c, None)
        if future is None:
            return
        try:
            future.result()
        except OSError as exc:
            raise OSError(exc.errno, f"snapshot storage on disk failed in {self._folder!r}: "
                          f"{exc.strerror or exc}") from exc

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
        if self._block is not None:  # no view of it is left: the pool may reuse it
            self._block = None
            self._give_back()
        for handle in self._transfers.values():
            self.memory.wait(handle)
        self._transfers = {}
        self._staging = []
        if self.plan.mode == "disk":
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            self._finalizer()  # waits for the thread, closes (and so frees) the files
            self._fds = {}
            self._ring = []

    @property
    def folder(self) -> str | None:
        """The folder of a disk store's files (which have no name there)."""
        return self._folder

    def disk_bytes(self) -> int:
        """Bytes the disk store's files hold now (0 once closed)."""
        return sum(os.fstat(fd).st_size for fd in self._fds.values())
