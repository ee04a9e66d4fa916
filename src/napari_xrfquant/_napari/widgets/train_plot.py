"""Live training and validation loss curves in a dock (matplotlib, napari theme).

A :class:`FigureCanvasQTAgg` with two lines, extended once per epoch; the
figure follows the viewer's theme (background, text) like napari-matplotlib.
"""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from napari_xrfquant._napari._theme import style_axes, theme_colours


class LossCanvas(FigureCanvasQTAgg):
    """Training and validation loss per epoch (log scale).

    Parameters
    ----------
    viewer
        The napari viewer whose theme the figure follows (None: dark theme).
    """

    def __init__(self, viewer: Any = None) -> None:
        self.figure = Figure(figsize=(4.0, 2.4), layout="constrained")
        super().__init__(self.figure)
        self.viewer = viewer
        self.axes = self.figure.add_subplot(111)
        self.epochs: list[int] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        (self.train_line,) = self.axes.plot([], [], "-o", ms=3, label="training", color="#1f77b4")
        (self.val_line,) = self.axes.plot([], [], "-o", ms=3, label="validation", color="#ff7f0e")
        self.axes.set_xlabel("epoch")
        self.axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.axes.set_ylabel("loss")
        self.axes.set_yscale("log")
        self.setMinimumHeight(180)
        self.apply_theme()
        if viewer is not None:
            viewer.events.theme.connect(self._theme_changed)
            self.destroyed.connect(lambda *_: _disconnect(viewer, self._theme_changed))

    def _theme_changed(self, _event: Any = None) -> None:
        self.apply_theme()

    def draw(self) -> None:
        """Render; a redraw queued by ``draw_idle`` may fire after the dock was closed."""
        try:
            super().draw()
        except RuntimeError as exc:
            if "has been deleted" not in str(exc):
                raise

    def clear(self) -> None:
        """Forget all points (a new run starts)."""
        self.epochs.clear()
        self.train_loss.clear()
        self.val_loss.clear()
        self._update()

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float) -> None:
        """Append one epoch's losses and redraw."""
        self.epochs.append(int(epoch))
        self.train_loss.append(float(train_loss))
        self.val_loss.append(float(val_loss))
        self._update()

    def _update(self) -> None:
        self.train_line.set_data(self.epochs, self.train_loss)
        self.val_line.set_data(self.epochs, self.val_loss)
        positive = [v for v in self.train_loss + self.val_loss if v > 0]
        # log axes need positive values; a loss can be negative (Gaussian NLL)
        self.axes.set_yscale("log" if positive and len(positive) == 2 * len(self.epochs) else
                             "linear")
        self.axes.relim()
        self.axes.autoscale_view()
        self.draw_idle()

    def apply_theme(self) -> None:
        """Match the figure to the viewer's theme."""
        colours = theme_colours(self.viewer)
        self.figure.set_facecolor(colours["background"])
        ax = self.axes
        style_axes(ax, colours)
        legend = ax.legend(loc="upper right", fontsize=8, frameon=False)
        for text in legend.get_texts():
            text.set_color(colours["text"])
        self.draw_idle()


def _disconnect(viewer: Any, callback: Any) -> None:
    try:
        viewer.events.theme.disconnect(callback)
    except Exception:  # the viewer may be gone already
        pass
