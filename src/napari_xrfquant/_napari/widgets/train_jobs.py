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
from typing import Any

from napari_xrfquant.jobs import CancelToken


def spectrum_generator(config: Any, instrument: Any) -> Any:
    """The physics simulator for ``config``'s elements and the widget's instrument."""
    from napari_xrfquant.training.datasets import SimulatorSpectra

    return SimulatorSpectra(list(config.elements), instrument)


def training_job(
    config: Any,
    instrument: Any,
    generator: Any = None,
    unlabelled: Any = None,
) -> Generator[Any, None, Any]:
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
    config: Any,
    instrument: Any,
    n_trials: int,
    cancel: CancelToken,
    generator: Any = None,
    trial_timeout_s: float | None = None,
) -> Generator[Any, None, Any]:
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
