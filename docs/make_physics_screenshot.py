"""Write the README's screenshot of the physics quantification (docs/images/gui_physics.png).

The real AXO map (``sample_data/aps_2ide``) opened as a user opens it, the
Quantify dock from the Plugins menu's entry (``add_plugin_dock_widget``),
"Physics (no model)" chosen with the map's instrument file, its Ca/Fe/Cu
standard and the README's element list, then Quantify: napari's default
settings, the window size of ``make_screenshots.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from make_screenshots import OUTPUT, WINDOW, save, scroll_to, settle, wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data" / "aps_2ide"


def main() -> int:
    """Make the screenshot; return the exit status."""
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")
    import napari

    from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM

    viewer = napari.Viewer(show=True)
    viewer.window.resize(*WINDOW)
    viewer.open(SAMPLES / "axo_std.mda", plugin="napari-xrfquant")
    _dock, quantify = viewer.window.add_plugin_dock_widget("napari-xrfquant", "Quantify")
    quantify.model_combo.setCurrentText(PHYSICS_ITEM)
    panel = quantify.physics_panel
    panel.instrument_edit.setText(str(SAMPLES / "instrument.toml"))
    panel.standard_edit.setText(str(SAMPLES / "AXO_CaFeCu.csv"))
    # the film's elements as the README's AXO example lists them (Find elements on this
    # map adds elements that stand for misfits of the model: the README says which)
    panel.elements_edit.setText("Si, P, S, Cl, K, Ca, Ti, Cr, Mn, Fe, Ni, Cu, Zn, Mo, Pd, La, Pb")
    if quantify.run() is None:
        print("make_physics_screenshot: Quantify did not start", file=sys.stderr)
        return 1
    wait_for(lambda: quantify.worker is None, timeout_s=300)
    scroll_to(quantify.model_combo)
    settle()
    save(viewer, OUTPUT / "gui_physics.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
