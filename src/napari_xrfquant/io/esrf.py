"""ESRF formats: EDF files (through fabio) and SPEC files with MCA data (through silx).

Both come with the ``formats`` extra. How a file becomes a cube ``(rows,
cols, channels)``:

- **EDF**: one 3-D frame is the cube (the energy axis by the shape rule of
  :mod:`napari_xrfquant.io`); 2-D frames of ``(cols, channels)`` spectra are
  rows, one frame each (as PyMca stacks one such frame per row), read lazily
  frame by frame when the stack is large. The
  calibration is PyMca's header keys ``MCA a``, ``MCA b``, ``MCA c`` (keV) with
  ``MCA start ch`` the first channel's number.
- **SPEC**: every MCA spectrum of a scan (``@A`` lines) is a pixel, and its
  ``#@CALIB a b c`` (keV) with ``#@CHANN n first last`` the calibration. A
  single ``mesh`` scan (``#S n mesh m1 s1 e1 n1 m2 s2 e2 n2 t``) with
  ``(n1 + 1) (n2 + 1)`` spectra is that grid (``m1`` along a row); several
  scans of equally many spectra are one row each; anything else is one row.
  Large files are read lazily, row by row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import (
    DEFAULT_LAZY_THRESHOLD_BYTES,
    check_numeric_dtype,
    decide_lazy,
    guess_energy_axis,
)
from napari_xrfquant.io.calibration import resolve_energy_axis
from napari_xrfquant.io.cube import Cube
from napari_xrfquant.io.rosetta import require

EDF_SUFFIXES = (".edf",)
SPEC_SUFFIXES = (".spec", ".mca")


def _energy_from(
    coefficients: Sequence[float] | None, first_channel: float, n_channels: int
) -> np.ndarray | None:
    if coefficients is None:
        return None
    a, b, c = (*(float(v) for v in coefficients), 0.0, 0.0)[:3]
    channel = first_channel + np.arange(n_channels, dtype=np.float64)
    return a + b * channel + c * channel**2


def _finish(
    path: Path,
    data: Any,
    energy_in_file: np.ndarray | None,
    name: str,
    calibration: Sequence[float] | None,
    metadata: dict[str, Any],
) -> Cube:
    where = path.name
    check_numeric_dtype(np.dtype(data.dtype), where)
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data)
    energy, source = resolve_energy_axis(path, int(data.shape[-1]), energy_in_file, calibration)
    return Cube(data, energy, source, path, {"format": name, **metadata}, name)


# -- EDF ---------------------------------------------------------------------------
def open_edf(
    path: str | os.PathLike[str],
    calibration: Sequence[float] | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
) -> Cube:
    """Read an EDF file as a cube (see the module rule).

    A stack of row frames larger than ``lazy_threshold_bytes`` (or any with
    ``lazy=True``) is read lazily: a dask array with one chunk per frame, each
    read from the file when it is computed.
    """
    file_path = Path(path)
    where = file_path.name
    fabio = require("fabio", f"{where}: reading EDF files")
    try:
        image = fabio.open(str(file_path))
        n_frames = int(image.nframes)
        first = np.asarray(image.data)
        header = dict(image.header)
    except Exception as exc:  # fabio raises many kinds for a file it cannot parse
        raise CubeReadError(f"{where}: fabio cannot read it as EDF ({exc})") from None
    if n_frames == 1 and first.ndim == 3:
        axis = guess_energy_axis(first.shape, where)
        data: Any = np.moveaxis(first, axis, -1)
        layout = {0: "first", 2: "last"}[axis]
    elif first.ndim == 2:
        data = _edf_rows(image, first, where, lazy, lazy_threshold_bytes)
        layout = "last"
    else:
        raise CubeReadError(f"{where}: EDF frames of shape {first.shape} make no cube")
    coefficients = None
    if all(f"MCA {k}" in header for k in "abc"):
        try:
            coefficients = [float(header[f"MCA {k}"]) for k in "abc"]
        except ValueError:
            raise CubeReadError(f"{where}: MCA a/b/c in the EDF header are not numbers") from None
    start = float(header.get("MCA start ch", 0) or 0)
    energy = _energy_from(coefficients, start, int(data.shape[-1]))
    metadata: dict[str, Any] = {"energy_axis_in_file": layout}
    if coefficients is not None:
        metadata["calibration_keV"] = coefficients
    return _finish(file_path, data, energy, "EDF", calibration, metadata)


def _edf_rows(image: Any, first: np.ndarray, where: str, lazy: bool | None,
              lazy_threshold_bytes: int) -> Any:
    """The row frames ``(cols, channels)`` of an EDF stack as ``(rows, cols, channels)``."""
    n_frames = int(image.nframes)
    nbytes = n_frames * first.nbytes
    if not decide_lazy(nbytes, lazy, lazy_threshold_bytes):
        frames = [first] + [_edf_frame(image, i, first, where) for i in range(1, n_frames)]
        return np.stack(frames)
    import dask
    import dask.array as da

    filename = str(image.filename)
    rows = [
        da.from_delayed(dask.delayed(_read_edf_frame)(filename, i, first.shape, where),
                        shape=first.shape, dtype=first.dtype)
        for i in range(n_frames)
    ]
    return da.stack(rows)


def _edf_frame(image: Any, index: int, first: np.ndarray, where: str) -> np.ndarray:
    try:
        frame = np.asarray(image.getframe(index).data)
    except Exception as exc:  # fabio raises many kinds for a frame it cannot parse
        raise CubeReadError(f"{where}: fabio cannot read EDF frame {index} ({exc})") from None
    if frame.shape != first.shape:
        raise CubeReadError(f"{where}: EDF frame {index} has shape {frame.shape}, "
                            f"frame 0 {first.shape}: they make no cube")
    return frame


def _read_edf_frame(filename: str, index: int, shape: tuple[int, ...], where: str) -> np.ndarray:
    """One frame, opened afresh: a dask task may run in another thread or process."""
    import fabio

    with fabio.open(filename) as image:
        frame = np.asarray(image.getframe(index).data) if index else np.asarray(image.data)
    if frame.shape != shape:
        raise CubeReadError(f"{where}: EDF frame {index} has shape {frame.shape}, "
                            f"frame 0 {shape}: they make no cube")
    return frame


# -- SPEC --------------------------------------------------------------------------
#: One row of the cube: the scan's index in the file and its spectra's indices.
SpecRow = tuple[int, range]


def open_spec(
    path: str | os.PathLike[str],
    calibration: Sequence[float] | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
) -> Cube:
    """Read the MCA spectra of a SPEC file as a cube (see the module rule).

    A cube larger than ``lazy_threshold_bytes`` (or any with ``lazy=True``) is
    read lazily, a dask chunk per row parsed from the file when computed.
    """
    file_path = Path(path)
    where = file_path.name
    specfile = require("silx.io.specfile", f"{where}: reading SPEC files")
    try:
        spec = specfile.SpecFile(str(file_path))
        scans = [spec[i] for i in range(len(spec))]
        counts = [len(scan.mca) for scan in scans]
        first_index = next((i for i, n in enumerate(counts) if n), None)
        if first_index is None:
            raise CubeReadError(f"{where}: no MCA spectra (@A lines) in the SPEC file")
        first_scan = scans[first_index]
        first = np.asarray(first_scan.mca[0], dtype=np.float64)
        lengths = {len(scan.mca[0]) for scan, n in zip(scans, counts, strict=True) if n}
    except CubeReadError:
        raise
    except Exception as exc:  # silx raises its own errors for a file it cannot parse
        raise CubeReadError(f"{where}: silx cannot read it as a SPEC file ({exc})") from None
    if len(lengths) != 1:
        raise CubeReadError(f"{where}: the MCA spectra have {sorted(lengths)} channels")
    rows = _spec_rows(counts, first_scan, first_index)
    n_channels = first.size
    shape = (len(rows), len(rows[0][1]), n_channels)
    integer = bool(np.allclose(first, np.round(first)))
    dtype = np.dtype(np.int64 if integer else np.float64)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    data: Any
    if decide_lazy(nbytes, lazy, lazy_threshold_bytes):
        import dask
        import dask.array as da

        data = da.stack([
            da.from_delayed(dask.delayed(_read_spec_row)(str(file_path), row, dtype, where),
                            shape=shape[1:], dtype=dtype)
            for row in rows
        ])
    else:
        data = np.stack([_spec_row(scans, row, dtype, where) for row in rows])
    coefficients = list(first_scan.mca.calibration[0]) if first_scan.mca.calibration else None
    channels = first_scan.mca.channels[0] if first_scan.mca.channels else [0]
    energy = _energy_from(coefficients, float(channels[0]), n_channels)
    metadata: dict[str, Any] = {"energy_axis_in_file": "last", "scans": len(scans)}
    if coefficients is not None:
        metadata["calibration_keV"] = coefficients
    return _finish(file_path, data, energy, "SPEC", calibration, metadata)


def _spec_rows(counts: list[int], first_scan: Any, first_index: int) -> list[SpecRow]:
    """The cube's rows: one scan's mesh, one scan per row, or all spectra in one row."""
    with_spectra = [i for i, n in enumerate(counts) if n]
    if len(with_spectra) == 1:
        n = counts[first_index]
        cols = _mesh_columns(first_scan, n) or n
        return [(first_index, range(r * cols, (r + 1) * cols)) for r in range(n // cols)]
    if len({counts[i] for i in with_spectra}) == 1:
        return [(i, range(counts[i])) for i in with_spectra]
    # scans of unequal length: every spectrum in one row, scan after scan
    return [(-1, range(sum(counts)))]


def _mesh_columns(scan: Any, n_spectra: int) -> int | None:
    """Points along a row of a ``mesh`` scan whose grid holds ``n_spectra`` spectra."""
    words = str(scan.scan_header_dict.get("S", "")).split()
    if len(words) >= 10 and words[1] == "mesh":
        try:
            cols, rows = int(words[5]) + 1, int(words[9]) + 1
        except ValueError:
            return None
        if rows * cols == n_spectra:
            return cols
    return None


def _spec_row(scans: list[Any], row: SpecRow, dtype: np.dtype, where: str) -> np.ndarray:
    scan_index, indices = row
    if scan_index < 0:  # all spectra of all scans, in order
        spectra = [np.asarray(s.mca[j]) for s in scans for j in range(len(s.mca))]
    else:
        spectra = [np.asarray(scans[scan_index].mca[j]) for j in indices]
    values = np.stack(spectra)
    if dtype.kind == "i":
        if not np.allclose(values, np.round(values)):
            raise CubeReadError(f"{where}: some MCA spectra are counts, others are not")
        return np.round(values).astype(dtype)
    return values.astype(dtype)


def _read_spec_row(filename: str, row: SpecRow, dtype: np.dtype, where: str) -> np.ndarray:
    """One row, the file opened afresh: a dask task may run in another thread or process."""
    from silx.io.specfile import SpecFile

    spec = SpecFile(filename)
    try:
        return _spec_row([spec[i] for i in range(len(spec))], row, dtype, where)
    finally:
        spec.close()
