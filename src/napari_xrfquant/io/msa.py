"""EMSA/MSA spectra (ISO 22029): one spectrum a file; a folder or zip of them as a map.

The header is ``#KEYWORD : value`` lines (``##`` keywords are the vendor's
own), the data follow ``#SPECTRUM`` and end at ``#ENDOFDATA``. What is read:

- ``#NPOINTS``, ``#NCOLUMNS`` and ``#DATATYPE`` (``Y``: counts only; ``XY``:
  energy, count pairs; ``YY``...: one column per detector, as PIXL writes two);
- the calibration ``#OFFSET`` and ``#XPERCHAN`` in ``#XUNITS`` (eV or keV; a
  comma-separated value per column): without them, or with ``XY`` data, the
  energy column itself. A file without either opens with the reference
  calibration and a warning;
- ``#LIVETIME`` and ``#REALTIME`` (s), ``#BEAMKV`` (the excitation's voltage),
  ``#XPOSITION``/``#YPOSITION`` (stage position, for maps).

Several columns (detectors) are combined by :mod:`.detectors`. A folder or
``.zip`` of ``.msa`` files is a map when every file has ``#XPOSITION`` and
``#YPOSITION`` on a full grid (rows by Y, columns by X), else one row in the
order of the file names; all files must share their channels and calibration.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import position_grid
from napari_xrfquant.io.calibration import CalibrationWarning

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.io.detectors import Combined

MSA_SUFFIXES = (".msa", ".emsa")
#: What the first line of such a file starts with (the reader table's signature).
SIGNATURE = b"#FORMAT"


def is_msa(head: bytes) -> bool:
    """Whether a file's first bytes start an EMSA/MSA header."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").upper().startswith(SIGNATURE)


def is_msa_zip(head: bytes) -> bool:
    """Whether a file's first bytes are a zip archive whose first member is an MSA file."""
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return False
    name_length = int.from_bytes(head[26:28], "little")
    name = head[30 : 30 + name_length].decode("latin-1").lower()
    return name.endswith(MSA_SUFFIXES)


def _keyword_values(header: dict[str, str], key: str, n: int) -> list[float] | None:
    """A numeric keyword, one value per column (the first number of each comma part)."""
    raw = header.get(key)
    if raw is None:
        return None
    values = []
    for part in raw.split(",")[:n]:
        words = part.split()
        try:
            values.append(float(words[0]))
        except (ValueError, IndexError):
            return None
    if len(values) == 1 and n > 1:
        values = values * n
    return values if len(values) == n else None


def parse_msa(text: str, where: str) -> tuple[np.ndarray, list[tuple[float, float, float]] | None,
                                            dict[str, str]]:
    """``(counts (n_columns, C), calibrations keV or None, header)`` of one MSA text.

    Raises
    ------
    CubeReadError
        For data before ``#SPECTRUM`` is missing, a truncated file (no
        ``#ENDOFDATA``, or fewer points than ``#NPOINTS``) or values that are
        not numbers.
    """
    header: dict[str, str] = {}
    rows: list[list[float]] = []
    in_data = ended = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition(":")
            key = key.strip().upper()
            if in_data and key == "ENDOFDATA":
                ended = True
                break
            if stripped.startswith("##"):
                key = "#" + key
            header.setdefault(key, value.strip())
            if key == "SPECTRUM":
                in_data = True
            continue
        if in_data:
            try:
                rows.append([float(v) for v in stripped.replace(",", " ").split()])
            except ValueError:
                raise CubeReadError(
                    f"{where}: a data line is not numbers: {stripped[:40]!r}") from None
    if "FORMAT" not in header:
        raise CubeReadError(f"{where}: not an EMSA/MSA file (no #FORMAT line)")
    announced = _keyword_values(header, "NPOINTS", 1)
    if announced is not None and announced[0] == 0:
        raise CubeReadError(f"{where}: holds no spectrum (#NPOINTS is 0: an instrument "
                            "configuration file, not a measurement)")
    if not ended:
        raise CubeReadError(f"{where}: truncated MSA file (no #ENDOFDATA after the data)")
    datatype = header.get("DATATYPE", "Y").split()[0].upper() if header.get("DATATYPE") else "Y"
    values = np.array([v for row in rows for v in row], dtype=np.float64)
    n_columns = max(1, datatype.count("Y"))
    per_point = n_columns + (1 if datatype.startswith("X") else 0)
    expected = _keyword_values(header, "NPOINTS", 1)
    n_points = int(expected[0]) if expected else values.size // per_point
    if n_points < 2 or values.size < n_points * per_point:
        raise CubeReadError(f"{where}: truncated MSA file: {values.size // per_point} points "
                            f"of the {n_points} that #NPOINTS announces")
    table = values[: n_points * per_point].reshape(n_points, per_point)
    counts = table[:, -n_columns:].T
    scale = 1.0 if header.get("XUNITS", "eV").strip().lower().startswith("kev") else 1e-3
    offsets = _keyword_values(header, "OFFSET", n_columns)
    gains = _keyword_values(header, "XPERCHAN", n_columns)
    calibrations: list[tuple[float, float, float]] | None = None
    if datatype.startswith("X"):
        energy = table[:, 0] * scale
        gain = float((energy[-1] - energy[0]) / (n_points - 1))
        calibrations = [(float(energy[0]), gain, 0.0)] * n_columns
    elif offsets is not None and gains is not None and all(g > 0 for g in gains):
        calibrations = [(o * scale, g * scale, 0.0) for o, g in zip(offsets, gains, strict=True)]
    return counts, calibrations, header


def open_msa(path: Path, detector: str | int | None = "sum") -> Combined:
    """Read one MSA file, or a folder or zip of them, as ``(data, energy, source, metadata)``.

    ``energy`` is None (and ``source`` ``"none"``) when the files carry no
    calibration (:func:`~napari_xrfquant.io.detectors.combine_elements`): the
    caller falls back to a sidecar or the reference, with a warning.
    """
    where = path.name
    texts = _texts(path)
    parsed = [parse_msa(text, f"{where}/{name}" if len(texts) > 1 else where)
              for name, text in texts]
    shapes = {counts.shape for counts, _, _ in parsed}
    if len(shapes) != 1:
        raise CubeReadError(f"{where}: the MSA files differ in channels or detectors: "
                            f"{sorted(shapes)}")
    calibrations = parsed[0][1]
    if any(c != calibrations for _, c, _ in parsed[1:]):
        raise CubeReadError(f"{where}: the MSA files have different calibrations")
    grid = _grid([header for _, _, header in parsed])
    n_columns, channels = parsed[0][0].shape
    stack = np.full((*grid.shape, n_columns, channels), np.nan)
    for index, (counts, _, _) in enumerate(parsed):
        row, col = np.argwhere(grid == index)[0]
        stack[row, col] = counts
    header = parsed[0][2]
    metadata: dict[str, Any] = {"energy_axis_in_file": "last", "msa_header": header,
                                "files": len(texts)}
    for key, name in (("LIVETIME", "live_time_s"), ("REALTIME", "real_time_s")):
        value = _keyword_values(header, key, 1)
        if value:
            metadata[name] = value[0]
    kv = _keyword_values(header, "BEAMKV", 1)
    if kv:
        metadata["beam_kV"] = kv[0]
    if calibrations is None:
        warnings.warn(f"{where}: no #OFFSET/#XPERCHAN calibration in the MSA header",
                      CalibrationWarning, stacklevel=4)
    from napari_xrfquant.io.detectors import combine_elements

    # a tube's lines reach up to its voltage: the library keeps every line
    data, energy, source, combined = combine_elements(stack, calibrations, where, detector, None)
    return data, energy, source, {**metadata, **combined}


def _texts(path: Path) -> list[tuple[str, str]]:
    """``(name, text)`` of the MSA file, or of the MSA files in a folder or zip, by name."""
    where = path.name
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in MSA_SUFFIXES)
        if not files:
            raise CubeReadError(f"{where}: the folder holds no .msa file")
        return [(p.name, p.read_text(encoding="latin-1")) for p in files]
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = sorted(n for n in archive.namelist()
                               if Path(n).suffix.lower() in MSA_SUFFIXES)
                if not names:
                    raise CubeReadError(f"{where}: the zip holds no .msa file")
                return [(n, archive.read(n).decode("latin-1")) for n in names]
        except zipfile.BadZipFile:
            raise CubeReadError(f"{where}: not a readable zip file") from None
    return [(where, path.read_text(encoding="latin-1"))]


def _grid(headers: list[dict[str, str]]) -> np.ndarray:
    """File index at each (row, col): by ``#YPOSITION``/``#XPOSITION`` when they make a
    full grid, else one row in file order."""
    n = len(headers)
    xs = [_keyword_values(h, "XPOSITION", 1) for h in headers]
    ys = [_keyword_values(h, "YPOSITION", 1) for h in headers]
    if n > 1 and all(xs) and all(ys):
        found = position_grid(np.array([v[0] for v in xs if v]), np.array([v[0] for v in ys if v]))
        if found is not None:
            return found[0]
    return np.arange(n).reshape(1, n)
