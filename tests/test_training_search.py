"""Hyperparameter search: published ranges, pruning on validation loss, real trainer."""

from __future__ import annotations

import math
from types import SimpleNamespace

import optuna
import pytest

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.jobs import CancelToken
from napari_xrfquant.training.config import TrainingConfig
from napari_xrfquant.training.search import (
    SearchSpace,
    apply_params,
    best_trial,
    iter_search,
    make_study,
    search,
    suggest_params,
    with_absolute_instrument,
)


def tiny_config(**changes) -> TrainingConfig:
    """Two elements, a few hundred simulated spectra, two short epochs."""
    values = dict(
        name="tiny",
        elements=["Fe", "Ni"],
        n_spectra=400,
        epochs=2,
        patience=5,
        steps_per_epoch=2,
        eval_counts=[1e4],
        device="cpu",
        seed=3,
    )
    values.update(changes)
    return TrainingConfig(**values)


def test_sampled_parameters_stay_in_the_published_ranges():
    study = make_study(seed=0)
    space = SearchSpace()
    seen = [suggest_params(study.ask(), space) for _ in range(200)]
    assert {p["hidden_layers"] for p in seen} <= {2, 3, 4}
    assert all(25 <= p["neurons"] <= 500 for p in seen)
    assert all(1 <= p["batch_size"] <= 64 for p in seen)
    assert all(1e-5 <= p["lr"] <= 1e-1 for p in seen)
    # log scale: about half of log-uniform draws in [1, 64] lie below sqrt(64) = 8
    below = sum(p["batch_size"] < 8 for p in seen) / len(seen)
    assert 0.3 < below < 0.7
    lr_below = sum(p["lr"] < 1e-3 for p in seen) / len(seen)
    assert 0.35 < lr_below < 0.65


def test_apply_params_fills_the_form_values():
    config = apply_params(tiny_config(), {"hidden_layers": 4, "neurons": 77, "batch_size": 9,
                                          "lr": 3e-4})
    assert (config.model.hidden_layers, config.model.neurons) == (4, 77)
    assert (config.batch_size, config.lr) == (9, 3e-4)
    assert config.elements == ["Fe", "Ni"]


def test_bad_search_settings_are_refused():
    with pytest.raises(XRFQuantError, match="trials"):
        next(iter_search(tiny_config(), 0, train_fn=lambda *a, **k: None))
    with pytest.raises(XRFQuantError, match="neurons"):
        SearchSpace(neurons=(0, 10))


def _fake_train(config, progress=None, cancel=None):
    """Validation loss falls per epoch from a level set by |log10(lr) + 3|: lr 1e-3 is best."""
    level = 1.0 + abs(math.log10(config.lr) + 3.0)
    for epoch in range(1, config.epochs + 1):
        progress(SimpleNamespace(epoch=epoch, val_loss=level / epoch))
        if cancel.cancelled:
            return SimpleNamespace(cancelled=True)
    return SimpleNamespace(cancelled=False)


def test_median_pruner_stops_trials_worse_than_the_median():
    base = tiny_config(epochs=6)
    result = search(base, 12, train_fn=_fake_train, seed=1)
    states = [t.state for t in result.trials]
    assert len(states) == 12
    assert "pruned" in states
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert all(t.epochs < base.epochs for t in pruned)
    complete = [t for t in result.trials if t.state == "complete"]
    assert result.best is min(complete, key=lambda t: t.value)
    # the best trial's loss is its final epoch's: level / epochs
    level = 1.0 + abs(math.log10(result.best.params["lr"]) + 3.0)
    assert result.best.value == pytest.approx(level / base.epochs)
    assert result.best_config.lr == result.best.params["lr"]


def test_cancel_ends_the_search():
    token = CancelToken()
    result = search(tiny_config(epochs=3), 10, train_fn=_fake_train,
                    progress=lambda trial: token.cancel(), cancel=token)
    assert len(result.trials) == 1


def test_best_trial_prefers_complete_trials():
    from napari_xrfquant.training.search import TrialResult

    params = {"hidden_layers": 2, "neurons": 30, "batch_size": 8, "lr": 1e-3}
    trials = [
        TrialResult(0, params, 0.1, "pruned", 1, 1.0),
        TrialResult(1, params, 0.5, "complete", 3, 1.0),
        TrialResult(2, params, None, "failed", 0, 1.0, "boom"),
    ]
    assert best_trial(trials).number == 1
    assert best_trial(trials[:1]).number == 0
    assert best_trial(trials[2:]) is None


def test_relative_instrument_becomes_absolute(tmp_path):
    config = tiny_config(instrument="inst.toml").replace(base_dir=tmp_path)
    assert with_absolute_instrument(config).instrument == str((tmp_path / "inst.toml").resolve())


@pytest.mark.slow
def test_short_search_with_the_real_trainer():
    """Two trials of the real simulator + trainer on tiny data."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen = []
    result = search(tiny_config(), 2, progress=seen.append, seed=0)
    assert [t.number for t in seen] == [0, 1]
    for trial in result.trials:
        assert trial.state in ("complete", "pruned")
        assert trial.epochs == 2
        assert math.isfinite(trial.value) and trial.value > 0
    assert result.best_config.model.neurons == result.best.params["neurons"]
    assert result.best_config.batch_size == result.best.params["batch_size"]
