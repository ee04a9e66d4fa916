"""How data reach a model's energy grid: :class:`ModelInput` over the one resampler.

The resampler itself (:class:`Resampler`, :func:`resample_counts`,
:func:`channel_edges_keV`, :func:`same_grid`) lives in
:mod:`napari_xrfquant.io.grid`, below the readers that also use it; it is
re-exported here.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant.errors import ModelBundleError, XRFQuantError
from napari_xrfquant.io.grid import (
    GRID_TOLERANCE,
    Resampler,
    channel_edges_keV,
    resample_counts,
    same_grid,
)

__all__ = [
    "GRID_TOLERANCE",
    "ModelInput",
    "Resampler",
    "channel_edges_keV",
    "check_energy_coverage",
    "input_problem",
    "resample_counts",
    "same_grid",
]

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from napari_xrfquant.models.bundle import QuantModel

class ModelInput:
    """How raw channels of the input become the model's input bins.

    Either the model's own grid (the network bins channels itself) or a
    :class:`Resampler` straight onto the model's bin edges, which equals
    resampling onto the model grid and then binning, without the intermediate array.

    Raises
    ------
    ModelBundleError
        If the data's energy range does not cover the bins the model reads.
    """

    def __init__(self, model: QuantModel, energy_keV: np.ndarray | None, n_channels: int) -> None:
        model_energy = model.energy_keV
        spec = model.network.input_spec
        self.region = spec.channel_range
        self.resampler: Resampler | None = None
        if energy_keV is None:
            if n_channels != len(model_energy):
                raise ModelBundleError(
                    f"the data have {n_channels} channels but model {model.model_id} expects "
                    f"{len(model_energy)}; pass the data's energy axis (energy_keV) to resample"
                )
            return
        energy = np.asarray(energy_keV, dtype=np.float64).ravel()
        if len(energy) != n_channels:
            raise XRFQuantError(
                f"energy_keV has {len(energy)} values but the data have {n_channels} channels"
            )
        if same_grid(energy, model_energy):
            return
        bin_edges_keV = channel_edges_keV(model_energy)[np.asarray(spec.bin_edges_channel)]
        check_energy_coverage(energy, bin_edges_keV, model.model_id)
        self.resampler = Resampler(energy, bin_edges_keV)
        warnings.warn(
            f"the data's energy axis ({n_channels} channels, "
            f"{energy[0]:.4f}-{energy[-1]:.4f} keV) differs from model {model.model_id}'s "
            f"({len(model_energy)} channels, {model_energy[0]:.4f}-{model_energy[-1]:.4f} keV); "
            "counts are resampled onto the model grid",
            UserWarning,
            stacklevel=4,
        )

    @property
    def resampled(self) -> bool:
        """Whether the input is resampled onto the model grid."""
        return self.resampler is not None

    def select(self, counts: np.ndarray) -> np.ndarray:
        """The channels worth converting to float: the model's region on its own grid."""
        if self.resampler is None:
            return counts[:, self.region[0] : self.region[1]]
        return counts

    def binned(self, model: QuantModel, block: torch.Tensor) -> torch.Tensor:
        """Binned counts ``(n, K)`` for the selected counts ``(n, C')`` (float32 tensor)."""
        if self.resampler is not None:
            return self.resampler.torch(block)
        features = model.network.features
        if block.shape[1] == self.region[1] - self.region[0]:
            return features.bin_region(block)
        return features.bin_counts(block)


def check_energy_coverage(
    energy_keV: np.ndarray, needed_edges_keV: np.ndarray, model_id: str
) -> None:
    """Refuse data whose channels do not cover the energy range a model reads.

    Half a source channel of slack: a grid that ends mid-channel still covers.

    Raises
    ------
    ModelBundleError
        Naming both ranges.
    """
    source_edges = channel_edges_keV(energy_keV)
    lo, hi = float(needed_edges_keV[0]), float(needed_edges_keV[-1])
    slack = 0.5 * float(np.min(np.diff(source_edges)))
    if source_edges[0] > lo + slack or source_edges[-1] < hi - slack:
        raise ModelBundleError(
            f"the data cover {source_edges[0]:.2f}-{source_edges[-1]:.2f} keV but model "
            f"{model_id} needs {lo:.2f}-{hi:.2f} keV; it cannot quantify these data"
        )


def input_problem(model: QuantModel, energy_keV: np.ndarray | None, n_channels: int) -> str | None:
    """Why ``model`` cannot read data of this energy axis (one line), or None if it can.

    The check :class:`ModelInput` makes when quantifying, asked before any work
    (a GUI checks it when the cube or the model is chosen); the resampling
    warning it would give is not repeated here.
    """
    from napari_xrfquant.errors import XRFQuantError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ModelInput(model, energy_keV, n_channels)
        except XRFQuantError as exc:
            return str(exc).strip().splitlines()[0]
    return None
