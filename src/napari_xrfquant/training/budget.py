"""A training run's time budget, simulation included.

``TrainingConfig.max_minutes`` bounds the whole run: the training set's
simulation may take :data:`SIMULATION_SHARE` of it (fewer spectra are simulated
when the budget is short, never fewer than :data:`MIN_SIMULATED`), an epoch
is started only while the time left holds one more like the last, and a cosine
schedule is paced to end with the budget (:func:`pace_to_budget`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from napari_xrfquant.jobs import Progress
from napari_xrfquant.training.config import TrainingConfig
from napari_xrfquant.training.datasets import (
    SIMULATE_BLOCK,
    SimulatedSet,
    SpectrumGenerator,
    cache_key,
    load_cache,
    sample_compositions,
    save_cache,
    simulate_set,
)

#: Share of the time budget the training set's simulation may take.
SIMULATION_SHARE = 0.4
#: Fewest spectra a set cut short by the budget keeps (each split gets some).
MIN_SIMULATED = 500


@dataclass(frozen=True)
class TimeBudget:
    """Seconds allowed from ``started`` (``time.perf_counter()``); inf: no limit."""

    started: float
    seconds: float = math.inf

    @classmethod
    def of(cls, config: TrainingConfig) -> TimeBudget:
        """The budget of ``config`` (``max_minutes``), starting now."""
        minutes = config.max_minutes
        return cls(time.perf_counter(), math.inf if minutes is None else 60.0 * minutes)

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds still allowed (inf without a limit)."""
        return self.seconds - self.elapsed()


def simulate_or_cached(
    config: TrainingConfig,
    generator: SpectrumGenerator,
    rng: np.random.Generator,
    budget: TimeBudget | None = None,
) -> Generator[Progress, None, SimulatedSet]:
    """The noise-free set of ``config``: from its cache file, else simulated (and
    cached), a block at a time; simulation stops once it has used
    :data:`SIMULATION_SHARE` of ``budget`` (a set cut short is not cached)."""
    wt = sample_compositions(config.n_spectra, len(config.elements), config.absent_probability,
                             rng)
    key = cache_key(config, generator)
    cache = config.resolve(config.cache)
    cached = load_cache(cache, key) if cache is not None else None
    if cached is not None:
        return cached
    allowed = math.inf if budget is None else SIMULATION_SHARE * budget.seconds
    parts: list[SimulatedSet] = []
    done = 0
    while done < config.n_spectra:
        stop = min(done + SIMULATE_BLOCK, config.n_spectra)
        parts.append(simulate_set(generator, wt[done:stop], config.jitter, rng))
        done = stop
        yield Progress(done, config.n_spectra, "simulate")
        if budget is not None and budget.elapsed() > allowed and done >= MIN_SIMULATED:
            break  # the budget's share for simulation is spent: train on what there is
    full = SimulatedSet(
        torch.cat([p.wt_percent for p in parts]), torch.cat([p.expected for p in parts])
    )
    if cache is not None and done == config.n_spectra:
        save_cache(cache, full, key, generator)
    return full


def pace_to_budget(
    config: TrainingConfig, budget: TimeBudget, epoch: int, epoch_seconds: list[float]
) -> None:
    """Shorten a cosine schedule to the epochs the budget still holds.

    After each epoch, ``config.epochs`` becomes at most ``epoch`` plus the epochs
    of the mean length so far that fit in the time left, so the learning rate
    decays to its floor as the budget runs out instead of being cut at its
    height. The schedule reads ``config.epochs`` at every step; it only shrinks.
    """
    if config.schedule != "cosine" or not math.isfinite(budget.seconds) or not epoch_seconds:
        return
    mean = sum(epoch_seconds) / len(epoch_seconds)
    fits = epoch + max(int(budget.left() // max(mean, 1e-9)), 0)
    config.epochs = max(min(config.epochs, fits), epoch)
