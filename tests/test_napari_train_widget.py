"""The Train dock widget: refused settings, training with live curves, cancel, save, quantify.

The physics checks are tested without Qt (their expected numbers are xraylib's
tabulated edges and line energies); the end-to-end test trains a real 2-element
model on the physics simulator for a few epochs and quantifies a simulated cube
with it from the Quantify widget.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.training.config import TrainingConfig
from test_napari_fixtures import result_layer

PLUGIN = "napari-xrfquant"


# -- the settings checks (no Qt) ----------------------------------------------
def test_element_list_parsing():
    from napari_xrfquant.training.checks import parse_element_list

    assert parse_element_list("fe, NI;cr  Au") == ["Fe", "Ni", "Cr", "Au"]
    for text, reason in [("", "no elements"), ("Fe, Xx", "unknown element symbol 'Xx'"),
                         ("C, Fe", "outside the supported range"), ("Fe Fe", "twice"),
                         ("Pu", "outside the supported range")]:
        with pytest.raises(XRFQuantError, match=reason):
            parse_element_list(text)


def test_beam_below_every_edge_is_refused():
    from napari_xrfquant.training.checks import settings_problems

    # Cu L3 edge 0.933 keV, Ni L3 0.855 keV (xraylib): a 0.8 keV beam excites nothing
    inst = reference_instrument().replace(**{"beam.energies_keV": (0.8,)})
    problems = settings_problems(TrainingConfig(elements=["Cu", "Ni"]), inst)
    assert "below every absorption edge of Cu" in problems[0]
    assert "Ni (lowest edge L3 0.85 keV)" in problems[0]


def test_beam_below_the_k_edge_leaves_only_lines_outside_the_range():
    from napari_xrfquant.training.checks import settings_problems

    # 8 keV is below the Zn K edge (9.66 keV): only Zn L (1.01 keV) is excited,
    # below the 1.2 keV start of the model input; Fe K (edge 7.11 keV) is fine.
    inst = reference_instrument().replace(**{"beam.energies_keV": (8.0,)})
    problems = settings_problems(TrainingConfig(elements=["Fe", "Zn"]), inst)
    assert len(problems) == 1
    assert "Zn La at 1.01 keV" in problems[0] and "Zn K edge, 9.66 keV" in problems[0]


def test_calibration_must_cover_the_strongest_lines():
    from napari_xrfquant.training.checks import settings_problems

    # 1024 channels of 5 eV end at 5.1 keV: Fe Ka 6.40 keV is outside, Cr Ka 5.41 too
    inst = reference_instrument().replace(**{"detector.gain_keV": 0.005})
    problems = settings_problems(TrainingConfig(elements=["Fe", "Cr", "Ca"]), inst)
    assert [p.split(" miss ")[1].split(" at ")[0] for p in problems] == ["Fe Ka", "Cr Ka"]
    assert "1.20-5.12 keV" in problems[0]
    reference = settings_problems(TrainingConfig(elements=["Au", "Ag", "Cu", "Ni", "Zn"]),
                                  reference_instrument())
    assert reference == []


def _beam(*energies_keV: float, weights: tuple[float, ...] | None = None):
    beam = {"beam.energies_keV": energies_keV}
    if weights is not None:
        beam["beam.weights"] = weights
    elif len(energies_keV) > 1:
        beam["beam.weights"] = (1.0,) * len(energies_keV)
    return reference_instrument().replace(**beam)


def test_strongest_line_follows_the_beam():
    from napari_xrfquant.physics import strongest_line

    assert strongest_line("Ag", _beam(30.0)).label == "Ag Ka"  # Ag K edge 25.5 keV
    assert strongest_line("Ag", _beam(20.0)).label == "Ag La"
    assert strongest_line("Au", _beam(30.0)).energy_keV == pytest.approx(9.71, abs=0.01)
    assert strongest_line("Fe", _beam(0.5)) is None
    # below the Au L3 edge (11.92 keV) only M lines: Au Ma1/Ma2 at 2.123/2.118 keV
    au_m = strongest_line("Au", _beam(10.0))
    assert au_m.label == "Au Ma"
    assert au_m.energy_keV == pytest.approx(2.12, abs=0.01)


def test_strongest_line_uses_the_simulators_corrected_cascade():
    import xraylib

    from napari_xrfquant.physics import _xraydata as xd
    from napari_xrfquant.physics import strongest_line

    # the Au Ma family is M5N7 + M5N6; its cross section must be the simulator's
    # (cascade with Coster-Kronig spectator vacancies), not xraylib's MA1 alone
    line = strongest_line("Au", _beam(10.0))
    expected = sum(
        xd.fluor_line_cs(79, getattr(xraylib, f"{name}_LINE"), 10.0) for name in ("M5N7", "M5N6")
    )
    assert line.cross_section_cm2_g == pytest.approx(expected, rel=1e-9)
    # weighting two beam energies adds their cross sections with those weights
    both = strongest_line("Fe", _beam(17.48, 19.6, weights=(0.8, 0.2)))
    one = [strongest_line("Fe", _beam(e)).cross_section_cm2_g for e in (17.48, 19.6)]
    assert both.cross_section_cm2_g == pytest.approx(0.8 * one[0] + 0.2 * one[1], rel=1e-9)


def test_non_positive_sizes_are_refused():
    from napari_xrfquant.training.checks import size_problems

    problems = size_problems({"n_spectra": 0, "batch_size": -1, "epochs": 5, "lr": 0.0,
                              "model.neurons": 0, "counts_min": 10.0, "counts_max": 5.0})
    joined = "\n".join(problems)
    for label in ("data set size", "batch size", "learning rate", "neurons per layer"):
        assert f"{label} must be positive" in joined
    assert "epochs" not in joined
    assert size_problems({"counts_min": 10.0, "counts_max": 5.0}) == [
        "counts range 10-5: the minimum exceeds the maximum"
    ]


# -- the widget ------------------------------------------------------------------
@pytest.fixture
def train_widget(make_napari_viewer):
    from napari_xrfquant._napari.widgets.train_widget import TrainWidget

    viewer = make_napari_viewer()
    # docked as a user docks it (napari then hands the widget its proxy viewer)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Train model")
    assert isinstance(widget, TrainWidget)
    return viewer, widget


def test_widget_refuses_bad_settings_before_running(train_widget):
    from napari.utils.notifications import notification_manager

    _viewer, widget = train_widget
    for elements, beam_keV, n_spectra, reason in [
        ("", 30.0, 1000, "no elements"),
        ("Fe, Qq", 30.0, 1000, "unknown element symbol 'Qq'"),
        ("Cu, Zn", 0.5, 1000, "below every absorption edge"),
        ("Cu, Zn", 30.0, 0, "simulated spectra: 0 is below the smallest allowed, 20"),
    ]:
        widget.form.elements_edit.setText(elements)
        widget.form.beam_spin.setValue(beam_keV)
        widget.form.n_spectra_spin.setValue(n_spectra)
        before = len(notification_manager.records)
        assert widget.train() is None
        assert widget.worker is None
        assert reason in widget.problem_label.text()
        assert len(notification_manager.records) > before
        assert reason in notification_manager.records[-1].message
    widget.form.elements_edit.setText("Cu, Zn")
    widget.form.n_spectra_spin.setValue(1000)
    widget.form.gain_spin.setValue(0.005)  # the channels end at 5.1 keV
    assert widget.train() is None
    assert "Cu Ka" in widget.problem_label.text() and "Zn Ka" in widget.problem_label.text()


def test_settings_round_trip_through_toml_for_the_cli(train_widget, tmp_path):
    from napari_xrfquant.training.config import load_config

    _viewer, widget = train_widget
    widget.form.elements_edit.setText("Fe, Ni, Cr")
    widget.form.beam_spin.setValue(20.0)
    widget.form.gain_spin.setValue(0.02)
    widget.form.neurons_spin.setValue(120)
    widget.form.model_combo.setCurrentText("cnn")
    paths = widget.form.save_settings(tmp_path / "steel.toml")
    with pytest.raises(FileExistsError):
        widget.form.save_settings(tmp_path / "steel.toml")
    config = load_config(paths[0])  # what `xrfquant train steel.toml` reads
    assert config.elements == ["Fe", "Ni", "Cr"]
    assert (config.model.type, config.model.neurons) == ("cnn", 120)
    instrument = config.load_instrument()
    assert instrument.beam.energies_keV == (20.0,)
    assert instrument.detector.gain_keV == pytest.approx(0.02)
    widget.form.elements_edit.setText("Au")
    widget.form.load_settings(paths[0])
    assert widget.form.elements_edit.text() == "Fe, Ni, Cr"
    assert widget.form.beam_spin.value() == pytest.approx(20.0)


def test_calibration_is_prefilled_from_a_cube_layer(make_napari_viewer, tmp_path):
    from napari_xrfquant._napari.widgets.train_widget import TrainWidget
    from napari_xrfquant.io import write_cxc_hdf5

    energy_keV = -0.05 + 0.021 * np.arange(800)
    path = write_cxc_hdf5(tmp_path / "cube.h5", np.ones((3, 4, 800), np.uint16), energy_keV)
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    widget = TrainWidget(viewer)
    assert widget.form.gain_spin.value() == pytest.approx(0.021, abs=1e-5)
    assert widget.form.offset_spin.value() == pytest.approx(-0.05, abs=1e-4)
    assert widget.form.channels_spin.value() == 800


def _simulated_cube(path, compositions, elements, counts):
    """4 x 4 cube: left half composition 0, right half composition 1 (reference instrument)."""
    from napari_xrfquant.io import write_cxc_hdf5
    from napari_xrfquant.physics import simulate

    inst = reference_instrument()
    spectra = simulate(np.asarray(compositions, float), elements, inst, counts=counts, seed=7)
    cube = np.empty((4, 4, spectra.shape[1]), np.uint32)
    cube[:, :2] = spectra[0]
    cube[:, 2:] = spectra[1]
    return write_cxc_hdf5(path, cube, inst.energy_axis_keV())


AUAG = ["Au", "Ag"]
AUAG_TRUTH = [[80.0, 20.0], [25.0, 75.0]]


def _small_au_ag_form(widget) -> None:
    """The form settings of a 2-element model that trains in seconds."""
    widget.form.name_edit.setText("auag-test")
    widget.form.elements_edit.setText("Au, Ag")
    widget.form.n_spectra_spin.setValue(2000)
    widget.form.layers_spin.setValue(2)
    widget.form.neurons_spin.setValue(64)
    widget.form.lr_spin.setValue(0.003)
    widget.form.batch_spin.setValue(128)
    widget.form.epochs_spin.setValue(4)
    widget.form.counts_min_spin.setValue(1000)


@pytest.fixture(scope="module")
def auag_bundle(tmp_path_factory):
    """The form's Au-Ag model trained through the core (as the widget's worker does)."""
    from napari_xrfquant.training.loop import train

    config = TrainingConfig(
        name="auag-test", elements=AUAG, n_spectra=2000, epochs=4, batch_size=128,
        lr=0.003, counts_min=1000, device="cpu",
    )
    config.model.hidden_layers = 2
    config.model.neurons = 64
    result = train(config)
    return result, result.save(tmp_path_factory.mktemp("models") / "auag")


@pytest.mark.slow
def test_training_draws_loss_curves_and_fills_the_metrics(train_widget, qtbot):
    from napari_xrfquant._napari._registry import model_registry

    _, widget = train_widget
    _small_au_ag_form(widget)
    worker = widget.train()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    result = widget.result
    assert result is not None and not result.cancelled
    assert widget.loss_canvas.epochs == list(range(1, len(result.history) + 1))
    assert len(widget.loss_canvas.val_loss) == len(result.history) >= 2
    assert widget.metrics_table.rowCount() == len(AUAG) + 2
    first_mae = result.metrics["test"]["levels"]["noiseless"]["mae_per_element"]["Au"]
    assert widget.metrics_table.verticalHeaderItem(0).text() == "Au MAE"
    assert widget.metrics_table.item(0, 0).text() == f"{first_mae:.3f}"  # noiseless column
    assert widget.registered_label in model_registry.labels()


@pytest.mark.slow
def test_cancel_keeps_the_best_checkpoint(train_widget, qtbot):
    _, widget = train_widget
    _small_au_ag_form(widget)
    widget.form.epochs_spin.setValue(200)
    worker = widget.train()
    with qtbot.waitSignal(worker.yielded, timeout=60_000,
                          check_params_cb=lambda e: type(e).__name__ == "EpochEnd"):
        pass
    widget.cancel()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    cancelled = widget.result
    assert cancelled.cancelled
    assert 1 <= len(cancelled.history) < 200
    best = min(cancelled.history, key=lambda e: e.val_mae)
    assert cancelled.best_epoch == best.epoch
    assert "cancelled; kept epoch" in widget.status.text()


def test_save_writes_a_bundle_and_asks_before_replacing(train_widget, auag_bundle, tmp_path):
    from napari_xrfquant.models import load_model

    _, widget = train_widget
    widget.result = auag_bundle[0]
    target = tmp_path / "models" / "auag"
    assert widget.save_model(target) == target
    asked = []
    widget.confirm_overwrite = lambda paths: asked.append(paths) or False
    assert widget.save_model(target) is None and asked
    assert load_model(target).elements == AUAG
    assert widget.registered_label == f"auag-test ({target})"


def test_a_trained_model_quantifies_from_the_quantify_dock(make_napari_viewer, qtbot,
                                                           auag_bundle, tmp_path):
    from napari_xrfquant._napari._registry import model_registry

    viewer = make_napari_viewer()
    viewer.open(_simulated_cube(tmp_path / "auag.h5", AUAG_TRUTH, AUAG, 1e5), plugin=PLUGIN)
    model_registry.register("auag just trained", auag_bundle[1])
    try:
        _, quantify = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
        labels = [quantify.model_combo.itemText(i) for i in range(quantify.model_combo.count())]
        assert "auag just trained" in labels  # listed without a restart
        quantify.model_combo.setCurrentText("auag just trained")
        quantify.device_combo.setCurrentText("cpu")
        assert quantify.run() is not None
        # the run ends once its layers exist (they are added after the worker's end)
        qtbot.waitUntil(lambda: quantify.worker is None, timeout=60_000)
    finally:
        model_registry.unregister("auag just trained")
    au = result_layer(viewer, "Au").data
    assert au.shape == (4, 4)
    # a few epochs on 1600 spectra: the two alloys must be told apart, roughly right
    assert au[:, :2].mean() - au[:, 2:].mean() > 25.0
    assert abs(au[:, :2].mean() - 80.0) < 20.0 and abs(au[:, 2:].mean() - 25.0) < 20.0


def test_a_trained_au_ag_model_reads_the_samples_eb508_block(auag_bundle):
    """ERM-EB508 is a binary Au-Ag alloy (75.12 / 24.90 wt%)."""
    import napari_xrfquant as xq
    from napari_xrfquant.io import read_cube
    from napari_xrfquant.sample import sample_cube_path

    cube = read_cube(sample_cube_path())
    truth = cube.metadata["truth"]
    eb508 = truth.regions == truth.region_names.index("ERM-EB508 (yellow gold)")
    rows, cols = np.nonzero(eb508)
    spectra = cube.data[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    result = xq.quantify(spectra, cube.energy_keV, model=auag_bundle[0].model, device="cpu")
    assert abs(float(np.nanmean(result.map("Au"))) - 75.12) < 20.0


@pytest.mark.slow
def test_search_fills_the_trials_table_and_the_form(train_widget, qtbot):
    _viewer, widget = train_widget
    # settings the form lacks (steps per epoch: batch size 1 would take 240 steps) come
    # from a loaded config, as from "Load settings..."
    widget.form.set_config(TrainingConfig(elements=["Cu", "Zn"], n_spectra=300, epochs=2,
                                     steps_per_epoch=3, eval_counts=[1e4]))
    widget.form.neurons_spin.setValue(999)
    panel = widget.search_panel
    worker = panel.search(2)
    assert worker is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    assert panel.trials_table.rowCount() == 2
    best = panel.search_result.best
    selected = panel.trials_table.selectionModel().selectedRows()
    assert [int(panel.trials_table.item(r.row(), 0).text()) for r in selected] == [best.number]
    assert panel.use_selected_trial()
    assert widget.form.neurons_spin.value() == best.params["neurons"] != 999
    assert widget.form.layers_spin.value() == best.params["hidden_layers"]
    assert widget.form.batch_spin.value() == best.params["batch_size"]
    assert widget.form.lr_spin.value() == pytest.approx(best.params["lr"], abs=1e-6)


def test_loss_canvas_follows_the_viewer_theme(train_widget):
    from matplotlib.colors import to_hex
    from napari.utils.theme import get_theme

    viewer, widget = train_widget
    canvas = widget.loss_canvas
    for theme in ("light", "dark"):
        viewer.theme = theme
        expected = to_hex(get_theme(theme).text.as_hex())
        assert to_hex(canvas.axes.xaxis.label.get_color()) == expected
        canvas.draw()
        assert to_hex(canvas.axes.get_yticklabels()[0].get_color()) == expected
    assert canvas.toolbar is not None  # napari-matplotlib's zoom / pan / save
    canvas.add_epoch(1, 2.0, 3.0)
    canvas.add_epoch(2, 1.0, 1.5)
    assert list(canvas.val_line.get_ydata()) == [3.0, 1.5]
    assert canvas.axes.get_yscale() == "log"
    canvas.add_epoch(3, -0.5, -0.2)  # a Gaussian NLL can go negative: no log axis then
    assert canvas.axes.get_yscale() == "linear"


def test_loss_plot_labels_log_ticks_within_a_decade(train_widget):
    """Losses from 0.52 to 0.61 hold no power of ten: the ticks are still labelled."""
    _viewer, widget = train_widget
    canvas = widget.loss_canvas
    canvas.clear()
    for epoch, (train, val) in enumerate([(0.61, 0.60), (0.56, 0.57), (0.52, 0.55)], 1):
        canvas.add_epoch(epoch, train, val)
    canvas.draw()
    assert canvas.axes.get_yscale() == "log"
    low, high = canvas.axes.get_ylim()
    labels = [t.get_text() for t in canvas.axes.get_yticklabels()
              if low <= t.get_position()[1] <= high and t.get_text()]
    assert len(labels) >= 2, labels


def test_eta_format():
    from napari_xrfquant._napari.widgets.train_widget import format_eta

    assert format_eta(65.4) == "1:05"
    assert format_eta(3 * 3600 + 7) == "3:00:07"
    assert format_eta(-3) == "0:00"


def test_a_cancelled_run_is_listed_beside_a_finished_one(train_widget, auag_bundle):
    """Issue 11: a cancelled run never replaces a finished one under the same name."""
    import dataclasses

    from napari_xrfquant._napari._registry import model_registry

    _, widget = train_widget
    finished = auag_bundle[0]
    cancelled = dataclasses.replace(finished, cancelled=True)
    first = widget.register_result(finished)
    second = widget.register_result(cancelled)
    assert first == "auag-test (trained, not saved)"
    assert second == "auag-test (cancelled, not saved)"
    assert {first, second} <= set(model_registry.labels())
    assert model_registry.load(first) is finished.model  # still the finished run's model
    # a new finished run takes the place of both
    assert widget.register_result(finished) == first
    assert first in model_registry.labels() and second not in model_registry.labels()
    model_registry.unregister(first)
