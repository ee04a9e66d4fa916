"""The energy calibration in the Quantify dock: shown, edited, saved (issue 11, problem 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_napari_fixtures import REF_GAIN_KEV, write_tiny_cxc

PLUGIN = "napari-xrfquant"


@pytest.fixture
def docked(make_napari_viewer):
    from napari_xrfquant._napari._registry import DEFAULT_LABEL

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(DEFAULT_LABEL)  # other tests may have chosen theirs
    _dock, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    return viewer, widget, inspector


def test_edited_gain_moves_the_inspector_axis_at_once(docked, tmp_path):
    viewer, widget, inspector = docked
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    panel = widget.calibration_panel
    assert "from the file" in panel.source_label.text()
    assert panel.gain_edit.value() == pytest.approx(REF_GAIN_KEV)
    assert not panel.save_button.isEnabled()  # the file's own calibration wins on reopening
    inspector.show_pixel(1, 1)
    panel.edit_button.click()
    assert panel.gain_edit.isVisibleTo(panel)
    panel.gain_edit.setText("0.0351")
    panel.offset_edit.setText("-0.01")
    assert panel.apply()
    cube = viewer.layers["tiny"]
    np.testing.assert_allclose(cube.metadata["energy_keV"][[0, -1]], [-0.01, -0.01 + 1023 * 0.0351])
    assert cube.metadata["cube"].energy_keV[-1] == pytest.approx(-0.01 + 1023 * 0.0351)
    assert cube.scale[0] == pytest.approx(0.0351) and cube.translate[0] == pytest.approx(-0.01)
    low, high = inspector.plot.axes.get_xlim()  # redrawn on the new axis, no click needed
    assert (low, high) == pytest.approx((-0.01, -0.01 + 1023 * 0.0351))
    assert "typed here" in panel.source_label.text()
    panel.gain_edit.setText("-1")  # refused: nothing changes
    assert not panel.apply()
    assert cube.scale[0] == pytest.approx(0.0351)


def _uncalibrated_npy(path, channels):
    counts = np.random.default_rng(1).poisson(3, size=(4, 5, channels)).astype(np.uint16)
    np.save(path, counts)
    return path


def test_a_cube_without_calibration_and_other_channels_asks(docked, tmp_path):
    viewer, widget, _ = docked
    path = _uncalibrated_npy(tmp_path / "wide.npy", 2048)
    viewer.open(path, plugin=PLUGIN)  # the reader notes the reference calibration
    dialog = widget.calibration_panel.dialog
    assert dialog is not None and dialog.isVisible()
    assert "2048 channels" in dialog.text() and "no energy calibration" in dialog.text()
    model_energy = np.asarray(widget.load_selected_model().energy_keV)
    widget.calibration_panel.stretch_button.click()
    energy = viewer.layers["wide"].metadata["energy_keV"]
    assert energy[0] == pytest.approx(model_energy[0])
    assert energy[-1] == pytest.approx(model_energy[-1])
    assert widget.run_button.isEnabled()
    # asked once: choosing the cube again does not ask again
    widget.calibration_panel.dialog = None
    widget.check_inputs(notify=True)
    assert widget.calibration_panel.dialog is None


def test_saved_sidecar_is_what_the_reader_uses_next_time(docked, tmp_path):
    from napari_xrfquant.io import read_cube, sidecar_path

    viewer, widget, _ = docked
    path = _uncalibrated_npy(tmp_path / "frame.npy", 1024)
    viewer.open(path, plugin=PLUGIN)  # the reader notes the reference calibration
    panel = widget.calibration_panel
    assert "reference" in panel.source_label.text() and panel.save_button.isEnabled()
    panel.gain_edit.setText("20e-3")
    panel.offset_edit.setText("0.1")
    written = panel.save()
    assert written == sidecar_path(path)
    assert json.loads(written.read_text()) == {"offset_keV": 0.1, "gain_keV": 0.02,
                                                 "quadratic_keV": 0.0}
    assert "sidecar" in panel.source_label.text()
    again = read_cube(path)
    assert again.calibration_source == "sidecar"
    np.testing.assert_allclose(again.energy_keV, 0.1 + 0.02 * np.arange(1024))
    # an existing sidecar is replaced only when the user agrees
    panel.gain_edit.setText("0.03")
    assert panel.save(overwrite=False) is None
    assert json.loads(written.read_text())["gain_keV"] == 0.02
