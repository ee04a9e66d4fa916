"""The Quantify dock widget: cube layer + model + device -> element-map layers.

The work runs in a napari ``thread_worker`` around
:func:`napari_xrfquant._napari._jobs.quantify_job` (which wraps the core's
``iter_quantify``), so the viewer stays responsive and Cancel takes effect at
the next chunk. Layers are added or replaced only in the worker's
``returned`` handler, on the main thread, for the cube layer the run started
from; a cancelled or failed run adds nothing.

Pixels whose total counts are below the "Mask below" threshold (air around
the sample: scattered beam only) get NaN in the concentration and uncertainty
maps, so they drop out of the picture, the statistics and the exported TIFFs.
The widget keeps the unmasked result of the last run on each cube, so changing
the threshold re-masks at once without quantifying again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
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
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant import results as core_results
from napari_xrfquant._napari._export import pixel_size_of_results, result_from_layers
from napari_xrfquant._napari._jobs import JobOutcome, Notice, Progress, quantify_job
from napari_xrfquant._napari._layers import (
    KIND_TOTAL,
    SpatialFrame,
    cube_layers,
    is_cube_layer,
    layer_data_key,
    result_key,
    result_layer_data,
    result_layers,
    total_counts_layer_name,
)
from napari_xrfquant._napari._regions import regions_from_layer
from napari_xrfquant._napari._registry import describe_model, model_registry
from napari_xrfquant.results import (
    LAYOUTS,
    Region,
    RegionStatistics,
    export_result,
    region_statistics,
    whole_map,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

DEVICES = ("auto", "cpu", "cuda")
WHOLE_MAP_ITEM = "whole map"
#: Spectra per chunk in the GUI: ~20 progress steps for a 264 x 264 map and a
#: Cancel that answers within a fraction of a second, at little cost in speed.
GUI_BATCH_SPECTRA = 4096
#: Table rows shown without scrolling (one region of the bundled 5-element model).
TABLE_VISIBLE_ROWS = 5
#: Default background threshold (total counts per pixel), shared with the CLI.
#: The CXC sample's air pixels hold ~10-55 counts of scattered beam, its metal
#: >2000; at 200 counts the model's 1-sigma is several wt%, too poor to show as a
#: composition anyway.
DEFAULT_MASK_BELOW_COUNTS = int(core_results.DEFAULT_MASK_BELOW_COUNTS)
MASK_TOOLTIP = (
    "Pixels with fewer counts in total (summed over the whole spectrum, as in the "
    "'total counts' layer) get no composition: NaN in the wt% and ±1σ maps, left out "
    "of the statistics and written as NaN in exports. Air around a sample gives only "
    "scattered beam (a few tens of counts), from which the model returns noise. "
    "Fit quality keeps every pixel. 0 = off."
)
#: Shapes data events sent while an edit is still under way (napari >= 0.5).
_IN_PROGRESS_ACTIONS = ("adding", "changing", "removing")


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (False when torch cannot tell)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def ask_overwrite(parent: QWidget | None, paths: list[Path]) -> bool:
    """Ask (modal dialog) whether to replace existing export files."""
    shown = "\n".join(str(p.name) for p in paths[:8])
    more = f"\n... and {len(paths) - 8} more" if len(paths) > 8 else ""
    answer = QMessageBox.question(
        parent,
        "Replace files?",
        f"These files exist already:\n{shown}{more}\n\nReplace them?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


class QuantifyWidget(QWidget):
    """Dock widget that quantifies a cube layer into element maps (wt%).

    Parameters
    ----------
    napari_viewer
        The viewer (npe2 injects it).

    Attributes
    ----------
    worker
        The running (or last) napari worker, or None.
    confirm_overwrite
        Called with the existing files before an export replaces them; a
        dialog by default, replaceable in tests.
    statistics
        The region statistics shown in the table.
    last_results
        The unmasked result of the last run on each cube layer (by name), kept
        so a new background threshold re-masks the maps without a new run.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.statistics: list[RegionStatistics] = []
        self.confirm_overwrite: Callable[[list[Path]], bool] = lambda paths: ask_overwrite(
            self, paths
        )
        self._progress_bar: Any = None
        self._run_source: str | None = None
        self._watched_region: Any = None
        self._run_mask_below_counts = 0.0
        self.last_results: dict[str, Any] = {}
        self.model_error = ""
        self._build()
        self._connect()
        self.refresh_cube_layers()
        self.refresh_models()
        self.refresh_region_layers()

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.cube_combo = QComboBox()
        self.cube_combo.setToolTip("Image layer holding an XRF cube (energy axis in keV)")
        form.addRow("Cube layer", self.cube_combo)

        model_row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Bundled default or a model bundle added with 'Add...'")
        self.model_browse = QPushButton("Add...")
        self.model_browse.setToolTip("Add a model bundle (model.json or its folder)")
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.model_browse)
        form.addRow("Model", model_row)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        form.addRow("", self.model_info)

        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        if not cuda_available():
            item = self.device_combo.model().item(DEVICES.index("cuda"))
            item.setEnabled(False)
            item.setToolTip("torch sees no CUDA GPU on this machine")
        self.device_info = QLabel("")
        device_row = QHBoxLayout()
        device_row.addWidget(self.device_combo)
        device_row.addWidget(self.device_info, 1)
        form.addRow("Device", device_row)

        self.mask_spin = QSpinBox()
        self.mask_spin.setRange(0, 2_000_000_000)
        self.mask_spin.setSingleStep(50)
        self.mask_spin.setValue(DEFAULT_MASK_BELOW_COUNTS)
        self.mask_spin.setSuffix(" counts")
        self.mask_spin.setSpecialValueText("off")
        self.mask_spin.setToolTip(MASK_TOOLTIP)
        # re-mask once a number is complete, not at every digit typed
        self.mask_spin.setKeyboardTracking(False)
        form.addRow("Mask below", self.mask_spin)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Quantify")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        stats_box = QGroupBox("Statistics (wt%)")
        stats_layout = QVBoxLayout(stats_box)
        region_row = QHBoxLayout()
        region_row.addWidget(QLabel("Region"))
        self.region_combo = QComboBox()
        self.region_combo.setToolTip("Whole map, or each shape / label of a Shapes or Labels layer")
        region_row.addWidget(self.region_combo, 1)
        stats_layout.addLayout(region_row)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["region", "element", "mean", "± sd"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(150)
        stats_layout.addWidget(self.table)
        layout.addWidget(stats_box)

        export_box = QGroupBox("Export")
        export_form = QFormLayout(export_box)
        folder_row = QHBoxLayout()
        self.export_folder = QLineEdit()
        self.export_folder.setPlaceholderText("folder for TIFF maps and CSV")
        self.export_browse = QPushButton("...")
        folder_row.addWidget(self.export_folder, 1)
        folder_row.addWidget(self.export_browse)
        export_form.addRow("Folder", folder_row)
        self.layout_combo = QComboBox()
        self.layout_combo.addItems(LAYOUTS)
        self.layout_combo.setToolTip(
            "stack: one multi-page TIFF of all elements; per-element: one TIFF each"
        )
        export_form.addRow("Layout", self.layout_combo)
        self.export_button = QPushButton("Export maps")
        export_form.addRow("", self.export_button)
        layout.addWidget(export_box)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.model_browse.clicked.connect(self._browse_model)
        self.model_combo.currentTextChanged.connect(self._model_chosen)
        self.device_combo.currentTextChanged.connect(self._update_device_info)
        self.mask_spin.valueChanged.connect(self._mask_changed)
        self.cube_combo.currentTextChanged.connect(lambda _t: self.update_statistics())
        self.region_combo.currentTextChanged.connect(self._region_chosen)
        self.export_browse.clicked.connect(self._browse_export_folder)
        self.export_button.clicked.connect(self._export_clicked)
        events = self.viewer.layers.events
        events.inserted.connect(self._layers_changed)
        events.removed.connect(self._layers_changed)
        events.reordered.connect(self._layers_changed)
        self.viewer.layers.selection.events.active.connect(self._active_changed)
        # psygnal holds the slot weakly; a deleted widget must also stop hearing it
        model_registry.changed.connect(self._registry_changed)
        slot = self._registry_changed
        self.destroyed.connect(lambda *_: model_registry.changed.disconnect(slot))

    def _registry_changed(self) -> None:
        if not _alive(self):  # the Qt side is gone (widget closed)
            model_registry.changed.disconnect(self._registry_changed)
            return
        self.refresh_models()

    # -- layer and model lists --------------------------------------------
    def _layers_changed(self, event: Any = None) -> None:
        if not _alive(self):
            return  # the dock was closed; the viewer lives on
        layer = getattr(event, "value", None)
        if layer is not None and hasattr(layer, "events") and hasattr(layer.events, "name"):
            # keep combo boxes right when a layer is renamed
            layer.events.name.disconnect(self._layers_changed)
            layer.events.name.connect(self._layers_changed)
        self.refresh_cube_layers()
        self.refresh_region_layers()
        present = {lyr.name for lyr in cube_layers(self.viewer.layers)}
        for name in [n for n in self.last_results if n not in present]:
            del self.last_results[name]  # the cube layer is gone (or renamed): free its maps

    def _active_changed(self, event: Any = None) -> None:
        if not _alive(self):
            return
        active = self.viewer.layers.selection.active
        if active is not None and is_cube_layer(active):
            self.cube_combo.setCurrentText(active.name)

    def refresh_cube_layers(self) -> None:
        """Refill the cube list; keep the choice, else prefer the active cube layer."""
        names = [layer.name for layer in cube_layers(self.viewer.layers)]
        current = self.cube_combo.currentText()
        active = self.viewer.layers.selection.active
        self.cube_combo.blockSignals(True)
        self.cube_combo.clear()
        self.cube_combo.addItems(names)
        if current in names:
            self.cube_combo.setCurrentText(current)
        elif active is not None and active.name in names:
            self.cube_combo.setCurrentText(active.name)
        elif names:
            self.cube_combo.setCurrentIndex(len(names) - 1)
        self.cube_combo.blockSignals(False)
        self.run_button.setEnabled(bool(names) and self.worker is None)

    def refresh_region_layers(self) -> None:
        """Refill the region list: whole map plus every Shapes and Labels layer."""
        names = [WHOLE_MAP_ITEM] + [
            layer.name
            for layer in self.viewer.layers
            if type(layer).__name__ in ("Shapes", "Labels")
        ]
        current = self.region_combo.currentText()
        self.region_combo.blockSignals(True)
        self.region_combo.clear()
        self.region_combo.addItems(names)
        self.region_combo.setCurrentText(current if current in names else WHOLE_MAP_ITEM)
        self.region_combo.blockSignals(False)
        self._watch_region_layer()

    def refresh_models(self) -> None:
        """Refill the model list from the shared registry (other widgets may add to it)."""
        labels = model_registry.labels()
        current = self.model_combo.currentText() or model_registry.selected
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(labels)
        self.model_combo.setCurrentText(current if current in labels else labels[0])
        self.model_combo.blockSignals(False)
        self._model_chosen(self.model_combo.currentText())

    def _model_chosen(self, label: str) -> None:
        if not label:
            return
        model_registry.select(label)
        # at start-up a missing model is told in the label; a user's choice gets a notification
        model = self.load_selected_model(notify=self.isVisible())
        self.model_info.setText(
            describe_model(model) if model is not None else f"not loadable: {self.model_error}"
        )
        self._update_device_info()

    def load_selected_model(self, notify: bool = True) -> Any:
        """The selected model (loaded once, cached), or None after an error notification."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError

        label = self.model_combo.currentText()
        try:
            model = model_registry.load(label)
        except (XRFQuantError, OSError, KeyError) as exc:
            self.model_error = _one_line(exc)
            if notify:
                show_error(f"model {label!r}: {self.model_error}")
            return None
        self.model_error = ""
        return model

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model bundle (model.json)", "", "Model bundle (model.json);;All files (*)"
        )
        if path:
            self.add_model(path)

    def add_model(self, path: str | Path) -> str:
        """Register a model bundle and select it; returns its label."""
        entry = model_registry.register_path(path)
        self.model_combo.setCurrentText(entry.label)
        return entry.label

    def _update_device_info(self, *_args: Any) -> None:
        device = self.device_combo.currentText()
        if device == "auto":
            device = "cuda" if cuda_available() else "cpu"
        self.device_info.setText(f"runs on: {device}")

    # -- the run ---------------------------------------------------------
    def selected_cube_layer(self) -> Any:
        """The cube layer chosen in the list, or None."""
        name = self.cube_combo.currentText()
        for layer in cube_layers(self.viewer.layers):
            if layer.name == name:
                return layer
        return None

    def run(self) -> Any:
        """Start quantifying the selected cube layer; returns the worker (or None).

        The worker is started here; results arrive in :meth:`_on_returned`.
        """
        from napari.qt.threading import create_worker
        from napari.utils import progress
        from napari.utils.notifications import show_error

        if self.worker is not None:
            return self.worker
        layer = self.selected_cube_layer()
        if layer is None:
            show_error("Quantify: open an XRF cube first (no image layer with an energy axis)")
            return None
        model = self.load_selected_model(notify=True)
        if model is None:
            return None
        cube = layer.metadata.get("cube")
        data = cube.data if cube is not None else np.moveaxis(layer.data, 0, -1)
        energy_keV = np.asarray(layer.metadata["energy_keV"], dtype=np.float64)
        n_spectra = int(np.prod(data.shape[:-1]))
        self._run_source = layer.name
        self._run_mask_below_counts = self.mask_below_counts
        worker = create_worker(
            quantify_job,
            data,
            energy_keV,
            model,
            self.device_combo.currentText(),
            GUI_BATCH_SPECTRA,
            _start_thread=False,
        )
        self._progress_bar = progress(total=n_spectra, desc=f"Quantify {layer.name}")
        self.progress.setRange(0, n_spectra)
        self.progress.setValue(0)
        self.status.setText(f"quantifying {layer.name} ({n_spectra} spectra)...")
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.aborted.connect(self._on_aborted)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running worker to stop at its next chunk (no layers are added)."""
        if self.worker is not None:
            self.status.setText("cancelling...")
            self.worker.quit()

    def _on_yielded(self, event: Any) -> None:
        from napari.utils.notifications import show_warning

        if isinstance(event, Notice):
            show_warning(event.message)
            return
        if isinstance(event, Progress):
            self.progress.setMaximum(max(event.total, 1))
            self.progress.setValue(event.done)
            if self._progress_bar is not None:
                self._progress_bar.update(event.done - self._progress_bar.n)

    def _on_returned(self, outcome: JobOutcome) -> None:
        from napari.utils.notifications import show_error, show_info

        source = self._run_source
        if outcome.error is not None:
            show_error(f"Quantify {source}: {_one_line(outcome.error)}")
            self.status.setText("failed")
            return
        result = outcome.result
        layer = next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == source), None)
        if layer is None:
            show_error(f"Quantify: the cube layer {source!r} was removed during the run")
            return
        self.last_results[source] = result
        self.add_result_layers(result, layer, self._run_mask_below_counts)
        seconds = float(getattr(result, "seconds", 0.0))
        self.status.setText(
            f"{source}: {len(result.elements)} elements on {outcome.device} in {seconds:.2f} s"
        )
        show_info(f"Quantified {source} on {outcome.device} in {seconds:.2f} s")
        self.cube_combo.setCurrentText(source)
        self.update_statistics()

    def _on_aborted(self) -> None:
        from napari.utils.notifications import show_info

        self.status.setText("cancelled; no layers added")
        show_info(f"Quantify {self._run_source}: cancelled, no layers added")

    def _on_errored(self, exc: BaseException) -> None:
        # napari already shows the notification (with traceback for the log)
        self.status.setText(f"failed: {_one_line(exc)}")

    def _on_finished(self) -> None:
        if self._progress_bar is not None:
            self._progress_bar.close()
            self._progress_bar = None
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(bool(cube_layers(self.viewer.layers)))

    # -- background mask ---------------------------------------------------
    @property
    def mask_below_counts(self) -> float:
        """The background threshold in counts (0 = no mask)."""
        return float(self.mask_spin.value())

    def total_counts_of(self, cube_layer: Any) -> np.ndarray | None:
        """Total counts ``(H, W)`` of a cube layer: its total-counts layer, else None."""
        name = total_counts_layer_name(cube_layer.name)
        for layer in self.viewer.layers:
            metadata = getattr(layer, "metadata", None) or {}
            if metadata.get("kind") == KIND_TOTAL and (
                metadata.get("source_layer") == cube_layer.name or layer.name == name
            ):
                return np.asarray(layer.data)
        return None

    def _mask_changed(self, _value: int = 0) -> None:
        """Re-mask the maps of the selected cube with the new threshold (no new run)."""
        layer = self.selected_cube_layer()
        if layer is None or self.worker is not None:
            return
        result = self.last_results.get(layer.name)
        if result is None or not result_layers(self.viewer.layers, layer.name):
            return
        self.add_result_layers(result, layer, self.mask_below_counts)
        self.update_statistics()

    def add_result_layers(
        self, result: Any, cube_layer: Any, mask_below_counts: float = 0.0
    ) -> list[Any]:
        """Add (or replace) the concentration, sigma and fit-quality layers of a result.

        A run on the same cube layer replaces the data of existing result
        layers in place (keeping the user's colormap and contrast choices
        only where the element is unchanged) instead of adding duplicates.
        Pixels with fewer than ``mask_below_counts`` total counts (from the
        cube's total-counts layer, else the counts the model read) become NaN
        in the concentration and uncertainty layers.
        """
        frame = SpatialFrame.from_layer(cube_layer)
        total = self.total_counts_of(cube_layer)
        expected_hw = tuple(np.shape(result.concentrations)[:2])
        if total is not None and total.shape != expected_hw:
            total = None
        new_layers = result_layer_data(
            result, cube_layer.name, frame, mask_below_counts, total_counts=total
        )
        old = {result_key(lyr): lyr for lyr in result_layers(self.viewer.layers, cube_layer.name)}
        added = []
        for data, kwargs, layer_type in new_layers:
            existing = old.pop(layer_data_key((data, kwargs, layer_type)), None)
            if existing is not None:
                existing.data = data
                existing.metadata = kwargs["metadata"]
                existing.contrast_limits = kwargs["contrast_limits"]
                added.append(existing)
                continue
            kwargs = {**kwargs}
            # the result-layer names are per element; a second cube gets its own
            if any(lyr.name == kwargs["name"] for lyr in self.viewer.layers):
                kwargs["name"] = f"{kwargs['name']} ({cube_layer.name})"
            added.append(self.viewer.add_image(data, **kwargs))
        for stale in old.values():
            self.viewer.layers.remove(stale)
        return added

    # -- statistics ------------------------------------------------------
    def _region_chosen(self, _text: str = "") -> None:
        self._watch_region_layer()
        self.update_statistics()

    def _watch_region_layer(self) -> None:
        """Recompute the table when the chosen region layer is edited."""
        layer = self._region_layer()
        if layer is self._watched_region:
            return
        if self._watched_region is not None:
            _disconnect(self._watched_region, self._region_edited)
        self._watched_region = layer
        if layer is not None:
            for name in ("data", "paint", "set_data"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self._region_edited)

    def _region_edited(self, event: Any = None) -> None:
        if str(getattr(event, "action", "")).lower().endswith(_IN_PROGRESS_ACTIONS):
            return  # a shape being dragged: wait for the edit to finish
        self.update_statistics()

    def _region_layer(self) -> Any:
        name = self.region_combo.currentText()
        if name in ("", WHOLE_MAP_ITEM) or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def current_regions(self, cube_layer: Any, shape_hw: tuple[int, int]) -> list[Region]:
        """The regions the table is about: each shape / label, or the whole map."""
        layer = self._region_layer()
        if layer is None:
            return [whole_map(shape_hw)]
        regions = regions_from_layer(layer, SpatialFrame.from_layer(cube_layer), shape_hw)
        return regions or [whole_map(shape_hw)]

    def update_statistics(self) -> list[RegionStatistics]:
        """Recompute mean ± sd per element over the chosen regions and fill the table."""
        cube_layer = self.selected_cube_layer()
        self.statistics = []
        result = None
        if cube_layer is not None:
            result = result_from_layers(self.viewer.layers, cube_layer.name)
        if result is not None:
            regions = self.current_regions(cube_layer, result.image_shape)
            self.statistics = region_statistics(result, regions, source=_source_name(cube_layer))
        self._fill_table()
        return self.statistics

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.statistics))
        for row, stat in enumerate(self.statistics):
            cells = (
                stat.region,
                stat.element,
                _fmt(stat.mean_wt_percent),
                _fmt(stat.sd_wt_percent),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column >= 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)
        self._fit_table_height()

    def _fit_table_height(self) -> None:
        """Show one region of a five-element model without scrolling.

        Measured on the filled table: napari's style sheet sets the row height.
        """
        shown = min(self.table.rowCount(), TABLE_VISIBLE_ROWS)
        if shown == 0:
            return
        self.table.resizeRowsToContents()
        rows_px = sum(self.table.rowHeight(row) for row in range(shown))
        header_px = self.table.horizontalHeader().sizeHint().height()
        # half a row spare: the viewport's margins under napari's style sheet
        spare_px = self.table.rowHeight(0) // 2 + 2 * self.table.frameWidth()
        self.table.setMinimumHeight(max(150, rows_px + header_px + spare_px))

    # -- export ------------------------------------------------------------
    def _browse_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.export_folder.text())
        if folder:
            self.export_folder.setText(folder)

    def _export_clicked(self) -> None:
        self.export(self.export_folder.text())

    def export(self, folder: str | Path, layout: str | None = None) -> list[Path]:
        """Write the maps of the selected cube layer (TIFF) and the table (CSV) to ``folder``.

        Asks :attr:`confirm_overwrite` before replacing files; errors become
        notifications. Returns the files written (``[]`` if nothing was).
        """
        from napari.utils.notifications import show_error, show_info

        if not str(folder).strip():
            show_error("Export: choose a folder first")
            return []
        cube_layer = self.selected_cube_layer()
        if cube_layer is None:
            show_error("Export: no cube layer selected")
            return []
        statistics = self.update_statistics()
        result = result_from_layers(self.viewer.layers, cube_layer.name)
        if result is None:
            show_error(f"Export: {cube_layer.name} has no element maps yet; run Quantify first")
            return []
        try:
            written = export_result(
                folder,
                result,
                cube_layer.name,
                layout=layout or self.layout_combo.currentText(),
                pixel_size_um=pixel_size_of_results(self.viewer.layers, cube_layer.name),
                statistics=statistics,
                source=_source_name(cube_layer),
                overwrite=self.confirm_overwrite,
            )
        except (OSError, ValueError) as exc:
            show_error(f"Export to {folder}: {_one_line(exc)}")
            return []
        if written:
            show_info(f"Exported {len(written)} files to {folder}")
        else:
            show_info("Export cancelled; no files replaced")
        return written


def _source_name(cube_layer: Any) -> str:
    """What results name as their source: the cube's file name, else the layer's name.

    The CLI names its outputs' source after the file too, so both exports agree.
    """
    path = cube_layer.metadata.get("source_path")
    return Path(path).name if path else str(cube_layer.name)


def _alive(widget: QWidget) -> bool:
    """False once Qt has deleted the widget (its Python wrapper may outlive it)."""
    try:
        widget.objectName()
    except RuntimeError:
        return False
    return True


def _disconnect(layer: Any, callback: Callable[..., Any]) -> None:
    for name in ("data", "paint", "set_data"):
        emitter = getattr(layer.events, name, None)
        if emitter is not None:
            emitter.disconnect(callback)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fmt(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.2f}"
