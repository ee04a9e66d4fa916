"""The docks share a 1080p screen (issue 11, problem 5): each scrolls, none opens as a strip."""

from __future__ import annotations

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
