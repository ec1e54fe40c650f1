"""JAX wrappers: ``wavecore.jax.tm2d`` and ``wavecore.jax.maxwell3d``.

Differentiable with ``jax.grad``/``jax.vjp`` (a ``jax.custom_vjp``), twice
over (``jax.grad`` of a gradient: the backward is a ``custom_vjp`` too, whose
own backward runs ``jvp`` and ``second_vjp``, so Hessian products are exact),
and usable under ``jax.jit``: the simulation runs on the host through
``jax.pure_callback`` (CPU arrays), and the backward pass runs wavecore's exact
adjoint. JAX keeps no state between the forward and the backward callbacks,
so the backward callback runs the forward simulation again before its
adjoint (about twice the cost of a forward run). Gradients are returned for
``epsilon``, ``sigma``, ``mu`` and ``source_amplitude`` (and, with
``dispersion=(delta_epsilon, tau)``, a pair of JAX or numpy arrays, for
those too; a :class:`wavecore.Debye` holds numpy copies, so it gives none).
Locations and the other keyword options are static. For float64 enable ``jax_enable_x64``. Importing
wavecore does not import jax; this module does.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from . import _driver
from ._checks import UnitWarning
from ._debye import Debye, DebyeLaw, pole_arrays as _pole_arrays
from ._maxwell3d import MAXWELL3D
from ._maxwell3d import maxwell3d as _maxwell3d
from ._tm2d import TM2D
from ._tm2d import tm2d as _tm2d
from .gradients import GRADIENT_TARGETS

__all__ = ["tm2d", "maxwell3d"]

_ALL = GRADIENT_TARGETS  #: the material law's arrays, then source_amplitude
_DEBYE = DebyeLaw.inputs + ("source_amplitude",)  #: the same with Debye poles


def _with_poles(options: dict, models: list) -> dict:
    """``options`` with ``dispersion=Debye(delta_epsilon, tau)`` from the arrays after
    epsilon, sigma, mu (if there are any)."""
    if len(models) == 3:
        return options
    return {**options, "dispersion": Debye(*models[3:])}


def _output_shape(physics, args, options, shapes, dtype) -> tuple:
    """The receiver-data shape of a run, from a plan of placeholder arrays."""
    *models, amp = (np.ones(s, dtype) for s in shapes)
    options = _with_poles(options, models)
    physics = physics.with_dispersion(options.get("dispersion"), models[0].shape)
    with warnings.catch_warnings():  # placeholders of ones: their units mean nothing
        warnings.simplefilter("ignore", UnitWarning)
        plan = _driver.plan_run(physics, *models[:3], args[0], args[1], amp, args[2],
                                args[3], **options)[0]
    comps = (len(plan.receiver_components),) if plan.component_axis else ()
    return (*plan.batch_shape, *comps, plan.n_receivers, plan.nt)


def _wrap(fn, physics, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
          source_location, receiver_location, options):
    if "requires_grad" in options:
        raise TypeError("requires_grad is implied in wavecore.jax (all four gradients)")
    args = (grid_spacing, dt, np.asarray(source_location), np.asarray(receiver_location))
    options = dict(options)
    dispersion = options.pop("dispersion", None)
    dtype = np.dtype(epsilon.dtype)
    if dispersion is None:
        names, inputs = _ALL, (epsilon, sigma, mu, source_amplitude)
    else:
        poles = [x if hasattr(x, "shape") else np.asarray(x, dtype)
                 for x in _pole_arrays(dispersion)]
        names, inputs = _DEBYE, (epsilon, sigma, mu, *poles, source_amplitude)
    shape = _output_shape(physics, args, options, [np.shape(x) for x in inputs], dtype)
    out = jax.ShapeDtypeStruct(shape, dtype)

    def call(xs, **kw):
        *models, amp = (np.asarray(x) for x in xs)
        return fn(*models[:3], args[0], args[1], amp, args[2], args[3], **kw,
                  **_with_poles(options, models))

    def host_forward(*xs):
        return call(xs).receiver_data.astype(dtype)

    def host_vjp(*xs_g):
        *xs, g = xs_g
        grads = call(xs, requires_grad=names).vjp(np.asarray(g))
        return tuple(getattr(grads, n).astype(np.asarray(x).dtype) for n, x in zip(names, xs))

    def host_second(*xs_g_us):
        """(J u, second_vjp(u, g) per input) of the run at xs: the derivative of
        <u, vjp(g)> in g and in the inputs (u a cotangent of the inputs)."""
        n = len(names)
        xs, g, us = xs_g_us[:n], np.asarray(xs_g_us[n]), xs_g_us[n + 1:]
        dtypes = [np.asarray(x).dtype for x in xs]
        directions = {k: np.asarray(u) for k, u in zip(names, us) if np.any(np.asarray(u))}
        if not directions:
            return (np.zeros(g.shape, dtype), *(np.zeros(np.shape(x), t)
                                                for x, t in zip(xs, dtypes)))
        res = call(xs, requires_grad=names)
        jv = res.jvp(keep=True, **directions).astype(dtype)
        second = res.second_vjp(directions, g)
        return (jv, *(getattr(second, k).astype(t) for k, t in zip(names, dtypes)))

    def structs_of(arrays):
        return tuple(jax.ShapeDtypeStruct(np.shape(x), x.dtype) for x in arrays)

    # The backward is itself a custom_vjp function of the inputs and the
    # cotangent, so that jax can differentiate it again (reverse over reverse:
    # Hessian products through jvp and second_vjp; each call runs the forward
    # simulation again first, as the backward does).
    @jax.custom_vjp
    def vjp_of(*xs_g):
        return jax.pure_callback(host_vjp, structs_of(xs_g[:-1]), *xs_g)

    def vjp_fwd(*xs_g):
        return vjp_of(*xs_g), xs_g

    def vjp_bwd(saved, us):
        jv, *second = jax.pure_callback(host_second, structs_of(saved[-1:] + saved[:-1]),
                                        *saved, *us)
        return (*second, jv)

    vjp_of.defvjp(vjp_fwd, vjp_bwd)

    @jax.custom_vjp
    def run(*xs):
        return jax.pure_callback(host_forward, out, *xs)

    def run_fwd(*xs):
        return run(*xs), xs

    def run_bwd(saved, g):
        return vjp_of(*saved, g)

    run.defvjp(run_fwd, run_bwd)
    return run(*inputs)


def tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
         receiver_location, **options):
    """:func:`wavecore.tm2d` on JAX arrays; returns the receiver data (differentiable)."""
    return _wrap(_tm2d, TM2D, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                 source_location, receiver_location, options)


def maxwell3d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
              receiver_location, **options):
    """:func:`wavecore.maxwell3d` on JAX arrays; returns the receiver data (differentiable)."""
    return _wrap(_maxwell3d, MAXWELL3D, epsilon, sigma, mu, grid_spacing, dt,
                 source_amplitude, source_location, receiver_location, options)
