"""Forward models: the spectrum expected for a composition, in a model's input bins.

Fit quality and the spectrum inspector compare a measured spectrum with the one
expected at the predicted composition. Two forward models give it: the small
emulator stored in a bundle (:class:`~napari_xrfquant.models.architectures.SpectrumDecoder`,
a few matrix products) and the physics simulator for the model's instrument
(:class:`SimulatorForwardModel`, exact, slower); :func:`forward_model` picks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from napari_xrfquant.models.bundle import QuantModel


class SimulatorForwardModel:
    """Expected binned spectrum (fractions summing to 1) for compositions in wt%.

    Wraps the physics simulator (:class:`napari_xrfquant.physics.XRFSimulator`)
    for the model's instrument and bins its output like the network's input.
    """

    def __init__(self, model: QuantModel, device: str) -> None:
        import torch

        from napari_xrfquant.physics import XRFSimulator

        self.simulator = XRFSimulator(
            model.elements, instrument=model.instrument, device=device, dtype=torch.float32
        )
        self.simulator.eval()
        self.features = model.network.features
        self.device = device

    def spectrum(self, wt_percent: torch.Tensor) -> torch.Tensor:
        """``(N, E)`` wt% -> ``(N, C)`` expected spectra on the model grid, each summing to 1."""
        import torch

        with torch.inference_mode():
            fractions = (wt_percent.to(self.device) / 100.0).clamp_min(0.0)
            return self.simulator(fractions)

    def __call__(self, wt_percent: torch.Tensor) -> torch.Tensor:
        """``(N, E)`` wt% -> ``(N, K)`` binned fractions summing to 1."""
        import torch

        with torch.inference_mode():
            spectrum = self.spectrum(wt_percent)
            binned = self.features.bin_counts(spectrum.to(wt_percent.device, torch.float32))
            return binned / binned.sum(dim=1, keepdim=True).clamp_min(1e-30)


def simulator_forward_model(model: QuantModel, device: str) -> SimulatorForwardModel:
    """The physics forward model of ``model`` on ``device``, built once per model."""
    return model.cached(f"forward_model:{device}", lambda: SimulatorForwardModel(model, device))


def forward_model(model: QuantModel, device: str) -> Callable[[Any], Any]:
    """The cheapest forward model ``model`` has: its emulator, else the simulator."""
    decoder = model.network.decoder
    return decoder if decoder is not None else simulator_forward_model(model, device)
