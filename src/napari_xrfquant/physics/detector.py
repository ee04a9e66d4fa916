"""Detector response and continuum in torch, differentiable in every parameter.

A photon of energy E absorbed in the sensor lands in the spectrum as

- a Gaussian of standard deviation sigma(E) = FWHM(E) / 2.3548 with
  FWHM(E)^2 = noise^2 + 2.3548^2 * Fano * w * E (integrated over each channel with
  erf, so the area is exact whatever the channel width);
- an exponential tail below the peak from incomplete charge collection (the
  Hypermet tail: exponential of slope ``tail_slope_keV`` convolved with the
  Gaussian), carrying ``tail_fraction`` of the area;
- a flat shelf below E, convolved with the Gaussian, carrying ``shelf_fraction``:
  from 0, or (``shelf_start = "k_edge"``) from the sensor's K edge for photons
  above it (:func:`shelf_start_keV`);
- optionally an exponential tail above the peak (the mirror image of the Hypermet
  tail), carrying ``high_tail_fraction``: at high count rates a photon read
  together with pulses too small to trigger the pile-up rejector (noise, photons
  below the threshold) is read a little too high, as gamma spectroscopy's
  right-skewed Hypermet has it (its share grows with the rate);
- escape peaks at E - E(Si K) carrying the escape fraction of the tables;
- and, where the pulse processor has one, a low-energy threshold: what is read below
  ``threshold_keV`` is not recorded (an erf edge of width ``threshold_width_keV``), so
  shelves and tails stop there as the measured spectrum does (:func:`recorded_share`).

All arguments may carry a leading batch dimension (per-spectrum parameters):
scalars are 0-d tensors, batched ones have shape ``(N, 1, 1)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from napari_xrfquant.instrument import FWHM_PER_SIGMA, Instrument
from napari_xrfquant.physics import _xraydata as xd
from napari_xrfquant.physics._xraylib import edge_energy_keV

_SQRT2 = math.sqrt(2.0)


def sigma_keV(
    energy_keV: torch.Tensor, noise_keV: torch.Tensor, fano: torch.Tensor, pair_keV: float
) -> torch.Tensor:
    """Gaussian standard deviation (keV) at ``energy_keV`` from noise and Fano."""
    variance_fwhm = noise_keV**2 + FWHM_PER_SIGMA**2 * fano * pair_keV * energy_keV.clamp_min(0.0)
    return torch.sqrt(variance_fwhm.clamp_min(1e-12)) / FWHM_PER_SIGMA


def gaussian_binned(
    edges_keV: torch.Tensor, centre_keV: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """Area of a unit Gaussian in each channel, from the channel edges (..., C + 1)."""
    cdf = torch.erf((edges_keV - centre_keV) / (_SQRT2 * sigma))
    return 0.5 * (cdf[..., 1:] - cdf[..., :-1])


def hypermet_tail(
    x_keV: torch.Tensor, centre_keV: torch.Tensor, sigma: torch.Tensor, slope_keV: torch.Tensor
) -> torch.Tensor:
    """Unit-area low-energy tail density (1/keV) at ``x_keV``.

    ``exp((x - E)/b + s^2/(2 b^2)) erfc((x - E)/(sqrt2 s) + s/(sqrt2 b)) / (2 b)``,
    written with ``erfcx`` above the peak, where the exponential alone overflows.
    """
    d = x_keV - centre_keV
    b = slope_keV.clamp_min(1e-6)
    arg = d / (_SQRT2 * sigma) + sigma / (_SQRT2 * b)
    # exp(A) erfc(B) = exp(A - B^2) erfcx(B) and A - B^2 = -d^2 / (2 s^2)
    high = torch.exp(-0.5 * (d / sigma) ** 2) * torch.special.erfcx(arg.clamp_min(0.0))
    exponent = (d / b + 0.5 * (sigma / b) ** 2).clamp_max(0.0)
    # erfc of a non-positive argument lies in [1, 2]: 1 - erf loses nothing and
    # torch's erf is vectorised on CPU where erfc is not (10x faster)
    low = torch.exp(exponent) * (1.0 - torch.erf(arg.clamp_max(0.0)))
    return torch.where(arg > 0, high, low) / (2.0 * b)


def shelf_start_keV(instrument: Instrument, energies_keV: np.ndarray) -> np.ndarray:
    """Where the shelf of a photon of each energy starts (keV), ``(A,)``.

    With ``detector.shelf_start = "k_edge"`` a photon absorbed above the K edge of the
    sensor's main constituent (Si: 1.84 keV) mostly ejects a K photoelectron of
    ``E - E_K``; when that electron leaves the sensitive volume the relaxation energy
    ``E_K`` stays, so the deposited charge lies between ``E_K`` and ``E`` (Scholze and
    Procop, X-Ray Spectrom. 38 (2009) 312). Below the edge, and with ``"zero"``, the
    shelf starts at 0.
    """
    energies = np.asarray(energies_keV, dtype=np.float64)
    det = instrument.detector
    if det.shelf_start == "zero":
        return np.zeros_like(energies)
    edge = edge_energy_keV(xd.material(det.material).main_z, "K")  # as the escape peaks'
    return np.where(energies > edge, edge, 0.0)


def recorded_share(
    energy_keV: torch.Tensor,
    threshold_keV: torch.Tensor | float,
    threshold_width_keV: torch.Tensor | float,
) -> torch.Tensor | None:
    """The share of events read at ``energy_keV`` that the pulse processor records:
    ``erfc((T - E) / (sqrt(2) w)) / 2`` for its threshold ``T`` and width ``w``.
    None where there is no threshold (``T`` is 0 and not being fitted), so that
    a set-up without one keeps its spectrum to the bit."""
    threshold = torch.as_tensor(threshold_keV, dtype=energy_keV.dtype, device=energy_keV.device)
    if not threshold.requires_grad and not bool((threshold != 0).any()):
        return None
    width = torch.as_tensor(threshold_width_keV, dtype=energy_keV.dtype,
                            device=energy_keV.device)
    return 0.5 * torch.erfc((threshold - energy_keV) / (_SQRT2 * width))


#: How far from a photon's energy its window of channels reaches: this many Gaussian
#: sigmas around the peak, its escape peaks and the shelf's ends (erfc(9 / sqrt 2) /
#: 2 = 1e-19), and this many decay lengths along each tail (exp(-37) = 9e-17): beyond
#: them every term lies below 1e-16 of the photon, under float64's resolution of 1.
WINDOW_SIGMAS = 9.0
WINDOW_SLOPES = 37.0


def atom_response(
    atom_keV: torch.Tensor,
    efficiency: torch.Tensor,
    escape: torch.Tensor,
    escape_keV: torch.Tensor,
    *,
    n_channels: int,
    gain_keV: torch.Tensor,
    offset_keV: torch.Tensor,
    noise_keV: torch.Tensor,
    fano: torch.Tensor,
    pair_keV: float,
    tail_fraction: torch.Tensor,
    tail_slope_keV: torch.Tensor,
    shelf_fraction: torch.Tensor,
    quadratic_keV: torch.Tensor | float = 0.0,
    high_tail_fraction: torch.Tensor | float = 0.0,
    high_tail_slope_keV: torch.Tensor | float = 0.1,
    threshold_keV: torch.Tensor | float = 0.0,
    threshold_width_keV: torch.Tensor | float = 0.05,
    shelf_start_keV: torch.Tensor | None = None,
) -> torch.Tensor:
    """Detected spectrum of one photon of each energy: ``(..., A, C)``.

    Each photon's peak, tails and escape peaks are evaluated only in a window of
    channels around it (:data:`WINDOW_SIGMAS`, :data:`WINDOW_SLOPES`), and its shelf
    as a flat box with the Gaussian's rounding evaluated at its two ends: outside them
    every term is below 1e-16 of the photon, so the response is the full evaluation's
    to float64 rounding at a fraction of its cost (BHVO-2G under the breadboard's tube:
    678 photon energies x 4,096 channels in 0.06 s instead of 0.46 s).

    Parameters
    ----------
    atom_keV, efficiency
        ``(A,)`` photon energies and detection efficiencies.
    escape, escape_keV
        ``(A, K)`` escape fractions and ``(K,)`` energies of the escaping lines.
    gain_keV, offset_keV, noise_keV, fano, tail_fraction, tail_slope_keV, shelf_fraction
        Scalars (0-d) or per-spectrum ``(N, 1, 1)`` tensors.
    quadratic_keV
        Quadratic calibration term: the centre of channel k is at
        ``offset + gain k + quadratic k^2``.
    high_tail_fraction, high_tail_slope_keV
        Share and decay length of the tail above each peak (0: none).
    threshold_keV, threshold_width_keV
        The pulse processor's low-energy threshold and its width (:func:`recorded_share`;
        0: none).
    shelf_start_keV
        ``(A,)`` where each photon's shelf starts (:func:`shelf_start_keV`; None: 0).
    """
    dtype, device = atom_keV.dtype, atom_keV.device
    k = torch.arange(n_channels + 1, dtype=dtype, device=device)
    half = k - 0.5
    edges = offset_keV + gain_keV * half + quadratic_keV * half**2  # (..., 1, C + 1)
    centres = 0.5 * (edges[..., 1:] + edges[..., :-1])
    widths = edges[..., 1:] - edges[..., :-1]  # densities (1/keV) times channel widths
    e = atom_keV[:, None]
    sigma = sigma_keV(e, noise_keV, fano, pair_keV)
    escape_total = escape.sum(dim=1)[:, None]
    high = torch.as_tensor(high_tail_fraction, dtype=dtype, device=device).clamp_min(0.0)
    with_high = high.requires_grad or bool((high != 0).any())  # its erfcx costs a tail's
    high_slope = torch.as_tensor(high_tail_slope_keV, dtype=dtype, device=device)
    start = (torch.zeros_like(atom_keV) if shelf_start_keV is None
             else shelf_start_keV.to(dtype))[:, None]
    widest = sigma.detach().reshape(-1, *sigma.shape[-2:]).amax(dim=0)[:, 0]  # (A,)
    nothing = torch.zeros_like(widest)
    below = torch.maximum(  # the low tail, or the escape peaks
        WINDOW_SLOPES * _largest(tail_slope_keV, widest),
        escape_keV.max() + WINDOW_SIGMAS * widest if escape_keV.numel() else nothing)
    above = WINDOW_SLOPES * _largest(high_slope, widest) if with_high else nothing
    peak = _Window(edges, atom_keV - below - WINDOW_SIGMAS * widest,
                   atom_keV + above + WINDOW_SIGMAS * widest)
    edges_w, centres_w, widths_w = peak.edges, peak.centres, peak.widths

    peak_share = 1.0 - tail_fraction - shelf_fraction - escape_total - high
    out_w = peak_share * gaussian_binned(edges_w, e, sigma)
    if with_high:
        out_w = out_w + high * widths_w * hypermet_tail(2.0 * e - centres_w, e, sigma, high_slope)
    out_w = out_w + tail_fraction * widths_w * hypermet_tail(centres_w, e, sigma, tail_slope_keV)
    for j in range(escape.shape[1]):
        e_esc = (e - escape_keV[j]).clamp_min(1e-3)
        sigma_esc = sigma_keV(e_esc, noise_keV, fano, pair_keV)
        out_w = out_w + escape[:, j : j + 1] * gaussian_binned(edges_w, e_esc, sigma_esc)
    # the shelf: a box from its start to the peak, rounded by the Gaussian at both ends
    length = (e - start).clamp_min(1e-3)
    box = shelf_fraction * widths / length * ((centres > start) & (centres <= e)).to(dtype)
    out_w = out_w - shelf_fraction * widths_w / length * _rounding(centres_w, e, sigma)
    ends = _Window(edges, start[:, 0] - WINDOW_SIGMAS * widest,
                   start[:, 0] + WINDOW_SIGMAS * widest)
    rounded_start = shelf_fraction * ends.widths / length * _rounding(ends.centres, start, sigma)
    out = peak.place(out_w) + ends.place(rounded_start) + box
    recorded = recorded_share(centres, threshold_keV, threshold_width_keV)
    if recorded is not None:
        out = out * recorded
    return out * efficiency[:, None]


def _largest(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """The largest of a scalar or per-spectrum parameter, detached, on ``like``'s device
    and dtype (a window's reach)."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).detach().max()


def _rounding(x_keV: torch.Tensor, edge_keV: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The Gaussian's rounding of a step up at ``edge_keV``: its smoothed height less the
    sharp step, ``Phi((x - edge) / sigma) - [x > edge]``; it vanishes beyond a few sigma."""
    smooth = 0.5 * (1.0 + torch.erf((x_keV - edge_keV) / (_SQRT2 * sigma)))
    return smooth - (x_keV > edge_keV).to(x_keV.dtype)


class _Window:
    """The same number of consecutive channels for each photon, those that overlap
    ``[low_keV, high_keV]`` ``(A,)`` for every spectrum of the batch (their channel
    ``edges`` ``(..., C + 1)``): the channels where its terms are evaluated."""

    def __init__(self, edges: torch.Tensor, low_keV: torch.Tensor, high_keV: torch.Tensor):
        n_channels = edges.shape[-1] - 1
        flat = edges.detach().reshape(-1, n_channels + 1)
        upper = flat[:, 1:].amax(dim=0).contiguous()  # channel j's upper edge, latest
        lower = flat[:, :-1].amin(dim=0).contiguous()  # its lower edge, earliest
        first = torch.searchsorted(upper, low_keV.detach().to(flat.dtype).contiguous(),
                                   right=True)
        last = torch.searchsorted(lower, high_keV.detach().to(flat.dtype).contiguous()) - 1
        count = int((last - first).max().clamp_min(0)) + 1 if first.numel() else 1
        self.size = min(count, n_channels)
        self.first = first.clamp(0, n_channels - self.size)  # (A,)
        self.n_channels = n_channels
        index = self.first[:, None] + torch.arange(self.size + 1, device=edges.device)
        batch = edges.shape[:-2] if edges.ndim > 1 else ()
        full = edges.unsqueeze(-2) if edges.ndim == 1 else edges
        self.edges = full.expand(*batch, index.shape[0], n_channels + 1).gather(
            -1, index.expand(*batch, *index.shape))
        self.centres = 0.5 * (self.edges[..., 1:] + self.edges[..., :-1])
        self.widths = self.edges[..., 1:] - self.edges[..., :-1]
        self._index = index[:, :-1]

    def place(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` ``(..., A, size)`` on the full channels ``(..., A, C)``, 0 elsewhere."""
        batch = values.shape[:-2]
        index = self._index.expand(*batch, *self._index.shape)
        zeros = values.new_zeros(*batch, self._index.shape[0], self.n_channels)
        return zeros.scatter_add(-1, index, values)


def continuum_shape(
    n_channels: int,
    gain_keV: torch.Tensor,
    offset_keV: torch.Tensor,
    power: torch.Tensor,
    decay_keV: torch.Tensor,
    cutoff_keV: float,
    cutoff_sigma_keV: torch.Tensor,
    dtype: torch.dtype,
    device: torch.device | str,
    quadratic_keV: torch.Tensor | float = 0.0,
    threshold_keV: torch.Tensor | float = 0.0,
    threshold_width_keV: torch.Tensor | float = 0.05,
) -> torch.Tensor:
    """Continuum ``E^p exp(-E / decay)`` per channel, cut off smoothly at the beam energy
    and, where the pulse processor has a threshold, below it (:func:`recorded_share`).

    Returns a spectrum summing to 1 over the channels, ``(..., C)``.
    """
    k = torch.arange(n_channels, dtype=dtype, device=device)
    energy = (offset_keV + gain_keV * k + quadratic_keV * k**2).clamp_min(1e-3)
    log_shape = power * torch.log(energy) - energy / decay_keV
    log_shape = log_shape - log_shape.amax(dim=-1, keepdim=True).detach()
    cutoff = 0.5 * torch.erfc((energy - cutoff_keV) / (_SQRT2 * cutoff_sigma_keV))
    shape = torch.exp(log_shape) * cutoff
    recorded = recorded_share(energy, threshold_keV, threshold_width_keV)
    if recorded is not None:
        shape = shape * recorded
    return shape / shape.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def pileup(
    spectra: torch.Tensor,
    fraction: torch.Tensor,
    offset_keV: torch.Tensor,
    gain_keV: torch.Tensor,
) -> torch.Tensor:
    """Add sum peaks: ``(1 - f) s + f (s * s)``, renormalised, for spectra ``(N, C)``.

    A share ``f`` of the detected events are two photons read as one, at the sum
    of their energies: the spectrum convolved with itself (FFT), shifted so that
    channels ``i`` and ``j`` land where ``E_i + E_j`` is (``i + j + offset / gain``
    for a linear calibration; a quadratic term is neglected here), linearly
    interpolated. What lands beyond the last channel is lost. ``fraction``,
    ``offset_keV`` and ``gain_keV`` are 0-d or one value per spectrum;
    differentiable in all of them and in ``spectra``.
    """
    n = spectra.shape[-1]
    flat = spectra.reshape(-1, n)
    transform = torch.fft.rfft(flat, n=2 * n)
    conv = torch.fft.irfft(transform * transform, n=2 * n).clamp_min(0.0)  # sum over i + j = k
    shift = (offset_keV / gain_keV).reshape(-1, 1)
    position = torch.arange(n, dtype=flat.dtype, device=flat.device)[None, :] - shift
    low = torch.floor(position)
    weight = position - low
    index = low.long().expand(flat.shape[0], n)

    def at(k: torch.Tensor) -> torch.Tensor:
        inside = (k >= 0) & (k < 2 * n)
        return torch.where(inside, conv.gather(1, k.clamp(0, 2 * n - 1)), 0.0)

    piled = (1.0 - weight) * at(index) + weight * at(index + 1)
    f = fraction.reshape(-1, 1)
    mixed = (1.0 - f) * flat + f * piled
    return (mixed / mixed.sum(dim=1, keepdim=True).clamp_min(1e-30)).reshape(spectra.shape)

