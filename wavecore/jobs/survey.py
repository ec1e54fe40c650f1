"""Run a job's shots: serially, on local processes, or on Dask.

Shots are independent, so a batch of shots is one call of ``tm2d`` /
``maxwell3d`` with those shots; every executor gives the serial results bit
for bit. Finished shots go to the output file as they arrive; a failed batch
is retried ``parallel.retries`` times and then reported with its shot ids
(the shots already written stay in the file; a rerun resumes).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import time

import numpy as np

from .. import _maxwell3d, _tm2d
from ..cfl import max_stable_dt
from ..constants import C0
from ..estimates import estimate_memory
from ..inversion.fwi import dispersion_of
from ..wavelets import ricker
from .config import DEFAULT_EXECUTOR, ConfigError, JobConfig, load_config
from ._extras import require_for_job
from ._lifeline import die_with_parent, lifeline, shutdown_on_signals, terminate_pool
from .io import (ShotFile, check_debye_step, data_keys, debye_metadata, load_debye,
                 load_models)

log = logging.getLogger("wavecore.jobs")


def build_shots(cfg: JobConfig, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Source ``[S, 1, ndim]`` and receiver ``[S, R, ndim]`` cells of the line."""
    a = cfg.acquisition
    first = np.array(a["first_source"])
    step = np.array(a.get("step", [0] * cfg.ndim))
    offsets = np.array(a["receiver_offsets"])
    src = first + np.arange(a["shots"])[:, None] * step
    rec = src[:, None, :] + offsets[None]
    for name, cells in (("sources", src.reshape(-1, cfg.ndim)),
                        ("receivers", rec.reshape(-1, cfg.ndim))):
        bad = (cells < 0) | (cells >= np.array(shape))
        if bad.any():
            cell = cells[bad.any(axis=1)][0].tolist()
            raise ConfigError(f"{cfg.path}: [acquisition] {name} leave the model "
                              f"{tuple(shape)}: cell {cell}")
    return src[:, None, :], rec


def job_payload(cfg: JobConfig) -> dict:
    """Everything a worker needs to run any batch of the job's shots.

    With ``[model.debye]``, ``delta_epsilon`` and ``tau`` are ``[n_poles,
    *model_shape]`` arrays (None without poles) and ``epsilon`` is eps_inf;
    every array is in one float dtype."""
    eps, sig, mu, spacing = load_models(cfg)
    poles = load_debye(cfg, eps.shape, eps.dtype)
    if poles is not None:
        dtype = np.result_type(eps, *poles)
        eps, sig, mu = (np.ascontiguousarray(a, dtype) for a in (eps, sig, mu))
        poles = tuple(np.ascontiguousarray(a, dtype) for a in poles)
    s = cfg.solver
    stencil = s.get("stencil", 4)
    w = cfg.wavelet
    v_max = C0 / np.sqrt(float((eps * mu).min()))  # eps_inf: the fastest speed
    dt = w.get("dt") or 0.9 * max_stable_dt(spacing, v_max, stencil)
    if poles is not None:
        check_debye_step(cfg, poles[1], spacing, dt, v_max, stencil)
    amplitude = ricker(w["frequency"], w["nt"], dt) * w.get("amplitude", 1.0)
    src, rec = build_shots(cfg, eps.shape)
    options = dict(stencil=stencil, pml_width=s.get("pml_width", 20),
                   device=s.get("device", "cpu"))
    if options["device"] == "cpu":
        options["n_threads"] = s.get("n_threads", 1)
    if cfg.ndim == 3:
        options.update(source_component=s.get("source_component", "ey"),
                       receiver_component=s.get("receiver_component", "ey"))
    de, tau = poles if poles is not None else (None, None)
    return dict(system=s.get("system", "tm2d"), epsilon=eps, sigma=sig, mu=mu,
                delta_epsilon=de, tau=tau,
                spacing=spacing, dt=float(dt), amplitude=amplitude.astype(eps.dtype),
                sources=src, receivers=rec, options=options)


def forward_batch(payload: dict, shots: list) -> np.ndarray:
    """Receiver data ``[len(shots), ...]`` of some shots of the job."""
    fn = _tm2d.tm2d if payload["system"] == "tm2d" else _maxwell3d.maxwell3d
    n = len(shots)
    amp = np.broadcast_to(payload["amplitude"], (n, 1, payload["amplitude"].size)).copy()
    return fn(payload["epsilon"], payload["sigma"], payload["mu"], payload["spacing"],
              payload["dt"], amp, payload["sources"][shots], payload["receivers"][shots],
              dispersion=dispersion_of(payload), **payload["options"]).receiver_data


_WORKER_PAYLOAD = None


def _init_worker(payload):
    global _WORKER_PAYLOAD
    die_with_parent()
    _WORKER_PAYLOAD = payload


def _worker_batch(shots):
    return forward_batch(_WORKER_PAYLOAD, shots)


class _Runner:
    """Submit batches to an executor; yield (shots, data) as they finish,
    retrying failed batches."""

    def __init__(self, submit, retries: int):
        self.submit, self.retries = submit, retries

    def run(self, batches):
        pending = {self.submit(b): (b, 0) for b in batches}
        failed = []
        while pending:
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for future in done:
                batch, tries = pending.pop(future)
                try:
                    data = future.result()
                except Exception as exc:  # noqa: BLE001 - retried, then reported
                    if tries < self.retries:
                        log.warning("shots %s failed (%s); retrying", batch, exc)
                        pending[self.submit(batch)] = (batch, tries + 1)
                    else:  # the other batches still finish and are kept
                        failed.append((batch, tries + 1, exc))
                    continue
                yield batch, data
        if failed:
            listing = "; ".join(f"shots {b} failed after {n} attempt(s): {e!r}"
                                for b, n, e in failed)
            raise RuntimeError(f"{listing}. The finished shots are in the output file and a "
                               "rerun resumes") from failed[0][2]


def process_pool(workers: int, initializer=die_with_parent, initargs=()):
    """A spawn ProcessPoolExecutor whose workers die with this process, and its
    closer: ``close()`` waits for the running tasks, ``close(kill=True)``
    (an error, a signal) terminates them."""
    # spawn: a forked child of a process that ran OpenMP threads may hang.
    pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=initializer, initargs=initargs)

    def close(kill=False):
        terminate_pool(pool) if kill else pool.shutdown()
    return pool, close


def mpi_pool(workers):
    from mpi4py.futures import MPIPoolExecutor  # noqa: PLC0415 - where MPI is used

    pool = MPIPoolExecutor(max_workers=workers, initializer=die_with_parent,
                           initargs=lifeline())

    def close(kill=False):
        pool.shutdown(wait=not kill, cancel_futures=kill)
    return pool, close


def dask_client(par: dict, workers: int):
    """(client, closer) of the job's scheduler, or of a LocalCluster whose
    worker processes die with this process."""
    from distributed import Client, LocalCluster  # noqa: PLC0415 - optional: wavecore[hpc]

    if par.get("scheduler"):  # someone else's cluster: its workers are not ours to end
        client, cluster = Client(par["scheduler"]), None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        from ._dask_plugin import install  # noqa: PLC0415

        install(client)

    def close(kill=False):  # noqa: ARG001 - closing the cluster ends its workers
        client.close()
        if cluster is not None:
            cluster.close()
    return client, close


def _executor(cfg: JobConfig, payload: dict, executor):
    """(submit function, closer) for the job's executor."""
    par = cfg.parallel
    kind = par.get("executor", DEFAULT_EXECUTOR)
    if executor is not None:  # any concurrent.futures.Executor from the caller
        return (lambda b: executor.submit(forward_batch, payload, b)), (lambda kill=False: None)
    if kind == "serial":
        pool = cf.ThreadPoolExecutor(1)  # one at a time, in this process

        def close(kill=False):
            pool.shutdown(wait=not kill, cancel_futures=kill)
        return (lambda b: pool.submit(forward_batch, payload, b)), close
    workers = par.get("workers", os.cpu_count() or 1)
    if kind == "mpi":
        pool, close = mpi_pool(par.get("workers"))
        return (lambda b: pool.submit(forward_batch, payload, b)), close
    if kind == "processes":
        pool, close = process_pool(workers, _init_worker, (payload,))
        return (lambda b: pool.submit(_worker_batch, b)), close
    client, close = dask_client(par, workers)
    scattered = client.scatter(payload, broadcast=True)  # the model goes once per worker
    executor = client.get_executor(pure=False)  # concurrent.futures interface
    return (lambda b: executor.submit(forward_batch, scattered, b)), close


def run_forward_job(config, *, quiet: bool = True, dry_run: bool = False,
                    executor=None) -> dict:
    """Run (or with ``dry_run`` only plan) the forward job of a configuration file.

    Returns a summary: shots, shots run now, skipped (already in the file),
    seconds, output path (and the plan with ``dry_run``).
    """
    cfg = config if isinstance(config, JobConfig) else load_config(config)
    require_for_job(cfg, own_executor=executor is None)  # h5py, dask, mpi4py: before any work
    payload = job_payload(cfg)
    n = len(payload["sources"])
    per_task = cfg.parallel.get("shots_per_task", 1)
    if dry_run:
        return _plan(cfg, payload, per_task)
    probe = forward_batch({**payload, "amplitude": payload["amplitude"][:2]}, [0])
    shot_shape = (*probe.shape[1:-1], payload["amplitude"].size)
    meta = dict(system=payload["system"], dt=payload["dt"], spacing=payload["spacing"],
                stencil=payload["options"]["stencil"], nt=payload["amplitude"].size,
                options={k: v for k, v in payload["options"].items()})
    arrays = {}
    if payload.get("tau") is not None:  # the poles as used: the result is reproducible
        meta["dispersion"] = debye_metadata(cfg, payload)
        arrays = {"debye/delta_epsilon": payload["delta_epsilon"], "debye/tau": payload["tau"]}
    out = ShotFile(cfg.resolve(cfg.output["path"]), cfg, shot_shape, payload["epsilon"].dtype,
                   meta, payload["sources"], payload["receivers"], data_keys(cfg, payload),
                   arrays=arrays)
    start = time.perf_counter()
    try:
        finished = out.finished()
        todo = [s for s in range(n) if s not in finished]
        batches = [todo[i:i + per_task] for i in range(0, len(todo), per_task)]
        with shutdown_on_signals():
            submit, close = _executor(cfg, payload, executor)
            progress = progress_bar(len(todo), quiet, "shot")
            log.info("forward %s: %d shots to run, %d already in %s", cfg.path, len(todo),
                     len(finished), out.path)
            try:
                for batch, data in _Runner(submit, cfg.parallel.get("retries", 1)).run(batches):
                    for shot, trace in zip(batch, data):
                        out.write(shot, trace)
                    progress.update(len(batch))
            except BaseException:  # a failure, Ctrl-C, SIGTERM: end the workers now
                progress.close()
                close(kill=True)
                raise
            progress.close()
            close()
    finally:
        out.close()
    return dict(shots=n, run=len(todo), skipped=len(finished),
                seconds=time.perf_counter() - start, output=str(out.path))


def step_progress(total_steps: int, *, quiet: bool = False, desc: str = "steps"):
    """A forward (or backward) callback that drives a progress bar over time
    steps, and the bar: ``cb, bar = step_progress(res_nt)``; pass
    ``forward_callback=cb`` (with any ``callback_frequency``), ``bar.close()`` after."""
    bar = progress_bar(total_steps, quiet, "step")
    seen = {"step": 0}

    def callback(state):
        step = state.nt - state.step if state.is_backward else state.step
        bar.update(max(step - seen["step"], 0))
        seen["step"] = step

    return callback, bar


def progress_bar(total: int, quiet: bool, unit: str = "step"):
    try:
        from tqdm import tqdm  # noqa: PLC0415 - optional
    except ImportError:
        tqdm = None
    if quiet or tqdm is None:
        class _Silent:
            def update(self, k):
                pass

            def close(self):
                pass
        return _Silent()
    return tqdm(total=total, unit=unit, desc=f"{unit}s")


def _plan(cfg: JobConfig, payload: dict, per_task: int) -> dict:
    """Cells, steps, memory per task and an estimated time from a short run."""
    system = payload["system"]
    nt = payload["amplitude"].size
    calib_nt = min(nt, 20)
    batch = list(range(min(per_task, len(payload["sources"]))))
    short = {**payload, "amplitude": payload["amplitude"][:calib_nt]}
    forward_batch(short, batch)  # warm-up
    t = time.perf_counter()
    forward_batch(short, batch)
    per_step = (time.perf_counter() - t) / calib_nt
    estimate = dict(system=system, stencil=payload["options"]["stencil"],
                    pml_width=payload["options"]["pml_width"])
    memory, poles = plan_memory(payload, batch, nt, estimate)
    tasks = -(-len(payload["sources"]) // per_task)
    workers = 1 if cfg.parallel.get("executor", DEFAULT_EXECUTOR) == "serial" else \
        cfg.parallel.get("workers", os.cpu_count() or 1)
    return dict(system=system, model_cells=int(np.prod(payload["epsilon"].shape)),
                shots=len(payload["sources"]), steps=nt, tasks=tasks,
                memory_per_task=memory.peak, snapshot_bytes=0,
                seconds_per_task=per_step * nt,
                estimated_seconds=per_step * nt * -(-tasks // workers),
                output=str(cfg.resolve(cfg.output["path"])), **poles)


def plan_memory(payload: dict, shots, nt: int, options: dict) -> tuple:
    """The memory estimate of a task of ``shots`` (``options``: the estimate's
    keywords), and with poles the plan's ``poles`` entries: ``n_poles``,
    ``pole_bytes`` (what the poles add: their coefficients, models, state,
    snapshots and adjoint, the estimate with poles less the one without) and
    ``pole_ranges`` (min and max of delta_epsilon and tau)."""
    args = (payload["epsilon"], payload["sigma"], payload["mu"], payload["spacing"],
            payload["dt"], np.zeros((len(shots), 1, nt), payload["epsilon"].dtype),
            payload["sources"][shots], payload["receivers"][shots])
    dispersion = dispersion_of(payload)
    memory = estimate_memory(*args, dispersion=dispersion, **options)
    if dispersion is None:
        return memory, {}
    plain = {**options}
    if "requires_grad" in plain:  # the pole parameters are no targets without poles
        plain["requires_grad"] = tuple(p for p in plain["requires_grad"]
                                       if p not in ("delta_epsilon", "tau"))
    without = estimate_memory(*args, **plain)
    de, tau = payload["delta_epsilon"], payload["tau"]
    return memory, dict(n_poles=int(tau.shape[0]), pole_bytes=memory.peak - without.peak,
                        pole_ranges={"delta_epsilon": [float(de.min()), float(de.max())],
                                     "tau": [float(tau.min()), float(tau.max())]})
