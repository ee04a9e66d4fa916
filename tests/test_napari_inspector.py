"""The spectrum inspector: a click plots that pixel's measured and reconstructed spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from test_napari_fixtures import (
    ELEMENTS,
    REF_GAIN_KEV,
    tiny_counts,
    write_tiny_cxc,
    write_tiny_model,
)

PLUGIN = "napari-xrfquant"


def physics_ready() -> bool:
    try:
        from napari_xrfquant.physics import XRFSimulator, element_lines  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def inspector_on_tiny(make_napari_viewer, tmp_path, tiny_model_dir):
    from napari_xrfquant._napari._registry import model_registry
    from napari_xrfquant._napari.widgets.inspector import SpectrumInspector

    path = write_tiny_cxc(tmp_path / "tiny.h5")
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    entry = model_registry.register_path(tiny_model_dir)
    previous = model_registry.selected
    model_registry.select(entry.label)
    # docked as a user docks it (napari then hands the widget its proxy viewer)
    _dock, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    assert isinstance(inspector, SpectrumInspector)
    yield viewer, inspector
    model_registry.select(previous)
    model_registry.unregister(entry.label)


def test_pixel_pick_plots_that_pixels_spectrum(inspector_on_tiny) -> None:
    _viewer, inspector = inspector_on_tiny
    counts, energy_keV, _ = tiny_counts()
    shown = inspector.show_pixel(2, 5)

    x, y = inspector.plot.measured_line.get_data()
    np.testing.assert_array_equal(y, counts[2, 5])
    np.testing.assert_allclose(x, energy_keV, atol=1e-9)
    assert inspector.plot.axes.get_xlabel() == "energy (keV)"
    assert inspector.plot.axes.get_yscale() == "log"
    # no maps yet: the composition comes from the model on this one spectrum
    assert shown.composition is not None and shown.composition.source == "model"
    assert shown.composition.elements == list(ELEMENTS)
    assert "Au" in inspector.composition_label.text()
    if physics_ready():
        _x_rec, y_rec = inspector.plot.reconstructed_line.get_data()
        assert y_rec.sum() == pytest.approx(counts[2, 5].sum(), rel=1e-6)

    inspector.log_checkbox.setChecked(False)
    assert inspector.plot.axes.get_yscale() == "linear"


def test_world_click_maps_to_the_right_pixel(inspector_on_tiny) -> None:
    _viewer, inspector = inspector_on_tiny
    counts, _, _ = tiny_counts()
    # pixel size 48 um: world (y, x) = (1 * 48, 6 * 48) is pixel (1, 6); energy 8.05 keV
    shown = inspector.pick_world((8.05, 48.0, 6 * 48.0))
    assert shown.label == "pixel (1, 6)"
    np.testing.assert_array_equal(shown.measured, counts[1, 6])
    assert inspector.pick_world((8.05, -500.0, 0.0)) is None  # outside the map


def test_mouse_click_picks_and_drag_does_not(inspector_on_tiny, qtbot) -> None:
    """Simulate napari's mouse-callback protocol: press, (moves), release."""
    from types import SimpleNamespace

    viewer, inspector = inspector_on_tiny
    viewer.layers.selection.active = viewer.layers["tiny"]

    def gesture(moves):
        event = SimpleNamespace(button=1, pos=(10.0, 10.0), position=(8.05, 96.0, 96.0),
                                type="mouse_press")
        callback = inspector._on_mouse_press(viewer, event)
        next(callback)
        for pos in moves:
            event.type, event.pos = "mouse_move", pos
            next(callback)
        event.type = "mouse_release"
        with pytest.raises(StopIteration):
            next(callback)

    inspector.last = None
    gesture([(40.0, 40.0)])  # a drag pans, it does not pick
    assert inspector.last is None
    gesture([(11.0, 10.0)])  # a jitter of one screen pixel still is a click
    assert inspector.last.label == "pixel (2, 2)"


def test_region_spectrum_is_the_sum_of_its_pixels(inspector_on_tiny) -> None:
    viewer, inspector = inspector_on_tiny
    counts, _, regions = tiny_counts()
    labels = viewer.layers["tiny truth regions"]
    labels.selected_label = 2
    inspector.region_combo.setCurrentText(labels.name)
    shown = inspector.show_selected_region()
    np.testing.assert_array_equal(shown.measured, counts[regions == 2].sum(axis=0))
    assert shown.n_pixels == int((regions == 2).sum())
    assert shown.label.startswith("right alloy")


def test_inspector_reuses_concentration_layers(inspector_on_tiny) -> None:
    viewer, inspector = inspector_on_tiny
    rows, cols = tiny_counts()[0].shape[:2]
    for index, element in enumerate(ELEMENTS):
        values = np.full((rows, cols), 10.0 * index, dtype=np.float32)
        viewer.add_image(
            values,
            name=f"{element} [wt%]",
            metadata={"kind": "concentration", "element": element, "unit": "wt%",
                      "source_layer": "tiny", "model_id": "none"},
        )
    shown = inspector.show_pixel(0, 0)
    assert shown.composition.source == "layers"
    np.testing.assert_allclose(shown.composition.wt_percent, [0, 10, 20, 30, 40])


def test_plot_follows_the_theme(inspector_on_tiny) -> None:
    from matplotlib.colors import to_hex
    from napari.utils.theme import get_theme

    viewer, inspector = inspector_on_tiny
    inspector.show_pixel(0, 0)
    for theme in ("light", "dark"):
        viewer.theme = theme
        text = to_hex(get_theme(theme).text.as_hex())
        assert to_hex(inspector.plot.axes.xaxis.label.get_color()) == text
        assert inspector.plot.measured_line is not None  # drawn again in the new style
    assert inspector.plot.toolbar is not None  # napari-matplotlib's zoom, pan and save


def test_energy_axis_of_plot_is_in_kev(inspector_on_tiny) -> None:
    _, inspector = inspector_on_tiny
    inspector.show_pixel(0, 0)
    low, high = inspector.plot.axes.get_xlim()
    assert low == pytest.approx(0.0, abs=1e-9)
    assert high == pytest.approx(1023 * REF_GAIN_KEV)


def test_drawing_a_shape_plots_its_summed_spectrum(inspector_on_tiny) -> None:
    viewer, inspector = inspector_on_tiny
    counts, _, _ = tiny_counts()
    shapes = viewer.add_shapes(name="roi", scale=(48.0, 48.0))
    inspector.region_combo.setCurrentText("roi")
    # the rectangle covers pixel rows 1-2 and columns 3-5
    shapes.add_rectangles([[0.5, 2.5], [2.5, 5.5]])
    assert inspector.last is not None and inspector.last.n_pixels == 6
    np.testing.assert_array_equal(inspector.last.measured, counts[1:3, 3:6].sum(axis=(0, 1)))


def test_closed_docks_stop_listening(inspector_on_tiny, qtbot) -> None:
    from types import SimpleNamespace

    from qtpy.QtWidgets import QApplication

    viewer, inspector = inspector_on_tiny
    assert inspector in viewer.window.dock_widgets.values()
    viewer.window.remove_dock_widget(inspector)
    inspector.deleteLater()
    QApplication.sendPostedEvents(None, 0)  # process the deferred delete
    qtbot.wait(10)
    viewer.add_shapes(name="after close")  # layer events must not reach the deleted widget
    event = SimpleNamespace(button=1, pos=(0.0, 0.0), position=(8.0, 0.0, 0.0), type="mouse_press")
    list(inspector._on_mouse_press(viewer, event))
    assert inspector._on_mouse_press not in viewer.mouse_drag_callbacks


def _label_boxes(plot) -> list:
    plot.draw()
    renderer = plot.canvas.get_renderer()
    return [artist.get_window_extent(renderer) for artist in plot.label_artists]


def _overlapping(boxes) -> list:
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1]


@pytest.mark.skipif(not physics_ready(), reason="needs the physics tables")
def test_every_marked_line_is_labelled_without_overlap(inspector_on_tiny) -> None:
    """Au, Ag, Cu, Ni, Zn plus Fe crowd 6-10 keV: each line gets a label, none overlap."""
    _viewer, inspector = inspector_on_tiny
    inspector.show_pixel(2, 5)
    inspector.mark_edit.setText("Fe")  # a typed element is marked too
    plot = inspector.plot
    marked = {str(line.element) for line in plot.lines}
    assert marked == {"Au", "Ag", "Cu", "Ni", "Zn", "Fe"}
    boxes = _label_boxes(plot)
    assert len(plot.label_artists) == len(plot.lines) >= 15
    assert not _overlapping(boxes)
    labels = {artist.get_text() for artist in plot.label_artists}
    assert {"Au L\u03b1", "Au L\u03b2", "Au L\u03b3", "Ag K\u03b2", "Fe K\u03b1"} <= labels
    # zoomed on 7-10 keV (as the toolbar's zoom does) the labels are laid out again
    plot.axes.set_xlim(7.0, 10.0)
    boxes = _label_boxes(plot)
    assert not _overlapping(boxes)
    assert all(7.0 <= artist.get_position()[0] <= 10.0 for artist in plot.label_artists)
    inspector.mark_edit.setText("Xx")  # refused: outlined, the plot keeps its markers
    assert inspector.mark_edit.problem() is not None
    assert "Fe" in {str(line.element) for line in plot.lines}


def test_export_writes_the_shown_spectra_as_csv_and_png(inspector_on_tiny, tmp_path) -> None:
    _viewer, inspector = inspector_on_tiny
    counts, energy_keV, _ = tiny_counts()
    assert not inspector.export_button.isEnabled()
    inspector.show_pixel(2, 5)
    assert inspector.export_button.isEnabled()
    written = inspector.export(tmp_path / "px.csv")
    assert [p.name for p in written] == ["px.csv", "px.png"]
    rows = [ln for ln in (tmp_path / "px.csv").read_text().splitlines() if not ln.startswith("#")]
    table = np.genfromtxt(rows, delimiter=",", names=True)
    np.testing.assert_allclose(table["energy_keV"], energy_keV, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(table["measured_counts"], counts[2, 5], rtol=1e-5)
    assert (tmp_path / "px.csv").read_text().startswith("# spectrum: pixel (2, 5)")
    assert (tmp_path / "px.png").read_bytes()[:4] == b"\x89PNG"
    # an existing file is replaced only when the user agrees
    before = (tmp_path / "px.csv").read_text()
    inspector.show_pixel(0, 0)
    assert inspector.export(tmp_path / "px.csv", overwrite=False) == []
    assert (tmp_path / "px.csv").read_text() == before
