"""The Train dock's form: elements, instrument, data set and network <-> configuration.

A part the Train dock (:class:`~napari_xrfquant._napari.widgets.train_widget.TrainWidget`)
is built from.
Instrument fields take their ranges from the instrument schema
(:mod:`napari_xrfquant.instrument`) and their values from an instrument file
(``reference.toml`` at first): the form writes no instrument number of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._layers import cube_layers
from napari_xrfquant._napari.widgets._number_edit import (
    ElementsEdit,
    NumberEdit,
    edit_problems,
    schema_number,
)
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import Beam, Detector, Geometry
from napari_xrfquant.io.calibration import fit_calibration
from napari_xrfquant.training.checks import (
    parse_element_list,
    physics_problems,
    size_problems,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer

    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.training.config import TrainingConfig

#: Defaults of a new form: small enough to train in minutes on a laptop CPU.
FORM_DEFAULTS: dict[str, Any] = {
    "elements": "Au, Ag, Cu, Ni, Zn",
    "n_spectra": 20_000,
    "epochs": 30,
    "batch_size": 256,
    "patience": 8,
    "lr": 1e-3,
    "hidden_layers": 2,
    "neurons": 343,
}


class TrainForm(QWidget):
    """The settings of the Train dock (elements, instrument, data set, network), a part
    it is built from: it checks itself into a config (:meth:`check`) and reads and
    writes settings and instrument files.

    Parameters
    ----------
    viewer
        The viewer whose cube layers give a calibration.
    problem_label
        The dock's line for the reasons a form is refused.
    say
        Shows a line in the dock's status.
    confirm_overwrite
        Asked before files are replaced.
    """

    def __init__(self, viewer: Viewer, problem_label: QLabel, say: Callable[[str], None],
                 confirm_overwrite: Callable[[list[Path]], bool]) -> None:
        from napari_xrfquant.instrument import reference_instrument
        from napari_xrfquant.training.config import TrainingConfig

        super().__init__()
        self.viewer = viewer
        self.problem_label = problem_label
        self._say = say
        self.confirm_overwrite = confirm_overwrite
        self.problems: list[str] = []
        self._base_config = TrainingConfig()
        self._base_instrument = reference_instrument()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._build_form(layout)

        self.load_settings_button.clicked.connect(self._load_settings_clicked)
        self.save_settings_button.clicked.connect(self._save_settings_clicked)
        self.load_instrument_button.clicked.connect(self._load_instrument_clicked)
        self.save_instrument_button.clicked.connect(self._save_instrument_clicked)
        self.from_layer_button.clicked.connect(lambda: self.use_layer_calibration())
        self.set_instrument(self._base_instrument)

    def _build_form(self, layout: QVBoxLayout) -> None:
        """Settings files, elements, instrument, data set and network, top to bottom."""
        from napari_xrfquant.models.description import ModelConfig, architectures
        from napari_xrfquant.training.config import TrainingConfig

        self._number_fields: dict[str, NumberEdit] = {}  # filled by _number_row
        files = QHBoxLayout()
        self.load_settings_button = QPushButton("Load settings...")
        self.save_settings_button = QPushButton("Save settings...")
        files.addWidget(self.load_settings_button)
        files.addWidget(self.save_settings_button)
        layout.addLayout(files)

        # elements
        box = QGroupBox("Elements")
        form = QFormLayout(box)
        self.name_edit = QLineEdit("custom-model")
        self.elements_edit = ElementsEdit(FORM_DEFAULTS["elements"])
        self.sum_check = QCheckBox("concentrations sum to 100 wt%")
        self.sum_check.setChecked(True)
        form.addRow("model name", self.name_edit)
        form.addRow("elements", self.elements_edit)
        form.addRow(self.sum_check)
        layout.addWidget(box)

        # instrument
        box = QGroupBox("Instrument")
        form = QFormLayout(box)
        self.instrument_label = QLabel()
        self.instrument_label.setWordWrap(True)
        buttons = QHBoxLayout()
        self.load_instrument_button = QPushButton("Load...")
        self.save_instrument_button = QPushButton("Save...")
        buttons.addWidget(self.load_instrument_button)
        buttons.addWidget(self.save_instrument_button)
        # ranges from the instrument schema, values from reference.toml (set_instrument)
        self.beam_spin = schema_number(Beam, "energies_keV", 0.0, unit="keV")
        self.incidence_spin = schema_number(Geometry, "incidence_deg", 0.0, unit="deg")
        self.takeoff_spin = schema_number(Geometry, "takeoff_deg", 0.0, unit="deg")
        self.thickness_spin = schema_number(Detector, "thickness_cm", 0.0, unit="µm", scale=1e4)
        self.cube_combo = QComboBox()
        self.cube_combo.setToolTip("Take the energy calibration from this cube layer")
        self.from_layer_button = QPushButton("Use its calibration")
        self.offset_spin = schema_number(Detector, "offset_keV", 0.0, unit="keV")
        self.gain_spin = schema_number(Detector, "gain_keV", 0.01, unit="keV/channel")
        self.channels_spin = schema_number(Detector, "n_channels", 2, integer=True)
        self.noise_spin = schema_number(Detector, "noise_keV", 0.0, unit="eV", scale=1000.0)
        self.fano_spin = schema_number(Detector, "fano", 0.1)
        self.counts_min_spin = schema_number(TrainingConfig, "counts_min", 300.0)
        self.counts_max_spin = schema_number(TrainingConfig, "counts_max", 1e6)
        form.addRow(self.instrument_label)
        form.addRow("file", buttons)
        self.number_row(form, "beam energy", self.beam_spin)
        self.number_row(form, "incidence angle", self.incidence_spin)
        self.number_row(form, "take-off angle", self.takeoff_spin)
        self.number_row(form, "detector thickness", self.thickness_spin)
        layer_row = QHBoxLayout()
        layer_row.addWidget(self.cube_combo)
        layer_row.addWidget(self.from_layer_button)
        form.addRow("cube layer", layer_row)
        self.number_row(form, "calibration offset", self.offset_spin)
        self.number_row(form, "calibration gain", self.gain_spin)
        self.number_row(form, "channels", self.channels_spin)
        self.number_row(form, "electronic noise", self.noise_spin)
        self.number_row(form, "Fano factor", self.fano_spin)
        self.number_row(form, "counts per spectrum, min", self.counts_min_spin)
        self.number_row(form, "counts per spectrum, max", self.counts_max_spin)
        layout.addWidget(box)

        # data and network
        box = QGroupBox("Data set and network")
        form = QFormLayout(box)
        self.n_spectra_spin = schema_number(TrainingConfig, "n_spectra",
                                            FORM_DEFAULTS["n_spectra"], integer=True)
        self.model_combo = QComboBox()
        self.model_combo.addItems(list(architectures()))
        self.layers_spin = schema_number(ModelConfig, "hidden_layers",
                                         FORM_DEFAULTS["hidden_layers"], integer=True)
        self.neurons_spin = schema_number(ModelConfig, "neurons", FORM_DEFAULTS["neurons"],
                                          integer=True)
        self.lr_spin = schema_number(TrainingConfig, "lr", FORM_DEFAULTS["lr"])
        self.batch_spin = schema_number(TrainingConfig, "batch_size",
                                        FORM_DEFAULTS["batch_size"], integer=True)
        self.epochs_spin = schema_number(TrainingConfig, "epochs", FORM_DEFAULTS["epochs"],
                                         integer=True)
        self.patience_spin = schema_number(TrainingConfig, "patience",
                                           FORM_DEFAULTS["patience"], integer=True)
        self.seed_spin = schema_number(TrainingConfig, "seed", 0, integer=True)
        self.number_row(form, "simulated spectra", self.n_spectra_spin)
        form.addRow("model type", self.model_combo)
        self.number_row(form, "hidden layers", self.layers_spin)
        self.number_row(form, "neurons per layer", self.neurons_spin)
        self.number_row(form, "learning rate", self.lr_spin)
        self.number_row(form, "batch size", self.batch_spin)
        self.number_row(form, "epochs", self.epochs_spin)
        self.number_row(form, "patience (epochs)", self.patience_spin)
        self.number_row(form, "seed", self.seed_spin)
        layout.addWidget(box)

    # -- cube layers and calibration ----------------------------------------
    def refresh_cube_layers(self) -> None:
        """List the cube layers; prefill the calibration from the first new one."""
        previous = self.cube_combo.currentText()
        names = [layer.name for layer in cube_layers(self.viewer.layers)]
        self.cube_combo.clear()
        self.cube_combo.addItems(names)
        if previous in names:
            self.cube_combo.setCurrentText(previous)
        elif names:
            selected = [lyr.name for lyr in self.viewer.layers.selection if lyr.name in names]
            self.cube_combo.setCurrentText(selected[0] if selected else names[0])
            self.use_layer_calibration()
        self.from_layer_button.setEnabled(bool(names))

    def use_layer_calibration(self, name: str | None = None) -> bool:
        """Fill offset, gain and channels from a cube layer's energy axis.

        Returns
        -------
        bool
            Whether a cube layer with an energy axis was found.
        """
        name = name or self.cube_combo.currentText()
        layer = next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == name), None)
        if layer is None:
            return False
        energy_keV = np.asarray(layer.metadata["energy_keV"], dtype=np.float64)
        offset_keV, gain_keV, quadratic_keV = fit_calibration(energy_keV)
        self.offset_spin.setValue(offset_keV)
        self.gain_spin.setValue(gain_keV)
        self.channels_spin.setValue(int(energy_keV.size))
        # the form has no field for it: the quadratic term rides on the base instrument
        self._base_instrument = self._base_instrument.replace(
            **{"detector.quadratic_keV": quadratic_keV}
        )
        square = f" + {quadratic_keV:.3g} keV x channel^2" if quadratic_keV else ""
        self._say(f"calibration from {name}: E = {offset_keV:.4f} + "
                            f"{gain_keV:.5f} keV x channel{square}, {energy_keV.size} channels")
        return True

    # -- the form <-> config / instrument -----------------------------------
    def set_instrument(self, instrument: Instrument) -> None:
        """Show ``instrument`` in the form (and keep it for what the form lacks)."""
        self._base_instrument = instrument
        det, geo = instrument.detector, instrument.geometry
        self.instrument_label.setText(instrument.name)
        self.beam_spin.setValue(max(instrument.beam.energies_keV))
        self.incidence_spin.setValue(geo.incidence_deg)
        self.takeoff_spin.setValue(geo.takeoff_deg)
        self.thickness_spin.setValue(det.thickness_cm * 1e4)
        self.offset_spin.setValue(det.offset_keV)
        self.gain_spin.setValue(det.gain_keV)
        self.channels_spin.setValue(det.n_channels)
        self.noise_spin.setValue(det.noise_keV * 1000.0)
        self.fano_spin.setValue(det.fano)

    def instrument(self) -> Instrument:
        """The instrument the form describes (its base with the form's values).

        Raises
        ------
        InstrumentError
            If the values describe an impossible set-up.
        """
        base = self._base_instrument
        changes: dict[str, Any] = {
            "geometry.incidence_deg": self.incidence_spin.value(),
            "geometry.takeoff_deg": self.takeoff_spin.value(),
            "detector.thickness_cm": self.thickness_spin.value() * 1e-4,
            "detector.offset_keV": self.offset_spin.value(),
            "detector.gain_keV": self.gain_spin.value(),
            "detector.n_channels": self.channels_spin.value(),
            "detector.noise_keV": self.noise_spin.value() / 1000.0,
            "detector.fano": self.fano_spin.value(),
        }
        # a polychromatic beam stays as it is unless the user changes its top energy
        if not math.isclose(self.beam_spin.value(), max(base.beam.energies_keV), abs_tol=5e-4):
            changes["beam.energies_keV"] = (self.beam_spin.value(),)
            changes["beam.weights"] = (1.0,)
        return base.replace(**changes)

    def form_values(self) -> dict[str, Any]:
        """The form's training values under :class:`TrainingConfig` names (dotted for nested)."""
        return {
            "name": self.name_edit.text().strip() or "custom-model",
            "elements": self.elements_edit.text(),
            "sum_to_100": self.sum_check.isChecked(),
            "n_spectra": self.n_spectra_spin.value(),
            "counts_min": self.counts_min_spin.value(),
            "counts_max": self.counts_max_spin.value(),
            "lr": self.lr_spin.value(),
            "batch_size": self.batch_spin.value(),
            "epochs": self.epochs_spin.value(),
            "patience": self.patience_spin.value(),
            "seed": self.seed_spin.value(),
            "model.type": self.model_combo.currentText(),
            "model.hidden_layers": self.layers_spin.value(),
            "model.neurons": self.neurons_spin.value(),
        }

    def number_row(self, form: QFormLayout, label: str, edit: NumberEdit) -> None:
        """A form row for a number field, which :meth:`settings` then checks under ``label``."""
        form.addRow(label, edit)
        self._number_fields[label] = edit

    def number_fields(self) -> dict[str, NumberEdit]:
        """The dock's number fields under the labels it shows, in form order."""
        return dict(self._number_fields)

    def settings(self) -> tuple[TrainingConfig, Instrument]:
        """Validated config and instrument from the form.

        Raises
        ------
        XRFQuantError
            With every problem found, one per line (also kept in :attr:`problems`).
        """
        values = self.form_values()
        problems: list[str] = []
        try:
            elements = parse_element_list(values["elements"])
        except XRFQuantError as exc:
            elements = []
            problems.append(str(exc))
        refused = edit_problems(self.number_fields())
        problems += refused
        problems += [] if problems else size_problems(values)
        instrument = None
        if not refused:  # a refused field has no number to build the instrument from
            try:
                instrument = self.instrument()
            except XRFQuantError as exc:
                problems.append(f"instrument: {exc}")
        config = None
        if not problems:
            try:
                config = self._config_from(values, elements)
            except XRFQuantError as exc:
                problems.append(str(exc))
        if config is not None and instrument is not None:
            problems += physics_problems(elements, config, instrument)
        self.problems = problems
        if problems:
            raise XRFQuantError("\n".join(problems))
        assert config is not None and instrument is not None
        return config, instrument

    def _config_from(self, values: dict[str, Any], elements: list[str]) -> TrainingConfig:
        base = self._base_config
        model = base.model.model_copy(
            update={
                "type": values["model.type"],
                "hidden_layers": int(values["model.hidden_layers"]),
                "neurons": int(values["model.neurons"]),
            }
        )
        top = {k: v for k, v in values.items() if "." not in k and k != "elements"}
        return base.replace(elements=elements, model=model, **top)

    def set_config(self, config: TrainingConfig, instrument: Instrument | None = None) -> None:
        """Show ``config`` (and ``instrument``) in the form."""
        self._base_config = config
        self.name_edit.setText(config.name)
        self.elements_edit.setText(", ".join(config.elements))
        self.sum_check.setChecked(config.sum_to_100)
        self.n_spectra_spin.setValue(config.n_spectra)
        self.counts_min_spin.setValue(config.counts_min)
        self.counts_max_spin.setValue(config.counts_max)
        self.lr_spin.setValue(config.lr)
        self.batch_spin.setValue(config.batch_size)
        self.epochs_spin.setValue(config.epochs)
        self.patience_spin.setValue(config.patience)
        self.seed_spin.setValue(config.seed)
        self.model_combo.setCurrentText(config.model.type)
        self.layers_spin.setValue(config.model.hidden_layers)
        self.neurons_spin.setValue(config.model.neurons)
        if instrument is not None:
            self.set_instrument(instrument)

    def check(self) -> tuple[TrainingConfig, Instrument] | None:
        """Validate the form; show the reasons (label + notification) when it is refused."""
        from napari.utils.notifications import show_error

        try:
            settings = self.settings()
        except XRFQuantError as exc:
            self.problem_label.setText("Refused:\n" + "\n".join(f"• {p}" for p in self.problems))
            show_error(f"Train: {str(exc).splitlines()[0]}")
            return None
        self.problem_label.setText("")
        return settings

    # -- settings and instrument files ---------------------------------------
    def save_settings(self, path: str | Path, overwrite: bool = False) -> list[Path]:
        """Write the form as a TrainingConfig TOML plus ``<stem>.instrument.toml`` beside it.

        The config names the instrument file relatively, so the pair can be moved
        together; ``xrfquant train PATH`` reads it.

        Raises
        ------
        XRFQuantError
            If the settings are refused.
        FileExistsError
            If a file exists and ``overwrite`` is False.
        """
        from napari_xrfquant.instrument import save_instrument
        from napari_xrfquant.training.config import save_config

        config, instrument = self.settings()
        target = Path(path)
        instrument_path = target.with_name(f"{target.stem}.instrument.toml")
        if not overwrite:
            for existing in (target, instrument_path):
                if existing.exists():
                    raise FileExistsError(f"{existing}: exists; choose another name")
        save_instrument(instrument, instrument_path, overwrite=overwrite)
        saved = config.replace(instrument=instrument_path.name, base_dir=None)
        save_config(saved, target, overwrite=overwrite)
        return [target, instrument_path]

    def load_settings(self, path: str | Path) -> TrainingConfig:
        """Fill the form from a TrainingConfig TOML (and the instrument it names)."""
        from napari_xrfquant.training.config import load_config

        config = load_config(path)
        self.set_config(config, config.load_instrument())
        return config

    def _load_settings_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load training settings", "", "TOML (*.toml)")
        if path:
            self.guarded(lambda: self.load_settings(path), f"loaded settings {path}")

    def _save_settings_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save training settings", "training.toml",
                                              "TOML (*.toml)")
        if not path:
            return
        target = Path(path)
        others = [p for p in (target, target.with_name(f"{target.stem}.instrument.toml"))
                  if p.exists()]
        if others and not self.confirm_overwrite(others):
            return
        self.guarded(lambda: self.save_settings(target, overwrite=True), f"saved {target}")

    def _load_instrument_clicked(self) -> None:
        from napari_xrfquant.instrument import load_instrument

        path, _ = QFileDialog.getOpenFileName(self, "Load instrument", "",
                                              "Instrument (*.toml *.json)")
        if path:
            self.guarded(lambda: self.set_instrument(load_instrument(path)),
                          f"loaded instrument {path}")

    def _save_instrument_clicked(self) -> None:
        from napari_xrfquant.instrument import save_instrument

        path, _ = QFileDialog.getSaveFileName(self, "Save instrument", "instrument.toml",
                                              "Instrument (*.toml *.json)")
        if not path:
            return
        if Path(path).exists() and not self.confirm_overwrite([Path(path)]):
            return
        self.guarded(lambda: save_instrument(self.instrument(), path, overwrite=True),
                      f"saved instrument {path}")

    def guarded(self, action: Callable[[], Any], done: str) -> bool:
        from napari.utils.notifications import show_error

        try:
            action()
        except (XRFQuantError, OSError) as exc:
            show_error(f"Train: {str(exc).splitlines()[0]}")
            self._say(str(exc).splitlines()[0])
            return False
        self._say(done)
        return True

