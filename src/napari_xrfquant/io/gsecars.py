"""GSECARS ASCII MCA files (``.mca``, ``.xrf``) as the APS 13-ID epicsMCA tools write them.

A header of ``KEY: values`` lines, one value per detector element where the
key is per element (``CHANNELS``, ``REAL_TIME``, ``LIVE_TIME``, ``CAL_OFFSET``,
``CAL_SLOPE``, ``CAL_QUAD`` in keV, ``ROI_n_...``), ``ENVIRONMENT`` lines
(``name="value" (description)``), then ``DATA:`` and one line per channel
holding one count per element. A file is one pixel; a multi-element file is
combined by :mod:`.detectors`. The beam energy is read from an
``ENVIRONMENT`` PV whose description names the mono energy (in eV when it
exceeds 100).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant.errors import CubeReadError

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.io.detectors import Combined

#: What the first lines of such a file start with (the reader table's signature).
SIGNATURE = re.compile(rb"^\s*VERSION:\s*\S+\s*[\r\n]+\s*ELEMENTS:", re.MULTILINE)
_ENVIRONMENT = re.compile(r'^(?P<name>\S+)="(?P<value>[^"]*)"\s*(\((?P<desc>.*)\))?')


def is_gsecars(head: bytes) -> bool:
    """Whether a file's first bytes are a GSECARS MCA header."""
    return bool(SIGNATURE.match(head))


def open_gsecars(path: Path, detector: str | int | None = "sum") -> Combined:
    """Read a GSECARS MCA file: ``(data (1, 1, C), energy_keV, source, metadata)``.

    Raises
    ------
    CubeReadError
        For a header without ``DATA:``, a wrong number of values, or data rows
        that do not match ``CHANNELS``.
    """
    from napari_xrfquant.io.detectors import combine_elements, combined_times

    where = path.name
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise CubeReadError(f"{where}: cannot read it ({exc.strerror})") from None
    header, environment, data_lines = _split(text, where)
    n_elements = _integer(header, "ELEMENTS", where, default=1)
    channels = _integer(header, "CHANNELS", where)
    try:
        counts = np.loadtxt(data_lines, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise CubeReadError(f"{where}: the data rows are not numbers ({exc})") from None
    if counts.shape != (channels, n_elements):
        raise CubeReadError(f"{where}: truncated: {counts.shape[0]} data rows of "
                            f"{counts.shape[1] if counts.size else 0} values for {channels} "
                            f"channels of {n_elements} elements")
    calibrations = [
        (o, g, q) for o, g, q in zip(
            _values(header, "CAL_OFFSET", n_elements, where, 0.0),
            _values(header, "CAL_SLOPE", n_elements, where, 0.0),
            _values(header, "CAL_QUAD", n_elements, where, 0.0), strict=True)
    ]
    beam = beam_energy_keV(environment)
    stack = counts.T[None, None, :, :]
    data, energy, source, metadata = combine_elements(stack, calibrations, where, detector, beam)
    live, real = combined_times(
        np.array(_values(header, "LIVE_TIME", n_elements, where, np.nan)),
        np.array(_values(header, "REAL_TIME", n_elements, where, np.nan)),
        metadata["detector_choice"])
    metadata.update({
        "energy_axis_in_file": "last",
        "environment": environment,
        "live_time_s": float(live) if np.isfinite(live) and live > 0 else None,
        "real_time_s": float(real) if np.isfinite(real) else None,
    })
    if beam is not None:
        metadata["beam_keV"] = beam
    return data, energy, source, {k: v for k, v in metadata.items() if v is not None}


def _split(text: str, where: str) -> tuple[dict[str, str], dict[str, tuple[str, str]], list[str]]:
    header: dict[str, str] = {}
    environment: dict[str, tuple[str, str]] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().upper()
        if key == "DATA":
            return header, environment, [row for row in lines[number + 1 :] if row.strip()]
        if key == "ENVIRONMENT":
            match = _ENVIRONMENT.match(value.strip())
            if match:
                environment[match["name"]] = (match["value"].strip(), match["desc"] or "")
            continue
        header[key] = value.strip()
    raise CubeReadError(f"{where}: truncated GSECARS MCA file: no DATA: line after the header")


def _integer(header: dict[str, str], key: str, where: str, default: int | None = None) -> int:
    raw = header.get(key)
    if raw is None and default is not None:
        return default
    try:
        return int(str(raw).split()[0])
    except (ValueError, IndexError, AttributeError):
        raise CubeReadError(f"{where}: {key}: is missing or not a whole number") from None


def _values(header: dict[str, str], key: str, n: int, where: str, default: float) -> list[float]:
    raw = header.get(key)
    if raw is None:
        return [default] * n
    try:
        values = [float(v) for v in raw.split()]
    except ValueError:
        raise CubeReadError(f"{where}: {key}: holds something other than numbers") from None
    if len(values) != n:
        raise CubeReadError(f"{where}: {key}: has {len(values)} values for {n} elements")
    return values


def beam_energy_keV(environment: dict[str, tuple[str, str]]) -> float | None:
    """The mono energy from the ``ENVIRONMENT`` PVs (keV), or None.

    The readback is preferred over the request; values above 100 are in eV.
    """
    candidates = []
    for name, (value, description) in environment.items():
        text = f"{name} {description}".lower()
        if ("mono" in text and "energy" in text) or name.upper().endswith(":E:E_RBV"):
            try:
                number = float(value)
            except ValueError:
                continue
            candidates.append(("readback" in text or "rbv" in text, number))
    if not candidates:
        return None
    number = sorted(candidates)[-1][1]
    return number / 1000.0 if number > 100 else number
