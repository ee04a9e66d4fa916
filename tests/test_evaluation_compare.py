"""Cross-validation of the baselines and our network on labelled spectra (evaluation)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from napari_xrfquant.calibration.hidden import ELEMENTS, hidden_instrument
from napari_xrfquant.evaluation.baselines import Lasso, LineRegression, line_window
from napari_xrfquant.evaluation.compare import compare, fold_indices, standard_error


@pytest.fixture(scope="module")
def labelled():
    """60 spectra of random alloys from the hidden set-up, about 1e4 counts each."""
    from napari_xrfquant.physics import simulate

    rng = np.random.default_rng(0)
    wt = rng.dirichlet(np.full(5, 0.7), size=60) * 100
    inst = hidden_instrument()
    counts = rng.poisson(simulate(wt, list(ELEMENTS), instrument=inst) * 1e4)
    return counts, wt, inst.energy_axis_keV(), inst


def test_folds_are_disjoint_and_cover_the_set():
    splits = fold_indices(23, 5, seed=1)
    tests = np.concatenate([test for _, test in splits])
    assert sorted(tests.tolist()) == list(range(23))
    for train, test in splits:
        assert not set(train) & set(test) and len(train) + len(test) == 23
    assert [t.tolist() for _, t in fold_indices(23, 5, seed=1)] == [t.tolist() for _, t in splits]


def test_standard_error_is_the_sample_sd_over_root_k():
    values = [1.0, 2.0, 4.0, 7.0]
    assert standard_error(values) == pytest.approx(np.std(values, ddof=1) / 2.0)


def test_lr_reads_only_its_elements_line_window(labelled):
    counts, wt, energy, inst = labelled
    model = LineRegression(energy, list(ELEMENTS), inst)
    model.fit(counts, wt)
    window, label = line_window("Cu", energy, inst)
    assert label == "Cu K-L3" and 7.9 < energy[window].mean() < 8.2
    assert line_window("Au", energy, inst)[1] == "Au La"  # Au K is not excited at 30 keV
    changed = counts.astype(float).copy()
    changed[:, ~window] *= 3.0  # everything but the Cu K-alpha window
    cu = ELEMENTS.index("Cu")
    np.testing.assert_allclose(model.predict(changed)[:, cu], model.predict(counts)[:, cu])


def test_lasso_alpha_comes_from_the_inner_cross_validation(labelled):
    counts, wt, _, _ = labelled
    model = Lasso(inner_folds=4)
    model.fit(counts, wt)
    for fitted in model.models:
        mean_mse = fitted.mse_path_.mean(axis=1)
        assert fitted.mse_path_.shape[1] == 4
        assert fitted.alpha_ == pytest.approx(fitted.alphas_[int(np.argmin(mean_mse))])


def test_compare_scores_every_model_and_element(labelled):
    counts, wt, energy, inst = labelled
    result = compare(counts, wt, energy, list(ELEMENTS), models=["lr", "lasso", "fcnn"],
                     folds=3, instrument=inst)
    record = result.to_dict()
    assert set(record["models"]) == {"lr", "lasso", "fcnn"}
    assert set(record["best"]) == set(ELEMENTS)
    for entry in record["models"].values():
        assert set(entry["per_element"]) == set(ELEMENTS)
        assert all(v["mse"] > 0 and v["se"] >= 0 for v in entry["per_element"].values())
    # the regularised full-spectrum model beats one line per element here
    assert record["models"]["lasso"]["mean_mse"] < record["models"]["lr"]["mean_mse"]


@pytest.fixture(scope="module")
def labelled_file(labelled, tmp_path_factory):
    from napari_xrfquant.instrument import instrument_to_toml
    from napari_xrfquant.io.spectra import SpectraSet, write_spectra_set

    counts, wt, energy, inst = labelled
    folder = tmp_path_factory.mktemp("labelled")
    data = SpectraSet(counts.astype(np.uint32), wt.astype(np.float32), list(ELEMENTS), energy,
                      counts.sum(axis=1).astype(float), False, instrument_to_toml(inst))
    return write_spectra_set(folder / "labelled.h5", data)


def test_cli_writes_the_report(labelled_file, tmp_path, capsys):
    from napari_xrfquant.cli import main

    out = tmp_path / "report"
    assert main(["compare", str(labelled_file), "-o", str(out), "--models", "lr,lasso",
                 "--folds", "3", "--quiet"]) == 0
    record = json.loads((out / "report.json").read_text())
    assert record["folds"] == 3 and record["elements"] == list(ELEMENTS)
    for name in ("lr", "lasso"):
        entry = record["models"][name]
        assert {"mean_mse", "per_element"} <= set(entry)
        assert set(entry["per_element"]["Au"]) == {"mse", "se", "mae"}
    assert set(record["best"].values()) <= {"lr", "lasso"}
    text = (out / "report.md").read_text()
    assert "## Best on" in text and "**" in text
    assert all((out / f"mse_{e}.png").stat().st_size > 5000 for e in ELEMENTS)
    assert main(["compare", str(labelled_file), "-o", str(out), "--quiet"]) == 2  # exists


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_wt", "no wt_percent dataset"),
        ("nan", "NaN"),
        ("few", "fewer than the 10 folds"),
        ("model", "unknown model 'svm'"),
        ("range", "lies outside the spectra"),
    ],
)
def test_bad_input_is_one_line(labelled_file, tmp_path, capsys, case, message):
    from napari_xrfquant.cli import main
    from napari_xrfquant.io.spectra import read_spectra_set, write_spectra_set

    path, extra = tmp_path / "bad.h5", []
    data = read_spectra_set(labelled_file)
    if case == "no_wt":
        write_spectra_set(path, data)
        with h5py.File(path, "a") as h5:
            del h5["wt_percent"]
    elif case == "nan":
        write_spectra_set(path, data)
        with h5py.File(path, "a") as h5:
            h5["wt_percent"][0, 0] = np.nan
    elif case == "few":
        data.spectra, data.wt_percent, data.counts = (data.spectra[:7], data.wt_percent[:7],
                                                      data.counts[:7])
        write_spectra_set(path, data)
    elif case == "model":
        path, extra = labelled_file, ["--models", "lr,svm"]
    else:  # spectra that end at 7 keV: no Cu K-alpha
        data.spectra, data.energy_keV = data.spectra[:, :200], data.energy_keV[:200]
        write_spectra_set(path, data)
    assert main(["compare", str(path), "-o", str(tmp_path / "out"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_axs_learns_the_instrument_while_it_fine_tunes(labelled):
    from napari_xrfquant.evaluation.baselines import AXSRegressor, NetTraining
    from napari_xrfquant.instrument import reference_instrument

    counts, wt, energy, inst = labelled
    model = AXSRegressor(energy, list(ELEMENTS), setup=NetTraining(lr=1e-4, l1=0.0, epochs=8,
                                                                   patience=8))
    model.fit(counts[:50], wt[:50])  # the decoder starts from the reference instrument
    assert model.pretrained.startswith("cxc-gold-5el")
    reference = reference_instrument().detector
    hidden = inst.detector
    learned = model.learned
    # the resolution moves from the reference's toward the hidden set-up's
    assert abs(learned["noise_keV"] - hidden.noise_keV) < abs(reference.noise_keV
                                                               - hidden.noise_keV)
    assert model.predict(counts[50:]).shape == (10, 5)


def test_the_train_dock_compares_on_labelled_data(make_napari_viewer, qtbot, labelled_file):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xrfquant", "Train model")
    panel = widget.compare_panel
    panel.file_edit.setText(str(labelled_file))
    panel.models_edit.setText("lr,svm")
    before = len(notification_manager.records)
    assert panel.compare() is None  # refused at once, with a notification
    assert "unknown model 'svm'" in panel.status.text()
    assert len(notification_manager.records) > before
    panel.models_edit.setText("lr,lasso")
    panel.folds_spin.setValue(3)
    worker = panel.compare()
    assert worker is not None
    qtbot.waitUntil(lambda: panel.worker is None, timeout=120_000)
    assert panel.table.rowCount() == 5 and panel.table.columnCount() == 2
    best = panel.comparison.best()
    column = ["lr", "lasso"].index(best["Cu"])
    assert panel.table.item(ELEMENTS.index("Cu"), column).font().bold()
    assert panel.status.text().startswith("best: Au "), panel.status.text()
