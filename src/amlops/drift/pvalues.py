"""The two distribution tails the drift tests need, in plain Python: importing scipy.special for them cost a
monitor step ~0.3 s of CPU (issue 20), more than scoring every window.

- `kolmogorov_sf(y)`: P(K > y) of the Kolmogorov distribution, what scipy.special.kolmogorov returns.
- `chi2_sf(dof, x)`: P(X > x) for a chi-squared variable, scipy.special.chdtrc, i.e. the regularized upper
  incomplete gamma function Q(dof / 2, x / 2).

tests/drift/test_pvalues.py holds both to scipy on a grid that covers the centre and both tails.
"""

from __future__ import annotations

import math

_EPS = 1e-17  # below double precision relative to the sum: the next term changes nothing
_TINY = 1e-300  # keeps Lentz's continued fraction away from a division by zero


def kolmogorov_sf(y: float) -> float:
    """P(K > y), K the Kolmogorov distribution's variable. Below y = 1 through the Jacobi-theta form of the CDF,
    sqrt(2 pi) / y * sum_k exp(-(2k - 1)^2 pi^2 / (8 y^2)); from 1 on through the alternating series
    2 * sum_k (-1)^(k-1) exp(-2 k^2 y^2). Either converges in a handful of terms on its side of 1."""
    if math.isnan(y):
        return math.nan
    if y <= 0.0:
        return 1.0
    if y < 1.0:
        w = math.pi * math.pi / (8.0 * y * y)
        total = 0.0
        for k in range(1, 50):
            term = math.exp(-((2 * k - 1) ** 2) * w)
            total += term
            if term <= _EPS * total or term == 0.0:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / y * total))
    total, sign = 0.0, 1.0
    for k in range(1, 200):
        term = math.exp(-2.0 * k * k * y * y)
        total += sign * term
        if term <= _EPS * abs(total) or term == 0.0:
            break
        sign = -sign
    return min(1.0, max(0.0, 2.0 * total))


def chi2_sf(dof: float, x: float) -> float:
    """P(X > x), X chi-squared with `dof` degrees of freedom: Q(dof / 2, x / 2)."""
    if math.isnan(x) or dof <= 0:
        return math.nan
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function (Numerical Recipes' gammq): the series for P when
    x < a + 1 (there Q is not small, so 1 - P keeps its precision), else Lentz's continued fraction for Q."""
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        ap, term = a, 1.0 / a
        total = term
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) <= abs(total) * _EPS:
                break
        return min(1.0, max(0.0, 1.0 - total * math.exp(log_front)))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) <= _EPS:
            break
    return min(1.0, max(0.0, math.exp(log_front) * h))
