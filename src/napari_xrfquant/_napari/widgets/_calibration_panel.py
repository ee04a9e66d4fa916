"""The Quantify dock's energy-calibration panel: shown, edited, saved as the sidecar.

``E = offset + gain * k + quadratic * k**2`` for channel ``k``. "Apply" gives the
cube layer the typed calibration at once (the inspector redraws); "Save
sidecar" writes it to ``<name>.calib.json`` beside the cube file, which the
readers use when the file itself has no calibration. When a cube without any
calibration has another channel count than the model reads,
:meth:`CalibrationPanel.ask_about_channels` opens a dialog rather than quantify
it on the reference axis without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._calibration_edit import EDITED, set_cube_calibration
from napari_xrfquant._napari._qt import ask_overwrite, one_line
from napari_xrfquant._napari.widgets._number_edit import NumberEdit, edit_problems

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer
    from napari.layers import Image
    from qtpy.QtWidgets import QAbstractButton

    from napari_xrfquant.models.bundle import QuantModel

#: What each ``calibration_source`` means, as the panel says it.
SOURCE_TEXT = {
    "file": "from the file",
    "sidecar": "from the sidecar .calib.json",
    "reference": "none in the file: the reference instrument's",
    "argument": "given when read",
    "lines": "the file's, refined on the spectrum's own lines",
    EDITED: "typed here (not saved)",
}


class CalibrationPanel(QGroupBox):
    """Energy calibration of the chosen cube layer: a line, and fields behind "Edit".

    Parameters
    ----------
    viewer
        The viewer whose layers it edits.
    """

    def __init__(self, viewer: Viewer) -> None:
        super().__init__("Energy calibration")
        self.viewer = viewer
        self.layer: Any = None
        # (layer name, energy array, calibration source) the fields were filled from
        self._shown: tuple[str, Any, Any] | None = None
        self.dialog: QMessageBox | None = None
        self._asked: set[tuple[str, int]] = set()
        outer = QVBoxLayout(self)
        header = QHBoxLayout()
        self.source_label = QLabel("")
        self.source_label.setWordWrap(True)
        self.edit_button = QToolButton()
        self.edit_button.setText("Edit")
        self.edit_button.setCheckable(True)
        self.edit_button.setToolTip("Show offset, gain and quadratic term to change them")
        header.addWidget(self.source_label, 1)
        header.addWidget(self.edit_button)
        outer.addLayout(header)
        self.fields = QWidget()  # folded until "Edit"
        form = QFormLayout(self.fields)
        form.setContentsMargins(0, 0, 0, 0)
        self.offset_edit = NumberEdit(0.0, unit="keV")
        self.offset_edit.setToolTip("Energy of channel 0 (keV)")
        self.gain_edit = NumberEdit(0.01, low=1e-6, unit="keV/channel")
        self.gain_edit.setToolTip("keV per channel")
        self.quadratic_edit = NumberEdit(0.0, unit="keV/channel²")
        self.quadratic_edit.setToolTip("keV per channel squared (0 for a linear axis)")
        form.addRow("offset", self.offset_edit)
        form.addRow("gain", self.gain_edit)
        form.addRow("quadratic", self.quadratic_edit)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Use this calibration for the cube layer now")
        self.save_button = QPushButton("Save sidecar...")
        row.addWidget(self.apply_button)
        row.addWidget(self.save_button)
        form.addRow(row)
        outer.addWidget(self.fields)
        self.fields.setVisible(False)
        self.edit_button.toggled.connect(self.fields.setVisible)
        self.apply_button.clicked.connect(lambda: self.apply())
        self.save_button.clicked.connect(lambda: self.save())

    def open_fields(self) -> None:
        """Unfold the fields (as "Edit" does)."""
        self.edit_button.setChecked(True)

    # -- showing -------------------------------------------------------------
    def show_layer(self, layer: Image | None) -> None:
        """Show the calibration of cube layer ``layer`` (None: nothing to edit)."""
        from napari_xrfquant.io.calibration import fit_calibration

        self.layer = layer
        self.setEnabled(layer is not None)
        if layer is None:
            self._shown = None
            return
        axis = layer.metadata["energy_keV"]
        shown = (layer.name, axis, layer.metadata.get("calibration_source"))
        # asked at every input check (each layer event): only a new cube, axis (the same
        # array object, not equal values) or source refills the fields, so what the
        # user is typing stays
        if (self._shown is not None and self._shown[1] is axis
                and self._shown[::2] == shown[::2]):
            return
        self._shown = shown
        energy = np.asarray(axis, dtype=np.float64)
        offset, gain, quadratic = fit_calibration(energy)
        self.offset_edit.setValue(round(offset, 9))
        self.gain_edit.setValue(round(gain, 9))
        self.quadratic_edit.setValue(round(quadratic, 12))
        source = str(layer.metadata.get("calibration_source", "unknown"))
        self.source_label.setText(
            f"{len(energy)} channels, {energy[0]:.3f}-{energy[-1]:.3f} keV; "
            f"{SOURCE_TEXT.get(source, source)}")
        has_file = layer.metadata.get("source_path") is not None
        self.save_button.setEnabled(has_file and source != "file")
        self.save_button.setToolTip(
            "The file states its own calibration, which is used when it is opened again"
            if source == "file" else
            "Write offset, gain and quadratic to <name>.calib.json beside the cube file"
            if has_file else "The cube layer has no file")

    def typed(self) -> tuple[float, float, float]:
        """``(offset, gain, quadratic)`` as typed.

        Raises
        ------
        ValueError
            When a field is refused, or the axis would not increase.
        """
        problems = edit_problems({"offset": self.offset_edit, "gain": self.gain_edit,
                                  "quadratic": self.quadratic_edit})
        if problems:
            raise ValueError("; ".join(problems))
        return (float(self.offset_edit.value()), float(self.gain_edit.value()),
                float(self.quadratic_edit.value()))

    def typed_axis(self) -> np.ndarray:
        """Channel energies of the typed calibration for the layer's channels.

        Raises
        ------
        ValueError
            For refused fields or an axis that does not increase.
        """
        from napari_xrfquant.io.calibration import check_energy_axis, polynomial_energy_axis

        n_channels = len(self.layer.metadata["energy_keV"])
        energy = polynomial_energy_axis(*self.typed(), n_channels)
        check_energy_axis(energy, n_channels, "the typed calibration")
        return energy

    # -- acting --------------------------------------------------------------
    def apply(self) -> bool:
        """Give the layer the typed calibration; False (and a notification) if refused."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError

        if self.layer is None:
            return False
        try:
            energy = self.typed_axis()
        except (ValueError, XRFQuantError) as exc:
            show_error(f"Energy calibration: {one_line(exc)}")
            return False
        set_cube_calibration(self.viewer.layers, self.layer, energy, EDITED)
        self.show_layer(self.layer)
        return True

    def save(self, overwrite: bool | None = None) -> Path | None:
        """Apply, then write the sidecar beside the cube file; ask before replacing one."""
        from napari.utils.notifications import show_error, show_info

        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.io.calibration import (
            sidecar_has_calibration,
            sidecar_path,
            write_sidecar_calibration,
        )

        path = self.layer.metadata.get("source_path") if self.layer is not None else None
        if path is None or not self.apply():
            return None
        side = sidecar_path(path)
        replace = False
        if sidecar_has_calibration(path):
            replace = overwrite if overwrite is not None else ask_overwrite(self, [side])
            if not replace:
                return None
        try:
            written = write_sidecar_calibration(path, *self.typed(), overwrite=replace)
        except (OSError, XRFQuantError) as exc:
            show_error(f"Energy calibration: {one_line(exc)}")
            return None
        set_cube_calibration(self.viewer.layers, self.layer,
                             self.layer.metadata["energy_keV"], "sidecar")
        self.show_layer(self.layer)
        show_info(f"Calibration saved to {written.name}")
        return written

    # -- the channel-count question -------------------------------------------
    def ask_about_channels(self, layer: Image, model: QuantModel) -> QMessageBox | None:
        """A dialog when ``layer`` has no calibration and not the model's channel count.

        Offers to spread the model's energy range over the cube's channels, to
        type a calibration, or to keep the reference axis. Non-blocking
        (``open``); asked once per cube and channel count. Returns the dialog,
        or None when there is nothing to ask.
        """
        if layer is None or model is None:
            return None
        energy = np.asarray(layer.metadata["energy_keV"], dtype=np.float64)
        n_model = len(model.energy_keV)
        key = (layer.name, len(energy))
        if (layer.metadata.get("calibration_source") != "reference" or len(energy) == n_model
                or key in self._asked):
            return None
        self._asked.add(key)
        model_energy = np.asarray(model.energy_keV, dtype=np.float64)
        span = float(model_energy[-1] - model_energy[0])
        stretched_gain = span / max(len(energy) - 1, 1)
        dialog = QMessageBox(self)
        dialog.setIcon(QMessageBox.Icon.Question)
        dialog.setWindowTitle("Energy calibration")
        dialog.setText(
            f"{layer.name} has {len(energy)} channels and no energy calibration; the model "
            f"reads {n_model} channels over {model_energy[0]:.2f}-{model_energy[-1]:.2f} keV. "
            f"With the reference gain the cube spans {energy[0]:.2f}-{energy[-1]:.2f} keV.")
        dialog.setInformativeText("Which energy axis should the cube have?")
        self.stretch_button = dialog.addButton(
            f"Same range as the model ({stretched_gain * 1000:.2f} eV/channel)",
            QMessageBox.ButtonRole.AcceptRole)
        self.type_button = dialog.addButton("Type a calibration...",
                                            QMessageBox.ButtonRole.ActionRole)
        dialog.addButton("Keep the reference gain", QMessageBox.ButtonRole.RejectRole)

        def chosen(button: QAbstractButton) -> None:
            if button is self.stretch_button:
                self.show_layer(layer)
                self.offset_edit.setValue(float(model_energy[0]))
                self.gain_edit.setValue(stretched_gain)
                self.quadratic_edit.setValue(0.0)
                self.apply()
            elif button is self.type_button:
                self.show_layer(layer)
                self.open_fields()
                self.gain_edit.setFocus()

        dialog.buttonClicked.connect(chosen)
        dialog.open()
        self.dialog = dialog
        return dialog
