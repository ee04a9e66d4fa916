"""Fit quality: the Poisson deviance of a spectrum against its expectation, normalised.

The deviance between the measured spectrum (model input bins) and the spectrum
expected at the predicted composition, divided by its expectation under Poisson
noise: about 1 for a spectrum the model explains at any count level, large for
one it does not (an element it does not know, a shifted energy calibration,
pile-up). Its unit is :data:`napari_xrfquant.results.FIT_QUALITY_UNIT`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant.errors import XRFQuantError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Lowest energy fitted: below it the window and the air leave almost nothing.
MIN_FIT_KEV = 1.0
#: Grid of the expected-deviance lookup table: log10(lambda) from -4 to 4.
_LOG_LAMBDA_MIN, _LOG_LAMBDA_MAX, _TABLE_SIZE = -4.0, 4.0, 1601


@functools.lru_cache(maxsize=1)
def expected_deviance_table() -> np.ndarray:
    """``E[D(lambda)]`` of the Poisson unit deviance on a fine uniform grid of log10(lambda).

    ``D = 2 (x log(x / lambda) - (x - lambda))`` with ``x ~ Poisson(lambda)``;
    its mean is 1 for large lambda and falls to 0 as lambda -> 0, so dividing the
    deviance by it makes fit quality about 1 at every count level. The grid is
    fine enough (0.005 decades) for a nearest-neighbour lookup.
    """
    # numpy and math only: importing scipy.special took 0.37 s and scipy.stats 2.4 s,
    # most of the first quantification of a napari session
    log_lambda = np.linspace(_LOG_LAMBDA_MIN, _LOG_LAMBDA_MAX, _TABLE_SIZE)
    lam = 10.0**log_lambda
    values = np.empty_like(log_lambda)
    # each lambda's sum over the counts that matter: lambda +- (12 sqrt(lambda) + 30)
    spread = 12.0 * np.sqrt(lam) + 30.0
    low = np.maximum(np.floor(lam - spread), 0.0).astype(np.int64)
    high = np.ceil(lam + spread).astype(np.int64)
    log_factorial = np.array([math.lgamma(k + 1.0) for k in range(int(high.max()) + 1)])
    # 100 lambdas at a time, each row its own window: one vectorised pass per block
    for start in range(0, _TABLE_SIZE, 100):
        rows = slice(start, start + 100)
        width = int((high[rows] - low[rows]).max()) + 1
        counts = low[rows, None] + np.arange(width)[None, :]
        x = counts.astype(np.float64)
        block = lam[rows, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(x > 0, x * np.log(x / block), 0.0) - (x - block)
        pmf = np.exp(x * np.log(block) - block - log_factorial[counts])
        values[rows] = np.sum(pmf * 2.0 * term, axis=1)
    return values


def poisson_fit_quality(
    observed: torch.Tensor, expected: torch.Tensor, n_parameters: int
) -> torch.Tensor:
    """Poisson deviance over its expectation, per spectrum.

    Parameters
    ----------
    observed
        Counts ``(N, K)``.
    expected
        Expected counts ``(N, K)``. Fits with a free scale reproduce the
        observed total and the deviance's ``x - lambda`` terms cancel; a fit
        that does not (non-negative amounts, one held at 0) keeps them.
    n_parameters
        Parameters fitted to the spectrum; the expectation is reduced by the
        factor ``(K - n_parameters) / K`` (degrees of freedom).

    Returns
    -------
    Tensor
        ``(N,)``; about 1 when ``observed`` is Poisson noise around ``expected``.
    """
    import torch

    log_expected = torch.log(expected.clamp_min(1e-12))
    # 2 sum [x log x - x log lambda - (x - lambda)], the last term as two row sums
    deviance = 2.0 * ((torch.xlogy(observed, observed) - observed * log_expected).sum(dim=1)
                      - observed.sum(dim=1) + expected.sum(dim=1))
    mean_deviance = _expected_terms(log_expected).sum(dim=1)
    n_bins = observed.shape[1]
    dof_factor = max(n_bins - n_parameters, 1) / n_bins
    return deviance / (mean_deviance * dof_factor).clamp_min(1e-12)


def poisson_deviance(observed: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Poisson deviance of each row, ``(N,)``: ``2 sum [x log(x / lambda) - (x - lambda)]``
    (the row sums of :func:`poisson_deviance_terms`)."""
    return poisson_deviance_terms(observed, expected).sum(dim=1)


def poisson_deviance_terms(observed: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Each bin's share of the Poisson deviance, ``2 [x log(x / lambda) - (x - lambda)]``
    (non-negative; signed square roots of these are the deviance residuals).

    ``expected`` is floored at the dtype's smallest normal number, so a bin
    the model leaves empty costs a large, finite deviance where counts fell.
    """
    import torch

    lam = expected.clamp_min(torch.finfo(expected.dtype).tiny)
    return 2.0 * (torch.xlogy(observed, observed) - torch.xlogy(observed, lam)
                  - (observed - lam))


def expected_deviance_terms(expected: torch.Tensor) -> torch.Tensor:
    """Each bin's expected share of the deviance under Poisson noise, ``E[D(lambda)]``
    (about 1 where ``lambda`` is large, less where it is small): what
    :func:`poisson_deviance_terms` averages to when ``expected`` is right."""
    import torch

    return _expected_terms(torch.log(expected.clamp_min(1e-12)))


def _expected_terms(log_expected: torch.Tensor) -> torch.Tensor:
    import torch

    step = (_LOG_LAMBDA_MAX - _LOG_LAMBDA_MIN) / (_TABLE_SIZE - 1)
    scale = 1.0 / (math.log(10.0) * step)
    index = (log_expected * scale - _LOG_LAMBDA_MIN / step).round_().clamp_(0, _TABLE_SIZE - 1)
    table = torch.as_tensor(expected_deviance_table(), dtype=log_expected.dtype,
                            device=log_expected.device)
    return table[index.long()]


def fit_channels(
    energy_keV: np.ndarray, beam_keV: float, exclude_keV: Sequence[tuple[float, float]] = ()
) -> np.ndarray:
    """Channels the fit uses: MIN_FIT_KEV to just above the beam, minus excluded ranges."""
    energy = np.asarray(energy_keV, dtype=np.float64)
    use = (energy >= MIN_FIT_KEV) & (energy <= beam_keV + 1.0)
    for low, high in exclude_keV:
        if not low < high:
            raise XRFQuantError(f"excluded range {low:g}-{high:g} keV is empty")
        use &= ~((energy >= low) & (energy <= high))
    if use.sum() < 10:
        raise XRFQuantError("fewer than 10 channels are left to fit")
    return use
