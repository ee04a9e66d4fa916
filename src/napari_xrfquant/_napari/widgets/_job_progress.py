"""One job's progress, in the dock's own bar and in napari's activity dock.

Every dock runs its long work through :class:`~._job_controls.JobRunner` (Quantify, Live,
Calibrate and its retraining, Train, Search, Compare) and shows how far it got
twice: in a bar of the dock and in napari's activity dock, where a user looks
for the work napari is doing. :class:`JobProgress` keeps the two together
from the job's start to its end.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QProgressBar

from napari_xrfquant._napari._qt import alive


class JobProgress:
    """Both progress bars of one job, from its start to :meth:`close`.

    Parameters
    ----------
    description
        The job in napari's activity dock, e.g. ``"Quantify cxc_gold_sample"``.
    total
        Steps of the job; 0 while unknown (both bars then show a busy state).
    bar
        The dock's own bar, or None.
    """

    def __init__(self, description: str, total: int = 0, bar: QProgressBar | None = None) -> None:
        from napari.utils import progress

        self.bar = bar
        self.total = int(total)
        self.done = 0
        self._activity: Any = progress(total=self.total, desc=description)
        if bar is not None:
            bar.setRange(0, self.total)  # (0, 0): Qt's busy bar
            bar.setValue(0)

    def show(self, done: int, total: int | None = None) -> None:
        """``done`` steps of ``total`` (None: the total so far)."""
        if total is not None and int(total) != self.total:
            self.total = int(total)
            self._activity.total = self.total
        self.done = int(done)
        if (bar := self._live_bar()) is not None:
            bar.setRange(0, max(self.total, 1))
            bar.setValue(self.done)
        self._activity.update(self.done - self._activity.n)

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps done (a job whose total is unknown counts this way)."""
        self.done += int(steps)
        if (bar := self._live_bar()) is not None and self.total:
            bar.setValue(self.done)
        self._activity.update(int(steps))

    def close(self) -> None:
        """The job has ended: napari's bar goes; a busy dock bar stops."""
        self._activity.close()
        if (bar := self._live_bar()) is not None and bar.maximum() == 0:
            bar.setRange(0, 1)

    def _live_bar(self) -> QProgressBar | None:
        # the dock may have been closed while its job ran
        return self.bar if self.bar is not None and alive(self.bar) else None
