"""Write docs/images/screenshot.png: the sample quantified, Au/Ag/Cu overlaid, a spectrum inspected.

Run under a (virtual) display::

    xvfb-run -a .venv/bin/python docs/make_screenshot.py

It opens napari exactly as ``make run`` does (sample cube, Quantify and
Spectrum inspector docked), runs Quantify on the CPU with the bundled model
(air around the plate masked at the widget's default threshold), shows the
Au, Ag and Cu maps additively blended over each other, plots the spectrum of a
pixel in the ERM-EB506 rose-gold block (Cu and Zn lines beside Au's), and saves
the whole window.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT = Path(__file__).resolve().parent / "images" / "screenshot.png"
SHOWN_ELEMENTS = ("Au", "Ag", "Cu")
#: Rose gold (Au 58.6, Cu 35.7, Ag 3.9, Zn 1.9 wt%): its spectrum shows Cu and Zn K lines.
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


def inspected_pixel(viewer: Any, region_name: str = INSPECTED_REGION) -> tuple[int, int]:
    """A pixel near the centre of the truth region named ``region_name*``.

    Falls back to the first truth region, then to the map centre.
    """
    truth = [lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "truth_regions"]
    if truth:
        labels = np.asarray(truth[0].data)
        names = list(truth[0].metadata.get("region_names") or ())
        wanted = [i for i, name in enumerate(names) if str(name).startswith(region_name)]
        rows, cols = np.nonzero(labels == (wanted[0] if wanted else 1))
        if rows.size:
            return int(np.median(rows)), int(np.median(cols))
    height, width = viewer.layers[0].data.shape[-2:]
    return height // 2, width // 2


def plate_mask(viewer: Any) -> np.ndarray:
    """Pixels of the sample itself: truth label > 0, else >= 10 % of the median counts."""
    truth = [lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "truth_regions"]
    if truth:
        return np.asarray(truth[0].data) > 0
    total = next(lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "total_counts")
    counts = np.asarray(total.data, dtype=np.float64)
    return counts >= 0.1 * np.median(counts)


def close_notification_toasts() -> None:
    """Close napari's pop-up notifications: they would cover the canvas in the picture."""
    from qtpy.QtWidgets import QApplication

    for widget in QApplication.allWidgets():
        if type(widget).__name__ == "NapariQtNotification":
            widget.close()
    for _ in range(10):
        QApplication.processEvents()
        time.sleep(0.03)


def main(argv: list[str] | None = None) -> int:
    """Make the screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    parser.add_argument("--model", type=Path, default=None,
                        help="model bundle to use instead of the bundled default")
    args = parser.parse_args(argv)

    from matplotlib.image import imsave
    from qtpy.QtWidgets import QApplication

    from napari_xrfquant._files import atomic_path
    from napari_xrfquant._napari.launch import build_viewer
    viewer, quantify, inspector = build_viewer(show=True)
    viewer.window.resize(1700, 1150)
    if not quantify.cube_combo.currentText():
        print("make_screenshot: no sample cube (xrfquant sample)", file=sys.stderr)
        return 1
    quantify.device_combo.setCurrentText("cpu")
    if args.model is not None:
        quantify.add_model(args.model)
    started = time.perf_counter()
    worker = quantify.run()
    if worker is None:
        print(f"make_screenshot: cannot quantify ({quantify.model_error})", file=sys.stderr)
        return 1
    wait_for(lambda: quantify.worker is None, timeout_s=300)
    print(f"quantified the sample in {time.perf_counter() - started:.2f} s (incl. GUI)")

    from napari_xrfquant._napari._result_layers import concentration_layer_name

    model_id = str(quantify.shown_result.model_id)
    shown = {concentration_layer_name(element, model_id) for element in SHOWN_ELEMENTS}
    for layer in viewer.layers:
        layer.visible = layer.name in shown
    missing = shown - {layer.name for layer in viewer.layers}
    if missing:
        print(f"make_screenshot: no layers {sorted(missing)}", file=sys.stderr)
        return 1
    plate = plate_mask(viewer)
    for name in shown:
        # stretch each map over the plate's own range, so alloys differ in colour
        values = np.asarray(viewer.layers[name].data)[plate]
        low, high = np.nanpercentile(values, (1.0, 99.5))
        viewer.layers[name].contrast_limits = (float(low), float(max(high, low + 1e-3)))
    viewer.layers.selection.active = viewer.layers[concentration_layer_name("Au", model_id)]
    viewer.reset_view()
    row, col = inspected_pixel(viewer)
    inspector.show_pixel(row, col)
    for _ in range(20):  # let Qt lay out and paint the docks before grabbing
        QApplication.processEvents()
        time.sleep(0.05)
    close_notification_toasts()
    image = viewer.screenshot(canvas_only=False, flash=False)
    with atomic_path(args.output, overwrite=True) as tmp:
        imsave(tmp, image, format="png")
    print(f"wrote {args.output} ({image.shape[1]} x {image.shape[0]} px)")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
