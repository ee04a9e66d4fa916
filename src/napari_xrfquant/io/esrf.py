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
    check_count_values,
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
        check_count_values(data, where)
    else:  # lazy: the first row's values stand for the rest
        check_count_values(np.asarray(data[:1].compute()), where, partial=True)
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
def open_spec(path: str | os.PathLike[str], calibration: Sequence[float] | None = None) -> Cube:
    """Read the MCA spectra of a SPEC file as a cube (see the module rule)."""
    file_path = Path(path)
    where = file_path.name
    specfile = require("silx.io.specfile", f"{where}: reading SPEC files")
    try:
        spec = specfile.SpecFile(str(file_path))
        scans = [spec[i] for i in range(len(spec))]
        spectra = [[np.asarray(scan.mca[j], dtype=np.float64) for j in range(len(scan.mca))]
                   for scan in scans]
    except Exception as exc:  # silx raises its own errors for a file it cannot parse
        raise CubeReadError(f"{where}: silx cannot read it as a SPEC file ({exc})") from None
    spectra = [row for row in spectra if row]
    if not spectra:
        raise CubeReadError(f"{where}: no MCA spectra (@A lines) in the SPEC file")
    lengths = {len(s) for row in spectra for s in row}
    if len(lengths) != 1:
        raise CubeReadError(f"{where}: the MCA spectra have {sorted(lengths)} channels")
    first_scan = next(scan for scan in scans if len(scan.mca))
    if len(spectra) == 1:
        data = _grid(np.stack(spectra[0]), first_scan)
    elif len({len(row) for row in spectra}) == 1:
        data = np.stack([np.stack(row) for row in spectra])  # one scan per row
    else:
        data = np.concatenate([np.stack(row) for row in spectra])[None]
    coefficients = list(first_scan.mca.calibration[0]) if first_scan.mca.calibration else None
    channels = first_scan.mca.channels[0] if first_scan.mca.channels else [0]
    energy = _energy_from(coefficients, float(channels[0]), int(data.shape[-1]))
    if np.allclose(data, np.round(data)):
        data = np.round(data).astype(np.int64)
    metadata: dict[str, Any] = {"energy_axis_in_file": "last", "scans": len(scans)}
    if coefficients is not None:
        metadata["calibration_keV"] = coefficients
    return _finish(file_path, data, energy, "SPEC", calibration, metadata)


def _grid(spectra: np.ndarray, scan: Any) -> np.ndarray:
    """The spectra of one scan as rows x cols: its mesh, else one row."""
    words = str(scan.scan_header_dict.get("S", "")).split()
    if len(words) >= 10 and words[1] == "mesh":
        try:
            cols, rows = int(words[5]) + 1, int(words[9]) + 1
        except ValueError:
            return spectra[None]
        if rows * cols == spectra.shape[0]:
            return spectra.reshape(rows, cols, -1)
    return spectra[None]
