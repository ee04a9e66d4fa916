"""The Train dock's "Compare on labelled data": k-fold cross-validation in a worker.

The same computation as ``xrfquant compare`` (:mod:`napari_xrfquant.evaluation`):
a labelled training-set file, the models, k; the table shows MSE +- SE per
element and model with the best in bold; Cancel stops between folds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtGui import QFont
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_xrfquant._napari._qt import one_line
from napari_xrfquant._napari.widgets._job_controls import JobControls
from napari_xrfquant._napari.widgets._number_edit import NumberEdit
from napari_xrfquant.evaluation.baselines import MODEL_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.evaluation.compare import Comparison


class ComparePanel(QGroupBox):
    """Cross-validate models on a labelled set; the report as a table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Compare on labelled data", parent)
        self.comparison: Any = None
        form = QFormLayout(self)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("labelled spectra (xrfquant-spectra .h5)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.file_edit)
        row.addWidget(browse)
        self.models_edit = QLineEdit(",".join(MODEL_NAMES))
        self.models_edit.setToolTip(f"comma-separated, from {', '.join(MODEL_NAMES)}")
        self.folds_spin = NumberEdit(10, integer=True, low=2, high=100)
        self.controls = JobControls(
            "Compare", "10-fold cross-validation: MSE +- SE (wt%^2) per element")
        self.run_button = self.controls.add_run_button("Compare")
        self.cancel_button = self.controls.cancel_button
        self.progress, self.status = self.controls.progress, self.controls.status
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(150)
        form.addRow("labelled set", row)
        form.addRow("models", self.models_edit)
        form.addRow("folds", self.folds_spin)
        form.addRow(self.controls)
        form.addRow(self.table)
        self.run_button.clicked.connect(lambda: self.compare())

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labelled spectra", "", "HDF5 (*.h5 *.hdf5)")
        if path:
            self.file_edit.setText(path)

    def request(self) -> dict[str, Any]:
        """The checked request (raises XRFQuantError or OSError with the reason)."""
        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.evaluation.compare import check_labelled, read_labelled

        if (problem := self.folds_spin.problem()) is not None:
            raise XRFQuantError(f"folds: {problem}")
        data, instrument = read_labelled(self.file_edit.text().strip())
        models = [m.strip() for m in self.models_edit.text().split(",") if m.strip()]
        folds = int(self.folds_spin.value())
        check_labelled(data.spectra, data.wt_percent, data.energy_keV, data.elements, models,
                       folds, instrument)
        return {"data": data, "models": models, "folds": folds, "instrument": instrument}

    def compare(self) -> Any:
        """Start the cross-validation in a worker; returns it (None if refused)."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.evaluation.compare import iter_compare

        if self.worker is not None:
            return None
        try:
            request = self.request()
        except (XRFQuantError, OSError, ValueError) as exc:
            self.status.setText(f"not started: {one_line(exc)}")
            show_error(f"Compare: {one_line(exc)}")
            return None
        data = request["data"]
        generator = iter_compare(data.spectra, data.wt_percent, data.energy_keV, data.elements,
                                 request["models"], request["folds"],
                                 instrument=request["instrument"])
        return self.controls.runner.start(
            generator, f"Cross-validating {', '.join(request['models'])}", self._on_returned,
            total=len(request["models"]) * request["folds"], on_event=self._on_event,
            cancelled_text="cancelled; the table stays as it was")

    @property
    def worker(self) -> Any:
        """The running cross-validation's worker, or None."""
        return self.controls.runner.worker

    def cancel(self) -> None:
        """Stop after the current fold; the table stays as it was."""
        self.controls.runner.cancel()

    def _on_event(self, event: Any) -> None:
        self.status.setText(f"{event.stage}: fit {event.done} of {event.total}")

    def _on_returned(self, outcome: Any) -> None:
        self.comparison = outcome.result
        self.show_table(outcome.result)
        best = outcome.result.best()
        self.status.setText("best: " + ", ".join(f"{e} {m}" for e, m in best.items()))

    def show_table(self, comparison: Comparison) -> None:
        """Rows: elements; columns: models; cells MSE +- SE, the best in bold."""
        record = comparison.to_dict()
        names = list(record["models"])
        best = record["best"]
        self.table.clear()
        self.table.setRowCount(len(comparison.elements))
        self.table.setColumnCount(len(names))
        self.table.setHorizontalHeaderLabels(names)
        self.table.setVerticalHeaderLabels(comparison.elements)
        bold = QFont()
        bold.setBold(True)
        for r, element in enumerate(comparison.elements):
            for c, name in enumerate(names):
                entry = record["models"][name]["per_element"][element]
                item = QTableWidgetItem(f"{entry['mse']:.3g} ± {entry['se']:.2g}")
                item.setToolTip(f"MAE {entry['mae']:.3g} wt%")
                if best[element] == name:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
