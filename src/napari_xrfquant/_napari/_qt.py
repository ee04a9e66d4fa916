"""Small Qt helpers shared by the docks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QVBoxLayout, QWidget

T = TypeVar("T")


def alive(widget: object) -> bool:
    """False once Qt has deleted the widget (its Python wrapper may outlive it)."""
    try:
        widget.objectName()  # type: ignore[attr-defined]  # a QObject, or a dock's part
    except RuntimeError:
        return False
    return True


def one_line(exc: BaseException) -> str:
    """The first line of an error message, for a notification or a status line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: Smallest height of a dock's scrolled content: a dock never opens as a strip.
DOCK_MIN_HEIGHT = 280


def scrolled_layout(widget: QWidget, min_height: int = DOCK_MIN_HEIGHT) -> QVBoxLayout:
    """A vertical layout inside a scroll area that fills ``widget``; returns the layout.

    Docks stacked in one column then share the window's height: each scrolls
    instead of making the window taller than the screen, and none is squeezed
    below ``min_height`` pixels.
    """
    from qtpy.QtWidgets import QScrollArea, QVBoxLayout, QWidget

    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setMinimumHeight(min_height)
    inner = QWidget()
    layout = QVBoxLayout(inner)
    scroll.setWidget(inner)
    outer.addWidget(scroll)
    return layout


def present(value: T | None) -> T:
    """``value``, asserted not None: Qt's getters are typed Optional for parts a widget has."""
    assert value is not None
    return value


def ask_overwrite(parent: QWidget | None, paths: list[Path]) -> bool:
    """Ask (modal dialog) whether to replace files that exist already."""
    from qtpy.QtWidgets import QMessageBox

    shown = "\n".join(str(getattr(p, "name", p)) for p in paths[:8])
    more = f"\n... and {len(paths) - 8} more" if len(paths) > 8 else ""
    answer = QMessageBox.question(
        parent,
        "Replace files?",
        f"These files exist already:\n{shown}{more}\n\nReplace them?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return bool(answer == QMessageBox.StandardButton.Yes)


def bundle_files(directory: str | Path) -> list[Path]:
    """The model-bundle files already in ``directory`` (what saving there replaces)."""
    target = Path(directory)
    return [p for p in (target / "model.json", target / "model.safetensors") if p.exists()]


def may_replace(existing: list[Path], overwrite: bool | None,
                confirm: Callable[[list[Path]], bool]) -> bool:
    """Whether to write over ``existing`` files: ``overwrite``, else ask ``confirm`` (if any)."""
    if not existing:
        return True
    return bool(confirm(existing) if overwrite is None else overwrite)


def refill_combo(combo: QComboBox, names: list[str], last: bool = False) -> None:
    """Replace a combo box's items, keeping the choice (else the first or last item), silently."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(names)
    if current in names:
        combo.setCurrentText(current)
    elif names:
        combo.setCurrentIndex(len(names) - 1 if last else 0)
    combo.blockSignals(False)


def browse_row(edit: QLineEdit, on_browse: Callable[[], object]) -> QHBoxLayout:
    """A form row of a path field and its "Browse..." button (which calls ``on_browse``)."""
    from qtpy.QtWidgets import QHBoxLayout, QPushButton

    browse = QPushButton("Browse...")
    browse.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row


#: The end of the name napari gives a dock of this plugin ("Quantify (napari-xrfquant)").
PLUGIN_DOCK_TAG = "(napari-xrfquant)"


def tabify_when_docked(widget: QWidget) -> None:
    """Once ``widget`` is shown in a dock, put that dock into one tab group with the
    plugin's other docks of the same window area, in front.

    Docks stacked in one column share its height: on a 1366 x 768 screen the
    Quantify, Calibrate and Train docks got about 220 px each (one form row, a
    90 px loss plot). Tabbed, each has the whole column; napari's own
    ``tabify`` is not used by its Plugins menu, so the docks do it themselves.
    """
    from qtpy.QtCore import QEvent, QObject, QTimer

    class _OnFirstShow(QObject):
        def eventFilter(self, watched: QObject | None,
                        event: QEvent | None) -> bool:
            if watched is not None and event is not None and event.type() == QEvent.Type.Show:
                watched.removeEventFilter(self)
                QTimer.singleShot(0, lambda: _tabify(watched))
            return False

    widget.installEventFilter(_OnFirstShow(widget))


def _tabify(widget: QObject) -> None:
    from qtpy.QtWidgets import QDockWidget, QMainWindow

    if not alive(widget):
        return
    dock = widget.parent()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    window = dock.parentWidget() if dock is not None else None
    if dock is None or not isinstance(window, QMainWindow) or dock.isFloating():
        return
    area = window.dockWidgetArea(dock)
    # join a group one of the plugin's docks is in already, so that two never form
    # (Qt's child order changes as docks are raised: it cannot name a first one)
    others = [other for other in window.findChildren(QDockWidget)
              if other is not dock and other.isVisible() and not other.isFloating()
              and window.dockWidgetArea(other) == area
              and other.objectName().endswith(PLUGIN_DOCK_TAG)]
    grouped = [other for other in others
               if any(tab in others or tab is dock for tab in window.tabifiedDockWidgets(other))]
    candidates = grouped or others
    anchor = candidates[0] if candidates else None
    if anchor is not None and dock not in window.tabifiedDockWidgets(anchor):
        window.tabifyDockWidget(anchor, dock)
    dock.show()
    dock.raise_()


def fit_narrow_column(parent: QWidget, characters: int = 12) -> None:
    """Let the forms under ``parent`` fit a narrow dock column instead of scrolling sideways.

    A combo box asks for the width of its longest item ("Instrument file (train
    a new model)", a long layer name), and a form row for its widest label plus
    its widest field: the Calibrate and Train forms asked for 400-450 px, wider
    than a dock's column on a laptop screen (390 px in ``make run``'s window).
    Combo boxes may now be narrower than their items, and a row too wide puts
    its field under its label.
    """
    from qtpy.QtWidgets import QComboBox, QFormLayout

    for combo in parent.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(characters)
    for form in parent.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
