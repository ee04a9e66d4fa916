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
    edit = getattr(train, field)
    edit.clear()
    qtbot.keyClicks(edit, typed)
    assert edit.value() == pytest.approx(expected) and edit.problem() is None
    config, _instrument = train.settings()
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

    edit = getattr(train, field)
    edit.clear()
    qtbot.keyClicks(edit, typed)
    assert edit.text() == typed  # never rewritten
    if why is None:
        assert edit.problem() is None
        return
    assert why in edit.problem() and "border" in edit.styleSheet()
    with pytest.raises(XRFQuantError, match=r"refused|allowed|number"):
        train.settings()
    assert any(why in problem for problem in train.problems)


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
