"""Test metrics: MAE, RMSE and 1-sigma coverage per count level and element."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from napari_xrfquant.models.architectures import QuantNet
from napari_xrfquant.models.bundle import QuantModel
from napari_xrfquant.models.features import NOISELESS_COUNTS
from napari_xrfquant.models.metadata import UncertaintyCalibration
from napari_xrfquant.training.augment import sample_log_uniform
from napari_xrfquant.training.sigma import fit_sigma_calibration

#: Repeats of the validation set at fresh count levels for the sigma calibration.
CALIBRATION_REPEATS = 8

#: Spectra per forward pass during evaluation.
EVAL_BATCH = 8192


def binned_fractions(network: QuantNet, expected: torch.Tensor) -> torch.Tensor:
    """Noise-free spectra ``(N, C)`` as the network's input bins ``(N, K)``, each summing to 1."""
    features = network.features
    binned = features.bin_counts(expected.to(features.edges.device))
    return binned / binned.sum(dim=1, keepdim=True).clamp_min(1e-30)


def predict_fractions(
    network: QuantNet,
    binned_fractions: torch.Tensor,
    counts: torch.Tensor | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, raw sigma and the binned counts for noisy (or noise-free) versions of spectra.

    ``counts`` is ``(N,)`` totals, or None for noise-free spectra at
    :data:`~napari_xrfquant.models.features.NOISELESS_COUNTS`.
    """
    means, sigmas, binned_all = [], [], []
    device = next(network.parameters()).device
    with torch.inference_mode():
        for start in range(0, binned_fractions.shape[0], EVAL_BATCH):
            block = binned_fractions[start : start + EVAL_BATCH].to(device)
            if counts is None:
                binned = block * NOISELESS_COUNTS
            else:
                totals = counts[start : start + EVAL_BATCH].to(device)
                binned = torch.poisson(block * totals[:, None], generator=generator)
            mean, sigma = network.forward_binned(binned)
            means.append(mean.cpu())
            sigmas.append(sigma.cpu())
            binned_all.append(binned.cpu())
    return torch.cat(means), torch.cat(sigmas), torch.cat(binned_all)


def evaluate_model(
    model: QuantModel,
    wt_percent: torch.Tensor,
    binned_fractions: torch.Tensor,
    count_levels: list[float],
    seed: int = 12345,
) -> dict[str, Any]:
    """Test metrics of ``model`` on held-out spectra: MAE and 1-sigma coverage per count level.

    Parameters
    ----------
    model
        The model (with its sigma calibration).
    wt_percent
        ``(N, E)`` true compositions.
    binned_fractions
        ``(N, K)`` noise-free expected spectra in the model's input bins, summing to 1.
    count_levels
        Total counts per spectrum at which Poisson noise is drawn; the
        noise-free case is always added under the key ``"noiseless"``.
    seed
        Seeds the Poisson noise.

    Returns
    -------
    dict
        ``{"n_spectra", "levels": {label: {"counts", "mae_wt", "mae_per_element",
        "rmse_wt", "coverage_1sigma", "coverage_per_element", "mean_sigma_wt"}}}``;
        labels are ``"noiseless"`` and e.g. ``"1e+03"``.
    """
    generator = torch.Generator().manual_seed(seed)
    elements = model.elements
    levels: dict[str, Any] = {}
    network = model.network
    for counts in [None, *count_levels]:
        totals = None if counts is None else torch.full((wt_percent.shape[0],), float(counts))
        mean, raw_sigma, binned = predict_fractions(network, binned_fractions, totals, generator)
        log10_total = torch.log10(binned.sum(dim=1).clamp_min(1.0)).numpy()
        factors = model.calibration.factors(log10_total, len(elements))
        sigma = raw_sigma.numpy() * factors
        error = mean.numpy() - wt_percent.numpy()
        inside = np.abs(error) <= sigma
        label = "noiseless" if counts is None else f"{counts:.0e}"
        levels[label] = {
            "counts": None if counts is None else float(counts),
            "mae_wt": float(np.abs(error).mean()),
            "mae_per_element": dict(
                zip(elements, np.abs(error).mean(axis=0).tolist(), strict=True)
            ),
            "rmse_wt": float(np.sqrt((error**2).mean())),
            "coverage_1sigma": float(inside.mean()),
            "coverage_per_element": dict(zip(elements, inside.mean(axis=0).tolist(), strict=True)),
            "mean_sigma_wt": float(sigma.mean()),
        }
    return {"n_spectra": int(wt_percent.shape[0]), "levels": levels}


def calibrate_sigma(
    network: QuantNet,
    expected: torch.Tensor,
    wt_percent: torch.Tensor,
    counts_range: tuple[float, float],
    log10_counts_edges: list[float],
    seed: int,
    repeats: int = CALIBRATION_REPEATS,
) -> UncertaintyCalibration:
    """The network's 1-sigma calibration from noisy draws of a validation set.

    Each of ``repeats`` rounds draws fresh log-uniform count levels in
    ``counts_range`` and Poisson noise for the noise-free ``expected`` spectra.
    """
    fractions = binned_fractions(network, expected).cpu()
    g = torch.Generator().manual_seed(seed)
    errors, sigmas, logs = [], [], []
    for _ in range(repeats):
        totals = sample_log_uniform(len(expected), counts_range[0], counts_range[1], g)
        mean, sigma, binned = predict_fractions(network, fractions, totals, g)
        errors.append((mean - wt_percent).abs().numpy())
        sigmas.append(sigma.numpy())
        logs.append(torch.log10(binned.sum(dim=1).clamp_min(1.0)).numpy())
    return fit_sigma_calibration(
        np.concatenate(errors), np.concatenate(sigmas), np.concatenate(logs), log10_counts_edges
    )
