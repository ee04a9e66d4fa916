"""A cube read a slab of whole rows at a time, onto an instrument's channels.

The physics quantification and the element search need a map's sum spectrum,
per-pixel summaries and, later, some rows again, but never the whole cube at once:
a lazy (dask) frame of 264 x 264 x 1024 channels is 570 MB as float64, and a
resampled copy as much again. Each slab is read, resampled (the one resampler,
:func:`~napari_xrfquant.io.grid.resample_counts`) and has its NaN set to 0 counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

#: Pixels read at once (whole rows: at least one row).
SLAB_PIXELS = 4096


def slab_ranges(rows: int, cols: int, slab_pixels: int = SLAB_PIXELS) -> list[tuple[int, int]]:
    """``(first_row, last_row)`` of each slab of whole rows of a ``rows`` x ``cols``
    map, top to bottom, about ``slab_pixels`` pixels each (one row at least)."""
    step = max(1, slab_pixels // max(cols, 1))
    return [(first, min(rows, first + step)) for first in range(0, rows, step)]


def read_rows(counts: Any, energy_keV: np.ndarray, target_keV: np.ndarray, first: int,
              last: int) -> np.ndarray:
    """Rows ``first:last`` of a cube ``(H, W, C)`` as spectra ``(n, C')`` on
    ``target_keV`` (resampled when the axes differ), float64, NaN read as 0."""
    from napari_xrfquant.io.grid import resample_counts, same_grid

    rows = np.asarray(counts[first:last])
    slab = rows.astype(np.float64)  # a copy: the NaN below are set in place
    if not same_grid(np.asarray(energy_keV), target_keV):
        slab = resample_counts(slab, np.asarray(energy_keV), target_keV)
    spectra = slab.reshape(-1, slab.shape[-1])
    if rows.dtype.kind in "fc":  # integer counts hold no NaN (and a check costs a pass)
        np.nan_to_num(spectra, copy=False, nan=0.0)
    return spectra


def row_slabs(counts: Any, energy_keV: np.ndarray, target_keV: np.ndarray,
              slab_pixels: int = SLAB_PIXELS) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(first_row, last_row, spectra)`` of each slab of whole rows, top to bottom
    (:func:`read_rows`), about ``slab_pixels`` pixels each."""
    rows, cols = (int(n) for n in np.shape(counts)[:2])
    for first, last in slab_ranges(rows, cols, slab_pixels):
        yield first, last, read_rows(counts, energy_keV, target_keV, first, last)
