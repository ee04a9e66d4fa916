"""The detector response evaluated in windows equals its evaluation on every channel."""

from __future__ import annotations

import math

import pytest
import torch

from napari_xrfquant.physics.detector import (
    atom_response,
    gaussian_binned,
    hypermet_tail,
    recorded_share,
    sigma_keV,
)

SI_K_EDGE_KEV = 1.839
ESCAPE_KEV = (1.740, 1.836)  # Si Ka, Si Kb


def _everywhere(atom_keV, efficiency, escape, escape_keV, *, n_channels, gain_keV, offset_keV,
                noise_keV, fano, pair_keV, tail_fraction, tail_slope_keV, shelf_fraction,
                quadratic_keV, high_tail_fraction, high_tail_slope_keV, threshold_keV,
                threshold_width_keV, shelf_start_keV):
    """The module's docstring term by term on every channel of every photon."""
    half = torch.arange(n_channels + 1, dtype=atom_keV.dtype) - 0.5
    edges = offset_keV + gain_keV * half + quadratic_keV * half**2
    centres = 0.5 * (edges[..., 1:] + edges[..., :-1])
    widths = edges[..., 1:] - edges[..., :-1]
    e, start = atom_keV[:, None], shelf_start_keV[:, None]
    sigma = sigma_keV(e, noise_keV, fano, pair_keV)
    out = ((1.0 - tail_fraction - shelf_fraction - escape.sum(dim=1)[:, None]
            - high_tail_fraction) * gaussian_binned(edges, e, sigma))
    out = out + high_tail_fraction * widths * hypermet_tail(2.0 * e - centres, e, sigma,
                                                            high_tail_slope_keV)
    out = out + tail_fraction * widths * hypermet_tail(centres, e, sigma, tail_slope_keV)
    box = 0.5 * (torch.erf((centres - start) / (math.sqrt(2.0) * sigma))
                 - torch.erf((centres - e) / (math.sqrt(2.0) * sigma)))
    out = out + shelf_fraction * widths * box / (e - start).clamp_min(1e-3)
    for j in range(escape.shape[1]):
        e_esc = (e - escape_keV[j]).clamp_min(1e-3)
        out = out + escape[:, j:j + 1] * gaussian_binned(
            edges, e_esc, sigma_keV(e_esc, noise_keV, fano, pair_keV))
    recorded = recorded_share(centres, threshold_keV, threshold_width_keV)
    if recorded is not None:
        out = out * recorded
    return out * efficiency[:, None]


def _breadboard(dtype: torch.dtype) -> tuple[tuple[torch.Tensor, ...], dict]:
    """Photons of 0.3-30 keV on 4,096 channels of 10 eV with the PIXL breadboard's
    calibrated detector (its tails, high tail and shelf from the Si K edge), a threshold
    at 0.7 keV, and an atom exactly at a channel centre (where the shelf's box ends)."""
    scalar = {"gain_keV": 0.01, "offset_keV": -0.01, "noise_keV": 0.055, "fano": 0.112,
              "tail_fraction": 0.036, "tail_slope_keV": 0.068, "shelf_fraction": 0.008,
              "quadratic_keV": 1e-7, "high_tail_fraction": 0.073,
              "high_tail_slope_keV": 0.035, "threshold_keV": 0.7,
              "threshold_width_keV": 0.05}
    options = {name: torch.tensor(value, dtype=dtype) for name, value in scalar.items()}
    half = torch.arange(4097, dtype=dtype) - 0.5
    edges = options["offset_keV"] + options["gain_keV"] * half + options["quadratic_keV"] * half**2
    centre = 0.5 * (edges[301] + edges[302])  # channel 301's centre, as the response has it
    atom = torch.cat([torch.linspace(0.3, 30.0, 160, dtype=dtype), centre[None]])
    generator = torch.Generator().manual_seed(0)
    efficiency = 0.2 + torch.rand(atom.shape, generator=generator, dtype=dtype)
    above = (atom > SI_K_EDGE_KEV).to(dtype)[:, None]
    escape = above * torch.tensor([[0.01, 0.001]], dtype=dtype) / atom[:, None]
    options.update(n_channels=4096, pair_keV=0.00365,
                   shelf_start_keV=torch.where(atom > SI_K_EDGE_KEV, SI_K_EDGE_KEV, 0.0))
    return (atom, efficiency, escape, torch.tensor(ESCAPE_KEV, dtype=dtype)), options


def test_the_windowed_response_is_the_response_on_every_channel():
    args, options = _breadboard(torch.float64)
    windowed, everywhere = atom_response(*args, **options), _everywhere(*args, **options)
    assert windowed.shape == everywhere.shape == (161, 4096)
    assert float((windowed - everywhere).abs().max()) < 1e-15
    # float32 (the training's simulator) to its own rounding
    args32, options32 = _breadboard(torch.float32)
    difference = atom_response(*args32, **options32) - _everywhere(*args32, **options32)
    assert float(difference.abs().max()) < 1e-6


@pytest.mark.parametrize("name", ["gain_keV", "offset_keV", "noise_keV", "tail_slope_keV",
                                  "shelf_fraction", "high_tail_slope_keV", "threshold_keV"])
def test_per_spectrum_parameters_and_their_gradients_match_too(name):
    """Per-spectrum values (N, 1, 1), whose windows must hold every spectrum's channels,
    and the gradient the calibration follows."""
    args, options = _breadboard(torch.float64)
    results = []
    for evaluate in (atom_response, _everywhere):
        values = dict(options)
        factors = torch.tensor([0.97, 1.0, 1.04], dtype=torch.float64)[:, None, None]
        batched = (options[name] * factors).requires_grad_(True)
        values[name] = batched
        spectra = evaluate(*args, **values)
        weights = torch.linspace(-1.0, 1.0, spectra.shape[-1], dtype=torch.float64)
        (gradient,) = torch.autograd.grad((spectra * weights).sum(), batched)
        results.append((spectra.detach(), gradient))
    (windowed, gradient), (everywhere, expected) = results
    assert windowed.shape == (3, 161, 4096)
    assert float((windowed - everywhere).abs().max()) < 1e-15
    torch.testing.assert_close(gradient, expected, rtol=1e-10, atol=1e-14)
