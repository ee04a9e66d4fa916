"""Forms take what people type, refuse visibly what they cannot take (issue 11, problem 4).

Through the docks as a user opens them; each typed entry used to be rewritten by a
spin box in silence (1e-4 -> 1.0 in a box of six decimals, 20k -> 20, -5 -> 5).
"""

from __future__ import annotations

import pytest

PLUGIN = "napari-xrfquant"


@pytest.fixture
def train(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Train model")
    return widget


@pytest.mark.parametrize(("field", "typed", "expected"), [
    ("lr_spin", "1e-4", 1e-4),
    ("lr_spin", "0.0000001", 1e-7),
    ("counts_max_spin", "1e6", 1e6),
    ("n_spectra_spin", "20k", 20_000),
    ("n_spectra_spin", "2e4", 20_000),
])
def test_train_form_takes_scientific_notation(train, qtbot, field, typed, expected):
    edit = getattr(train.form, field)
    edit.clear()
    qtbot.keyClicks(edit, typed)
    assert edit.value() == pytest.approx(expected) and edit.problem() is None
    config, _instrument = train.form.settings()
    name = {"lr_spin": "lr", "counts_max_spin": "counts_max", "n_spectra_spin": "n_spectra"}
    assert getattr(config, name[field]) == pytest.approx(expected)


@pytest.mark.parametrize(("field", "typed", "why"), [
    ("lr_spin", "2", "above the largest allowed, 1"),
    ("lr_spin", "fast", "not a number"),
    ("n_spectra_spin", "10", "below the smallest allowed, 20"),
    ("n_spectra_spin", "2.5k", None),  # 2500: accepted
])
def test_train_form_refuses_out_of_range_as_typed(train, qtbot, field, typed, why):
    from napari_xrfquant.errors import XRFQuantError

    edit = getattr(train.form, field)
    edit.clear()
    qtbot.keyClicks(edit, typed)
    assert edit.text() == typed  # never rewritten
    if why is None:
        assert edit.problem() is None
        return
    assert why in edit.problem() and "border" in edit.styleSheet()
    with pytest.raises(XRFQuantError, match=r"refused|allowed|number"):
        train.form.settings()
    assert any(why in problem for problem in train.form.problems)


def test_quantify_mask_refuses_a_negative_threshold(make_napari_viewer, qtbot, tmp_path):
    from napari.utils.notifications import notification_manager

    from test_napari_fixtures import write_tiny_cxc

    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.mask_spin.clear()
    qtbot.keyClicks(widget.mask_spin, "-5")
    assert widget.mask_spin.text() == "-5" and "below the smallest" in widget.mask_spin.problem()
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(str(n.message)))
    widget.mask_spin.setText("off")
    assert widget.mask_below_counts == 0.0 and widget.mask_spin.problem() is None
    widget.mask_spin.setText("-5")
    assert widget.run() is None and widget.worker is None  # refused, not run at 5
    assert any("Mask below" in m and "-5" in m for m in seen)


@pytest.mark.parametrize(("field", "typed", "setting", "expected"), [
    ("layers_spin", "20", "hidden_layers", 20),  # the schema's maximum (the old box stopped at 16)
    ("epochs_spin", "1e3", "epochs", 1000),
    ("batch_spin", "1k", "batch_size", 1000),
    ("neurons_spin", "9000", "neurons", 9000),  # the old box stopped at 8192
])
def test_train_network_fields_take_the_schema_range(train, qtbot, field, typed, setting,
                                                    expected):
    edit = getattr(train.form, field)
    edit.clear()
    qtbot.keyClicks(edit, typed)
    config, _instrument = train.form.settings()
    value = getattr(config.model if setting in ("hidden_layers", "neurons") else config, setting)
    assert value == expected


def test_train_instrument_fields_keep_every_digit_and_refuse_visibly(train, qtbot):
    from napari_xrfquant.errors import XRFQuantError

    train.form.gain_spin.clear()
    qtbot.keyClicks(train.form.gain_spin, "0.0349625")  # a box of five decimals made it 0.03496
    train.form.fano_spin.clear()
    qtbot.keyClicks(train.form.fano_spin, "0.1234")
    _config, instrument = train.form.settings()
    assert instrument.detector.gain_keV == 0.0349625 and instrument.detector.fano == 0.1234
    train.form.incidence_spin.clear()
    qtbot.keyClicks(train.form.incidence_spin, "95")
    incidence = train.form.incidence_spin
    assert incidence.text() == "95" and "border" in incidence.styleSheet()
    with pytest.raises(XRFQuantError):
        train.form.settings()
    assert any(p.startswith("incidence angle: 95 is above") for p in train.form.problems)


def test_train_beta_takes_a_small_weight(train, qtbot):
    train.beta_spin.clear()
    qtbot.keyClicks(train.beta_spin, "1e-3")  # two decimals made it 0.00
    assert train.beta_spin.value() == 1e-3 and train.beta_spin.problem() is None
    train.search_panel.trials_spin.clear()
    qtbot.keyClicks(train.search_panel.trials_spin, "0")
    assert train.settings_to_run() is None and "trials: 0 is below" in train.form.problems[0]


@pytest.mark.parametrize(("field", "typed", "why"), [
    ("mask_spin", "-5", "Background below: -5 is below the smallest allowed, 0"),
    ("seconds_spin", "4000", "Fit time: 4000 is above the largest allowed, 3600"),
    ("clusters_spin", "2.5", "Clusters: 2.5 is not a whole number"),
])
def test_calibrate_fields_refuse_as_typed(make_napari_viewer, qtbot, tmp_path, field, typed,
                                          why):
    from test_napari_fixtures import write_tiny_cxc

    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Calibrate")
    edit = getattr(widget.form, field)
    edit.clear()
    qtbot.keyClicks(edit, typed)
    assert edit.text() == typed
    assert widget.calibrate() is None and widget.worker is None
    assert widget.status.text() == f"not started: {why}"


def test_quantify_refine_refuses_more_steps_than_allowed(make_napari_viewer, qtbot, tmp_path):
    from test_napari_fixtures import write_tiny_cxc

    viewer = make_napari_viewer()
    viewer.open(write_tiny_cxc(tmp_path / "tiny.h5"), plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    assert widget.refine_spin.text() == "off" and widget.refine_spin.value() == 0
    widget.refine_spin.clear()
    qtbot.keyClicks(widget.refine_spin, "60")
    assert widget.field_problem() == "Refine: 60 is above the largest allowed, 50"
    assert widget.run() is None and widget.worker is None
