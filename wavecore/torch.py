"""PyTorch autograd wrappers: ``wavecore.torch.tm2d`` and ``wavecore.torch.maxwell3d``.

They take torch tensors (CPU, or CUDA through CuPy, without copies where
DLPack allows) and return the receiver data as a tensor whose backward runs
wavecore's exact adjoint: gradients for ``epsilon``, ``sigma``, ``mu`` and
``source_amplitude``, whichever of them require grad. The backward is itself
differentiable (``create_graph=True``): differentiating a gradient again runs
``jvp`` and ``second_vjp`` on the run's kept snapshots, so Hessian-vector
products of any torch loss are exact too. ``dispersion=`` takes
any object with ``delta_epsilon`` and ``tau`` attributes (tensors, arrays or
numbers: a :class:`wavecore.Debye`, TIDE's ``DebyeDispersion``, or a
``(delta_epsilon, tau)`` pair); tensors
among them that require grad get their gradients too. The other arguments
(spacing, dt, locations, keyword options) are passed through. Importing
wavecore does not import torch; this module does.

    import torch, wavecore.torch as wt
    eps = torch.full((60, 80), 4.0, dtype=torch.float64, requires_grad=True)
    data = wt.tm2d(eps, sigma, mu, 0.01, dt, amplitude, src, rec, stencil=4)
    loss = (data - observed).square().sum()
    loss.backward()          # eps.grad
"""

from __future__ import annotations

import numpy as np
import torch

from ._debye import Debye, DebyeLaw, pole_arrays
from ._maxwell3d import maxwell3d as _maxwell3d
from ._tm2d import tm2d as _tm2d
from .gradients import GRADIENT_TARGETS

__all__ = ["tm2d", "maxwell3d"]

#: The material law's arrays, then source_amplitude (the order of the tensors).
_GRAD_NAMES = GRADIENT_TARGETS
#: The same with Debye poles (``dispersion=``).
_DEBYE_NAMES = DebyeLaw.inputs + ("source_amplitude",)


def _to_array(tensor):
    """A numpy (CPU) or CuPy (CUDA) view of a tensor's data."""
    tensor = tensor.detach()
    if tensor.is_cuda:
        import cupy  # noqa: PLC0415 - CUDA tensors go through CuPy

        return cupy.from_dlpack(tensor.contiguous())
    return tensor.contiguous().numpy()


def _to_tensor(array, like: torch.Tensor) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(array))
    else:  # CuPy
        out = torch.from_dlpack(array)
    return out.to(device=like.device, dtype=like.dtype)


class _Run(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, args, options, names, *tensors):
        wanted = tuple(n for n, t in zip(names, tensors) if t.requires_grad)
        arrays = [_to_array(t) for t in tensors]
        if len(arrays) > 4:  # epsilon, sigma, mu, delta_epsilon, tau, source_amplitude
            options = {**options, "dispersion": Debye(*map(np.asarray, arrays[3:5]))}
        result = fn(*arrays[:3], args[0], args[1], arrays[-1], *args[2:],
                    requires_grad=wanted, **options)
        ctx.result, ctx.wanted, ctx.likes, ctx.names = result, wanted, tensors, names
        return _to_tensor(result.receiver_data, tensors[0])

    @staticmethod
    def backward(ctx, grad_output):
        if not ctx.wanted:
            return (None,) * (4 + len(ctx.likes))
        # The vjp is itself a Function of the cotangent and the inputs, so that
        # autograd can differentiate it again (create_graph=True: Hessian
        # products through second_vjp and jvp).
        return (None, None, None, None,
                *_Vjp.apply(ctx.result, ctx.wanted, ctx.names, grad_output, *ctx.likes))


class _Vjp(torch.autograd.Function):
    """vjp(g) of a run as a function of g and of the run's inputs. Its own
    backward, along a cotangent u in the inputs' space, is d<u, J^T g> =
    (J u for g, second_vjp(u, g) for the inputs): the run's kept snapshots
    serve every call (keep=True: autograd may call backward more than once,
    retain_graph or gradcheck; the snapshots are freed with the graph)."""

    @staticmethod
    def forward(ctx, result, wanted, names, grad_output, *likes):
        g = _to_array(grad_output)
        grads = result.vjp(g, keep=True)
        ctx.result, ctx.wanted, ctx.names, ctx.likes, ctx.g = result, wanted, names, likes, g
        return tuple(_to_tensor(getattr(grads, n), like) if n in wanted else None
                     for n, like in zip(names, likes))

    @staticmethod
    def backward(ctx, *cotangents):
        directions = {n: _to_array(u) for n, u in zip(ctx.names, cotangents)
                      if n in ctx.wanted and u is not None and bool(torch.any(u != 0))}
        none = (None, None, None)
        if not directions:
            return (*none, None, *(None for _ in ctx.likes))
        result = ctx.result
        jv = _to_tensor(result.jvp(keep=True, **directions), ctx.likes[0])
        if result.gradient.store is None:  # only source_amplitude: the data are linear in it
            return (*none, jv, *(None for _ in ctx.likes))
        second = result.second_vjp(directions, ctx.g, keep=True)
        return (*none, jv, *(_to_tensor(getattr(second, n), like) if n in ctx.wanted else None
                             for n, like in zip(ctx.names, ctx.likes)))


def _call(fn, epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
          receiver_location, options):
    for name in ("requires_grad",):
        if name in options:
            raise TypeError(f"{name} is set by the tensors' requires_grad in wavecore.torch")
    locations = [np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
                 for x in (source_location, receiver_location)]
    options = dict(options)
    dispersion = options.pop("dispersion", None)
    if dispersion is None:
        return _Run.apply(fn, (grid_spacing, dt, *locations), options, _GRAD_NAMES, epsilon,
                          sigma, mu, source_amplitude)
    poles = [x if isinstance(x, torch.Tensor) else
             torch.as_tensor(np.asarray(x), dtype=epsilon.dtype, device=epsilon.device)
             for x in pole_arrays(dispersion)]
    return _Run.apply(fn, (grid_spacing, dt, *locations), options, _DEBYE_NAMES, epsilon,
                      sigma, mu, *poles, source_amplitude)


def tm2d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
         receiver_location, **options) -> torch.Tensor:
    """:func:`wavecore.tm2d` on tensors; returns the receiver data (differentiable)."""
    return _call(_tm2d, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                 source_location, receiver_location, options)


def maxwell3d(epsilon, sigma, mu, grid_spacing, dt, source_amplitude, source_location,
              receiver_location, **options) -> torch.Tensor:
    """:func:`wavecore.maxwell3d` on tensors; returns the receiver data (differentiable)."""
    return _call(_maxwell3d, epsilon, sigma, mu, grid_spacing, dt, source_amplitude,
                 source_location, receiver_location, options)
