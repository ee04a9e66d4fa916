"""The request part of the Calibrate dock: cube, model (or an instrument file and
elements, for a new model), standards, free parameters.

:class:`CalibrateForm` builds the form and turns it into a checked request
(:meth:`CalibrateForm.request`); :class:`.calibrate.CalibrateWidget` runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._layers import (
    SpatialFrame,
    cube_counts,
    cube_layers,
    cube_metadata,
)
from napari_xrfquant._napari._qt import alive, browse_row, present, refill_combo
from napari_xrfquant._napari._regions import region_layer_names
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari.widgets._find_elements import ChosenCube, ElementsFinder
from napari_xrfquant._napari.widgets._number_edit import NumberEdit, edit_problems

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer
    from napari.layers import Image

#: Text of a standards row that holds an unknown (clustered with the rest).
UNKNOWN = ""
#: The start entry for a set-up without a model: an instrument file and elements;
#: "Retrain" then trains a new model for the calibrated set-up.
NEW_MODEL = "Instrument file (train a new model)"


class CalibrateForm(QWidget):
    """The form of the Calibrate dock, a part it is built from.

    Parameters
    ----------
    viewer
        The viewer whose cube and region layers the form lists.
    progress
        The dock's progress bar (Find elements shows its phases there).
    changed
        Called when the cube list changes (the dock's Run button follows it).
    """

    def __init__(self, viewer: Viewer, progress: QProgressBar,
                 changed: Callable[[], None]) -> None:
        super().__init__()
        self.viewer = viewer
        self.progress = progress
        self._changed = changed
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._build_form(layout)
        self.regions_combo.currentTextChanged.connect(lambda _text: self.fill_standard_rows())
        self.model_combo.currentTextChanged.connect(lambda _text: self.apply_default_free())
        self.instrument_edit.editingFinished.connect(self.apply_default_free)
        self.refresh_layers()
        self.refresh_models()
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._layers_changed)
        # psygnal holds the slot weakly; a deleted form must also stop hearing it
        model_registry.changed.connect(self._registry_changed)
        slot = self._registry_changed
        self.destroyed.connect(lambda *_: model_registry.changed.disconnect(slot))

    def _build_form(self, layout: QVBoxLayout) -> None:
        from napari_xrfquant.instrument_parameters import PARAMETERS
        from napari_xrfquant.physics.standards import library

        form = QFormLayout()
        self.cube_combo = QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("The model whose elements and instrument the fit starts from")
        self.regions_combo = QComboBox()
        self.regions_combo.setToolTip("Labels or Shapes layer marking the standards")
        form.addRow("Cube layer", self.cube_combo)
        form.addRow("Start from model", self.model_combo)
        layout.addLayout(form)
        self.new_model_box = QWidget()  # shown for NEW_MODEL only
        new_form = QFormLayout(self.new_model_box)
        new_form.setContentsMargins(0, 0, 0, 0)
        self.instrument_edit = QLineEdit()
        self.instrument_edit.setPlaceholderText("instrument.toml of the set-up")
        self.finder = ElementsFinder(self._chosen_counts, self._instrument_on, self.progress)
        self.elements_edit = self.finder.elements_edit
        new_form.addRow("Instrument", browse_row(self.instrument_edit, self._browse_instrument))
        new_form.addRow("Elements", self.finder)
        self.new_model_box.setVisible(False)
        layout.addWidget(self.new_model_box)
        form = QFormLayout()
        form.addRow("Standards layer", self.regions_combo)
        layout.addLayout(form)

        self.standards_table = QTableWidget(0, 2)
        self.standards_table.setHorizontalHeaderLabels(("region", "standard (library or Au=..)"))
        present(self.standards_table.horizontalHeader()).setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch
        )
        self.standards_table.setMinimumHeight(110)
        self._library_names = sorted(library())
        layout.addWidget(self.standards_table)

        box = QGroupBox("Free instrument parameters")
        box_layout = QVBoxLayout(box)
        self.free_list = QListWidget()
        self.free_list.setToolTip(
            "Checked: fitted. The defaults follow the model's set-up (an optic only if it "
            "has one); left at the defaults, pile-up is added when the cube shows sum peaks"
        )
        for name in PARAMETERS:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.free_list.addItem(item)
        self._default_free: list[str] = []
        self.free_list.setMinimumHeight(120)
        box_layout.addWidget(self.free_list)
        self.knots_edit = QLineEdit()
        self.knots_edit.setPlaceholderText("e.g. 2, 6, 10, 15, 22, 30 (keV)")
        self.knots_edit.setToolTip(
            "Fit the optic as log-transmission knots at these energies (a smooth curve "
            "through them) instead of two sigmoids; empty: the model instrument's optic"
        )
        self.monotone_check = QCheckBox("non-increasing with energy")
        self.monotone_check.setToolTip("Keep the knots' transmission monotone")
        knots_form = QFormLayout()
        knots_form.addRow("Optic knots", self.knots_edit)
        knots_form.addRow("", self.monotone_check)
        box_layout.addLayout(knots_form)
        layout.addWidget(box)

        form = QFormLayout()
        self.exclude_edit = QLineEdit()
        self.exclude_edit.setPlaceholderText("e.g. 2.8-3.1, 6.3-6.5 (keV)")
        self.exclude_edit.setToolTip("Energy ranges left out of the fit (lines of the set-up)")
        self.clusters_spin = NumberEdit(16, integer=True, low=1, high=256)
        self.mask_spin = NumberEdit(200, integer=True, low=0, unit="counts")
        self.seconds_spin = NumberEdit(100, low=5, high=3600, unit="s")
        self.seconds_spin.setToolTip(
            "Time budget of the whole calibration (grouping, start and fit); sigma still "
            "comes from the curvature where it stops"
        )
        form.addRow("Exclude", self.exclude_edit)
        form.addRow("Clusters", self.clusters_spin)
        form.addRow("Background below", self.mask_spin)
        form.addRow("Fit time", self.seconds_spin)
        layout.addLayout(form)

    def _layers_changed(self, _event: Any = None) -> None:
        if alive(self):  # the dock may be closed while the viewer lives on
            self.refresh_layers()

    def _registry_changed(self) -> None:
        if not alive(self):
            model_registry.changed.disconnect(self._registry_changed)
            return
        self.refresh_models()

    # -- lists -----------------------------------------------------------------
    def refresh_layers(self) -> None:
        """Refill the cube and standards-layer lists, keeping the choices."""
        cubes = [layer.name for layer in cube_layers(self.viewer.layers)]
        regions = ["", *region_layer_names(self.viewer.layers)]
        refill_combo(self.cube_combo, cubes)
        refill_combo(self.regions_combo, regions)
        self.fill_standard_rows()
        self._changed()

    def refresh_models(self) -> None:
        """Refill the model list from the shared registry."""
        current = self.model_combo.currentText() or model_registry.selected
        labels = model_registry.labels()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems([*labels, NEW_MODEL])
        self.model_combo.setCurrentText(current if current in (*labels, NEW_MODEL) else labels[0])
        self.model_combo.blockSignals(False)
        self.apply_default_free()

    def new_model(self) -> bool:
        """Whether the calibration starts from an instrument file (a new model)."""
        return self.model_combo.currentText() == NEW_MODEL

    def apply_default_free(self) -> None:
        """Show the instrument and elements fields for a new model, and check the default
        free parameters of the chosen set-up."""
        from napari_xrfquant.instrument_parameters import default_free, expand_free

        self.new_model_box.setVisible(self.new_model())
        try:
            if self.new_model():
                instrument = self._file_instrument()
            else:
                instrument = model_registry.load(self.model_combo.currentText()).instrument
        except Exception:  # what does not load is said on Calibrate
            return
        self._default_free = expand_free(default_free(instrument), instrument)
        self.set_free_parameters(self._default_free)

    def _chosen_counts(self) -> ChosenCube | None:
        """The chosen cube layer (for Find elements)."""
        cube = self.selected_cube()
        if cube is None:
            return None
        return ChosenCube(*cube_counts(cube), cube.name, cube_metadata(cube))

    def _file_instrument(self) -> Any:
        """The set-up of the instrument file a new model starts from.

        Raises
        ------
        XRFQuantError
            For no file, or one that does not load.
        """
        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.instrument import load_instrument

        path = self.instrument_edit.text().strip()
        if not path:
            raise XRFQuantError("a new model starts from an instrument file: choose one")
        return load_instrument(path)

    def _instrument_on(self, energy_keV: Any, _metadata: dict[str, Any]) -> Any:
        """The instrument file's set-up on a cube's channels (Find elements)."""
        from napari_xrfquant.io.calibration import on_energy_axis

        return on_energy_axis(self._file_instrument(), energy_keV)

    def _browse_instrument(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Instrument file", "",
                                              "Instrument (*.toml *.json)")
        if path:
            self.instrument_edit.setText(path)
            self.apply_default_free()

    def _layer(self, name: str) -> Any:
        return next((layer for layer in self.viewer.layers if layer.name == name), None)

    def regions(self) -> list[Any]:
        """The regions of the standards layer on the cube's pixel grid (may be empty)."""
        from napari_xrfquant._napari._regions import regions_from_layer

        layer, cube = self._layer(self.regions_combo.currentText()), self.selected_cube()
        if layer is None or cube is None:
            return []
        data, _energy = cube_counts(cube)
        return regions_from_layer(layer, SpatialFrame.from_layer(cube), tuple(data.shape[:2]))

    def fill_standard_rows(self) -> None:
        """One row per region of the standards layer; kept text stays with its region."""
        kept = {
            present(self.standards_table.item(r, 0)).text(): self.standard_text(r)
            for r in range(self.standards_table.rowCount())
            if self.standards_table.item(r, 0) is not None
        }
        names = [region.name for region in self.regions()]
        self.standards_table.setRowCount(len(names))
        for row, name in enumerate(names):
            item = QTableWidgetItem(name)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.standards_table.setItem(row, 0, item)
            combo = QComboBox()
            combo.setEditable(True)
            combo.addItems([UNKNOWN, *self._library_names])
            combo.setCurrentText(kept.get(name, UNKNOWN))
            self.standards_table.setCellWidget(row, 1, combo)

    def standard_text(self, row: int) -> str:
        """What row ``row`` says the region holds (empty: an unknown)."""
        widget = self.standards_table.cellWidget(row, 1)
        return widget.currentText().strip() if isinstance(widget, QComboBox) else ""

    def set_standard(self, row: int, text: str) -> None:
        """Set the standard of row ``row`` (a library name or ``Au=75,...``)."""
        widget = self.standards_table.cellWidget(row, 1)
        assert isinstance(widget, QComboBox)
        widget.setCurrentText(text)

    def free_parameters(self) -> list[str]:
        """The checked parameters."""
        items = [present(self.free_list.item(i)) for i in range(self.free_list.count())]
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def set_free_parameters(self, names: list[str]) -> None:
        """Check exactly ``names``."""
        for i in range(self.free_list.count()):
            item = present(self.free_list.item(i))
            checked = item.text() in names
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def selected_cube(self) -> Image | None:
        """The chosen cube layer, or None."""
        name = self.cube_combo.currentText()
        return next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == name), None)

    # -- the calibration -------------------------------------------------------
    def start(self) -> tuple[Any, list[str], Any]:
        """The model (None for a new one), elements and instrument the fit starts from.

        Raises
        ------
        XRFQuantError
            For a new model without an instrument file that loads, or without elements.
        """
        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.physics.lines import parse_elements

        if not self.new_model():
            model = model_registry.load(self.model_combo.currentText())
            return model, list(model.elements), model.instrument
        instrument = self._file_instrument()
        text = self.elements_edit.text().strip()
        if not text:
            raise XRFQuantError("a new model needs the sample's elements, e.g. Cr, Mn, Fe, Ni")
        # H-F may be listed as the matrix (oxygen of a rock): absorbed and scattered, no line
        return None, parse_elements(text, light=True), instrument

    def request(self) -> dict[str, Any]:
        """What the form asks for, checked (raises XRFQuantError with the reason)."""
        from napari_xrfquant.calibration.session import (
            check_request,
            parse_energies,
            parse_ranges,
            with_knots_optic,
        )
        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.instrument_parameters import is_optic
        from napari_xrfquant.io.detectors import instrument_for_cube
        from napari_xrfquant.physics.standards import parse_standard

        refused = edit_problems({"Clusters": self.clusters_spin,
                                 "Background below": self.mask_spin,
                                 "Fit time": self.seconds_spin})
        if refused:
            raise XRFQuantError(refused[0])
        cube = self.selected_cube()
        if cube is None:
            raise XRFQuantError("open an XRF cube first (no image layer with an energy axis)")
        model, elements, instrument = self.start()
        data, energy = cube_counts(cube)
        regions = self.regions()
        labels = np.zeros(data.shape[:2], dtype=np.int64)
        standards = {}
        for number, region in enumerate(regions, start=1):
            labels[region.mask] = number
            text = self.standard_text(number - 1)
            if text != UNKNOWN:
                try:
                    standards[number] = parse_standard(text)
                except XRFQuantError as exc:
                    raise XRFQuantError(f"{region.name}: {exc}") from None
        exclude = parse_ranges(self.exclude_edit.text())
        free = self.free_parameters()
        knots = parse_energies(self.knots_edit.text())
        if self.monotone_check.isChecked() and not knots:
            raise XRFQuantError("monotone shapes a knots optic: give the optic knots too")
        instrument = with_knots_optic(instrument, knots, self.monotone_check.isChecked())
        instrument = instrument_for_cube(instrument, cube_metadata(cube))  # its elements
        chosen: list[str] | None = free
        if knots and any(map(is_optic, free)):  # the knots stand in for the sigmoids
            chosen = [n for n in free if not is_optic(n)] + ["optic"]
        elif sorted(free) == sorted(self._default_free):
            chosen = None  # the defaults: what the set-up has and the data call for
        check_request(energy, elements, instrument, standards, chosen, exclude)
        return {
            "counts": data,
            "energy_keV": energy,
            "model": model,
            "elements": elements,
            "instrument": instrument,
            "labels": labels if standards else None,
            "standards": standards,
            "free": chosen,
            "exclude_keV": exclude,
            "source": cube.name,
        }
