"""The one progress event of the core: ``done`` of ``total`` units of a named stage.

Long computations (quantification, simulation of training sets, training
epochs, calibration) are generators that yield :class:`Progress` between units of
work, so a GUI worker can draw a progress bar and cancel at any yield, and the
CLI can draw a tqdm bar, from the same event.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

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
        What is running, e.g. ``"quantify"``, ``"simulate"``, ``"epoch"``.
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


def drive(generator: Generator[E, None, T], on_event: Callable[[E], Any] | None = None) -> T:
    """Run a generator to its end, handing each yielded event to ``on_event``; return its value.

    The blocking twin of a GUI worker: ``quantify()`` over ``iter_quantify()``,
    ``calibrate()`` over ``iter_calibrate()``, ``search()`` over ``iter_search()``
    (whose events are trials), and the CLI's progress bars.
    """
    while True:
        try:
            event = next(generator)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
