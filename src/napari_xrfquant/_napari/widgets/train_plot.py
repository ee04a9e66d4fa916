"""Live training and validation loss curves in a dock (napari-matplotlib, napari theme).

Two lines extended once per epoch, on napari-matplotlib's themed canvas with
matplotlib's navigation toolbar (zoom, pan, save as PNG).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.ticker import (
    FormatStrFormatter,
    LogFormatterSciNotation,
    LogLocator,
    MaxNLocator,
    NullLocator,
)

from napari_xrfquant._napari.widgets._plot import DockPlot

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer

#: Below this ratio of the largest to the smallest loss shown, a log axis holds
#: no power of ten and matplotlib would label no tick: plain ticks are used then.
LOG_TICKS_MIN_RATIO = 10.0


class LossCanvas(DockPlot):
    """Training and validation loss per epoch (log scale while every loss is positive).

    Parameters
    ----------
    viewer
        The napari viewer whose theme the figure follows.
    """

    def __init__(self, viewer: Viewer) -> None:
        super().__init__(viewer, min_height=180, redraw=self._build_axes)
        self.epochs: list[int] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self._build_axes()

    def _build_axes(self) -> None:
        """(Re)create the axes and lines in the current theme's style."""
        self.figure.clear()
        with self.themed():
            self.axes = self.figure.add_subplot(111)
            (self.train_line,) = self.axes.plot([], [], "-o", ms=3, label="training",
                                                color="#1f77b4")
            (self.val_line,) = self.axes.plot([], [], "-o", ms=3, label="validation",
                                              color="#ff7f0e")
            self.axes.set_xlabel("epoch")
            self.axes.set_ylabel("loss")
            self.axes.legend(loc="upper right", fontsize=8, frameon=False,
                             labelcolor=self.text_colour)
        self.axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        self._update()

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
        values = self.train_loss + self.val_loss
        # log axes need positive values; a loss can be negative (Gaussian NLL)
        log = bool(values) and all(v > 0 for v in values)
        self.axes.set_yscale("log" if log else "linear")
        self.axes.relim()
        self.axes.autoscale_view()
        if log:
            self._label_log_ticks(min(values), max(values))
        self.draw_idle()

    def _label_log_ticks(self, low: float, high: float) -> None:
        """Tick labels on a log axis, also when the losses span less than a decade."""
        axis = self.axes.yaxis
        if high / low < LOG_TICKS_MIN_RATIO:
            axis.set_major_locator(MaxNLocator(nbins=4))
            axis.set_major_formatter(FormatStrFormatter("%.3g"))
            axis.set_minor_locator(NullLocator())
        else:
            axis.set_major_locator(LogLocator())
            axis.set_major_formatter(LogFormatterSciNotation())
