"""The coefficient table: header freshness, correctness, adjointness of the pairs."""

import numpy as np
import pytest
from fractions import Fraction

from wavecore import stencils
from wavecore.backends.reference_tm2d import diff_to_half, diff_to_int


def test_generated_header_is_current():
    assert stencils.HEADER_PATH.read_text() == stencils.generate_header(), (
        "wavecore/_csrc/wc_stencil.h is stale: run `python -m wavecore.stencils`")


def _taylor_coefficients(order):
    """Solve the staggered Taylor conditions exactly: sum_k c_k (2k-1)^(2j-1) = delta_j0."""
    m = order // 2
    rows = [[Fraction(2 * k - 1) ** (2 * j + 1) for k in range(1, m + 1)] for j in range(m)]
    rhs = [Fraction(1)] + [Fraction(0)] * (m - 1)
    # Gaussian elimination in exact arithmetic.
    a = [r[:] + [b] for r, b in zip(rows, rhs)]
    for i in range(m):
        p = next(r for r in range(i, m) if a[r][i] != 0)
        a[i], a[p] = a[p], a[i]
        for r in range(m):
            if r != i and a[r][i] != 0:
                f = a[r][i] / a[i][i]
                a[r] = [x - f * y for x, y in zip(a[r], a[i])]
    return tuple(a[i][m] / a[i][i] for i in range(m))


@pytest.mark.parametrize("order", stencils.ORDERS)
def test_coefficients_are_the_staggered_taylor_solution(order):
    # d/dx over a half-cell stencil: c_k multiplies f(x + (k - 1/2) h) - f(x - (k - 1/2) h),
    # so the conditions are on odd powers of (2k - 1).
    assert stencils.COEFFICIENTS[order] == _taylor_coefficients(order)


@pytest.mark.parametrize("order", stencils.ORDERS)
def test_derivative_converges_at_its_order(order):
    errors = []
    for n in (40, 80):
        h = 1.0 / n
        x = np.arange(-8, n + 8) * h
        f = np.sin(2 * np.pi * x)
        d = diff_to_half(f, -1, 8, n + 8, stencils.coefficients(order)) / h
        exact = 2 * np.pi * np.cos(2 * np.pi * (x[8 : n + 8] + h / 2))
        errors.append(np.abs(d - exact).max())
    observed = np.log2(errors[0] / errors[1])
    assert observed == pytest.approx(order, abs=0.3), errors


@pytest.mark.parametrize("order", stencils.ORDERS)
def test_staggered_pair_is_negative_adjoint(order):
    # D+ maps nodes to half nodes, D- half nodes to nodes; with the wall layout
    # (nodes [M, n-M], half nodes [M, n-M-1], zero elsewhere) D- = -(D+)^T.
    m = order // 2
    n = 37
    rng = np.random.default_rng(order)
    a = np.zeros(n)
    b = np.zeros(n)
    a[m : n - m + 1] = rng.standard_normal(n - 2 * m + 1)
    b[m : n - m] = rng.standard_normal(n - 2 * m)
    c = stencils.coefficients(order)
    dp_a = diff_to_half(a, -1, m, n - m, c)           # half nodes [M, n-M-1]
    dm_b = diff_to_int(b, -1, m, n - m + 1, c)        # nodes [M, n-M]
    lhs = np.dot(dp_a, b[m : n - m])
    rhs = -np.dot(a[m : n - m + 1], dm_b)
    assert abs(lhs - rhs) <= 1e-13 * max(abs(lhs), 1.0)


def test_coefficient_sum_and_half_width():
    assert stencils.coefficient_sum(2) == 1.0
    assert stencils.coefficient_sum(4) == pytest.approx(9 / 8 + 1 / 24)
    assert [stencils.half_width(o) for o in stencils.ORDERS] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="stencil"):
        stencils.half_width(3)
