"""Write the README's docked-layout screenshots (docs/images/gui_docks_<W>x<H>.png).

Run under a virtual display as large as the largest window::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/make_layout_screenshots.py

napari starts as ``make run`` starts it (the sample cube, Quantify beside the
canvas, the Spectrum inspector under it, napari's default settings); the
Calibrate and Train docks are then added as the Plugins menu adds them
(``add_plugin_dock_widget``, no tabify asked), the window is resized to a
laptop's 1366 x 768 and to 1920 x 1080, and each picture is the window with
Quantify in front.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "images"
SIZES = ((1366, 768), (1920, 1080))


def main() -> int:
    # napari's default settings, not this machine's
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")
    from make_screenshots import close_notification_toasts, settle  # beside this script

    from napari_xrfquant._napari.launch import PLUGIN, build_viewer

    viewer, _quantify, _inspector = build_viewer(show=True)
    docks = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[0]
             for name in ("Quantify", "Calibrate", "Train model")}
    settle(2.0)
    window = viewer.window._qt_window
    for width, height in SIZES:
        window.resize(width, height)
        docks["Quantify"].raise_()
        viewer.reset_view()
        close_notification_toasts()
        settle(1.5)
        image = viewer.screenshot(canvas_only=False, flash=False)
        path = OUTPUT / f"gui_docks_{width}x{height}.png"
        import imageio.v3 as iio

        iio.imwrite(path, image)
        sizes = ", ".join(f"{name} {dock.width()}x{dock.height()}"
                          for name, dock in docks.items())
        print(f"{path.name}: window {window.width()}x{window.height()}; docks {sizes}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
