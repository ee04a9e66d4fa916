"""The Quantify dock's "Physics (no model)" entry, docked as a user docks it: Find
elements fills the element field from the cube, Quantify fits every pixel with the
simulator and adds the maps; refusals are notifications, not tracebacks."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-xrfquant"
STEEL = {"Fe": 70.0, "Cr": 18.0, "Ni": 10.0, "Mo": 2.0}


@pytest.fixture
def docked_on_steel(make_napari_viewer, tmp_path):
    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.io import write_cxc_hdf5
    from napari_xrfquant.physics import simulate

    counts = simulate(np.tile(list(STEEL.values()), (12, 1)), list(STEEL), counts=2e4, seed=6)
    path = write_cxc_hdf5(tmp_path / "steel.h5", counts.reshape(3, 4, -1),
                          reference_instrument().energy_axis_keV())
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    return viewer, widget


def test_find_elements_then_quantify_without_a_model(docked_on_steel, qtbot):
    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM

    viewer, widget = docked_on_steel
    items = [widget.model_combo.itemText(i) for i in range(widget.model_combo.count())]
    assert PHYSICS_ITEM in items
    assert not widget.physics_panel.isVisibleTo(widget)
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = widget.physics_panel
    assert panel.isVisibleTo(widget) and not widget.refine_spin.isEnabled()
    assert not widget.run_button.isEnabled()  # no elements yet: said in the dock
    assert "Find elements" in widget.input_info.text()

    assert panel.search() is not None
    assert panel.find_button.text() == "Cancel search"
    qtbot.waitUntil(lambda: panel.worker is None, timeout=120_000)
    assert set(panel.elements_edit.elements()) == set(STEEL)
    assert "found" in panel.found_info.text()
    widget.check_inputs()
    assert widget.run_button.isEnabled()

    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    maps = [layer for layer in viewer.layers
            if layer.metadata.get("model_id") == "physics (no network)"
            and layer.metadata.get("kind") == "concentration"]
    assert maps, [layer.name for layer in viewer.layers]
    names = {layer.metadata.get("element") for layer in maps}
    assert {"Fe", "Cr", "Ni", "Mo"} <= names
    fe = next(layer for layer in maps if layer.metadata.get("element") == "Fe")
    assert float(np.nanmean(fe.data)) == pytest.approx(70.0, abs=2.0)


def test_a_bad_instrument_file_is_a_notification(docked_on_steel, tmp_path, monkeypatch):
    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM

    _viewer, widget = docked_on_steel
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    bad = tmp_path / "bad.toml"
    bad.write_text("[beam]\nenergies_keV = 'many'\n")
    widget.physics_panel.instrument_edit.setText(str(bad))
    widget.physics_panel.elements_edit.setText("Fe, Cr")
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    assert widget.run() is None
    assert shown and shown[0].startswith("Quantify: ") and "\n" not in shown[0]


def test_the_fit_range_is_a_field_of_the_dock(docked_on_steel, qtbot, monkeypatch):
    """The energy range of the fit and the search, as --fit-range takes it: a bad one is
    said in the dock and keeps Quantify off; a good one reaches both jobs."""
    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
    from napari_xrfquant.inference import element_search, physics_quantify

    _viewer, widget = docked_on_steel
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = widget.physics_panel
    panel.elements_edit.setText("Fe, Cr, Ni, Mo")
    panel.fit_edit.setText("20-4")
    panel.fit_edit.editingFinished.emit()
    assert not widget.run_button.isEnabled()
    assert widget.input_info.text() == "fit range '20-4': LOW must be below HIGH"
    panel.fit_edit.setText("4-19")
    panel.fit_edit.editingFinished.emit()
    assert widget.run_button.isEnabled() and panel.fit_range() == (4.0, 19.0)

    seen: dict[str, object] = {}

    def capture(name, result):
        def job(*args, **kwargs):
            seen[name] = kwargs.get("fit_keV")
            return result
            yield  # a generator that ends at once

        return job

    monkeypatch.setattr(physics_quantify, "iter_quantify_physics", capture("quantify", None))
    monkeypatch.setattr(element_search, "iter_find_elements_in_cube",
                        capture("search", element_search.ElementSearch([], 1.0, [])))
    counts, energy, _name, _metadata = widget._chosen_counts()
    list(panel.job(counts, energy, 0.0))
    assert panel.search() is not None
    qtbot.waitUntil(lambda: panel.worker is None, timeout=30_000)
    assert seen == {"quantify": (4.0, 19.0), "search": (4.0, 19.0)}


def test_a_balance_compound_is_typed_in_the_matrix_box(docked_on_steel, monkeypatch):
    """The matrix box takes a compound as --matrix does: a bad one is said in the dock
    and keeps Quantify off; a good one reaches the job."""
    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
    from napari_xrfquant.inference import physics_quantify

    _viewer, widget = docked_on_steel
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = widget.physics_panel
    panel.elements_edit.setText("Fe, Cr, Ni, Mo")
    assert panel.matrix_combo.isEditable()
    panel.matrix_combo.setCurrentText("FeCO3")
    assert not widget.run_button.isEnabled()
    assert widget.input_info.text().startswith("matrix 'FeCO3' holds Fe (fitted as elements)")
    panel.matrix_combo.setCurrentText("C5H8O2")
    assert widget.run_button.isEnabled()
    seen = {}

    def job(*args, **kwargs):
        seen["matrix"] = kwargs.get("matrix")
        return None
        yield  # a generator that ends at once

    monkeypatch.setattr(physics_quantify, "iter_quantify_physics", job)
    counts, energy, _name, _metadata = widget._chosen_counts()
    list(panel.job(counts, energy, 0.0))
    assert seen == {"matrix": "C5H8O2"}


def test_a_file_of_other_detector_elements_is_a_notification(make_napari_viewer, tmp_path,
                                                             monkeypatch):
    """The real AXO map (four detector elements, summed as it is read) against an
    instrument that lists two: one line in a notification, no job."""
    from pathlib import Path

    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
    from napari_xrfquant.instrument import instrument_to_toml, load_instrument

    axo = Path(__file__).resolve().parents[1] / "sample_data" / "aps_2ide"
    two = load_instrument(axo / "instrument.toml").replace(**{"geometry.detector_elements": [
        {"takeoff_deg": 40.0, "scattering_deg": 85.0, "solid_angle_sr": 0.1},
        {"takeoff_deg": 50.0, "scattering_deg": 95.0, "solid_angle_sr": 0.1}]})
    (tmp_path / "two.toml").write_text(instrument_to_toml(two))
    viewer = make_napari_viewer()
    viewer.open(axo / "axo_std.mda", plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    widget.physics_panel.instrument_edit.setText(str(tmp_path / "two.toml"))
    widget.physics_panel.elements_edit.setText("Ca, Fe, Cu")
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    assert widget.run() is None
    assert shown and "lists 2 detector elements and the file holds 4" in shown[0]
    assert "\n" not in shown[0]


def test_a_films_statistics_say_the_share_of_its_standards_scale(make_napari_viewer, qtbot):
    """The real AXO map quantified in µg/cm² with its Ca/Fe/Cu standard: the layers carry
    the scale's relative sigma and the statistics box says it beside the unit."""
    from pathlib import Path

    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM

    axo = Path(__file__).resolve().parents[1] / "sample_data" / "aps_2ide"
    viewer = make_napari_viewer()
    viewer.open(axo / "axo_std.mda", plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = widget.physics_panel
    panel.instrument_edit.setText(str(axo / "instrument.toml"))
    panel.elements_edit.setText("Si, Cl, Ca, Fe, Cu, La")
    panel.standard_edit.setText(str(axo / "AXO_CaFeCu.csv"))
    widget.check_inputs()
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    la = next(layer for layer in viewer.layers if layer.metadata.get("element") == "La"
              and layer.metadata.get("kind") == "concentration")
    shared = la.metadata["calibration_sigma_percent"]
    assert 3.0 < shared < 30.0  # the three standards disagree: about 9 %
    title = widget.results.stats_box.title()
    assert "µg/cm²" in title and f"±{shared:.1f} %" in title


def test_why_an_element_was_left_out_is_the_labels_tooltip(docked_on_steel, qtbot, monkeypatch):
    """An element the search sets aside is named in the dock, and its reason (as the
    CLI prints it) is the tooltip of that line; it is not added to the field."""
    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
    from napari_xrfquant.inference import element_search
    from napari_xrfquant.inference.element_search import ElementSearch, FoundElement

    reason = "its La line lies within one FWHM of the set-up's own Ar Ka"
    search = ElementSearch(
        [FoundElement("Fe", "Fe Ka", 6.40, 700.0, 70.0),
         FoundElement("Ag", "Ag La", 2.98, 6.2, 0.1, uncertain=reason)],
        fit_quality=1.1, candidates=["Fe", "Ag"], seconds=1.0)

    def searched(*_args, **_kwargs):
        yield from ()
        return search

    monkeypatch.setattr(element_search, "iter_find_elements_in_cube", searched)
    _viewer, widget = docked_on_steel
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = widget.physics_panel
    assert panel.search() is not None
    qtbot.waitUntil(lambda: panel.worker is None, timeout=60_000)
    assert panel.elements_edit.elements() == ["Fe"]
    assert "uncertain, not added: Ag (hover for why)" in panel.found_info.text()
    assert panel.found_info.toolTip() == f"Ag (6.2 sigma): {reason}"


def test_without_an_instrument_file_find_elements_takes_the_files_beam(make_napari_viewer,
                                                                       qtbot):
    """A GSECARS file opened in napari states its 21 keV mono energy; Find elements with
    the instrument field empty searches under that beam (under the reference's 30 keV
    its scatter peaks passed for Ru and Rh)."""
    from pathlib import Path

    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM

    path = Path(__file__).resolve().parents[1] / "sample_data" / "gsecars" / \
        "axorf4_21kev_i050.xrf"
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    widget.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = widget.physics_panel
    chosen = widget._chosen_counts()
    assert panel._instrument_on(chosen.energy_keV, chosen.metadata).beam.energies_keV == (
        pytest.approx(21.0, abs=0.01),)
    assert panel.search() is not None
    qtbot.waitUntil(lambda: panel.worker is None, timeout=120_000)
    found = set(panel.elements_edit.elements())
    assert {"Pb", "Fe", "Cu", "Ca", "La", "Mo"} <= found and "Rh" not in found
    assert "no instrument file: the reference set-up under the file's 21 keV beam" in (
        panel.found_info.text())
