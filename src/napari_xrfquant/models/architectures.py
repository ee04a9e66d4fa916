"""Networks that map one pixel's spectrum to element mass fractions with a 1-sigma.

Every network here has the same three stages:

1. :class:`SpectrumFeatures`, a fixed, documented input transform stored in
   ``model.json``: channels are summed into bins (fine where the lines are,
   coarse elsewhere), each bin is divided by the total counts in the binned region
   (the spectrum normalised to sum 1, as published), square-rooted and
   standardised. ``log10`` of the total counts is appended so that the network
   knows how noisy the spectrum is.
2. A trunk from the architecture table (:mod:`.description`; one module each in
   :mod:`.trunks`): the published MLP (hidden layers of equal width, ReLU) or a
   1-D CNN.
3. :class:`QuantHead`: the mean mass fractions in wt% (softmax x 100 when the
   elements are declared to sum to 100, softplus otherwise) and a heteroscedastic
   Gaussian 1-sigma in wt%.

Torch is imported at module level: this is a core-only module that the public
API imports on first use.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from napari_xrfquant.models.description import ModelConfig, architectures

# the input transform lives in .features; re-exported here, where networks are built
from napari_xrfquant.models.features import InputSpec as InputSpec
from napari_xrfquant.models.features import SpectrumFeatures as SpectrumFeatures
from napari_xrfquant.models.features import make_bin_edges as make_bin_edges

#: Smallest 1-sigma (wt%) the head may predict; keeps the Gaussian NLL finite
#: for elements that are certainly absent.
MIN_SIGMA_WT = 1e-3
#: Largest 1-sigma (wt%): nothing is more uncertain than the whole range.
MAX_SIGMA_WT = 100.0


class SpectrumDecoder(nn.Module):
    """Composition (wt%) -> expected binned spectrum (fractions summing to 1).

    A small emulator of the physics simulator, trained beside the quantification
    network on the same simulated spectra. It makes the fit-quality check (the
    measured spectrum against the one expected at the predicted composition) a
    few small matrix products instead of a full fundamental-parameter
    simulation per pixel.
    """

    def __init__(self, n_elements: int, n_features: int, hidden_layers: int, neurons: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_elements
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, neurons), nn.SiLU()]
            width = neurons
        layers.append(nn.Linear(width, n_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, wt_percent: torch.Tensor) -> torch.Tensor:
        """``(N, E)`` wt% -> ``(N, K)`` expected binned fractions (softmax: sum 1)."""
        return torch.softmax(self.layers(wt_percent / 100.0), dim=1)


class QuantHead(nn.Module):
    """Mean wt% (closure or non-negative) and heteroscedastic 1-sigma in wt%."""

    def __init__(self, in_features: int, n_elements: int, sum_to_100: bool) -> None:
        super().__init__()
        self.n_elements = n_elements
        self.sum_to_100 = sum_to_100
        self.linear = nn.Linear(in_features, 2 * n_elements)
        # Start with sigma ~ 10 wt% (the spread of a composition nobody knows yet):
        # a tiny initial sigma makes the first NLL gradients explode.
        with torch.no_grad():
            self.linear.bias[n_elements:].fill_(math.log(10.0))
            self.linear.weight[n_elements:].mul_(0.1)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, H) -> mean (N, E), sigma (N, E)``, both in wt%."""
        return self.outputs(self.linear(hidden))

    def outputs(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sigma (wt%) from the linear layer's output ``(N, 2E)``."""
        logits, log_sigma = raw[:, : self.n_elements], raw[:, self.n_elements :]
        if self.sum_to_100:
            mean = 100.0 * torch.softmax(logits, dim=1)
        else:
            # Elements may be missing from the declared list: only non-negativity holds.
            mean = 10.0 * nn.functional.softplus(logits)
        sigma = torch.exp(log_sigma.clamp(math.log(MIN_SIGMA_WT), math.log(MAX_SIGMA_WT)))
        return mean, sigma


class QuantNet(nn.Module):
    """Spectrum -> (mean wt%, 1-sigma wt%) for a fixed list of elements.

    Parameters
    ----------
    input_spec
        The fixed input transform.
    architecture
        Trunk layout.
    n_elements
        Number of output elements ``E``.
    sum_to_100
        Whether the outputs are closed (sum to 100 wt%).
    """

    def __init__(
        self,
        input_spec: InputSpec,
        architecture: ModelConfig,
        n_elements: int,
        sum_to_100: bool = True,
    ) -> None:
        super().__init__()
        if n_elements < 1:
            raise ValueError("a model needs at least one element")
        self.input_spec = input_spec
        self.architecture = architecture
        self.features = SpectrumFeatures(input_spec)
        k = input_spec.n_features
        self.trunk: nn.Module = architectures()[architecture.type].build(k, architecture)
        self.head = QuantHead(self.trunk.out_features, n_elements, sum_to_100)
        self.decoder: SpectrumDecoder | None = None
        if architecture.decoder_neurons > 0 and architecture.decoder_layers >= 0:
            self.decoder = SpectrumDecoder(
                n_elements, k, architecture.decoder_layers, architecture.decoder_neurons
            )

    @property
    def n_elements(self) -> int:
        """Number of output elements."""
        return self.head.n_elements

    @property
    def sum_to_100(self) -> bool:
        """Whether outputs are closed to 100 wt%."""
        return self.head.sum_to_100

    def forward_binned(self, binned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from binned counts ``(N, K)``: mean and sigma ``(N, E)`` in wt%."""
        features, log10_total = self.features.from_binned(binned)
        hidden = self.trunk(features, self.features.counts_input(log10_total))
        return self.head(hidden)

    def expected_binned(self, wt_percent: torch.Tensor) -> torch.Tensor | None:
        """Expected binned fractions ``(N, K)`` at ``wt_percent``; None without a decoder."""
        return None if self.decoder is None else self.decoder(wt_percent)

    def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from counts on the model grid ``(N, C)``: mean, sigma ``(N, E)`` wt%."""
        return self.forward_binned(self.features.bin_counts(counts))


def build_network(
    input_spec: InputSpec | dict[str, Any],
    architecture: ModelConfig | dict[str, Any],
    n_elements: int,
    sum_to_100: bool = True,
) -> QuantNet:
    """Build a :class:`QuantNet` from its descriptions or their ``model.json`` dictionaries."""
    if isinstance(input_spec, dict):
        input_spec = InputSpec.from_dict(input_spec)
    if isinstance(architecture, dict):
        architecture = ModelConfig.from_bundle(architecture)
    return QuantNet(input_spec, architecture, n_elements, sum_to_100)


def count_parameters(network: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)
