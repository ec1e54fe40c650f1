"""``wavecore fwi CONFIG``: invert the data of a ``wavecore forward`` job.

The configuration is a forward job's file in which ``[model]`` is the
starting model and ``[inversion]`` says what to invert::

    [inversion]
    observed = "survey.h5"         # the output of `wavecore forward`
    parameters = ["epsilon"]
    method = "lbfgs"               # "lbfgs", "sd", "nlcg", "gauss-newton", "truncated-newton"
    cg_iterations = 10             # inner CG iterations of a (Gauss-/truncated) Newton step
    iterations = 20                # per frequency stage
    misfit = "l2"                  # "l2", "ncc" or "huber"
    frequencies = [2e8]            # low-pass stages (Hz), then the full band
    bounds = {epsilon = [1, 25]}
    fixed_rows = 3                 # rows from the top kept as given (the air)
    checkpoint_dir = "fwi_checkpoints"
    storage_mode = "auto"          # snapshots of the gradient runs, as in tm2d
    storage_compression = "bf16"   # ("none" by default; bf16 needs float32 models)
    sampling_interval = 2

With ``[model.debye]`` (the starting poles; ``epsilon`` is then eps_inf) the
parameters may include ``delta_epsilon`` and ``tau``, bounded by
``bounds = {delta_epsilon = [0, 30], tau = [1e-10, 1e-8]}`` (``tau`` in
seconds, above the time step, inverted in log space).

``[output] path`` receives an .npz with the inverted model (and poles) and the
misfit history; ``[parallel]`` spreads the shots of every gradient over workers.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..inversion import Bounds, invert
from ..inversion.fwi import dispersion_of, shot_gradients
from .config import DEFAULT_EXECUTOR, MODEL_PARAMETERS, ConfigError, JobConfig, load_config
from .io import read_shots
from ._extras import require_for_job
from ._lifeline import shutdown_on_signals
from .survey import (dask_client, forward_batch, job_payload, mpi_pool, plan_memory,
                     process_pool, progress_bar)

log = logging.getLogger("wavecore.jobs")


def _executor(cfg: JobConfig):
    """(executor or None, closer) for the gradient shots; the workers of local
    processes, a LocalCluster or MPI die with this process."""
    par = cfg.parallel
    # Newton methods' inner products reuse one forward run in this process.
    serial = cfg.inversion.get("method") in ("gauss-newton", "truncated-newton")
    kind = par.get("executor", "serial" if serial else DEFAULT_EXECUTOR)
    if kind == "serial":
        return None, (lambda kill=False: None)
    workers = par.get("workers", os.cpu_count() or 1)
    if kind == "mpi":
        return mpi_pool(par.get("workers"))
    if kind == "processes":
        return process_pool(workers)
    client, close = dask_client(par, workers)
    return client.get_executor(pure=False), close


def _storage(inv: dict) -> dict:
    return dict(storage_mode=inv.get("storage_mode", "auto"),
                storage_compression=inv.get("storage_compression", "none"),
                model_gradient_sampling_interval=inv.get("sampling_interval", 1))


def plan_fwi_job(cfg: JobConfig, payload: dict) -> dict:
    """Memory and snapshot bytes of one gradient task, and the time of an
    iteration estimated from a 20-step gradient run of one task."""
    inv = cfg.inversion
    per_task = cfg.parallel.get("shots_per_task", 1)
    shots = np.arange(min(per_task, len(payload["sources"])))
    nt = payload["amplitude"].size
    params = _parameters(inv)
    spec = dict(system=payload["system"], spacing=payload["spacing"], dt=payload["dt"],
                amplitude=np.repeat(payload["amplitude"][None, None, :20], len(shots), 0),
                sources=payload["sources"], receivers=payload["receivers"],
                observed=np.zeros((len(payload["sources"]), 1, 1)), parameters=params,
                misfit="l2", options={**payload["options"], **_storage(inv)})
    probe = forward_batch({**payload, "amplitude": payload["amplitude"][:20]}, list(shots))
    spec["observed"] = np.zeros((len(payload["sources"]), *probe.shape[1:]), probe.dtype)
    shot_gradients(spec, payload, shots)  # warm-up
    start = time.perf_counter()
    shot_gradients(spec, payload, shots)
    per_step = (time.perf_counter() - start) / min(nt, 20)
    memory, poles = plan_memory(payload, shots, nt, dict(
        system=payload["system"], requires_grad=params, stencil=payload["options"]["stencil"],
        pml_width=payload["options"]["pml_width"], **_storage(inv)))
    tasks = -(-len(payload["sources"]) // per_task)
    workers = 1 if cfg.parallel.get("executor", DEFAULT_EXECUTOR) == "serial" else \
        cfg.parallel.get("workers", os.cpu_count() or 1)
    per_iteration = per_step * nt * -(-tasks // workers)
    stages = len(inv.get("frequencies", [])) + 1
    return dict(system=payload["system"], model_cells=int(np.prod(payload["epsilon"].shape)),
                shots=len(payload["sources"]), steps=nt, tasks=tasks,
                memory_per_task=memory.peak, snapshot_bytes=memory.snapshots,
                seconds_per_task=per_step * nt, seconds_per_iteration=per_iteration,
                estimated_seconds=per_iteration * stages * inv.get("iterations", 10),
                output=str(cfg.resolve(cfg.output["path"])), **poles)


def _parameters(inv: dict) -> tuple:
    return tuple(inv.get("parameters", MODEL_PARAMETERS))


def _bounds(cfg: JobConfig, payload: dict) -> Bounds:
    """The [inversion] bounds, checked against the time step and the starting
    model (which must lie inside them) before any gradient runs."""
    inv = cfg.inversion
    bounds = Bounds(**{k: tuple(v) for k, v in inv.get("bounds", {}).items()})
    for name in _parameters(inv):
        key = f"{cfg.path}: [inversion.bounds.{name}]"
        try:
            lo, hi = bounds.of(name, payload["dt"])
        except ValueError as exc:
            raise ConfigError(f"{key} {exc}") from None
        start = payload[name]
        if (start < lo).any() or (start > hi).any():
            raise ConfigError(f"{key} the starting {name} ([model], {float(start.min()):.4g} "
                              f"to {float(start.max()):.4g}) lies outside the bounds "
                              f"{[lo, hi]}; widen them or change the starting model")
    return bounds


def run_fwi_job(config, *, quiet: bool = True, dry_run: bool = False) -> dict:
    """Run (or with ``dry_run`` only plan) the inversion of a configuration;
    return a summary (misfits and output, or the plan)."""
    cfg = config if isinstance(config, JobConfig) else load_config(config)
    if not cfg.inversion:
        raise ConfigError(f"{cfg.path}: [inversion] is required for `wavecore fwi`")
    require_for_job(cfg)  # h5py (the observed data), scipy, distributed/mpi4py
    inv = cfg.inversion
    payload = job_payload(cfg)
    _bounds(cfg, payload)
    if dry_run:
        return plan_fwi_job(cfg, payload)
    observed_file = read_shots(cfg.resolve(inv["observed"]))
    if not observed_file["done"].all():
        raise ConfigError(f"{cfg.path}: [inversion.observed] the forward job is unfinished "
                          f"({int((~observed_file['done']).sum())} shots missing); rerun it")
    observed = observed_file["receiver_data"]
    n = len(payload["sources"])
    amplitude = np.repeat(payload["amplitude"][None, None], n, 0)
    if observed.shape[0] != n or observed.shape[-1] != amplitude.shape[-1]:
        raise ConfigError(f"{cfg.path}: [inversion.observed] holds data {observed.shape}, "
                          f"but the job has {n} shots of {amplitude.shape[-1]} samples")
    with shutdown_on_signals():  # SIGTERM/SIGHUP: end the workers, then exit
        result = _invert(cfg, payload, observed, amplitude, quiet, n)
    out = cfg.resolve(cfg.output["path"])
    history = result.history
    poles = {} if result.tau is None else dict(
        delta_epsilon=result.delta_epsilon, tau=result.tau,
        start_delta_epsilon=payload["delta_epsilon"], start_tau=payload["tau"])
    np.savez(out, inverted=result.epsilon, epsilon=result.epsilon, sigma=result.sigma,
             start=payload["epsilon"], misfit=np.array([h["misfit"] for h in history]),
             stage=np.array([h["stage"] for h in history]), **poles)
    return dict(iterations=len(history), misfit_first=history[0]["misfit"],
                misfit_last=history[-1]["misfit"], output=str(out))


def _invert(cfg, payload, observed, amplitude, quiet, n):
    inv = cfg.inversion
    bounds = _bounds(cfg, payload)
    mask = np.ones(payload["epsilon"].shape, bool)
    mask[:inv.get("fixed_rows", 0)] = False
    executor, close = _executor(cfg)
    stages = len(inv.get("frequencies", [])) + 1
    bar = progress_bar(stages * (inv.get("iterations", 10) + 1), quiet, "iteration")
    log.info("fwi %s: %d shots, %d stage(s), method %s", cfg.path, n, stages,
             inv.get("method", "lbfgs"))

    def report(entry):
        bar.update(1)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(stage=entry["stage"], misfit=f"{entry['misfit']:.4g}")
        log.info("stage %d iteration %d: misfit %.6g", entry["stage"], entry["iteration"],
                 entry["misfit"])

    try:
        result = invert(observed, payload["epsilon"], payload["sigma"], payload["mu"],
                        payload["spacing"], payload["dt"], amplitude, payload["sources"],
                        payload["receivers"], system=payload["system"],
                        parameters=_parameters(inv), dispersion=dispersion_of(payload),
                        bounds=bounds, misfit=inv.get("misfit", "l2"),
                        method=inv.get("method", "lbfgs"), iterations=inv.get("iterations", 10),
                        frequencies=(*inv.get("frequencies", []), None),
                        batch_size=inv.get("batch_size"), seed=inv.get("seed", 0),
                        smoothing=inv.get("smoothing", 0.0), mask=mask,
                        **({"cg_iterations": inv["cg_iterations"]}
                           if "cg_iterations" in inv else {}),
                        checkpoint_dir=(str(cfg.resolve(inv["checkpoint_dir"]))
                                        if "checkpoint_dir" in inv else None),
                        callback=report, executor=executor,
                        shots_per_task=cfg.parallel.get("shots_per_task", 1),
                        **_storage(inv), **payload["options"])
    except BaseException:  # a failure, Ctrl-C, SIGTERM: end the workers now
        bar.close()
        close(kill=True)
        raise
    bar.close()
    close()
    return result
