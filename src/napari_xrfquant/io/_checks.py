"""Checks and helpers shared by the cube readers."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from napari_xrfquant.errors import CubeReadError

#: Size of one dask chunk for lazy cubes: big enough to keep the scheduler's
#: overhead small, small enough that a few in flight fit comfortably in memory.
DASK_CHUNK_BYTES = 64 * 1024**2

#: Cubes above this many bytes open lazily unless told otherwise.
DEFAULT_LAZY_THRESHOLD_BYTES = 2 * 1024**3


class EnergyAxisWarning(UserWarning):
    """The position of the energy axis had to be guessed and may be wrong."""


def normalise_energy_axis(energy_axis: str | int | None, where: str) -> int | None:
    """Turn the user's ``energy_axis`` ("first", "last", 0, 2, -1 or None) into 0, 2 or None."""
    if energy_axis is None:
        return None
    if isinstance(energy_axis, str):
        choice = energy_axis.strip().lower()
        if choice == "first":
            return 0
        if choice == "last":
            return 2
    elif isinstance(energy_axis, (int, np.integer)) and int(energy_axis) in (0, 2, -1):
        return 0 if int(energy_axis) == 0 else 2
    raise CubeReadError(f"{where}: energy_axis must be 'first' or 'last', got {energy_axis!r}")


def guess_energy_axis(shape: tuple[int, ...], where: str) -> int:
    """Guess which end of a 3-D shape is the energy axis (0 or 2).

    The middle axis is always spatial. Of the two ends, the energy axis is the
    one whose length is least like the middle one's (largest ``|log|`` ratio):
    map sides are similar to each other, channel counts are not. ``(1024, 264,
    264)`` gives 0, ``(100, 80, 1024)`` gives 2. A tie (e.g. a cube with all
    sides equal) falls back to 0, the image-stack convention, with an
    :class:`EnergyAxisWarning`.
    """
    first, middle, last = (max(int(n), 1) for n in shape)
    unlike_first = abs(math.log(first / middle))
    unlike_last = abs(math.log(last / middle))
    if math.isclose(unlike_first, unlike_last, abs_tol=1e-12):
        warnings.warn(
            f"{where}: cannot tell the energy axis of shape {tuple(shape)}; "
            "taking the first axis (pass energy_axis='first' or 'last' to choose)",
            EnergyAxisWarning,
            stacklevel=3,
        )
        return 0
    return 0 if unlike_first > unlike_last else 2


def check_rank(shape: tuple[int, ...], where: str) -> None:
    """Refuse anything but a 3-D cube with at least one pixel and two channels."""
    if len(shape) != 3:
        raise CubeReadError(
            f"{where}: data is {len(shape)}-D with shape {tuple(shape)}; "
            "expected a 3-D cube (rows, cols, channels)"
        )
    if min(shape) < 1:
        raise CubeReadError(f"{where}: data is empty (shape {tuple(shape)})")


def check_numeric_dtype(dtype: Any, where: str) -> np.dtype:
    """Refuse data that cannot be counts: strings, compounds, booleans, complex."""
    dt = np.dtype(dtype)
    if dt.fields is not None:
        raise CubeReadError(f"{where}: data has a compound type ({dt}), not numeric counts")
    if dt.kind not in "iuf":
        kinds = {"b": "boolean", "c": "complex", "S": "string", "U": "string", "O": "object"}
        kind = kinds.get(dt.kind, dt.kind)
        raise CubeReadError(f"{where}: data is {kind} ({dt}), not numeric counts")
    return dt


#: Bytes of counts checked for NaN/inf/negative values when a cube opens lazily.
LAZY_SAMPLE_BYTES = 4 * 1024**2


def lazy_sample(
    data: Any,
    source: Any = None,
    energy_axis: int = 2,
    target_bytes: int = LAZY_SAMPLE_BYTES,
) -> np.ndarray:
    """The counts a lazy cube is checked on at open: the top-left corner of its first chunk.

    A lazy cube is not read through at open (that is what makes it lazy); the
    corner holds whole spectra of up to ``target_bytes``, so a file that is bad
    throughout is still refused at once, cheaply.

    Parameters
    ----------
    data
        The lazy cube, channel-last dask array.
    source
        The array in the file (h5py dataset, memmap) in file axis order; when
        given the corner is sliced from it directly, since dask would read its
        whole first chunk to hand back a corner of it.
    energy_axis
        Axis of ``source`` that holds the channels.
    target_bytes
        Size of the sample.

    Returns
    -------
    numpy.ndarray
        Channel-last ``(rows, cols, C)`` counts.
    """
    block_rows, block_cols = (int(n) for n in data.chunksize[:2])
    channels = int(data.chunksize[2] if source is None else data.shape[2])
    pixels = max(1, target_bytes // max(channels * np.dtype(data.dtype).itemsize, 1))
    n_cols = min(block_cols, pixels)
    n_rows = min(block_rows, max(1, pixels // n_cols))
    if source is None:
        # Stay inside the first chunk: a TIFF stack with one page per channel
        # would otherwise decode every page.
        return np.asarray(data.blocks[0, 0, 0][:n_rows, :n_cols, :].compute())
    index: list[slice] = [slice(None)] * 3
    row_axis, col_axis = spatial_axes(energy_axis)
    index[row_axis], index[col_axis] = slice(0, n_rows), slice(0, n_cols)
    return np.asarray(move_energy_last(np.asarray(source[tuple(index)]), energy_axis))


class SliceOnly:
    """Read-only slicing view of an array (memmap) for ``dask.array.from_array``.

    ``from_array`` copies anything that has a ``.copy`` method, and a memmap's
    copy reads the whole file into memory; this wrapper offers only shape,
    dtype and slicing, so each dask chunk reads just its own slice.
    """

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.array(self._array[index])


def dask_name(path: Any, *parts: Any) -> str:
    """A dask graph name for data read from ``path``, without hashing the data.

    dask would otherwise hash a memmap's whole buffer to name it, reading the
    entire file at open; the file's identity (path, size, modification time)
    and what was read from it name it as well.
    """
    import hashlib
    import os

    stat = os.stat(path)
    identity = repr((os.fspath(path), stat.st_size, stat.st_mtime_ns, *parts))
    return "xrfquant-cube-" + hashlib.sha1(identity.encode()).hexdigest()


def decide_lazy(nbytes: int, lazy: bool | None, threshold_bytes: int) -> bool:
    """Open lazily when forced, or when the cube is larger than the threshold."""
    if lazy is not None:
        return bool(lazy)
    return nbytes > threshold_bytes


def move_energy_last(array: Any, energy_axis: int) -> Any:
    """View of ``array`` with the energy axis moved last (numpy or dask)."""
    if energy_axis == 2:
        return array
    order = [axis for axis in range(3) if axis != energy_axis] + [energy_axis]
    return array.transpose(order)


def spatial_axes(energy_axis: int) -> tuple[int, int]:
    """File axes of (row, col) when the energy sits on ``energy_axis``."""
    row_axis, col_axis = (axis for axis in range(3) if axis != energy_axis)
    return row_axis, col_axis


def pixel_index(row: int, col: int, energy_axis: int) -> tuple[Any, ...]:
    """Index tuple selecting one pixel's spectrum in file axis order."""
    index: list[Any] = [None, None, None]
    row_axis, col_axis = spatial_axes(energy_axis)
    index[row_axis], index[col_axis], index[energy_axis] = row, col, slice(None)
    return tuple(index)


def dask_chunks(
    shape: tuple[int, ...],
    itemsize: int,
    storage_chunks: tuple[int, ...] | None,
    energy_axis: int,
    target_bytes: int = DASK_CHUNK_BYTES,
) -> tuple[int, ...]:
    """Dask chunks that are whole multiples of the storage chunks.

    Starts from the storage chunk (or one pixel's full spectrum for contiguous
    data) and grows along the columns, then the rows, while the chunk stays
    under ``target_bytes``; a whole spectrum always stays in one chunk when
    storage allows it, so per-pixel work never gathers across chunks.
    """
    if storage_chunks is None:
        chunks = [1, 1, 1]
        chunks[energy_axis] = shape[energy_axis]
    else:
        chunks = [min(int(c), int(n)) for c, n in zip(storage_chunks, shape, strict=True)]
    row_axis, col_axis = spatial_axes(energy_axis)
    for axis in (col_axis, row_axis, energy_axis):
        step = chunks[axis]
        while chunks[axis] < shape[axis]:
            grown = min(chunks[axis] + step, shape[axis])
            if math.prod(chunks) // chunks[axis] * grown * itemsize > target_bytes:
                break
            chunks[axis] = grown
    return tuple(chunks)


def position_grid(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Point index at each (row, col) of the grid the stage positions make, and the grid's
    X positions; None when they do not fill a grid (a point missing or twice).

    Rows go by Y and columns by X, both increasing; positions equal to 1e-6 (of
    their unit) are one. The readers of point spectra (MSA folders, PIXLISE
    datasets) lay their points out so.
    """
    x = np.round(np.asarray(x, dtype=np.float64), 6)
    y = np.round(np.asarray(y, dtype=np.float64), 6)
    xs, ys = np.unique(x), np.unique(y)
    if xs.size * ys.size != x.size:
        return None
    grid = np.full((ys.size, xs.size), -1)
    grid[np.searchsorted(ys, y), np.searchsorted(xs, x)] = np.arange(x.size)
    return (grid, xs) if (grid >= 0).all() else None
