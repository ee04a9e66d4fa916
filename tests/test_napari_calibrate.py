"""The Calibrate dock as a user reaches it: standards from a Labels layer, fit, save, retrain.

The cube comes from a set-up that is not the reference one
(:func:`napari_xrfquant.calibration.hidden.hidden_cube`); three of its seven
regions are the BAM standards.
"""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-xrfquant"
FREE = ["gain_keV", "offset_keV", "noise_keV"]


@pytest.fixture(scope="module")
def hidden_file(tmp_path_factory):
    from napari_xrfquant.calibration.hidden import hidden_cube
    from napari_xrfquant.io import write_cxc_hdf5

    cube = hidden_cube((4, 4), 2e4, seed=4)
    path = write_cxc_hdf5(tmp_path_factory.mktemp("cubes") / "hidden.h5", cube.counts,
                          cube.energy_keV)
    return path, cube


@pytest.fixture
def dock(make_napari_viewer, hidden_file):
    path, cube = hidden_file
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    viewer.add_labels(cube.labels.astype(np.int32), name="standards")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Calibrate")
    widget.form.regions_combo.setCurrentText("standards")
    for row, name in enumerate(("ERM-EB506", "ERM-EB507", "ERM-EB508")):
        widget.form.set_standard(row, name)
    widget.form.set_free_parameters(FREE)
    widget.form.clusters_spin.setValue(4)
    widget.form.seconds_spin.setValue(8)  # the default budget is 100 s
    return viewer, widget


def _run(widget, qtbot):
    worker = widget.calibrate()
    assert worker is not None, widget.status.text()
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass


def test_the_dock_lists_the_regions_of_the_standards_layer(dock):
    _, widget = dock
    assert widget.form.cube_combo.currentText() == "hidden"
    assert widget.form.standards_table.rowCount() == 7
    assert widget.form.standard_text(0) == "ERM-EB506" and widget.form.standard_text(3) == ""
    assert widget.form.free_parameters() == FREE


def test_calibrate_fits_draws_and_saves_the_instrument(dock, qtbot, tmp_path):
    from napari_xrfquant.instrument import load_instrument

    _, widget = dock
    _run(widget, qtbot)
    result = widget.result
    assert result is not None, widget.status.text()
    assert widget.parameters_table.rowCount() == len(FREE)
    assert abs(result.values["offset_keV"] - 0.015) < 0.004
    assert np.median(result.fit_quality_after) < np.median(result.fit_quality_before)
    assert len(widget.figure.axes) == 4  # three standards and the residuals (no optic)
    assert "calibrated in" in widget.status.text()
    target = widget.save_instrument(tmp_path / "instrument.toml")
    assert load_instrument(target).detector.offset_keV == pytest.approx(
        result.values["offset_keV"])
    asked = []
    widget.confirm_overwrite = lambda paths: asked.append(paths) or False
    assert widget.save_instrument(target) is None and asked


@pytest.mark.parametrize(
    ("row", "text", "reason"),
    [
        (0, "Au=50,Ag=20", "sum"),
        (0, "ERM-XX999", "unknown standard"),
        (0, "Au=90,Fe=10", "Fe"),
    ],
)
def test_bad_standards_are_refused_with_a_notification(dock, row, text, reason):
    from napari.utils.notifications import notification_manager

    _, widget = dock
    widget.form.set_standard(row, text)
    before = len(notification_manager.records)
    assert widget.calibrate() is None
    assert reason in widget.status.text()
    assert len(notification_manager.records) > before
    assert widget.result is None


def test_cancel_changes_nothing(dock, qtbot, tmp_path):
    from napari_xrfquant._napari._registry import model_registry

    _, widget = dock
    labels_before = model_registry.labels()
    worker = widget.calibrate()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        widget.cancel()  # inside: a worker that stops at once must not finish unheard
    assert widget.result is None
    assert "cancelled" in widget.status.text()
    _run(widget, qtbot)
    assert widget.result is not None
    widget.retrain_spectra = 300
    worker = widget.retrain(minutes=5.0)
    # training has begun: an epoch ended (short epochs send no "epoch" Progress of their own)
    with qtbot.waitSignal(worker.yielded, timeout=60_000,
                          check_params_cb=lambda e: type(e).__name__ == "EpochEnd"
                          or getattr(e, "stage", "") == "epoch"):
        pass
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        widget.cancel()
    assert widget.retrained is None and model_registry.labels() == labels_before
    assert not widget.save_model_button.isEnabled()


def test_retrain_puts_the_model_into_the_quantify_list(dock, qtbot):
    from napari_xrfquant._napari._registry import model_registry

    viewer, widget = dock
    _, quantify = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    _run(widget, qtbot)
    widget.retrain_spectra = 300
    worker = widget.retrain(minutes=0.05)
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    assert widget.retrained is not None, widget.status.text()
    label = widget.registered_label
    assert label in model_registry.labels()
    items = [quantify.model_combo.itemText(i) for i in range(quantify.model_combo.count())]
    assert label in items
    provenance = widget.retrained.model.metadata["training"]["provenance"]
    assert provenance["source_cube"] == "hidden"
    assert set(provenance["standards"]) == {"1", "2", "3"}
    model_registry.unregister(label)


def test_the_train_dock_runs_axs_on_a_cube_layer(make_napari_viewer, hidden_file, qtbot):
    path, _cube = hidden_file
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Train model")
    assert [widget.axs_combo.itemText(i) for i in range(widget.axs_combo.count())] == [
        "none", "hidden"]
    widget.form.name_edit.setText("axs-dock")
    widget.form.elements_edit.setText("Au, Ag, Cu, Ni, Zn")
    widget.form.n_spectra_spin.setValue(300)
    widget.form.layers_spin.setValue(1)
    widget.form.neurons_spin.setValue(32)
    widget.form.epochs_spin.setValue(2)
    widget.axs_combo.setCurrentText("hidden")
    widget.beta_spin.setValue(2.0)
    worker = widget.train()
    assert worker is not None, widget.problem_label.text()
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    record = widget.result.model.metadata["training"]["axs"]
    assert record["beta"] == 2.0 and record["unlabelled"] == "layer hidden"
    assert record["learned"]["offset_keV"] != 0.0


def test_optic_knots_from_the_dock(dock):
    from napari_xrfquant.errors import XRFQuantError

    _, widget = dock
    widget.form.set_free_parameters([*FREE, "optic_high_keV"])
    widget.form.knots_edit.setText("2, 6, 10, 15, 22, 30")
    widget.form.monotone_check.setChecked(True)
    request = widget.form.request()
    optic = request["instrument"].optic
    assert optic.model == "knots" and optic.monotone and len(optic.knots_keV) == 6
    assert request["free"] == [*FREE, "optic"]  # the knots stand in for the sigmoids
    widget.form.knots_edit.setText("")
    with pytest.raises(XRFQuantError, match="give the optic knots too"):
        widget.form.request()
    widget.form.monotone_check.setChecked(False)
    widget.form.knots_edit.setText("10, 5")
    with pytest.raises(XRFQuantError, match="increasing energies"):
        widget.form.request()


def test_a_set_up_without_a_model_calibrates_and_trains_a_new_one(dock, qtbot, tmp_path):
    """Start from an instrument file and elements: the defaults follow that file (no
    optic), the calibration runs, and Retrain trains a new model for the set-up."""
    from napari_xrfquant._napari._registry import model_registry
    from napari_xrfquant._napari.widgets._calibrate_form import NEW_MODEL
    from napari_xrfquant.instrument import reference_instrument, save_instrument

    _, widget = dock
    path = save_instrument(reference_instrument(), tmp_path / "set-up.toml")
    widget.form.model_combo.setCurrentText(NEW_MODEL)
    assert widget.form.new_model_box.isVisibleTo(widget)
    worker = widget.calibrate()  # no instrument file yet: refused in a line
    assert worker is None and "instrument file" in widget.status.text()
    widget.form.instrument_edit.setText(str(path))
    widget.form.instrument_edit.editingFinished.emit()
    assert not any(name.startswith("optic") for name in widget.form.free_parameters())
    widget.form.elements_edit.setText("Au, Ag, Cu, Ni, Zn")
    widget.form.set_free_parameters(FREE)
    _run(widget, qtbot)
    assert widget.result is not None, widget.status.text()
    assert widget._run["model"] is None and widget._run["elements"] == list(
        ("Au", "Ag", "Cu", "Ni", "Zn"))
    widget.retrain_spectra = 600
    worker = widget.retrain(minutes=0.1)
    with qtbot.waitSignal(worker.finished, timeout=180_000):
        pass
    assert widget.retrained is not None, widget.status.text()
    assert "(trained, not saved)" in widget.registered_label
    assert widget.retrained.model.metadata["training"]["provenance"]["fine_tuned_from"] is None
    model_registry.unregister(widget.registered_label)


def test_find_elements_fills_the_new_models_elements(dock, qtbot, tmp_path):
    """The Calibrate dock's Find elements (a new model): the search runs on the chosen
    cube with the instrument file and fills the field."""
    from napari_xrfquant._napari.widgets._calibrate_form import NEW_MODEL
    from napari_xrfquant.instrument import reference_instrument, save_instrument

    _, widget = dock
    widget.form.model_combo.setCurrentText(NEW_MODEL)
    assert widget.form.finder.search() is None  # no instrument file yet: said in a line
    path = save_instrument(reference_instrument(), tmp_path / "set-up.toml")
    widget.form.instrument_edit.setText(str(path))
    assert widget.form.finder.search() is not None
    assert widget.form.finder.find_button.text() == "Cancel search"
    qtbot.waitUntil(lambda: widget.form.finder.worker is None, timeout=180_000)
    found = set(widget.form.elements_edit.elements())
    assert {"Au", "Ag", "Cu"} <= found, widget.form.finder.found_info.text()


def test_a_file_of_other_detector_elements_is_refused_in_a_line(make_napari_viewer, tmp_path):
    """The real AXO map (four detector elements) against a set-up that lists two."""
    from pathlib import Path

    from napari_xrfquant._napari.widgets._calibrate_form import NEW_MODEL
    from napari_xrfquant.instrument import load_instrument, save_instrument

    axo = Path(__file__).resolve().parents[1] / "sample_data" / "aps_2ide"
    two = load_instrument(axo / "instrument.toml").replace(**{"geometry.detector_elements": [
        {"takeoff_deg": 40.0, "scattering_deg": 85.0, "solid_angle_sr": 0.1},
        {"takeoff_deg": 50.0, "scattering_deg": 95.0, "solid_angle_sr": 0.1}]})
    path = save_instrument(two, tmp_path / "two.toml")
    viewer = make_napari_viewer()
    viewer.open(axo / "axo_std.mda", plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Calibrate")
    widget.form.model_combo.setCurrentText(NEW_MODEL)
    widget.form.instrument_edit.setText(str(path))
    widget.form.instrument_edit.editingFinished.emit()
    widget.form.elements_edit.setText("Ca, Fe, Cu")
    assert widget.calibrate() is None
    assert "lists 2 detector elements and the file holds 4" in widget.status.text()
