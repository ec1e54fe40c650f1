"""Where a run's buffers live: host memory, or the memory of a device.

The driver prepares every buffer in host memory; a backend then *adopts* the
arrays its kernels read (moving them to its memory) and the driver moves data
back only where it needs it: receiver data and final state at the end, model
gradients after the reverse pass, snapshot chunks for host or disk storage.
For the CPU core and the numpy reference adopting is the identity and nothing
is copied.
"""

from __future__ import annotations

import atexit
import os
import resource
import sys
import threading
from dataclasses import dataclass

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
    return carve(aligned_block(carved_bytes(shapes, dtype), np.zeros), shapes, dtype)


def aligned_block(nbytes: int, allocate=np.empty) -> np.ndarray:
    """A uint8 block of ``nbytes`` that starts on a 2 MiB boundary (``allocate``:
    np.empty or np.zeros, over ``nbytes`` plus one huge page)."""
    raw = allocate(nbytes + HUGE_PAGE, np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    return raw[start:start + nbytes]


def carve(block: np.ndarray, shapes: dict, dtype) -> dict:
    """Arrays ``{name: shape}`` of ``dtype`` laid out one after another in
    ``block`` (each on a cache line), as views."""
    dtype = np.dtype(dtype)
    out, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * dtype.itemsize
        out[name] = block[offset:offset + size].view(dtype).reshape(shape)
        offset += -(-size // _ALIGN) * _ALIGN
    return out


def carved_bytes(shapes: dict, dtype) -> int:
    """The bytes :func:`carve` needs for ``shapes``."""
    itemsize = np.dtype(dtype).itemsize
    return sum(-(-int(np.prod(s)) * itemsize // _ALIGN) * _ALIGN for s in shapes.values())


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

    def zeros_pooled(self, shapes: dict, dtype) -> tuple[dict, object]:
        """Zeroed arrays ``{name: shape}`` carved from one block of the pool
        (:data:`POOL`, as the host snapshots), and the function that gives the
        block back once the caller has dropped them: a repeated gradient's
        adjoint buffers (wavecore._gradient) then reuse mapped pages, where
        fresh ones would fault during the first reverse steps."""
        nbytes = carved_bytes(shapes, dtype)
        block = POOL.take(nbytes)
        block[:nbytes].fill(0)
        return carve(block, shapes, dtype), lambda: POOL.give(block)

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

    def zeros_pooled(self, shapes: dict, dtype) -> tuple[dict, object]:
        """Device arrays come from CuPy's own memory pool: nothing to give back."""
        return self.zeros_many(shapes, dtype), lambda: None

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


# -- how much host memory a run may allocate -------------------------------------

#: Where the cgroup hierarchies are mounted and where this process's cgroups are
#: listed; tests point these at fake trees.
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"
PROC_MEMINFO = "/proc/meminfo"
PROC_SELF_STATUS = "/proc/self/status"
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as ~2^63 rounded to a page


@dataclass(frozen=True)
class Available:
    """Bytes of host memory new allocations can get, and the limit that sets it."""

    bytes: int
    source: str  #: e.g. "MemAvailable", "cgroup v2 /slurm/job_1 (memory.max 1.5 GiB)"

    def describe(self) -> str:
        return f"{format_bytes(self.bytes)} ({self.source})"


def format_bytes(n: int) -> str:
    """Bytes in MiB, GiB or TiB, three significant digits."""
    for unit, shift in (("TiB", 40), ("GiB", 30)):
        if n >= 1 << shift:
            return f"{n / 2**shift:.3g} {unit}"
    return f"{n / 2**20:.3g} MiB"


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat_value(path: str, key: str) -> int:
    """``key``'s value in a cgroup ``memory.stat`` (0 if absent)."""
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_dirs(root: str, mount: str, relative: str) -> list[str]:
    """The process's cgroup directory under ``root/mount`` and its parents up to
    the mount point (a relative path that does not exist there, as seen from
    inside a container's namespace, falls back to the mount point itself)."""
    base = os.path.join(root, mount) if mount else root
    rel = relative.strip("/")
    here = os.path.join(base, rel) if rel else base
    if not os.path.isdir(here):
        here = base
    dirs = []
    while True:
        dirs.append(here)
        if os.path.normpath(here) == os.path.normpath(base):
            return dirs
        here = os.path.dirname(here)


def cgroup_limits(root: str | None = None, self_cgroup: str | None = None) -> list[Available]:
    """Room left under every cgroup memory limit of this process (v1 and v2).

    v2: ``memory.max - memory.current`` of the process's cgroup and each parent.
    v1: ``memory.limit_in_bytes - memory.usage_in_bytes`` likewise. In both the
    cgroup's inactive file cache (``memory.stat``) counts as free: the kernel
    reclaims it before it kills anything."""
    root = CGROUP_ROOT if root is None else root
    self_cgroup = PROC_SELF_CGROUP if self_cgroup is None else self_cgroup
    try:
        with open(self_cgroup) as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    except OSError:
        return []
    found = []
    for parts in lines:
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2 (unified); mounted at root or root/unified
            mounts = [m for m in ("", "unified")
                      if os.path.exists(os.path.join(root, m, "cgroup.controllers"))]
            for mount in mounts[:1]:
                found += [a for d in _cgroup_dirs(root, mount, path)
                          if (a := _cgroup_room(d, "v2", "memory.max", "memory.current",
                                                "inactive_file"))]
        elif "memory" in controllers.split(","):
            mount = next((m for m in (controllers, "memory")
                          if os.path.isdir(os.path.join(root, m))), None)
            if mount is None:
                continue
            found += [a for d in _cgroup_dirs(root, mount, path)
                      if (a := _cgroup_room(d, "v1", "memory.limit_in_bytes",
                                            "memory.usage_in_bytes", "total_inactive_file"))]
    return found


def _cgroup_room(d: str, version: str, limit_file: str, usage_file: str, inactive: str):
    """What cgroup folder ``d`` leaves (its limit minus its usage, the inactive
    file cache counting as free), or None without a limit."""
    limit = _read_int(os.path.join(d, limit_file))
    if limit is None or limit >= _UNLIMITED:
        return None
    used = _read_int(os.path.join(d, usage_file)) or 0
    used -= _stat_value(os.path.join(d, "memory.stat"), inactive)
    return Available(max(limit - max(used, 0), 0),
                     f"cgroup {version} {d}: {limit_file} {limit / 2**30:.3g} GiB")


def _status_kib(key: str) -> int:
    try:
        with open(PROC_SELF_STATUS) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rlimit_limits() -> list[Available]:
    """Room left under RLIMIT_AS (address space) and RLIMIT_DATA, where set."""
    found = []
    for name, status_key in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft = resource.getrlimit(which)[0]
        if soft == resource.RLIM_INFINITY or soft < 0:
            continue
        used = _status_kib(status_key)
        found.append(Available(max(soft - used, 0), f"{name} {soft / 2**30:.3g} GiB"))
    return found


def meminfo_available() -> Available | None:
    try:
        with open(PROC_MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return Available(int(line.split()[1]) * 1024, "MemAvailable")
    except (OSError, ValueError, IndexError):
        pass
    try:
        return Available(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"),
                         "free physical pages")
    except (ValueError, OSError, AttributeError):
        return None


def host_available() -> Available:
    """The host memory new allocations can get: the least of MemAvailable, the room
    under every cgroup memory limit (v2, v1, the process's cgroup and its parents:
    SLURM ``--mem``, containers) and RLIMIT_AS / RLIMIT_DATA."""
    candidates = [a for a in (meminfo_available(), *cgroup_limits(), *rlimit_limits())
                  if a is not None]
    if not candidates:
        return Available(1 << 62, "unknown")
    return min(candidates, key=lambda a: a.bytes)


def available_memory() -> int:
    """Bytes of host memory available to new allocations (see :func:`host_available`)."""
    return host_available().bytes


# -- a pool of host blocks for snapshots --------------------------------------------

class BlockPool:
    """Host memory blocks kept between runs, so that a repeated gradient of one
    shape (an FWI loop) writes its snapshots into pages that are already mapped.

    Memory a process touches for the first time costs a page fault per page
    (per 2 MiB with transparent huge pages, which the 2 MiB-aligned blocks get
    where the kernel offers them, see :func:`zeros_block`); on shared VMs that
    made the storing forward several times the plain forward. A
    :class:`~wavecore.storage.SnapshotStore` in host memory takes one block for
    all its arrays (:meth:`take`) and gives it back when it closes
    (:meth:`give`); the next store of that size or smaller reuses it (a take
    that no parked block fits frees them all first, and run planning counts
    them as available: :meth:`counted`). The pool
    keeps at most the most bytes that were in use at once over the last few
    periods of use (a gradient's snapshots, with second_vjp's kept values
    beside them; never more than half the memory available when a block comes
    back), drops the oldest blocks beyond that, and is emptied by :func:`wavecore.release_memory`
    and at exit. ``WAVECORE_MEMORY_POOL=0`` turns it off.
    """

    RECENT = 4  #: periods of use (from a first take until nothing is in use) that size it

    def __init__(self):
        self._free: list[np.ndarray] = []  # 2 MiB-aligned uint8 blocks, oldest first
        self._peaks: list[int] = [0]  # bytes in use at most, per recent period (last: now)
        self._in_use = 0
        self._lock = threading.Lock()
        self.hits = 0  #: takes served from the pool
        self.misses = 0  #: takes that allocated

    @staticmethod
    def enabled() -> bool:
        return os.environ.get("WAVECORE_MEMORY_POOL", "1") != "0"

    @property
    def parked_bytes(self) -> int:
        """Bytes held for reuse (not in any store)."""
        with self._lock:
            return sum(b.nbytes for b in self._free)

    def take(self, nbytes: int) -> np.ndarray:
        """A 2 MiB-aligned uint8 block of at least ``nbytes`` (its content is
        whatever it last held): the smallest parked one that fits, else new."""
        nbytes = max(int(nbytes), 1)
        size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE  # whole huge pages
        with self._lock:
            fits = [b for b in self._free if b.nbytes >= nbytes]
            if fits and self.enabled():
                block = min(fits, key=lambda b: b.nbytes)
                self._free = [b for b in self._free if b is not block]
                self.hits += 1
            else:  # none fits: the parked blocks go back to the system first
                block, self._free = None, []
                self.misses += 1
            self._in_use += size if block is None else block.nbytes
            self._peaks[-1] = max(self._peaks[-1], self._in_use)
        if block is not None:
            return block
        return aligned_block(size)

    def give(self, block: np.ndarray) -> None:
        """Park ``block`` (from :meth:`take`) for the next take, unless a view
        of it is still alive somewhere (an array a callback kept, see
        :func:`viewed`): that block is left to the garbage collector, so no
        later run writes into memory someone still reads."""
        with self._lock:
            self._in_use = max(self._in_use - block.nbytes, 0)
            limit = max(self._peaks)
            if self._in_use == 0:  # a period of use ended: the next one starts at 0
                self._peaks = (self._peaks + [0])[-self.RECENT:]
        if not self.enabled() or viewed(block):
            return
        # never more than half of what the process could have (the parked and
        # this block included)
        limit = min(limit, (available_memory() + self.parked_bytes + block.nbytes) // 2)
        with self._lock:
            free = [*self._free, block]
            while free and sum(b.nbytes for b in free) > limit:
                free.pop(0)  # the oldest first (the new block too, if it alone is over)
            self._free = free

    def counted(self, have: Available) -> Available:
        """``have`` (what the system can give) plus the parked bytes: a new run
        reuses them, or the pool frees them before it allocates."""
        parked = self.parked_bytes
        if not parked:
            return have
        return Available(have.bytes + parked, f"{have.source}, plus {format_bytes(parked)} "
                                              "parked in wavecore's snapshot pool")

    def release(self) -> int:
        """Free every parked block; returns the bytes released."""
        with self._lock:
            freed = sum(b.nbytes for b in self._free)
            self._free = []
            self._peaks = [self._in_use]
        return freed


def viewed(block: np.ndarray) -> bool:
    """Whether an array other than ``block`` still views the memory it owns.

    A pool block is a slice of the allocation that owns its pages
    (:func:`aligned_block`), and numpy points every view of a view (the carved
    arrays, their slices and reshapes) at that owner: beyond ``block``'s own
    reference and this call's, a reference to the owner is a live view."""
    return block.base is not None and sys.getrefcount(block.base) > 2


#: The process's pool of snapshot and adjoint blocks (wavecore.storage, wavecore._gradient).
POOL = BlockPool()
atexit.register(POOL.release)


def release_memory() -> dict:
    """Free the memory wavecore keeps for reuse: the host pool of snapshot
    blocks and, where CuPy is in use, CuPy's pools of device and pinned
    memory. Returns the bytes freed per pool (``{"host": n, ...}``); runs
    already holding buffers keep them."""
    out = {"host": POOL.release()}
    import sys  # noqa: PLC0415

    cupy = sys.modules.get("cupy")
    if cupy is not None:
        try:
            pool = cupy.get_default_memory_pool()
            out["device"] = int(pool.free_bytes())
            pool.free_all_blocks()
            cupy.get_default_pinned_memory_pool().free_all_blocks()
        except Exception:  # noqa: BLE001 - no usable device: nothing held there
            pass
    return out
