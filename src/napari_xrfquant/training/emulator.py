"""Training data of the fit-quality emulator (the network's optional decoder head).

The emulator maps a composition to the binned spectrum the nominal instrument
gives, so quantify can report a fit quality without the physics simulator.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch

from napari_xrfquant.jobs import Progress
from napari_xrfquant.models.architectures import QuantNet
from napari_xrfquant.training.datasets import SpectrumGenerator, simulate_set
from napari_xrfquant.training.evaluation import binned_fractions

#: Compositions simulated with the nominal instrument to train the emulator.
DECODER_SET_SIZE = 50_000
#: Compositions simulated per progress event.
BLOCK = 4096


def simulate_nominal_set(
    generator: SpectrumGenerator, wt_percent: torch.Tensor, network: QuantNet, seed: int
) -> Generator[Progress, None, tuple[torch.Tensor, torch.Tensor]]:
    """Nominal-instrument spectra (binned, sum 1) of up to DECODER_SET_SIZE compositions.

    The emulator must reproduce the nominal instrument: trained on jittered
    spectra it would learn their blurred average and report misfit for
    perfectly nominal data.
    """
    n = min(len(wt_percent), DECODER_SET_SIZE)
    rng = np.random.default_rng(seed)
    wt, fractions = [], []
    for start in range(0, n, BLOCK):
        part = simulate_set(generator, wt_percent[start : min(start + BLOCK, n)].numpy(), None, rng)
        wt.append(part.wt_percent)
        fractions.append(binned_fractions(network, part.expected).cpu())
        yield Progress(min(start + BLOCK, n), n, "nominal")
    return torch.cat(wt), torch.cat(fractions)


def emulator_batch(
    nominal: tuple[torch.Tensor, torch.Tensor], size: int, g: torch.Generator, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of the nominal set: compositions and binned spectra."""
    wt, fractions = nominal
    rows = torch.randint(0, wt.shape[0], (size,), generator=g)
    return wt[rows].to(device), fractions[rows].to(device)
