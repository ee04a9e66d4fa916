"""Special functions torch lacks, differentiable: ``D(x) = exp(x) E1(x)``.

de Boer's finite-thickness secondary-fluorescence formula is written with
``D(x) = e^x E1(x)`` (real part for ``x < 0``, where ``E1(-y) = -Ei(y)``).
Pieces, each accurate to about 1e-7 relative:

- ``x >= 1``: Abramowitz and Stegun 5.1.56, a rational approximation of
  ``x e^x E1(x)`` (absolute error below 5e-8);
- ``0 < x < 1``: the power series ``E1(x) = -gamma - ln x - sum (-x)^n / (n n!)``;
- ``-20 < x < 0``: ``Ei(y) = gamma + ln y + sum y^n / (n n!)`` (all terms positive);
- ``x <= -20``: the asymptotic series ``Ei(y) ~ e^y / y sum k! / y^k``.
"""

from __future__ import annotations

import torch

EULER_GAMMA = 0.57721566490153286061

_A = (8.5733287401, 18.0590169730, 8.6347608925, 0.2677737343)
_B = (9.5733223454, 25.6329561486, 21.0996530827, 3.9584969228)

_SERIES_TERMS = 40
_EI_TERMS = 80
_ASYMPTOTIC_TERMS = 12
_ASYMPTOTIC_FROM = 20.0


def _large_positive(x: torch.Tensor) -> torch.Tensor:
    num = (((x + _A[0]) * x + _A[1]) * x + _A[2]) * x + _A[3]
    den = (((x + _B[0]) * x + _B[1]) * x + _B[2]) * x + _B[3]
    return num / (den * x)


def _small_positive(x: torch.Tensor) -> torch.Tensor:
    term = torch.ones_like(x)
    total = torch.zeros_like(x)
    for n in range(1, _SERIES_TERMS + 1):
        term = term * (-x) / n
        total = total + term / n
    e1 = -EULER_GAMMA - torch.log(x) - total
    return torch.exp(x) * e1


def _moderate_negative(y: torch.Tensor) -> torch.Tensor:
    """``D(-y) = -e^{-y} Ei(y)`` for ``0 < y < 20``."""
    term = torch.ones_like(y)
    total = torch.zeros_like(y)
    for n in range(1, _EI_TERMS + 1):
        term = term * y / n
        total = total + term / n
    return -torch.exp(-y) * (EULER_GAMMA + torch.log(y) + total)


def _large_negative(y: torch.Tensor) -> torch.Tensor:
    """``D(-y) ~ -(1/y) sum k! / y^k`` for ``y >= 20``."""
    term = torch.ones_like(y)
    total = torch.ones_like(y)
    for k in range(1, _ASYMPTOTIC_TERMS + 1):
        term = term * k / y
        total = total + term
    return -total / y


def exp_e1(x: torch.Tensor) -> torch.Tensor:
    """``exp(x) * E1(x)`` (real part), elementwise and differentiable; ``x != 0``.

    Every branch is evaluated on inputs clamped into its own range, so that
    gradients of the unused branches stay finite.
    """
    big = _large_positive(x.clamp_min(1.0))
    small = _small_positive(x.clamp(1e-30, 1.0))
    y = (-x).clamp_min(1e-30)
    moderate = _moderate_negative(y.clamp_max(_ASYMPTOTIC_FROM))
    far = _large_negative(y.clamp_min(_ASYMPTOTIC_FROM))
    negative = torch.where(y < _ASYMPTOTIC_FROM, moderate, far)
    positive = torch.where(x >= 1.0, big, small)
    return torch.where(x > 0, positive, negative)
