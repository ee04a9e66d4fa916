"""A cube read a slab of whole rows at a time, onto an instrument's channels.

The physics quantification and the element search need a map's sum spectrum,
per-pixel summaries and, later, some rows again, but never the whole cube at once:
a lazy (dask) frame of 264 x 264 x 1024 channels is 570 MB as float64, and a
resampled copy as much again. Each slab is read, resampled (the one resampler,
:func:`~napari_xrfquant.io.grid.resample_counts`) and has its NaN set to 0 counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Pixels read at once (whole rows: at least one row).
SLAB_PIXELS = 4096
#: A lazy cube's chunk of rows larger than this (in the file's dtype) is not held but
#: read a slab at a time (an energy-first file chunked by channels has one chunk of
#: all its rows).
HOLD_BYTES = 256 * 2**20


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
    (:func:`read_rows`), about ``slab_pixels`` pixels each, read as the cube is
    stored (:class:`RowReader`)."""
    cols = int(np.shape(counts)[1])
    reader = RowReader(counts, energy_keV, target_keV)
    for start, stop in reader.blocks():
        for first, last in slab_ranges(stop - start, cols, slab_pixels):
            yield start + first, start + last, reader.rows(start + first, start + last)


class RowReader:
    """Rows of a cube :func:`read_rows` reads, a lazy (dask) cube's chunk of rows
    computed once for all the reads that fall in it.

    A dask cube computes a whole chunk for any slice of it: the bundled sample's
    file (HDF5, gzip) is read in chunks of 124 rows, so slabs of 15 rows computed
    each chunk 8 times (the element search's two passes 4.6 s each; 0.5 s read
    from the file directly). The chunk last computed is kept (in the file's own
    dtype: 67 MB for 124 rows of 264 pixels x 1,024 uint16 channels), unless it is
    larger than :data:`HOLD_BYTES`; a cube in memory or of another type is sliced
    as asked.
    """

    def __init__(self, counts: Any, energy_keV: np.ndarray, target_keV: np.ndarray) -> None:
        self.counts, self.energy_keV, self.target_keV = counts, energy_keV, target_keV
        shape = tuple(int(n) for n in np.shape(counts))
        # a dask array's chunks are sizes per axis (an h5py dataset's are one shape)
        self._lazy = hasattr(counts, "dask")
        sizes = counts.chunks[0] if self._lazy else (shape[0],)
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._row_bytes = math.prod(shape[1:]) * np.dtype(getattr(counts, "dtype", "f8")).itemsize
        self._held: tuple[int, np.ndarray] | None = None  # first row, rows

    def blocks(self) -> list[tuple[int, int]]:
        """``(first_row, last_row)`` of each chunk of rows the cube is computed in."""
        return [(int(a), int(b)) for a, b in zip(self._starts[:-1], self._starts[1:],
                                                  strict=True)]

    def rows(self, first: int, last: int) -> np.ndarray:
        """Rows ``first:last`` as :func:`read_rows` gives them."""
        if not self._lazy:
            return read_rows(self.counts, self.energy_keV, self.target_keV, first, last)
        pieces = []
        row = first
        while row < last:  # each chunk of rows it spans, computed once
            block = int(np.searchsorted(self._starts, row, side="right")) - 1
            start, stop = int(self._starts[block]), int(self._starts[block + 1])
            end = min(last, stop)
            if (stop - start) * self._row_bytes > HOLD_BYTES:
                pieces.append(np.asarray(self.counts[row:end]))  # too large to hold
            else:
                pieces.append(self._hold(start, stop)[row - start:end - start])
            row = end
        block_rows = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return read_rows(block_rows, self.energy_keV, self.target_keV, 0, last - first)

    def _hold(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (a chunk of them), computed unless they are the ones held."""
        if self._held is None or self._held[0] != start:
            self._held = (start, np.asarray(self.counts[start:stop]))
        return self._held[1]
