"""The Calibrate dock: learn the instrument from a cube and its standards, then retrain.

The user picks the cube layer and the model to start from, marks standards with
a Labels or Shapes layer (one row per region; its composition picked from the
standards library or typed as ``Au=75,Ag=12.5,Cu=12.5``; an empty row is an
unknown), chooses the free parameters and excluded energy ranges, and presses
Calibrate. The fit (:func:`napari_xrfquant.calibration.session.iter_calibration`)
runs in a ``thread_worker`` with a progress bar and Cancel; then the table shows
every parameter's start, fitted value and 1-sigma, and the figure each
standard measured against simulated, before and after, and the fitted optic
transmission. "Save instrument..." writes the calibrated instrument file;
"Retrain" fine-tunes the model on it (another worker, with Cancel) and puts
the new model into the Quantify dock's list. A cancelled run changes nothing:
no file is written and the model list stays as it was.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._jobs import JobOutcome, guarded_job
from napari_xrfquant._napari._layers import SpatialFrame, cube_counts, cube_layers
from napari_xrfquant._napari._qt import alive, ask_overwrite, one_line, present
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari._theme import style_axes, theme_colours

if TYPE_CHECKING:  # pragma: no cover
    import napari

PARAMETER_COLUMNS = ("parameter", "start", "fitted", "1σ", "pinned")
#: Text of a standards row that holds an unknown (clustered with the rest).
UNKNOWN = ""


class CalibrateWidget(QWidget):
    """Dock widget that calibrates the instrument on a cube and retrains a model.

    Parameters
    ----------
    napari_viewer
        The viewer (npe2 injects it).

    Attributes
    ----------
    result
        The last :class:`~napari_xrfquant.calibration.fit.CalibrationResult` (None before).
    retrained
        The last retrained :class:`~napari_xrfquant.training.events.TrainResult`.
    worker
        The running worker, or None.
    confirm_overwrite
        Called with existing paths before they are replaced (a dialog by default).
    retrain_spectra
        Spectra simulated for a retraining (None: the core's default).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result: Any = None
        self.retrained: Any = None
        self.worker: Any = None
        self.registered_label: str | None = None
        self.confirm_overwrite: Callable[[list[Path]], bool] = lambda paths: ask_overwrite(
            self, paths
        )
        self.retrain_spectra: int | None = None
        self._run: dict[str, Any] = {}
        self._progress_bar: Any = None
        self._bundle_dir: tempfile.TemporaryDirectory[str] | None = None
        self._build()
        self.refresh_layers()
        self.refresh_models()
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._layers_changed)
        # psygnal holds the slot weakly; a deleted widget must also stop hearing it
        model_registry.changed.connect(self._registry_changed)
        slot = self._registry_changed
        self.destroyed.connect(lambda *_: model_registry.changed.disconnect(slot))

    def _layers_changed(self, _event: Any = None) -> None:
        if alive(self):  # the dock may be closed while the viewer lives on
            self.refresh_layers()

    def _registry_changed(self) -> None:
        if not alive(self):
            model_registry.changed.disconnect(self._registry_changed)
            return
        self.refresh_models()

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        from napari_xrfquant.calibration.parameters import DEFAULT_FREE, PARAMETERS, expand_free
        from napari_xrfquant.calibration.standards import library

        outer = QVBoxLayout(self)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        scroll.setWidget(inner)
        outer.addWidget(scroll)

        form = QFormLayout()
        self.cube_combo = QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("The model whose elements and instrument the fit starts from")
        self.regions_combo = QComboBox()
        self.regions_combo.setToolTip("Labels or Shapes layer marking the standards")
        form.addRow("Cube layer", self.cube_combo)
        form.addRow("Start from model", self.model_combo)
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
        defaults = set(expand_free(DEFAULT_FREE))
        for name in PARAMETERS:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if name in defaults else Qt.CheckState.Unchecked
            )
            self.free_list.addItem(item)
        self.free_list.setMinimumHeight(120)
        box_layout.addWidget(self.free_list)
        layout.addWidget(box)

        form = QFormLayout()
        self.exclude_edit = QLineEdit()
        self.exclude_edit.setPlaceholderText("e.g. 2.8-3.1, 6.3-6.5 (keV)")
        self.exclude_edit.setToolTip("Energy ranges left out of the fit (lines of the set-up)")
        self.clusters_spin = QSpinBox()
        self.clusters_spin.setRange(1, 256)
        self.clusters_spin.setValue(16)
        self.mask_spin = QSpinBox()
        self.mask_spin.setRange(0, 2_000_000_000)
        self.mask_spin.setValue(200)
        self.mask_spin.setSuffix(" counts")
        self.seconds_spin = QSpinBox()
        self.seconds_spin.setRange(5, 3600)
        self.seconds_spin.setValue(100)
        self.seconds_spin.setSuffix(" s")
        self.seconds_spin.setToolTip(
            "Time budget of the instrument fit; sigma still comes from the curvature there"
        )
        form.addRow("Exclude", self.exclude_edit)
        form.addRow("Clusters", self.clusters_spin)
        form.addRow("Background below", self.mask_spin)
        form.addRow("Fit time", self.seconds_spin)
        layout.addLayout(form)

        row = QHBoxLayout()
        self.run_button = QPushButton("Calibrate")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        self.parameters_table = QTableWidget(0, len(PARAMETER_COLUMNS))
        self.parameters_table.setHorizontalHeaderLabels(PARAMETER_COLUMNS)
        self.parameters_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        present(self.parameters_table.horizontalHeader()).setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch
        )
        self.parameters_table.setMinimumHeight(150)
        layout.addWidget(self.parameters_table)
        self.figure = Figure(figsize=(4.5, 6.0), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(420)
        layout.addWidget(self.canvas)

        row = QHBoxLayout()
        self.save_instrument_button = QPushButton("Save instrument...")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.1, 600.0)
        self.minutes_spin.setValue(10.0)
        self.minutes_spin.setSuffix(" min")
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Fine-tune the model on the calibrated instrument")
        for widget in (self.save_instrument_button, self.minutes_spin, self.retrain_button):
            widget.setEnabled(False)
            row.addWidget(widget)
        layout.addLayout(row)
        self.save_model_button = QPushButton("Save retrained model...")
        self.save_model_button.setEnabled(False)
        layout.addWidget(self.save_model_button)
        layout.addStretch(1)

        self.regions_combo.currentTextChanged.connect(lambda _text: self.fill_standard_rows())
        self.run_button.clicked.connect(lambda: self.calibrate())
        self.cancel_button.clicked.connect(self.cancel)
        self.save_instrument_button.clicked.connect(self._save_instrument_clicked)
        self.retrain_button.clicked.connect(lambda: self.retrain())
        self.save_model_button.clicked.connect(self._save_model_clicked)

    # -- lists -----------------------------------------------------------------
    def refresh_layers(self) -> None:
        """Refill the cube and standards-layer lists, keeping the choices."""
        cubes = [layer.name for layer in cube_layers(self.viewer.layers)]
        regions = [""] + [
            layer.name
            for layer in self.viewer.layers
            if type(layer).__name__ in ("Labels", "Shapes")
        ]
        for combo, names in ((self.cube_combo, cubes), (self.regions_combo, regions)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self.fill_standard_rows()
        self.run_button.setEnabled(bool(cubes) and self.worker is None)

    def refresh_models(self) -> None:
        """Refill the model list from the shared registry."""
        current = self.model_combo.currentText() or model_registry.selected
        labels = model_registry.labels()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(labels)
        self.model_combo.setCurrentText(current if current in labels else labels[0])
        self.model_combo.blockSignals(False)

    def _layer(self, name: str) -> Any:
        return next((layer for layer in self.viewer.layers if layer.name == name), None)

    def regions(self) -> list[Any]:
        """The regions of the standards layer on the cube's pixel grid (may be empty)."""
        from napari_xrfquant._napari._regions import regions_from_layer

        layer, cube = self._layer(self.regions_combo.currentText()), self._selected_cube()
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

    def _selected_cube(self) -> Any:
        name = self.cube_combo.currentText()
        return next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == name), None)

    # -- the calibration -------------------------------------------------------
    def request(self) -> dict[str, Any]:
        """What the form asks for, checked (raises XRFQuantError with the reason)."""
        from napari_xrfquant.calibration.session import check_request, parse_ranges
        from napari_xrfquant.calibration.standards import parse_standard
        from napari_xrfquant.errors import XRFQuantError

        cube = self._selected_cube()
        if cube is None:
            raise XRFQuantError("open an XRF cube first (no image layer with an energy axis)")
        model = model_registry.load(self.model_combo.currentText())
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
        check_request(energy, model.elements, model.instrument, standards, free, exclude)
        return {
            "counts": data,
            "energy_keV": energy,
            "model": model,
            "labels": labels if standards else None,
            "standards": standards,
            "free": free,
            "exclude_keV": exclude,
            "source": cube.name,
        }

    def calibrate(self) -> Any:
        """Check the form and start the fit in a worker; returns it (None if refused)."""
        from napari.qt.threading import create_worker
        from napari.utils import progress
        from napari.utils.notifications import show_error

        from napari_xrfquant.calibration.session import iter_calibration
        from napari_xrfquant.errors import XRFQuantError

        if self.worker is not None:
            return None
        try:
            request = self.request()
        except (XRFQuantError, OSError, KeyError) as exc:
            self.status.setText(f"not started: {one_line(exc)}")
            show_error(f"Calibrate: {one_line(exc)}")
            return None
        model = request["model"]
        generator = iter_calibration(
            request["counts"],
            request["energy_keV"],
            model.elements,
            model.instrument,
            model,
            labels=request["labels"],
            standards=request["standards"],
            free=request["free"],
            exclude_keV=request["exclude_keV"],
            n_clusters=self.clusters_spin.value(),
            mask_below_counts=float(self.mask_spin.value()),
            max_seconds=float(self.seconds_spin.value()),
        )
        self._run = request
        worker = create_worker(guarded_job, generator, _start_thread=False)
        worker.returned.connect(self._on_calibrated)
        self._progress_bar = progress(desc=f"Calibrate on {request['source']}")
        self.status.setText(f"grouping the pixels of {request['source']}...")
        self._start(worker)
        return worker

    def _on_calibrated(self, outcome: JobOutcome) -> None:
        from napari.utils.notifications import show_error, show_info

        if outcome.error is not None:
            self.status.setText(f"failed: {one_line(outcome.error)}")
            show_error(f"Calibrate: {one_line(outcome.error)}")
            return
        self.result = outcome.result
        self.fill_parameters(self.result)
        self.draw_result(self.result)
        for widget in (self.save_instrument_button, self.minutes_spin, self.retrain_button):
            widget.setEnabled(True)
        before = float(np.median(self.result.fit_quality_before))
        after = float(np.median(self.result.fit_quality_after))
        text = (f"calibrated in {self.result.seconds:.0f} s: median group fit quality "
                f"{before:.2f} -> {after:.2f}")
        if self.result.not_pinned:
            text += f"; not pinned down by these data: {', '.join(self.result.not_pinned)}"
        self.status.setText(text)
        show_info(f"Calibrate: {text}")

    def fill_parameters(self, result: Any) -> None:
        """One row per free parameter: start, fitted, 1-sigma, pinned."""
        from napari_xrfquant.calibration.parameters import parameter_values

        start = parameter_values(result.start, result.names)
        table = self.parameters_table
        table.setRowCount(len(result.names))
        for row, name in enumerate(result.names):
            cells = (name, f"{start[name]:.5g}", f"{result.values[name]:.5g}",
                     f"{result.sigma[name]:.2g}", "no" if name in result.not_pinned else "yes")
            for col, text in enumerate(cells):
                table.setItem(row, col, QTableWidgetItem(text))

    def draw_result(self, result: Any) -> None:
        """The standards before and after and the optic transmission, in the napari theme."""
        from napari_xrfquant.calibration.report import draw_calibration

        colours = theme_colours(self.viewer)
        self.figure.clear()
        self.figure.set_facecolor(colours["background"])
        axes_list = draw_calibration(
            self.figure, result, self._run["model"].elements, measured_colour=colours["text"]
        )
        for axes in axes_list:
            style_axes(axes, colours)
            legend = axes.get_legend()
            if legend is not None:
                legend.get_frame().set_facecolor(colours["background"])
                legend.get_frame().set_alpha(0.7)
                for text in legend.get_texts():
                    text.set_color(colours["text"])
        self.canvas.draw_idle()

    # -- saving and retraining -------------------------------------------------
    def save_instrument(self, path: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the calibrated instrument file; ask before replacing one."""
        from napari_xrfquant.instrument import save_instrument

        if self.result is None:
            return None
        target = Path(path)
        if target.exists():
            if overwrite is None:
                overwrite = self.confirm_overwrite([target])
            if not overwrite:
                self.status.setText(f"not saved: {target.name} exists")
                return None
        save_instrument(self.result.instrument, target, overwrite=bool(overwrite))
        self.status.setText(f"saved instrument {target}")
        return target

    def _save_instrument_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Calibrated instrument", "instrument.toml", "Instrument (*.toml)"
        )
        if path:
            self._guarded(lambda: self.save_instrument(path))

    def retrain(self, minutes: float | None = None) -> Any:
        """Fine-tune the start model on the calibrated instrument in a worker."""
        from napari.qt.threading import create_worker
        from napari.utils import progress

        from napari_xrfquant.calibration.session import iter_retrain
        from napari_xrfquant.instrument import save_instrument

        if self.result is None or self.worker is not None:
            return None
        budget = float(minutes if minutes is not None else self.minutes_spin.value())
        if self._bundle_dir is None:
            self._bundle_dir = tempfile.TemporaryDirectory(prefix="xrfquant-calibrated-")
        instrument_file = save_instrument(
            self.result.instrument, Path(self._bundle_dir.name) / "instrument.toml",
            overwrite=True,
        )
        generator = iter_retrain(
            self._run["model"], instrument_file, budget, self.result,
            self._run["energy_keV"], self._run["source"], self._run["standards"],
            self.retrain_spectra,
        )
        worker = create_worker(guarded_job, generator, _start_thread=False)
        worker.returned.connect(self._on_retrained)
        self._progress_bar = progress(desc="Retrain on the calibrated instrument")
        self.status.setText(f"retraining for up to {budget:g} min...")
        self._start(worker)
        return worker

    def _on_retrained(self, outcome: JobOutcome) -> None:
        from napari.utils.notifications import show_error, show_info

        if outcome.error is not None:
            self.status.setText(f"retrain failed: {one_line(outcome.error)}")
            show_error(f"Calibrate: retrain failed: {one_line(outcome.error)}")
            return
        trained = outcome.result
        assert self._bundle_dir is not None
        directory = trained.save(Path(self._bundle_dir.name) / trained.config.name, overwrite=True)
        label = f"{trained.config.name} (retrained, not saved)"
        if self.registered_label and self.registered_label != label:
            model_registry.unregister(self.registered_label)
        model_registry.register(label, directory, model=trained.model)
        self.registered_label = label
        self.retrained = trained
        self.save_model_button.setEnabled(True)
        text = f"retrained in {len(trained.history)} epochs; added to the model list as {label!r}"
        self.status.setText(text)
        show_info(f"Calibrate: {text}")

    def save_model(self, directory: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the retrained model bundle; ask before replacing one."""
        if self.retrained is None:
            return None
        target = Path(directory)
        existing = [p for p in (target / "model.json", target / "model.safetensors") if p.exists()]
        if existing:
            if overwrite is None:
                overwrite = self.confirm_overwrite(existing)
            if not overwrite:
                self.status.setText(f"not saved: {target} holds a model")
                return None
        self.retrained.save(target, overwrite=bool(existing))
        self.status.setText(f"saved model bundle {target}")
        return target

    def _save_model_clicked(self) -> None:
        parent = QFileDialog.getExistingDirectory(self, "Folder for the model bundle")
        if parent and self.retrained is not None:
            name = self.retrained.config.name
            self._guarded(lambda: self.save_model(Path(parent) / name))

    # -- workers ---------------------------------------------------------------
    def _start(self, worker: Any) -> None:
        worker.yielded.connect(self._on_event)
        worker.aborted.connect(self._on_aborted)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        for widget in (self.run_button, self.retrain_button):
            widget.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        worker.start()

    def cancel(self) -> None:
        """Stop the running fit or retraining at its next step; nothing is kept."""
        if self.worker is not None:
            self.status.setText("cancelling...")
            self.worker.quit()

    def _on_event(self, event: Any) -> None:
        from napari_xrfquant.progress import Progress
        from napari_xrfquant.training.events import EpochEnd

        if isinstance(event, Progress) and event.stage in ("calibrate", "epoch"):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
            if self._progress_bar is not None:
                self._progress_bar.total = event.total
                self._progress_bar.update(event.done - self._progress_bar.n)
            if event.stage == "calibrate":
                self.status.setText(f"fitting the instrument: step {event.done}/{event.total}")
        elif isinstance(event, EpochEnd):
            self.status.setText(f"retrain epoch {event.epoch}: val MAE {event.val_mae:.3f} wt%")

    def _on_aborted(self) -> None:
        from napari.utils.notifications import show_info

        self.status.setText("cancelled; nothing was changed")
        show_info("Calibrate: cancelled; nothing was changed")

    def _on_finished(self) -> None:
        if self._progress_bar is not None:
            self._progress_bar.close()
            self._progress_bar = None
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.run_button.setEnabled(self._selected_cube() is not None)
        self.retrain_button.setEnabled(self.result is not None)

    def _guarded(self, action: Callable[[], Any]) -> None:
        from napari.utils.notifications import show_error

        try:
            action()
        except (OSError, ValueError) as exc:
            show_error(f"Calibrate: {one_line(exc)}")
            self.status.setText(f"failed: {one_line(exc)}")
