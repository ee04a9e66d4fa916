"""The Quantify dock's "Physics (no model)" settings: instrument, elements, matrix.

Chosen in the dock's model list, it quantifies every pixel with the simulator
of an instrument file (no network; any element list), as ``xrfquant quantify
--instrument FILE --elements LIST`` does. "Find elements" runs the element
search (``xrfquant elements``) on the chosen cube in a worker, with its phases
in the dock's bar and a cancel, and fills the element field with what it found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from napari_xrfquant._napari._jobs import guarded_job
from napari_xrfquant._napari._qt import alive, browse_row, one_line
from napari_xrfquant._napari.widgets._job_progress import JobProgress
from napari_xrfquant._napari.widgets._number_edit import ElementsEdit

#: The model list's entry for the physics quantification.
PHYSICS_ITEM = "Physics (no model)"
#: What the dock says of it in place of a model's description.
PHYSICS_INFO = ("every pixel fitted with the simulator of the instrument (Poisson maximum "
                "likelihood, matrix-corrected): no network, any elements")


class PhysicsPanel(QWidget):
    """Instrument file, elements (with "Find elements") and matrix of a physics run.

    Parameters
    ----------
    cube
        Returns the chosen cube layer's ``(counts, energy_keV, name)``, or None.
    progress
        The dock's progress bar, shared with its runs.
    changed
        Called when the elements or the instrument file change (the dock checks
        its inputs again).
    """

    def __init__(self, cube: Callable[[], tuple[Any, Any, str] | None], progress: Any,
                 changed: Callable[[], Any]) -> None:
        super().__init__()
        self._cube = cube
        self._progress_bar = progress
        self.worker: Any = None
        self._job_progress: JobProgress | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.instrument_edit = QLineEdit()
        self.instrument_edit.setPlaceholderText("reference instrument on the cube's axis")
        self.instrument_edit.setToolTip("The set-up's instrument file (TOML); empty: the "
                                        "reference instrument read on the cube's energy axis")
        form.addRow("Instrument", browse_row(self.instrument_edit, self._browse))
        self.elements_edit = ElementsEdit()
        self.find_button = QPushButton("Find elements")
        self.find_button.setToolTip("Search the cube for the elements it shows (a likelihood-"
                                    "ratio test of each element Na-U with the simulator)")
        self.find_button.clicked.connect(self._find_clicked)
        row = QHBoxLayout()
        row.addWidget(self.elements_edit, 1)
        row.addWidget(self.find_button)
        form.addRow("Elements", row)
        self.matrix_combo = QComboBox()
        self.matrix_combo.addItems(["elements", "oxides"])
        self.matrix_combo.setToolTip("elements: the listed elements make 100 wt%; oxides: "
                                     "each as its oxide, oxygen by stoichiometry")
        form.addRow("Matrix", self.matrix_combo)
        self.standard_edit = QLineEdit()
        self.standard_edit.setPlaceholderText("thin samples: the film on the map")
        self.standard_edit.setToolTip("A thin sample's ([sample] in the instrument file) "
                                      "standard film of known areal densities on this map, "
                                      "whose elements set the counts per µg/cm²: a library "
                                      "name (AXO-2IDE) or a CSV file")
        form.addRow("Standard", self.standard_edit)
        self.elements_edit.textChanged.connect(lambda _text: changed())
        self.instrument_edit.editingFinished.connect(changed)
        self.found_info = QLabel("")
        self.found_info.setWordWrap(True)
        form.addRow("", self.found_info)

    # -- what a run uses ----------------------------------------------------------
    def instrument(self) -> Any:
        """The instrument file's set-up, or None for the reference one on the cube's axis.

        Raises
        ------
        XRFQuantError
            For a file that does not load.
        """
        from napari_xrfquant.instrument import load_instrument

        path = self.instrument_edit.text().strip()
        return load_instrument(path) if path else None

    def _instrument_on(self, energy_keV: Any) -> Any:
        """The set-up of a run on a cube of channels ``energy_keV``: the instrument
        file's, or the reference one read on that axis."""
        from napari_xrfquant.instrument import reference_instrument
        from napari_xrfquant.io.calibration import on_energy_axis

        given = self.instrument()
        return given if given is not None else on_energy_axis(reference_instrument(),
                                                              energy_keV)

    def problem(self) -> str | None:
        """Why a physics run cannot start, or None."""
        if not self.elements_edit.text().strip():
            return "type the elements, or press Find elements"
        return self.elements_edit.problem()

    def job(self, layer_counts: Any, energy_keV: Any, mask_below: float) -> Any:
        """The generator of a physics quantification of one cube (a worker drives it:
        the cube is read and resampled there, not on the UI thread).

        Raises
        ------
        XRFQuantError
            For a bad instrument file, element list or standard (checked here).
        """
        from napari_xrfquant.inference.physics_quantify import iter_quantify_physics
        from napari_xrfquant.physics.standards import parse_standard

        standard = self.standard_edit.text().strip()
        return iter_quantify_physics(
            layer_counts, energy_keV, self.elements_edit.elements(),
            self._instrument_on(energy_keV), matrix=self.matrix_combo.currentText(),
            standard=parse_standard(standard) if standard else None,
            mask_below_counts=mask_below)

    # -- Find elements ------------------------------------------------------------
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Instrument file", "",
                                              "Instrument (*.toml *.json);;All files (*)")
        if path:
            self.instrument_edit.setText(path)

    def _find_clicked(self) -> None:
        if self.worker is not None:
            self.found_info.setText("cancelling...")
            self.worker.quit()
        else:
            self.search()

    def search(self) -> Any:
        """Search the chosen cube in a worker; returns it (None when nothing to search)."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError

        chosen = self._cube()
        if chosen is None:
            show_error("Find elements: open an XRF cube first")
            return None
        counts, energy_keV, name = chosen
        try:
            instrument = self._instrument_on(energy_keV)
        except XRFQuantError as exc:
            show_error(f"Find elements: {one_line(exc)}")
            return None
        worker = create_worker(guarded_job, _search_job(counts, energy_keV, instrument),
                               _start_thread=False)
        self._job_progress = JobProgress(f"Find elements in {name}", 0, self._progress_bar)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda outcome: self._on_found(outcome, name))
        worker.aborted.connect(lambda: self.found_info.setText("search cancelled"))
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.find_button.setText("Cancel search")
        self.found_info.setText(f"searching {name} (a few seconds to minutes)...")
        worker.start()
        return worker

    def _on_progress(self, event: Any) -> None:
        if self._job_progress is not None:
            self._job_progress.show(event.done, event.total)
        if alive(self) and event.stage == "search" and event.done < event.total:
            self.found_info.setText(f"searching: step {event.done + 1} of {event.total}")

    def _on_found(self, outcome: Any, name: str) -> None:
        from napari.utils.notifications import show_error, show_info

        if not alive(self):
            return
        if outcome.error is not None:
            show_error(f"Find elements in {name}: {one_line(outcome.error)}")
            self.found_info.setText("search failed")
            return
        search = outcome.result
        if search.symbols:
            self.elements_edit.setText(", ".join(search.symbols))
        uncertain = [f.symbol for f in search.found if f.uncertain is not None]
        text = (f"found {', '.join(search.symbols) or 'nothing'} in {search.seconds:.0f} s "
                f"(sum spectrum fit quality {search.fit_quality:.3g})")
        if uncertain:
            text += f"; uncertain, not added: {', '.join(uncertain)}"
        self.found_info.setText(text)
        show_info(f"Find elements in {name}: {text}")

    def _on_finished(self) -> None:
        if self._job_progress is not None:
            self._job_progress.close()
            self._job_progress = None
        self.worker = None
        if alive(self):
            self.find_button.setText("Find elements")


def _search_job(counts: Any, energy_keV: Any, instrument: Any) -> Any:
    """The element search of a cube as a worker's generator: the cube is read and
    resampled onto the instrument's channels in the worker, not on the UI thread."""
    from napari_xrfquant.inference.element_search import iter_find_elements, on_cube_axis

    spectra, on_axis = on_cube_axis(counts, energy_keV, instrument)
    return (yield from iter_find_elements(spectra, on_axis))
