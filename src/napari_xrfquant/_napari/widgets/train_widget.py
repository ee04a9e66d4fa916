"""The Train dock widget: simulate spectra for any instrument and train a model, no code.

The form holds the elements, the instrument (beam, angles, detector,
calibration, resolution, counts range; loadable from and savable to an
instrument file, calibration prefilled from a cube layer), the data set and
the network. "Simulate + Train" checks the settings first
(:mod:`napari_xrfquant.training.checks`: the reason is shown in the widget and as a
notification), then runs :func:`.train_jobs.training_job` through the dock's
job controls: a progress bar with epoch and ETA, live loss curves
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

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._layers import cube_counts, cube_layers
from napari_xrfquant._napari._qt import (
    alive,
    ask_overwrite,
    bundle_files,
    fit_narrow_column,
    may_replace,
    present,
    scrolled_layout,
    tabify_when_docked,
)
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari.widgets._job_controls import JobControls
from napari_xrfquant._napari.widgets._number_edit import schema_number
from napari_xrfquant._napari.widgets._train_form import TrainForm
from napari_xrfquant._napari.widgets._train_search import SearchPanel
from napari_xrfquant._napari.widgets.compare_panel import ComparePanel
from napari_xrfquant._napari.widgets.train_jobs import training_job
from napari_xrfquant._napari.widgets.train_plot import LossCanvas
from napari_xrfquant.jobs import Outcome

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_xrfquant.training.events import TrainResult


#: Index of the tab with the loss curves and test metrics (Settings, Training, Search).
TRAINING_TAB = 1
#: Smallest height of a tab's scrolled page: the dock never opens as a strip.
TAB_MIN_HEIGHT = 120


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
    search_panel
        The hyperparameter search (:class:`~._train_search.SearchPanel`).
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
        tabify_when_docked(self)  # beside the plugin's other docks, not squeezed under
        self.viewer = napari_viewer
        self.result: Any = None
        self.registered_label: str | None = None
        self.confirm_overwrite: Callable[[list[Path]], bool] = lambda paths: ask_overwrite(
            self, paths
        )
        self._epoch_seconds: list[float] = []
        self._run_epochs = 0
        # the temporary bundles of the unsaved models in the list, by label
        self._unsaved: dict[str, tempfile.TemporaryDirectory[str]] = {}
        self._build()
        self.refresh_cube_layers()
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        # the run controls stay in view; settings, progress and search are tabs, each
        # scrolling on its own, so the dock is usable at any height
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        run_box = QWidget()
        run_layout = QVBoxLayout(run_box)
        outer.addWidget(run_box)
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs, 1)
        pages = {}
        for title in ("Settings", "Training", "Search"):
            page = QWidget()
            self.tabs.addTab(page, title)
            pages[title] = scrolled_layout(page, min_height=TAB_MIN_HEIGHT)
        # the run line first: the form shows its refusals and file messages there
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #ff6b6b")
        self.controls = JobControls("Train")
        self.train_button = self.controls.add_run_button("Simulate + Train")
        self.cancel_button = self.controls.cancel_button
        self.progress, self.status = self.controls.progress, self.controls.status
        run_layout.addWidget(self.problem_label)
        run_layout.addWidget(self.controls)
        layout = pages["Settings"]
        self.form = TrainForm(self.viewer, self.problem_label, self.status.setText,
                              lambda paths: self.confirm_overwrite(paths))
        layout.addWidget(self.form)
        # a group box is as wide as its title: the long one made the page scroll sideways
        box = QGroupBox("Analysis by synthesis")
        box.setToolTip("Learn the instrument from a measured cube while training")
        form = QFormLayout(box)
        self.axs_combo = QComboBox()
        self.axs_combo.setToolTip("Unlabelled spectra whose reconstruction through the "
                                  "simulator trains the network and the instrument")
        from napari_xrfquant.training.config import AXSConfig

        self.beta_spin = schema_number(AXSConfig, "beta", 1.0)
        form.addRow("unlabelled cube", self.axs_combo)
        self.form.number_row(form, "β (reconstruction weight)", self.beta_spin)
        layout.addWidget(box)
        layout.addStretch(1)

        layout = pages["Training"]
        self.loss_canvas = LossCanvas(self.viewer)
        layout.addWidget(self.loss_canvas)

        # results
        box = QGroupBox("Test set (held-out simulated spectra)")
        box_layout = QVBoxLayout(box)
        self.metrics_table = QTableWidget(0, 0)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        present(self.metrics_table.horizontalHeader()).setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch
        )
        self.metrics_table.setMinimumHeight(120)
        self.save_model_button = QPushButton("Save model...")
        self.save_model_button.setEnabled(False)
        box_layout.addWidget(self.metrics_table)
        box_layout.addWidget(self.save_model_button)
        layout.addWidget(box)
        layout.addStretch(1)

        # search
        layout = pages["Search"]
        self.search_panel = SearchPanel(self.controls, self.settings_to_run,
                                        self.form.set_config, self.form.number_row)
        layout.addWidget(self.search_panel)
        self.compare_panel = ComparePanel()
        layout.addWidget(self.compare_panel)
        layout.addStretch(1)

        self.train_button.clicked.connect(lambda: self.train())
        self.save_model_button.clicked.connect(self._save_model_clicked)
        fit_narrow_column(self)  # its panels too, not only the form

    # -- training -----------------------------------------------------------
    def train(self) -> Any:
        """Check the form and start training in a worker; returns it (None if refused)."""
        settings = self.settings_to_run()
        if settings is None:
            return None
        config, instrument = settings
        axs_layer = next((lyr for lyr in cube_layers(self.viewer.layers)
                          if lyr.name == self.axs_combo.currentText()), None)
        unlabelled = None if axs_layer is None else cube_counts(axs_layer)
        if axs_layer is not None:
            from napari_xrfquant.training.config import AXSConfig

            config = config.replace(axs=AXSConfig(unlabelled=f"layer {axs_layer.name}",
                                                  beta=self.beta_spin.value()))
        self._epoch_seconds = []
        self._run_epochs = config.epochs
        self.loss_canvas.clear()
        self.tabs.setCurrentIndex(TRAINING_TAB)  # the loss curves, as they come
        return self.controls.runner.start(
            training_job(config, instrument, None, unlabelled), f"Train {config.name}",
            self._on_trained, total=config.epochs, on_event=self._on_train_event,
            bar_stages=(), cancelled_text="cancelled before the first epoch ended; no model")

    def settings_to_run(self) -> Any:
        """The checked form's ``(config, instrument)``; None while a run goes on or when
        the form is refused (its reasons are shown)."""
        if self.worker is not None:
            return None
        return self.form.check()

    def _layers_changed(self, _event: object = None) -> None:
        if alive(self):  # the dock may be closed while the viewer lives on
            self.refresh_cube_layers()

    def refresh_cube_layers(self) -> None:
        """The form's cube list, and the AXS list (``none`` plus every cube layer)."""
        self.form.refresh_cube_layers()
        current = self.axs_combo.currentText()
        names = ["none", *(layer.name for layer in cube_layers(self.viewer.layers))]
        self.axs_combo.clear()
        self.axs_combo.addItems(names)
        self.axs_combo.setCurrentText(current if current in names else "none")

    @property
    def worker(self) -> Any:
        """The running training or search worker, or None."""
        return self.controls.runner.worker

    def cancel(self) -> None:
        """Stop the run: a training run keeps its best model so far."""
        self.controls.runner.cancel("cancelling: the best model so far is kept...")

    def _on_train_event(self, event: Any) -> None:
        from napari_xrfquant.jobs import Progress
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
            self.controls.runner.show_progress(event.epoch)
            mean_s = float(np.mean(self._epoch_seconds[-5:]))
            eta = format_eta(mean_s * (self._run_epochs - event.epoch))
            self.status.setText(
                f"epoch {event.epoch}/{self._run_epochs} · val MAE {event.val_mae:.2f} wt% · "
                f"ETA {eta} (early stopping may end sooner)"
            )

    def _on_trained(self, outcome: Outcome[Any]) -> None:
        from napari.utils.notifications import show_info

        result: Any = outcome.result
        self.result = result
        self.fill_metrics(result.metrics)
        self.register_result(result)
        self.save_model_button.setEnabled(True)
        how = "cancelled; kept" if outcome.cancelled else "done; best"
        text = (f"{how} epoch {result.best_epoch} of {len(result.history)} · "
                f"added to the model list as {self.registered_label!r}")
        self.status.setText(text)
        show_info(f"Train: {text}")

    def register_result(self, result: TrainResult) -> str:
        """Put the trained model into the Quantify widget's list (from a temporary bundle).

        A finished run is listed as ``"<name> (trained, not saved)"`` and takes the
        place of the unsaved models before it; a cancelled run as ``"<name>
        (cancelled, not saved)"``, beside a finished one of the same name, never
        in its place.
        """
        cancelled = bool(getattr(result, "cancelled", False))
        label = f"{result.config.name} ({'cancelled' if cancelled else 'trained'}, not saved)"
        # a finished run replaces every unsaved model; a cancelled one all but the finished
        kept = f"{result.config.name} (trained, not saved)" if cancelled else None
        for old in [lbl for lbl in self._unsaved if lbl != kept]:
            model_registry.unregister(old)
            self._unsaved.pop(old).cleanup()
        unsaved = tempfile.TemporaryDirectory(prefix="xrfquant-trained-")
        directory = result.save(Path(unsaved.name) / result.config.name)
        model_registry.register(label, directory, model=result.model)
        self._unsaved[label] = unsaved
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
        existing = bundle_files(target)
        if not may_replace(existing, overwrite, self.confirm_overwrite):
            self.status.setText(f"not saved: {target} holds a model")
            return None
        self.result.save(target, overwrite=bool(existing))
        label = f"{self.result.config.name} ({target})"
        if self.registered_label and self.registered_label != label:
            model_registry.unregister(self.registered_label)
            if self.registered_label in self._unsaved:
                self._unsaved.pop(self.registered_label).cleanup()
        model_registry.register(label, target, model=self.result.model)
        self.registered_label = label
        self.status.setText(f"saved model bundle {target}")
        return target

    def _save_model_clicked(self) -> None:
        if self.result is None:
            return
        parent = QFileDialog.getExistingDirectory(self, "Folder for the model bundle")
        if parent:
            self.form.guarded(lambda: self.save_model(Path(parent) / self.result.config.name),
                          "saved model")


def _level_header(label: str) -> str:
    if label == "noiseless":
        return "noise-free"
    try:
        return f"{float(label):.0e} counts".replace("e+0", "e")
    except ValueError:
        return label
