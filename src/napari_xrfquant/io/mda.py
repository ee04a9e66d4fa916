"""APS MDA files: EPICS synApps ``sscan`` records saved by ``saveData``.

Written from the format's documentation (synApps sscan module, "MDA file
format"): big-endian XDR throughout. The file header is ``version`` (float),
``scan number``, ``rank``, the ``rank`` dimensions, ``isRegular`` and the file
offset of the "extra PVs" (ints). Each scan record then holds its rank, its
requested and acquired points, the file offsets of its lower scans (rank > 1),
name, time, and the numbers of positioners, detectors and triggers with their
descriptions, followed by the positioners' data (float64) and the detectors'
data (float32), ``npts`` values each. Strings are an int length followed, when
non-zero, by an XDR string (its own length, bytes, padding to 4).

An XRF map is a rank-3 file: rows (outer scan) x columns (middle scan) x the
MCA channels (inner scan), whose detectors are the MCA spectra, one per
detector element (``...mca1.VAL``, ``...mca2.VAL``, ...). The middle scan's
detectors are per-pixel values (scalers, live and real times: ``mcaN.ELTM``,
``mcaN.ERTM``) and go to ``Cube.metadata["maps"]`` (with ``live_time`` and
``real_time`` of the combined spectrum); each element's
calibration is its MCA's ``CALO``, ``CALS``, ``CALQ`` among the extra PVs (or
the outer scan's detectors). A rank-2 file is one row of pixels. The detector
elements are combined by :mod:`.detectors`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.errors import CubeReadError

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.io.detectors import Combined

_MCA_SPECTRUM = re.compile(r"^(?P<mca>.*mca\d+)(\.VAL)?$", re.IGNORECASE)
#: EPICS DBR types of the extra PVs and their XDR element types.
_EXTRA_TYPES = {29: ">i2", 30: ">f4", 32: "u1", 33: ">i4", 34: ">f8"}


class _Truncated(Exception):
    """Raised by the unpacker when the file ends too soon."""


class _Unpacker:
    """Big-endian XDR values from a byte buffer."""

    def __init__(self, buffer: bytes, position: int = 0) -> None:
        self.buffer = buffer
        self.position = position

    def _take(self, n: int) -> int:
        start = self.position
        if n < 0 or start + n > len(self.buffer):
            raise _Truncated
        self.position += n
        return start

    def int32(self) -> int:
        return int(struct.unpack_from(">i", self.buffer, self._take(4))[0])

    def float32(self) -> float:
        return float(struct.unpack_from(">f", self.buffer, self._take(4))[0])

    def string(self) -> str:
        """An MDA string: a length, then (when non-zero) an XDR string."""
        if self.int32() == 0:
            return ""
        n = self.int32()
        start = self._take((n + 3) // 4 * 4)
        return self.buffer[start : start + n].decode("latin-1").rstrip("\0")

    def array(self, n: int, dtype: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * n
        start = self._take((size + 3) // 4 * 4)
        return np.frombuffer(self.buffer, dtype, n, start)


@dataclass
class _Scan:
    rank: int
    npts: int
    acquired: int
    lower: np.ndarray
    name: str
    detectors: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    data: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


def _scan(buffer: bytes, position: int) -> _Scan:
    u = _Unpacker(buffer, position)
    rank, npts, acquired = u.int32(), u.int32(), u.int32()
    lower = u.array(npts, ">i4") if rank > 1 else np.zeros(0, np.int32)
    name = u.string()
    u.string()  # time
    n_positioners, n_detectors, n_triggers = u.int32(), u.int32(), u.int32()
    for _ in range(n_positioners):
        u.int32()
        for _ in range(7):  # name, desc, step mode, unit, readback name, desc, unit
            u.string()
    detectors, descriptions = [], []
    for _ in range(n_detectors):
        u.int32()
        detectors.append(u.string())
        descriptions.append(u.string())
        u.string()  # unit
    for _ in range(n_triggers):
        u.int32()
        u.string()
        u.float32()
    u.array(n_positioners * npts, ">f8")
    data = u.array(n_detectors * npts, ">f4").reshape(n_detectors, npts)
    return _Scan(rank, npts, acquired, lower, name, detectors, descriptions, data)


def _extra_pvs(buffer: bytes, position: int) -> dict[str, Any]:
    """The extra PVs: name -> value (a string, or a list of numbers)."""
    if position <= 0:
        return {}
    u = _Unpacker(buffer, position)
    found: dict[str, Any] = {}
    for _ in range(u.int32()):
        name = u.string()
        u.string()  # description
        kind = u.int32()
        if kind == 0:  # DBR_STRING
            found[name] = u.string()
            continue
        count = u.int32()
        u.string()  # unit
        dtype = _EXTRA_TYPES.get(kind)
        if dtype is None:
            raise _Truncated
        values = u.array(count, dtype)
        if kind == 32:  # DBR_CTRL_CHAR: a NUL-terminated string
            found[name] = bytes(values).split(b"\0")[0].decode("latin-1")
        else:
            found[name] = values.astype(np.float64).tolist()
    return found


def open_mda(path: Path, detector: str | int | None = "sum") -> Combined:
    """Read an MDA XRF map: ``(data (H, W, C), energy_keV, calibration_source, metadata)``.

    Raises
    ------
    CubeReadError
        For a file that ends too soon, is not an MDA scan, or holds no MCA spectra.
    """
    from napari_xrfquant.io.detectors import combine_elements

    where = path.name
    buffer = path.read_bytes()
    try:
        stack, names, maps, header, extra, calibrations = _read(buffer, where)
    except (_Truncated, struct.error, ValueError):
        raise CubeReadError(f"{where}: truncated or damaged MDA file (it ends inside a "
                            "scan record)") from None
    known = [c for c in calibrations if c is not None]
    # an element without a calibration: the sidecar's or the reference's for all
    complete = known if len(known) == len(calibrations) else None
    data, energy, source, metadata = combine_elements(stack, complete, where, detector)
    _add_times(maps, names, metadata["detector_choice"])
    metadata.update({
        "maps": maps,
        "mda_version": header[0],
        "scan_number": header[1],
        "detector_element_pvs": names,
        "extra_pvs": {k: v for k, v in extra.items() if not isinstance(v, str) or v.strip()},
        "energy_axis_in_file": "last",
    })
    if "live_time" in maps:
        metadata["live_time_s"] = float(np.median(maps["live_time"]))
    return data, energy, source, metadata


def _read(buffer: bytes, where: str) -> tuple[np.ndarray, list[str], dict[str, np.ndarray],
                                              tuple[float, int], dict[str, Any],
                                              list[tuple[float, float, float] | None]]:
    u = _Unpacker(buffer)
    version, number, rank = u.float32(), u.int32(), u.int32()
    if not (0.5 < version < 10) or not 1 <= rank <= 4:
        raise CubeReadError(f"{where}: not an MDA file (version {version:g}, rank {rank})")
    dims = [u.int32() for _ in range(rank)]
    u.int32()  # isRegular
    extra_at = u.int32()
    if rank not in (2, 3):
        raise CubeReadError(f"{where}: an MDA scan of rank {rank} ({dims}) is no XRF map; "
                            "expected rows x columns x MCA channels")
    outer = _scan(buffer, u.position)
    if rank == 2:
        rows_of_pixels = [outer]
        outer_scans: list[_Scan] = []
    else:
        outer_scans = [outer]
        rows_of_pixels = [_scan(buffer, int(p)) for p in outer.lower[: outer.acquired]]
    if not rows_of_pixels or rows_of_pixels[0].acquired == 0:
        raise CubeReadError(f"{where}: the MDA scan holds no acquired point")
    cols = rows_of_pixels[0].npts
    first = _scan(buffer, int(rows_of_pixels[0].lower[0]))
    spectra = [i for i, name in enumerate(first.detectors) if _MCA_SPECTRUM.match(name)]
    if not spectra:
        spectra = list(range(len(first.detectors)))
    if not spectra:
        raise CubeReadError(f"{where}: the MDA scan's inner dimension holds no MCA spectra")
    names = [first.detectors[i] for i in spectra]
    stack = np.zeros((len(rows_of_pixels), cols, len(spectra), first.npts), np.float32)
    per_pixel = {name: np.full((len(rows_of_pixels), cols), np.nan)
                 for name in rows_of_pixels[0].detectors}
    for r, row in enumerate(rows_of_pixels):
        for c, at in enumerate(row.lower[: row.acquired]):
            stack[r, c] = _scan(buffer, int(at)).data[spectra]
        for k, name in enumerate(row.detectors):
            if name in per_pixel:
                per_pixel[name][r, : row.acquired] = row.data[k, : row.acquired]
    if rows_of_pixels[-1].acquired < cols:
        # an interrupted scan: the points never acquired are NaN (masked on reading)
        stack[-1, rows_of_pixels[-1].acquired :] = np.nan
    extra = _extra_pvs(buffer, extra_at)
    calibrations = [_calibration(name, extra, outer_scans) for name in names]
    maps = {name: values for name, values in per_pixel.items() if np.isfinite(values).any()}
    return stack, names, maps, (version, number), extra, calibrations


def _calibration(spectrum_pv: str, extra: dict[str, Any],
                 outer_scans: list[_Scan]) -> tuple[float, float, float] | None:
    """An MCA's ``CALO``, ``CALS``, ``CALQ``: from the extra PVs, else the outer scan."""
    mca = _mca(spectrum_pv)
    values = []
    for suffix in ("CALO", "CALS", "CALQ"):
        value = extra.get(f"{mca}.{suffix}")
        if value is None:
            for scan in outer_scans:
                if f"{mca}.{suffix}" in scan.detectors:
                    value = [float(scan.data[scan.detectors.index(f"{mca}.{suffix}"), 0])]
        values.append(float(value[0]) if isinstance(value, list) and value else
                      (0.0 if suffix == "CALQ" else np.nan))
    if not np.all(np.isfinite(values)):
        return None  # no calibration: the sidecar's or the reference's, with a warning
    return values[0], values[1], values[2]


def _mca(spectrum_pv: str) -> str:
    """The MCA record of a spectrum's PV (``dxp:mca1.VAL`` -> ``dxp:mca1``)."""
    match = _MCA_SPECTRUM.match(spectrum_pv)
    return match.group("mca") if match else spectrum_pv


def _add_times(maps: dict[str, np.ndarray], spectra: list[str], choice: str | int) -> None:
    """``live_time`` and ``real_time`` of the combined spectrum from the elements' ``ELTM``
    and ``ERTM`` (:func:`~napari_xrfquant.io.detectors.combined_times`)."""
    from napari_xrfquant.io.detectors import combined_times

    def times(field_name: str) -> np.ndarray | None:
        found = []
        for pv in spectra:
            name = f"{_mca(pv)}.{field_name}"
            if name not in maps:
                return None
            found.append(maps[name])
        return np.stack(found, axis=-1)

    live, real = times("ELTM"), times("ERTM")
    if live is None or real is None:
        return
    maps["live_time"], maps["real_time"] = combined_times(live, real, choice)
