"""A test cube from a set-up that is not the reference one (for tests and benchmarks).

The hidden instrument differs from ``reference.toml`` the way beamtimes do: a
polycapillary optic transmitting about 0.95 at 8 keV and 0.3 at 22 keV, a
shifted and stretched energy calibration, a worse resolution, a stronger tail
and shelf and another continuum. The cube holds the three BAM standards and
four unknown alloys in bands of equal width, with Poisson counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant.instrument import Instrument, reference_instrument

if TYPE_CHECKING:
    from napari_xrfquant.calibration.groups import PixelGroups

ELEMENTS = ("Au", "Ag", "Cu", "Ni", "Zn")
STANDARDS = ("ERM-EB506", "ERM-EB507", "ERM-EB508")
#: The unknown alloys (wt% Au, Ag, Cu, Ni, Zn): 18k yellow, 14k red, a white and a
#: silver-rich alloy.
UNKNOWN_WT_PERCENT = (
    (75.0, 15.0, 10.0, 0.0, 0.0),
    (58.5, 9.0, 32.5, 0.0, 0.0),
    (75.0, 0.0, 9.0, 12.0, 4.0),
    (37.5, 55.0, 7.5, 0.0, 0.0),
)

#: What the hidden set-up changes (dotted instrument keys).
HIDDEN_CHANGES = {
    "detector.offset_keV": 0.015,
    "detector.gain_keV": 0.035 * 1.003,
    "detector.noise_keV": 0.120,
    "detector.tail_fraction": 0.05,
    "detector.shelf_fraction": 0.008,
    "continuum.fraction": 0.035,
    "continuum.power": 1.3,
}
HIDDEN_OPTIC = {
    "model": "sigmoids",
    "low_keV": 1.2,
    "low_width_keV": 0.35,
    "high_keV": 19.3,
    "high_width_keV": 2.6,
}


def hidden_instrument() -> Instrument:
    """The set-up the test cube was measured with (not the reference one)."""
    return reference_instrument().replace(optic=HIDDEN_OPTIC, **HIDDEN_CHANGES)


@dataclass
class HiddenCube:
    """Counts, the labels of its regions and the truth."""

    counts: np.ndarray  #: (H, W, C) uint32
    energy_keV: np.ndarray  #: the nominal (reference) channel energies the file would state
    labels: np.ndarray  #: (H, W): 1-3 standards, 4-7 unknown alloys
    wt_percent: np.ndarray  #: (7, 5) truth of each region
    instrument: Instrument  #: the hidden instrument


def hidden_cube(
    pixels_per_region: tuple[int, int] = (4, 4), counts_per_pixel: float = 2e4, seed: int = 0
) -> HiddenCube:
    """Seven regions side by side (3 standards, 4 unknowns), simulated with the hidden set-up."""
    from napari_xrfquant.physics import simulate
    from napari_xrfquant.physics.standards import library

    inst = hidden_instrument()
    standards = [library()[name].vector(list(ELEMENTS)) for name in STANDARDS]
    wt = np.asarray([*standards, *UNKNOWN_WT_PERCENT], dtype=np.float64)
    spectra = simulate(wt, list(ELEMENTS), instrument=inst)
    rows, cols = pixels_per_region
    labels = np.repeat(np.arange(1, len(wt) + 1), cols)[None, :].repeat(rows, axis=0)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(spectra[labels - 1] * counts_per_pixel).astype(np.uint32)
    return HiddenCube(counts, reference_instrument().energy_axis_keV(), labels, wt, inst)


def standard_groups(
    instrument: Instrument, seed: int, counts_per_pixel: float = 2e5
) -> PixelGroups:
    """The three standards, 2 x 2 pixels each, simulated with ``instrument`` (Poisson
    counts) and grouped as a calibration takes them: a set-up's term fitted back."""
    from napari_xrfquant.calibration.groups import group_pixels
    from napari_xrfquant.physics import simulate
    from napari_xrfquant.physics.standards import library

    wt = np.array([library()[name].vector(list(ELEMENTS)) for name in STANDARDS])
    spectra = simulate(wt, list(ELEMENTS), instrument=instrument)
    labels = np.repeat(np.arange(1, len(STANDARDS) + 1), 2)[None, :].repeat(2, axis=0)
    counts = np.random.default_rng(seed).poisson(spectra[labels - 1] * counts_per_pixel)
    standards = {i + 1: library()[name] for i, name in enumerate(STANDARDS)}
    return group_pixels(counts, ELEMENTS, labels=labels, standards=standards)
