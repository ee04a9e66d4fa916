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
    inspector = SpectrumInspector(viewer)
    viewer.window.add_dock_widget(inspector)
    yield viewer, inspector
    model_registry.select(previous)
    model_registry.unregister(entry.label)


def test_pixel_pick_plots_that_pixels_spectrum(inspector_on_tiny) -> None:
    _viewer, inspector = inspector_on_tiny
    counts, energy_keV, _ = tiny_counts()
    shown = inspector.show_pixel(2, 5)

    x, y = inspector.measured_line.get_data()
    np.testing.assert_array_equal(y, counts[2, 5])
    np.testing.assert_allclose(x, energy_keV, atol=1e-9)
    assert inspector.axes.get_xlabel() == "energy (keV)"
    assert inspector.axes.get_yscale() == "log"
    # no maps yet: the composition comes from the model on this one spectrum
    assert shown.composition is not None and shown.composition.source == "model"
    assert shown.composition.elements == list(ELEMENTS)
    assert "Au" in inspector.composition_label.text()
    if physics_ready():
        _x_rec, y_rec = inspector.reconstructed_line.get_data()
        assert y_rec.sum() == pytest.approx(counts[2, 5].sum(), rel=1e-6)

    inspector.log_checkbox.setChecked(False)
    assert inspector.axes.get_yscale() == "linear"


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
    viewer, inspector = inspector_on_tiny
    viewer.theme = "light"
    light = inspector.figure.get_facecolor()
    viewer.theme = "dark"
    dark = inspector.figure.get_facecolor()
    assert sum(light[:3]) > sum(dark[:3])


def test_energy_axis_of_plot_is_in_kev(inspector_on_tiny) -> None:
    _, inspector = inspector_on_tiny
    inspector.show_pixel(0, 0)
    low, high = inspector.axes.get_xlim()
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
