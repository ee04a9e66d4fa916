"""The Quantify dock widget end to end: worker, layers, statistics, cancel, export.

Plumbing tests use a tiny cube and an untrained tiny model bundle (real bundle
format, random weights); the accuracy test uses the real sample cube and the
bundled model, and is skipped until both exist.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_napari_fixtures import (
    ELEMENTS,
    REGION_NAMES,
    bundled_model_exists,
    result_layer,
    sample_path,
    tiny_counts,
    write_tiny_cxc,
    write_tiny_model,
)

PLUGIN = "napari-xrfquant"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def widget_on_tiny(make_napari_viewer, tmp_path, tiny_model_dir):
    """A viewer with the tiny cube open and a Quantify widget set to the tiny model."""
    from napari_xrfquant._napari.widgets.quantify import QuantifyWidget

    path = write_tiny_cxc(tmp_path / "tiny.h5")
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    widget = QuantifyWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.add_model(tiny_model_dir)
    widget.device_combo.setCurrentText("cpu")
    return viewer, widget


def run_to_end(qtbot, widget) -> None:
    # wait on the widget, not on worker.finished: a tiny job may finish before
    # a signal spy could connect, while the widget's own slots were connected first
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)


def test_widget_lists_cube_model_and_devices(widget_on_tiny) -> None:
    import torch

    _viewer, widget = widget_on_tiny
    assert widget.cube_combo.currentText() == "tiny"
    assert "Au, Ag, Cu, Ni, Zn" in widget.model_info.text()
    assert "12.50 wt%" in widget.model_info.text()  # the recorded test MAE
    cuda_item = widget.device_combo.model().item(2)
    assert cuda_item.isEnabled() == torch.cuda.is_available()
    assert widget.device_info.text() == "runs on: cpu"


def test_registry_additions_show_up_without_restart(widget_on_tiny, tiny_model_dir) -> None:
    from napari_xrfquant._napari._registry import model_registry

    _, widget = widget_on_tiny
    model_registry.register("trained just now", tiny_model_dir)
    try:
        labels = [widget.model_combo.itemText(i) for i in range(widget.model_combo.count())]
        assert "trained just now" in labels
    finally:
        model_registry.unregister("trained just now")


def test_quantify_adds_maps_and_rerun_replaces_them(widget_on_tiny, qtbot) -> None:
    viewer, widget = widget_on_tiny
    counts, _, _ = tiny_counts()
    run_to_end(qtbot, widget)

    for element in ELEMENTS:
        layer = result_layer(viewer, element)
        assert layer.data.shape == counts.shape[:2]
        assert layer.metadata["unit"] == "wt%"
        assert layer.metadata["kind"] == "concentration"
        assert layer.metadata["element"] == element
        assert layer.metadata["source_layer"] == "tiny"
        assert layer.blending == "additive"
        assert layer.scale[-1] == pytest.approx(48.0)  # overlays the cube
        sigma = result_layer(viewer, element, "uncertainty")
        assert not sigma.visible
    colormaps = {result_layer(viewer, e).colormap.name for e in ELEMENTS}
    assert len(colormaps) == len(ELEMENTS)
    assert result_layer(viewer, kind="fit_quality").name == "fit quality · tiny-untrained"
    # the layers hold what the core computes for the same counts
    import napari_xrfquant as xq

    direct = xq.quantify(counts, viewer.layers["tiny"].metadata["energy_keV"],
                         model=widget.load_selected_model(), device="cpu")
    for index, element in enumerate(ELEMENTS):
        np.testing.assert_allclose(result_layer(viewer, element).data,
                                   direct.concentrations[..., index], rtol=1e-4, atol=1e-4)

    n_layers = len(viewer.layers)
    run_to_end(qtbot, widget)
    assert len(viewer.layers) == n_layers  # replaced, not piled up


def test_statistics_follow_the_region_layer(widget_on_tiny, qtbot) -> None:
    viewer, widget = widget_on_tiny
    run_to_end(qtbot, widget)
    whole = {s.element: s for s in widget.results.statistics}
    au = np.asarray(result_layer(viewer, "Au").data, np.float64)
    assert whole["Au"].mean_wt_percent == pytest.approx(au.mean(), rel=1e-6)
    assert whole["Au"].sd_wt_percent == pytest.approx(au.std(ddof=1), rel=1e-5)
    assert widget.results.table.rowCount() == len(ELEMENTS)

    widget.results.region_combo.setCurrentText("tiny truth regions")
    _, _, regions = tiny_counts()
    by_region = {(s.region, s.element): s for s in widget.results.statistics}
    right = by_region[(REGION_NAMES[2], "Au")]
    assert right.n_pixels == int((regions == 2).sum())
    assert right.mean_wt_percent == pytest.approx(au[regions == 2].mean(), rel=1e-6)

    # a rectangle over the left two columns: statistics of exactly those pixels
    rows, _cols = au.shape
    shapes = viewer.add_shapes(
        [[[-0.5, -0.5], [-0.5, 1.5], [rows - 0.5, 1.5], [rows - 0.5, -0.5]]],
        shape_type="rectangle",
        scale=(48.0, 48.0),
        name="roi",
    )
    assert shapes is not None
    widget.results.region_combo.setCurrentText("roi")
    stats = {s.element: s for s in widget.results.statistics}
    assert stats["Au"].n_pixels == rows * 2
    assert stats["Au"].mean_wt_percent == pytest.approx(au[:, :2].mean(), rel=1e-6)


def test_cancel_leaves_no_partial_layers(widget_on_tiny, qtbot, monkeypatch) -> None:
    import time

    import napari_xrfquant._napari.widgets.quantify as quantify_module

    real_job = quantify_module.quantify_job

    def slow_job(*args, **kwargs):
        # the real job, slowed to 50 ms a chunk so that Cancel lands mid-run
        generator = real_job(*args, **kwargs)
        while True:
            try:
                event = next(generator)
            except StopIteration as stop:
                return stop.value
            time.sleep(0.05)
            yield event

    viewer, widget = widget_on_tiny
    monkeypatch.setattr(quantify_module, "GUI_BATCH_SPECTRA", 4)  # 12 chunks
    monkeypatch.setattr(quantify_module, "quantify_job", slow_job)
    before = [layer.name for layer in viewer.layers]
    progressed = []
    worker = widget.run()
    worker.yielded.connect(progressed.append)
    qtbot.waitUntil(lambda: len(progressed) >= 1, timeout=30_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    assert [layer.name for layer in viewer.layers] == before
    assert "cancelled" in widget.status.text()
    assert widget.progress.value() < widget.progress.maximum()


def test_export_writes_readable_maps_and_asks_before_overwrite(
    widget_on_tiny, qtbot, tmp_path
) -> None:
    from napari_xrfquant import io

    viewer, widget = widget_on_tiny
    run_to_end(qtbot, widget)
    folder = tmp_path / "export"
    questions = []
    widget.results.confirm_overwrite = lambda paths: questions.append(paths) or False
    written = widget.results.export(folder, layout="stack")
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["tiny_wt_percent.tif", "tiny_sigma_wt_percent.tif", "tiny_fit_quality.tif",
         "tiny_statistics.csv"]
    )
    maps = io.read_element_maps(folder / "tiny_wt_percent.tif")
    assert list(maps.elements) == list(ELEMENTS)
    assert maps.unit == "wt%"
    assert maps.pixel_size_um == pytest.approx(48.0)
    np.testing.assert_array_equal(maps.maps[0], result_layer(viewer, "Au").data)
    csv_lines = (folder / "tiny_statistics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("source,region,element,n_pixels,mean_wt_percent")
    assert len(csv_lines) == 1 + len(ELEMENTS)

    # second export: asked, declined, nothing replaced and no staging left behind
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert widget.results.export(folder, layout="stack") == []
    assert len(questions) == 1 and len(questions[0]) == 4
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_export_per_element_layout(widget_on_tiny, qtbot, tmp_path) -> None:
    from napari_xrfquant import io

    _, widget = widget_on_tiny
    run_to_end(qtbot, widget)
    written = widget.results.export(tmp_path, layout="per-element")
    names = {p.name for p in written}
    assert {f"tiny_{e}_wt_percent.tif" for e in ELEMENTS} <= names
    assert {f"tiny_{e}_sigma_wt_percent.tif" for e in ELEMENTS} <= names
    cu = io.read_element_maps(tmp_path / "tiny_Cu_wt_percent.tif")
    assert list(cu.elements) == ["Cu"] and cu.unit == "wt%"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_background_mask_blanks_weak_pixels_everywhere(widget_on_tiny, qtbot, tmp_path) -> None:
    from napari_xrfquant import io

    viewer, widget = widget_on_tiny
    counts, _, _ = tiny_counts()
    total = counts.sum(axis=-1, dtype=np.int64)  # independent of the reader's total layer
    threshold = int(np.median(total))  # about half the pixels fall below it
    weak = total < threshold
    assert 0 < weak.sum() < weak.size
    widget.mask_spin.setValue(threshold)
    assert widget.mask_below_counts == threshold
    run_to_end(qtbot, widget)

    for element in ELEMENTS:
        conc = result_layer(viewer, element)
        sigma = result_layer(viewer, element, "uncertainty")
        np.testing.assert_array_equal(np.isnan(conc.data), weak)
        np.testing.assert_array_equal(np.isnan(sigma.data), weak)
        assert conc.metadata["mask_below_counts"] == threshold
    fit = result_layer(viewer, kind="fit_quality")
    assert np.isfinite(fit.data).all()  # fit quality keeps every pixel
    assert fit.metadata["mask_below_counts"] == threshold

    au = np.asarray(result_layer(viewer, "Au").data, np.float64)
    whole = {s.element: s for s in widget.results.statistics}
    assert whole["Au"].n_pixels == int((~weak).sum())
    assert whole["Au"].mean_wt_percent == pytest.approx(au[~weak].mean(), rel=1e-6)
    assert whole["Au"].sd_wt_percent == pytest.approx(au[~weak].std(ddof=1), rel=1e-5)

    written = widget.results.export(tmp_path / "out", layout="stack")
    assert written
    maps = io.read_element_maps(tmp_path / "out" / "tiny_wt_percent.tif")
    np.testing.assert_array_equal(np.isnan(maps.maps[0]), weak)
    assert maps.extra["mask_below_counts"] == threshold

    # a new threshold re-masks the same result at once, without another run
    assert widget.worker is None
    widget.mask_spin.setValue(0)
    assert np.isfinite(result_layer(viewer, "Au").data).all()
    assert result_layer(viewer, "Au").metadata["mask_below_counts"] == 0
    assert {s.element: s for s in widget.results.statistics}["Au"].n_pixels == weak.size


def test_inspector_says_a_masked_pixel_has_no_composition(widget_on_tiny, qtbot) -> None:
    from napari_xrfquant._napari.widgets.inspector import SpectrumInspector

    viewer, widget = widget_on_tiny
    counts, _, _ = tiny_counts()
    total = counts.sum(axis=-1, dtype=np.int64)
    widget.mask_spin.setValue(int(total.max()) + 1)  # every pixel is "background"
    run_to_end(qtbot, widget)
    inspector = SpectrumInspector(viewer)
    shown = inspector.show_pixel(0, 0)
    assert shown is not None and shown.composition is not None
    assert shown.composition.masked
    assert shown.reconstructed is None
    np.testing.assert_array_equal(shown.measured, counts[0, 0])
    assert "masked as background" in inspector.composition_label.text()


def test_unusable_model_is_a_notification(widget_on_tiny, tmp_path) -> None:
    from napari.utils.notifications import notification_manager

    _, widget = widget_on_tiny
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    widget.add_model(broken)
    assert widget.run() is None
    assert any("broken_model" in str(n.message) for n in notification_manager.records)


@pytest.mark.slow
@pytest.mark.skipif(
    not bundled_model_exists(),
    reason="needs the bundled model",
)
def test_sample_quantified_within_1_wt_percent_of_truth(make_napari_viewer, qtbot) -> None:
    from napari_xrfquant._napari.widgets.quantify import QuantifyWidget
    from napari_xrfquant.io import read_truth

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "cxc_gold_sample")
    widget = QuantifyWidget(viewer)
    widget.model_combo.setCurrentText("bundled default")
    widget.device_combo.setCurrentText("cpu")
    run_to_end(qtbot, widget)

    truth = read_truth(sample_path())
    assert truth is not None and truth.regions is not None
    shape = truth.regions.shape
    for element in truth.elements:
        layer = result_layer(viewer, element)
        assert layer.data.shape == shape
        assert layer.metadata["unit"] == "wt%"
    for label, name in enumerate(truth.region_names):
        mask = truth.regions == label
        if label == 0 or not mask.any():
            continue
        for index, element in enumerate(truth.elements):
            predicted = float(np.nanmean(result_layer(viewer, element).data[mask]))
            expected = float(truth.wt_percent[mask, index].mean())
            assert abs(predicted - expected) < 1.0, (name, element, predicted, expected)

    # the default background mask: air (truth label 0, scatter only) is NaN, the plate is not
    au = np.asarray(result_layer(viewer, "Au").data)
    assert result_layer(viewer, "Au").metadata["mask_below_counts"] == 200
    assert np.isnan(au[truth.regions == 0]).all()
    assert np.isfinite(au[truth.regions > 0]).all()
    # the table over the truth regions: nan-aware, each region within 1 wt% of truth
    widget.results.region_combo.setCurrentText("cxc_gold_sample truth regions")
    table = {(s.region, s.element): s for s in widget.results.statistics}
    for label, name in enumerate(truth.region_names):
        mask = truth.regions == label
        if label == 0 or not mask.any():
            continue
        for index, element in enumerate(truth.elements):
            stat = table[(name, element)]
            assert stat.n_pixels == int(mask.sum())
            expected = float(truth.wt_percent[mask, index].mean())
            assert abs(stat.mean_wt_percent - expected) < 1.0, (name, element, stat)


def test_cube_outside_the_models_energy_range_is_a_notification(
    make_napari_viewer, qtbot, tmp_path, tiny_model_dir
) -> None:
    import json

    from napari.utils.notifications import notification_manager

    from napari_xrfquant._napari.widgets.quantify import QuantifyWidget

    # 1024 channels of 10 eV: the cube ends at 10 keV, the model reads up to 31 keV
    counts = np.random.default_rng(1).poisson(3.0, size=(3, 4, 1024)).astype(np.uint16)
    np.save(tmp_path / "low.npy", counts)
    (tmp_path / "low.calib.json").write_text(json.dumps({"offset_keV": 0.0, "gain_keV": 0.01}))
    viewer = make_napari_viewer()
    viewer.open(tmp_path / "low.npy", plugin=PLUGIN)
    widget = QuantifyWidget(viewer)
    widget.add_model(tiny_model_dir)
    widget.device_combo.setCurrentText("cpu")
    n_layers = len(viewer.layers)
    run_to_end(qtbot, widget)
    assert len(viewer.layers) == n_layers
    messages = [str(n.message) for n in notification_manager.records]
    assert any("low" in m and "keV" in m and "cannot quantify" in m for m in messages), messages


def test_bundled_model_summary_states_its_test_mae():
    """The Quantify widget's model line quotes the bundled model's measured test MAE."""
    import json

    from napari_xrfquant._napari._registry import test_mae_at_level
    from napari_xrfquant.models import load_model

    model = load_model()
    level, mae = test_mae_at_level(model.metadata)
    recorded = json.loads((model.path / "model.json").read_text())["metrics"]
    assert level == "1e+04"
    assert mae == recorded["test_nominal"]["levels"]["1e+04"]["mae_wt"]
