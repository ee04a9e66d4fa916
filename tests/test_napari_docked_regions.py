"""Region tools through the docks a user opens from the Plugins menu (napari's proxy viewer).

Issue 11, problem 1: with widgets docked by ``add_plugin_dock_widget`` napari
hands them a ``PublicOnlyProxy`` viewer whose layers' type name is
"PublicOnlyProxy"; region lists built from ``type(layer).__name__`` were empty.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from test_napari_fixtures import result_layer, write_tiny_cxc, write_tiny_model

PLUGIN = "napari-xrfquant"


@pytest.fixture
def docked(make_napari_viewer, tmp_path, qtbot):
    """The tiny cube quantified with the Quantify dock opened as a user opens it."""
    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _dock, quantify = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    quantify.add_model(write_tiny_model(tmp_path / "model"))
    quantify.device_combo.setCurrentText("cpu")
    assert quantify.run() is not None
    qtbot.waitUntil(lambda: quantify.worker is None, timeout=60_000)
    rows, _cols = result_layer(viewer, "Au").data.shape
    scale = tuple(result_layer(viewer, "Au").scale)
    viewer.add_shapes([[[-0.5, -0.5], [-0.5, 1.5], [rows - 0.5, 1.5], [rows - 0.5, -0.5]]],
                      shape_type="rectangle", scale=scale, name="roi")
    return viewer, quantify


def test_quantify_dock_statistics_and_export_use_a_drawn_rectangle(docked, tmp_path):
    viewer, quantify = docked
    assert "roi" in [quantify.results.region_combo.itemText(i)
                     for i in range(quantify.results.region_combo.count())]
    quantify.results.region_combo.setCurrentText("roi")
    au = np.asarray(result_layer(viewer, "Au").data, np.float64)
    stats = {s.element: s for s in quantify.results.statistics}
    assert stats["Au"].region == "roi #1"
    assert stats["Au"].n_pixels == au.shape[0] * 2
    assert stats["Au"].mean_wt_percent == pytest.approx(au[:, :2].mean(), rel=1e-6)
    assert quantify.results.table.item(0, 0).text() == "roi #1"
    written = quantify.results.export(tmp_path / "export")
    table = next(p for p in written if p.suffix == ".csv")
    with open(table, newline="") as handle:
        assert {row["region"] for row in csv.DictReader(handle)} == {"roi #1"}


def test_inspector_dock_plots_the_rectangles_spectrum(docked):
    viewer, _quantify = docked
    _dock, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    inspector.refresh_layers()
    assert inspector.region_combo.findText("roi") >= 0
    inspector.region_combo.setCurrentText("roi")
    assert inspector.region_button.isEnabled()
    shown = inspector.show_selected_region()
    assert shown is not None
    cube = np.asarray(viewer.layers["tiny"].data)  # (channels, rows, cols)
    np.testing.assert_allclose(shown.measured, cube[:, :, :2].sum(axis=(1, 2)))


def test_calibrate_dock_offers_the_rectangle_as_standards(docked):
    viewer, _quantify = docked
    _dock, calibrate = viewer.window.add_plugin_dock_widget(PLUGIN, "Calibrate")
    calibrate.form.refresh_layers()
    assert calibrate.form.regions_combo.findText("roi") >= 0


def test_statistics_panel_histograms_each_region(docked):
    """Per-region histograms: a second rectangle gives a second curve on shared bins."""
    viewer, quantify = docked
    rows, cols = result_layer(viewer, "Au").data.shape
    roi = viewer.layers["roi"]
    roi.add_rectangles([[-0.5, cols - 3.5], [rows - 0.5, cols - 0.5]])  # data coordinates
    quantify.results.region_combo.setCurrentText("roi")
    assert quantify.results.histogram_combo.count() == 5
    quantify.results.histogram_combo.setCurrentText("Cu")
    histograms = quantify.results.histograms
    assert [h.region for h in histograms] == ["roi #1", "roi #2"]
    assert all(h.element == "Cu" for h in histograms)
    np.testing.assert_array_equal(histograms[0].edges, histograms[1].edges)
    cu = np.asarray(result_layer(viewer, "Cu").data, np.float64)
    assert histograms[0].counts.sum() == np.isfinite(cu[:, :2]).sum()
    assert histograms[1].counts.sum() == np.isfinite(cu[:, -3:]).sum()
    axes = quantify.results.histogram_plot.figure.axes[0]
    assert axes.get_xlabel() == "Cu (wt%)" and len(axes.patches) == 2


def _press_move_release(qtbot, viewer, points_world) -> None:
    """Real Qt mouse events on the canvas: press at the first point, move, release."""
    from qtpy.QtCore import QPoint, Qt

    from napari_xrfquant._napari._canvas import world_to_canvas

    native = viewer.window._qt_viewer.canvas.native
    pixels = [QPoint(*(round(v) for v in world_to_canvas(viewer, p))) for p in points_world]
    qtbot.mousePress(native, Qt.MouseButton.LeftButton, pos=pixels[0])
    for pixel in pixels[1:]:
        qtbot.mouseMove(native, pixel)
        qtbot.wait(10)
    qtbot.mouseRelease(native, Qt.MouseButton.LeftButton, pos=pixels[-1])
    qtbot.wait(50)


def test_real_mouse_click_and_drawn_rectangle_on_the_canvas(make_napari_viewer, qtbot,
                                                            tmp_path):
    """A left click picks the pixel under the mouse; a rectangle drawn with the mouse
    in a Shapes layer becomes the statistics region (docked widgets, real events)."""
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1200, 900)
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _dock, quantify = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    quantify.add_model(write_tiny_model(tmp_path / "model"))
    quantify.device_combo.setCurrentText("cpu")
    _dock, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    assert quantify.run() is not None
    qtbot.waitUntil(lambda: quantify.worker is None, timeout=60_000)
    cube = viewer.layers["tiny"]
    viewer.layers.selection.active = cube
    viewer.reset_view()
    qtbot.wait(100)
    sy, sx = cube.scale[-2:]
    _press_move_release(qtbot, viewer, [(2 * sy, 5 * sx)])  # a click, no drag
    assert inspector.last is not None and inspector.last.label == "pixel (2, 5)"

    shapes = viewer.add_shapes(name="drawn", scale=(sy, sx))
    shapes.mode = "add_rectangle"
    # from the corner of pixel (0.6, 0.6) to (2.4, 3.4): pixels rows 1-2, columns 1-3
    corners = np.linspace([0.6 * sy, 0.6 * sx], [2.4 * sy, 3.4 * sx], 6)
    _press_move_release(qtbot, viewer, [tuple(c) for c in corners])
    assert len(shapes.data) == 1
    quantify.results.region_combo.setCurrentText("drawn")
    au = np.asarray(result_layer(viewer, "Au").data, np.float64)
    stats = {s.element: s for s in quantify.results.statistics}
    assert stats["Au"].region == "drawn #1"
    assert stats["Au"].n_pixels == 6
    assert stats["Au"].mean_wt_percent == pytest.approx(au[1:3, 1:4].mean(), rel=1e-6)
