"""Sweeps over a run's time steps: the forward run, its transpose, its linearization.

Every operation of a run (the forward, ``vjp``, ``jvp``) is one or more
*sweeps*: passes over all internal steps in one direction that advance one
state with one kind of backend step, fire one kind of per-cell hook and stream
the snapshot chunks one way. A :class:`Sweep` says which; :func:`run_sweep` is
the one time loop that executes any of them (chunked backend calls, callbacks,
progress bar, snapshot chunks attached and handed back). A new operation is a
new entry here and, where it needs one, a new hook of the cell updates
(wavecore/_csrc/wc_hooks.h), not a copy of the loop.

==========  =========  ==============  ================  ==============================
sweep       time       backend step    snapshot chunks   per-cell hooks
==========  =========  ==============  ================  ==============================
forward     forward    forward         written           Store (the gradient's values)
adjoint     backward   adjoint         read, backward    Image (grad += adjoint x snap)
tangent     forward    forward         read, forward     Scatter (+ d coefficient x snap)
==========  =========  ==============  ================  ==============================

The tangent sweep runs the forward step on the *scattered* state with the
background's stored snapshots: each cell adds the secondary source of the
coefficient directions, the exact transpose of the adjoint's image, so that
``<J v, w> = <v, J^T w>`` holds to rounding (DESIGN.md section 12).

:data:`CAPABILITIES` says, per operation, what a run must have for it, in the
user's terms; :func:`check_capable` raises with that sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._stepping import StepChunks, progress_bar

__all__ = ["Sweep", "FORWARD", "ADJOINT", "TANGENT", "run_sweep", "segments",
           "CAPABILITIES", "check_capable"]


@dataclass(frozen=True)
class Sweep:
    """One pass over the time steps (see the module's table)."""

    name: str
    reverse: bool        #: time runs backward (the backend's transposed step)
    snapshots: str       #: "write" (fill the chunks) or "read" (stream them)
    tangent: bool = False  #: the cells add the secondary sources (kernel switch)

    def step(self, backend):
        """The backend call ``(t, n_steps)`` of this sweep."""
        return backend.adjoint if self.reverse else backend.forward


FORWARD = Sweep("forward", reverse=False, snapshots="write")
ADJOINT = Sweep("adjoint", reverse=True, snapshots="read")
TANGENT = Sweep("tangent", reverse=False, snapshots="read", tangent=True)


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


def attach_chunk(b, store, c: int, arrays: dict) -> None:
    """Point the buffers' snapshot arrays at chunk ``c``."""
    for name, array in arrays.items():
        setattr(b, f"snap_{name}", array)
    b.geometry["snap_t0"] = store.chunk_steps(c, 1 << 62)[0]


def detach_snapshots(names, b) -> None:
    for name in names:
        setattr(b, f"snap_{name}", None)


def run_sweep(sweep: Sweep, plan, backend, b, store=None, callback=None, *,
              snapshot_names=(), progress: bool = False, label: str | None = None) -> None:
    """Run ``sweep`` over all internal steps of ``plan`` on the buffers ``b``.

    ``callback(t)`` runs at steps ``t = 0, f, 2f, ...`` (``f`` the plan's
    callback frequency): before step t forward, after the transposed step t
    backward. ``store`` (a :class:`~wavecore.storage.SnapshotStore`) supplies
    the chunks: filled by a writing sweep, streamed (and prefetched in the
    sweep's direction) by a reading one; ``snapshot_names`` are the buffer
    members detached afterwards. The backend runs the steps in calls of about
    0.1 s (wavecore._stepping), so Ctrl-C stops a compiled run quickly;
    ``progress`` draws a tqdm bar.
    """
    bar = progress_bar(progress, plan.nt_internal, f"{plan.kind} {label or sweep.name}")
    chunks = StepChunks(bar, backend.synchronize)
    advance = chunks.reverse if sweep.reverse else chunks.forward
    step = sweep.step(backend)
    ranges = segments(plan, store, callback is not None)
    frequency = plan.callback_frequency
    writes = store is not None and sweep.snapshots == "write"
    current = None
    b.geometry["tangent"] = int(sweep.tangent)
    try:
        for t0, t1 in (reversed(ranges) if sweep.reverse else ranges):
            if callback is not None and not sweep.reverse and t0 % frequency == 0:
                callback(t0)
            if store is not None:
                c = store.chunk_of_step(t0)
                if c != current:
                    arrays = (store.chunk_for_writing(c) if writes else
                              store.chunk_for_reading(c, -1 if sweep.reverse else 1))
                    attach_chunk(b, store, c, arrays)
                    current = c
            advance(step, t0, t1)
            if writes and t1 == store.chunk_steps(current, plan.nt_internal)[1]:
                backend.synchronize()
                store.chunk_written(current)
            if callback is not None and sweep.reverse and t0 % frequency == 0:
                callback(t0)
        backend.synchronize()
    finally:
        b.geometry["tangent"] = 0
        if bar is not None:
            bar.close()
    if writes:
        store.finish_forward()
    if store is not None:
        detach_snapshots(snapshot_names, b)


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


#: operation -> check(result, **details) returning None or why the run cannot do it.
CAPABILITIES = {
    "vjp": lambda result, **_: _needs_gradient(result),
    "jvp": lambda result, directions=(), **_: _jvp_needs(result, directions),
}


def check_capable(operation: str, result, **details) -> None:
    """Raise (before any work) if ``result`` cannot run ``operation``."""
    why = CAPABILITIES[operation](result, **details)
    if why:
        raise RuntimeError(f"{operation} cannot run: {why}")
