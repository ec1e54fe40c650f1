"""Second-order pieces of a misfit: Gauss-Newton Hessian-vector products and the
inner conjugate-gradient solve of a Gauss-Newton step.

For a misfit ``Phi(m) = phi(F(m))`` of the forward map ``F`` (a run's receiver
data), the Gauss-Newton Hessian is ``J^T H_phi J`` with ``J`` the Jacobian of
``F`` and ``H_phi`` the data-space Hessian of ``phi``
(:data:`~wavecore.inversion.misfit.HESSIANS`). :func:`gauss_newton_hvp` applies it
to a model direction with one ``jvp`` (the tangent sweep) and one ``vjp`` (the
adjoint sweep) of the same forward run, whose snapshots serve every product.
Because ``jvp`` is the exact transpose of ``vjp`` for every storage setting
(bf16 snapshots and sampling intervals included), the operator is symmetric
to rounding, which the conjugate-gradient loop relies on.

The full Hessian adds ``grad_m <grad phi, J(m) v>`` (``result.second_vjp``):
:func:`hvp` applies ``J^T H_phi J v + grad_m <grad phi, J(m) v>`` in three sweeps of the
same forward run: the second-order adjoint's (its tangent sweep gives ``J v``,
and the ``vjp`` of ``H_phi J v`` rides on its last sweep). It is symmetric
to rounding with exact snapshots (``model_gradient_sampling_interval=1``, no
compression) and, unlike the Gauss-Newton operator, may be indefinite far from
the solution: the truncated-Newton method stops its inner solve there.
"""

from __future__ import annotations

import numpy as np

from .._sweeps import check_capable
from .misfit import HESSIANS, MISFITS

__all__ = ["gauss_newton_hvp", "hvp", "conjugate_gradient", "forcing_term"]


def _hessian_of(misfit):
    if isinstance(misfit, str):
        if misfit not in HESSIANS:
            raise ValueError(f"misfit must be one of {sorted(HESSIANS)} or a callable "
                             f"(synthetic, observed, direction) -> H direction, got {misfit!r}")
        return HESSIANS[misfit]
    if not callable(misfit):
        raise TypeError(f"misfit must be a name or a callable, got {type(misfit).__name__}")
    return misfit


def gauss_newton_hvp(result, direction: dict, observed, misfit="l2", *, keep: bool = True):
    """``J^T H_phi J v``: the Gauss-Newton Hessian of ``misfit`` at the model of
    ``result`` (a run with ``requires_grad`` covering the directions) applied to
    ``direction`` ({input: array shaped like the input}).

    ``misfit`` is ``"l2"``, ``"ncc"``, ``"huber"`` or a callable
    ``(synthetic, observed, d_synthetic) -> H_phi d_synthetic``. Returns a
    :class:`~wavecore.gradients.Gradients` (the product in every
    ``requires_grad`` input; inputs outside the direction receive their rows of
    the operator). ``keep`` keeps the snapshots for more products (default,
    the usual inner loop; call ``result.close()`` after the last one).
    """
    hessian = _hessian_of(misfit)
    jv = result.jvp(**direction, keep=True)
    data = np.asarray(result.receiver_data)
    h = np.asarray(hessian(data, np.asarray(observed), np.asarray(jv)))
    return result.vjp(h.astype(data.dtype), keep=keep)


def hvp(result, direction: dict, observed, misfit="l2", *, keep: bool = True):
    """The full Hessian of ``misfit`` at the model of ``result`` applied to
    ``direction``: ``J^T H_phi J v + grad_m <grad phi, J(m) v>``.

    ``misfit`` is ``"l2"``, ``"ncc"``, ``"huber"`` or a pair of callables
    ``(misfit(synthetic, observed) -> (value, gradient), hessian(synthetic,
    observed, d_synthetic) -> H_phi d_synthetic)``. Returns a
    :class:`~wavecore.gradients.Gradients`. ``keep`` as in
    :func:`gauss_newton_hvp`. It costs one ``second_vjp``, three sweeps
    (docs/second-order.md gives the measured cost).
    """
    if isinstance(misfit, str):
        function, hessian = MISFITS.get(misfit), _hessian_of(misfit)
    elif isinstance(misfit, tuple) and len(misfit) == 2 and all(map(callable, misfit)):
        function, hessian = misfit
    else:
        raise TypeError(f"misfit must be a name or a (misfit, hessian) pair of callables, "
                        f"got {type(misfit).__name__}")
    check_capable("second_vjp", result, directions=tuple(direction))
    data = np.asarray(result.receiver_data)
    observed = np.asarray(observed)
    _, gradient = function(data, observed)

    def h_phi(jv):  # second_vjp's tangent sweep is the jvp: no sweep of its own
        return np.asarray(hessian(data, observed, np.asarray(jv))).astype(data.dtype)

    return result.gradient.second_vjp(direction, np.asarray(gradient).astype(data.dtype),
                                      keep=keep, vjp_cotangent=h_phi)


def forcing_term(g_norm: float, g_norm_prev: float | None, eta_prev: float | None,
                 eta_max: float = 0.5, gamma: float = 0.9, alpha: float = 2.0) -> float:
    """The relative tolerance of the k-th inner solve (Eisenstat and Walker 1996,
    choice 2: ``gamma (|g_k| / |g_k-1|)^alpha``, safeguarded by
    ``gamma eta_k-1^alpha`` when that is above 0.1, at most ``eta_max``): loose
    far from the solution, tight near it."""
    if g_norm_prev is None or eta_prev is None or g_norm_prev == 0:
        return eta_max
    eta = gamma * (g_norm / g_norm_prev) ** alpha
    guard = gamma * eta_prev ** alpha
    if guard > 0.1:
        eta = max(eta, guard)
    return float(min(eta_max, max(eta, 1e-6)))


def conjugate_gradient(apply, b: np.ndarray, tolerance: float, max_iterations: int):
    """Solve ``A x = b`` for a symmetric ``A`` given as ``apply(v) = A v`` until
    ``|b - A x| <= tolerance |b|``, stopping at the first direction of
    non-positive curvature (``p^T A p <= 0``: the iterate so far, or ``b`` on
    the first iteration, is returned). Returns ``(x, iterations, reason)`` with
    reason ``"converged"``, ``"negative curvature"`` or ``"max iterations"``."""
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = float(r @ r)
    b_norm = np.sqrt(rr)
    if b_norm == 0:
        return x, 0, "converged"
    for i in range(max_iterations):
        ap = apply(p)
        curvature = float(p @ ap)
        if curvature <= 0:
            return (x if i else b.copy()), i, "negative curvature"
        step = rr / curvature
        x = x + step * p
        r = r - step * ap
        rr_new = float(r @ r)
        if np.sqrt(rr_new) <= tolerance * b_norm:
            return x, i + 1, "converged"
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, max_iterations, "max iterations"
