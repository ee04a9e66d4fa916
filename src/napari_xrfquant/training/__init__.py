"""Training the quantification network on simulated spectra.

Public API (stable; the retraining widget and ``xrfquant train`` use it):

- :class:`TrainingConfig` with :func:`load_config` / :func:`save_config` (TOML);
- :func:`iter_train` (generator of :class:`SimulationProgress`, :class:`BatchProgress`,
  :class:`EpochEnd`, :class:`TrainingFinished`; returns a :class:`TrainResult`) and
  :class:`Trainer`;
- :func:`train(config, progress=None, should_stop=None) <train>` -> :class:`TrainResult`,
  whose ``.save(directory)`` writes a model bundle and ``.metrics`` holds the test
  metrics per count level and element;
- :func:`evaluate_model` for test metrics of any model on any held-out set.

Names resolve lazily so that importing this package does not import torch.
"""

from __future__ import annotations

from napari_xrfquant._lazy import lazy_exports

_LAZY = {
    "TrainingConfig": "napari_xrfquant.training.config",
    "load_config": "napari_xrfquant.training.config",
    "save_config": "napari_xrfquant.training.config",
    "config_to_toml": "napari_xrfquant.training.config",
    "Trainer": "napari_xrfquant.training.trainer",
    "TrainResult": "napari_xrfquant.training.trainer",
    "BatchProgress": "napari_xrfquant.training.trainer",
    "EpochEnd": "napari_xrfquant.training.trainer",
    "SimulationProgress": "napari_xrfquant.training.trainer",
    "TrainingFinished": "napari_xrfquant.training.trainer",
    "iter_train": "napari_xrfquant.training.trainer",
    "train": "napari_xrfquant.training.trainer",
    "evaluate_model": "napari_xrfquant.training.trainer",
    "PeakSpectra": "napari_xrfquant.training.data",
    "REFERENCE_PEAKS": "napari_xrfquant.training.data",
    "SimulatorSpectra": "napari_xrfquant.training.data",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
