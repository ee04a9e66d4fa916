"""Write ``tests/data/tube_pymca_ebel.json``: PyMca's Ebel tube spectra for the tube tests.

PyMca5 (``pip install PyMca5``, which needs fisx) computes H. Ebel's model in
``PyMca5.PyMcaPhysics.xrf.XRayTubeEbel``; its continuum at whole keV and its
K lines for a few tubes are the reference ``tests/test_physics_tube.py``
compares ``napari_xrfquant.xray_tube`` with, so that the test runs where
PyMca is not installed.

Usage: python scripts/make_tube_reference.py [OUTPUT]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

#: anode, kV, electron incidence and X-ray take-off (deg), Be window (cm), transmission
#: anode thickness (cm) or None.
CASES = [
    ("Rh", 28.0, 90.0, 45.0, 0.0125, None),
    ("Rh", 40.0, 70.0, 20.0, 0.0075, None),
    ("W", 30.0, 90.0, 30.0, 0.0125, None),
    ("Mo", 45.0, 80.0, 60.0, 0.0100, None),
    ("Rh", 28.0, 90.0, 90.0, 0.01504, 0.0001),
]
BE_DENSITY = 1.848


def main(argv: list[str]) -> int:
    from PyMca5 import version
    from PyMca5.PyMcaPhysics.xrf import Elements, XRayTubeEbel

    output = Path(argv[0]) if argv else Path("tests/data/tube_pymca_ebel.json")
    records = []
    for anode, kv, incidence, takeoff, window_cm, thickness in CASES:
        density = Elements.Element[anode]["density"]
        target = [anode, density, 0.1 if thickness is None else thickness]
        energies = [float(e) for e in np.arange(2.0, kv, 1.0)]
        options = dict(window=["Be", BE_DENSITY, window_cm], alphae=incidence, alphax=takeoff,
                       transmission=thickness is not None, targetthickness=thickness)
        continuum = XRayTubeEbel.continuumEbel(target, kv, np.array(energies), **options)
        lines = XRayTubeEbel.characteristicEbel(target, kv, **options)
        records.append({
            "anode": anode, "voltage_kV": kv, "incidence_deg": incidence, "takeoff_deg": takeoff,
            "be_window_cm": window_cm, "transmission_thickness_cm": thickness,
            "energies_keV": energies, "continuum": [float(v) for v in continuum],
            "lines": [[str(name), float(energy), float(photons)]
                      for energy, photons, name in lines],
        })
    document = {
        "source": f"PyMca5 {version()} XRayTubeEbel (MIT licence), "
                  "written by scripts/make_tube_reference.py",
        "units": "continuum photons/(s sr mA keV); lines photons/(s sr mA)",
        "cases": records,
    }
    output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
