"""The one way a dock runs long work: :class:`JobRunner` and its :class:`JobControls`.

A dock hands the runner a core job (:mod:`napari_xrfquant.jobs`: a generator of
events that returns its result) and what to do with the result. The runner
drives it in a napari ``thread_worker`` through :func:`~napari_xrfquant.jobs.iterate`
with a :class:`~napari_xrfquant.jobs.CancelToken`, shows its progress in the
dock's bar and napari's activity dock (:class:`JobProgress`), its phase in the
dock's status line, its notices as warnings, and its end as a notification:
an error in one line, a cancel as such, a result through the dock's handler.
Its state is evented (``state_changed``): ``idle``, ``running``,
``cancelling``, then ``done``, ``failed`` or ``cancelled``.

:class:`JobControls` is the runner with its widgets: the dock's Run buttons
(each enabled while no job runs and its own ``ready`` check passes), Cancel, the
bar and the status line. The Live switch and Find elements, which have a
control of their own (a check box, a toggling button), use the runner alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator
from typing import Any, TypeVar

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from napari_xrfquant._napari._qt import alive, one_line
from napari_xrfquant._napari.widgets._job_progress import JobProgress
from napari_xrfquant.jobs import CancelToken, Notice, Outcome, Progress, iterate

E = TypeVar("E")
R = TypeVar("R")

#: What a result handler returns when the job's end goes on in the UI thread (e.g.
#: layers added one by one): the runner then ends when :meth:`JobRunner.finish` is called.
LATER = True
#: The states of a job, in ``JobRunner.state``.
STATES = ("idle", "running", "cancelling", "done", "failed", "cancelled")


class JobRunner(QObject):
    """Runs one job at a time for a dock (see the module).

    Parameters
    ----------
    title
        The dock's name at the start of its notifications (``"Quantify"``).
    bar
        The dock's progress bar, or None.
    say
        Shows a line in the dock's status label (None: nowhere).
    """

    #: The new state (see :data:`STATES`); also when a job's end has been shown.
    state_changed = Signal(str)

    def __init__(self, title: str, bar: QProgressBar | None = None,
                 say: Callable[[str], None] | None = None, parent: QObject | None = None) -> None:
        # a QObject, so that the worker's signals reach these slots in the GUI thread
        super().__init__(parent)
        self.title = title
        self.bar = bar
        self._say = say or (lambda text: None)
        self.worker: Any = None
        self.state = "idle"
        self._token: CancelToken | None = None
        self._progress: JobProgress | None = None
        self._on_result: Callable[[Outcome[Any]], bool | None] = lambda outcome: None
        self._on_event: Callable[[Any], None] | None = None
        self._bar_stages: Collection[str] | None = None
        self._cancelled_text = ""
        self._pending = False
        self._worker_done = False
        self._queue: list[Any] = []
        self._showing = False
        self._outcome_shown = False

    @property
    def running(self) -> bool:
        """Whether a job runs (or its end is still being shown)."""
        return self.worker is not None

    def start(
        self,
        job: Generator[E, None, R],
        description: str,
        on_result: Callable[[Outcome[R]], bool | None],
        *,
        total: int = 0,
        on_event: Callable[[E], None] | None = None,
        bar_stages: Collection[str] | None = None,
        cancelled_text: str = "cancelled; nothing was changed",
        cancel: CancelToken | None = None,
    ) -> Any:
        """Run ``job`` in a worker; returns the worker (the one running, if one is).

        Parameters
        ----------
        job
            The core's generator (built, not yet started).
        description
            The job in napari's activity dock and the first status line.
        on_result
            Called with the :class:`~napari_xrfquant.jobs.Outcome` of a job that
            returned (also one cancelled with a result kept, ``outcome.cancelled``);
            returns :data:`LATER` when it finishes the job itself.
        total
            Units of the bar (0: busy until a :class:`~napari_xrfquant.jobs.Progress` comes).
        on_event
            Called with every event after the runner has shown it.
        bar_stages
            The progress stages that move the bar (None: all).
        cancelled_text
            The status line after a cancel with nothing kept.
        cancel
            The job's token, for a job that reads it itself (a search, inside
            its trials); None: a new one.
        """
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return self.worker
        self._token = cancel or CancelToken()
        self._on_result, self._on_event = on_result, on_event
        self._bar_stages, self._cancelled_text = bar_stages, cancelled_text
        self._pending = self._worker_done = self._outcome_shown = False
        worker = create_worker(_with_outcome, job, self._token, _start_thread=False)
        worker.yielded.connect(self._shown)
        worker.errored.connect(self._crashed)
        worker.finished.connect(self._worker_finished)
        self.worker = worker
        self._progress = JobProgress(description, total, self.bar)
        self._say(f"{description}...")
        self._set_state("running")
        worker.start()
        return worker

    def cancel(self, text: str = "cancelling...") -> None:
        """Ask the job to stop at its next event."""
        if self._token is not None and self.worker is not None and not self._token.cancelled:
            self._token.cancel()
            self._say(text)
            self._set_state("cancelling")

    def show_progress(self, done: int, total: int | None = None) -> None:
        """Move the bars (for units the dock counts itself, e.g. epochs)."""
        if self._progress is not None:
            self._progress.show(done, total)

    def advance(self, steps: int = 1) -> None:
        """``steps`` more units done (a job without a total, e.g. frames)."""
        if self._progress is not None:
            self._progress.advance(steps)

    def finish(self) -> None:
        """End a job whose result handler returned :data:`LATER`."""
        self._pending = False
        self._end_when_shown()

    # -- the worker's signals ---------------------------------------------------
    def _shown(self, event: Any) -> None:
        # Showing an event may run the event loop (napari's activity bar, a new layer),
        # which delivers the next event inside this call: the Outcome before the last
        # progress was shown, a frame before the last was stacked. Events wait their turn.
        self._queue.append(event)
        if self._showing:
            return
        self._showing = True
        try:
            while self._queue:
                self._show(self._queue.pop(0))
        finally:
            self._showing = False
        self._end_when_shown()

    def _show(self, event: Any) -> None:
        from napari.utils.notifications import show_warning

        if isinstance(event, Outcome):
            self._ended(event)
            self._outcome_shown = True
            return
        if isinstance(event, Notice):
            show_warning(f"{self.title}: {event.message}")
        elif isinstance(event, Progress) and (self._bar_stages is None
                                              or event.stage in self._bar_stages):
            self.show_progress(event.done, event.total)
            if event.stage and self.state == "running":
                self._say(f"{event.stage}: {event.done}/{event.total}")
        if self._on_event is not None:
            self._on_event(event)

    def _ended(self, outcome: Outcome[Any]) -> None:
        from napari.utils.notifications import show_info

        if outcome.error is not None:
            self._fail(outcome.error)
        elif outcome.cancelled and outcome.result is None:
            self._say(self._cancelled_text)
            show_info(f"{self.title}: {self._cancelled_text}")
            self._set_state("cancelled")
        else:
            self._set_state("cancelled" if outcome.cancelled else "done")
            try:
                self._pending = self._on_result(outcome) is LATER
            except Exception as exc:  # a dock's handler failing must not leave the job open
                self._pending = False
                self._fail(exc)

    def _crashed(self, exc: BaseException) -> None:
        # iterate returns every Exception as an outcome: only a BaseException gets here,
        # and napari has notified it already
        self._fail(exc, notify=False)
        self._outcome_shown = True

    def _fail(self, exc: BaseException, notify: bool = True) -> None:
        """The job failed: its error in one line, in the status and a notification."""
        from napari.utils.notifications import show_error

        self._say(f"failed: {one_line(exc)}")
        if notify:
            show_error(f"{self.title}: {one_line(exc)}")
        self._set_state("failed")

    def _worker_finished(self) -> None:
        self._worker_done = True
        self._end_when_shown()

    def _end_when_shown(self) -> None:
        # the worker's end, its Outcome and the dock's own finishing may come in any
        # order (a progress bar or a new layer runs the event loop): end after all three
        if (self.worker is not None and self._worker_done and self._outcome_shown
                and not self._pending and not self._showing and not self._queue):
            self._end()

    def _end(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.worker = None
        self._token = None
        self.state_changed.emit(self.state)  # running is False now: controls re-enable

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)


def _with_outcome(job: Generator[Any, None, Any],
                  cancel: CancelToken) -> Generator[Any, None, None]:
    """The job's events, then its :class:`~napari_xrfquant.jobs.Outcome` as the last
    one, so that one signal carries both, in order."""
    outcome = yield from iterate(job, cancel)
    yield outcome


class JobControls(QWidget):
    """A dock's Run buttons, Cancel, progress bar and status line around a :class:`JobRunner`.

    Parameters
    ----------
    title
        The dock's name in its notifications.
    status
        The first status line.
    """

    def __init__(self, title: str, status: str = "ready", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buttons = QHBoxLayout()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel(status)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.buttons.addWidget(self.cancel_button)
        self.runner = JobRunner(title, self.progress, self.say, self)
        self._ready: dict[QPushButton, Callable[[], bool]] = {}
        self.cancel_button.clicked.connect(lambda: self.runner.cancel())
        self.runner.state_changed.connect(self._state_changed)

    def add_run_button(self, text: str, ready: Callable[[], bool] | None = None) -> QPushButton:
        """A Run button before Cancel, enabled while idle and ``ready()`` holds."""
        button = QPushButton(text)
        self.buttons.insertWidget(self.buttons.count() - 1, button)
        return self.guard(button, ready)

    def guard(self, button: QPushButton, ready: Callable[[], bool] | None = None) -> QPushButton:
        """Enable ``button`` (one placed elsewhere in the dock) only while idle and
        ``ready()`` holds, like a Run button."""
        self._ready[button] = ready or (lambda: True)
        self.refresh()
        return button

    def say(self, text: str) -> None:
        """Show ``text`` in the status line."""
        if alive(self.status):
            self.status.setText(text)

    def refresh(self) -> None:
        """Re-check which Run buttons may be pressed."""
        if not alive(self):
            return
        idle = not self.runner.running
        for button, ready in self._ready.items():
            button.setEnabled(idle and bool(ready()))
        self.cancel_button.setEnabled(self.runner.state == "running" and not idle)

    def _state_changed(self, state: str) -> None:
        self.refresh()
