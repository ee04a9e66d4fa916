"""The Quantify dock's results panel: the maps as layers, region statistics, export.

A part the Quantify dock (:class:`~napari_xrfquant._napari.widgets.quantify.QuantifyWidget`)
is built from: it reads the dock's choices (the cube, the background threshold,
whether a run goes on) through the callables it is given; the statistics and
the files are the core's (:mod:`napari_xrfquant.results`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    SpatialFrame,
    layer_kind,
)
from napari_xrfquant._napari._qt import ask_overwrite, one_line, present, refill_combo
from napari_xrfquant._napari._regions import region_layer_names, regions_from_layer
from napari_xrfquant._napari.widgets._plot import DockPlot
from napari_xrfquant.results import (
    LAYOUTS,
    QuantResult,
    Region,
    RegionHistogram,
    RegionStatistics,
    export_result,
    region_histograms,
    region_statistics,
    whole_map,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer
    from napari.layers import Image, Layer


WHOLE_MAP_ITEM = "whole map"
#: Table rows shown without scrolling (one region of the bundled 5-element model).
TABLE_VISIBLE_ROWS = 5
#: Tallest the histogram plot grows (px): the table above it stays in view.
HISTOGRAM_MAX_HEIGHT = 260
#: Shapes data events sent while an edit is still under way (napari >= 0.5).
IN_PROGRESS_ACTIONS = ("adding", "changing", "removing")


class ResultsPanel(QWidget):
    """The region statistics of a cube's maps (table, histograms) and their export.

    Parameters
    ----------
    viewer
        The viewer holding the maps and the region layers.
    cube_layer
        The cube layer the dock has chosen, or None.

    Attributes
    ----------
    statistics
        The region statistics shown in the table.
    confirm_overwrite
        Called with the existing files before an export replaces them; a
        dialog by default, replaceable in tests.
    """

    def __init__(self, viewer: Viewer, cube_layer: Callable[[], Image | None]) -> None:
        super().__init__()
        self.viewer = viewer
        self.selected_cube_layer = cube_layer
        self.statistics: list[RegionStatistics] = []
        self.confirm_overwrite: Callable[[list[Path]], bool] = lambda paths: ask_overwrite(
            self, paths)
        self._watched_region: Layer | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._build(layout)
        self.region_combo.currentTextChanged.connect(self._region_chosen)
        self.export_browse.clicked.connect(self._browse_export_folder)
        self.export_button.clicked.connect(self._export_clicked)

    def _build(self, layout: QVBoxLayout) -> None:
        """The statistics table and the export form."""
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
    def refresh_region_layers(self) -> None:
        """Refill the region list: whole map plus every Shapes and Labels layer."""
        refill_combo(self.region_combo, [WHOLE_MAP_ITEM, *region_layer_names(self.viewer.layers)])
        self._watch_region_layer()

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
        self.stats_box.setTitle(_statistics_title(result))
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


def _statistics_title(result: QuantResult | None) -> str:
    """The statistics box's title: the maps' unit, and the share of a standard's scale
    every value carries beside its own sigma (a thin film's)."""
    unit = getattr(result, "unit", "wt%")
    shared = float(getattr(result, "calibration_sigma_percent", 0.0) or 0.0)
    return f"Statistics ({unit}; ±{shared:.1f} % from the standard's scale)" if shared else \
        f"Statistics ({unit})"


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
