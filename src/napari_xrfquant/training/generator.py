"""The spectrum-generator network: composition -> spectrum, trained on the simulator.

The first published method trained a network from composition to spectrum
(hidden layers of 50 and 500 neurons) on simulated spectra and generated its
training spectra with it. :class:`GeneratorNet` is that network: mass fractions
``(N, E)`` in, a spectrum ``(N, C)`` summing to 1 out (softmax over channels),
trained on noise-free spectra of one instrument (:func:`train_generator`).
Saved as ``generator.safetensors`` + ``generator.json`` (elements, energy axis,
layer sizes, its agreement with the simulator); :class:`GeneratorSpectra`
serves it to the trainer (``simulator = "generator"`` in a training config).
The network knows one instrument: it has no jitter.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_xrfquant.errors import XRFQuantError

WEIGHTS, METADATA = "generator.safetensors", "generator.json"
#: The published hidden layers.
HIDDEN = (50, 500)


class GeneratorNet(nn.Module):
    """Mass fractions ``(N, E)`` -> spectrum ``(N, C)`` summing to 1."""

    def __init__(self, n_elements: int, n_channels: int, hidden: Sequence[int] = HIDDEN) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_elements
        for size in hidden:
            layers += [nn.Linear(width, size), nn.SiLU()]
            width = size
        layers.append(nn.Linear(width, n_channels))
        self.body = nn.Sequential(*layers)
        self.hidden = tuple(int(h) for h in hidden)

    def forward(self, fractions: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body(fractions), dim=1)


@dataclass
class Agreement:
    """How the generator compares to the simulator on held-out compositions."""

    mean_abs_over_max: float  #: mean |generated - simulated| per spectrum over its maximum
    worst_abs_over_max: float  #: the same for the worst spectrum
    n_spectra: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mean_abs_over_max": self.mean_abs_over_max,
                "worst_abs_over_max": self.worst_abs_over_max, "n_spectra": self.n_spectra}


def agreement(generated: torch.Tensor, simulated: torch.Tensor) -> Agreement:
    """Mean absolute difference of each spectrum (over channels) divided by its maximum."""
    per_spectrum = (generated - simulated).abs().mean(dim=1) / simulated.amax(dim=1)
    return Agreement(float(per_spectrum.mean()), float(per_spectrum.max()), len(per_spectrum))


def train_generator(
    elements: Sequence[str],
    instrument: Any = None,
    n_spectra: int = 20_000,
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    hidden: Sequence[int] = HIDDEN,
    absent_probability: float = 0.3,
) -> tuple[GeneratorNet, Agreement]:
    """Train a generator on ``n_spectra`` simulated noise-free spectra of ``instrument``.

    Compositions are drawn as for training sets
    (:func:`~napari_xrfquant.training.datasets.sample_compositions`); a tenth is
    held out for the agreement. The loss is the KL divergence of the spectra.
    """
    from napari_xrfquant.training.datasets import SimulatorSpectra, sample_compositions

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    simulator = SimulatorSpectra(list(elements), instrument)
    wt = sample_compositions(n_spectra, len(elements), absent_probability, rng)
    wt_tensor = torch.as_tensor(wt, dtype=torch.float32)
    spectra = torch.cat([simulator.expected(wt_tensor[i : i + 4096])
                         for i in range(0, n_spectra, 4096)])
    n_held = max(1, n_spectra // 10)
    held, train = slice(0, n_held), slice(n_held, None)
    fractions = wt_tensor / 100.0
    net = GeneratorNet(len(elements), spectra.shape[1], hidden)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * math.ceil((n_spectra - n_held) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    x, y = fractions[train], spectra[train]
    for _epoch in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            optimiser.zero_grad()
            predicted = net(x[rows])
            target = y[rows]
            loss = (target * (torch.log(target.clamp_min(1e-12))
                              - torch.log(predicted.clamp_min(1e-12)))).sum(dim=1).mean()
            loss.backward()
            optimiser.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        result = agreement(net(fractions[held]), spectra[held])
    return net, result


class GeneratorSpectra:
    """A trained :class:`GeneratorNet` as a trainer's spectrum source (no jitter)."""

    def __init__(self, net: GeneratorNet, elements: Sequence[str], energy_keV: np.ndarray,
                 metadata: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.elements = list(elements)
        self.energy_keV = np.asarray(energy_keV, dtype=np.float64)
        self.metadata = dict(metadata or {})

    def expected(
        self, wt_percent: torch.Tensor, jitter: dict[str, float] | None = None
    ) -> torch.Tensor:
        """Noise-free spectra ``(N, C)`` summing to 1; ``jitter`` is not modelled."""
        with torch.no_grad():
            return self.net(wt_percent.float() / 100.0)

    def generate_per_minute(self, n: int = 100_000, seed: int = 0) -> float:
        """Measured spectra generated per minute on this machine (batches of 16384)."""
        rng = np.random.default_rng(seed)
        wt = torch.as_tensor(rng.dirichlet(np.ones(len(self.elements)), size=n) * 100.0,
                             dtype=torch.float32)
        started = time.perf_counter()
        for start in range(0, n, 16384):
            self.expected(wt[start : start + 16384])
        return 60.0 * n / (time.perf_counter() - started)


def save_generator(folder: str | os.PathLike[str], net: GeneratorNet, elements: Sequence[str],
                   energy_keV: np.ndarray, result: Agreement, overwrite: bool = False) -> Path:
    """Write ``generator.safetensors`` and ``generator.json`` into ``folder`` (atomically)."""
    from safetensors.torch import save_file

    from napari_xrfquant._files import atomic_path

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    energy = np.asarray(energy_keV, dtype=np.float64)
    meta = {"kind": "xrfquant-generator", "elements": list(elements),
            "n_channels": int(energy.size), "hidden": list(net.hidden),
            "energy_keV": {"first": float(energy[0]), "last": float(energy[-1])},
            "agreement": result.to_dict()}
    with atomic_path(target / WEIGHTS, overwrite=overwrite) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    with atomic_path(target / METADATA, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    np.save(target / "energy_keV.npy", energy)
    return target


def load_generator(folder: str | os.PathLike[str]) -> GeneratorSpectra:
    """A saved generator (no code runs on load: safetensors + JSON).

    Raises
    ------
    XRFQuantError
        For a folder without a readable generator.
    """
    from safetensors.torch import load_file

    source = Path(folder)
    try:
        meta = json.loads((source / METADATA).read_text(encoding="utf-8"))
        state = load_file(str(source / WEIGHTS))
        energy = np.load(source / "energy_keV.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise XRFQuantError(f"{source}: no readable spectrum generator ({exc})") from None
    if meta.get("kind") != "xrfquant-generator":
        raise XRFQuantError(f"{source}: {METADATA} is not a spectrum generator's")
    net = GeneratorNet(len(meta["elements"]), int(meta["n_channels"]), meta["hidden"])
    net.load_state_dict(state)
    return GeneratorSpectra(net, meta["elements"], energy, meta)


def generator_for(config: Any) -> GeneratorSpectra:
    """The generator a :class:`~napari_xrfquant.training.config.TrainingConfig` names.

    Raises
    ------
    XRFQuantError
        When it quantifies other elements or has another channel count than the
        config's instrument.
    """
    network = load_generator(str(config.resolve(config.generator)))
    n_channels = config.load_instrument().detector.n_channels
    if network.elements != list(config.elements) or network.energy_keV.size != n_channels:
        raise XRFQuantError(
            f"generator {config.generator}: {', '.join(network.elements)} on "
            f"{network.energy_keV.size} channels; the config asks for "
            f"{', '.join(config.elements)} on {n_channels}"
        )
    return network


def spectrum_source(config: Any, device: str = "cpu") -> Any:
    """What a training config's spectra come from: the generator network for
    ``simulator = "generator"``, else :func:`.datasets.default_generator`."""
    from napari_xrfquant.training.datasets import default_generator

    if config.simulator == "generator":
        return generator_for(config)
    return default_generator(config, device)
