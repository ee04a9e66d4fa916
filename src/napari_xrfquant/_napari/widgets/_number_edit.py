"""A number field that takes what people type and refuses, visibly, what it cannot take.

A ``QSpinBox``/``QDoubleSpinBox`` rewrites input in silence: ``1e-4`` becomes
1.0 in a box of six decimals, ``20k`` becomes 20, ``-5`` becomes 5, ``1e6``
beyond a box's maximum becomes the maximum. :class:`NumberEdit` parses the
text as written -- plain numbers, scientific notation, ``k``/``M`` suffixes,
digit groups with ``_`` or spaces -- and checks it against the range the
configuration schema declares; a refused entry stays as typed, is outlined in
red with the reason as tooltip, and :meth:`NumberEdit.problem` says why, so the
form refuses it with that reason instead of using another number.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLineEdit

from napari_xrfquant._schema import field_bounds

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from pydantic import BaseModel
    from qtpy.QtWidgets import QWidget

#: Multipliers a number may end with.
SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6}
REFUSED_STYLE = "border: 1px solid #e05050;"


def parse_number(text: str) -> float:
    """``"1e-4"`` -> 1e-4, ``"20k"`` -> 20000, ``"2 000"`` -> 2000.

    Raises
    ------
    ValueError
        For text that is no number.
    """
    cleaned = text.strip().replace("_", "").replace(" ", "")
    factor = 1.0
    if cleaned and cleaned[-1] in SUFFIXES:
        factor, cleaned = SUFFIXES[cleaned[-1]], cleaned[:-1]
    value = float(cleaned) * factor
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


class NumberEdit(QLineEdit):
    """A line edit for one number, in a range, as typed.

    Parameters
    ----------
    value
        Initial value.
    integer
        Only whole numbers (``value()`` returns an int).
    low, high
        Inclusive bounds (None: open), e.g. from :func:`napari_xrfquant._schema.field_bounds`.
    unit
        Shown after the number (typing it is optional) and as placeholder.
    special
        Text shown for the value 0 (e.g. ``"off"``), and accepted as 0.

    Attributes
    ----------
    valueChanged
        Emitted with the new value when an accepted entry is finished.
    """

    valueChanged = Signal(object)

    def __init__(self, value: float, integer: bool = False, low: float | None = None,
                 high: float | None = None, unit: str = "", special: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.integer, self.low, self.high, self.unit, self.special = (
            integer, low, high, unit, special)
        self._tooltip = ""
        self.setPlaceholderText(unit)
        self.setValue(value)
        self.textChanged.connect(self._show_state)
        self.editingFinished.connect(self._finished)

    # -- the spin-box API the forms use ---------------------------------------
    def setValue(self, value: float) -> None:
        """Show ``value`` (as an integer when the field is one)."""
        number = round(value) if self.integer else float(value)
        before = self.value() if self.text() else None
        shown = f"{_format(number)} {self.unit}".strip()  # the unit as a spin box's suffix
        self.setText(self.special if (self.special and number == 0) else shown)
        self._show_state()
        if before != number:  # as a spin box's setValue does
            self.valueChanged.emit(self.value())

    def value(self) -> float:
        """The number typed; NaN when it is no number (see :meth:`problem`)."""
        try:
            number = self._parsed()
        except ValueError:
            return math.nan
        return int(number) if self.integer else number

    def setToolTip(self, text: str | None) -> None:
        """The field's help; a refusal is shown above it."""
        self._tooltip = text or ""
        super().setToolTip(self._tooltip)

    # -- checking -------------------------------------------------------------
    def problem(self) -> str | None:
        """Why the text is refused (one line), or None when it is accepted."""
        try:
            number = self._parsed()
        except ValueError:
            return f"{self.text()!r} is not a number"
        if self.integer and number != int(number):
            return f"{self.text()} is not a whole number"
        if self.low is not None and number < self.low:
            return f"{self.text()} is below the smallest allowed, {_format(self.low)}"
        if self.high is not None and number > self.high:
            return f"{self.text()} is above the largest allowed, {_format(self.high)}"
        return None

    def _parsed(self) -> float:
        text = self.text()
        if self.special and text.strip().lower() == self.special.lower():
            return 0.0
        return parse_number(text.strip().removesuffix(self.unit) if self.unit else text)

    def _show_state(self, *_args: Any) -> None:
        problem = self.problem()
        self.setStyleSheet(REFUSED_STYLE if problem else "")
        super().setToolTip(f"refused: {problem}\n{self._tooltip}" if problem else self._tooltip)

    def _finished(self) -> None:
        if self.problem() is None:
            self.valueChanged.emit(self.value())


class ElementsEdit(QLineEdit):
    """A line edit for element symbols (``"Fe, Ni, Cr"``), refused visibly when unknown.

    Parameters
    ----------
    text
        Initial symbols.
    optional
        An empty field is accepted (no elements).
    """

    HELP = "Element symbols Na-U, separated by commas or spaces"

    def __init__(self, text: str = "", optional: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.optional = optional
        self.setToolTip(self.HELP)
        self.textChanged.connect(self._show_state)
        self._show_state()

    def elements(self) -> list[str]:
        """The symbols typed, in the usual case; [] for an empty optional field.

        Raises
        ------
        XRFQuantError
            For an unknown symbol, an element outside Na-U or one listed twice.
        """
        from napari_xrfquant.training.checks import parse_element_list

        if self.optional and not self.text().strip():
            return []
        return parse_element_list(self.text())

    def problem(self) -> str | None:
        """Why the text is refused, or None."""
        from napari_xrfquant.errors import XRFQuantError

        try:
            self.elements()
        except XRFQuantError as exc:
            return str(exc).splitlines()[0]
        return None

    def _show_state(self, *_args: Any) -> None:
        problem = self.problem()
        self.setStyleSheet(REFUSED_STYLE if problem else "")
        super().setToolTip(f"refused: {problem}\n{self.HELP}" if problem else self.HELP)


def _format(number: float) -> str:
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.10g}"  # round-trips a calibration gain to well below 1 eV


def schema_number(model: type[BaseModel], name: str, value: float, integer: bool = False,
                  unit: str = "", scale: float = 1.0, low: float | None = None,
                  high: float | None = None) -> NumberEdit:
    """A :class:`NumberEdit` with the inclusive bounds and description of a schema field.

    ``scale`` shows the field in another unit (µm for a thickness in cm: 1e4);
    the bounds are scaled with it. ``low``/``high`` bound what the schema leaves
    open. Strict bounds (``gt``/``lt``) are left to the schema's own check, whose
    message names the field.
    """
    bounds = field_bounds(model, name)
    if "ge" in bounds:
        low = float(bounds["ge"]) * scale
    if "le" in bounds:
        high = float(bounds["le"]) * scale
    edit = NumberEdit(value, integer=integer, low=low, high=high, unit=unit)
    edit.setToolTip(str(bounds.get("description", "")))
    return edit


def edit_problems(fields: Mapping[str, QWidget]) -> list[str]:
    """``"<label>: <why>"`` for each refused :class:`NumberEdit` of ``{label: widget}``."""
    return [f"{label}: {problem}" for label, edit in fields.items()
            if isinstance(edit, NumberEdit) and (problem := edit.problem()) is not None]
