"""Write the README's screenshots (docs/images/gui_*.png) from what a user sees.

Run under a (virtual) display::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_screenshots.py

napari starts as ``make run`` starts it -- the sample cube, the Quantify dock
beside the canvas and the Spectrum inspector under it -- with napari's default
settings (a fresh settings file) in a 1600 x 1000 window. Nothing is hidden,
shown or re-coloured by hand: each picture is the window right after the step
a user takes:

1. ``gui_startup.png``: the sample as it opens;
2. ``gui_quantify.png``: Quantify pressed (CPU, bundled model, default mask);
   ``gui_grid.png``: then "All maps side by side" ticked (napari's grid, each
   panel named with element, unit and model, with its colour bar);
3. ``gui_regions.png``: a rectangle drawn with the mouse on the canvas (Shapes
   layer, rectangle tool) and chosen as the statistics region: table and
   per-region histogram;
4. ``gui_inspector.png``: a left click on a pixel of the ERM-EB506 block;
5. ``gui_train.png``: the Train dock, tabbed with Quantify, mid-training (its
   form with a smaller data set -- 4,000 spectra -- so that epochs come within
   seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT = Path(__file__).resolve().parent / "images"
WINDOW = (1600, 1000)
#: Rose gold (Au 58.6, Cu 35.7, Ag 3.9, Zn 1.9 wt%): Cu and Zn K lines beside Au's.
INSPECTED_REGION = "ERM-EB506"


def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    """Run the Qt event loop until ``condition()`` is true (or raise TimeoutError)."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(seconds: float = 1.0) -> None:
    """Let Qt lay out and paint the window."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def close_notification_toasts() -> None:
    """Close napari's pop-up notifications (they fade by themselves for a user)."""
    from qtpy.QtWidgets import QApplication

    for widget in QApplication.allWidgets():
        if type(widget).__name__ == "NapariQtNotification":
            widget.close()
    settle(0.3)


def region_centre(viewer: Any, name: str) -> tuple[int, int]:
    """A pixel near the centre of the truth region whose name starts with ``name``."""
    truth = next(lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "truth_regions")
    names = list(truth.metadata.get("region_names") or ())
    label = next(i for i, n in enumerate(names) if str(n).startswith(name))
    rows, cols = np.nonzero(np.asarray(truth.data) == label)
    return int(np.median(rows)), int(np.median(cols))


def mouse(viewer: Any, kind: str, xy: tuple[float, float]) -> None:
    """A mouse event on the canvas, as vispy delivers a real one."""
    native = viewer.window._qt_viewer.canvas.native
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    point = QPoint(round(xy[0]), round(xy[1]))
    if kind == "press":
        QTest.mousePress(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    elif kind == "move":
        QTest.mouseMove(native, point)
    else:
        QTest.mouseRelease(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                           point)
    settle(0.05)


def drag(viewer: Any, start_yx: tuple[float, float], end_yx: tuple[float, float]) -> None:
    """Press at one world position, move in steps and release at another."""
    from napari_xrfquant._napari._canvas import world_to_canvas

    start, end = world_to_canvas(viewer, start_yx), world_to_canvas(viewer, end_yx)
    mouse(viewer, "press", start)
    for t in np.linspace(0.1, 1.0, 8):
        mouse(viewer, "move", (start[0] + t * (end[0] - start[0]),
                               start[1] + t * (end[1] - start[1])))
    mouse(viewer, "release", end)


def scroll_to(widget: Any) -> None:
    """Scroll the dock holding ``widget`` so that ``widget`` starts at its top."""
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QScrollArea

    area = widget.parentWidget()
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parentWidget()
    if area is not None:
        top = widget.mapTo(area.widget(), QPoint(0, 0)).y()
        area.verticalScrollBar().setValue(top)


def save(viewer: Any, path: Path) -> None:
    """The whole window as PNG, written atomically."""
    from matplotlib.image import imsave

    from napari_xrfquant._files import atomic_path

    close_notification_toasts()
    image = viewer.screenshot(canvas_only=False, flash=False)
    with atomic_path(path, overwrite=True) as tmp:
        imsave(tmp, image, format="png")
    print(f"wrote {path} ({image.shape[1]} x {image.shape[0]} px)")


def main(argv: list[str] | None = None) -> int:
    """Make the six screenshots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help="folder")
    args = parser.parse_args(argv)
    # napari's default settings, not this machine's: a fresh settings file
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")

    from napari_xrfquant._napari.launch import PLUGIN, build_viewer

    viewer, quantify, inspector = build_viewer(show=True)
    viewer.window.resize(*WINDOW)
    if not quantify.cube_combo.currentText():
        print("make_screenshots: no sample cube (run `xrfquant sample`)", file=sys.stderr)
        return 1
    settle(2.0)
    save(viewer, args.output / "gui_startup.png")

    quantify.device_combo.setCurrentText("cpu")
    if quantify.run() is None:
        print(f"make_screenshots: cannot quantify ({quantify.model_error})", file=sys.stderr)
        return 1
    wait_for(lambda: quantify.worker is None, timeout_s=300)
    settle()
    save(viewer, args.output / "gui_quantify.png")
    quantify.grid_check.setChecked(True)  # "All maps side by side"
    settle()
    save(viewer, args.output / "gui_grid.png")
    quantify.grid_check.setChecked(False)

    # a rectangle drawn with the mouse, over the left two plates
    cube = viewer.layers[quantify.cube_combo.currentText()]
    shapes = viewer.add_shapes(name="regions", scale=tuple(cube.scale[-2:]),
                               units=tuple(cube.units[-2:]))
    shapes.mode = "add_rectangle"
    height, width = cube.data.shape[-2:]
    sy, sx = cube.scale[-2:]
    drag(viewer, (0.2 * height * sy, 0.12 * width * sx), (0.42 * height * sy, 0.5 * width * sx))
    shapes.mode = "pan_zoom"
    quantify.results.region_combo.setCurrentText("regions")
    # as a user scrolls the dock down to the statistics
    scroll_to(quantify.results.table.parentWidget())
    settle()
    save(viewer, args.output / "gui_regions.png")

    from napari_xrfquant._napari._canvas import world_to_canvas

    row, col = region_centre(viewer, INSPECTED_REGION)
    viewer.layers.selection.active = cube
    xy = world_to_canvas(viewer, (row * sy, col * sx))
    mouse(viewer, "press", xy)
    mouse(viewer, "release", xy)
    wait_for(lambda: inspector.last is not None, timeout_s=30)
    settle()
    save(viewer, args.output / "gui_inspector.png")

    # from the Plugins menu: the dock tabs itself beside Quantify
    _dock, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train model")
    train.form.n_spectra_spin.setValue(4000)
    worker = train.train()
    if worker is None:
        print(f"make_screenshots: training did not start ({train.status.text()})",
              file=sys.stderr)
        return 1
    wait_for(lambda: len(train.loss_canvas.epochs) >= 3, timeout_s=600)
    settle()
    save(viewer, args.output / "gui_train.png")
    train.cancel()
    wait_for(lambda: train.worker is None, timeout_s=120)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
