"""The docks' matplotlib figures: napari-matplotlib's canvas, toolbar and theming.

:class:`DockPlot` is napari-matplotlib's :class:`BaseNapariMPLWidget` (a
canvas with matplotlib's navigation toolbar -- pan, zoom, home, save as PNG --
with icons and colours that follow napari's theme) plus what the three plots
of this plugin (spectrum, loss curves, calibration) all need: drawing inside
the theme's style so that ticks, labels and legends take its colours, a
redraw when the theme changes, and a canvas of a readable minimum height.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib.style as mplstyle
from napari_matplotlib.base import BaseNapariMPLWidget

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer


class DockPlot(BaseNapariMPLWidget):
    """A themed matplotlib figure with a navigation toolbar, for a dock.

    Parameters
    ----------
    viewer
        The napari viewer (or napari's proxy of it) whose theme the plot follows.
    min_height
        Minimum height of the canvas in screen pixels.
    redraw
        Called (without arguments) after a theme change to draw the figure again.
    """

    def __init__(self, viewer: Viewer, min_height: int = 220,
                 redraw: Callable[[], None] | None = None) -> None:
        super().__init__(viewer)
        self.canvas.setMinimumHeight(min_height)
        self.layout().setContentsMargins(0, 0, 0, 0)
        self._redraw = redraw
        self.destroyed.connect(lambda *_: _disconnect(viewer, self._on_napari_theme_changed))

    @contextmanager
    def themed(self) -> Iterator[None]:
        """Matplotlib's style for napari's theme: create axes, text and legends inside it."""
        with mplstyle.context(self.napari_theme_style_sheet):
            yield

    @property
    def text_colour(self) -> str:
        """The theme's text colour (for artists given a colour explicitly)."""
        return str(self.napari_theme_style_sheet["text.color"])

    @property
    def background_colour(self) -> str:
        """The theme's background colour (the docks' and a saved figure's)."""
        from napari.utils.theme import get_theme

        return str(get_theme(self.viewer.theme).background.as_hex())

    @property
    def light_background(self) -> bool:
        """Whether the theme's background is light."""
        return bool(self._napari_theme_has_light_bg())

    def draw(self) -> None:
        """Render now; a redraw may arrive after the dock was closed."""
        try:
            self.canvas.draw()
        except RuntimeError as exc:
            if "has been deleted" not in str(exc):
                raise

    def draw_idle(self) -> None:
        """Render when Qt is next idle."""
        self.canvas.draw_idle()

    def _on_napari_theme_changed(self, event: Any) -> None:
        try:
            super()._on_napari_theme_changed(event)
        except RuntimeError:  # the dock is gone: nothing to restyle
            return
        if self._redraw is not None:
            self._redraw()


def _disconnect(viewer: Any, callback: Any) -> None:
    try:
        viewer.events.theme.disconnect(callback)
    except Exception:  # the viewer may be gone already
        pass
