"""Sweeps over a run's time steps: the forward run, its transpose, its linearization.

Every operation of a run (the forward, ``vjp``, ``jvp``) is one or more
*sweeps*: passes over all internal steps in one direction that advance one
state with one kind of backend step, fire one kind of per-cell hook and stream
the snapshot chunks one way. A :class:`Sweep` says which; :func:`run_sweep` is
the one time loop that executes any of them (chunked backend calls, callbacks,
progress bar, snapshot chunks attached and handed back). A new operation is a
new entry here and, where it needs one, a new hook of the cell updates
(wavecore/_csrc/wc_hooks.h), not a copy of the loop.

==============  =========  ============  ===============  ==================================
sweep           time       backend step  snapshot chunks  per-cell hooks
==============  =========  ============  ===============  ==================================
forward         forward    forward       written          Store (the gradient's values)
adjoint         backward   adjoint       read, backward   Image (grad += adjoint x snap)
tangent         forward    forward       read, forward    Scatter (+ d coefficient x snap)
adjoint-keep    backward   adjoint       read, backward   Image, keeping the adjoint values
tangent-image   forward    forward       read, forward    Scatter, imaging against the kept
second-adjoint  backward   adjoint       read, backward   AdjointScatter (+ d coef. x kept)
==============  =========  ============  ===============  ==================================

The tangent sweep runs the forward step on the *scattered* state with the
background's stored snapshots: each cell adds the secondary source of the
coefficient directions, the exact transpose of the adjoint's image, so that
``<J v, w> = <v, J^T w>`` holds to rounding (DESIGN.md section 12).

``second_vjp(v, c)``, the gradient of ``<c, J(m) v>``, is three sweeps over the
forward's snapshots (wavecore._gradient): the adjoint of ``c`` keeping the
adjoint values it images (a second store of the snapshots' layout, written
backward); the tangent along ``v`` imaging its scattered state against them
(the gradient through the operator acting on the scattered field); and the
adjoint of the background driven by the transpose of the tangent's secondary
sources, the kept values times the directions (the gradient through the
background field). The coefficients' second derivatives along ``v`` act on
the first sweep's coefficient gradients (``Material.chain_rule_tangent``).

:data:`CAPABILITIES` says, per operation, what a run must have for it, in the
user's terms; :func:`check_capable` raises with that sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._stepping import StepChunks, progress_bar

__all__ = ["Sweep", "FORWARD", "ADJOINT", "TANGENT", "ADJOINT_KEEP", "TANGENT_IMAGE",
           "SECOND_ADJOINT", "run_sweep", "segments", "CAPABILITIES", "check_capable"]


@dataclass(frozen=True)
class Sweep:
    """One pass over the time steps (see the module's table)."""

    name: str
    reverse: bool        #: time runs backward (the backend's transposed step)
    snapshots: str       #: "write" (fill the chunks) or "read" (stream them)
    tangent: bool = False  #: the cells add the secondary sources (kernel switch)
    kept: str = ""       #: the kept adjoint values (second order): "write", "read" or ""

    def step(self, backend):
        """The backend call ``(t, n_steps)`` of this sweep."""
        return backend.adjoint if self.reverse else backend.forward


FORWARD = Sweep("forward", reverse=False, snapshots="write")
ADJOINT = Sweep("adjoint", reverse=True, snapshots="read")
TANGENT = Sweep("tangent", reverse=False, snapshots="read", tangent=True)
ADJOINT_KEEP = Sweep("adjoint-keep", reverse=True, snapshots="read", kept="write")
TANGENT_IMAGE = Sweep("tangent-image", reverse=False, snapshots="read", tangent=True,
                      kept="read")
SECOND_ADJOINT = Sweep("second-adjoint", reverse=True, snapshots="read", tangent=True,
                       kept="read")


def segments(plan, store, with_callbacks: bool) -> list[tuple[int, int]]:
    """Step ranges ``[t0, t1)`` between callbacks and snapshot-chunk boundaries."""
    total = plan.nt_internal
    cuts = {0, total}
    if with_callbacks:
        cuts.update(range(0, total, plan.callback_frequency))
    if store is not None:
        cuts.update(store.chunk_steps(c, total)[0] for c in range(store.plan.n_chunks))
    cuts = sorted(cuts)
    return list(zip(cuts[:-1], cuts[1:]))


def attach_chunk(b, store, c: int, arrays: dict, prefix: str = "snap_") -> None:
    """Point the buffers' snapshot arrays (``<prefix><name>``) at chunk ``c``."""
    for name, array in arrays.items():
        setattr(b, f"{prefix}{name}", array)
    b.geometry["snap_t0"] = store.chunk_steps(c, 1 << 62)[0]


def detach_snapshots(names, b, prefix: str = "snap_") -> None:
    for name in names:
        setattr(b, f"{prefix}{name}", None)


class _Stream:
    """One store's chunks during a sweep: attached as they change, written ones
    handed back when complete (forward: at their last step; backward: at their
    first). A store may decline to keep a chunk it is asked to write (a
    checkpointing store, wavecore.checkpointing, keeps only some): its steps
    then run without storing (``snap_interval`` 0), as a plain forward."""

    def __init__(self, store, prefix: str, writes: bool, names, reverse: bool):
        self.store, self.prefix, self.writes, self.names = store, prefix, writes, names
        self.direction = -1 if reverse else 1
        self.current = None
        self.interval = None  # the geometry's snap_interval while a chunk is declined

    def attach(self, b, t0: int) -> None:
        c = self.store.chunk_of_step(t0)
        if c != self.current:
            arrays = (self.store.chunk_for_writing(c, self.direction) if self.writes else
                      self.store.chunk_for_reading(c, self.direction))
            if arrays is None:  # declined: nothing is stored over this chunk
                detach_snapshots(self.names, b, self.prefix)
                if self.interval is None:
                    self.interval = b.geometry["snap_interval"]
                b.geometry["snap_interval"] = 0
            else:
                self.restore(b)
                attach_chunk(b, self.store, c, arrays, self.prefix)
            self.current = c

    def restore(self, b) -> None:
        if self.interval is not None:
            b.geometry["snap_interval"], self.interval = self.interval, None

    def after(self, backend, t0: int, t1: int, nt: int) -> None:
        if not self.writes:
            return
        first, last = self.store.chunk_steps(self.current, nt)
        if (t1 == last) if self.direction > 0 else (t0 == first):
            backend.synchronize()
            self.store.chunk_written(self.current)


def run_sweep(sweep: Sweep, plan, backend, b, store=None, callback=None, *,
              snapshot_names=(), progress: bool = False, label: str | None = None,
              kept=None) -> None:
    """Run ``sweep`` over all internal steps of ``plan`` on the buffers ``b``.

    ``callback(t)`` runs at steps ``t = 0, f, 2f, ...`` (``f`` the plan's
    callback frequency): before step t forward, after the transposed step t
    backward. ``store`` (a :class:`~wavecore.storage.SnapshotStore`) supplies
    the chunks: filled by a writing sweep, streamed (and prefetched in the
    sweep's direction) by a reading one; ``snapshot_names`` are the buffer
    members detached afterwards. ``kept`` is the store of the kept adjoint
    values (second order; buffers ``adj_<name>``, chunked like ``store``),
    written or read as ``sweep.kept`` says. The backend runs the steps in calls
    of about 0.1 s (wavecore._stepping), so Ctrl-C stops a compiled run quickly;
    ``progress`` draws a tqdm bar.
    """
    bar = progress_bar(progress, plan.nt_internal, f"{plan.kind} {label or sweep.name}")
    chunks = StepChunks(bar, backend.synchronize)
    advance = chunks.reverse if sweep.reverse else chunks.forward
    step = sweep.step(backend)
    ranges = segments(plan, store, callback is not None)
    frequency = plan.callback_frequency
    streams = []
    if store is not None:
        streams.append(_Stream(store, "snap_", sweep.snapshots == "write", snapshot_names,
                               sweep.reverse))
    if sweep.kept and kept is None:
        raise ValueError(f"the {sweep.name} sweep needs the store of the kept adjoint values")
    if kept is not None:
        if store is None or kept.plan.chunk != store.plan.chunk:
            raise ValueError("the kept adjoint values must be chunked like the snapshots")
        streams.append(_Stream(kept, "adj_", sweep.kept == "write", kept.plan.names,
                               sweep.reverse))
    b.geometry["tangent"] = int(sweep.tangent)
    try:
        for t0, t1 in (reversed(ranges) if sweep.reverse else ranges):
            if callback is not None and not sweep.reverse and t0 % frequency == 0:
                callback(t0)
            for stream in streams:
                stream.attach(b, t0)
            advance(step, t0, t1)
            for stream in streams:
                stream.after(backend, t0, t1, plan.nt_internal)
            if callback is not None and sweep.reverse and t0 % frequency == 0:
                callback(t0)
        backend.synchronize()
    finally:
        b.geometry["tangent"] = 0
        for stream in streams:
            stream.restore(b)
        if bar is not None:
            bar.close()
    for stream in streams:
        if stream.writes:
            stream.store.finish_forward()
        detach_snapshots(stream.names, b, stream.prefix)


# -- what each operation needs ----------------------------------------------------

def _needs_gradient(result) -> str | None:
    if result.gradient is None:
        return ("this run kept nothing for derivatives: pass requires_grad=... (e.g. "
                "('epsilon', 'sigma')) to the run")
    return None


def _jvp_needs(result, directions=()) -> str | None:
    why = _needs_gradient(result)
    if why:
        return why
    targets = result.plan.targets
    known = {*result.gradient.physics.material.gradient_targets, "source_amplitude"}
    missing = sorted((set(directions) & known) - set(targets))  # unknown names: jvp says
    if missing:
        return (f"jvp along {missing} needs them in the run's requires_grad (the run stores "
                f"the background snapshots of the requested inputs only; it has "
                f"{sorted(targets)})")
    return None


def _second_vjp_needs(result, directions=()) -> str | None:
    why = _jvp_needs(result, directions)
    if why:
        return why.replace("jvp along", "second_vjp along")
    if result.gradient.store is None:
        return ("the run stored no snapshots: with only 'source_amplitude' in requires_grad "
                "the data are linear in it and the second derivative is zero")
    return None


#: operation -> check(result, **details) returning None or why the run cannot do it.
CAPABILITIES = {
    "vjp": lambda result, **_: _needs_gradient(result),
    "jvp": lambda result, directions=(), **_: _jvp_needs(result, directions),
    "second_vjp": lambda result, directions=(), **_: _second_vjp_needs(result, directions),
}


def check_capable(operation: str, result, **details) -> None:
    """Raise (before any work) if ``result`` cannot run ``operation``."""
    why = CAPABILITIES[operation](result, **details)
    if why:
        raise RuntimeError(f"{operation} cannot run: {why}")
