"""A training run's time budget holds the simulation too, and paces a cosine schedule."""

from __future__ import annotations

import math
import time

import numpy as np

from napari_xrfquant.training.budget import (
    MIN_SIMULATED,
    TimeBudget,
    pace_to_budget,
    simulate_or_cached,
)
from napari_xrfquant.training.config import TrainingConfig


def test_a_cosine_schedule_is_paced_to_end_with_the_budget():
    config = TrainingConfig(epochs=1000, schedule="cosine", max_minutes=1.0)
    budget = TimeBudget(time.perf_counter() - 20.0, 60.5)  # 20 s spent, 40.5 s left
    pace_to_budget(config, budget, epoch=4, epoch_seconds=[5.0, 5.0, 5.0, 5.0])
    assert config.epochs == 4 + 8  # eight more 5 s epochs fit in the 40 s left
    pace_to_budget(config, budget, epoch=5, epoch_seconds=[1.0] * 5)
    assert config.epochs == 12  # it only shrinks


def test_pacing_leaves_other_schedules_and_unbounded_runs_alone():
    constant = TrainingConfig(epochs=1000, schedule="constant", max_minutes=1.0)
    pace_to_budget(constant, TimeBudget(time.perf_counter(), 60.0), 1, [30.0])
    assert constant.epochs == 1000
    unbounded = TrainingConfig(epochs=1000, schedule="cosine")
    budget = TimeBudget.of(unbounded)
    assert math.isinf(budget.seconds)
    pace_to_budget(unbounded, budget, 1, [30.0])
    assert unbounded.epochs == 1000


class _SlowSource:
    """A spectrum source that takes its time: 0.05 s a block."""

    elements = ("Fe", "Ni")
    energy_keV = np.linspace(1.0, 20.0, 64)

    def expected(self, wt, jitter=None):
        import torch

        time.sleep(0.05)
        return torch.full((len(wt), 64), 1.0 / 64, dtype=torch.float64)


def test_the_simulation_stops_at_its_share_of_the_budget(monkeypatch):
    from napari_xrfquant.training import budget as module

    monkeypatch.setattr(module, "SIMULATE_BLOCK", 256)
    config = TrainingConfig(elements=["Fe", "Ni"], n_spectra=50_000, max_minutes=0.01)
    generator = simulate_or_cached(config, _SlowSource(), np.random.default_rng(0),
                                   TimeBudget.of(config))
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            simulated = stop.value
            break
    # 0.6 s budget, 40 % for simulation: a handful of 0.05 s blocks, not 196 of them
    assert MIN_SIMULATED <= len(simulated.wt_percent) < 50_000
    assert events[-1].done == len(simulated.wt_percent)
