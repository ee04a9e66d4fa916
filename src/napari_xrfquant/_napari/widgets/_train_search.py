"""The Train dock's hyperparameter search: start it, list the trials, use one.

A mixin of :class:`~napari_xrfquant._napari.widgets.train_widget.TrainWidget`
(which supplies the form, the trials table, the progress bar and the worker
handling); the search itself is the core's (:mod:`napari_xrfquant.training.search`)
run by :func:`~napari_xrfquant._napari.widgets.train_jobs.search_job`.
"""

from __future__ import annotations

import time
from typing import Any

from qtpy.QtWidgets import QTableWidgetItem

from napari_xrfquant._napari._qt import present
from napari_xrfquant._napari.widgets.train_jobs import search_job
from napari_xrfquant.jobs import CancelToken, Outcome


class TrainSearch:
    """Search controls of the Train dock."""

    trials_table: Any
    trials_spin: Any
    status: Any
    use_trial_button: Any
    search_result: Any
    _search_started: float
    # supplied by the form (TrainForm, after this class in the widget's bases) and
    # the widget: annotations only, so that nothing here hides them
    settings_to_run: Any
    settings: Any
    set_config: Any
    controls: Any

    def search(self, n_trials: int | None = None) -> Any:
        """Check the form and start a hyperparameter search; returns the worker."""
        settings = self.settings_to_run()
        if settings is None:
            return None
        config, instrument = settings
        trials = int(n_trials or self.trials_spin.value())
        self._search_started = time.perf_counter()
        self.trials_table.setRowCount(0)
        token = CancelToken()
        return self.controls.runner.start(
            search_job(config, instrument, trials, token), f"Hyperparameter search ({trials} "
            "trials)", self._on_searched, total=trials, on_event=self._on_trial, cancel=token)

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
        self.controls.runner.show_progress(row + 1)
        self.status.setText(trial.describe())

    def _on_searched(self, outcome: Outcome[Any]) -> None:
        from napari.utils.notifications import show_info

        self.search_result = outcome.result
        best = self.search_result.best
        if best is None:
            self.status.setText("no trial finished")
            return
        rows = [int(present(self.trials_table.item(r, 0)).text())
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
        rows = present(self.trials_table.selectionModel()).selectedRows()
        if not rows:
            return False
        number = int(present(self.trials_table.item(rows[0].row(), 0)).text())
        trial = next(t for t in self.search_result.trials if t.number == number)
        config = apply_params(self.settings()[0], trial.params)
        self.set_config(config)
        self.status.setText(f"form filled from trial {number}")
        return True
