"""Augmentations and counting noise for training spectra (torch, batched).

The published augmentations act on the noise-free expected spectrum before
counting noise is drawn, as a real drift or background would: a random smooth
background, a random shift of up to +-2 channels and a Gaussian blur of random
width. Shift and blur are one multiplication in Fourier space (a phase ramp
and a Gaussian transfer function), exact for the band-limited peaks of an
energy-dispersive detector and the same cost for every width.
"""

from __future__ import annotations

import math

import torch

from napari_xrfquant.training.config import AugmentConfig

#: Zero padding (channels) against wrap-around of the circular Fourier shift/blur.
_FFT_PAD = 32


def shift_and_blur(
    spectra: torch.Tensor, shift_channels: torch.Tensor, blur_sigma_channels: torch.Tensor
) -> torch.Tensor:
    """Shift each spectrum by a (fractional) number of channels and blur it.

    Parameters
    ----------
    spectra
        ``(N, C)`` non-negative expected spectra.
    shift_channels
        ``(N,)`` shifts; positive moves counts to higher channels.
    blur_sigma_channels
        ``(N,)`` Gaussian standard deviations in channels (0: no blur).

    Returns
    -------
    Tensor
        ``(N, C)`` spectra, clipped at 0 (Fourier ringing can dip slightly below).
    """
    _n, c = spectra.shape
    length = c + 2 * _FFT_PAD
    padded = torch.nn.functional.pad(spectra, (_FFT_PAD, _FFT_PAD))
    spectrum_f = torch.fft.rfft(padded, dim=1)
    freq = torch.fft.rfftfreq(length, device=spectra.device, dtype=spectra.dtype)
    phase = -2.0 * math.pi * freq[None, :] * shift_channels[:, None]
    gain = torch.exp(-2.0 * (math.pi * freq[None, :] * blur_sigma_channels[:, None]) ** 2)
    transfer = torch.polar(gain, phase)
    result = torch.fft.irfft(spectrum_f * transfer, n=length, dim=1)
    return result[:, _FFT_PAD : _FFT_PAD + c].clamp_min(0.0)


def bernstein_background(
    n: int,
    n_channels: int,
    degree: int,
    generator: torch.Generator,
    first_channel: int = 0,
    stop_channel: int | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Random smooth non-negative backgrounds, each normalised to sum 1.

    A Bernstein polynomial with non-negative coefficients is non-negative
    everywhere, so random coefficients give random smooth shapes without any
    clipping. The background covers channels ``first_channel:stop_channel``.

    Returns
    -------
    Tensor
        ``(n, n_channels)`` float32.
    """
    stop = n_channels if stop_channel is None else stop_channel
    x = torch.linspace(0.0, 1.0, stop - first_channel, device=device)
    k = torch.arange(degree + 1, device=device, dtype=torch.float32)
    log_binomial = (
        torch.lgamma(torch.tensor(degree + 1.0))
        - torch.lgamma(k + 1)
        - torch.lgamma(degree - k + 1)
    ).to(device)
    basis = torch.exp(log_binomial)[None, :] * x[:, None] ** k * (1 - x[:, None]) ** (degree - k)
    coefficients = torch.rand((n, degree + 1), generator=generator, device=device)
    shape = coefficients @ basis.T
    background = torch.zeros((n, n_channels), device=device)
    background[:, first_channel:stop] = shape
    return background / background.sum(dim=1, keepdim=True).clamp_min(1e-30)


def augment_spectra(
    spectra: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
    first_channel: int = 0,
    stop_channel: int | None = None,
) -> torch.Tensor:
    """Apply the published augmentations to expected spectra ``(N, C)`` (sum 1 each).

    Each augmentation is applied to a random subset of spectra with its own
    probability; the result is renormalised to sum 1.
    """
    n, c = spectra.shape
    device = spectra.device

    def chosen(probability: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=device) < probability

    out = spectra
    if config.background_probability > 0 and config.background_max_fraction > 0:
        use = chosen(config.background_probability).float()
        fraction = (
            use * config.background_max_fraction * torch.rand(n, generator=generator, device=device)
        )
        background = bernstein_background(
            n, c, config.background_degree, generator, first_channel, stop_channel, device
        )
        out = out * (1 - fraction[:, None]) + background * fraction[:, None]
    shift = torch.zeros(n, device=device)
    blur = torch.zeros(n, device=device)
    if config.shift_probability > 0 and config.shift_channels > 0:
        amount = (2 * torch.rand(n, generator=generator, device=device) - 1) * config.shift_channels
        shift = torch.where(chosen(config.shift_probability), amount, shift)
    if config.blur_probability > 0 and config.blur_max_channels > 0:
        width = torch.rand(n, generator=generator, device=device) * config.blur_max_channels
        blur = torch.where(chosen(config.blur_probability), width, blur)
    if bool((shift != 0).any() or (blur != 0).any()):
        out = shift_and_blur(out, shift, blur)
    return out / out.sum(dim=1, keepdim=True).clamp_min(1e-30)


def sample_log_uniform(
    n: int, low: float, high: float, generator: torch.Generator, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """``n`` values log-uniform in ``[low, high]`` (float32)."""
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    values = torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return values.float()


def poisson_counts(
    expected_fractions: torch.Tensor,
    total_counts: torch.Tensor,
    generator: torch.Generator,
    noiseless: torch.Tensor | None = None,
) -> torch.Tensor:
    """Counting noise: Poisson draws around ``fractions * total`` per bin.

    Binning before drawing is exact, since a sum of independent Poisson variables
    is Poisson with the summed mean; it makes noise ``C / K`` times cheaper.

    Parameters
    ----------
    expected_fractions
        ``(N, K)`` expected fractions (each row sums to 1).
    total_counts
        ``(N,)`` expected total counts.
    generator
        Torch random generator.
    noiseless
        ``(N,)`` bool: rows that keep their expected counts (no noise).
    """
    rates = expected_fractions * total_counts[:, None]
    counts = torch.poisson(rates, generator=generator)
    if noiseless is not None:
        counts = torch.where(noiseless[:, None], rates, counts)
    return counts
