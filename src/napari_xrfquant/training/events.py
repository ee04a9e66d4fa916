"""What a training run tells its consumer: progress, epochs, the result.

A run (:func:`napari_xrfquant.training.iter_train`) yields
:class:`~napari_xrfquant.jobs.Progress` (``stage`` ``"simulate"`` and
``"nominal"`` while spectra are simulated, ``"epoch"`` with ``epoch`` set about
every half second inside an epoch, so a consumer can cancel within a second),
:class:`EpochEnd` after each epoch and :class:`TrainingFinished` at the end; it
returns a :class:`TrainResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_xrfquant.jobs import Progress
from napari_xrfquant.models.bundle import QuantModel, save_bundle
from napari_xrfquant.training.config import TrainingConfig


@dataclass
class EpochEnd:
    """One epoch finished.

    Attributes
    ----------
    epoch
        1-based epoch number.
    train_loss, val_loss
        Mean loss over the epoch's batches and on the validation set.
    val_mae
        Validation mean absolute error (wt%) of the mean prediction.
    lr
        Learning rate at the end of the epoch.
    seconds
        Wall time of the epoch.
    improved
        Whether this epoch gave the best validation MAE so far.
    decoder_loss
        Mean chi-square per count of the fit-quality emulator (0 without one);
        not part of ``train_loss``.
    reconstruction_loss, val_reconstruction
        AXS only (0 without): mean fit quality of the reconstructed unlabelled
        spectra over the epoch's batches and on the held-out ones; ``beta``
        times the first is part of ``train_loss``.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_mae: float
    lr: float
    seconds: float
    improved: bool = False
    decoder_loss: float = 0.0
    reconstruction_loss: float = 0.0
    val_reconstruction: float = 0.0


@dataclass
class TrainingFinished:
    """The run ended; ``result`` holds the best model, its calibration and metrics."""

    result: TrainResult


TrainingEvent = Progress | EpochEnd | TrainingFinished


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    model
        The best-on-validation network with calibration, as a
        :class:`~napari_xrfquant.models.bundle.QuantModel` (``model.metadata``
        is the ``model.json`` content, including test metrics).
    history
        One :class:`EpochEnd` per epoch run.
    best_epoch
        Epoch of the kept weights.
    stopped_early, cancelled
        Why the loop ended before ``config.epochs``.
    config
        The configuration of the run.
    """

    model: QuantModel
    history: list[EpochEnd]
    best_epoch: int
    stopped_early: bool
    cancelled: bool
    config: TrainingConfig

    @property
    def metrics(self) -> dict[str, Any]:
        """Test metrics (``model.json["metrics"]``)."""
        return self.model.metadata.get("metrics", {})

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write the model bundle (``model.safetensors`` + ``model.json``) to ``directory``."""
        return save_bundle(directory, self.model.network, self.model.metadata, overwrite)
