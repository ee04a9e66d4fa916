"""After Quantify, through the docked path: a readable view and a poor-fit alarm (issue 11, 2-3)."""

from __future__ import annotations

import numpy as np
import pytest

from test_napari_fixtures import write_tiny_cxc

PLUGIN = "napari-xrfquant"


def _quantify_docked(viewer, qtbot):
    from napari_xrfquant._napari._registry import DEFAULT_LABEL

    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(DEFAULT_LABEL)  # other tests may have chosen theirs
    widget.device_combo.setCurrentText("cpu")
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    return widget


def _notifications():
    from napari.utils.notifications import notification_manager

    seen: list[str] = []
    notification_manager.notification_ready.connect(lambda n: seen.append(str(n.message)))
    return seen


def test_one_map_shown_with_colour_bar_cube_hidden(make_napari_viewer, qtbot, tmp_path):
    from napari_xrfquant._napari._layers import KIND_CONCENTRATION
    from napari_xrfquant._napari._result_layers import UNCERTAINTY_COLORMAP

    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _quantify_docked(viewer, qtbot)
    maps = [lyr for lyr in viewer.layers if lyr.metadata.get("kind") == KIND_CONCENTRATION]
    shown = [lyr for lyr in maps if lyr.visible]
    assert len(maps) == 5 and len(shown) == 1
    spread = {lyr.name: np.nanstd(lyr.data) for lyr in maps}
    assert shown[0].name == max(spread, key=spread.get)  # the map with most structure
    assert shown[0].colorbar.visible and viewer.canvas.overlays["scale_bar"].visible
    # the unit on the canvas beside the colour bar: the map's name, drawn with it
    assert shown[0].name_overlay.visible and "[wt%]" in shown[0].name
    # and in napari's status bar under the mouse: the value with its unit
    status = shown[0].get_status((2.0, 3.0), world=False)
    assert status["value"].endswith(" wt%") and status["coordinates"].endswith(" wt%")
    fit = next(lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "fit_quality")
    assert fit.get_status((2.0, 3.0), world=False)["value"].endswith(fit.metadata["unit"])
    assert not viewer.layers["tiny"].visible and not viewer.layers["tiny total counts"].visible
    sigma = [lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "uncertainty"]
    assert {lyr.colormap.name for lyr in sigma} == {UNCERTAINTY_COLORMAP}


def test_all_maps_side_by_side_in_a_labelled_grid(make_napari_viewer, qtbot, tmp_path):
    """One click shows every element's map of the model at once: napari's grid, each
    panel with its name (element, unit, model) and colour bar; off again, one map."""
    from napari_xrfquant._napari._layers import KIND_CONCENTRATION

    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    widget = _quantify_docked(viewer, qtbot)
    maps = [lyr for lyr in viewer.layers if lyr.metadata.get("kind") == KIND_CONCENTRATION]
    widget.grid_check.setChecked(True)
    assert viewer.grid.enabled
    assert all(lyr.visible for lyr in maps) and len(maps) == 5
    for layer in maps:
        assert layer.colorbar.visible and layer.colorbar.gridded
        assert layer.name_overlay.visible and layer.name_overlay.gridded
        element = layer.metadata["element"]
        assert layer.name.startswith(f"{element} [wt%] · ")  # element, unit and model
    hidden = [lyr for lyr in viewer.layers
              if lyr.visible and lyr.metadata.get("kind") != KIND_CONCENTRATION]
    assert hidden == []  # sigma, fit quality and the cube stay out of the grid
    widget.grid_check.setChecked(False)
    assert not viewer.grid.enabled
    assert sum(lyr.visible for lyr in maps) == 1


def test_fit_quality_contrast_comes_from_the_sample_pixels():
    from napari_xrfquant._napari._layers import robust_contrast_limits
    from napari_xrfquant._napari._result_layers import result_layer_data
    from napari_xrfquant.results import QuantResult

    wt = np.full((4, 4, 2), 50.0, np.float32)
    wt[0] = np.nan  # a masked row of air, whose fit quality is far worse
    fit = np.ones((4, 4), np.float32)
    fit[0] = 500.0
    result = QuantResult(wt, wt, fit, ["Au", "Ag"], "m")
    layer = next(d for d in result_layer_data(result, "cube") if d[1]["name"] == "fit quality · m")
    assert layer[1]["contrast_limits"] == robust_contrast_limits(fit[1:], 99.5)


def _steel_cube(path):
    """Fe-Cr-Ni steel on the reference instrument: elements the gold model does not know."""
    import napari_xrfquant as xq
    from napari_xrfquant.io import write_cxc_hdf5
    from napari_xrfquant.models.bundle import load_model

    wt = np.tile([[70.0, 19.0, 11.0]], (12, 1))
    counts = xq.simulate(wt, ["Fe", "Cr", "Ni"], counts=2e4, seed=2).reshape(3, 4, -1)
    return write_cxc_hdf5(path, counts.astype(np.uint16), load_model().energy_keV)


def test_a_model_that_does_not_explain_the_spectra_is_flagged(make_napari_viewer, qtbot,
                                                              tmp_path):
    viewer = make_napari_viewer()
    viewer.open(_steel_cube(tmp_path / "steel.h5"), plugin=PLUGIN)
    seen = _notifications()
    widget = _quantify_docked(viewer, qtbot)
    assert float(np.nanmedian(widget.maps.shown_result.fit_quality)) > 2.0
    alarms = [m for m in seen if "does not explain these spectra" in m]
    assert len(alarms) == 1 and "spectrum inspector" in alarms[0] and "calibrate" in alarms[0]


def test_the_cli_flags_it_too_in_one_line(tmp_path, capsys):
    from napari_xrfquant.cli import main

    path = _steel_cube(tmp_path / "steel.h5")
    assert main(["quantify", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "fit quality" in line]
    assert len(err) == 1 and err[0].startswith("xrfquant quantify: warning: steel.h5: median")


@pytest.mark.slow
def test_the_bundled_model_on_its_sample_is_not_flagged(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "cxc_gold_sample")
    seen = _notifications()
    _quantify_docked(viewer, qtbot)
    assert not [m for m in seen if "does not explain" in m]


def test_a_cube_the_model_cannot_read_is_said_when_chosen(make_napari_viewer, tmp_path):
    """Issue 11, problem 6: the energy range is checked when the cube is chosen, not at Quantify."""
    from napari_xrfquant._napari._registry import DEFAULT_LABEL
    from napari_xrfquant.io import write_cxc_hdf5

    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(DEFAULT_LABEL)
    seen = _notifications()
    short = np.random.default_rng(0).poisson(5, size=(3, 4, 1024)).astype(np.uint16)
    path = write_cxc_hdf5(tmp_path / "short.h5", short, 0.01 * np.arange(1024))  # 0-10 keV
    viewer.open(path, plugin=PLUGIN)
    widget.cube_combo.setCurrentText("short")
    assert not widget.run_button.isEnabled()
    assert "cannot quantify these data" in widget.input_info.text()
    assert any("short" in m and "needs" in m for m in seen), seen
    good = write_tiny_cxc(tmp_path / "tiny.h5")
    viewer.open(good, plugin=PLUGIN)
    widget.cube_combo.setCurrentText("tiny")
    assert widget.run_button.isEnabled() and not widget.input_info.isVisibleTo(widget)


def test_two_models_side_by_side(make_napari_viewer, qtbot, tmp_path):
    """Issue 11, problem 7: a second model adds its own layers; a re-run replaces only its own."""
    from napari_xrfquant._napari._layers import KIND_CONCENTRATION
    from napari_xrfquant._napari._registry import DEFAULT_LABEL
    from test_napari_fixtures import write_tiny_model

    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    widget = _quantify_docked(viewer, qtbot)  # the bundled model
    tiny = widget.add_model(write_tiny_model(tmp_path / "model"))
    widget.model_combo.setCurrentText(tiny)
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)

    def maps():
        return {lyr.name: lyr for lyr in viewer.layers
                if lyr.metadata.get("kind") == KIND_CONCENTRATION}

    names = set(maps())
    assert "Au [wt%] · cxc-gold-5el" in names and "Au [wt%] · tiny-untrained" in names
    assert len(names) == 10
    bundled_au = maps()["Au [wt%] · cxc-gold-5el"]
    before = np.array(bundled_au.data)
    # statistics follow the model whose layer is active
    viewer.layers.selection.active = bundled_au  # the table follows at once
    assert {s.model_id.split("@")[0] for s in widget.results.statistics} == {"cxc-gold-5el"}
    # a re-run with the tiny model replaces its own layers, not the bundled model's
    widget.model_combo.setCurrentText(tiny)
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert set(maps()) == names
    np.testing.assert_array_equal(maps()["Au [wt%] · cxc-gold-5el"].data, before)
    widget.model_combo.setCurrentText(DEFAULT_LABEL)


def test_inspector_text_follows_a_new_quantification(make_napari_viewer, qtbot, tmp_path):
    """Problem 10: a pixel shown before Quantify shows the maps' wt% once they exist."""
    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _dock, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    shown = inspector.show_pixel(2, 5)
    assert shown.composition.source == "model"
    assert "model on this spectrum" in inspector.composition_label.text()
    _quantify_docked(viewer, qtbot)
    qtbot.waitUntil(lambda: inspector.last.composition.source == "layers", timeout=5_000)
    assert "from the maps" in inspector.composition_label.text()
    assert inspector.last.label == "pixel (2, 5)"


def test_a_cube_without_pixel_size_is_in_pixels_without_unit_warnings(make_napari_viewer,
                                                                      qtbot, tmp_path):
    """Problem 9: no pixel size -> pixel units everywhere, the map fills the view, and
    napari's "Inconsistent units" warning never comes."""
    import warnings

    from napari_xrfquant._napari._layers import KIND_CONCENTRATION

    viewer = make_napari_viewer(show=True)
    counts = np.random.default_rng(3).poisson(20, size=(6, 7, 1024)).astype(np.uint16)
    np.save(tmp_path / "frame.npy", counts)  # no pixel size, no calibration
    seen = _notifications()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viewer.open(tmp_path / "frame.npy", plugin=PLUGIN)
        _quantify_docked(viewer, qtbot)
    messages = seen + [str(w.message) for w in caught]
    assert not [m for m in messages if "Inconsistent units" in m], messages
    maps = [lyr for lyr in viewer.layers if lyr.metadata.get("kind") == KIND_CONCENTRATION]
    assert maps and all(tuple(lyr.scale) == (1.0, 1.0) for lyr in maps)
    assert all(str(u) == "pixel" for lyr in maps for u in lyr.units)
    viewer.reset_view()
    low, high = np.asarray(viewer.layers.extent.world)[:, -2:]
    assert tuple(high - low) == pytest.approx((6.0, 7.0), abs=1.01)  # not a speck


def test_a_cube_opens_on_its_brightest_slice_not_under_its_total_counts(make_napari_viewer,
                                                                       tmp_path):
    """Before Quantify the cube is what shows: its total-counts map is hidden (still read
    for the background mask) and the energy slider stands on the strongest channel."""
    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    cube, total = viewer.layers["tiny"], viewer.layers["tiny total counts"]
    assert cube.visible and not total.visible
    summed = np.asarray(cube.data).sum(axis=(1, 2))
    assert viewer.dims.current_step[0] == int(np.argmax(summed)) == cube.metadata["start_channel"]
