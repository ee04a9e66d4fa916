"""Shared fixtures: small synthetic XRF cubes (Gaussian peaks on a background, Poisson noise)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The sample cube is simulated on first use; keep it for the test runs of this
# machine in a folder of its own rather than the user's cache.
os.environ.setdefault(
    "XRFQUANT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "napari-xrfquant-test-cache")
)

#: Channel width and offset of the synthetic cubes (keV); deliberately not the
#: reference instrument's, so a test sees whether the file's calibration is used.
SYNTH_GAIN_KEV = 0.04
SYNTH_OFFSET_KEV = -0.02


def synthetic_counts(
    rows: int = 12,
    cols: int = 10,
    channels: int = 256,
    seed: int = 0,
    dtype: type = np.uint16,
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts ``(rows, cols, channels)`` and their energy axis (keV).

    Two Gaussian lines (Cu Ka 8.05 keV, Au La 9.71 keV, clipped to the axis)
    whose strengths vary across the map, on a flat background.
    """
    rng = np.random.default_rng(seed)
    energy_keV = SYNTH_OFFSET_KEV + SYNTH_GAIN_KEV * np.arange(channels, dtype=np.float64)
    top = energy_keV[-1]
    lines_keV = np.array([min(8.05, 0.5 * top), min(9.71, 0.8 * top)])
    sigma_keV = 0.07
    shapes = np.exp(-0.5 * ((energy_keV[None, :] - lines_keV[:, None]) / sigma_keV) ** 2)
    yy, xx = np.mgrid[0:rows, 0:cols]
    amplitude = np.stack([20 + 5 * yy, 30 + 3 * xx], axis=-1).astype(np.float64)
    expected = 1.5 + amplitude @ shapes
    return rng.poisson(expected).astype(dtype), energy_keV


@pytest.fixture
def xrf_counts() -> tuple[np.ndarray, np.ndarray]:
    """A 12 x 10 x 256 uint16 cube and its energy axis (keV)."""
    return synthetic_counts()


@pytest.fixture(scope="session")
def alloy_frames() -> list[np.ndarray]:
    """Four 4 x 5 px frames (uint16, reference instrument, 2e4 counts per pixel): rose
    gold in the first 1-4 columns, yellow gold in the rest -- a campaign of frames that differ."""
    from napari_xrfquant.physics import simulate

    rose = [58.56, 3.90, 35.65, 0.0, 1.891]
    yellow = [75.12, 24.90, 0.0, 0.0, 0.0]
    frames = []
    for i in range(4):
        wt = np.array([rose if col < 1 + i else yellow for _ in range(4) for col in range(5)])
        counts = simulate(wt, ["Au", "Ag", "Cu", "Ni", "Zn"], counts=2e4, seed=10 + i)
        frames.append(counts.reshape(4, 5, -1).astype(np.uint16))
    return frames


def fisx_family_intensities(xrf, elements, names) -> tuple[float, float]:
    """fisx's primary and secondary intensity of the line families ``names`` (summed)."""
    result = xrf.getMultilayerFluorescence(names, elements, secondary=2, useMassFractions=1)
    primary = secondary = 0.0
    for key in result:
        for line in result[key][0].values():
            primary += line["primary"]
            secondary += line["secondary"]
    return primary, secondary


class RowCountingCube:
    """A lazy cube as a reader hands it over: a shape, and rows read on demand (the
    number of rows of each read kept in ``rows_read``)."""

    def __init__(self, data) -> None:
        self.data = data
        self.shape = data.shape
        self.rows_read: list[int] = []

    def __getitem__(self, key):
        rows = self.data[key]
        self.rows_read.append(len(rows))
        return rows
