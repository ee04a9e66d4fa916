"""NumPy ``.npy`` cubes, always opened through a read-only memory map.

A ``.npy`` file has no metadata: the energy axis position follows
``energy_axis`` or the shape rule, and the calibration comes from a sidecar
``<name>.calib.json`` or the reference instrument.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import (
    DEFAULT_LAZY_THRESHOLD_BYTES,
    SliceOnly,
    check_numeric_dtype,
    check_rank,
    dask_chunks,
    dask_name,
    decide_lazy,
    guess_energy_axis,
    move_energy_last,
    normalise_energy_axis,
    pixel_index,
)
from napari_xrfquant.io.calibration import resolve_energy_axis
from napari_xrfquant.io.cube import Cube

#: First bytes of every .npy file (format specification, numpy.lib.format).
_NPY_MAGIC = b"\x93NUMPY"


def _map(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CubeReadError(f"{path.name}: no such file")
    with path.open("rb") as handle:
        magic = handle.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise CubeReadError(f"{path.name}: not a readable .npy file (no NumPy header)")
    try:
        # Mapping costs nothing up front; allow_pickle=False refuses object arrays
        # (which could run code) with a ValueError.
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        message = str(exc)
        if "mmap length" in message or "larger than" in message:
            raise CubeReadError(f"{path.name}: .npy file is truncated") from None
        if "pickle" in message.lower() or "object" in message.lower():
            raise CubeReadError(
                f"{path.name}: .npy holds Python objects, not numeric counts"
            ) from None
        raise CubeReadError(f"{path.name}: not a readable .npy file ({message})") from None
    except (OSError, EOFError) as exc:
        raise CubeReadError(f"{path.name}: not a readable .npy file ({exc})") from None


def open_npy(
    path: str | os.PathLike[str],
    energy_axis: str | int | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
    calibration: Sequence[float] | None = None,
) -> Cube:
    """Read a cube from a ``.npy`` file. Parameters as :func:`napari_xrfquant.io.read_cube`."""
    file_path = Path(path)
    where = file_path.name
    axis_choice = normalise_energy_axis(energy_axis, where)
    mapped = _map(file_path)
    if not isinstance(mapped, np.ndarray):
        raise CubeReadError(f"{where}: not a .npy array")
    check_numeric_dtype(mapped.dtype, where)
    check_rank(mapped.shape, where)
    axis = axis_choice if axis_choice is not None else guess_energy_axis(mapped.shape, where)
    energy, source = resolve_energy_axis(file_path, mapped.shape[axis], None, calibration)
    metadata = {"format": "NPY", "energy_axis_in_file": {0: "first", 2: "last"}[axis]}
    if decide_lazy(mapped.nbytes, lazy, lazy_threshold_bytes):
        import dask.array as da

        chunks = dask_chunks(mapped.shape, mapped.dtype.itemsize, None, axis)
        name = dask_name(file_path, chunks)
        data = move_energy_last(
            da.from_array(SliceOnly(mapped), chunks=chunks, asarray=True, name=name), axis
        )

        def read_pixel(row: int, col: int) -> np.ndarray:
            return np.array(mapped[pixel_index(row, col, axis)])

        return Cube(data, energy, source, file_path, metadata, "NPY", _read_pixel=read_pixel)
    values = np.ascontiguousarray(move_energy_last(mapped, axis))
    if isinstance(values, np.memmap) or np.shares_memory(values, mapped):
        values = np.array(values)  # detach from the file so it can be replaced or deleted
    return Cube(values, energy, source, file_path, metadata, "NPY")
