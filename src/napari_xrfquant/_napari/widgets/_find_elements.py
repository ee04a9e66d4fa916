"""The element field with "Find elements": one widget for every dock that asks for elements.

"Find elements" runs the element search (``xrfquant elements``) on the dock's
chosen cube in a worker, with its phases in the dock's progress bar and
napari's activity dock, and a cancel (the button becomes "Cancel search"); it
fills the field with what it found and names the uncertain elements it left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_xrfquant._napari._qt import alive, one_line
from napari_xrfquant._napari.widgets._job_controls import JobRunner
from napari_xrfquant._napari.widgets._number_edit import ElementsEdit

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Generator

    import numpy as np
    from qtpy.QtWidgets import QProgressBar

    from napari_xrfquant._napari._layers import Counts
    from napari_xrfquant.inference.element_search import ElementSearch
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.jobs import Progress


class ChosenCube(NamedTuple):
    """A dock's chosen cube layer: its counts, channel energies, name and what the
    reader found in its file (the beam energy it states, its detector elements)."""

    counts: Counts
    energy_keV: np.ndarray
    name: str
    metadata: dict[str, Any]


class ElementsFinder(QWidget):
    """An element list with its "Find elements" button and what the search found.

    Parameters
    ----------
    cube
        Returns the dock's chosen cube layer (:class:`ChosenCube`), or None.
    instrument_on
        The set-up to search with on a cube of these channel energies and reader
        metadata (raises XRFQuantError for a file that does not load).
    progress
        The dock's progress bar.
    fit_range
        The energy range to search (None: the default range), or None for always
        the default; raises XRFQuantError for a range it cannot read.
    assumed
        In words, the set-up ``instrument_on`` assumes for a cube of this reader
        metadata where the dock was given none (None: a file's; said with what
        was found).
    """

    def __init__(self, cube: Callable[[], ChosenCube | None],
                 instrument_on: Callable[[np.ndarray, dict[str, Any]], Instrument],
                 progress: QProgressBar,
                 fit_range: Callable[[], tuple[float, float] | None] | None = None,
                 assumed: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        super().__init__()
        self._cube = cube
        self._instrument_on = instrument_on
        self._fit_range = fit_range or (lambda: None)
        self._assumed = assumed or (lambda _metadata: None)
        self.runner = JobRunner("Find elements", progress, self._say, self)
        self.runner.state_changed.connect(self._state_changed)
        self.elements_edit = ElementsEdit()
        self.find_button = QPushButton("Find elements")
        self.find_button.setToolTip("Search the cube for the elements it shows (a likelihood-"
                                    "ratio test of each element Na-U with the simulator)")
        self.find_button.clicked.connect(self._find_clicked)
        self.found_info = QLabel("")
        self.found_info.setWordWrap(True)
        self.found_info.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.elements_edit, 1)
        row.addWidget(self.find_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.found_info)

    def _say(self, text: str) -> None:
        self.found_info.setText(text)
        self.found_info.setVisible(bool(text))

    @property
    def worker(self) -> Any:
        """The running search's worker, or None."""
        return self.runner.worker

    def _find_clicked(self) -> None:
        if self.runner.running:
            self.runner.cancel()
        else:
            self.search()

    def search(self) -> Any:
        """Search the chosen cube in a worker; returns it (None when nothing to search)."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError

        chosen = self._cube()
        if chosen is None:
            show_error("Find elements: open an XRF cube first")
            return None
        counts, energy_keV, name, metadata = chosen
        try:
            instrument = self._instrument_on(energy_keV, metadata)
            fit_keV = self._fit_range()
            assumed = self._assumed(metadata)
        except XRFQuantError as exc:
            show_error(f"Find elements: {one_line(exc)}")
            return None
        return self.runner.start(
            _search_job(counts, energy_keV, instrument, fit_keV),
            f"Find elements in {name} (a few seconds to minutes)",
            lambda outcome: self._on_found(outcome, name, assumed), on_event=self._on_progress,
            cancelled_text="search cancelled")

    def _on_progress(self, event: Any) -> None:
        if alive(self) and event.stage == "search" and event.done < event.total:
            self._say(f"searching: step {event.done + 1} of {event.total}")

    def _on_found(self, outcome: Any, name: str, assumed: str | None = None) -> None:
        from napari.utils.notifications import show_info

        if not alive(self):
            return
        search = outcome.result
        if search.symbols:
            self.elements_edit.setText(", ".join(search.symbols))
        uncertain = [f for f in search.found if f.uncertain is not None]
        text = (f"found {', '.join(search.symbols) or 'nothing'} in {search.seconds:.0f} s "
                f"(sum spectrum fit quality {search.fit_quality:.3g})")
        if uncertain:
            text += (f"; uncertain, not added: {', '.join(f.symbol for f in uncertain)} "
                     "(hover for why)")
        if assumed is not None:
            text += f"; no instrument file: {assumed}"
        self._say(text)
        # why each was left out, as `xrfquant elements` prints it
        self.found_info.setToolTip("\n".join(
            f"{f.symbol} ({f.significance:.1f} sigma): {f.uncertain}" for f in uncertain))
        show_info(f"Find elements in {name}: {text}")

    def _state_changed(self, state: str) -> None:
        if alive(self):
            self.find_button.setText("Cancel search" if self.runner.running else "Find elements")


def _search_job(counts: Counts, energy_keV: np.ndarray, instrument: Instrument,
                fit_keV: tuple[float, float] | None = None,
                ) -> Generator[Progress, None, ElementSearch]:
    """The element search of a cube as a worker's generator: the cube is read (a slab
    of rows at a time, never whole) and resampled onto the instrument's channels in
    the worker, not on the UI thread."""
    from napari_xrfquant.inference.element_search import iter_find_elements_in_cube

    return (yield from iter_find_elements_in_cube(counts, energy_keV, instrument,
                                                  fit_keV=fit_keV))
