"""The spectrum inspector dock: measured vs reconstructed spectrum of a pixel or region.

Picking: with "Pick on click" ticked, a plain left click on the canvas (no
drag, so panning still works; only while the active layer is in pan/zoom
mode, so drawing shapes or painting labels does not pick) shows that pixel
of the chosen cube layer. "Region spectrum" sums the spectra inside the
selected shapes (all shapes when none is selected) or the selected label of
the chosen Shapes/Labels layer; drawing a shape or painting a label in that
layer updates the plot by itself. Only the clicked pixel is read from the file
(``Cube.spectrum``), so a click stays fast on lazy cubes.

The plot (:mod:`.spectrum_plot`) is napari-matplotlib's themed canvas with
matplotlib's toolbar (zoom, pan, save); "Export spectrum" writes the shown
spectra as CSV and the figure as PNG. Lines of the model's elements, and of
any elements typed in "Also mark", are marked and labelled. After Quantify the
composition shown is read again from the new maps.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._calibration_edit import calibration_edits
from napari_xrfquant._napari._layers import (
    SpatialFrame,
    cube_layers,
    element_colormaps,
    layer_kind,
)
from napari_xrfquant._napari._qt import (
    alive,
    ask_overwrite,
    one_line,
    refill_combo,
    tabify_when_docked,
)
from napari_xrfquant._napari._reader_preference import claim_hdf5_reader
from napari_xrfquant._napari._regions import chosen_regions, region_layer_names, regions_from_layer
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari._spectrum import (
    Composition,
    InspectedSpectrum,
    composition_from_layers,
    composition_from_model,
    composition_html,
    marked_lines,
    reconstructed_counts,
)
from napari_xrfquant._napari.widgets._number_edit import ElementsEdit
from napari_xrfquant._napari.widgets.spectrum_plot import SpectrumPlot
from napari_xrfquant.errors import XRFQuantError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    import napari
    from napari.layers import Image
    from qtpy.QtGui import QCloseEvent, QResizeEvent

#: A click that moves the mouse less than this many screen pixels is a click, not a drag.
CLICK_TOLERANCE_PX = 4.0
#: A dock at least this wide (under the canvas) has the controls beside the plot.
WIDE_DOCK_PX = 900
#: Width of the controls column then.
CONTROLS_WIDTH_PX = 380
#: Registry labels whose model has been warmed up in this session.
_WARMED: set[str] = set()


class SpectrumInspector(QWidget):
    """Dock widget plotting one pixel's (or region's) spectrum against its reconstruction.

    Parameters
    ----------
    napari_viewer
        The viewer (npe2 injects it).

    Attributes
    ----------
    last
        The spectrum on display (:class:`InspectedSpectrum`), or None.
    plot
        The :class:`~.spectrum_plot.SpectrumPlot`.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        tabify_when_docked(self)  # beside the plugin's other docks, not squeezed under
        self.viewer = napari_viewer
        self.last: InspectedSpectrum | None = None
        self._model: Any = None
        # what the plot shows, to show it again from new maps: ("pixel", (row, col)) or
        # ("region", (mask, region name)), with the cube layer's name
        self._picked: tuple[str, str, Any] | None = None
        claim_hdf5_reader()  # File > Open of an .h5 cube: no "Choose reader" dialog
        self._maps_added = QTimer(self)  # one refresh after Quantify's burst of layers
        self._maps_added.setSingleShot(True)
        self._maps_added.setInterval(50)
        self._maps_added.timeout.connect(self._show_again)
        self._watched_region: Any = None
        self._build()
        self._connect()
        self.refresh_layers()
        self.warm_up_worker = self._warm_up()

    def _warm_up(self) -> threading.Thread | None:
        """Run the selected model once in a background thread, so the first click is fast too.

        The simulator's tables and the fit-quality table take a second or two
        to build; done here while the user looks at the cube rather than on
        the first click. A plain daemon thread, not a napari worker: it must
        never hold a slot of the Qt thread pool that Quantify's worker needs.
        Each model is warmed up once per session.
        """
        label = model_registry.selected
        if label in _WARMED:
            return None
        _WARMED.add(label)

        def build() -> None:
            try:
                model = model_registry.load(label)
                # one dummy spectrum runs every lazy set-up: tables, simulator, fit quality
                spectrum = np.ones(len(model.energy_keV))
                composition = composition_from_model(spectrum, model.energy_keV, model)
                reconstructed_counts(composition, model, model.energy_keV, 1.0)
            except Exception:
                return  # a missing model is reported when it is used

        thread = threading.Thread(target=build, name="xrfquant-inspector-warm-up", daemon=True)
        thread.start()
        return thread

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        # controls and composition beside the plot in a wide dock (under the canvas),
        # above it in a narrow one (beside the canvas): see resizeEvent
        self._layout = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        controls = QWidget()
        layout = QVBoxLayout(controls)
        layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.cube_combo = QComboBox()
        form.addRow("Cube layer", self.cube_combo)
        options = QHBoxLayout()
        self.pick_checkbox = QCheckBox("Pick on click")
        self.pick_checkbox.setChecked(True)
        self.pick_checkbox.setToolTip(
            "Left-click a pixel (without dragging) to plot its spectrum; "
            "works while the active layer is in pan/zoom mode"
        )
        self.log_checkbox = QCheckBox("Log counts")
        self.log_checkbox.setChecked(True)
        options.addWidget(self.pick_checkbox)
        options.addWidget(self.log_checkbox)
        form.addRow("", options)
        region_row = QHBoxLayout()
        self.region_combo = QComboBox()
        self.region_button = QPushButton("Region spectrum")
        self.region_button.setToolTip(
            "Sum the spectra in the selected shapes (all shapes if none is selected) "
            "or in the selected label"
        )
        region_row.addWidget(self.region_combo, 1)
        region_row.addWidget(self.region_button)
        form.addRow("Region", region_row)
        mark_row = QHBoxLayout()
        self.mark_edit = ElementsEdit("", optional=True)
        self.mark_edit.setPlaceholderText("e.g. Fe, Pb")
        self.export_button = QPushButton("Export spectrum...")
        self.export_button.setToolTip("The shown spectra as CSV and the figure as PNG")
        self.export_button.setEnabled(False)
        mark_row.addWidget(self.mark_edit, 1)
        mark_row.addWidget(self.export_button)
        form.addRow("Also mark", mark_row)
        layout.addLayout(form)
        self.composition_label = QLabel("Click a pixel of the cube to see its spectrum.")
        self.composition_label.setWordWrap(True)
        layout.addWidget(self.composition_label)
        layout.addStretch(1)
        self._controls = controls
        self.plot = SpectrumPlot(self.viewer)
        self._layout.addWidget(controls)
        self._layout.addWidget(self.plot, 1)

    def set_wide(self, wide: bool) -> None:
        """Controls beside the plot (``wide``, a dock under the canvas) or above it."""
        self._layout.setDirection(QBoxLayout.Direction.LeftToRight if wide
                                  else QBoxLayout.Direction.TopToBottom)
        self._controls.setMaximumWidth(CONTROLS_WIDTH_PX if wide else 16_777_215)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        """Follow the dock's shape: side by side when wide, stacked when narrow."""
        self.set_wide(self.width() >= WIDE_DOCK_PX)
        super().resizeEvent(event)

    def _connect(self) -> None:
        self.log_checkbox.toggled.connect(lambda _on: self.redraw())
        self.mark_edit.textChanged.connect(
            lambda _text: self.redraw() if self.mark_edit.problem() is None else None)
        self.export_button.clicked.connect(self._export_clicked)
        self.region_button.clicked.connect(self.show_selected_region)
        self.region_combo.currentTextChanged.connect(self._watch_region_layer)
        events = self.viewer.layers.events
        events.inserted.connect(self.refresh_layers)
        events.inserted.connect(self._layer_added)
        events.removed.connect(self.refresh_layers)
        calibration_edits.changed.connect(self._calibration_edited)
        edited = self._calibration_edited
        self.destroyed.connect(lambda *_: calibration_edits.changed.disconnect(edited))
        self.viewer.mouse_drag_callbacks.append(self._on_mouse_press)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Stop listening to the viewer's mouse when the dock closes."""
        if self._on_mouse_press in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse_press)
        super().closeEvent(event)

    def refresh_layers(self, _event: object = None) -> None:
        """Refill the cube and region lists, keeping the current choices."""
        if not alive(self):
            return
        cubes = [lyr.name for lyr in cube_layers(self.viewer.layers)]
        refill_combo(self.cube_combo, cubes, last=True)
        regions = region_layer_names(self.viewer.layers)
        refill_combo(self.region_combo, regions, last=True)
        self._watch_region_layer(self.region_combo.currentText())
        self.region_button.setEnabled(bool(regions) and self.cube_combo.count() > 0)

    def _watch_region_layer(self, _name: str = "") -> None:
        """Plot a region's spectrum as soon as a shape is drawn or a label painted."""
        previous = self._watched_region
        layer = self.viewer.layers[_name] if _name in self.viewer.layers else None
        if layer is previous:
            return
        for watched, connect in ((previous, False), (layer, True)):
            if watched is None:
                continue
            for name in ("data", "paint"):
                emitter = getattr(watched.events, name, None)
                if emitter is not None:
                    (emitter.connect if connect else emitter.disconnect)(self._region_edited)
        self._watched_region = layer

    def _region_edited(self, event: Any = None) -> None:
        action = str(getattr(event, "action", "added")).lower()
        if action.endswith(("adding", "changing", "removing", "removed")):
            return  # wait for the edit to finish; nothing to show after a removal
        self.show_selected_region()

    # -- picking -----------------------------------------------------------
    def _on_mouse_press(self, viewer: Any, event: Any) -> Generator[None, None, None]:
        if not alive(self):
            # the dock was closed without closeEvent: stop listening
            viewer.mouse_drag_callbacks.remove(self._on_mouse_press)
            return
        if not self.pick_checkbox.isChecked() or event.button != 1:
            return
        active = viewer.layers.selection.active
        if active is not None and str(getattr(active, "mode", "pan_zoom")) != "pan_zoom":
            return
        start = np.asarray(event.pos, dtype=np.float64)
        yield
        moved = False
        while event.type == "mouse_move":
            moved = moved or np.hypot(*(np.asarray(event.pos) - start)) > CLICK_TOLERANCE_PX
            yield
        if not moved:
            self.pick_world(event.position)

    def selected_cube_layer(self) -> Any:
        """The cube layer chosen in the list, or None."""
        name = self.cube_combo.currentText()
        return next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == name), None)

    def pick_world(self, world_position: Sequence[float]) -> InspectedSpectrum | None:
        """Show the pixel of the chosen cube under a world position (as a click does)."""
        layer = self.selected_cube_layer()
        if layer is None:
            return None
        point = np.asarray(world_position, dtype=np.float64)[-layer.ndim :]
        data_point = np.asarray(layer.world_to_data(point))
        row, col = (int(np.round(v)) for v in data_point[-2:])
        height, width = layer.data.shape[-2:]
        if not (0 <= row < height and 0 <= col < width):
            return None
        return self.show_pixel(row, col)

    def show_pixel(self, row: int, col: int,
                   cube_layer: Image | None = None) -> InspectedSpectrum | None:
        """Plot pixel ``(row, col)`` of ``cube_layer`` (default: the chosen one).

        Returns
        -------
        InspectedSpectrum or None
            What is plotted; None if there is no cube layer.
        """
        layer = cube_layer or self.selected_cube_layer()
        if layer is None:
            return None
        cube = layer.metadata.get("cube")
        if cube is not None:
            measured = np.asarray(cube.spectrum(row, col), dtype=np.float64)
        else:
            measured = np.asarray(layer.data[:, row, col], dtype=np.float64)
        composition = composition_from_layers(self.viewer.layers, layer.name, (row, col))
        self._picked = ("pixel", layer.name, (row, col))
        return self._show(layer, f"pixel ({row}, {col})", measured, composition, 1)

    def show_region(self, mask: np.ndarray, name: str,
                    cube_layer: Image | None = None) -> InspectedSpectrum | None:
        """Plot the spectrum summed over ``mask`` (boolean ``(H, W)``) of the cube layer."""
        layer = cube_layer or self.selected_cube_layer()
        if layer is None:
            return None
        mask = np.asarray(mask, dtype=bool)
        cube = layer.metadata.get("cube")
        if cube is not None:
            measured = np.asarray(cube.region_spectrum(mask), dtype=np.float64)
        else:
            measured = np.asarray(layer.data)[:, mask].sum(axis=1, dtype=np.float64)
        composition = composition_from_layers(self.viewer.layers, layer.name, mask)
        self._picked = ("region", layer.name, (mask, name))
        n_pixels = int(mask.sum())
        return self._show(layer, f"{name} ({n_pixels} px)", measured, composition, n_pixels)

    def show_selected_region(self) -> Any:
        """Plot the summed spectrum of the selected shapes / label of the region layer."""
        from napari.utils.notifications import show_warning

        layer = self.selected_cube_layer()
        name = self.region_combo.currentText()
        if layer is None or name not in self.viewer.layers:
            return None
        region_layer = self.viewer.layers[name]
        shape_hw = (int(layer.data.shape[-2]), int(layer.data.shape[-1]))
        regions = regions_from_layer(region_layer, SpatialFrame.from_layer(layer), shape_hw)
        chosen = chosen_regions(region_layer, regions)
        if not chosen:
            show_warning(f"{name}: draw a shape or paint a label first")
            return None
        mask = np.logical_or.reduce([r.mask for r in chosen])
        label = chosen[0].name if len(chosen) == 1 else f"{name} ({len(chosen)} regions)"
        return self.show_region(mask, label, layer)

    # -- computing and plotting -------------------------------------------
    def _model_for(self, composition: Composition | None) -> Any:
        if composition is not None and composition.model_id:
            found = model_registry.find_loaded(composition.model_id)
            if found is not None:
                return found
        try:
            return model_registry.load(model_registry.selected)
        except Exception as exc:
            from napari.utils.notifications import show_warning

            show_warning(f"Spectrum inspector: no model ({str(exc).splitlines()[0]})")
            return None

    def _show(
        self,
        layer: Any,
        label: str,
        measured: np.ndarray,
        composition: Composition | None,
        n_pixels: int,
    ) -> InspectedSpectrum:
        from napari.utils.notifications import show_warning

        energy_keV = np.asarray(layer.metadata["energy_keV"], dtype=np.float64)
        model = self._model_for(composition)
        reconstructed = None
        if model is not None:
            try:
                if composition is None and measured.sum() > 0:
                    composition = composition_from_model(measured, energy_keV, model)
                # a pixel masked as background has no composition to simulate
                if composition is not None and not composition.masked:
                    reconstructed = reconstructed_counts(
                        composition, model, energy_keV, float(measured.sum())
                    )
            except (XRFQuantError, ImportError, ValueError) as exc:
                show_warning(f"Spectrum inspector: {str(exc).splitlines()[0]}")
        self.last = InspectedSpectrum(
            label, energy_keV, measured, reconstructed, composition, n_pixels
        )
        self._model = model
        self.redraw()
        return self.last

    def redraw(self) -> None:
        """Plot :attr:`last` (log or linear counts) with its line markers, and the composition."""
        spectrum = self.last
        lines, colours = ([], {}) if spectrum is None else self._marked(spectrum)
        self.plot.show(spectrum, lines, colours, self.log_checkbox.isChecked())
        self.export_button.setEnabled(spectrum is not None)
        if spectrum is not None:
            self.composition_label.setText(composition_html(spectrum))

    def _marked(self, spectrum: InspectedSpectrum) -> tuple[list[Any], dict[str, str]]:
        """Lines to mark -- the model's elements and those typed -- and their colormaps."""
        model = self._model
        elements = list(model.elements) if model is not None else []
        if self.mark_edit.problem() is None:
            elements += [e for e in self.mark_edit.elements() if e not in elements]
        if not elements:
            return [], {}
        energy = spectrum.energy_keV
        try:  # without a model, the lines the reference set-up excites
            lines = marked_lines(elements, model.instrument if model is not None else None,
                                 (float(energy[0]), float(energy[-1])))
        except (ImportError, AttributeError, XRFQuantError):
            return [], {}  # no physics tables, or a beam below the typed element's edges
        return lines, element_colormaps(elements)

    # -- after Quantify, and export ---------------------------------------------
    def _layer_added(self, event: Any) -> None:
        """New maps of the shown cube: read the composition again (once per burst)."""
        layer = getattr(event, "value", None)
        if (self._picked is not None and layer is not None and layer_kind(layer)
                and layer.metadata.get("source_layer") == self._picked[1]):
            self._maps_added.start()

    def _calibration_edited(self, name: str) -> None:
        """A new energy axis for the shown cube: plot it on that axis at once."""
        if alive(self) and self._picked is not None and self._picked[1] == name:
            self._show_again()

    def _show_again(self) -> None:
        if self._picked is None or not alive(self):
            return
        kind, name, where = self._picked
        layer = next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == name), None)
        if layer is None:
            return
        if kind == "pixel":
            row, col = where
            self.show_pixel(row, col, layer)
        else:
            mask, region = where
            self.show_region(mask, region, layer)

    def export(self, path: str | Path, overwrite: bool | None = None) -> list[Path]:
        """Write the shown spectra (``.csv``) and the figure (``.png``); ask before replacing."""
        from napari.utils.notifications import show_error, show_info

        existing = [p for p in self.plot.export_paths(path) if p.exists()]
        if existing and not (overwrite if overwrite is not None else ask_overwrite(self, existing)):
            return []
        try:
            written = self.plot.export(path, overwrite=True)
        except (OSError, ValueError) as exc:
            show_error(f"Export spectrum: {one_line(exc)}")
            return []
        show_info(f"Spectrum written: {', '.join(p.name for p in written)}")
        return written

    def _export_clicked(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        from napari_xrfquant.results import safe_stem

        suggested = safe_stem(self.last.label if self.last else "spectrum")
        path, _ = QFileDialog.getSaveFileName(self, "Export spectrum (CSV + PNG)",
                                              f"{suggested}.csv", "CSV (*.csv)")
        if path:
            self.export(path)
