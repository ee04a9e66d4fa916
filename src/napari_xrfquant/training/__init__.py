"""Training the quantification network on simulated spectra.

Public API (stable; the retraining widget and ``xrfquant train`` use it):

- :class:`TrainingConfig` with :func:`load_config` / :func:`save_config` (TOML);
- :func:`iter_train` (generator of :class:`~napari_xrfquant.progress.Progress`,
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
    "Trainer": "napari_xrfquant.training.loop",
    "iter_train": "napari_xrfquant.training.loop",
    "train": "napari_xrfquant.training.loop",
    "TrainResult": "napari_xrfquant.training.events",
    "EpochEnd": "napari_xrfquant.training.events",
    "TrainingFinished": "napari_xrfquant.training.events",
    "evaluate_model": "napari_xrfquant.training.evaluation",
    "fit_sigma_calibration": "napari_xrfquant.training.sigma",
    "check_settings": "napari_xrfquant.training.checks",
    "settings_problems": "napari_xrfquant.training.checks",
    "PeakSpectra": "napari_xrfquant.training.datasets",
    "REFERENCE_PEAKS": "napari_xrfquant.training.datasets",
    "SimulatorSpectra": "napari_xrfquant.training.datasets",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
