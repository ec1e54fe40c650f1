"""Checkpointing: exact gradients of any length within a memory budget.

``storage_mode="checkpoint"`` keeps, instead of every step's snapshots, the
full state of the run (fields, CPML memories, a law's own state such as Debye
polarizations) at a few *checkpoints*, and the snapshots of one *segment* of
consecutive stored steps. A pass that reads the snapshots asks for them a
segment at a time (the chunks of wavecore.storage); the store recomputes each
segment from a checkpoint with the same deterministic forward step, so every
gradient equals the full-storage gradient bit for bit.

Where the checkpoints go and which segments are recomputed when is a binomial
(Revolve) schedule of ``checkpoint_schedules``
(``MultistageCheckpointSchedule``, optimal for one reverse pass: Griewank &
Walther 2000, Stumm & Walther 2009). Its steps are our segments: the forward
run follows its forward part (writing checkpoints at the segments it names and
the last segment's snapshots), a reverse pass follows the rest. Segment 0's
checkpoint (the initial state) outlives every pass, so later passes (``vjp``
with ``keep=True``, the sweeps of ``jvp`` and ``second_vjp``) run the
schedule again from it: one more forward each; a pass in the forward
direction (``jvp``'s tangent) recomputes each segment once, in order.

The plan (:func:`plan_schedule`) picks the segment length and the number of
checkpoints that recompute the fewest steps within the budget: with ``s``
checkpoints and ``n`` segments a reverse pass recomputes ``r n - C(s + r, r - 1)``
segments, ``r`` the least integer with ``C(s + r, s) >= n``. The budget holds
the checkpoints, the working state the recomputation advances, one segment of
snapshots and a scratch copy of the receiver traces (recomputation must not
overwrite the data the run returned). ``checkpoint_count=N`` sets ``N``
checkpoints and segments of one stored step (Revolve's classic setting: the
least memory for ``N``); with ``N >= n - 1`` every segment is recomputed once.

Two levels: with ``storage_path`` (or ``"auto"`` choosing checkpointing)
checkpoints the memory budget cannot hold go to one unlinked file in that
folder (freed when the store closes or the process ends). The schedule
(``MultistageCheckpointSchedule(n, in_ram, on_disk)``, Stumm & Walther 2009)
says which checkpoints live where; a disk checkpoint costs a write and a read
of one state, which the planner prices at ``DISK_ACCESS_STEPS`` steps
(measured by bench/bench_checkpointing.py), so it uses the disk only where
the recomputation it saves is worth more.

Forward callbacks do not fire during recomputation (the steps they saw are
recomputed from the checkpoints, bit for bit; a callback that *changes* the
wavefields makes the recomputed steps differ from the ones it saw).
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

import numpy as np

from ._stepping import StepChunks
from .memory import POOL, carve, carved_bytes, format_bytes
from .storage import ChunkLayout, _close_disk, _open_unlinked, _read_all, _write_all

__all__ = ["Schedule", "plan_schedule", "recomputed_segments", "disk_accesses",
           "CheckpointStore", "DEFAULT_BUDGET_FRACTION", "DISK_ACCESS_STEPS"]

#: With no storage_bytes_limit_host (CPU) / storage_bytes_limit_device (GPU),
#: checkpointing may use this fraction of the memory the rest of the run leaves.
DEFAULT_BUDGET_FRACTION = 0.5
#: The planner's price of one recomputed segment beyond its steps (a backend
#: call and a state copy), in steps.
_SEGMENT_OVERHEAD_STEPS = 0.25
#: The planner's price of writing or reading one checkpoint on disk, in steps
#: of the run (bench/bench_checkpointing.py measures it: see docs/gradients.md).
DISK_ACCESS_STEPS = 8.0
#: Disk plans whose accesses the planner counts (the cheapest by a lower bound).
_DISK_CANDIDATES = 8
#: Of the free space of ``storage_path``, disk checkpoints may use this fraction.
DISK_FRACTION = 0.9


def recomputed_segments(n: int, s: int) -> int:
    """Segments a reverse pass over ``n`` segments recomputes with ``s`` checkpoints
    (the binomial optimum, which MultistageCheckpointSchedule attains): 0 for
    one segment (stored by the forward)."""
    if n <= 1:
        return 0
    s = min(s, n - 1)
    if s < 1:
        raise ValueError("more than one segment needs at least one checkpoint")
    r = 0
    while math.comb(s + r, s) < n:
        r += 1
    return r * n - math.comb(s + r, r - 1)


@functools.lru_cache(maxsize=64)
def disk_accesses(n: int, ram: int, disk: int) -> int:
    """Disk checkpoint writes and reads of the run's forward and one reverse
    pass of ``MultistageCheckpointSchedule(n, ram, disk)`` (counted by running
    the schedule: a few hundredths of a second for thousands of segments)."""
    from checkpoint_schedules import (Copy, EndReverse, Forward,  # noqa: PLC0415
                                      MultistageCheckpointSchedule, Move, StorageType)

    if disk == 0 or n <= 1:
        return 0
    count = 0
    for action in MultistageCheckpointSchedule(n, ram, disk):
        if isinstance(action, EndReverse):
            break
        if isinstance(action, Forward):
            count += action.write_ics and action.storage == StorageType.DISK
        elif isinstance(action, (Copy, Move)):
            count += action.from_storage == StorageType.DISK
    return count


@dataclass(frozen=True)
class Schedule:
    """The checkpointing of one run (computed before it starts)."""

    segment: int           #: stored steps per segment (the store's chunk)
    segments: int          #: segments over the run
    checkpoints: int       #: restart states kept (segment 0's among them)
    recomputed_steps: int  #: internal steps one reverse pass recomputes
    state_bytes: int       #: one restart state (fields, CPML memories, law state)
    held_bytes: int        #: what the store holds: checkpoints, working state,
    #: one segment of snapshots, the traces' scratch
    budget: int | None     #: the bytes it had to fit (None: checkpoint_count)
    nt_internal: int
    disk_checkpoints: int = 0  #: of ``checkpoints``, those kept on disk
    disk_accesses: int = 0     #: disk checkpoint writes and reads, forward + one reverse pass
    path: str | None = None    #: the folder of the disk checkpoints

    @property
    def ram_checkpoints(self) -> int:
        return self.checkpoints - self.disk_checkpoints

    @property
    def disk_bytes(self) -> int:
        """Bytes the disk checkpoints take in their file."""
        return self.disk_checkpoints * self.state_bytes

    @property
    def recompute_ratio(self) -> float:
        """Recomputed steps of a reverse pass per step of the run."""
        return self.recomputed_steps / max(self.nt_internal, 1)

    def describe(self) -> str:
        disk = (f" ({self.disk_checkpoints} on disk in {self.path!r}, "
                f"{self.disk_accesses} disk accesses per gradient)"
                if self.disk_checkpoints else "")
        return (f"{self.checkpoints} checkpoints{disk} of {format_bytes(self.state_bytes)}, "
                f"{self.segments} segments of {self.segment} stored steps, "
                f"{self.recomputed_steps} recomputed steps per reverse pass "
                f"({self.recompute_ratio:.2f} forward runs), holds "
                f"{format_bytes(self.held_bytes)}")


def _held(segment: int, segments: int, checkpoints: int, snapshot_bytes: int,
          state_bytes: int, scratch_bytes: int) -> int:
    if segments == 1:  # one segment: the forward stores it, nothing is recomputed
        return segment * snapshot_bytes
    return (checkpoints + 1) * state_bytes + segment * snapshot_bytes + scratch_bytes


def plan_schedule(n_snapshots: int, interval: int, nt_internal: int, snapshot_bytes: int,
                  state_bytes: int, scratch_bytes: int, budget: int | None,
                  count: int | None = None, disk_bytes: int = 0,
                  path: str | None = None) -> Schedule | None:
    """The cheapest schedule within ``budget`` bytes of memory and ``disk_bytes``
    of disk in ``path`` (0: no disk level); None: nothing fits. With ``count``:
    that many checkpoints and one stored step per segment (those the budget
    cannot hold on disk, when there is a disk level).

    The price of a schedule is its recomputed steps, a little per recomputed
    segment and per segment (``_SEGMENT_OVERHEAD_STEPS``) and
    ``DISK_ACCESS_STEPS`` per disk checkpoint write or read."""
    on_disk = disk_bytes // max(state_bytes, 1) if path is not None else 0

    def schedule(segment: int, ram: int, disk: int = 0, accesses: bool = True) -> Schedule:
        segments = -(-n_snapshots // segment)
        disk = min(disk, max(segments - 1 - ram, 0))
        ram = min(ram, segments - 1 - disk)
        steps = recomputed_segments(segments, ram + disk) * segment * interval
        return Schedule(segment, segments, ram + disk, steps, state_bytes,
                        _held(segment, segments, ram, snapshot_bytes, state_bytes,
                              scratch_bytes), budget, nt_internal, disk,
                        disk_accesses(segments, ram, disk) if disk and accesses else 0,
                        path if disk else None)

    def price(plan: Schedule) -> float:
        recomputed = plan.recomputed_steps / max(plan.segment * interval, 1)
        return (plan.recomputed_steps + DISK_ACCESS_STEPS * plan.disk_accesses
                + _SEGMENT_OVERHEAD_STEPS * (recomputed + plan.segments))

    if count is not None:
        ram = count
        if on_disk and budget is not None:  # the budget's checkpoints in memory, the rest on disk
            ram = max((budget - _held(1, 2, 0, snapshot_bytes, state_bytes, scratch_bytes))
                      // max(state_bytes, 1), 0)
            ram = max(min(ram, count), count - on_disk)
        return schedule(1, ram, count - ram)
    best, best_cost, with_disk = None, math.inf, []
    for segments in _candidate_counts(n_snapshots):
        segment = -(-n_snapshots // segments)
        segments = -(-n_snapshots // segment)
        ram = 0
        if segments > 1:
            room = budget - _held(segment, segments, 0, snapshot_bytes, state_bytes,
                                  scratch_bytes)
            if room < 0:
                continue
            ram = min(room // max(state_bytes, 1), segments - 1)
        if segments > 1 and ram < segments - 1 and on_disk:  # held <= budget: room >= 0
            with_disk.append((segment, ram))
        if segments > 1 and ram < 1:
            continue
        plan = schedule(segment, ram)
        if plan.held_bytes > budget:
            continue
        cost = price(plan)
        if cost < best_cost or (cost == best_cost and plan.held_bytes < best.held_bytes):
            best, best_cost = plan, cost
    # Disk checkpoints (as many as fit, half as many, ...): ranked with the least
    # accesses they can take (each written once and read once), then the best
    # few, and the best few with as many as fit, priced with their accesses
    # counted (running a schedule takes time; fewer disk checkpoints are
    # rewritten more often than the bound says).
    candidates, most = [], []
    for segment, ram in with_disk:
        disk = most_disk = min(on_disk, -(-n_snapshots // segment) - 1 - ram)
        while disk >= 1:
            plan = schedule(segment, ram, disk, accesses=False)
            entry = (price(plan) + DISK_ACCESS_STEPS * 2 * disk, segment, ram, disk)
            candidates.append(entry)
            if disk == most_disk:
                most.append(entry)
            disk //= 2
    chosen = sorted(candidates)[:_DISK_CANDIDATES] + sorted(most)[:_DISK_CANDIDATES // 2]
    for _, segment, ram, disk in sorted(set(chosen)):
        plan = schedule(segment, ram, disk)
        cost = price(plan)
        if cost < best_cost:
            best, best_cost = plan, cost
    return best


def _candidate_counts(n: int) -> list[int]:
    """Segment counts to try: every count up to 64, then about 3 % apart."""
    counts, k = set(range(1, min(n, 64) + 1)), 64.0
    while k < n:
        k *= 1.03
        counts.add(min(int(k), n))
    return sorted(counts)


class CheckpointStore(ChunkLayout):
    """The snapshots of one run, recomputed from checkpoints (the chunk
    protocol of :class:`~wavecore.storage.SnapshotStore`: the chunks are the
    schedule's segments).

    ``state`` names the buffers of the run's state; the store keeps the
    background's source term and advances its own working state with
    ``backend.forward``, swapping it into ``buffers`` for the recomputation.
    """

    def __init__(self, plan, dtype, memory, backend, buffers, state: tuple[str, ...]):
        from checkpoint_schedules import MultistageCheckpointSchedule  # noqa: PLC0415

        self._schedule_class = MultistageCheckpointSchedule
        self.plan = plan
        self.schedule = plan.schedule
        self.memory = memory
        self.backend = backend
        self.b = buffers
        self.state = tuple(state)
        self.closed = False
        self.recomputed_steps = 0  #: internal steps recomputed so far (all passes)
        dtype = np.dtype(dtype)
        self.store_dtype = np.dtype(np.uint16 if plan.compression == "bf16" else dtype)
        self._src_term = buffers.src_term  # the background's (tangent sweeps swap it)
        sched = self.schedule
        recompute = sched.segments > 1
        in_ram = sched.ram_checkpoints + 1 if recompute else 0  # and the working state
        states = {f"{i}:{n}": getattr(buffers, n).shape for i in range(in_ram)
                  for n in self.state}
        if recompute:
            states["rec_data"] = buffers.rec_data.shape
        segment = {n: (plan.chunk, *plan.shape_of(n)) for n in plan.names}
        self._block = None
        if memory.separate:
            arrays = {k: memory.empty(s, dtype) for k, s in states.items()}
            arrays.update({k: memory.empty(s, self.store_dtype) for k, s in segment.items()})
        else:  # one block of the pool (reused by the next gradient of this shape)
            first = carved_bytes(states, dtype)
            self._block = POOL.take(first + carved_bytes(segment, self.store_dtype))
            arrays = carve(self._block[:first], states, dtype)
            arrays.update(carve(self._block[first:], segment, self.store_dtype))
            self._give_back = weakref.finalize(self, POOL.give, self._block)
        self._segment = {n: arrays.pop(n) for n in plan.names}
        self._rec = arrays.pop("rec_data", None)
        slots = [{n: arrays[f"{i}:{n}"] for n in self.state} for i in range(in_ram)]
        self._work = slots.pop() if slots else None
        self._slots = slots         # the checkpoints in memory
        self._disk = None           # the file of the disk checkpoints
        if recompute and sched.disk_checkpoints:
            self._open_disk(buffers, dtype)
        self._held: dict[int, tuple[str, int]] = {}  # segment -> ("ram"/"disk", slot)
        self._first = None          # where segment 0's checkpoint is (kept by every pass)
        self._holds = None          # the segment whose snapshots _segment holds
        self._work_at = None        # the segment the working state starts
        self._actions = None        # the reverse part of the live schedule
        self._fresh = False         # _actions as the forward left them (unconsumed)
        self._forward_writes: dict[int, tuple] = {}  # (write, store, storage)
        self._new_schedule(for_forward=True)

    # -- the schedule -------------------------------------------------------------
    def _new_schedule(self, for_forward: bool = False) -> list:
        """A fresh schedule: its forward actions (up to EndForward) are returned
        (``for_forward``: noted for the run's own forward), the rest is kept."""
        from checkpoint_schedules import EndForward, Forward  # noqa: PLC0415

        sched = self.schedule
        schedule = iter(self._schedule_class(sched.segments, sched.ram_checkpoints,
                                             sched.disk_checkpoints))
        actions = []
        for action in schedule:
            if isinstance(action, EndForward):
                break
            actions.append(action)
        self._actions = schedule
        if for_forward:  # segment -> (write its checkpoint, store its snapshots, where)
            for a in actions:
                if isinstance(a, Forward):
                    for c in range(a.n0, a.n1):
                        self._forward_writes[c] = (a.write_ics and c == a.n0,
                                                   a.write_adj_deps, a.storage)
        return actions

    def _save(self, c: int, source: dict, storage) -> None:
        """Keep the state ``source`` as segment ``c``'s checkpoint, in memory or on
        disk as the schedule's ``storage`` says."""
        from checkpoint_schedules import StorageType  # noqa: PLC0415

        if c == 0 and self._first is not None:  # kept from the forward run: the same bits
            self._held[0] = self._first
            return
        kind = "disk" if storage == StorageType.DISK else "ram"
        used = {slot for k, slot in self._held.values() if k == kind}
        n_slots = len(self._slots) if kind == "ram" else self.schedule.disk_checkpoints
        slot = next((i for i in range(n_slots) if i not in used), None)
        if slot is None:
            raise RuntimeError(f"checkpoint schedule: no free {kind} slot for segment {c}'s "
                               f"checkpoint ({n_slots} in all)")
        if kind == "ram":
            for name, array in self._slots[slot].items():
                array[...] = source[name]
        else:
            self._disk_transfer(slot, source, c, write=True)
        self._held[c] = (kind, slot)
        if c == 0:
            self._first = self._held[0]

    def _load(self, c: int, release: bool) -> None:
        kind, slot = self._held[c]
        if kind == "ram":
            for name, array in self._work.items():
                array[...] = self._slots[slot][name]
        else:
            self._disk_transfer(slot, self._work, c, write=False)
        if release and c != 0:  # segment 0's checkpoint outlives every pass
            del self._held[c]
        self._work_at = c

    # -- the disk level ------------------------------------------------------------------
    def _open_disk(self, buffers, dtype) -> None:
        """One unlinked file of ``disk_checkpoints`` states (freed when it closes:
        by close(), when the store is dropped, or when the process ends)."""
        sched, fds = self.schedule, []
        self._disk_finalizer = weakref.finalize(self, _close_disk, fds, None)
        fds.append(_open_unlinked(sched.path, "checkpoints"))
        self._disk = fds[0]
        self._disk_offsets, offset = {}, 0
        for name in self.state:
            self._disk_offsets[name] = offset
            offset += int(np.prod(getattr(buffers, name).shape)) * dtype.itemsize
        self._disk_record = offset
        # a backend with its own memory copies a state through host memory
        self._disk_staging = ({n: self.memory.host_empty(getattr(buffers, n).shape, dtype)
                               for n in self.state} if self.memory.separate else None)

    def _disk_transfer(self, slot: int, arrays: dict, c: int, write: bool) -> None:
        """Write ``arrays`` (a state) to disk slot ``slot``, or read it from there."""
        what = f"checkpoint of segment {c} ({{name!r}}) in {self.schedule.path!r}"
        if write and self._disk_staging is not None:
            self.backend.synchronize()  # the state is complete on the device
        for name in self.state:
            host = arrays[name]
            if self._disk_staging is not None:
                host = self._disk_staging[name]
                if write:
                    self.memory.download(host, arrays[name])
            contiguous = np.ascontiguousarray(host)
            view = memoryview(contiguous).cast("B")
            offset = slot * self._disk_record + self._disk_offsets[name]
            if write:
                _write_all(self._disk, view, offset, what.format(name=name))
            else:
                _read_all(self._disk, view, offset, what.format(name=name))
                if contiguous is not host:
                    host[...] = contiguous
                if self._disk_staging is not None:
                    self.memory.upload(arrays[name], host)
        if not write and self._disk_staging is not None:
            self.memory.synchronize()  # the uploads are done before the staging is reused

    def _advance(self, c0: int, c1: int, store: bool) -> None:
        """Advance the working state from segment ``c0`` to ``c1``, storing the
        snapshots of segment ``c1 - 1`` when ``store``."""
        b, g, nt = self.b, self.b.geometry, self.schedule.nt_internal
        snaps = [f"snap_{n}" for n in self.plan.names]
        swapped = (*self.state, "rec_data", "src_term", *snaps)
        saved = {name: getattr(b, name) for name in swapped}
        geometry = {k: g[k] for k in ("tangent", "snap_interval", "snap_t0")}
        chunks = StepChunks(None, self.backend.synchronize)
        try:
            for name in self.state:
                setattr(b, name, self._work[name])
            b.rec_data, b.src_term, g["tangent"] = self._rec, self._src_term, 0
            t0, t1 = self.chunk_steps(c0, nt)[0], self.chunk_steps(c1 - 1, nt)[1]
            ts = self.chunk_steps(c1 - 1, nt)[0] if store else t1
            g["snap_interval"] = 0
            chunks.forward(self.backend.forward, t0, ts)
            if store:
                self._holds = None
                for name in self.plan.names:
                    setattr(b, f"snap_{name}", self._segment[name])
                g["snap_interval"], g["snap_t0"] = self.plan.interval, ts
                chunks.forward(self.backend.forward, ts, t1)
            self.backend.synchronize()
            self.recomputed_steps += t1 - t0
        finally:
            for name, array in saved.items():
                setattr(b, name, array)
            g.update(geometry)
        self._work_at = c1
        if store:
            self._holds = c1 - 1

    def _run(self, action) -> None:
        """One action of a reverse pass's schedule (not Reverse)."""
        from checkpoint_schedules import Copy, Forward, Move  # noqa: PLC0415

        if isinstance(action, (Copy, Move)):
            self._load(action.n, release=isinstance(action, Move))
        elif isinstance(action, Forward):
            if self._work_at != action.n0:
                raise RuntimeError(f"checkpoint schedule out of step: the working state is "
                                   f"at segment {self._work_at}, {action} needs {action.n0}")
            if action.write_ics:
                self._save(action.n0, self._work, action.storage)
            self._advance(action.n0, action.n1, action.write_adj_deps)
        else:
            raise RuntimeError(f"unexpected checkpoint action {action}")

    def _restart(self) -> None:
        """A new reverse pass: the schedule again, its forward part from segment
        0's checkpoint (one forward run)."""
        last = self.schedule.segments - 1
        if last == 0:  # one segment: the forward's snapshots are still there
            self._new_schedule()
            return
        self._held = {0: self._first}
        self._load(0, release=False)
        for action in self._new_schedule():
            self._run(action)
        if self._holds != last:
            raise RuntimeError("checkpoint schedule: the forward part did not end with the "
                               "last segment's snapshots")

    # -- the run's forward -------------------------------------------------------------
    def chunk_for_writing(self, c: int, direction: int = 1):
        """The forward run reaches segment ``c``: write its checkpoint where the
        schedule says; its snapshot buffer if the schedule stores them, else
        None (the forward stores nothing there)."""
        self._check_open()
        if direction != 1:
            raise ValueError("checkpointed snapshots are written by the forward run only")
        if c == 0:
            self._held, self._first, self._holds, self._fresh = {}, None, None, False
        write_ics, store, storage = self._forward_writes.get(c, (False, False, None))
        if write_ics:
            self._save(c, {n: getattr(self.b, n) for n in self.state}, storage)
        if store:
            self._holds = c
            return self._segment
        return None

    def chunk_written(self, c: int) -> None:
        pass

    def finish_forward(self) -> None:
        if self._holds != self.schedule.segments - 1:
            raise RuntimeError("checkpoint schedule: the forward run did not store the last "
                               "segment")
        self._fresh = True

    # -- passes reading the snapshots ---------------------------------------------------
    def chunk_for_reading(self, c: int, direction: int = -1) -> dict:
        """Segment ``c``'s snapshots, recomputed as the schedule says (reverse
        passes) or in order from segment 0's checkpoint (forward passes)."""
        from checkpoint_schedules import Reverse  # noqa: PLC0415

        self._check_open()
        last = self.schedule.segments - 1
        if last == 0:
            return self._segment
        if direction == 1:  # a tangent pass: each segment once, in order
            if self._holds != c:
                if self._work_at != c:
                    self._held.setdefault(0, self._first)
                    self._load(0, release=False)
                    if c:
                        self._advance(0, c, store=False)
                self._advance(c, c + 1, store=True)
            return self._segment
        if direction != -1:
            raise ValueError(f"direction must be -1 or +1, got {direction!r}")
        if c == last:
            if not (self._fresh and self._holds == last):
                self._restart()
            self._fresh = False
        for action in self._actions:
            if isinstance(action, Reverse):
                if (action.n1, action.n0) != (c + 1, c):
                    raise RuntimeError(f"checkpoint schedule out of step: {action} while "
                                       f"segment {c} is read")
                return self._segment
            self._run(action)
        raise RuntimeError(f"checkpoint schedule ended before segment {c}")

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the checkpoints were freed (vjp or close() already ran); run "
                               "the forward again, or call vjp(..., keep=True) to reuse them")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._segment, self._slots, self._work, self._rec = {}, [], None, None
        self._actions = None
        if self._disk is not None:
            self._disk = None
            self._disk_finalizer()
        if self._block is not None:
            self._block = None
            self._give_back()
