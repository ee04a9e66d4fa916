"""The Quantify dock's Live switch, docked from the plugin menu: frames stacked as they arrive."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-xrfquant"


@pytest.fixture(scope="module")
def frames(alloy_frames):
    return alloy_frames[:3]


def _live_layers(viewer):
    return {layer.name: layer for layer in viewer.layers
            if (layer.metadata or {}).get("live")}


def test_live_switch_stacks_new_frames(make_napari_viewer, qtbot, tmp_path, frames):
    from napari_xrfquant._napari.widgets.live_panel import LIVE_SUFFIX

    viewer = make_napari_viewer()
    from napari_xrfquant._napari._registry import DEFAULT_LABEL

    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(DEFAULT_LABEL)
    widget.device_combo.setCurrentText("cpu")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    np.save(incoming / "frame_00.npy", frames[0])
    np.save(incoming / "frame_01.npy", frames[1])
    panel = widget.live
    panel.poll_s, panel.settle_s = 0.1, 0.2
    panel.folder_edit.setText(str(incoming))
    panel.live_check.setChecked(True)  # as a click on the switch does
    assert panel.worker is not None
    name = "Au [wt%] · cxc-gold-5el" + LIVE_SUFFIX  # the element, the model, live
    qtbot.waitUntil(lambda: name in _live_layers(viewer)
                    and _live_layers(viewer)[name].data.shape[0] == 2, timeout=60_000)
    np.save(incoming / "frame_02.npy", frames[2])  # a frame arrives while live
    qtbot.waitUntil(lambda: _live_layers(viewer)[name].data.shape[0] == 3, timeout=60_000)
    layer = _live_layers(viewer)[name]
    assert layer.data.shape == (3, 4, 5) and viewer.dims.current_step[0] == 2
    import napari_xrfquant as xq

    model = widget.load_selected_model(notify=False)  # the dock's (other tests may add models)
    for i, frame in enumerate(frames):  # in order, though two arrived together
        expected = xq.quantify(frame, model=model, device="cpu").concentrations[..., 0]
        np.testing.assert_allclose(layer.data[i], expected, atol=1e-3)
    assert "last frame_02.npy" in panel.status.text()
    assert (tmp_path / "incoming_xrfquant" / "frame_02_wt_percent.tif").exists()
    panel.live_check.setChecked(False)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=30_000)
    assert "stopped" in panel.status.text()


def test_live_refuses_a_missing_folder(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.live.folder_edit.setText(str(tmp_path / "nope"))
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(n.message))
    widget.live.live_check.setChecked(True)
    assert widget.live.worker is None and not widget.live.live_check.isChecked()
    assert any("choose a folder to watch" in m for m in seen)


def test_live_stack_grows_without_copying_every_frame(make_napari_viewer):
    """200 frames: each layer shows all of them, from a buffer reallocated O(log n) times."""
    from napari_xrfquant._napari.widgets.live_panel import LIVE_SUFFIX
    from napari_xrfquant.results import QuantResult

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    panel = widget.live
    rng = np.random.default_rng(0)
    maps = []
    for i in range(200):
        wt = rng.uniform(0, 100, size=(3, 4, 2)).astype(np.float32)
        maps.append(wt)
        result = QuantResult(wt, wt / 10, np.ones((3, 4), np.float32), ["Au", "Ag"], "m")
        assert panel.add_frame(result, f"frame_{i:03d}.npy")
    layer = _live_layers(viewer)["Au [wt%] · m" + LIVE_SUFFIX]
    assert layer.data.shape == (200, 3, 4)
    np.testing.assert_array_equal(layer.data, np.stack([m[..., 0] for m in maps]))
    buffer = panel._buffers["Au [wt%] · m" + LIVE_SUFFIX]
    assert np.shares_memory(layer.data, buffer)  # the layer shows a view, not a copy
    assert len(buffer) == 256  # doubled from 4: reallocated 6 times in 200 frames
