"""The network a training configuration describes: its input transform and layout."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from napari_xrfquant.models.architectures import (
    InputSpec,
    QuantNet,
    make_bin_edges,
)
from napari_xrfquant.models.features import SpectrumFeatures, bins_in_ranges
from napari_xrfquant.training.config import TrainingConfig


def input_spec_for(config: TrainingConfig, energy_keV: np.ndarray) -> InputSpec:
    """The (not yet standardised) input transform for ``config`` on this energy grid."""
    segments = [(float(a), float(b), int(w)) for a, b, w in config.input.segments]
    edges = make_bin_edges(energy_keV, segments)
    excluded = bins_in_ranges(edges, energy_keV, config.input.exclude_keV)
    if len(excluded) >= len(edges) - 1:
        from napari_xrfquant.errors import XRFQuantError

        raise XRFQuantError("the excluded ranges leave the network no input")
    return InputSpec(bin_edges_channel=edges, scale=config.input.scale, excluded_bins=excluded)


def optimiser_for(
    network: torch.nn.Module, config: TrainingConfig, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, Any]:
    """Adam and the learning-rate schedule ``config.schedule`` names."""
    optimiser = torch.optim.Adam(
        network.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    total = max(config.epochs * steps_per_epoch, 1)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if config.schedule == "cosine":
        # Reads config.epochs at every step, so stretching a running schedule
        # (as the bundled-model script does once it knows its pace) stays smooth.
        def cosine(step: int) -> float:
            progress = min(step / max(config.epochs * steps_per_epoch, 1), 1.0)
            return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine)
    elif config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=config.lr, total_steps=total, pct_start=0.15
        )
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
    return optimiser, scheduler


def network_to_fine_tune(config: TrainingConfig, n_channels: int) -> tuple[QuantNet, str]:
    """The network of ``config.init_from`` (a copy, weights trainable) and its model id.

    Raises
    ------
    XRFQuantError
        If the bundle quantifies other elements or reads channels the grid lacks.
    """
    import copy

    from napari_xrfquant.errors import XRFQuantError
    from napari_xrfquant.models.bundle import load_model

    model = load_model(str(config.resolve(config.init_from)))
    if list(model.elements) != list(config.elements):
        raise XRFQuantError(
            f"init_from {model.model_id} quantifies {', '.join(model.elements)}, the config "
            f"asks for {', '.join(config.elements)}"
        )
    try:
        model.network.input_spec.validate(n_channels)
    except ValueError as exc:
        raise XRFQuantError(f"init_from {model.model_id}: {exc}") from None
    network = copy.deepcopy(model.network)
    if config.input.exclude_keV:  # the fine-tune learns to do without these bins
        spec = network.input_spec
        energy = model.energy_keV
        spec.excluded_bins = sorted(
            {
                *spec.excluded_bins,
                *bins_in_ranges(spec.bin_edges_channel, energy, config.input.exclude_keV),
            }
        )
        network.features = SpectrumFeatures(spec)
    for parameter in network.parameters():
        parameter.requires_grad_(True)
    return network, model.model_id
