"""The :class:`Cube`: counts (rows, cols, channels) with their energy axis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant.io.calibration import fit_calibration, is_linear

#: Reads the spectrum ``(C,)`` of one pixel straight from the file.
PixelReader = Callable[[int, int], np.ndarray]


@dataclass(eq=False)
class Cube:
    """A spectral cube read from a file.

    Attributes
    ----------
    data
        Counts, channel-last ``(H, W, C)``: a numpy array, or a dask array when
        the cube was opened lazily (then the file stays open until
        :meth:`close`).
    energy_keV
        ``(C,)`` float64 channel-centre energies in keV, strictly increasing.
    calibration_source
        Where ``energy_keV`` came from: ``"file"``, ``"sidecar"`` or
        ``"reference"``.
    path
        The file read, or None for a cube built in memory.
    metadata
        What the file says about itself. Keys that readers fill when the file
        has them: ``format`` (same as :attr:`format`), ``dataset`` (HDF5 path),
        ``energy_axis_in_file`` (``"first"``, ``"last"`` or an axis index),
        ``pixel_size_um``, ``units``, ``instrument`` (TOML text), ``truth``
        (:class:`~napari_xrfquant.io.GroundTruth` of simulated CXC cubes),
        ``attrs`` (the file's own root attributes).
    format
        Human-readable format name, e.g. ``"CXC HDF5"``, ``"NeXus"``, ``"TIFF"``.

    Examples
    --------
    >>> import numpy as np
    >>> cube = Cube(np.ones((2, 3, 4), np.uint16), np.arange(4) * 0.035, "reference")
    >>> cube.total_counts().tolist()
    [[4, 4, 4], [4, 4, 4]]
    """

    data: Any
    energy_keV: np.ndarray
    calibration_source: str
    path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = "array"
    _read_pixel: PixelReader | None = field(default=None, repr=False)
    _closer: Callable[[], None] | None = field(default=None, repr=False)

    # -- shape and calibration ----------------------------------------------
    @property
    def lazy(self) -> bool:
        """True when :attr:`data` is a dask array backed by the open file."""
        return not isinstance(self.data, np.ndarray)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, channels)``."""
        rows, cols, channels = self.data.shape
        return int(rows), int(cols), int(channels)

    @property
    def dtype(self) -> np.dtype:
        """Data type of the counts as stored."""
        return np.dtype(self.data.dtype)

    @property
    def calibration_keV(self) -> tuple[float, float, float]:
        """``(offset, gain, quadratic)`` of ``E = offset + gain k + quadratic k**2``:
        exact for a polynomial axis (quadratic 0 for a linear one), else least squares."""
        return fit_calibration(self.energy_keV)

    @property
    def offset_keV(self) -> float:
        """Energy of channel 0 (of :attr:`calibration_keV`)."""
        return self.calibration_keV[0]

    @property
    def gain_keV(self) -> float:
        """Linear term of :attr:`calibration_keV` (keV per channel)."""
        return self.calibration_keV[1]

    @property
    def quadratic_keV(self) -> float:
        """Quadratic term of :attr:`calibration_keV` (keV per channel squared)."""
        return self.calibration_keV[2]

    @property
    def linear_calibration(self) -> bool:
        """Whether :attr:`energy_keV` is exactly ``offset + gain * channel``."""
        return is_linear(self.energy_keV)

    # -- reductions -----------------------------------------------------------
    def _sum_dtype(self) -> type:
        return np.int64 if np.issubdtype(self.dtype, np.integer) else np.float64

    def total_counts(self) -> np.ndarray:
        """Counts per pixel summed over all channels, ``(H, W)`` numpy array.

        Integer cubes give int64, float cubes float64. A lazy cube is read
        through once, chunk by chunk.
        """
        total = self.data.sum(axis=-1, dtype=self._sum_dtype())
        return np.asarray(total.compute() if self.lazy else total)

    def spectrum(self, row: int, col: int) -> np.ndarray:
        """The spectrum of pixel ``(row, col)``, ``(C,)``.

        A lazy cube reads only that pixel from the file (one HDF5 hyperslab,
        one memmap row, or the TIFF strips holding it), not a dask chunk, so
        this stays fast for spectrum-on-click.

        Raises
        ------
        IndexError
            If the pixel lies outside the cube.
        """
        rows, cols, _ = self.shape
        r, c = int(row), int(col)
        if not (0 <= r < rows and 0 <= c < cols):
            raise IndexError(f"pixel ({r}, {c}) lies outside the {rows} x {cols} cube")
        if not self.lazy:
            return np.array(self.data[r, c, :])
        if self._read_pixel is not None:
            return np.asarray(self._read_pixel(r, c))
        return np.asarray(self.data[r, c, :].compute())

    def region_spectrum(self, mask: np.ndarray) -> np.ndarray:
        """Spectrum summed over the pixels where ``mask`` is True, ``(C,)``.

        Only the bounding box of the mask is read, so a small region of a lazy
        cube is cheap.

        Parameters
        ----------
        mask
            Boolean ``(H, W)`` array.

        Returns
        -------
        numpy.ndarray
            Summed counts (int64 for integer cubes, float64 otherwise); zeros
            if the mask is empty.
        """
        mask = np.asarray(mask)
        rows, cols, channels = self.shape
        if mask.shape != (rows, cols):
            raise ValueError(f"mask shape {mask.shape} does not match the cube's {(rows, cols)}")
        mask = mask.astype(bool, copy=False)
        hit_rows = np.flatnonzero(mask.any(axis=1))
        hit_cols = np.flatnonzero(mask.any(axis=0))
        if hit_rows.size == 0:
            return np.zeros(channels, dtype=self._sum_dtype())
        r0, r1 = int(hit_rows[0]), int(hit_rows[-1]) + 1
        c0, c1 = int(hit_cols[0]), int(hit_cols[-1]) + 1
        window = mask[r0:r1, c0:c1]
        block = self.data[r0:r1, c0:c1, :]
        if self.lazy:
            # Multiply by the mask rather than boolean-index: dask keeps it chunked.
            weights: np.ndarray = window[..., None].astype(self._sum_dtype())
            summed = (block * weights).sum(axis=(0, 1), dtype=self._sum_dtype())
            return np.asarray(summed.compute())
        return block[window].sum(axis=0, dtype=self._sum_dtype())

    # -- resources ------------------------------------------------------------
    def close(self) -> None:
        """Close the file behind a lazy cube; a no-op for in-memory cubes."""
        closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    def __enter__(self) -> Cube:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
