"""Training on a fast analytic generator: the loss falls, results round-trip, cancel works."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.jobs import Cancelled, CancelToken, Progress, run
from napari_xrfquant.models.bundle import load_model
from napari_xrfquant.training import (
    REFERENCE_PEAKS,
    EpochEnd,
    PeakSpectra,
    Trainer,
    TrainingConfig,
    TrainingFinished,
    iter_train,
    train,
)
from napari_xrfquant.training.datasets import sample_compositions, split_indices
from napari_xrfquant.training.sigma import fit_sigma_calibration

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**changes) -> TrainingConfig:
    base = TrainingConfig(
        name="tiny",
        n_spectra=4000,
        epochs=10,
        batch_size=128,
        lr=3e-3,
        patience=20,
        device="cpu",
        eval_counts=[1e3, 1e5],
    )
    return base.replace(**changes)


@pytest.fixture(scope="module")
def trained():
    config = _config()
    events = []
    result = train(config, progress=events.append, generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    return config, events, result


def test_events_in_order(trained):
    config, events, result = trained
    assert isinstance(events[0], Progress) and events[0].stage == "simulate"
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == list(range(1, config.epochs + 1))
    assert isinstance(events[-1], TrainingFinished) and events[-1].result is result
    assert all(e.seconds > 0 and np.isfinite(e.val_loss) for e in epochs)


def test_training_reduces_validation_error(trained):
    _, events, result = trained
    val_mae = [e.val_mae for e in events if isinstance(e, EpochEnd)]
    # an untrained closed network predicts ~20 wt% for everything: MAE ~ 18 wt%
    assert val_mae[-1] < 0.5 * val_mae[0]
    assert result.best_epoch == int(np.argmin(val_mae)) + 1


def test_metrics_per_count_level(trained):
    _, _, result = trained
    levels = result.metrics["test"]["levels"]
    assert set(levels) == {"noiseless", "1e+03", "1e+05"}
    assert levels["1e+05"]["mae_wt"] <= levels["1e+03"]["mae_wt"]
    for level in levels.values():
        assert set(level["mae_per_element"]) == set(ELEMENTS)
        # calibrated on validation spectra: roughly 68 % of test errors within 1 sigma
        assert 0.5 < level["coverage_1sigma"] < 0.85


def test_result_round_trips_through_bundle(trained, tmp_path):
    _, _, result = trained
    directory = result.save(tmp_path / "model")
    model = load_model(directory)
    assert model.elements == ELEMENTS
    assert model.metadata["metrics"] == result.metrics
    gen = PeakSpectra(ELEMENTS, REFERENCE_PEAKS)
    wt = torch.tensor([[60.0, 5.0, 30.0, 0.0, 5.0]])
    counts = (gen.expected(wt) * 1e5).numpy()
    mean_loaded, sigma_loaded = model.predict(counts)
    mean_memory, sigma_memory = result.model.predict(counts)
    np.testing.assert_allclose(mean_loaded, mean_memory, rtol=1e-5)
    np.testing.assert_allclose(sigma_loaded, sigma_memory, rtol=1e-5)


def test_seeded_runs_repeat():
    config = _config(n_spectra=600, epochs=2)
    gen = PeakSpectra(ELEMENTS, REFERENCE_PEAKS)
    first = [e.val_mae for e in iter_train(config, gen) if isinstance(e, EpochEnd)]
    second = [e.val_mae for e in iter_train(config, gen) if isinstance(e, EpochEnd)]
    assert first == pytest.approx(second, rel=1e-5)


def test_cancel_ends_with_best_so_far():
    config = _config(n_spectra=600, epochs=50)
    seen = []
    token = CancelToken()

    def progress(event) -> None:
        seen.append(event)
        if len([e for e in seen if isinstance(e, EpochEnd)]) >= 2:
            token.cancel()

    result = train(
        config,
        progress=progress,
        cancel=token,
        generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS),
    )
    assert result.cancelled and len(result.history) == 2


def test_cancel_inside_an_epoch_keeps_the_best_checkpoint(monkeypatch):
    from napari_xrfquant.training import loop as trainer

    # report after every step so the test does not depend on the machine's speed
    monkeypatch.setattr(trainer, "BATCH_PROGRESS_INTERVAL_S", 0.0)
    config = _config(n_spectra=2000, epochs=5, batch_size=32)
    seen = []
    token = CancelToken()

    def progress(event) -> None:
        seen.append(event)
        # cancel in the middle of the second epoch
        if isinstance(event, Progress) and event.epoch == 2 and event.done >= 5:
            token.cancel()

    result = train(
        config,
        progress=progress,
        cancel=token,
        generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS),
    )
    last = seen[-1]
    assert isinstance(last, Progress) and (last.epoch, last.done) == (2, 5)
    assert last.total > last.done
    assert result.cancelled and len(result.history) == 1
    # the kept checkpoint is a working model: finite wt% that close to 100
    spectra = PeakSpectra(ELEMENTS, REFERENCE_PEAKS).expected(torch.tensor([[60.0, 20, 20, 0, 0]]))
    mean, sigma = result.model.predict(1e4 * spectra.numpy())
    assert mean.shape == (1, len(ELEMENTS)) and np.all(np.isfinite(mean)) and np.all(sigma > 0)
    assert mean.sum() == pytest.approx(100.0, abs=0.1)


def test_cancel_before_first_epoch_keeps_nothing():
    config = _config(n_spectra=600)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        train(config, cancel=token, generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    outcome = run(Trainer(config, PeakSpectra(ELEMENTS, REFERENCE_PEAKS)).events(), None, token)
    assert outcome.cancelled and outcome.result is None and outcome.error is None


def test_early_stopping_with_patience():
    config = _config(n_spectra=600, epochs=40, patience=1, lr=1e-7, schedule="constant")
    result = train(config, generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    assert result.stopped_early and len(result.history) < 40


def test_compositions_cover_the_simplex():
    wt = sample_compositions(20000, 5, 0.3, np.random.default_rng(0))
    np.testing.assert_allclose(wt.sum(axis=1), 100.0)
    assert wt.min() >= 0 and wt.max() > 99  # pure elements occur
    assert 0.25 < (wt == 0).mean() < 0.35  # absent with the configured probability
    assert np.all(wt.max(axis=0) > 99)


def test_split_is_80_10_10_and_disjoint():
    train_i, val_i, test_i = split_indices(1000, seed=3)
    assert (len(train_i), len(val_i), len(test_i)) == (800, 100, 100)
    assert len(set(train_i) | set(val_i) | set(test_i)) == 1000


def test_sigma_calibration_reaches_68_percent():
    rng = np.random.default_rng(0)
    true_sigma = rng.uniform(0.1, 2.0, size=(50000, 2))
    error = np.abs(rng.normal(0.0, true_sigma))
    # the head is over-confident by 3x at low counts, under-confident by 2x at high counts
    log10 = rng.uniform(2.0, 6.0, size=50000)
    head = np.where(log10[:, None] < 4.0, true_sigma / 3.0, true_sigma * 2.0)
    calibration = fit_sigma_calibration(error, head, log10, [2.0, 4.0, 6.0])
    np.testing.assert_allclose(np.asarray(calibration.scale), [[3.0, 3.0], [0.5, 0.5]], rtol=0.03)


def test_cnn_and_open_outputs_train():
    config = _config(n_spectra=600, epochs=1, sum_to_100=False)
    config.model.type = "cnn"
    config.model.conv_channels = [4, 8]
    config.model.hidden_layers = 1
    config.model.neurons = 16
    result = train(config, generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    gen = PeakSpectra(ELEMENTS, REFERENCE_PEAKS)
    mean, sigma = result.model.predict((gen.expected(torch.tensor([[50.0] * 5])) * 1e4).numpy())
    assert mean.shape == (1, 5) and np.all(mean >= 0) and np.all(sigma > 0)
    assert result.model.metadata["architecture"]["type"] == "cnn"


def test_one_training_set_format_for_simulate_cache_and_training(tmp_path):
    """`xrfquant simulate --noiseless` writes what training reads and what it caches."""
    from napari_xrfquant.cli import main
    from napari_xrfquant.io.spectra import read_spectra_attrs, read_spectra_set

    file = tmp_path / "set.h5"
    assert main(["simulate", "-o", str(file), "--elements", "Au,Ag", "-n", "200",
                 "--noiseless", "-q"]) == 0
    config = _config(elements=["Au", "Ag"], epochs=1, training_set=str(file),
                     cache=str(tmp_path / "unused.h5"), eval_counts=[1e4])
    result = train(config)
    splits = result.model.metadata["training"]["splits"]
    assert sum(splits.values()) == 200  # the file's spectra, not n_spectra
    assert not (tmp_path / "unused.h5").exists()  # nothing simulated, nothing cached

    # a cache written by training is a training-set file too
    cache = tmp_path / "cache.h5"
    train(_config(n_spectra=100, epochs=1, cache=str(cache), eval_counts=[1e4]),
          generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    cached = read_spectra_set(cache)
    assert cached.noiseless and len(cached) == 100 and cached.elements == ELEMENTS
    assert read_spectra_attrs(cache)["cache_key"]


def test_training_set_with_counts_or_other_elements_is_refused(tmp_path):
    from napari_xrfquant.cli import main

    file = tmp_path / "counts.h5"
    assert main(["simulate", "-o", str(file), "--elements", "Au,Ag", "-n", "40", "-q"]) == 0
    with pytest.raises(XRFQuantError, match="Poisson counts"):
        train(_config(elements=["Au", "Ag"], epochs=1, training_set=str(file)))
    assert main(["simulate", "-o", str(tmp_path / "n.h5"), "--elements", "Au,Cu", "-n", "40",
                 "--noiseless", "-q"]) == 0
    with pytest.raises(XRFQuantError, match="holds Au, Cu"):
        train(_config(elements=["Au", "Ag"], epochs=1, training_set=str(tmp_path / "n.h5")))


def test_excluded_input_ranges_are_not_read(tmp_path):
    """A line of the set-up (Ar K, 2.96 keV) in an excluded range changes no prediction."""
    import napari_xrfquant as xq
    from napari_xrfquant.models.features import bins_in_ranges

    config = _config(n_spectra=600, epochs=2, input={"exclude_keV": [(2.8, 3.2)]})
    result = train(config, generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    spec = result.model.network.input_spec
    energy = result.model.energy_keV
    assert spec.excluded_bins == bins_in_ranges(spec.bin_edges_channel, energy, [(2.8, 3.2)])
    assert spec.excluded_bins
    bundle = result.save(tmp_path / "excluding")
    model = load_model(bundle)
    assert model.network.input_spec.excluded_bins == spec.excluded_bins
    rng = np.random.default_rng(0)
    counts = rng.poisson(5.0, size=(4, energy.size)).astype(np.float32)
    argon = counts.copy()
    argon[:, np.abs(energy - 2.96) < 0.05] += 5000.0
    plain = xq.quantify(counts, energy, model=model, device="cpu")
    with_argon = xq.quantify(argon, energy, model=model, device="cpu")
    assert np.array_equal(plain.concentrations, with_argon.concentrations)
    assert np.array_equal(plain.total_counts, with_argon.total_counts)
    with pytest.raises(XRFQuantError, match="leave the network no input"):
        train(_config(n_spectra=100, epochs=1, input={"exclude_keV": [(0.0, 50.0)]}),
              generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
