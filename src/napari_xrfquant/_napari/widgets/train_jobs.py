"""The training and search jobs the Train widget runs in a worker thread (no Qt).

Each job is a generator: it yields the training core's events (or search
trials) so a napari ``thread_worker`` can pass them to the GUI, and returns a
:class:`TrainOutcome` / :class:`SearchOutcome` instead of raising. Cancel is a
:class:`threading.Event` checked after every event: a cancelled training run
still returns the best-on-validation model so far (calibrated, with test
metrics), which the GUI shows and can save.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from napari_xrfquant.errors import XRFQuantError


@dataclass
class TrainOutcome:
    """How a training job ended: ``result`` (a TrainResult) or ``error``."""

    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False


@dataclass
class SearchOutcome:
    """How a search job ended: ``result`` (a SearchResult) or ``error``."""

    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False


def spectrum_generator(config: Any, instrument: Any) -> Any:
    """The physics simulator for ``config``'s elements and the widget's instrument."""
    from napari_xrfquant.training.datasets import SimulatorSpectra

    return SimulatorSpectra(list(config.elements), instrument)


def training_job(
    config: Any,
    instrument: Any,
    stop: threading.Event,
    generator: Any = None,
    unlabelled: Any = None,
) -> Generator[Any, None, TrainOutcome]:
    """Train ``config`` for ``instrument``, yielding every training event.

    Parameters
    ----------
    config
        The :class:`~napari_xrfquant.training.config.TrainingConfig`.
    instrument
        The :class:`~napari_xrfquant.instrument.Instrument` to simulate.
    stop
        Set it to cancel; the job stops at the next event (half a second of
        training, or a block of simulated spectra) and returns the best model so far.
    generator
        Spectrum generator; None for the physics simulator of ``instrument``.
    unlabelled
        AXS (``config.axs``): ``(counts (H, W, C), energy_keV)`` of a cube layer.
    """
    from napari_xrfquant.training.loop import Trainer

    try:
        spectra = generator or spectrum_generator(config, instrument)
        trainer = Trainer(config, spectra, unlabelled)
        events = trainer.events()
        while True:
            try:
                event = next(events)
            except StopIteration as done:
                return TrainOutcome(result=done.value)
            yield event
            if stop.is_set():
                events.close()
                try:
                    return TrainOutcome(result=trainer.current_result(cancelled=True),
                                        cancelled=True)
                except XRFQuantError as exc:  # cancelled before the first epoch
                    return TrainOutcome(error=exc, cancelled=True)
    except Exception as exc:  # every failure goes back to the GUI thread
        return TrainOutcome(error=exc)


def search_job(
    config: Any,
    instrument: Any,
    n_trials: int,
    stop: threading.Event,
    generator: Any = None,
    trial_timeout_s: float | None = None,
) -> Generator[Any, None, SearchOutcome]:
    """Run a hyperparameter search, yielding each finished trial.

    The simulator is built once and shared by all trials (and their simulated
    set is cached, see :func:`~napari_xrfquant.training.search.iter_search`).
    """
    from napari_xrfquant.training.loop import train
    from napari_xrfquant.training.search import iter_search

    try:
        spectra = generator or spectrum_generator(config, instrument)
        searcher = iter_search(
            config,
            n_trials,
            train_fn=functools.partial(train, generator=spectra),
            should_stop=stop.is_set,
            trial_timeout_s=trial_timeout_s,
        )
        while True:
            try:
                trial = next(searcher)
            except StopIteration as done:
                return SearchOutcome(result=done.value, cancelled=stop.is_set())
            yield trial
    except Exception as exc:
        return SearchOutcome(error=exc)
