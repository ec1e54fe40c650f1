"""The Debye complex permittivity and a least-squares fit of Debye poles to measured data.

Sign convention: time dependence ``e^{+j w t}`` (numpy's FFT sign, the convention of
``tests/test_tm2d_analytic.py``), so a lossy medium has a *negative* imaginary part::

    eps(w) = eps_inf + sum_p delta_eps_p / (1 + j w tau_p) - j sigma / (w EP0)

(relative permittivity; ``tau_p`` in seconds, ``sigma`` in S/m, ``w = 2 pi f``). This is
the frequency response of the relaxation ``tau_p dP_p/dt + P_p = EP0 delta_eps_p E`` that
``wavecore.Debye`` discretizes. Data written as ``eps' + j eps''`` with ``eps'' > 0`` (the
``e^{-i w t}`` physics convention) must be conjugated first; :func:`fit_debye` refuses
data whose imaginary parts are mostly positive.

SciPy (the ``fwi`` or ``test`` extra) is needed by :func:`fit_debye` only and is imported
when it is called, never when wavecore is imported.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from ._checks import integer
from .constants import EP0

__all__ = ["DebyeFit", "debye_permittivity", "fit_debye"]


def _frequencies(frequencies, name="frequencies", *, one_d):
    if np.iscomplexobj(frequencies):
        raise TypeError(f"{name} must be real (Hz), got a complex array")
    f = np.asarray(frequencies, dtype=np.float64)
    if one_d and f.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of frequencies in Hz, got shape {f.shape}")
    if f.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(f)) or not np.all(f > 0):
        bad = f[~(np.isfinite(f) & (f > 0))].ravel()[0]
        raise ValueError(f"{name} must be finite and > 0 (Hz), got {bad!r}")
    return f


def _poles(delta_epsilon, tau):
    """``delta_epsilon``, ``tau`` as float64 arrays ``[P, *shape]`` (a scalar is one pole)."""
    de = np.asarray(delta_epsilon, dtype=np.float64)
    ta = np.asarray(tau, dtype=np.float64)
    if de.shape != ta.shape:
        raise ValueError(f"delta_epsilon and tau must have the same shape, got {de.shape} "
                         f"and {ta.shape}")
    if de.ndim == 0:
        de, ta = de[None], ta[None]
    if not np.all(np.isfinite(de)) or not np.all(de >= 0):
        raise ValueError(f"delta_epsilon must be finite and >= 0 (relative), got "
                         f"{de[~(np.isfinite(de) & (de >= 0))].ravel()[0]!r}")
    if not np.all(np.isfinite(ta)) or not np.all(ta > 0):
        raise ValueError(f"tau must be finite and > 0 (seconds), got "
                         f"{ta[~(np.isfinite(ta) & (ta > 0))].ravel()[0]!r}")
    return de, ta


def debye_permittivity(frequencies, epsilon_inf, delta_epsilon, tau, sigma=0.0):
    """Complex relative permittivity of a multi-pole Debye medium (``e^{+j w t}``).

    ``eps(f) = eps_inf + sum_p delta_epsilon_p / (1 + j w tau_p) - j sigma / (w EP0)``,
    ``w = 2 pi f``; the imaginary part is negative for a lossy medium.

    Parameters
    ----------
    frequencies : float or array_like, shape F
        Frequencies in Hz, finite and > 0.
    epsilon_inf : float or array_like
        Infinite-frequency relative permittivity (the ``epsilon`` of a dispersive run).
    delta_epsilon, tau : float or array_like, shape ``[P, *S]``
        Pole strengths (relative, >= 0; static permittivity ``eps_inf + sum_p
        delta_epsilon_p``) and relaxation times (seconds, > 0). The first axis is the pole
        axis; a scalar is one pole. Both must have the same shape.
    sigma : float or array_like
        Static conductivity, S/m, >= 0.

    Returns
    -------
    numpy.ndarray, complex128, shape ``[*F, *S']``
        ``S'`` is the broadcast of ``S`` with the shapes of ``epsilon_inf`` and ``sigma``.
    """
    f = _frequencies(frequencies, one_d=False)
    de, ta = _poles(delta_epsilon, tau)
    eps_inf = np.asarray(epsilon_inf, dtype=np.float64)
    sig = np.asarray(sigma, dtype=np.float64)
    if not np.all(np.isfinite(eps_inf)) or not np.all(eps_inf > 0):
        raise ValueError("epsilon_inf must be finite and > 0 (relative)")
    if not np.all(np.isfinite(sig)) or not np.all(sig >= 0):
        raise ValueError("sigma must be finite and >= 0 (S/m)")
    trailing = np.broadcast_shapes(de.shape[1:], eps_inf.shape, sig.shape)
    w = 2 * np.pi * f.reshape(f.shape + (1,) * len(trailing))
    total = eps_inf - 1j * sig / (w * EP0)
    for p in range(de.shape[0]):
        total = total + de[p] / (1 + 1j * w * ta[p])
    return total


@dataclass(frozen=True, eq=False)
class DebyeFit:
    """Result of :func:`fit_debye`: a Debye model of the measured permittivity.

    Attributes
    ----------
    epsilon_inf : float
        Infinite-frequency relative permittivity (pass it as ``epsilon``).
    delta_epsilon : numpy.ndarray, float64, shape [P]
        Pole strengths (relative, >= 0), in the order of ``tau``.
    tau : numpy.ndarray, float64, shape [P]
        Relaxation times in seconds, ascending.
    sigma : float
        Static conductivity, S/m (0 unless fitted or given).
    rms_misfit, max_misfit : float
        Root-mean-square and largest relative misfit ``|eps_fit - eps_data| / |eps_data|``
        over the fitted frequencies.
    """

    epsilon_inf: float
    delta_epsilon: np.ndarray
    tau: np.ndarray
    sigma: float
    rms_misfit: float
    max_misfit: float

    @property
    def n_poles(self) -> int:
        return int(self.tau.shape[0])

    @property
    def epsilon_static(self) -> float:
        """Static (zero-frequency) relative permittivity ``eps_inf + sum delta_epsilon``."""
        return float(self.epsilon_inf + self.delta_epsilon.sum())

    def permittivity(self, frequencies):
        """The fitted complex relative permittivity at ``frequencies`` (Hz)."""
        return debye_permittivity(frequencies, self.epsilon_inf, self.delta_epsilon,
                                  self.tau, self.sigma)

    def pole_arrays(self, like, dtype=None):
        """``(delta_epsilon, tau)``, each ``[P, *shape]``, uniform over a model.

        ``like`` is a model array (its shape and dtype are used) or a shape tuple
        (``dtype`` defaults to float64). The arrays are what ``wavecore.Debye`` takes.
        """
        if isinstance(like, (tuple, list)):
            shape = tuple(operator.index(n) for n in like)
            dtype = np.float64 if dtype is None else dtype
        else:
            shape = tuple(np.shape(like))
            dtype = getattr(like, "dtype", np.float64) if dtype is None else dtype
        full = (self.n_poles, *shape)
        de = np.broadcast_to(self.delta_epsilon.reshape((-1,) + (1,) * len(shape)), full)
        ta = np.broadcast_to(self.tau.reshape((-1,) + (1,) * len(shape)), full)
        return np.array(de, dtype=dtype), np.array(ta, dtype=dtype)

    def debye(self, like, dtype=None):
        """``wavecore.Debye`` of these poles over a model (see :meth:`pole_arrays`)."""
        from . import Debye  # the engine's law, looked up when called

        return Debye(*self.pole_arrays(like, dtype))

    def __repr__(self):
        de = ", ".join(f"{v:.4g}" for v in self.delta_epsilon)
        ta = ", ".join(f"{v:.4g}" for v in self.tau)
        return (f"DebyeFit(epsilon_inf={self.epsilon_inf:.4g}, delta_epsilon=[{de}], "
                f"tau=[{ta}] s, sigma={self.sigma:.4g} S/m, rms_misfit={self.rms_misfit:.2e}, "
                f"max_misfit={self.max_misfit:.2e})")


def _check_fit_inputs(frequencies, complex_permittivity, n_poles, sigma, tau_bounds):
    f = _frequencies(frequencies, one_d=True)
    data = np.asarray(complex_permittivity)
    if data.shape != f.shape:
        raise ValueError(f"complex_permittivity must have the shape of frequencies {f.shape}, "
                         f"got {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise TypeError(f"complex_permittivity must be numeric, got dtype {data.dtype}")
    data = data.astype(np.complex128)
    if not np.all(np.isfinite(data)):
        raise ValueError("complex_permittivity must be finite")
    if np.any(data == 0):
        raise ValueError("complex_permittivity must be nonzero (the misfit is relative)")
    if np.sum(data.imag) > 0:
        raise ValueError("complex_permittivity has mostly positive imaginary parts: wavecore "
                         "uses e^{+j w t}, where a lossy medium has eps' - j eps''; pass "
                         "np.conj(data) if your data use eps' + j eps''")
    n = integer(n_poles, "n_poles", minimum=1)
    if sigma is None or (isinstance(sigma, str) and sigma == "fit"):
        fixed_sigma = 0.0 if sigma is None else None
    elif isinstance(sigma, str):
        raise ValueError(f"sigma must be None, 'fit' or a conductivity >= 0 (S/m), got {sigma!r}")
    else:
        fixed_sigma = float(sigma)
        if not np.isfinite(fixed_sigma) or fixed_sigma < 0:
            raise ValueError(f"sigma must be finite and >= 0 (S/m), got {sigma!r}")
    if tau_bounds is None:
        lo, hi = 1e-3 / (2 * np.pi * f.max()), 1e3 / (2 * np.pi * f.min())
    else:
        try:
            lo, hi = (float(v) for v in tau_bounds)
        except (TypeError, ValueError):
            raise ValueError(f"tau_bounds must be (min, max) in seconds, got {tau_bounds!r}") \
                from None
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
            raise ValueError(f"tau_bounds must satisfy 0 < min < max (seconds), got {tau_bounds!r}")
    unknowns = 1 + 2 * n + (fixed_sigma is None)
    distinct = np.unique(f).size
    if 2 * distinct < unknowns:
        raise ValueError(f"{unknowns} unknowns (epsilon_inf, {n} x (delta_epsilon, tau)"
                         f"{', sigma' if fixed_sigma is None else ''}) need at least "
                         f"{(unknowns + 1) // 2} distinct frequencies, got {distinct}")
    return f, data, n, fixed_sigma, (lo, hi)


def fit_debye(frequencies, complex_permittivity, n_poles, *, sigma=None, tau_bounds=None,
              max_nfev=None):
    """Fit ``n_poles`` Debye poles (and optionally a conductivity) to complex permittivity data.

    Minimizes the relative residual ``(eps_model(f) - eps_data(f)) / |eps_data(f)|`` (real
    and imaginary parts, every frequency weighted alike) with
    ``scipy.optimize.least_squares`` (trust-region reflective, analytic Jacobian) over
    ``epsilon_inf >= 1``, ``delta_epsilon >= 0``, ``log tau`` within ``tau_bounds`` and
    ``sigma >= 0``. It starts from relaxation times spread log-uniformly over the band
    (``1 / (2 pi f)``) with the linear parameters solved for them, tries that start
    shifted by half a spacing either way, and keeps the best.

    Parameters
    ----------
    frequencies : array_like, shape [F]
        Frequencies in Hz, finite and > 0.
    complex_permittivity : array_like, complex, shape [F]
        Relative permittivity, ``e^{+j w t}`` convention (``eps' - j eps''``, imaginary
        parts <= 0 for a lossy medium), finite and nonzero.
    n_poles : int
        Number of Debye poles, >= 1. The unknowns (``1 + 2 n_poles``, plus one for a fitted
        sigma) must not outnumber the ``2 F`` real data.
    sigma : None, "fit" or float
        ``None``: no conductivity (0); ``"fit"``: fit a static conductivity (S/m) too; a
        float: a known conductivity held fixed.
    tau_bounds : (float, float), optional
        Range of the relaxation times, seconds. Default ``(1e-3 / (2 pi f_max),
        1e3 / (2 pi f_min))``. A run needs its internal step below ``min(tau)``: raise the
        lower bound to keep fitted poles usable at a given step.
    max_nfev : int, optional
        Evaluation limit of each ``least_squares`` call (its default otherwise).

    Returns
    -------
    DebyeFit
        ``epsilon_inf``, ``delta_epsilon`` [P], ``tau`` [P] (ascending), ``sigma``,
        ``rms_misfit``, ``max_misfit``; ``.debye(model)`` gives the ``wavecore.Debye``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes or values (checked before any fitting), too few frequencies, data in
        the ``e^{-i w t}`` convention.
    ImportError
        When SciPy is not installed.
    """
    f, data, n, fixed_sigma, (tau_lo, tau_hi) = _check_fit_inputs(
        frequencies, complex_permittivity, n_poles, sigma, tau_bounds)
    from scipy.optimize import least_squares, lsq_linear

    w = 2 * np.pi * f
    scale = 1.0 / np.abs(data)
    w_ref = 2 * np.pi * np.sqrt(f.min() * f.max())  # sigma is fitted as s = sigma / (EP0 w_ref)
    fit_sigma = fixed_sigma is None
    fixed_term = 0.0 if fit_sigma else -1j * fixed_sigma / (w * EP0)

    def unpack(x):
        s = x[-1] if fit_sigma else None
        return x[0], x[1:1 + n], np.exp(x[1 + n:1 + 2 * n]), s

    def model(x):
        eps_inf, de, ta, s = unpack(x)
        m = eps_inf + fixed_term + (de / (1 + 1j * np.outer(w, ta))).sum(axis=1)
        if fit_sigma:
            m = m - 1j * s * w_ref / w
        return m

    def residual(x):
        r = (model(x) - data) * scale
        return np.concatenate([r.real, r.imag])

    def jacobian(x):
        _, de, ta, _ = unpack(x)
        g = 1 / (1 + 1j * np.outer(w, ta))                         # [F, P]
        cols = [np.ones_like(w, dtype=complex)[:, None], g, de * (g**2 - g)]  # d/dlog tau
        if fit_sigma:
            cols.append((-1j * w_ref / w)[:, None])
        jc = np.concatenate(cols, axis=1) * scale[:, None]
        return np.concatenate([jc.real, jc.imag], axis=0)

    lower = np.concatenate([[1.0], np.zeros(n), np.full(n, np.log(tau_lo))]
                           + ([[0.0]] if fit_sigma else []))
    upper = np.concatenate([[np.inf], np.full(n, np.inf), np.full(n, np.log(tau_hi))]
                           + ([[np.inf]] if fit_sigma else []))

    def start(log_tau):
        """Linear parameters (eps_inf, delta_eps, s) for fixed taus: bounded linear LS."""
        ta = np.exp(log_tau)
        g = 1 / (1 + 1j * np.outer(w, ta))
        cols = [np.ones_like(w, dtype=complex)[:, None], g]
        if fit_sigma:
            cols.append((-1j * w_ref / w)[:, None])
        a = np.concatenate(cols, axis=1) * scale[:, None]
        b = (data - fixed_term) * scale
        lin_lo = np.concatenate([[1.0], np.zeros(n)] + ([[0.0]] if fit_sigma else []))
        sol = lsq_linear(np.concatenate([a.real, a.imag]), np.concatenate([b.real, b.imag]),
                         bounds=(lin_lo, np.inf)).x
        x = np.concatenate([sol[:1 + n], log_tau] + ([sol[-1:]] if fit_sigma else []))
        return np.clip(x, lower, upper)

    band = np.log(1 / (2 * np.pi * f.max())), np.log(1 / (2 * np.pi * f.min()))
    spacing = (band[1] - band[0]) / n
    centres = band[0] + spacing * (np.arange(n) + 0.5)
    best = None
    for shift in (0.0, -0.5 * spacing, 0.5 * spacing):
        log_tau = np.clip(centres + shift, np.log(tau_lo), np.log(tau_hi))
        x0 = start(log_tau)
        sol = least_squares(residual, x0, jac=jacobian, bounds=(lower, upper), method="trf",
                            x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14,
                            max_nfev=max_nfev)
        if best is None or sol.cost < best.cost:
            best = sol
    eps_inf, de, ta, s = unpack(best.x)
    order = np.argsort(ta)
    rel = np.abs(model(best.x) - data) * scale
    de_out, ta_out = np.array(de[order]), np.array(ta[order])
    de_out.flags.writeable = False
    ta_out.flags.writeable = False
    return DebyeFit(
        epsilon_inf=float(eps_inf), delta_epsilon=de_out, tau=ta_out,
        sigma=float(s * EP0 * w_ref) if fit_sigma else float(fixed_sigma),
        rms_misfit=float(np.sqrt(np.mean(rel**2))), max_misfit=float(rel.max()))
