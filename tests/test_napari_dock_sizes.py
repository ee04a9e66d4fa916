"""The docks share a 1080p screen (issue 11, problem 5): each scrolls, none opens as a strip."""

from __future__ import annotations

import pytest

PLUGIN = "napari-xrfquant"


def test_three_docks_fit_a_1080p_column_and_train_is_usable(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    from napari_xrfquant._napari._qt import DOCK_MIN_HEIGHT

    viewer = make_napari_viewer(show=True)
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name)[0]
             for name in ("Quantify", "Spectrum inspector", "Train model")]
    for _ in range(10):
        QApplication.processEvents()
    # the right-hand column needs no more than a 1080p screen minus menu and title bars
    assert sum(d.minimumSizeHint().height() for d in docks) <= 1080 - 100
    train = docks[-1]
    qtbot.waitUntil(lambda: train.height() >= DOCK_MIN_HEIGHT, timeout=5_000)


@pytest.fixture
def long_model_name():
    """A model of a long name in the model lists (other runs register theirs too)."""
    from napari_xrfquant._napari._registry import model_registry
    from napari_xrfquant.models import BUNDLED_DIR

    name = "gold alloys, fine-tuned on the beamline's own standards (not saved)"
    model_registry.register(name, BUNDLED_DIR)
    yield name
    model_registry.unregister(name)


def test_quantify_calibrate_and_train_are_usable_on_a_1366x768_screen(make_napari_viewer,
                                                                      qtbot, long_model_name):
    """From the Plugins menu (no tabify asked), the plugin's docks of one area become
    tabs of one group: at 1366 x 768 each has the column's height, the calibration and
    loss plots at least 300 px, and the window needs no more than the screen."""
    from qtpy.QtWidgets import QApplication, QScrollArea

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    docked = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)
              for name in ("Quantify", "Calibrate", "Train model")}
    for _ in range(20):  # the docks tab themselves once shown
        QApplication.processEvents()
    window.resize(1366, 768)
    for _ in range(20):
        QApplication.processEvents()
    docks = [dock for dock, _widget in docked.values()]
    assert {d.objectName() for d in window.tabifiedDockWidgets(docks[0])} == {
        d.objectName() for d in docks[1:]}
    assert window.minimumSizeHint().height() <= 768
    qtbot.waitUntil(lambda: window.height() <= 768, timeout=5_000)
    for dock, widget in docked.values():
        dock.raise_()
        qtbot.waitUntil(lambda dock=dock: dock.isVisible() and not dock.visibleRegion().isEmpty(),
                        timeout=5_000)
        # the whole column less napari's title bars, not a 220 px strip
        assert widget.height() >= 600, (dock.objectName(), widget.height())
        assert widget.width() >= 400
        # nothing scrolls sideways in a 390 px column (make run's, with its inspector):
        # no combo box as wide as its longest item, no row as wide as two columns
        for scroll in widget.findChildren(QScrollArea):
            content = scroll.widget().minimumSizeHint().width()
            assert content <= 360, (dock.objectName(), content)
    calibrate = docked["Calibrate"][1]
    assert calibrate.plot.height() >= 300
    train = docked["Train model"][1]
    docked["Train model"][0].raise_()
    train.tabs.setCurrentIndex(1)  # the loss curves
    qtbot.waitUntil(lambda: train.loss_canvas.isVisible(), timeout=5_000)
    assert train.loss_canvas.height() >= 300
