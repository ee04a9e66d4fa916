"""Calibrated uncertainty: scaling the network's sigma so that 68 % of errors fall within it."""

from __future__ import annotations

import numpy as np

from napari_xrfquant.models.metadata import UncertaintyCalibration

#: Fraction of errors within 1 sigma for a Gaussian.
ONE_SIGMA_COVERAGE = 0.6826894921370859


def fit_sigma_calibration(
    abs_error: np.ndarray,
    sigma: np.ndarray,
    log10_total: np.ndarray,
    edges: list[float],
) -> UncertaintyCalibration:
    """Per count bin and element, the factor that puts 68.3 % of errors within 1 sigma.

    The factor is the 68.27th percentile of ``|error| / sigma`` in each bin; bins
    with fewer than 20 spectra use the factor of all spectra of that element.
    """
    ratio = abs_error / np.maximum(sigma, 1e-12)
    overall = np.quantile(ratio, ONE_SIGMA_COVERAGE, axis=0)
    n_bins = len(edges) - 1
    table = np.empty((n_bins, ratio.shape[1]), dtype=np.float64)
    index = np.searchsorted(np.asarray(edges[1:-1]), log10_total, side="right")
    for b in range(n_bins):
        rows = ratio[index == b]
        table[b] = np.quantile(rows, ONE_SIGMA_COVERAGE, axis=0) if len(rows) >= 20 else overall
    table = np.clip(table, 1e-3, 1e3)
    return UncertaintyCalibration(log10_counts_edges=list(edges), scale=table.tolist())
