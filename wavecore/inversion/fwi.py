"""Full-waveform inversion driver.

Parameterization: each inverted parameter ``p`` (``epsilon``, ``sigma``, and
with ``dispersion=wavecore.Debye(...)`` the pole parameters ``delta_epsilon``
and ``tau``) is scaled by its bounds to unknowns ``x`` in [0, 1] with a
comparable gradient scale: linearly, ``x = (p - lo) / (hi - lo)``, except
``tau``, which is logarithmic, ``x = log(p / lo) / log(hi / lo)`` (a pole acts
through ``w tau``, so what matters is the relative change of tau, and its
bounds span decades: a linear box would move the short times by steps far
above their size and the long ones by little; see :data:`SCALES`). L-BFGS-B keeps ``x`` in the box, the steepest-descent and
NLCG methods project onto it. Cells outside ``mask`` (for example the air
above a GPR survey) keep their starting values; the pole parameters,
``[n_poles, *model_shape]``, are inverted in every pole of the masked cells.
With poles, ``epsilon`` is the infinite-frequency permittivity eps_inf.

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
from .misfit import HESSIANS, MISFITS
from .newton import conjugate_gradient, forcing_term, gauss_newton_hvp, hvp

PARAMETERS = ("epsilon", "sigma")            # the default of `invert`
POLE_PARAMETERS = ("delta_epsilon", "tau")   # Debye poles (with dispersion=)
INVERTIBLE = PARAMETERS + POLE_PARAMETERS
METHODS = ("lbfgs", "sd", "nlcg", "gauss-newton", "truncated-newton")
NEWTON = ("gauss-newton", "truncated-newton")
TAU_MAX = 1e-6  # seconds: the default upper bound of tau (soils relax in 1e-11 to 1e-7 s)


@dataclass(frozen=True)
class Scale:
    """How a parameter ``p`` in ``[lo, hi]`` maps to its unknown ``x`` in [0, 1]:
    linearly, ``p = lo + (hi - lo) x``, or logarithmically, ``p = lo (hi / lo)^x``
    (``lo > 0``)."""

    log: bool = False

    def to_unit(self, p, lo, hi):
        p = np.asarray(p, np.float64)
        return np.log(p / lo) / np.log(hi / lo) if self.log else (p - lo) / (hi - lo)

    def from_unit(self, x, lo, hi):
        return lo * (hi / lo) ** x if self.log else lo + (hi - lo) * x

    def slope(self, x, lo, hi):
        """dp/dx at ``x`` (the chain rule from the gradient in p to the one in x)."""
        return self.from_unit(x, lo, hi) * np.log(hi / lo) if self.log else \
            np.full(np.shape(x), hi - lo)

    def curvature(self, x, lo, hi):
        """d^2p/dx^2 at ``x`` (the full Hessian in x adds gradient x curvature)."""
        return self.slope(x, lo, hi) * np.log(hi / lo) if self.log else np.zeros(np.shape(x))


#: The scale of each invertible parameter.
SCALES = {"epsilon": Scale(), "sigma": Scale(), "delta_epsilon": Scale(), "tau": Scale(log=True)}


@dataclass
class Bounds:
    """Lower and upper bounds of the inverted parameters. ``tau`` (seconds)
    defaults to ``(2 dt, 1e-6)``: its lower bound must exceed the time step."""

    epsilon: tuple = (1.0, 81.0)
    sigma: tuple = (0.0, 0.1)
    delta_epsilon: tuple = (0.0, 80.0)
    tau: tuple | None = None

    def of(self, name: str, dt: float) -> tuple:
        """``(lo, hi)`` of a parameter, validated (``dt``: the time step)."""
        value = getattr(self, name)
        lo, hi = (2.0 * dt, TAU_MAX) if value is None and name == "tau" else value
        lo, hi = float(lo), float(hi)
        if not lo < hi:
            raise ValueError(f"bounds of {name} must satisfy lo < hi, got {(lo, hi)}")
        if name == "delta_epsilon" and lo < 0:
            raise ValueError(f"bounds of delta_epsilon (the strength of a pole) must have "
                             f"lo >= 0, got {(lo, hi)}")
        if name == "tau" and not lo > dt:
            raise ValueError(f"bounds of tau must have lo above the time step dt = {dt:.4g} s "
                             f"(the pole update needs tau > dt; tau is inverted in log "
                             f"space), got {(lo, hi)}")
        return lo, hi


@dataclass
class FwiResult:
    epsilon: np.ndarray
    sigma: np.ndarray
    history: list = field(default_factory=list)  # dicts: stage, iteration, misfit, evaluations
    #: The Debye poles ``[n_poles, *model_shape]`` (None without dispersion).
    delta_epsilon: np.ndarray | None = None
    tau: np.ndarray | None = None

    @property
    def dispersion(self):
        """The final poles as a ``wavecore.Debye`` (None without dispersion)."""
        return dispersion_of({"delta_epsilon": self.delta_epsilon, "tau": self.tau})

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


def dispersion_of(models: dict):
    """The ``dispersion=`` of a model dict: ``wavecore.Debye`` of its
    ``delta_epsilon`` and ``tau`` arrays, or None without poles."""
    if models.get("tau") is None:
        return None
    from .._debye import Debye  # noqa: PLC0415

    return Debye(models["delta_epsilon"], models["tau"])


def pole_models(dispersion, shape: tuple, dtype) -> dict:
    """``delta_epsilon`` and ``tau`` of a dispersion as ``[n_poles, *shape]``
    arrays of ``dtype`` (each cell its own unknowns), or {} without."""
    if dispersion is None:
        return {}
    from .._debye import Debye, pole_arrays  # noqa: PLC0415

    d = Debye(*pole_arrays(dispersion))  # validated: delta_epsilon >= 0, tau > 0
    out = {}
    for name in POLE_PARAMETERS:
        v = np.asarray(getattr(d, name))
        if v.ndim <= 1:  # a scalar or [P]: the same poles in every cell
            v = v.reshape(-1, *([1] * len(shape)))
        elif v.shape == tuple(shape):
            v = v[None]
        elif v.shape[1:] != tuple(shape):
            raise ValueError(f"dispersion.{name} must have the shape [n_poles, *model_shape] "
                             f"or the model's shape {tuple(shape)}, got {v.shape}")
        out[name] = np.ascontiguousarray(np.broadcast_to(v, (v.shape[0], *shape)), dtype)
    return out


def forward_run(spec: dict, models: dict, shots, requires_grad=()):
    """The forward run of some shots, and the misfit function of the spec."""
    fn = _tm2d.tm2d if spec["system"] == "tm2d" else _maxwell3d.maxwell3d
    misfit = MISFITS[spec["misfit"]] if isinstance(spec["misfit"], str) else spec["misfit"]
    res = fn(models["epsilon"], models["sigma"], models["mu"], spec["spacing"], spec["dt"],
             spec["amplitude"][shots], spec["sources"][shots], spec["receivers"][shots],
             requires_grad=requires_grad, dispersion=dispersion_of(models), **spec["options"])
    return res, misfit


def shot_gradients(spec: dict, models: dict, shots) -> tuple:
    """Misfit and raw model gradients of some shots (runs in a worker)."""
    res, misfit = forward_run(spec, models, shots, spec["parameters"])
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
        return np.concatenate([SCALES[p].to_unit(models[p][self._cells(p)], lo, hi).ravel()
                               for p, (lo, hi) in self._ranges()])

    def to_models(self, x) -> dict:
        out = dict(self.models)
        for p, (lo, hi), part in self._parts(x):
            full = self.models[p].astype(np.float64).copy()
            cells = self._cells(p)
            full[cells] = SCALES[p].from_unit(part, lo, hi).reshape(full[cells].shape)
            out[p] = full.astype(self.models[p].dtype)
        return out

    def _ranges(self):
        return [(p, self.bounds.of(p, self.spec["dt"])) for p in self.parameters]

    def _cells(self, p):
        """The index of a parameter's unknowns: the masked cells (of every pole)."""
        return (slice(None), self.mask) if p in POLE_PARAMETERS else self.mask

    def _parts(self, x):
        """(parameter, (lo, hi), its slice of x) for each inverted parameter."""
        start = 0
        for p, bounds in self._ranges():
            n = int(self.mask.sum()) * (self.models[p].shape[0] if p in POLE_PARAMETERS else 1)
            yield p, bounds, x[start:start + n]
            start += n

    def value(self, x) -> float:
        """The misfit alone (one forward without snapshots)."""
        self.evaluations += 1
        res, misfit = forward_run(self.spec, self.to_models(x), self.shots)
        return misfit(res.receiver_data, self.spec["observed"][self.shots])[0]

    def newton_system(self, x, full: bool = False):
        """``(misfit, gradient, product, close)`` at ``x`` in the unknowns: the
        gradient and ``product(v) = J^T H_phi J v`` (the Gauss-Newton Hessian in
        the scaled unknowns, wavecore.inversion.newton) or, with ``full``, the
        full Hessian (plus ``second_vjp``, and the scaling's own curvature
        ``g_p d^2p/dx^2``), from one forward run whose snapshots serve every
        product until ``close()``."""
        self.evaluations += 1
        spec, shots = self.spec, self.shots
        res, misfit = forward_run(spec, self.to_models(x), shots, self.parameters)
        observed = spec["observed"][shots]
        value, residual = misfit(res.receiver_data, observed)
        dtype = res.receiver_data.dtype
        grads = res.vjp(residual.astype(dtype), keep=True)
        gradient = self._in_unknowns(grads, x)

        curvature = 0.0
        if full:
            curvature = np.concatenate([
                getattr(grads, p).astype(np.float64)[self._cells(p)].ravel()
                * SCALES[p].curvature(part, lo, hi) for p, (lo, hi), part in self._parts(x)])
        product_of = hvp if full else gauss_newton_hvp

        def product(v):
            directions = self._in_models(v, x)
            return self._in_unknowns(product_of(res, directions, observed, spec["misfit"]),
                                     x) + curvature * v

        return value, gradient, product, res.close

    def _in_unknowns(self, grads, x) -> np.ndarray:
        """Model-space gradients (a Gradients) -> the unknowns' (masked, scaled)."""
        return np.concatenate([getattr(grads, p).astype(np.float64)[self._cells(p)].ravel()
                               * SCALES[p].slope(part, lo, hi)
                               for p, (lo, hi), part in self._parts(x)])

    def _in_models(self, v, x) -> dict:
        """A direction of the unknowns -> model directions (zero outside the mask)."""
        out = {}
        for (p, (lo, hi), part), (_, _, dv) in zip(self._parts(x), self._parts(v)):
            full = np.zeros(self.models[p].shape)
            full[self._cells(p)] = (dv * SCALES[p].slope(part, lo, hi)).reshape(
                full[self._cells(p)].shape)
            out[p] = full
        return out

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
        for p, (lo, hi), part in self._parts(x):
            g = grads[p]
            if self.smoothing:  # in space (not across the poles)
                from scipy.ndimage import gaussian_filter  # noqa: PLC0415

                width = self.smoothing if p not in POLE_PARAMETERS else \
                    (0.0, *[self.smoothing] * self.mask.ndim)
                g = gaussian_filter(g, width)
            parts.append(g[self._cells(p)].ravel() * SCALES[p].slope(part, lo, hi))
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


def _gauss_newton_step(problem, x, cg_iterations, state, full: bool = False):
    """One projected Newton iteration from ``x`` (Gauss-Newton, or with ``full``
    truncated Newton on the full Hessian): the inner CG solve of ``H d = -g``
    over the free unknowns (those not held at a bound by the gradient) to the
    Eisenstat-Walker tolerance, stopped at negative curvature, then a projected
    backtracking line search from the full step. Returns ``(x, f, taken, record)``."""
    f, g, product, close = problem.newton_system(x, full)
    try:
        free = ~(((x <= 0.0) & (g > 0)) | ((x >= 1.0) & (g < 0)))
        g_norm = float(np.linalg.norm(g[free]))
        eta = forcing_term(g_norm, state.get("g_norm"), state.get("eta"))
        d, inner, reason = conjugate_gradient(lambda v: product(v * free) * free, -g * free,
                                              eta, cg_iterations)
    finally:
        close()
    state.update(g_norm=g_norm, eta=eta)
    info = dict(cg_iterations=inner, cg_stop=reason, forcing=eta)
    step = 1.0
    for _ in range(12):
        trial = _project(x + step * d)
        ft = problem.value(trial)
        if ft <= f + 1e-4 * float(g @ (trial - x)):
            return trial, ft, step, info
        step *= 0.5
    return x, f, 0.0, info


def invert(observed, epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
           receiver_location, *, system: str = "tm2d", parameters=PARAMETERS,
           bounds: Bounds | None = None, misfit="l2", method: str = "lbfgs",
           iterations: int = 10, frequencies=(None,), batch_size: int | None = None,
           seed: int = 0, smoothing: float = 0.0, mask=None, checkpoint_dir=None,
           resume: bool = True, callback=None, executor=None, shots_per_task: int = 1,
           dispersion=None, cg_iterations: int = 10, **solver_options) -> FwiResult:
    """Invert ``observed`` receiver data for ``parameters`` from a starting model.

    ``parameters`` are among ``epsilon``, ``sigma``, ``delta_epsilon`` and
    ``tau``; the last two need ``dispersion`` (a ``wavecore.Debye``: the
    starting poles, which are also the fixed poles when not inverted; then
    ``epsilon`` is eps_inf). ``bounds`` (:class:`Bounds`) box each parameter,
    ``tau`` in log space (:data:`SCALES`); the result holds the poles as
    ``[n_poles, *model_shape]`` arrays.
    ``observed`` has the shape of the forward data of the same acquisition;
    ``solver_options`` go to ``tm2d``/``maxwell3d`` (stencil, pml_width, ...).
    ``executor`` (any concurrent.futures.Executor, e.g. a process pool or
    ``dask.distributed.Client.get_executor()``) spreads the shots of every
    evaluation over its workers in tasks of ``shots_per_task`` shots, each
    on one thread unless ``n_threads`` is given.
    ``callback(record)`` runs after every iteration with its history record.
    ``method="gauss-newton"`` takes projected Gauss-Newton steps: each solves
    ``J^T H_phi J d = -g`` by at most ``cg_iterations`` conjugate-gradient
    iterations (each one ``jvp`` and one ``vjp`` of the iteration's forward run,
    wavecore.inversion.newton; Eisenstat-Walker tolerances; stopped at
    negative curvature) over the unknowns not held at a bound, then a projected
    backtracking line search from the full step; the history records the inner
    iterations. ``method="truncated-newton"`` does the same with the full
    Hessian (``wavecore.inversion.hvp``: the Gauss-Newton product plus
    ``second_vjp``), whose negative curvature far
    from the solution ends the inner solve. Both run the shots in this process
    (no ``executor``) and take no gradient ``smoothing`` (it would make the
    operator unsymmetric).
    Returns the final model and the history (misfit per iteration and stage).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method in NEWTON:
        if executor is not None:
            raise ValueError(f"method={method!r} runs its shots in this process: its "
                             "inner products reuse one forward run's snapshots; pass "
                             "executor=None (or use method='lbfgs' with an executor)")
        if smoothing:
            raise ValueError(f"method={method!r} takes no gradient smoothing (a smoothed "
                             "gradient with an unsmoothed Hessian is not a Newton system); "
                             "pass smoothing=0")
        if not (isinstance(misfit, str) and misfit in HESSIANS):
            raise ValueError(f"method={method!r} needs the data-space Hessian of the "
                             f"misfit: one of {sorted(HESSIANS)}, got {misfit!r}")
        if isinstance(cg_iterations, bool) or not isinstance(cg_iterations, int) or \
                cg_iterations < 1:
            raise ValueError(f"cg_iterations must be an int >= 1, got {cg_iterations!r}")
    parameters = tuple([parameters] if isinstance(parameters, str) else parameters)
    if not parameters or not set(parameters) <= set(INVERTIBLE) or \
            len(set(parameters)) != len(parameters):
        raise ValueError(f"parameters must be among {INVERTIBLE} (each once), got {parameters}")
    if set(parameters) & set(POLE_PARAMETERS) and dispersion is None:
        raise ValueError(f"parameters {parameters} include Debye pole parameters; give the "
                         f"starting poles as dispersion=wavecore.Debye(delta_epsilon, tau)")
    if not (isinstance(misfit, str) and misfit in MISFITS) and not callable(misfit):
        raise ValueError(f"misfit must be one of {sorted(MISFITS)} or a callable")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an int >= 1, got {iterations!r}")
    bounds = bounds or Bounds()
    models = dict(epsilon=np.asarray(epsilon), sigma=np.asarray(sigma), mu=np.asarray(mu))
    models.update(pole_models(dispersion, models["epsilon"].shape, models["epsilon"].dtype))
    for p in parameters:
        lo, hi = bounds.of(p, dt)
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
                for p in INVERTIBLE:
                    if p in z.files and p in models:
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

        def record(x, value, k, **extra):
            entry = dict(stage=stage, iteration=k, misfit=float(value),
                         evaluations=problem.evaluations, **extra)
            history.append(entry)
            current = problem.to_models(x)
            if checkpoint_dir is not None:
                np.savez(os.path.join(checkpoint_dir, f"iter_{len(history):04d}.npz"),
                         **{p: current[p] for p in INVERTIBLE if p in current},
                         history=np.array([[h["stage"], h["iteration"], h["misfit"],
                                            h["evaluations"]] for h in history]))
            if callback is not None:
                callback(entry)

        def draw():
            if batch_size and batch_size < len(sources):
                problem.shots = np.sort(rng.choice(len(sources), batch_size, replace=False))

        draw()
        x = problem.to_x(models)
        if method in NEWTON:
            if done == 0:
                record(x, problem.value(x), 0)
            state: dict = {}
            for k in range(done + 1, iterations + 1):
                x, f, taken, info = _gauss_newton_step(problem, x, cg_iterations, state,
                                                       full=method == "truncated-newton")
                record(x, f, k, **info)
                if taken == 0:
                    break
            models = problem.to_models(x)
            start_iter = 0
            continue
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
    return FwiResult(epsilon=models["epsilon"], sigma=models["sigma"], history=history,
                     delta_epsilon=models.get("delta_epsilon"), tau=models.get("tau"))
