"""Training the quantification network on simulated spectra.

Public API (stable; the retraining widget and ``xrfquant train`` use it):

- :class:`TrainingConfig` with :func:`load_config` / :func:`save_config` (TOML);
- :func:`iter_train` (generator of :class:`~napari_xrfquant.jobs.Progress`,
  :class:`EpochEnd`, :class:`TrainingFinished`; returns a :class:`TrainResult`) and
  :class:`Trainer`;
- :func:`train(config, progress=None, cancel=None) <train>` -> :class:`TrainResult`,
  whose ``.save(directory)`` writes a model bundle and ``.metrics`` holds the test
  metrics per count level and element;
- :func:`evaluate_model` for test metrics of any model on any held-out set.

Names resolve lazily so that importing this package does not import torch.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
