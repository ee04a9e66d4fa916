"""The spectrum inspector's plot: measured vs reconstructed counts with labelled lines.

On napari-matplotlib's themed canvas, with matplotlib's navigation toolbar
(zoom to a rectangle, pan, home, save). Every marked line is labelled; labels
that would overlap go to lower rows (:func:`~napari_xrfquant._napari._spectrum.label_rows`),
laid out again for the visible range whenever the user zooms, pans or resizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._napari._spectrum import InspectedSpectrum, label_rows, line_label
from napari_xrfquant._napari.widgets._plot import DockPlot

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer

    from napari_xrfquant.physics.lines import Line

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
#: Font size of the line labels (points).
LABEL_FONT_PT = 7.0
#: Part of the axes' height the label rows may take, from the top.
LABEL_BAND = 0.8
#: Space around the axes for tick labels, axis labels and title (left, right, bottom, top; px).
MARGINS_PX = (64, 12, 42, 22)


class SpectrumPlot(DockPlot):
    """Measured and reconstructed spectrum, line markers and labels.

    Attributes
    ----------
    axes
        The one Axes.
    measured_line, reconstructed_line
        The plotted lines (None before anything is shown).
    label_artists
        The line labels now on the plot.
    """

    def __init__(self, viewer: Viewer) -> None:
        super().__init__(viewer, min_height=100, redraw=self.redraw)
        self.spectrum: InspectedSpectrum | None = None
        self.lines: list[Any] = []
        self.colours: dict[str, str] = {}
        self.log = True
        self.measured_line: Any = None
        self.reconstructed_line: Any = None
        self.label_artists: list[Any] = []
        self._marker_artists: list[Any] = []
        self._marked_key: tuple[Any, ...] | None = None
        self._laid_out_for: tuple[float, ...] | None = None
        # margins fixed in screen pixels: the constrained layout measured every tick
        # label at every draw (about 0.3 s a draw on this project's machines)
        self.figure.set_layout_engine("none")
        self._new_axes()
        self.canvas.mpl_connect("resize_event", lambda _event: self._set_margins())
        # the labels are laid out for the axes' size on screen, known once drawn
        self.canvas.mpl_connect("draw_event", self._drawn)

    def _set_margins(self) -> None:
        width, height = self.figure.get_size_inches() * self.figure.dpi
        if width > 2 * sum(MARGINS_PX[:2]) and height > 2 * sum(MARGINS_PX[2:]):
            left, right, bottom, top = MARGINS_PX
            # set on the Axes: the figure's placeholder layout engine ignores subplots_adjust
            self.axes.set_position([left / width, bottom / height,
                                    1 - (left + right) / width, 1 - (bottom + top) / height])

    def _new_axes(self) -> None:
        """A fresh Axes in the theme's style, with the measured and reconstructed lines."""
        self.figure.clear()
        with self.themed():
            self.axes = ax = self.figure.add_subplot(111)
            (self.measured_line,) = ax.plot(
                [], [], drawstyle="steps-mid", linewidth=0.9, label="measured",
                color="#303030" if self.light_background else "#d0d0d0")
            (self.reconstructed_line,) = ax.plot([], [], color="#ff7f0e", linewidth=1.2,
                                                 label="reconstructed")
            ax.set_xlabel("energy (keV)")
            ax.set_ylabel("counts per channel")
            self._title = ax.set_title("", fontsize=9)
            ax.legend(loc="upper right", fontsize=8, frameon=False, labelcolor=self.text_colour)
        self._set_margins()
        self.label_artists, self._marker_artists = [], []
        self._marked_key = self._laid_out_for = None
        self._energy_range: tuple[float, float] | None = None
        # zoom and pan change the range: lay the labels out again for it
        ax.callbacks.connect("xlim_changed", lambda _ax: self.place_labels())
        ax.set_visible(self.spectrum is not None)  # no empty axes with meaningless ticks

    def show(self, spectrum: InspectedSpectrum | None, lines: list[Line],
             colours: dict[str, str], log: bool) -> None:
        """Plot ``spectrum`` with markers for ``lines`` (``physics.Line``) in ``colours``.

        Only what changed is redone: a click on another pixel of the same cube
        sets the lines' data and keeps the markers, labels and zoom.
        """
        self.spectrum, self.lines, self.colours, self.log = spectrum, lines, colours, log
        self._update()

    def redraw(self) -> None:
        """Draw everything again in the current theme (after a theme change)."""
        self._new_axes()
        self._update()

    def _update(self) -> None:
        ax, spectrum = self.axes, self.spectrum
        ax.set_visible(spectrum is not None)  # no empty axes with meaningless ticks
        self.reconstructed_line.set_visible(
            spectrum is not None and spectrum.reconstructed is not None)
        if spectrum is None:
            self._title.set_text("")
            self.draw_idle()
            return
        energy = spectrum.energy_keV
        self.measured_line.set_data(energy, spectrum.measured)
        if spectrum.reconstructed is not None:
            self.reconstructed_line.set_data(energy, spectrum.reconstructed)
        self._title.set_text(spectrum.label)
        scale = "log" if self.log else "linear"
        if ax.get_yscale() != scale:
            with self.themed():  # new tick labels take the theme's colours
                ax.set_yscale(scale)
        top = max(float(np.max(spectrum.measured)), 1.0)
        ax.set_ylim(*((0.5, top * 3.0) if self.log else (0.0, top * 1.05)))
        self._draw_markers()
        energy_range = (float(energy[0]), float(energy[-1]))
        if energy_range != self._energy_range:  # another cube or calibration: its full range
            self._energy_range = energy_range
            ax.set_xlim(*energy_range)  # lays the labels out (xlim_changed)
        else:
            self.place_labels() if self._laid_out_for is None else self.draw_idle()

    def _draw_markers(self) -> None:
        key: tuple[Any, ...] = tuple(
            (str(ln.element), str(ln.label), float(ln.energy_keV)) for ln in self.lines)
        key += tuple(sorted(self.colours.items()))
        if key == self._marked_key:
            return
        for artist in self._marker_artists:
            artist.remove()
        self._marker_artists = [
            self.axes.axvline(float(line.energy_keV), color=self._colour(line), linewidth=0.6,
                              alpha=0.6, linestyle=":")
            for line in self.lines]
        self._marked_key = key
        self._laid_out_for = None  # new lines: new labels

    def _drawn(self, _event: Any) -> None:
        if self._geometry() != self._laid_out_for:
            self.place_labels()

    def _geometry(self) -> tuple[float, ...]:
        box = self.axes.get_window_extent()
        return (round(box.width), round(box.height), *self.axes.get_xlim())

    def _colour(self, line: Any) -> str:
        return MARKER_COLOURS.get(self.colours.get(str(line.element), ""), self.text_colour)

    def place_labels(self) -> None:
        """Label every marked line in view, in rows so that no two labels overlap."""
        for artist in self.label_artists:
            artist.remove()
        self.label_artists = []
        ax = self.axes
        self._laid_out_for = self._geometry()
        if self.spectrum is None or not self.lines:
            self.draw_idle()
            return
        box = ax.get_window_extent()
        low, high = ax.get_xlim()
        if box.width <= 1 or box.height <= 1 or high <= low:
            return
        font_px = LABEL_FONT_PT * self.figure.dpi / 72.0
        texts = [line_label(line) for line in self.lines]
        # a label written upwards is one line of text wide and its length tall
        gap_keV = 1.5 * font_px * (high - low) / box.width
        row_height = (max(len(t) for t in texts) * 0.7 * font_px + 6.0) / box.height
        n_rows = max(1, int(LABEL_BAND / row_height))
        visible = [i for i, line in enumerate(self.lines)
                   if low <= float(line.energy_keV) <= high]
        # the strongest lines get the top row
        visible.sort(key=lambda i: -float(self.lines[i].relative_intensity))
        rows = label_rows([float(self.lines[i].energy_keV) for i in visible], gap_keV, n_rows)
        transform = ax.get_xaxis_transform()
        for i, row in zip(visible, rows, strict=True):
            if row is None:
                continue
            line = self.lines[i]
            self.label_artists.append(ax.text(
                float(line.energy_keV), 0.98 - row * row_height, texts[i], transform=transform,
                rotation=90, va="top", ha="center", fontsize=LABEL_FONT_PT,
                color=self._colour(line), clip_on=True))
        self.draw_idle()

    @staticmethod
    def export_paths(path: str | Path) -> tuple[Path, Path]:
        """The CSV and PNG files :meth:`export` writes for ``path`` (any suffix)."""
        stem = Path(path).with_suffix("")
        return stem.with_suffix(".csv"), stem.with_suffix(".png")

    def export(self, path: str | Path, overwrite: bool = False) -> list[Path]:
        """Write the shown spectra as ``<path>.csv`` and the figure as ``<path>.png``.

        Raises
        ------
        FileExistsError
            When a file exists and ``overwrite`` is False (nothing is written then).
        """
        from napari_xrfquant._files import atomic_path
        from napari_xrfquant.results.spectra import write_spectra_csv

        spectrum = self.spectrum
        if spectrum is None:
            raise ValueError("no spectrum on display")
        csv, png = self.export_paths(path)
        if not overwrite:
            for target in (csv, png):
                if target.exists():
                    raise FileExistsError(f"{target}: exists; choose another name")
        columns = {"measured_counts": spectrum.measured}
        if spectrum.reconstructed is not None:
            columns["reconstructed_counts"] = spectrum.reconstructed
        notes = [f"spectrum: {spectrum.label}", f"pixels summed: {spectrum.n_pixels}"]
        composition = spectrum.composition
        if composition is not None and not composition.masked:
            notes.append(f"model: {composition.model_id}")
            notes.append("wt%: " + ", ".join(
                f"{e} {w:.3f}" for e, w in zip(composition.elements, composition.wt_percent,
                                                strict=True)))
        write_spectra_csv(csv, spectrum.energy_keV, columns, notes, overwrite=True)
        with atomic_path(png, overwrite=True) as tmp:
            # the canvas is transparent on the dock; a file needs the theme's background
            self.figure.savefig(tmp, format="png", dpi=150, facecolor=self.background_colour)
        return [csv, png]
