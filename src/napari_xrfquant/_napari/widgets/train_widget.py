"""The Train dock widget: simulate spectra for any instrument and train a model, no code.

The form holds the elements, the instrument (beam, angles, detector,
calibration, resolution, counts range; loadable from and savable to an
instrument file, calibration prefilled from a cube layer), the data set and
the network. "Simulate + Train" checks the settings first
(:mod:`napari_xrfquant.training.checks`: the reason is shown in the widget and as a
notification), then runs :func:`.train_jobs.training_job` in a napari
``thread_worker``: a progress bar with epoch and ETA, live loss curves
(:class:`.train_plot.LossCanvas`) and Cancel, which keeps the best checkpoint
so far. At the end the test metrics per element and count level fill a table,
the model is added to the Quantify widget's model list at once (from a
temporary bundle) and "Save model..." writes the bundle where the user wants.
"Search" runs an optuna search (:mod:`napari_xrfquant.training.search`) with a
table of trials; "Use selected trial" fills the form.

The settings save as a :class:`~napari_xrfquant.training.config.TrainingConfig`
TOML (with the instrument file beside it) that ``xrfquant train`` reads.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._layers import cube_layers, linear_energy_calibration
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari.widgets.train_jobs import (
    SearchOutcome,
    TrainOutcome,
    search_job,
    training_job,
)
from napari_xrfquant._napari.widgets.train_plot import LossCanvas
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.training.checks import (
    parse_element_list,
    physics_problems,
    size_problems,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.training.config import TrainingConfig

#: Defaults of a new form: small enough to train in minutes on a laptop CPU.
FORM_DEFAULTS = {
    "elements": "Au, Ag, Cu, Ni, Zn",
    "n_spectra": 20_000,
    "epochs": 30,
    "batch_size": 256,
    "patience": 8,
    "lr": 1e-3,
    "hidden_layers": 2,
    "neurons": 343,
}
TRIAL_COLUMNS = ("#", "state", "val loss", "layers", "neurons", "batch", "lr", "epochs", "s")


def ask_overwrite(parent: QWidget | None, paths: list[Path]) -> bool:
    """Ask (modal dialog) whether to replace existing files."""
    shown = "\n".join(str(p) for p in paths[:6])
    answer = QMessageBox.question(
        parent,
        "Replace files?",
        f"These exist already:\n{shown}\n\nReplace them?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def _dspin(low: float, high: float, value: float, decimals: int, step: float,
           suffix: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    if suffix:
        box.setSuffix(f" {suffix}")
    return box


def format_eta(seconds: float) -> str:
    """``"1:05:03"`` / ``"4:07"`` for a duration in seconds."""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TrainWidget(QWidget):
    """Dock widget that trains (or searches) a quantification model from a form.

    Parameters
    ----------
    napari_viewer
        The viewer (npe2 injects it).

    Attributes
    ----------
    result
        The last :class:`~napari_xrfquant.training.events.TrainResult` (None before).
    search_result
        The last :class:`~napari_xrfquant.training.search.SearchResult`.
    worker
        The running worker, or None.
    registered_label
        The model list entry of the last trained model.
    confirm_overwrite
        Called with existing paths before they are replaced; a dialog by
        default, replaceable in tests.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result: Any = None
        self.search_result: Any = None
        self.worker: Any = None
        self.registered_label: str | None = None
        self.problems: list[str] = []
        self.confirm_overwrite: Callable[[list[Path]], bool] = lambda paths: ask_overwrite(
            self, paths
        )
        self._stop = threading.Event()
        self._epoch_seconds: list[float] = []
        self._run_epochs = 0
        self._progress_bar: Any = None
        self._unsaved_dir: tempfile.TemporaryDirectory[str] | None = None
        from napari_xrfquant.instrument import reference_instrument
        from napari_xrfquant.training.config import TrainingConfig

        self._base_config = TrainingConfig()
        self._base_instrument = reference_instrument()
        self._build()
        self.set_instrument(self._base_instrument)
        self.refresh_cube_layers()
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        scroll.setWidget(inner)
        outer.addWidget(scroll)

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
        self.elements_edit = QLineEdit(FORM_DEFAULTS["elements"])
        self.elements_edit.setToolTip("Element symbols Na-U, separated by commas or spaces")
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
        self.beam_spin = _dspin(0.1, 200.0, 30.0, 3, 0.5, "keV")
        self.incidence_spin = _dspin(0.1, 90.0, 45.0, 1, 1.0, "deg")
        self.takeoff_spin = _dspin(0.1, 90.0, 45.0, 1, 1.0, "deg")
        self.thickness_spin = _dspin(1.0, 10_000.0, 450.0, 1, 10.0, "µm")
        self.cube_combo = QComboBox()
        self.cube_combo.setToolTip("Take the energy calibration from this cube layer")
        self.from_layer_button = QPushButton("Use its calibration")
        self.offset_spin = _dspin(-5.0, 5.0, 0.0, 4, 0.001, "keV")
        self.gain_spin = _dspin(0.0001, 1.0, 0.035, 5, 0.0001, "keV/channel")
        self.channels_spin = _spin(2, 65_536, 1024)
        self.noise_spin = _dspin(0.0, 1000.0, 100.0, 1, 5.0, "eV")
        self.fano_spin = _dspin(0.001, 1.0, 0.114, 3, 0.005)
        self.counts_min_spin = _dspin(0.0, 1e9, 300.0, 0, 100.0)
        self.counts_max_spin = _dspin(0.0, 1e9, 1e6, 0, 1e4)
        form.addRow(self.instrument_label)
        form.addRow("file", buttons)
        form.addRow("beam energy", self.beam_spin)
        form.addRow("incidence angle", self.incidence_spin)
        form.addRow("take-off angle", self.takeoff_spin)
        form.addRow("detector thickness", self.thickness_spin)
        layer_row = QHBoxLayout()
        layer_row.addWidget(self.cube_combo)
        layer_row.addWidget(self.from_layer_button)
        form.addRow("cube layer", layer_row)
        form.addRow("calibration offset", self.offset_spin)
        form.addRow("calibration gain", self.gain_spin)
        form.addRow("channels", self.channels_spin)
        form.addRow("electronic noise", self.noise_spin)
        form.addRow("Fano factor", self.fano_spin)
        form.addRow("counts per spectrum, min", self.counts_min_spin)
        form.addRow("counts per spectrum, max", self.counts_max_spin)
        layout.addWidget(box)

        # data and network
        box = QGroupBox("Data set and network")
        form = QFormLayout(box)
        self.n_spectra_spin = _spin(0, 10_000_000, FORM_DEFAULTS["n_spectra"], 1000)
        self.model_combo = QComboBox()
        self.model_combo.addItems(["mlp", "cnn"])
        self.layers_spin = _spin(0, 16, FORM_DEFAULTS["hidden_layers"])
        self.neurons_spin = _spin(0, 8192, FORM_DEFAULTS["neurons"], 10)
        self.lr_spin = _dspin(0.0, 1.0, FORM_DEFAULTS["lr"], 6, 1e-4)
        self.batch_spin = _spin(0, 65_536, FORM_DEFAULTS["batch_size"], 32)
        self.epochs_spin = _spin(0, 100_000, FORM_DEFAULTS["epochs"])
        self.patience_spin = _spin(0, 10_000, FORM_DEFAULTS["patience"])
        self.seed_spin = _spin(0, 2**31 - 1, 0)
        form.addRow("simulated spectra", self.n_spectra_spin)
        form.addRow("model type", self.model_combo)
        form.addRow("hidden layers", self.layers_spin)
        form.addRow("neurons per layer", self.neurons_spin)
        form.addRow("learning rate", self.lr_spin)
        form.addRow("batch size", self.batch_spin)
        form.addRow("epochs", self.epochs_spin)
        form.addRow("patience (epochs)", self.patience_spin)
        form.addRow("seed", self.seed_spin)
        layout.addWidget(box)

        # run
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #ff6b6b")
        layout.addWidget(self.problem_label)
        run_row = QHBoxLayout()
        self.train_button = QPushButton("Simulate + Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        run_row.addWidget(self.train_button)
        run_row.addWidget(self.cancel_button)
        layout.addLayout(run_row)
        self.progress = QProgressBar()
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.loss_canvas = LossCanvas(self.viewer)
        layout.addWidget(self.loss_canvas)

        # results
        box = QGroupBox("Test set (held-out simulated spectra)")
        box_layout = QVBoxLayout(box)
        self.metrics_table = QTableWidget(0, 0)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch
        )
        self.metrics_table.setMinimumHeight(120)
        self.save_model_button = QPushButton("Save model...")
        self.save_model_button.setEnabled(False)
        box_layout.addWidget(self.metrics_table)
        box_layout.addWidget(self.save_model_button)
        layout.addWidget(box)

        # search
        box = QGroupBox("Hyperparameter search (optuna)")
        form = QFormLayout(box)
        self.trials_spin = _spin(1, 1000, 10)
        self.search_button = QPushButton("Search")
        self.trials_table = QTableWidget(0, len(TRIAL_COLUMNS))
        self.trials_table.setHorizontalHeaderLabels(TRIAL_COLUMNS)
        self.trials_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.trials_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.trials_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.trials_table.setMinimumHeight(120)
        self.use_trial_button = QPushButton("Use selected trial")
        self.use_trial_button.setEnabled(False)
        note = QLabel("2-4 layers, 25-500 neurons, batch 1-64 and learning rate 1e-5-1e-1 "
                      "(log scales); small batches are slow on a CPU.")
        note.setWordWrap(True)
        form.addRow(note)
        form.addRow("trials", self.trials_spin)
        form.addRow(self.search_button)
        form.addRow(self.trials_table)
        form.addRow(self.use_trial_button)
        layout.addWidget(box)
        layout.addStretch(1)

        self.train_button.clicked.connect(lambda: self.train())
        self.cancel_button.clicked.connect(self.cancel)
        self.search_button.clicked.connect(lambda: self.search())
        self.use_trial_button.clicked.connect(lambda: self.use_selected_trial())
        self.save_model_button.clicked.connect(self._save_model_clicked)
        self.load_settings_button.clicked.connect(self._load_settings_clicked)
        self.save_settings_button.clicked.connect(self._save_settings_clicked)
        self.load_instrument_button.clicked.connect(self._load_instrument_clicked)
        self.save_instrument_button.clicked.connect(self._save_instrument_clicked)
        self.from_layer_button.clicked.connect(lambda: self.use_layer_calibration())
        self.elements_edit.textChanged.connect(self._elements_edited)

    # -- cube layers and calibration ----------------------------------------
    def _layers_changed(self, _event: Any = None) -> None:
        self.refresh_cube_layers()

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
        gain_keV, offset_keV = linear_energy_calibration(energy_keV)
        self.offset_spin.setValue(offset_keV)
        self.gain_spin.setValue(gain_keV)
        self.channels_spin.setValue(int(energy_keV.size))
        self.status.setText(f"calibration from {name}: E = {offset_keV:.4f} + "
                            f"{gain_keV:.5f} keV x channel, {energy_keV.size} channels")
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
        problems += size_problems(values)
        instrument = None
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

    def _elements_edited(self, text: str) -> None:
        try:
            parse_element_list(text)
        except XRFQuantError as exc:
            self.elements_edit.setStyleSheet("border: 1px solid #ff6b6b")
            self.elements_edit.setToolTip(str(exc))
        else:
            self.elements_edit.setStyleSheet("")
            self.elements_edit.setToolTip("Element symbols Na-U, separated by commas or spaces")

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
            self._guarded(lambda: self.load_settings(path), f"loaded settings {path}")

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
        self._guarded(lambda: self.save_settings(target, overwrite=True), f"saved {target}")

    def _load_instrument_clicked(self) -> None:
        from napari_xrfquant.instrument import load_instrument

        path, _ = QFileDialog.getOpenFileName(self, "Load instrument", "",
                                              "Instrument (*.toml *.json)")
        if path:
            self._guarded(lambda: self.set_instrument(load_instrument(path)),
                          f"loaded instrument {path}")

    def _save_instrument_clicked(self) -> None:
        from napari_xrfquant.instrument import save_instrument

        path, _ = QFileDialog.getSaveFileName(self, "Save instrument", "instrument.toml",
                                              "Instrument (*.toml *.json)")
        if not path:
            return
        if Path(path).exists() and not self.confirm_overwrite([Path(path)]):
            return
        self._guarded(lambda: save_instrument(self.instrument(), path, overwrite=True),
                      f"saved instrument {path}")

    def _guarded(self, action: Callable[[], Any], done: str) -> bool:
        from napari.utils.notifications import show_error

        try:
            action()
        except (XRFQuantError, OSError) as exc:
            show_error(f"Train: {str(exc).splitlines()[0]}")
            self.status.setText(str(exc).splitlines()[0])
            return False
        self.status.setText(done)
        return True

    # -- training -----------------------------------------------------------
    def train(self) -> Any:
        """Check the form and start training in a worker; returns it (None if refused)."""
        from napari.qt.threading import create_worker
        from napari.utils import progress

        if self.worker is not None:
            return None
        settings = self.check()
        if settings is None:
            return None
        config, instrument = settings
        self._stop = threading.Event()
        self._epoch_seconds = []
        self._run_epochs = config.epochs
        self.loss_canvas.clear()
        self.progress.setRange(0, config.epochs)
        self.progress.setValue(0)
        self.status.setText(f"simulating {config.n_spectra} spectra...")
        worker = create_worker(training_job, config, instrument, self._stop,
                               _start_thread=False)
        self._progress_bar = progress(total=config.epochs, desc=f"Train {config.name}")
        worker.yielded.connect(self._on_train_event)
        worker.returned.connect(self._on_trained)
        self._start(worker)
        return worker

    def cancel(self) -> None:
        """Stop after the current epoch; a training run keeps its best model so far."""
        if self.worker is not None:
            self._stop.set()
            self.status.setText("cancelling after this epoch...")

    def _start(self, worker: Any) -> None:
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.train_button.setEnabled(False)
        self.search_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        worker.start()

    def _on_train_event(self, event: Any) -> None:
        from napari_xrfquant.progress import Progress
        from napari_xrfquant.training.events import EpochEnd

        if isinstance(event, Progress) and event.epoch is None:
            self.status.setText(f"simulating spectra: {event.done}/{event.total}")
        elif isinstance(event, Progress):
            self.status.setText(
                f"epoch {event.epoch}/{self._run_epochs}: step {event.done}/{event.total}"
            )
        elif isinstance(event, EpochEnd):
            self._epoch_seconds.append(event.seconds)
            self.loss_canvas.add_epoch(event.epoch, event.train_loss, event.val_loss)
            self.progress.setValue(event.epoch)
            if self._progress_bar is not None:
                self._progress_bar.update(1)
            mean_s = float(np.mean(self._epoch_seconds[-5:]))
            eta = format_eta(mean_s * (self._run_epochs - event.epoch))
            self.status.setText(
                f"epoch {event.epoch}/{self._run_epochs} · val MAE {event.val_mae:.2f} wt% · "
                f"ETA {eta} (early stopping may end sooner)"
            )

    def _on_trained(self, outcome: TrainOutcome) -> None:
        from napari.utils.notifications import show_error, show_info

        if outcome.error is not None and outcome.cancelled:
            self.status.setText("cancelled before the first epoch ended; no model")
            show_info("Train: cancelled before the first epoch ended; no model")
            return
        if outcome.error is not None:
            show_error(f"Train: {str(outcome.error).splitlines()[0]}")
            self.status.setText(f"failed: {outcome.error}")
            return
        result = outcome.result
        self.result = result
        self.fill_metrics(result.metrics)
        self.register_result(result)
        self.save_model_button.setEnabled(True)
        how = "cancelled; kept" if outcome.cancelled else "done; best"
        text = (f"{how} epoch {result.best_epoch} of {len(result.history)} · "
                f"added to the model list as {self.registered_label!r}")
        self.status.setText(text)
        show_info(f"Train: {text}")

    def register_result(self, result: Any) -> str:
        """Put the trained model into the Quantify widget's list (from a temporary bundle)."""
        if self._unsaved_dir is not None:
            self._unsaved_dir.cleanup()
        self._unsaved_dir = tempfile.TemporaryDirectory(prefix="xrfquant-trained-")
        directory = result.save(Path(self._unsaved_dir.name) / result.config.name)
        label = f"{result.config.name} (trained, not saved)"
        if self.registered_label and self.registered_label != label:
            model_registry.unregister(self.registered_label)
        model_registry.register(label, directory, model=result.model)
        self.registered_label = label
        return label

    def fill_metrics(self, metrics: dict[str, Any]) -> None:
        """Test MAE (wt%) per element and count level, plus overall MAE and 1-sigma coverage."""
        levels = metrics.get("test", {}).get("levels", {})
        labels = list(levels)
        elements = list(next(iter(levels.values()))["mae_per_element"]) if levels else []
        rows = [*elements, "all elements", "1σ coverage"]
        table = self.metrics_table
        table.clear()
        table.setRowCount(len(rows))
        table.setColumnCount(len(labels))
        table.setHorizontalHeaderLabels([_level_header(label) for label in labels])
        table.setVerticalHeaderLabels([f"{r} MAE" if r in elements else r for r in rows])
        for col, label in enumerate(labels):
            level = levels[label]
            values = [level["mae_per_element"][e] for e in elements] + [level["mae_wt"]]
            for row, value in enumerate(values):
                table.setItem(row, col, QTableWidgetItem(f"{value:.3f}"))
            table.setItem(len(rows) - 1, col,
                          QTableWidgetItem(f"{100 * level['coverage_1sigma']:.0f} %"))

    # -- saving the model ----------------------------------------------------
    def save_model(self, directory: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the last trained model as a bundle and list it under its name.

        Parameters
        ----------
        directory
            Bundle folder.
        overwrite
            None: ask :attr:`confirm_overwrite` when a bundle is there already.

        Returns
        -------
        Path or None
            The bundle folder, or None when nothing was written.
        """
        if self.result is None:
            return None
        target = Path(directory)
        existing = [p for p in (target / "model.json", target / "model.safetensors") if p.exists()]
        if existing:
            if overwrite is None:
                overwrite = self.confirm_overwrite(existing)
            if not overwrite:
                self.status.setText(f"not saved: {target} holds a model")
                return None
        self.result.save(target, overwrite=bool(existing))
        label = f"{self.result.config.name} ({target})"
        if self.registered_label and self.registered_label != label:
            model_registry.unregister(self.registered_label)
        model_registry.register(label, target, model=self.result.model)
        self.registered_label = label
        self.status.setText(f"saved model bundle {target}")
        return target

    def _save_model_clicked(self) -> None:
        if self.result is None:
            return
        parent = QFileDialog.getExistingDirectory(self, "Folder for the model bundle")
        if parent:
            self._guarded(lambda: self.save_model(Path(parent) / self.result.config.name),
                          "saved model")

    # -- search ---------------------------------------------------------------
    def search(self, n_trials: int | None = None) -> Any:
        """Check the form and start a hyperparameter search; returns the worker."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return None
        settings = self.check()
        if settings is None:
            return None
        config, instrument = settings
        trials = int(n_trials or self.trials_spin.value())
        self._stop = threading.Event()
        self._search_started = time.perf_counter()
        self.trials_table.setRowCount(0)
        self.progress.setRange(0, trials)
        self.progress.setValue(0)
        self.status.setText(f"searching {trials} trials...")
        worker = create_worker(search_job, config, instrument, trials, self._stop,
                               _start_thread=False)
        worker.yielded.connect(self._on_trial)
        worker.returned.connect(self._on_searched)
        self._start(worker)
        return worker

    def _on_trial(self, trial: Any) -> None:
        row = self.trials_table.rowCount()
        self.trials_table.insertRow(row)
        p = trial.params
        cells = (trial.number, trial.state,
                 "-" if trial.value is None else f"{trial.value:.4g}", p["hidden_layers"],
                 p["neurons"], p["batch_size"], f"{p['lr']:.2e}", trial.epochs,
                 f"{trial.seconds:.0f}")
        for col, value in enumerate(cells):
            self.trials_table.setItem(row, col, QTableWidgetItem(str(value)))
        self.progress.setValue(row + 1)
        self.status.setText(trial.describe())

    def _on_searched(self, outcome: SearchOutcome) -> None:
        from napari.utils.notifications import show_error, show_info

        if outcome.error is not None:
            show_error(f"Search: {str(outcome.error).splitlines()[0]}")
            self.status.setText(f"search failed: {outcome.error}")
            return
        self.search_result = outcome.result
        best = outcome.result.best
        if best is None:
            self.status.setText("no trial finished")
            return
        rows = [int(self.trials_table.item(r, 0).text())
                for r in range(self.trials_table.rowCount())]
        self.trials_table.selectRow(rows.index(best.number))
        self.use_trial_button.setEnabled(True)
        text = f"best: {best.describe()}"
        self.status.setText(text + " — 'Use selected trial' fills the form")
        show_info(f"Search: {text}")

    def use_selected_trial(self) -> bool:
        """Fill the form with the selected trial's hyperparameters."""
        from napari_xrfquant.training.search import apply_params

        if self.search_result is None:
            return False
        rows = self.trials_table.selectionModel().selectedRows()
        if not rows:
            return False
        number = int(self.trials_table.item(rows[0].row(), 0).text())
        trial = next(t for t in self.search_result.trials if t.number == number)
        config = apply_params(self.settings()[0], trial.params)
        self.set_config(config)
        self.status.setText(f"form filled from trial {number}")
        return True

    # -- shared worker handlers ---------------------------------------------
    def _on_errored(self, exc: BaseException) -> None:
        self.status.setText(f"failed: {exc}")

    def _on_finished(self) -> None:
        if self._progress_bar is not None:
            self._progress_bar.close()
            self._progress_bar = None
        self.worker = None
        self.train_button.setEnabled(True)
        self.search_button.setEnabled(True)
        self.cancel_button.setEnabled(False)


def _level_header(label: str) -> str:
    if label == "noiseless":
        return "noise-free"
    try:
        return f"{float(label):.0e} counts".replace("e+0", "e")
    except ValueError:
        return label
