"""Special functions torch lacks, differentiable: ``D(x) = exp(x) E1(x)``.

de Boer's finite-thickness secondary-fluorescence formula is written with
``D(x) = e^x E1(x)`` (real part for ``x < 0``, where ``E1(-y) = -Ei(y)``).
Pieces, each accurate to 1e-10 relative or better (against mpmath; the rational
approximation of Abramowitz and Stegun 5.1.56 and a shorter asymptotic series
used before gave 1e-7, which moved a thin rock layer's secondary fluorescence
under a tube by about 1e-9):

- ``x >= 1``: the continued fraction ``e^x E1(x) = 1 / (x + 1 - 1 / (x + 3 - 4 /
  (x + 5 - ...)))``, 60 levels evaluated from the bottom;
- ``0 < x < 1``: the power series ``E1(x) = -gamma - ln x - sum (-x)^n / (n n!)``;
- ``-30 < x < 0``: ``Ei(y) = gamma + ln y + sum y^n / (n n!)`` (all terms positive);
- ``x <= -30``: the asymptotic series ``Ei(y) ~ e^y / y sum k! / y^k``.

Where the formula pairs ``D(x)`` with ``e^x ln|x|`` (their logarithms cancel at
``x = 0``, as when a photon scattered at the beam energy meets a beam at normal
incidence), :func:`e1_log_small` gives ``E1(x) + ln|x|`` without the singularity.
"""

from __future__ import annotations

import torch

EULER_GAMMA = 0.57721566490153286061

_FRACTION_LEVELS = 60
_SERIES_TERMS = 40
_EI_TERMS = 100
_ASYMPTOTIC_TERMS = 16
_ASYMPTOTIC_FROM = 30.0


def _large_positive(x: torch.Tensor) -> torch.Tensor:
    """``e^x E1(x)`` for ``x >= 1`` by its continued fraction, from the bottom up."""
    tail = x + (2 * _FRACTION_LEVELS + 1)
    for k in range(_FRACTION_LEVELS, 0, -1):
        tail = x + (2 * k - 1) - k * k / tail
    return 1.0 / tail


def _series(x: torch.Tensor) -> torch.Tensor:
    """``sum_{n >= 1} (-x)^n / (n n!)``, for ``|x| <= 1``."""
    term = torch.ones_like(x)
    total = torch.zeros_like(x)
    for n in range(1, _SERIES_TERMS + 1):
        term = term * (-x) / n
        total = total + term / n
    return total


def _small_positive(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x) * (-EULER_GAMMA - torch.log(x) - _series(x))


def e1_log_small(x: torch.Tensor) -> torch.Tensor:
    """``E1(x) + ln|x|`` (real part) for ``|x| <= 1``: ``-(gamma + sum (-x)^n / (n n!))``,
    smooth through ``x = 0``; differentiable (``x`` is clamped into ``[-1, 1]``, so
    that a value computed only to be discarded stays finite)."""
    return -(EULER_GAMMA + _series(x.clamp(-1.0, 1.0)))


def _moderate_negative(y: torch.Tensor) -> torch.Tensor:
    """``D(-y) = -e^{-y} Ei(y)`` for ``0 < y < 30``."""
    term = torch.ones_like(y)
    total = torch.zeros_like(y)
    for n in range(1, _EI_TERMS + 1):
        term = term * y / n
        total = total + term / n
    return -torch.exp(-y) * (EULER_GAMMA + torch.log(y) + total)


def _large_negative(y: torch.Tensor) -> torch.Tensor:
    """``D(-y) ~ -(1/y) sum k! / y^k`` for ``y >= 30``."""
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
