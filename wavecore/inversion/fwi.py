"""Full-waveform inversion driver.

Parameterization: each inverted parameter ``p`` (``epsilon``, ``sigma``) is
scaled by its bounds, ``x = (p - lo) / (hi - lo)``, so every unknown lies in
[0, 1] with a comparable gradient scale; L-BFGS-B keeps ``x`` in the box,
the steepest-descent and NLCG methods project onto it. Cells outside ``mask``
(for example the air above a GPR survey) keep their starting values.

Frequency continuation: ``frequencies`` lists low-pass corner frequencies
(Hz), one stage each, from low to high; the observed data and the source
wavelet of a stage are filtered alike (zero-phase Butterworth), which keeps
the modelling consistent. ``None`` in the list means the full band.

Mini-batches: with ``batch_size``, the steepest-descent and NLCG methods draw
new shots every iteration; L-BFGS-B (which needs one objective within a
stage) draws one batch per stage. Draws follow ``seed``.

Checkpoints: with ``checkpoint_dir`` every iteration writes
``iter_<k>.npz`` (the model, the stage and the history); ``resume=True``
continues from the newest one (L-BFGS-B restarts its memory there).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import numpy as np

from .. import _maxwell3d, _tm2d
from .misfit import MISFITS

PARAMETERS = ("epsilon", "sigma")
METHODS = ("lbfgs", "sd", "nlcg")


@dataclass
class Bounds:
    """Lower and upper bounds of the inverted parameters."""

    epsilon: tuple = (1.0, 81.0)
    sigma: tuple = (0.0, 0.1)


@dataclass
class FwiResult:
    epsilon: np.ndarray
    sigma: np.ndarray
    history: list = field(default_factory=list)  # dicts: stage, iteration, misfit, evaluations

    @property
    def misfit_reduction(self) -> float:
        """Last misfit over the first one of the last stage."""
        last = [h for h in self.history if h["stage"] == self.history[-1]["stage"]]
        return last[-1]["misfit"] / last[0]["misfit"] if last and last[0]["misfit"] else 1.0


def lowpass(signal: np.ndarray, corner: float | None, dt: float) -> np.ndarray:
    """Zero-phase 4th-order Butterworth low-pass along the last axis."""
    if corner is None:
        return signal
    from scipy.signal import butter, sosfiltfilt  # noqa: PLC0415 - wavecore[fwi]

    nyquist = 0.5 / dt
    if not 0 < corner < nyquist:
        raise ValueError(f"frequency {corner} Hz must be in (0, {nyquist:.4g}) (Nyquist)")
    sos = butter(4, corner / nyquist, output="sos")
    return sosfiltfilt(sos, signal, axis=-1).astype(signal.dtype)


def shot_gradients(spec: dict, models: dict, shots) -> tuple:
    """Misfit and raw model gradients of some shots (runs in a worker)."""
    fn = _tm2d.tm2d if spec["system"] == "tm2d" else _maxwell3d.maxwell3d
    misfit = MISFITS[spec["misfit"]] if isinstance(spec["misfit"], str) else spec["misfit"]
    res = fn(models["epsilon"], models["sigma"], models["mu"], spec["spacing"], spec["dt"],
             spec["amplitude"][shots], spec["sources"][shots], spec["receivers"][shots],
             requires_grad=spec["parameters"], **spec["options"])
    value, residual = misfit(res.receiver_data, spec["observed"][shots])
    grads = res.vjp(residual.astype(res.receiver_data.dtype))
    return value, {p: getattr(grads, p).astype(np.float64) for p in spec["parameters"]}


class Problem:
    """The objective of one stage: misfit and gradient in the scaled unknowns.

    With an ``executor`` the shots are split into tasks of ``shots_per_task``
    shots whose misfits and gradients are summed (the model goes with every
    task, as it changes with every evaluation)."""

    def __init__(self, observed, models, spacing, dt, amplitude, sources, receivers, *,
                 system, parameters, bounds, misfit, mask, smoothing, options,
                 executor=None, shots_per_task=1):
        self.models = models
        self.parameters, self.bounds = parameters, bounds
        self.mask = mask
        self.smoothing, self.options = smoothing, options
        self.shots = np.arange(len(sources))
        self.evaluations = 0
        self.executor, self.shots_per_task = executor, shots_per_task
        if executor is not None and options.get("device") in (None, "cpu") and \
                "python_backend" not in options:
            # One OpenMP thread per task unless asked: workers x threads beyond the
            # cores makes OpenMP's spinning barriers crawl.
            options = {"n_threads": 1, **options}
        self.spec = dict(system=system, spacing=spacing, dt=dt, amplitude=amplitude,
                         sources=sources, receivers=receivers, observed=observed,
                         parameters=parameters, misfit=misfit, options=options)

    def to_x(self, models) -> np.ndarray:
        return np.concatenate([((models[p] - lo) / (hi - lo))[self.mask]
                               for p, (lo, hi) in self._ranges()])

    def to_models(self, x) -> dict:
        out = dict(self.models)
        n = int(self.mask.sum())
        for k, (p, (lo, hi)) in enumerate(self._ranges()):
            full = self.models[p].astype(np.float64).copy()
            full[self.mask] = lo + (hi - lo) * x[k * n:(k + 1) * n]
            out[p] = full.astype(self.models[p].dtype)
        return out

    def _ranges(self):
        return [(p, getattr(self.bounds, p)) for p in self.parameters]

    def __call__(self, x) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        m = self.to_models(x)
        if self.executor is None:
            value, grads = shot_gradients(self.spec, m, self.shots)
        else:
            k = self.shots_per_task
            tasks = [self.executor.submit(shot_gradients, self.spec, m, self.shots[i:i + k])
                     for i in range(0, len(self.shots), k)]
            value, grads = 0.0, {p: 0.0 for p in self.parameters}
            for task in tasks:  # summed in submission order: the same on every run
                v, g = task.result()
                value += v
                grads = {p: grads[p] + g[p] for p in self.parameters}
        parts = []
        for p, (lo, hi) in self._ranges():
            g = grads[p]
            if self.smoothing:
                from scipy.ndimage import gaussian_filter  # noqa: PLC0415

                g = gaussian_filter(g, self.smoothing)
            parts.append((g * (hi - lo))[self.mask])
        return value, np.concatenate(parts)


def _project(x):
    return np.clip(x, 0.0, 1.0)


def _line_search(problem, x, f, g, direction, step):
    """Projected backtracking (Armijo) along ``direction``; (x, f, g, step)."""
    for _ in range(12):
        trial = _project(x + step * direction)
        ft, gt = problem(trial)
        if ft <= f + 1e-4 * float(g @ (trial - x)):
            return trial, ft, gt, step
        step *= 0.5
    return x, f, g, 0.0


def invert(observed, epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
           receiver_location, *, system: str = "tm2d", parameters=PARAMETERS,
           bounds: Bounds | None = None, misfit="l2", method: str = "lbfgs",
           iterations: int = 10, frequencies=(None,), batch_size: int | None = None,
           seed: int = 0, smoothing: float = 0.0, mask=None, checkpoint_dir=None,
           resume: bool = True, callback=None, executor=None, shots_per_task: int = 1,
           **solver_options) -> FwiResult:
    """Invert ``observed`` receiver data for ``parameters`` from a starting model.

    ``observed`` has the shape of the forward data of the same acquisition;
    ``solver_options`` go to ``tm2d``/``maxwell3d`` (stencil, pml_width, ...).
    ``executor`` (any concurrent.futures.Executor, e.g. a process pool or
    ``dask.distributed.Client.get_executor()``) spreads the shots of every
    evaluation over its workers in tasks of ``shots_per_task`` shots, each
    on one thread unless ``n_threads`` is given.
    ``callback(record)`` runs after every iteration with its history record.
    Returns the final model and the history (misfit per iteration and stage).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    parameters = tuple([parameters] if isinstance(parameters, str) else parameters)
    if not parameters or not set(parameters) <= set(PARAMETERS):
        raise ValueError(f"parameters must be among {PARAMETERS}, got {parameters}")
    if not (isinstance(misfit, str) and misfit in MISFITS) and not callable(misfit):
        raise ValueError(f"misfit must be one of {sorted(MISFITS)} or a callable")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an int >= 1, got {iterations!r}")
    bounds = bounds or Bounds()
    models = dict(epsilon=np.asarray(epsilon), sigma=np.asarray(sigma), mu=np.asarray(mu))
    for p in parameters:
        lo, hi = getattr(bounds, p)
        if not lo < hi:
            raise ValueError(f"bounds of {p} must satisfy lo < hi, got {(lo, hi)}")
        if (models[p] < lo).any() or (models[p] > hi).any():
            raise ValueError(f"the starting {p} lies outside its bounds {(lo, hi)}")
    mask = np.ones(models["epsilon"].shape, bool) if mask is None else np.asarray(mask, bool)
    observed = np.asarray(observed)
    amplitude = np.asarray(source_amplitude)
    sources, receivers = np.asarray(source_location), np.asarray(receiver_location)
    rng = np.random.default_rng(seed)
    history: list = []
    start_stage, start_iter = 0, 0
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        saved = sorted(glob.glob(os.path.join(checkpoint_dir, "iter_*.npz")))
        if saved and resume:
            with np.load(saved[-1], allow_pickle=False) as z:
                for p in PARAMETERS:
                    models[p] = z[p]
                history = [dict(stage=int(s), iteration=int(i), misfit=float(m),
                                evaluations=int(e)) for s, i, m, e in z["history"]]
            start_stage, start_iter = history[-1]["stage"], history[-1]["iteration"]

    for stage, corner in enumerate(frequencies):
        if stage < start_stage or (stage == start_stage and start_iter >= iterations):
            continue
        done = start_iter if stage == start_stage else 0
        problem = Problem(lowpass(observed, corner, dt), models, grid_spacing, dt,
                          lowpass(amplitude, corner, dt), sources, receivers, system=system,
                          parameters=parameters, bounds=bounds, misfit=misfit, mask=mask,
                          smoothing=smoothing, options=solver_options, executor=executor,
                          shots_per_task=shots_per_task)

        def record(x, value, k):
            entry = dict(stage=stage, iteration=k, misfit=float(value),
                         evaluations=problem.evaluations)
            history.append(entry)
            current = problem.to_models(x)
            if checkpoint_dir is not None:
                np.savez(os.path.join(checkpoint_dir, f"iter_{len(history):04d}.npz"),
                         epsilon=current["epsilon"], sigma=current["sigma"],
                         history=np.array([[h["stage"], h["iteration"], h["misfit"],
                                            h["evaluations"]] for h in history]))
            if callback is not None:
                callback(entry)

        def draw():
            if batch_size and batch_size < len(sources):
                problem.shots = np.sort(rng.choice(len(sources), batch_size, replace=False))

        draw()
        x = problem.to_x(models)
        f, g = problem(x)
        if done == 0:
            record(x, f, 0)
        remaining = iterations - done
        if method == "lbfgs":
            from scipy.optimize import minimize  # noqa: PLC0415 - wavecore[fwi]

            cache = {}

            def fun(xk):
                key = xk.tobytes()
                if key not in cache:
                    cache.clear()
                    cache[key] = problem(xk)
                return cache[key]

            state = {"k": done}

            def after(xk):
                state["k"] += 1
                record(xk, fun(xk)[0], state["k"])

            out = minimize(fun, x, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * x.size,
                           options=dict(maxiter=remaining), callback=after)
            x = out.x
        else:
            step, direction, g_prev = 0.05, None, None
            for k in range(done + 1, iterations + 1):
                if method == "sd" or direction is None:
                    direction = -g
                else:  # Polak-Ribiere+, restarted when not a descent direction
                    beta = max(0.0, float(g @ (g - g_prev)) / float(g_prev @ g_prev))
                    direction = -g + beta * direction
                    if float(direction @ g) >= 0:
                        direction = -g
                scale = np.abs(direction).max()
                if scale == 0:
                    break
                g_prev = g
                x, f, g, taken = _line_search(problem, x, f, g, direction / scale, step)
                record(x, f, k)
                if taken == 0:
                    break
                step = min(2 * taken, 0.25)
                draw()
                if batch_size:  # a new batch: re-evaluate at the current model
                    f, g = problem(x)
        models = problem.to_models(x)
        start_iter = 0
    return FwiResult(epsilon=models["epsilon"], sigma=models["sigma"], history=history)
