"""The training and search jobs of the Train dock (no Qt).

Both are :mod:`napari_xrfquant.jobs` jobs: the training yields the training
core's events and returns its :class:`~napari_xrfquant.training.events.TrainResult`
(a cancelled run returns its best model so far, calibrated and with test
metrics, which the dock shows and can save); the search yields each finished
trial and returns the :class:`~napari_xrfquant.training.search.SearchResult`.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import TYPE_CHECKING

from napari_xrfquant.jobs import CancelToken

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from napari_xrfquant._napari._layers import Counts
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.training.config import TrainingConfig
    from napari_xrfquant.training.datasets import SpectrumGenerator
    from napari_xrfquant.training.events import TrainingEvent, TrainResult
    from napari_xrfquant.training.search import SearchResult, TrialResult


def spectrum_generator(config: TrainingConfig, instrument: Instrument) -> SpectrumGenerator:
    """The physics simulator for ``config``'s elements and the widget's instrument."""
    from napari_xrfquant.training.datasets import SimulatorSpectra

    return SimulatorSpectra(list(config.elements), instrument)


def training_job(
    config: TrainingConfig,
    instrument: Instrument,
    generator: SpectrumGenerator | None = None,
    unlabelled: tuple[Counts, np.ndarray] | None = None,
) -> Generator[TrainingEvent, None, TrainResult]:
    """Train ``config`` for ``instrument``, yielding every training event.

    Parameters
    ----------
    config
        The :class:`~napari_xrfquant.training.config.TrainingConfig`.
    instrument
        The :class:`~napari_xrfquant.instrument.Instrument` to simulate.
    generator
        Spectrum generator; None for the physics simulator of ``instrument``.
    unlabelled
        AXS (``config.axs``): ``(counts (H, W, C), energy_keV)`` of a cube layer.
    """
    from napari_xrfquant.training.loop import Trainer

    spectra = generator or spectrum_generator(config, instrument)
    return (yield from Trainer(config, spectra, unlabelled).events())


def search_job(
    config: TrainingConfig,
    instrument: Instrument,
    n_trials: int,
    cancel: CancelToken,
    generator: SpectrumGenerator | None = None,
    trial_timeout_s: float | None = None,
) -> Generator[TrialResult, None, SearchResult]:
    """Run a hyperparameter search, yielding each finished trial.

    ``cancel`` is the job's own token: the search reads it inside a trial too.
    The simulator is built once and shared by all trials (and their simulated
    set is cached, see :func:`~napari_xrfquant.training.search.iter_search`).
    """
    from napari_xrfquant.training.loop import train
    from napari_xrfquant.training.search import iter_search

    spectra = generator or spectrum_generator(config, instrument)
    return (yield from iter_search(config, n_trials,
                                   train_fn=functools.partial(train, generator=spectra),
                                   cancel=cancel, trial_timeout_s=trial_timeout_s))
