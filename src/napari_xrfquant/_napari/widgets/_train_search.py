"""The Train dock's hyperparameter search: start it, list the trials, use one.

A panel the Train dock is built from: its own trials field, Search button,
trials table and "Use selected trial"; it runs through the dock's
:class:`~._job_controls.JobControls` (one job at a time, one Cancel, one bar)
and reads and fills the dock's form through the callables it is given. The
search itself is the core's (:mod:`napari_xrfquant.training.search`) run by
:func:`~napari_xrfquant._napari.widgets.train_jobs.search_job`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from napari_xrfquant._napari._qt import present
from napari_xrfquant._napari.widgets._number_edit import NumberEdit
from napari_xrfquant._napari.widgets.train_jobs import search_job
from napari_xrfquant.jobs import CancelToken, Outcome

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant._napari.widgets._job_controls import JobControls
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.training.config import TrainingConfig
    from napari_xrfquant.training.search import SearchResult, TrialResult

TRIAL_COLUMNS = ("#", "state", "val loss", "layers", "neurons", "batch", "lr", "epochs", "s")


class SearchPanel(QGroupBox):
    """Search controls of the Train dock.

    Parameters
    ----------
    controls
        The dock's job controls (the search is one of its jobs).
    settings_to_run
        The form's checked ``(config, instrument)``, or None (refused, or a run goes on).
    apply_config
        Fills the form from a config.
    number_row
        Adds a number field to a form so that the dock checks it with the others.

    Attributes
    ----------
    search_result
        The last :class:`~napari_xrfquant.training.search.SearchResult` (None before).
    """

    def __init__(self, controls: JobControls,
                 settings_to_run: Callable[[], tuple[TrainingConfig, Instrument] | None],
                 apply_config: Callable[[TrainingConfig], None],
                 number_row: Callable[[QFormLayout, str, NumberEdit], None]) -> None:
        super().__init__("Hyperparameter search (optuna)")
        self.controls = controls
        self.settings_to_run = settings_to_run
        self.apply_config = apply_config
        self.search_result: SearchResult | None = None
        self._base: TrainingConfig | None = None
        form = QFormLayout(self)
        self.trials_spin = NumberEdit(10, integer=True, low=1, unit="trials")
        self.search_button = controls.guard(QPushButton("Search"))
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
        number_row(form, "trials", self.trials_spin)
        form.addRow(self.search_button)
        form.addRow(self.trials_table)
        form.addRow(self.use_trial_button)
        self.search_button.clicked.connect(lambda: self.search())
        self.use_trial_button.clicked.connect(lambda: self.use_selected_trial())

    def search(self, n_trials: int | None = None) -> Any:
        """Check the form and start a hyperparameter search; returns the worker."""
        settings = self.settings_to_run()
        if settings is None:
            return None
        config, instrument = settings
        trials = int(n_trials or self.trials_spin.value())
        self._base = config
        self.trials_table.setRowCount(0)
        token = CancelToken()
        return self.controls.runner.start(
            search_job(config, instrument, trials, token), f"Hyperparameter search ({trials} "
            "trials)", self._on_searched, total=trials, on_event=self._on_trial, cancel=token)

    def _on_trial(self, trial: TrialResult) -> None:
        row = self.trials_table.rowCount()
        self.trials_table.insertRow(row)
        p = trial.params
        cells = (trial.number, trial.state,
                 "-" if trial.value is None else f"{trial.value:.4g}", p["hidden_layers"],
                 p["neurons"], p["batch_size"], f"{p['lr']:.2e}", trial.epochs,
                 f"{trial.seconds:.0f}")
        for col, value in enumerate(cells):
            self.trials_table.setItem(row, col, QTableWidgetItem(str(value)))
        self.controls.runner.show_progress(row + 1)
        self.controls.say(trial.describe())

    def _on_searched(self, outcome: Outcome[SearchResult]) -> None:
        from napari.utils.notifications import show_info

        self.search_result = result = outcome.unwrap()
        best = result.best
        if best is None:
            self.controls.say("no trial finished")
            return
        rows = [int(present(self.trials_table.item(r, 0)).text())
                for r in range(self.trials_table.rowCount())]
        self.trials_table.selectRow(rows.index(best.number))
        self.use_trial_button.setEnabled(True)
        text = f"best: {best.describe()}"
        self.controls.say(text + " — 'Use selected trial' fills the form")
        show_info(f"Search: {text}")

    def use_selected_trial(self) -> bool:
        """Fill the form with the selected trial's hyperparameters."""
        from napari_xrfquant.training.search import apply_params

        if self.search_result is None or self._base is None:
            return False
        rows = present(self.trials_table.selectionModel()).selectedRows()
        if not rows:
            return False
        number = int(present(self.trials_table.item(rows[0].row(), 0)).text())
        trial = next(t for t in self.search_result.trials if t.number == number)
        self.apply_config(apply_params(self._base, trial.params))
        self.controls.say(f"form filled from trial {number}")
        return True
