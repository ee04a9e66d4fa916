"""The Calibrate dock: learn the instrument from a cube and its standards, then retrain.

The user picks the cube layer and the model to start from, marks standards with
a Labels or Shapes layer (one row per region; its composition picked from the
standards library or typed as ``Au=75,Ag=12.5,Cu=12.5``; an empty row is an
unknown), chooses the free parameters and excluded energy ranges, and presses
Calibrate. The fit (:func:`napari_xrfquant.calibration.session.iter_calibration`)
runs through the dock's job controls (progress and Cancel); then the table shows
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
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_xrfquant._napari._qt import (
    ask_overwrite,
    bundle_files,
    fit_narrow_column,
    may_replace,
    one_line,
    present,
    scrolled_layout,
    tabify_when_docked,
)
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari.widgets._calibrate_form import CalibrateForm
from napari_xrfquant._napari.widgets._job_controls import JobControls
from napari_xrfquant._napari.widgets._number_edit import NumberEdit
from napari_xrfquant._napari.widgets._plot import DockPlot
from napari_xrfquant.jobs import Outcome, Progress

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_xrfquant.calibration.result import CalibrationResult

PARAMETER_COLUMNS = ("parameter", "start", "fitted", "1σ", "pinned")


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
        tabify_when_docked(self)  # beside the plugin's other docks, not squeezed under
        self.viewer = napari_viewer
        self.result: Any = None
        self.retrained: Any = None
        self.registered_label: str | None = None
        self.confirm_overwrite: Callable[[list[Path]], bool] = lambda paths: ask_overwrite(
            self, paths
        )
        self.retrain_spectra: int | None = None
        self._run: dict[str, Any] = {}
        self._bundle_dir: tempfile.TemporaryDirectory[str] | None = None
        self._build()

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        layout = scrolled_layout(self)
        self.controls = JobControls("Calibrate")
        self.progress = self.controls.progress  # the form's Find elements shows its phases too
        self.status = self.controls.status
        self.cancel_button = self.controls.cancel_button
        self.form = CalibrateForm(self.viewer, self.progress, lambda: self.controls.refresh())
        layout.addWidget(self.form)
        self.run_button = self.controls.add_run_button(
            "Calibrate", ready=lambda: self.form.selected_cube() is not None)
        layout.addWidget(self.controls)

        self.parameters_table = QTableWidget(0, len(PARAMETER_COLUMNS))
        self.parameters_table.setHorizontalHeaderLabels(PARAMETER_COLUMNS)
        self.parameters_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        present(self.parameters_table.horizontalHeader()).setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch
        )
        self.parameters_table.setMinimumHeight(150)
        layout.addWidget(self.parameters_table)
        self.plot = DockPlot(self.viewer, min_height=520, redraw=self._redraw_result)
        self.figure = self.plot.figure
        self._drawn: Any = None  # the result on the figure, drawn again on a theme change
        layout.addWidget(self.plot)

        row = QHBoxLayout()
        self.save_instrument_button = QPushButton("Save instrument...")
        self.minutes_spin = NumberEdit(10.0, low=0.1, high=600.0, unit="min")
        self.minutes_spin.setToolTip("Time budget of the retraining, simulation included")
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Fine-tune the model on the calibrated instrument (from "
                                       "an instrument file: train a new model for it)")
        for widget in (self.save_instrument_button, self.minutes_spin, self.retrain_button):
            widget.setEnabled(False)
            row.addWidget(widget)
        self.controls.guard(self.retrain_button, ready=lambda: self.result is not None)
        layout.addLayout(row)
        self.save_model_button = QPushButton("Save retrained model...")
        self.save_model_button.setEnabled(False)
        layout.addWidget(self.save_model_button)
        layout.addStretch(1)

        self.run_button.clicked.connect(lambda: self.calibrate())
        self.save_instrument_button.clicked.connect(self._save_instrument_clicked)
        self.retrain_button.clicked.connect(lambda: self.retrain())
        self.save_model_button.clicked.connect(self._save_model_clicked)
        fit_narrow_column(self)  # its panels too, not only the form

    def calibrate(self) -> Any:
        """Check the form and start the fit in a worker; returns it (None if refused)."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.calibration.session import iter_calibration
        from napari_xrfquant.errors import XRFQuantError

        if self.worker is not None:
            return None
        try:
            request = self.form.request()
        except (XRFQuantError, OSError, KeyError) as exc:
            self.status.setText(f"not started: {one_line(exc)}")
            show_error(f"Calibrate: {one_line(exc)}")
            return None
        generator = iter_calibration(
            request["counts"],
            request["energy_keV"],
            request["elements"],
            request["instrument"],
            request["model"],
            labels=request["labels"],
            standards=request["standards"],
            free=request["free"],
            exclude_keV=request["exclude_keV"],
            n_clusters=int(self.form.clusters_spin.value()),
            mask_below_counts=float(self.form.mask_spin.value()),
            max_seconds=float(self.form.seconds_spin.value()),
        )
        self._run = request
        return self.controls.runner.start(
            generator, f"Calibrate on {request['source']}", self._on_calibrated,
            on_event=self._on_event, bar_stages=("calibrate", "epoch"))

    def _on_calibrated(self, outcome: Outcome[Any]) -> None:
        from napari.utils.notifications import show_info, show_warning

        self.result = outcome.result
        self.fill_parameters(self.result)
        self.draw_result(self.result)
        for widget in (self.save_instrument_button, self.minutes_spin, self.retrain_button):
            widget.setEnabled(True)
        before = float(np.median(self.result.fit_quality_before))
        after = float(np.median(self.result.fit_quality_after))
        text = (
            f"calibrated in {self.result.seconds:.0f} s: median group fit quality "
            f"{before:.2f} -> {after:.2f}"
        )
        if self.result.not_pinned:
            text += f"; not pinned down by these data: {', '.join(self.result.not_pinned)}"
        if self.result.sigma_scale > 1.05:
            text += f"; sigma scaled by {self.result.sigma_scale:.2f} for the misfit"
        if self.result.warning:
            text += f". Warning: {self.result.warning}"
        self.status.setText(text)
        (show_warning if self.result.warning else show_info)(f"Calibrate: {text}")

    def fill_parameters(self, result: CalibrationResult) -> None:
        """One row per free parameter: start, fitted, 1-sigma, pinned."""
        from napari_xrfquant.instrument_parameters import parameter_values

        start = parameter_values(result.start, result.names)
        table = self.parameters_table
        table.setRowCount(len(result.names))
        for row, name in enumerate(result.names):
            flag = result.flags.get(name)
            cells = (
                name,
                f"{start[name]:.5g}",
                f"{result.values[name]:.5g}",
                "-" if flag else f"{result.sigma[name]:.2g}",
                "no" if name in result.not_pinned else "yes",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if flag:
                    item.setToolTip(f"not measured: {flag}")
                table.setItem(row, col, item)

    def draw_result(self, result: CalibrationResult) -> None:
        """The standards before and after and the optic transmission, in the napari theme."""
        from napari_xrfquant.calibration.report import draw_calibration

        self._drawn = result
        self.figure.clear()
        with self.plot.themed():
            draw_calibration(self.figure, result, measured_colour=self.plot.text_colour)
        self.plot.draw_idle()

    def _redraw_result(self) -> None:
        if self._drawn is not None:
            self.draw_result(self._drawn)

    # -- saving and retraining -------------------------------------------------
    def save_instrument(self, path: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the calibrated instrument file; ask before replacing one."""
        from napari_xrfquant.instrument import save_instrument

        if self.result is None:
            return None
        target = Path(path)
        existing = [target] if target.exists() else []
        if not may_replace(existing, overwrite, self.confirm_overwrite):
            self.status.setText(f"not saved: {target.name} exists")
            return None
        save_instrument(self.result.instrument, target, overwrite=bool(existing))
        self.status.setText(f"saved instrument {target}")
        return target

    def _save_instrument_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Calibrated instrument", "instrument.toml", "Instrument (*.toml)"
        )
        if path:
            self._guarded(lambda: self.save_instrument(path))

    def retrain(self, minutes: float | None = None) -> Any:
        """Fine-tune the start model on the calibrated instrument in a worker (train a
        new model of the elements when the calibration started from an instrument file)."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.calibration.session import iter_retrain
        from napari_xrfquant.instrument import save_instrument

        if self.result is None or self.worker is not None:
            return None
        if minutes is None and (problem := self.minutes_spin.problem()) is not None:
            self.status.setText(f"not started: retrain time {problem}")
            show_error(f"Calibrate: retrain time {problem}")
            return None
        budget = float(minutes if minutes is not None else self.minutes_spin.value())
        if self._bundle_dir is None:
            self._bundle_dir = tempfile.TemporaryDirectory(prefix="xrfquant-calibrated-")
        instrument_file = save_instrument(
            self.result.instrument,
            Path(self._bundle_dir.name) / "instrument.toml",
            overwrite=True,
        )
        generator = iter_retrain(
            self._run["model"],
            instrument_file,
            budget,
            self.result,
            self._run["energy_keV"],
            self._run["source"],
            self._run["standards"],
            self.retrain_spectra,
            elements=self._run["elements"],
        )
        return self.controls.runner.start(
            generator, f"Retrain on the calibrated instrument (up to {budget:g} min)",
            self._on_retrained, on_event=self._on_event, bar_stages=("calibrate", "epoch"))

    def _on_retrained(self, outcome: Outcome[Any]) -> None:
        from napari.utils.notifications import show_info

        trained: Any = outcome.result
        assert self._bundle_dir is not None
        directory = trained.save(Path(self._bundle_dir.name) / trained.config.name, overwrite=True)
        verb = "retrained" if self._run["model"] is not None else "trained"
        label = f"{trained.config.name} ({verb}, not saved)"
        if self.registered_label and self.registered_label != label:
            model_registry.unregister(self.registered_label)
        model_registry.register(label, directory, model=trained.model)
        self.registered_label = label
        self.retrained = trained
        self.save_model_button.setEnabled(True)
        text = f"{verb} in {len(trained.history)} epochs; added to the model list as {label!r}"
        self.status.setText(text)
        show_info(f"Calibrate: {text}")

    def save_model(self, directory: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the retrained model bundle; ask before replacing one."""
        if self.retrained is None:
            return None
        target = Path(directory)
        existing = bundle_files(target)
        if not may_replace(existing, overwrite, self.confirm_overwrite):
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

    # -- the running job -------------------------------------------------------
    @property
    def worker(self) -> Any:
        """The running worker, or None."""
        return self.controls.runner.worker

    def cancel(self) -> None:
        """Stop the running fit or retraining at its next step; nothing is kept."""
        self.controls.runner.cancel()

    def _on_event(self, event: Any) -> None:
        from napari_xrfquant.training.events import EpochEnd

        if isinstance(event, Progress) and event.stage == "calibrate":
            self.status.setText(f"fitting the instrument: step {event.done}/{event.total}")
        elif isinstance(event, EpochEnd):
            self.status.setText(f"retrain epoch {event.epoch}: val MAE {event.val_mae:.3f} wt%")

    def _guarded(self, action: Callable[[], Any]) -> None:
        from napari.utils.notifications import show_error

        try:
            action()
        except (OSError, ValueError) as exc:
            show_error(f"Calibrate: {one_line(exc)}")
            self.status.setText(f"failed: {one_line(exc)}")
