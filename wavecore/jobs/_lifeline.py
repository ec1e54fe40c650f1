"""Workers that die with their parent, and a parent that shuts its workers
down on SIGTERM / SIGHUP.

A worker process of a job (local processes, a Dask LocalCluster, MPI on the
same host) calls :func:`die_with_parent` when it starts. On Linux the kernel
then kills it the moment its parent dies, SIGKILL included
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``); everywhere a daemon thread also polls
the parent's pid and ends the worker when the parent is gone (the portable
fallback, and the only guard for MPI workers, whose parent is the MPI launcher).

:func:`shutdown_on_signals` turns SIGTERM and SIGHUP (what SLURM and a closed
terminal send) into ``SystemExit(128 + signum)`` in the job's main thread, so
its ``finally`` blocks run and terminate the pool before the process exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5


def _pdeathsig() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(pid: int, direct: bool) -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if (direct and os.getppid() != pid) or not _alive(pid):
            os._exit(1)  # no cleanup to wait for: the job that wanted the result is gone


def die_with_parent(parent_pid: int | None = None, host: str | None = None) -> None:
    """Make this (worker) process end when ``parent_pid`` ends.

    Without arguments the parent is this process's parent (a worker spawned by
    the job's process). With ``parent_pid`` (and ``host``) the job's process is
    some other process on this host (MPI workers); on another host nothing is
    watched.
    """
    if host is not None and host != socket.gethostname():
        return
    direct = parent_pid is None or parent_pid == os.getppid()
    pid = os.getppid() if parent_pid is None else parent_pid
    if direct:
        _pdeathsig()
        if os.getppid() != pid:  # the parent died before prctl took effect
            os._exit(1)
    if not _alive(pid):
        os._exit(1)
    threading.Thread(target=_watch, args=(pid, direct), daemon=True,
                     name="wavecore-parent-watch").start()


def lifeline() -> tuple:
    """(pid, host) of this process, for :func:`die_with_parent` in remote-ish workers."""
    return os.getpid(), socket.gethostname()


@contextlib.contextmanager
def shutdown_on_signals(signals=("SIGTERM", "SIGHUP")):
    """Within the block, the given signals raise ``SystemExit(128 + signum)``
    in the main thread (after calling any Python handler installed before),
    so the job's ``finally`` blocks close its pool. Outside the main thread,
    nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):
        old = previous.get(signum)
        if callable(old):
            old(signum, frame)
        raise SystemExit(128 + signum)

    for name in signals:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        previous[sig] = signal.getsignal(sig)
        if previous[sig] == signal.SIG_IGN:  # e.g. nohup: leave it ignored
            continue
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def terminate_pool(pool) -> None:
    """Stop a ProcessPoolExecutor now: cancel the queued tasks and terminate
    its processes (a normal shutdown would wait for the running tasks)."""
    processes = list(getattr(pool, "_processes", {}).values() or [])
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(5)
