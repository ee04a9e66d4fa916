"""Training losses: the published MAE, Gaussian NLL variants, the emulator's chi-square."""

from __future__ import annotations

import torch


def gaussian_nll(mean: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-entry Gaussian negative log-likelihood (without the constant)."""
    return torch.log(sigma) + 0.5 * ((target - mean) / sigma) ** 2


def loss_terms(
    loss: str, mean: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Scalar training loss for one batch.

    ``"mae"``: the published mean absolute error for the mean, plus a Gaussian
    NLL on the detached mean that teaches the sigma head without pulling the
    mean away from the MAE optimum. ``"nll"``: Gaussian NLL for both.
    ``"beta-nll"``: NLL weighted by ``sigma**1`` (detached), which keeps the
    mean from ignoring the hard, high-variance spectra (Seitzer et al. 2022).
    """
    if loss == "mae":
        return (mean - target).abs().mean() + gaussian_nll(mean.detach(), sigma, target).mean()
    if loss == "nll":
        return gaussian_nll(mean, sigma, target).mean()
    weight = sigma.detach()
    return (weight * gaussian_nll(mean, sigma, target)).mean()


def decoder_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Chi-square per count between expected binned fractions: what fit quality sees."""
    return ((predicted - target) ** 2 / (target + 1e-6)).sum(dim=1).mean()
