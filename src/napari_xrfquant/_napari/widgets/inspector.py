"""The spectrum inspector dock: measured vs reconstructed spectrum of a pixel or region.

Picking: with "Pick on click" ticked, a plain left click on the canvas (no
drag, so panning still works; only while the active layer is in pan/zoom
mode, so drawing shapes or painting labels does not pick) shows that pixel
of the chosen cube layer. "Region spectrum" sums the spectra inside the
selected shapes (all shapes when none is selected) or the selected label of
the chosen Shapes/Labels layer; drawing a shape or painting a label in that
layer updates the plot by itself. Only the clicked pixel is read from the file
(``Cube.spectrum``), so a click stays fast on lazy cubes.

The plot follows napari's theme (dark or light), like napari-matplotlib's
base widget.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_xrfquant._napari._layers import (
    SpatialFrame,
    cube_layers,
    element_colormaps,
)
from napari_xrfquant._napari._qt import alive, refill_combo
from napari_xrfquant._napari._regions import region_kind, region_layer_names, regions_from_layer
from napari_xrfquant._napari._registry import model_registry
from napari_xrfquant._napari._spectrum import (
    Composition,
    InspectedSpectrum,
    composition_from_layers,
    composition_from_model,
    marked_lines,
    reconstructed_counts,
)
from napari_xrfquant._napari._theme import is_dark, style_axes, theme_colours

if TYPE_CHECKING:  # pragma: no cover
    import napari

#: Matplotlib colours of napari's colormap names, so markers match the map layers.
MARKER_COLOURS = {
    "yellow": "#e6c619",
    "cyan": "#19c3e6",
    "magenta": "#e619c3",
    "green": "#2fbf4a",
    "blue": "#4a7bff",
    "red": "#ff4a4a",
    "gray": "#a0a0a0",
}
#: A click that moves the mouse less than this many screen pixels is a click, not a drag.
CLICK_TOLERANCE_PX = 4.0
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
    measured_line, reconstructed_line
        The matplotlib lines of the plot (None before the first pick).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.last: InspectedSpectrum | None = None
        self.measured_line: Any = None
        self.reconstructed_line: Any = None
        self._model: Any = None
        self._watched_region: Any = None
        self._build()
        self._connect()
        self.refresh_layers()
        self.apply_theme()
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
        layout = QVBoxLayout(self)
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
        layout.addLayout(form)

        self.figure = Figure(figsize=(5, 3.2), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.axes = self.figure.add_subplot(111)
        layout.addWidget(self.canvas, 1)
        self.composition_label = QLabel("Click a pixel of the cube to see its spectrum.")
        self.composition_label.setWordWrap(True)
        layout.addWidget(self.composition_label)

    def _connect(self) -> None:
        self.log_checkbox.toggled.connect(lambda _on: self.redraw())
        self.region_button.clicked.connect(self.show_selected_region)
        self.region_combo.currentTextChanged.connect(self._watch_region_layer)
        events = self.viewer.layers.events
        events.inserted.connect(self.refresh_layers)
        events.removed.connect(self.refresh_layers)
        self.viewer.events.theme.connect(lambda _e: self.apply_theme())
        self.viewer.mouse_drag_callbacks.append(self._on_mouse_press)

    def closeEvent(self, event: Any) -> None:
        """Stop listening to the viewer's mouse when the dock closes."""
        if self._on_mouse_press in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse_press)
        super().closeEvent(event)

    def refresh_layers(self, _event: Any = None) -> None:
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

    def pick_world(self, world_position: Any) -> InspectedSpectrum | None:
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

    def show_pixel(self, row: int, col: int, cube_layer: Any = None) -> InspectedSpectrum | None:
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
        return self._show(layer, f"pixel ({row}, {col})", measured, composition, 1)

    def show_region(self, mask: np.ndarray, name: str, cube_layer: Any = None) -> Any:
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
        chosen = _chosen_regions(region_layer, regions)
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

        from napari_xrfquant.errors import XRFQuantError

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
        """Draw :attr:`last` (log or linear counts), line markers and the composition."""
        ax = self.axes
        ax.clear()
        self.measured_line = self.reconstructed_line = None
        spectrum = self.last
        if spectrum is None:
            self.canvas.draw_idle()
            return
        colours = self._theme_colours()
        (self.measured_line,) = ax.plot(
            spectrum.energy_keV,
            spectrum.measured,
            drawstyle="steps-mid",
            color=colours["measured"],
            linewidth=0.9,
            label="measured",
        )
        if spectrum.reconstructed is not None:
            (self.reconstructed_line,) = ax.plot(
                spectrum.energy_keV,
                spectrum.reconstructed,
                color=colours["reconstructed"],
                linewidth=1.2,
                label="reconstructed",
            )
        self._draw_markers(spectrum, colours)
        if self.log_checkbox.isChecked():
            ax.set_yscale("log")
            top = max(float(np.max(spectrum.measured)), 1.0)
            ax.set_ylim(0.5, top * 3.0)
        else:
            ax.set_yscale("linear")
            ax.set_ylim(bottom=0.0)
        ax.set_xlim(float(spectrum.energy_keV[0]), float(spectrum.energy_keV[-1]))
        ax.set_xlabel("energy (keV)")
        ax.set_ylabel("counts per channel")
        ax.set_title(spectrum.label, fontsize=9)
        ax.legend(loc="upper right", fontsize=8, frameon=False, labelcolor=colours["text"])
        style_axes(self.axes, colours)
        self.canvas.draw_idle()
        self.composition_label.setText(_composition_html(spectrum))

    def _draw_markers(self, spectrum: InspectedSpectrum, colours: dict[str, str]) -> None:
        model = self._model
        if model is None:
            return
        elements = list(model.elements)
        try:
            lines = marked_lines(
                elements,
                model.instrument,
                (float(spectrum.energy_keV[0]), float(spectrum.energy_keV[-1])),
            )
        except (ImportError, AttributeError):
            return  # no physics tables yet: the spectra are still worth seeing
        cmap = element_colormaps(elements)
        transform = self.axes.get_xaxis_transform()
        labelled: set[str] = set()
        for line in sorted(lines, key=lambda ln: -float(ln.relative_intensity)):
            colour = MARKER_COLOURS.get(cmap.get(line.element, ""), colours["text"])
            energy = float(line.energy_keV)
            self.axes.axvline(energy, color=colour, linewidth=0.6, alpha=0.6, linestyle=":")
            group = str(line.label).split()[0] + str(line.label).split()[-1][:1]
            if group not in labelled:  # one label per element and shell (e.g. "Au L")
                labelled.add(group)
                self.axes.text(
                    energy, 0.98, str(line.label), transform=transform, rotation=90,
                    va="top", ha="right", fontsize=7, color=colour,
                )

    # -- theme -------------------------------------------------------------
    def _theme_colours(self) -> dict[str, str]:
        colours = theme_colours(self.viewer)
        dark = is_dark(colours["background"])
        return {
            **colours,
            "measured": "#d0d0d0" if dark else "#303030",
            "reconstructed": "#ff7f0e",
        }

    def apply_theme(self) -> None:
        """Match the figure to napari's current theme and redraw."""
        if not alive(self):
            return
        colours = self._theme_colours()
        self.figure.set_facecolor(colours["background"])
        style_axes(self.axes, colours)
        self.redraw()


def _chosen_regions(layer: Any, regions: list[Any]) -> list[Any]:
    """Selected shapes (all if none), or the selected label's region (all if absent)."""
    kind = region_kind(layer)
    if kind == "Shapes":
        selected = sorted(getattr(layer, "selected_data", set()) or ())
        picked = [regions[i] for i in selected if i < len(regions)]
        return picked or regions
    if kind == "Labels":
        names = list(layer.metadata.get("region_names") or ())
        label = int(getattr(layer, "selected_label", 0))
        wanted = names[label] if label < len(names) else f"{layer.name} label {label}"
        picked = [r for r in regions if r.name == wanted]
        return picked or regions
    return regions


def _composition_html(spectrum: InspectedSpectrum) -> str:
    composition = spectrum.composition
    counts = f"{spectrum.measured.sum():,.0f} counts"
    if composition is None:
        return f"{spectrum.label}: {counts}; no composition (no model)"
    if composition.masked:
        threshold = composition.mask_below_counts
        why = f"below {threshold:,.0f} counts" if threshold > 0 else "no value in the maps"
        return f"{spectrum.label}: {counts}; masked as background ({why}), no composition"
    source = "maps" if composition.source == "layers" else "model on this spectrum"
    rows = []
    for i, element in enumerate(composition.elements):
        wt = composition.wt_percent[i]
        sigma = composition.sigma_wt_percent
        err = f" ± {sigma[i]:.2f}" if sigma is not None and np.isfinite(sigma[i]) else ""
        rows.append(f"<tr><td><b>{element}</b></td><td align='right'>{wt:6.2f}{err}</td></tr>")
    return (
        f"{spectrum.label}, {counts}; wt% from the {source}:"
        f"<table cellspacing='4'>{''.join(rows)}</table>"
    )
