"""The Quantify dock's results panel: region statistics and the export.

A mixin of :class:`~napari_xrfquant._napari.widgets.quantify.QuantifyWidget`
(it uses the dock's viewer and cube list); the statistics and the files are the
core's (:mod:`napari_xrfquant.results`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
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
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._export import pixel_size_of_results, result_from_layers
from napari_xrfquant._napari._layers import (
    KIND_CONCENTRATION,
    KIND_TOTAL,
    RESULT_KINDS,
    SpatialFrame,
    layer_data_key,
    layer_kind,
    result_key,
    result_layers,
    total_counts_layer_name,
)
from napari_xrfquant._napari._qt import one_line, present
from napari_xrfquant._napari._regions import regions_from_layer
from napari_xrfquant._napari._result_layers import (
    label_on_canvas,
    result_layer_data,
    show_maps_side_by_side,
)
from napari_xrfquant._napari.widgets._plot import DockPlot
from napari_xrfquant.results import (
    LAYOUTS,
    Region,
    RegionHistogram,
    RegionStatistics,
    background_mask,
    export_result,
    mask_background,
    region_histograms,
    region_statistics,
    whole_map,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Image, Layer

    from napari_xrfquant.results import QuantResult

WHOLE_MAP_ITEM = "whole map"
#: Table rows shown without scrolling (one region of the bundled 5-element model).
TABLE_VISIBLE_ROWS = 5
#: Tallest the histogram plot grows (px): the table above it stays in view.
HISTOGRAM_MAX_HEIGHT = 260
#: Pause between two steps of adding result layers: input and paint events get in (ms).
STEP_PAUSE_MS = 1
#: Shapes data events sent while an edit is still under way (napari >= 0.5).
IN_PROGRESS_ACTIONS = ("adding", "changing", "removing")


class ResultsPanel(QWidget):
    """Statistics table and export of the selected cube's maps (mixin of the Quantify dock)."""

    viewer: Any
    statistics: list[RegionStatistics]
    confirm_overwrite: Callable[[list[Path]], bool]
    selected_cube_layer: Callable[[], Any]
    _watched_region: Any
    worker: Any
    last_results: dict[str, Any]
    mask_spin: Any

    def _build_results(self, layout: QVBoxLayout) -> None:
        """The statistics table and the export form, below the run controls."""
        self.stats_box = stats_box = QGroupBox("Statistics (wt%)")
        stats_layout = QVBoxLayout(stats_box)
        region_row = QHBoxLayout()
        region_row.addWidget(QLabel("Region"))
        self.region_combo = QComboBox()
        self.region_combo.setToolTip("Whole map, or each shape / label of a Shapes or Labels layer")
        region_row.addWidget(self.region_combo, 1)
        stats_layout.addLayout(region_row)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["region", "element", "mean", "± sd"])
        present(self.table.horizontalHeader()).setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        present(self.table.verticalHeader()).setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(150)
        stats_layout.addWidget(self.table)
        histogram_row = QHBoxLayout()
        histogram_row.addWidget(QLabel("Histogram of"))
        self.histogram_combo = QComboBox()
        self.histogram_combo.setToolTip("The element whose wt% per pixel is shown, per region")
        histogram_row.addWidget(self.histogram_combo, 1)
        stats_layout.addLayout(histogram_row)
        self.histogram_plot = DockPlot(self.viewer, min_height=170,
                                       redraw=lambda: self._draw_histograms())
        self.histogram_plot.setMaximumHeight(HISTOGRAM_MAX_HEIGHT)
        stats_layout.addWidget(self.histogram_plot)
        self.histograms: list[RegionHistogram] = []
        self._histogram_input: tuple[Any, list[Region]] | None = None
        self.histogram_combo.currentTextChanged.connect(lambda _t: self._draw_histograms())
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
            disconnect_edits(self._watched_region, self._region_edited)
        self._watched_region = layer
        if layer is not None:
            for name in ("data", "paint", "set_data"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self._region_edited)

    def _region_edited(self, event: Any = None) -> None:
        if str(getattr(event, "action", "")).lower().endswith(IN_PROGRESS_ACTIONS):
            return  # a shape being dragged: wait for the edit to finish
        self.update_statistics()

    def _region_layer(self) -> Any:
        name = self.region_combo.currentText()
        if name in ("", WHOLE_MAP_ITEM) or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def current_regions(self, cube_layer: Image, shape_hw: tuple[int, int]) -> list[Region]:
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
            rows, cols = result.image_shape
            regions = self.current_regions(cube_layer, (rows, cols))
            self.statistics = region_statistics(result, regions, source=_source_name(cube_layer))
        self._histogram_input = (result, regions) if result is not None else None
        self.stats_box.setTitle(f"Statistics ({getattr(result, 'unit', 'wt%')})")
        self._fill_table()
        self._fill_histogram_elements(result)
        self._draw_histograms()
        return self.statistics

    def _fill_histogram_elements(self, result: Any) -> None:
        elements = [str(e) for e in result.elements] if result is not None else []
        current = self.histogram_combo.currentText()
        shown = next((lyr.metadata.get("element") for lyr in self.viewer.layers
                      if lyr.visible and layer_kind(lyr) == KIND_CONCENTRATION), None)
        self.histogram_combo.blockSignals(True)
        self.histogram_combo.clear()
        self.histogram_combo.addItems(elements)
        # the element chosen before, else the map on show
        for choice in (current, shown):
            if choice in elements:
                self.histogram_combo.setCurrentText(choice)
                break
        self.histogram_combo.blockSignals(False)

    def _draw_histograms(self) -> None:
        """wt% per pixel of the chosen element, one step curve per region."""
        plot = self.histogram_plot
        plot.figure.clear()
        self.histograms = []
        element = self.histogram_combo.currentText()
        if self._histogram_input is not None and element:
            result, regions = self._histogram_input
            self.histograms = region_histograms(result, regions, element)
            with plot.themed():
                axes = plot.figure.add_subplot(111)
                for histogram in self.histograms:
                    axes.stairs(histogram.counts, histogram.edges, label=histogram.region)
                axes.set_xlabel(f"{element} ({result.unit})")
                axes.set_ylabel("pixels")
                if len(self.histograms) > 1:
                    axes.legend(fontsize=7, frameon=False, labelcolor=plot.text_colour)
        plot.draw_idle()

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
        header_px = present(self.table.horizontalHeader()).sizeHint().height()
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
            show_error(f"Export to {folder}: {one_line(exc)}")
            return []
        if written:
            show_info(f"Exported {len(written)} files to {folder}")
        else:
            show_info("Export cancelled; no files replaced")
        return written


    def show_side_by_side(self, on: bool) -> None:
        """The chosen cube's concentration maps of the current model in a labelled grid
        (``on``), or its first map alone."""
        layer = self.selected_cube_layer()
        maps = [] if layer is None else result_layers(self.viewer.layers, layer.name,
                                                      (KIND_CONCENTRATION,))
        show_maps_side_by_side(self.viewer, maps, on)

    # -- background mask ---------------------------------------------------
    @property
    def mask_below_counts(self) -> float:
        """The background threshold in counts (0 = no mask)."""
        return float(self.mask_spin.value())

    def total_counts_of(self, cube_layer: Image) -> np.ndarray | None:
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
        self, result: QuantResult, cube_layer: Image, mask_below_counts: float = 0.0
    ) -> list[Image]:
        """Add (or replace) the concentration, sigma and fit-quality layers of a result.

        A run on the same cube layer replaces the data of existing result
        layers in place (keeping the user's colormap and contrast choices
        only where the element is unchanged) instead of adding duplicates.
        Pixels with fewer than ``mask_below_counts`` total counts (from the
        cube's total-counts layer, else the counts the model read) become NaN
        in the concentration and uncertainty layers.
        """
        from napari_xrfquant.jobs import drive

        return list(drive(self.result_layer_steps(result, cube_layer, mask_below_counts)))

    def add_result_layers_stepwise(self, result: QuantResult, cube_layer: Image,
                                   mask_below_counts: float,
                                   then: Callable[[list[Image]], None]) -> None:
        """:meth:`add_result_layers` one layer per turn of the Qt event loop, then ``then``.

        A new layer costs napari 0.1-0.3 s (its controls, its vispy visual);
        eleven at once kept the window from repainting for seconds.
        """
        from qtpy.QtCore import QTimer

        steps = self.result_layer_steps(result, cube_layer, mask_below_counts)

        def step() -> None:
            try:
                next(steps)
            except StopIteration as done:
                added = list(done.value)
                # the rest in the next turn too: the statistics take another 50-100 ms
                QTimer.singleShot(STEP_PAUSE_MS, lambda: then(added))
                return
            QTimer.singleShot(STEP_PAUSE_MS, step)

        step()

    def result_layer_steps(self, result: QuantResult, cube_layer: Image,
                           mask_below_counts: float) -> Generator[None, None, list[Image]]:
        """The work of :meth:`add_result_layers`, pausing after each new layer."""
        frame = SpatialFrame.from_layer(cube_layer)
        total = self.total_counts_of(cube_layer)
        expected_hw = tuple(np.shape(result.concentrations)[:2])
        if total is None or total.shape != expected_hw:
            total = result.total_counts  # the counts the model read
        else:
            total = total * result.counts_scale  # the layer holds the data's own totals
        threshold = float(mask_below_counts) if total is not None else 0.0
        if threshold > 0:
            mask = background_mask(total, threshold)
            result = mask_background(result, mask, threshold)
        self.shown_result = result
        new_layers = result_layer_data(result, cube_layer.name, frame)
        # a re-run replaces this model's layers only: another model's stay beside them
        old = {result_key(lyr): lyr for lyr in result_layers(
            self.viewer.layers, cube_layer.name, model_id=str(result.model_id))}
        added: list[Any] = []
        first_run = not old
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
            # each new layer becomes the active one; the statistics follow once, after
            with self._statistics_held():
                added.append(self.viewer.add_image(data, **kwargs))
            yield
        for stale in old.values():
            self.viewer.layers.remove(stale)
        if first_run:  # a rerun keeps what the user has shown or hidden since
            yield from self._readable_view(added, cube_layer, str(result.model_id))
        return added

    @contextmanager
    def _statistics_held(self) -> Iterator[None]:
        """Changes of the active layer inside leave the statistics as they are."""
        self._adding_layers = True
        try:
            yield
        finally:
            self._adding_layers = False

    def _readable_view(self, added: list[Any], cube_layer: Any,
                       model_id: str) -> Generator[None, None, None]:
        """The first view of a result: one map with its colour bar, the cube hidden.

        ``result_layer_data`` shows the element whose map varies most; the cube
        and its total counts go under it and would wash it out, so they are
        hidden (the layer list shows them again); a scale bar is switched on.
        """
        total = total_counts_layer_name(cube_layer.name)
        yield
        for layer in self.viewer.layers:
            if layer.name in (cube_layer.name, total):
                layer.visible = False
            elif (layer_kind(layer) in RESULT_KINDS
                  and layer.metadata.get("source_layer") == cube_layer.name
                  and layer.metadata.get("model_id") != model_id):
                layer.visible = False  # another model's maps of this cube: one view at a time
        shown = [lyr for lyr in added if lyr.visible]
        for layer in shown:
            yield  # a colour bar's first drawing costs napari 0.2-0.5 s
            label_on_canvas(layer)
        yield
        self.viewer.canvas.overlays["scale_bar"].visible = True  # viewer.scale_bar: deprecated
        if shown:
            yield
            with self._statistics_held():  # the statistics follow once, after
                self.viewer.layers.selection.active = shown[0]


def _source_name(cube_layer: Any) -> str:
    """What results name as their source: the cube's file name, else the layer's name.

    The CLI names its outputs' source after the file too, so both exports agree.
    """
    path = cube_layer.metadata.get("source_path")
    return Path(path).name if path else str(cube_layer.name)


def disconnect_edits(layer: Layer, callback: Callable[..., object]) -> None:
    """Stop ``callback`` hearing the edits (data, paint) of a region layer."""
    for name in ("data", "paint", "set_data"):
        emitter = getattr(layer.events, name, None)
        if emitter is not None:
            emitter.disconnect(callback)



def _fmt(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.2f}"
