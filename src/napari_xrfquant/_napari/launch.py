"""``python -m napari_xrfquant._napari.launch``: napari with the sample cube and the widgets.

Opens the simulated CXC gold sample (when it is there), docks the Quantify and
Spectrum inspector widgets through the plugin manifest (the inspector under the
canvas, where its plot has the window's width), and runs the Qt event
loop. ``XRFQUANT_EXIT_AFTER_S=<seconds>`` closes the window after that time
(used to check ``xvfb-run -a make run`` unattended).
"""

from __future__ import annotations

import os
import sys
from typing import Any

PLUGIN = "napari-xrfquant"
EXIT_AFTER_ENV = "XRFQUANT_EXIT_AFTER_S"


def exit_after_seconds() -> float | None:
    """Seconds after which to close, from ``XRFQUANT_EXIT_AFTER_S``; None if unset.

    Raises
    ------
    XRFQuantError
        If the variable is set but not a non-negative number.
    """
    from napari_xrfquant.errors import XRFQuantError

    text = os.environ.get(EXIT_AFTER_ENV, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise XRFQuantError(f"{EXIT_AFTER_ENV}={text!r} is not a number of seconds") from None
    if not seconds >= 0:
        raise XRFQuantError(f"{EXIT_AFTER_ENV}={text!r} must be 0 or more seconds")
    return seconds


def freeze_startup_objects() -> None:
    """Leave the objects alive after start-up out of future garbage collections.

    A full collection of Python's cyclic garbage collector scanned every object
    of napari, torch and matplotlib: 0.3-0.35 s with the window frozen, in the
    middle of adding result layers. ``gc.freeze`` before any data is opened
    moves the modules, classes and widgets of start-up (alive for the whole
    session anyway) out of its way; data opened later is collected as usual.
    """
    import gc

    gc.collect()
    gc.freeze()


def build_viewer(show: bool = True) -> tuple[Any, Any, Any]:
    """A viewer with the sample cube (if present) and the plugin's two widgets docked.

    Returns
    -------
    viewer, quantify_widget, inspector_widget
    """
    import napari
    from napari.utils.notifications import show_error

    from napari_xrfquant._napari._layers import cube_layers
    from napari_xrfquant.errors import XRFQuantError

    viewer = napari.Viewer(title="napari-xrfquant", show=show)
    freeze_startup_objects()
    try:
        viewer.open_sample(PLUGIN, "cxc_gold_sample")
        cubes = cube_layers(viewer.layers)
        if cubes:  # the cube, not its hidden truth regions, in the layer controls
            viewer.layers.selection.active = cubes[0]
    except (XRFQuantError, OSError) as exc:
        # no sample yet: the GUI is still useful for the user's own files
        show_error(str(exc).splitlines()[0])
    _, quantify = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    dock, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    inspector.set_wide(True)  # before the move, so the window never grows to its stacked height
    _dock_at_bottom(dock)
    return viewer, quantify, inspector


def _dock_at_bottom(dock: Any) -> None:
    """Move a dock under the canvas: the spectrum plot gets the window's full width."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QMainWindow

    window = dock.parentWidget()
    if isinstance(window, QMainWindow):
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)


def main() -> int:
    """Open napari with the sample and widgets; return the exit status."""
    import napari
    from qtpy.QtCore import QTimer

    from napari_xrfquant.errors import XRFQuantError

    try:
        seconds = exit_after_seconds()
    except XRFQuantError as exc:
        print(f"xrfquant: {exc}", file=sys.stderr)
        return 2
    viewer, _, _ = build_viewer(show=True)
    if seconds is not None:
        QTimer.singleShot(int(seconds * 1000), viewer.close)
    napari.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
