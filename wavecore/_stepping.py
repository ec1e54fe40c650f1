"""The time loop's calls into a backend: bounded chunks of steps, a progress bar.

A compiled backend (the OpenMP core) runs a range of steps in one call without
the GIL and without looking at signals. The driver therefore never hands it
more than about :data:`CHUNK_SECONDS` of work at once: the steps of a range are
split into calls whose length adapts to the measured time per step, and between
two calls the interpreter runs, so Ctrl-C (SIGINT's KeyboardInterrupt) and any
other Python signal handler act within about one chunk, and a progress bar
advances. The steps computed are the same whatever the split (each step is
computed from the state the previous one left), so results are bit for bit the
same as one call over the whole range.
"""

from __future__ import annotations

import importlib
import time

__all__ = ["CHUNK_SECONDS", "StepChunks", "check_progress", "progress_bar"]

#: Target duration of one backend call, seconds. None: one call per range.
CHUNK_SECONDS: float | None = 0.1

#: Growth limit of the chunk length from one call to the next (the first steps
#: of a run touch fresh memory and are slower than the steady ones).
GROWTH = 4


class StepChunks:
    """Runs step ranges as backend calls of about :data:`CHUNK_SECONDS` each.

    One instance serves a whole forward or reverse pass, so the chunk length
    learned on one range carries over to the next.
    """

    def __init__(self, bar=None, synchronize=None):
        self.steps = 1
        self.bar = bar
        self.synchronize = synchronize  # called before the bar advances (async devices)

    def forward(self, call, t0: int, t1: int) -> None:
        """``call(t, n)`` for consecutive ``[t, t + n)`` covering ``[t0, t1)``."""
        t = t0
        while t < t1:
            t += self._one(call, t, t1 - t)

    def reverse(self, call, t0: int, t1: int) -> None:
        """``call(t_end, n)`` for consecutive ``[t_end - n, t_end)`` covering ``[t0, t1)``
        from the top (the adjoint runs steps ``t_end - 1`` down to ``t_end - n``)."""
        t = t1
        while t > t0:
            t -= self._one(call, t, t - t0)

    def _one(self, call, start: int, left: int) -> int:
        target = CHUNK_SECONDS
        n = left if target is None else min(self.steps, left)
        began = time.perf_counter()
        call(start, n)
        elapsed = time.perf_counter() - began
        if target is not None:
            per_step = elapsed / n
            wanted = int(target / per_step) if per_step > 0 else GROWTH * n
            self.steps = max(1, min(wanted, GROWTH * max(n, self.steps)))
        if self.bar is not None:
            if self.synchronize is not None:
                self.synchronize()
            self.bar.update(n)
        return n


def check_progress(progress) -> bool:
    """Validate ``progress`` (a bool); True needs tqdm, checked before any work."""
    from . import _checks as checks  # noqa: PLC0415

    progress = checks.boolean(progress, "progress")
    if progress:
        try:
            importlib.import_module("tqdm")  # optional
        except ImportError:
            raise ImportError("progress=True draws a tqdm progress bar, and tqdm is not "
                              "installed: pip install tqdm (or wavecore[hpc]), or pass "
                              "progress=False") from None
    return progress


def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar over ``total`` internal steps, or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415 - optional, checked by check_progress

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)
