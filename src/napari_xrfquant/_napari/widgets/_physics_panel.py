"""The Quantify dock's "Physics (no model)" settings: instrument, elements, matrix.

Chosen in the dock's model list, it quantifies every pixel with the simulator
of an instrument file (no network; any element list), as ``xrfquant quantify
--instrument FILE --elements LIST`` does. "Find elements" runs the element
search (``xrfquant elements``, :class:`._find_elements.ElementsFinder`) on the
chosen cube and fills the element field with what it found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLineEdit, QWidget

from napari_xrfquant._napari._qt import browse_row
from napari_xrfquant._napari.widgets._find_elements import ChosenCube, ElementsFinder

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Generator

    import numpy as np
    from qtpy.QtWidgets import QProgressBar

    from napari_xrfquant._napari._layers import Counts
    from napari_xrfquant.inference.physics_quantify import PhysicsNotes
    from napari_xrfquant.jobs import Progress
    from napari_xrfquant.results import QuantResult

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
        Returns the chosen cube layer (:class:`._find_elements.ChosenCube`), or None.
    progress
        The dock's progress bar, shared with its runs.
    changed
        Called when the elements or the instrument file change (the dock checks
        its inputs again).
    """

    def __init__(self, cube: Callable[[], ChosenCube | None],
                 progress: QProgressBar, changed: Callable[[], object]) -> None:
        super().__init__()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.instrument_edit = QLineEdit()
        self.instrument_edit.setPlaceholderText("reference instrument, the file's beam")
        self.instrument_edit.setToolTip("The set-up's instrument file (TOML); empty: the "
                                        "reference instrument read on the cube's energy "
                                        "axis, under the beam energy its file states")
        form.addRow("Instrument", browse_row(self.instrument_edit, self._browse))
        self.finder = ElementsFinder(cube, self._instrument_on, progress, self.fit_range,
                                     self._assumed)
        self.elements_edit = self.finder.elements_edit
        self.find_button, self.found_info = self.finder.find_button, self.finder.found_info
        form.addRow("Elements", self.finder)
        self.matrix_combo = QComboBox()
        self.matrix_combo.addItems(["elements", "oxides"])
        self.matrix_combo.setEditable(True)  # or a balance compound, typed
        self.matrix_combo.setToolTip("elements: the listed elements make 100 wt%; oxides: "
                                     "each as its oxide, oxygen by stoichiometry; or type a "
                                     "balance compound the detector does not see (C5H8NO2, "
                                     "H2O): the elements in absolute wt% from the Compton "
                                     "scatter, the compound the rest (as --matrix)")
        form.addRow("Matrix", self.matrix_combo)
        self.fit_edit = QLineEdit()
        self.fit_edit.setPlaceholderText("1 keV to the beam (e.g. 1-9.2)")
        self.fit_edit.setToolTip("Energy range fitted and searched, LOW-HIGH in keV (as "
                                 "--fit-range); empty: from 1 keV to just above the beam, "
                                 "or below the Compton peak of a monochromatic one")
        form.addRow("Fit range", self.fit_edit)
        self.standard_edit = QLineEdit()
        self.standard_edit.setPlaceholderText("thin samples: the film on the map")
        self.standard_edit.setToolTip("A thin sample's ([sample] in the instrument file) "
                                      "standard film of known areal densities on this map, "
                                      "whose elements set the counts per µg/cm²: a library "
                                      "name (AXO-2IDE) or a CSV file")
        form.addRow("Standard", self.standard_edit)
        self.elements_edit.textChanged.connect(lambda _text: changed())
        self.instrument_edit.editingFinished.connect(changed)
        self.fit_edit.editingFinished.connect(changed)
        self.matrix_combo.currentTextChanged.connect(lambda _text: changed())

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

    def _instrument_on(self, energy_keV: Any, metadata: dict[str, Any]) -> Any:
        """The set-up of a run on a cube of channels ``energy_keV`` and reader
        ``metadata``: the instrument file's, or the one assumed without a file
        (:func:`~napari_xrfquant.io.detectors.assumed_instrument`: the reference one
        read on that axis, under the beam the file states)."""
        from napari_xrfquant.io.detectors import assumed_instrument

        given = self.instrument()
        return given if given is not None else assumed_instrument(energy_keV, metadata)

    def _assumed(self, metadata: dict[str, Any]) -> str | None:
        """In words, the set-up :meth:`_instrument_on` assumes with the file field empty."""
        from napari_xrfquant.io.detectors import assumed_setup

        return None if self.instrument_edit.text().strip() else assumed_setup(metadata)

    def fit_range(self) -> tuple[float, float] | None:
        """The typed fit range in keV, or None (the default).

        Raises
        ------
        XRFQuantError
            For text that is not ``LOW-HIGH`` with ``LOW < HIGH``.
        """
        from napari_xrfquant.calibration.session import parse_range

        text = self.fit_edit.text().strip()
        return parse_range(text, "fit range") if text else None

    def problem(self) -> str | None:
        """Why a physics run cannot start, or None."""
        from napari_xrfquant.errors import XRFQuantError
        from napari_xrfquant.inference.balance import CLOSED_MATRICES, balance_fractions

        if not self.elements_edit.text().strip():
            return "type the elements, or press Find elements"
        try:
            self.fit_range()
            matrix = self.matrix_combo.currentText().strip()
            if matrix not in CLOSED_MATRICES:
                balance_fractions(matrix, self.elements_edit.elements())
        except XRFQuantError as exc:
            return str(exc)
        return self.elements_edit.problem()

    def job(self, layer_counts: Counts, energy_keV: np.ndarray, mask_below: float,
            cube_metadata: dict[str, Any] | None = None, device: str = "auto",
            ) -> Generator[Progress, None, tuple[QuantResult, PhysicsNotes]]:
        """The generator of a physics quantification of one cube (a worker drives it:
        the cube is read and resampled there, not on the UI thread). ``cube_metadata``
        (the reader's) matches the file's detector elements to the instrument's.

        Raises
        ------
        XRFQuantError
            For a bad instrument file, element list or standard (checked here), or a
            file of another detector element count than the instrument lists.
        """
        from napari_xrfquant.inference.physics_quantify import iter_quantify_physics
        from napari_xrfquant.io.detectors import instrument_for_cube
        from napari_xrfquant.physics.standards import parse_standard

        standard = self.standard_edit.text().strip()
        metadata = cube_metadata or {}
        instrument = instrument_for_cube(self._instrument_on(energy_keV, metadata), metadata)
        return iter_quantify_physics(
            layer_counts, energy_keV, self.elements_edit.elements(),
            instrument, matrix=self.matrix_combo.currentText().strip(),
            standard=parse_standard(standard) if standard else None,
            fit_keV=self.fit_range(), mask_below_counts=mask_below, device=device)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Instrument file", "",
                                              "Instrument (*.toml *.json);;All files (*)")
        if path:
            self.instrument_edit.setText(path)

    def search(self) -> Any:
        """Find the elements of the chosen cube in a worker (:class:`ElementsFinder`)."""
        return self.finder.search()

    @property
    def worker(self) -> Any:
        """The running element search, or None."""
        return self.finder.worker
