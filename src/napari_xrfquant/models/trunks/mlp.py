"""The published MLP trunk: hidden layers of equal width, ReLU."""

from __future__ import annotations

import torch
from torch import nn

from napari_xrfquant.models.description import ModelConfig, register_architecture


class MLPTrunk(nn.Module):
    """The published MLP: ``hidden_layers`` fully connected layers of ``neurons``, ReLU."""

    def __init__(self, n_features: int, hidden_layers: int, neurons: int) -> None:
        super().__init__()
        if hidden_layers < 1 or neurons < 1:
            raise ValueError("an MLP needs at least one hidden layer of at least one neuron")
        layers: list[nn.Module] = []
        width = n_features + 1
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, neurons), nn.ReLU()]
            width = neurons
        self.layers = nn.Sequential(*layers)
        self.out_features = neurons

    def forward(self, features: torch.Tensor, counts_input: torch.Tensor) -> torch.Tensor:
        """``(N, K), (N, 1) -> (N, neurons)``."""
        return self.layers(torch.cat([features, counts_input], dim=1))


@register_architecture("mlp", "the published MLP: hidden layers of equal width, ReLU")
def _mlp(n_features: int, config: ModelConfig) -> nn.Module:
    return MLPTrunk(n_features, config.hidden_layers, config.neurons)
