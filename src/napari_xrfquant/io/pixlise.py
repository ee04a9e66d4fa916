"""PIXLISE datasets (``.bin``): the protobuf ``Experiment`` of pixlise/data-formats.

The layout is public (``file-formats/experiment.proto``). A dataset holds
``meta_labels`` (field 3: the names of the metadata items, e.g. ``XPERCHAN``,
``LIVETIME``, ``READTYPE``) and ``locations`` (field 5), one per measured point
(PMC), each with a ``spectrum_compression`` (field 4: 0 raw, 1 zero-run) and
its ``detectors`` (field 5): metadata items (label index and a string, int or
float value) and the spectrum (packed int32). PIXL has two detectors, A and B;
a point's ``Normal`` spectra are the map, its ``BulkSum``/``MaxValue`` and
``Dwell`` spectra are left out. The map's grid is built from the points'
``XPOSITION``/``YPOSITION`` (mm); the two detectors are combined by
:mod:`.detectors`, each with its ``OFFSET``/``XPERCHAN`` (eV).

The protobuf wire format is decoded here (varints, length-delimited and
fixed32 fields): the schema is small, and generated classes would need
``protoc`` at build time.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import position_grid

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.io.detectors import Combined

#: What a dataset's first bytes hold: field 1 (the target id, a string), and the
#: metadata labels, which PIXLISE writes early.
_LABEL_HINT = b"DETECTOR_ID"
Field = tuple[int, int, Any]


class _Truncated(Exception):
    """A field runs past the end of its buffer."""


def is_pixlise(head: bytes) -> bool:
    """Whether a file's first bytes look like a PIXLISE ``Experiment``."""
    return bool(head[:1]) and head[0] == 0x0A and _LABEL_HINT in head


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(buffer):
            raise _Truncated
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, position


def _fields(buffer: bytes) -> list[Field]:
    """``(field number, wire type, value)`` of one message."""
    found: list[Field] = []
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, position = _varint(buffer, position)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = buffer[position : position + size], position + size
        elif wire == 2:
            size, position = _varint(buffer, position)
            value, position = buffer[position : position + size], position + size
        else:
            raise _Truncated
        if position > len(buffer):
            raise _Truncated
        found.append((number, wire, value))
    return found


def _packed(buffer: bytes) -> list[int]:
    values, position = [], 0
    while position < len(buffer):
        value, position = _varint(buffer, position)
        values.append(value - (1 << 64) if value >= 1 << 63 else value)
    return values


def _spectrum(values: list[int], compression: int, n_channels: int, where: str) -> np.ndarray:
    """A spectrum from its stored values: raw, or zero-run (each 0 followed by its run length)."""
    if compression == 0:
        counts = values
    elif compression == 1:
        counts = []
        i = 0
        while i < len(values):
            if values[i] == 0 and i + 1 < len(values):
                counts.extend([0] * values[i + 1])
                i += 2
            else:
                counts.append(values[i])
                i += 1
    else:
        raise CubeReadError(f"{where}: spectra compressed as {compression} (run-length) are not "
                            "read; only raw and zero-run spectra are")
    out = np.zeros(n_channels, dtype=np.float64)
    n = min(len(counts), n_channels)
    out[:n] = counts[:n]
    return out


def _meta(buffer: bytes, labels: list[str]) -> tuple[str, Any]:
    label, value = 0, None
    for number, _, raw in _fields(buffer):
        if number == 1:
            label = int(raw)
        elif number == 2:
            value = struct.unpack("<f", raw)[0]
        elif number == 3:
            value = int(raw)
        elif number == 4:
            value = raw.decode("utf-8", "replace")
    return (labels[label] if label < len(labels) else str(label)), value


def _number(meta: dict[str, Any], key: str, default: float = np.nan) -> float:
    try:
        return float(meta[key])
    except (KeyError, TypeError, ValueError):
        return default


def open_pixlise(path: Path, detector: str | int | None = "sum") -> Combined:
    """Read a PIXLISE dataset's normal spectra as a map: ``(data, energy, source, metadata)``.

    Raises
    ------
    CubeReadError
        For a truncated file, one without normal spectra, or points that do
        not make a grid.
    """
    from napari_xrfquant.io.detectors import combine_elements, combined_times

    where = path.name
    try:
        top = _fields(path.read_bytes())
        labels = [v.decode("utf-8", "replace") for n, _, v in top if n == 3]
        read = [_point(v, labels, where) for n, _, v in top if n == 5]
    except (_Truncated, struct.error, IndexError):
        raise CubeReadError(f"{where}: truncated or damaged PIXLISE dataset") from None
    points = [p for p in read if p is not None]
    if not points:
        raise CubeReadError(f"{where}: the PIXLISE dataset holds no normal spectra")
    ids = sorted({d for p in points for d in p["detectors"]})
    n_channels = max(len(s) for p in points for s in p["detectors"].values())
    grid, xs = _grid(points, where)
    stack = np.full((*grid.shape, len(ids), n_channels), np.nan)
    live = np.full((*grid.shape, len(ids)), np.nan)
    for index, point in enumerate(points):
        row, col = np.argwhere(grid == index)[0]
        for k, name in enumerate(ids):
            if name in point["detectors"]:
                stack[row, col, k, : len(point["detectors"][name])] = point["detectors"][name]
                live[row, col, k] = point["live"].get(name, np.nan)
    calibrations = [points[0]["calibration"].get(name, (0.0, 0.0, 0.0)) for name in ids]
    data, energy, source, metadata = combine_elements(stack, calibrations, where, detector)
    live_time, _ = combined_times(live, live, metadata["detector_choice"])
    metadata.update({
        "energy_axis_in_file": "last",
        "detector_ids": ids,
        "maps": {"live_time": live_time},
        "pixel_size_um": 1000.0 * float(np.median(np.diff(xs))) if xs.size > 1 else None,
    })
    metadata["live_time_s"] = float(np.nanmedian(metadata["maps"]["live_time"]))
    return data, energy, source, {k: v for k, v in metadata.items() if v is not None}


def _point(buffer: bytes, labels: list[str], where: str) -> dict[str, Any] | None:
    """One location's normal spectra by detector, their calibrations, live times, position."""
    fields = _fields(buffer)
    compression = next((int(v) for n, _, v in fields if n == 4), 0)
    spectra: dict[str, np.ndarray] = {}
    calibration: dict[str, tuple[float, float, float]] = {}
    live: dict[str, float] = {}
    position: tuple[float, float] | None = None
    for number, _, raw in fields:
        if number != 5:
            continue
        items = _fields(raw)
        meta = dict(_meta(v, labels) for n, _, v in items if n == 1)
        if meta.get("READTYPE", "Normal") != "Normal":
            continue
        values = [x for n, w, v in items if n == 2 for x in (_packed(v) if w == 2 else [v])]
        name = str(meta.get("DETECTOR_ID", len(spectra)))
        n_channels = int(_number(meta, "NPOINTS", 4096))
        spectra[name] = _spectrum(values, compression, n_channels, where)
        scale = 1e-3 if str(meta.get("XUNITS", "eV")).strip().lower() == "ev" else 1.0
        calibration[name] = (_number(meta, "OFFSET", 0.0) * scale,
                             _number(meta, "XPERCHAN", 0.0) * scale, 0.0)
        live[name] = _number(meta, "LIVETIME")
        x, y = _number(meta, "XPOSITION"), _number(meta, "YPOSITION")
        if np.isfinite(x) and np.isfinite(y):
            position = (x, y)
    if not spectra:
        return None
    return {"detectors": spectra, "calibration": calibration, "live": live,
            "position": position}


def _grid(points: list[dict[str, Any]], where: str) -> tuple[np.ndarray, np.ndarray]:
    """Point index at each (row, col) from the stage positions (rows by Y, columns by X),
    and the columns' X positions; one row when the points have no positions."""
    n = len(points)
    if any(p["position"] is None for p in points):
        return np.arange(n).reshape(1, n), np.zeros(0)
    found = position_grid(np.array([p["position"][0] for p in points]),
                          np.array([p["position"][1] for p in points]))
    if found is None:
        raise CubeReadError(f"{where}: the {n} points do not fill a grid of their positions")
    return found
