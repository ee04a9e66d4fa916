"""Long work as one type: a job, its events, its cancel token and how it ended.

A **job** is a generator that yields events between units of work and returns
its result: ``iter_quantify``, ``iter_quantify_physics``, ``iter_calibration``,
``iter_retrain``, ``iter_find_elements``, the trainer's ``Trainer.events``,
``iter_search``, ``iter_compare``, ``iter_campaign``. The events are:

- :class:`Progress`: ``done`` of ``total`` units of a named phase (``stage``);
- :class:`Notice`: a message for the user while the work goes on (a warning);
- the training core's :class:`~napari_xrfquant.training.events.EpochEnd` and
  ``TrainingFinished``, the search's ``TrialResult``, the campaign's frames.

**Cancel** is one mechanism: a :class:`CancelToken`. :func:`iterate` (the one
loop that drives a job) checks it after every event and, once it is set,
raises :class:`Cancelled` inside the job at the yield where it stopped. A job
that has something worth keeping catches it there and returns it (the trainer
returns its best model so far); any other job ends, its ``finally`` blocks
releasing what it holds. Work between yields that must stop sooner (a search's
trials, a folder watch's polling) reads the token itself.

:func:`iterate` turns a job into a generator of the same events that returns
an :class:`Outcome` (result, error or cancelled) instead of raising; a GUI
worker runs it. :func:`run` drives one to its outcome with a callback for
every event (the CLI, the campaign runner), and :func:`drive` to its result,
raising what it raised (the blocking twins ``quantify()``, ``calibrate()``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
E = TypeVar("E")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``stage`` finished.

    Attributes
    ----------
    done, total
        Units finished and units in all (spectra, steps, iterations).
    stage
        The phase that is running, e.g. ``"quantify"``, ``"simulate"``, ``"epoch"``.
    epoch
        The 1-based training epoch the units belong to, when there is one.
    """

    done: int
    total: int
    stage: str = ""
    epoch: int | None = None

    @property
    def fraction(self) -> float:
        """``done / total`` in [0, 1] (1 for an empty stage)."""
        return 1.0 if self.total <= 0 else min(max(self.done / self.total, 0.0), 1.0)


@dataclass(frozen=True)
class Notice:
    """A message for the user while the job goes on (the GUI shows it as a
    warning, the CLI on stderr)."""

    message: str


class Cancelled(BaseException):
    """Raised inside a job at its current yield once its :class:`CancelToken` is set.

    A ``BaseException``, as ``GeneratorExit`` is: the ``except Exception`` that
    keeps one failed frame or trial from ending a campaign or a search must not
    swallow the user's cancel.
    """


class CancelToken:
    """Set once to cancel a job; read from any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next event."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def __call__(self) -> bool:
        """:attr:`cancelled`, for loops that poll (``while not token(): ...``)."""
        return self._event.is_set()


@dataclass
class Outcome(Generic[T]):
    """How a job ended.

    Attributes
    ----------
    result
        What the job returned (None after an error, or a cancel with nothing kept).
    error
        The exception it raised, or None.
    cancelled
        Whether it was cancelled; ``result`` is then what it kept (e.g. the
        trainer's best model so far), or None.
    """

    result: T | None = None
    error: BaseException | None = None
    cancelled: bool = False

    def unwrap(self) -> T:
        """The result; the job's exception re-raised, or :class:`Cancelled` when
        it was cancelled with nothing kept."""
        if self.error is not None:
            raise self.error
        if self.result is None and self.cancelled:
            raise Cancelled("cancelled")
        return self.result  # type: ignore[return-value]  # a job may return None


def iterate(
    job: Generator[E, None, T], cancel: CancelToken | None = None
) -> Generator[E, None, Outcome[T]]:
    """The one loop that drives a job: its events passed on, its end returned as an
    :class:`Outcome` instead of raised (see the module for how cancel reaches it).

    Closing this generator closes the job at its current yield.
    """
    thrown = False  # Cancelled is raised in the job once
    try:
        event = next(job)
        while True:
            yield event
            if not thrown and cancel is not None and cancel.cancelled:
                thrown = True
                event = job.throw(Cancelled("cancelled"))
            else:
                event = next(job)
    except StopIteration as stop:
        return Outcome(result=stop.value, cancelled=thrown)
    except Cancelled:
        return Outcome(cancelled=True)
    except Exception as exc:  # every failure is the outcome's, for its caller to show
        return Outcome(error=exc, cancelled=thrown)
    finally:
        job.close()


def run(
    job: Generator[E, None, T],
    on_event: Callable[[E], Any] | None = None,
    cancel: CancelToken | None = None,
) -> Outcome[T]:
    """Drive ``job`` to its :class:`Outcome`, handing each event to ``on_event``."""
    events = iterate(job, cancel)
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            outcome: Outcome[T] = stop.value
            return outcome
        if on_event is not None:
            on_event(event)


def drive(job: Generator[E, None, T], on_event: Callable[[E], Any] | None = None) -> T:
    """Run ``job`` to its end and return its result; raise what it raised."""
    return run(job, on_event).unwrap()
