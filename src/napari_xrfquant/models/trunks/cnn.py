"""A 1-D CNN trunk: convolutions over the binned spectrum, then dense layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from napari_xrfquant.models.description import ModelConfig, register_architecture


class CNNTrunk(nn.Module):
    """A 1-D CNN over the binned spectrum, then fully connected layers.

    Convolutions (kernel ``kernel_size``, stride 2, ReLU) see the peak shapes;
    the log-counts input joins at the first fully connected layer.
    """

    def __init__(
        self,
        n_features: int,
        conv_channels: Sequence[int],
        kernel_size: int,
        hidden_layers: int,
        neurons: int,
    ) -> None:
        super().__init__()
        if not conv_channels:
            raise ValueError("a CNN needs at least one convolution layer")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        convs: list[nn.Module] = []
        in_ch, length = 1, n_features
        for out_ch in conv_channels:
            convs += [
                nn.Conv1d(in_ch, int(out_ch), kernel_size, stride=2, padding=kernel_size // 2),
                nn.ReLU(),
            ]
            in_ch = int(out_ch)
            length = (length + 2 * (kernel_size // 2) - kernel_size) // 2 + 1
        self.convs = nn.Sequential(*convs)
        dense: list[nn.Module] = []
        width = in_ch * length + 1
        for _ in range(hidden_layers):
            dense += [nn.Linear(width, neurons), nn.ReLU()]
            width = neurons
        self.dense = nn.Sequential(*dense)
        self.out_features = width

    def forward(self, features: torch.Tensor, counts_input: torch.Tensor) -> torch.Tensor:
        """``(N, K), (N, 1) -> (N, out_features)``."""
        maps = self.convs(features[:, None, :]).flatten(1)
        return self.dense(torch.cat([maps, counts_input], dim=1))


@register_architecture("cnn", "1-D convolutions over the binned spectrum, then dense layers")
def _cnn(n_features: int, config: ModelConfig) -> nn.Module:
    return CNNTrunk(n_features, config.conv_channels, config.kernel_size, config.hidden_layers,
                    config.neurons)
