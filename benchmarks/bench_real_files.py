"""Real instruments' files: how fast they open and where their lines land.

For each real measurement in ``sample_data/`` (and ``../shared/realdata`` when
it is beside the project), prints the time ``read_cube`` takes, the calibration
source, and how far a named line of the summed spectrum lies from its tabulated
energy: by default (each detector element checked and refined on its own lines)
and with ``detector="stored"`` (the calibrations as the file stores them). The
peak position is the vertex of a parabola through the log counts of the top
three channels; the elastic peak's, the centre fitted beside its Compton peak.

Usage: python benchmarks/bench_real_files.py
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from napari_xrfquant.io import read_cube
from napari_xrfquant.io.peaks import elastic_channel, peak_keV

HERE = Path(__file__).resolve().parents[1]
SAMPLES = HERE / "sample_data"
SHARED = HERE.parent / "shared" / "realdata"
FE, CA, CU, AR = ("Fe Ka", 6.4039), ("Ca Ka", 3.6917), ("Cu Ka", 8.0478), ("Ar Ka", 2.9574)
FILES = [
    (SAMPLES / "aps_2ide" / "axo_std.mda", [FE, CA, CU]),
    (SHARED / "aps_2ide" / "2xfm_0010.mda", [FE, AR]),
    (SAMPLES / "gsecars" / "axorf4_21kev_i050.xrf", [FE]),
    (SAMPLES / "gsecars" / "xrf_spectra.mca", []),
    (SAMPLES / "pixl_breadboard" / "Calibration_box_BHVO-2G_28kV_230uA_03_28_2019_bulk_sum.msa",
     [CA, FE]),
    (SAMPLES / "pixl_breadboard" / "LagunaSalinasdataset.bin", [CA, FE]),
]


def describe(path: Path, lines: list[tuple[str, float]], detector: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        cube = read_cube(path, detector=detector)
        seconds = time.perf_counter() - started
    parts = [f"{path.name[:40]:40s}", f"{detector:6s}", f"{seconds:5.2f} s",
             f"{cube.calibration_source:5s}"]
    summed = cube.region_spectrum(np.ones(cube.shape[:2], bool))
    parts += [f"{name} {1000 * (peak_keV(summed, cube.energy_keV, energy) - energy):+5.0f} eV"
              for name, energy in lines]
    beam = cube.metadata.get("beam_keV")
    if beam:
        spectrum = cube.region_spectrum(np.ones(cube.shape[:2], bool))
        channel = elastic_channel(spectrum, cube.calibration_keV, beam)
        if channel is not None:
            at = float(np.interp(channel, np.arange(cube.shape[2]), cube.energy_keV))
            parts.append(f"elastic {1000 * (at - beam):+5.0f} eV")
    resolution = cube.metadata.get("resolution_eV")
    if resolution:
        parts.append(f"FWHM {resolution[1]:.0f} eV at {resolution[0]}")
    return " | ".join(parts)


def main() -> None:
    print("file | detector | read time | calibration source | line positions")
    for path, lines in FILES:
        if not path.exists():
            print(f"{path.name}: not here (../shared/realdata is not beside the project)")
            continue
        for detector in ("sum", "stored"):
            print(describe(path, lines, detector))


if __name__ == "__main__":
    main()
