"""Files read through rosettasciio: HyperSpy ``.hspy``/``.zspy`` and Bruker ``.bcf``/``.spx``.

rosettasciio (the ``formats`` extra) returns each signal as a dictionary of
``data`` and ``axes`` (name, size, scale, offset, units, navigate). The cube is
the signal with one signal (non-navigation) axis in keV or eV and up to two
navigation axes; its energy axis is ``offset + scale * k``. Bruker files may
hold images beside the spectrum image: the spectrum image is taken.
"""

from __future__ import annotations

import importlib
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
)
from napari_xrfquant.io.calibration import energy_from_units, resolve_energy_axis
from napari_xrfquant.io.cube import Cube

#: Suffix -> (rosettasciio plugin, format name).
PLUGINS = {
    ".hspy": ("hspy", "HyperSpy HDF5"),
    ".zspy": ("zspy", "HyperSpy zarr"),
    ".bcf": ("bruker", "Bruker BCF"),
    ".spx": ("bruker", "Bruker SPX"),
}
SUFFIXES = tuple(PLUGINS)
#: The extra that brings the optional readers.
EXTRA = "pip install 'napari-xrfquant[formats]'"


def require(module: str, what: str) -> Any:
    """Import ``module`` or refuse with the extra that installs it.

    Raises
    ------
    CubeReadError
        When the module is missing: ``"<what> needs <module>: pip install ..."``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise CubeReadError(f"{what} needs {missing}, which is not installed: {EXTRA}") from None


def open_rosetta(
    path: str | os.PathLike[str],
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
    calibration: Sequence[float] | None = None,
) -> Cube:
    """Read a cube through rosettasciio. Parameters as :func:`napari_xrfquant.io.read_cube`."""
    file_path = Path(path)
    where = file_path.name
    plugin, name = PLUGINS[file_path.suffix.lower()]
    reader = require(f"rsciio.{plugin}", f"{where}: reading {name} files")
    # a .bcf holds images beside the spectrum image; the spectrum image is the cube
    kwargs = {"select_type": "spectrum_image"} if file_path.suffix.lower() == ".bcf" else {}
    try:
        # lazily unless told otherwise: small cubes are loaded below, once their size is known
        signals = reader.file_reader(str(file_path), lazy=lazy is not False, **kwargs)
    except Exception as exc:  # rosettasciio raises many kinds for a file it cannot parse
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CubeReadError(f"{where}: rosettasciio cannot read it as {name} ({first})") from None
    signal = _spectrum_signal(signals, where)
    data, energy_in_file, metadata = _as_cube(signal, where)
    check_numeric_dtype(np.dtype(data.dtype), where)
    n_channels = int(data.shape[-1])
    energy, source = resolve_energy_axis(file_path, n_channels, energy_in_file, calibration)
    metadata = {"format": name, "energy_axis_in_file": "last", **metadata}
    is_dask = not isinstance(data, np.ndarray)
    nbytes = int(np.prod(data.shape)) * np.dtype(data.dtype).itemsize
    if is_dask and not decide_lazy(nbytes, lazy, lazy_threshold_bytes):
        data, is_dask = np.asarray(data.compute()), False
    if not is_dask:
        data = np.ascontiguousarray(data)
    return Cube(data, energy, source, file_path, metadata, name)


def _spectrum_signal(signals: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """The one signal with a single energy-like signal axis."""
    for signal in signals:
        signal_axes = [a for a in signal.get("axes", []) if not a.get("navigate", True)]
        if len(signal_axes) == 1 and _is_energy(signal_axes[0]):
            return signal
    kinds = ", ".join(str(tuple(getattr(s.get("data"), "shape", ()))) for s in signals)
    raise CubeReadError(f"{where}: no spectrum image in the file (signals: {kinds or 'none'})")


def _is_energy(axis: dict[str, Any]) -> bool:
    units = str(axis.get("units", "") or "").strip().lower()
    return units in ("kev", "ev") or "energy" in str(axis.get("name", "")).lower()


def _as_cube(signal: dict[str, Any], where: str) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """``(rows, cols, channels)`` data, the energy axis (keV) and what the axes say."""
    data = signal["data"]
    axes = signal["axes"]
    energy_index = next(i for i, a in enumerate(axes) if not a.get("navigate", True))
    if energy_index != len(axes) - 1:
        data = np.moveaxis(data, energy_index, -1) if isinstance(data, np.ndarray) else (
            data.transpose([*(i for i in range(data.ndim) if i != energy_index), energy_index])
        )
    while data.ndim < 3:  # a line scan or a single spectrum is a cube too
        data = data[None]
    if data.ndim != 3:
        raise CubeReadError(f"{where}: the spectrum image has {data.ndim - 1} navigation axes")
    axis = axes[energy_index]
    n = int(data.shape[-1])
    values = float(axis.get("offset", 0.0)) + float(axis.get("scale", 1.0)) * np.arange(n)
    energy = energy_from_units(values, str(axis.get("units", "") or ""), where)
    metadata: dict[str, Any] = {}
    navigation = [a for a in axes if a.get("navigate", True)]
    units = {str(a.get("units", "")).strip() for a in navigation}
    if navigation and units <= {"µm", "um"}:
        metadata["pixel_size_um"] = float(navigation[-1].get("scale", 1.0))
    metadata.update(acquisition_times(signal.get("metadata") or {}))
    return data, energy, metadata


def acquisition_times(signal_metadata: dict[str, Any]) -> dict[str, float]:
    """The live and real time (s) that a HyperSpy-style metadata tree states.

    rosettasciio puts them under ``Acquisition_instrument.<SEM|TEM>.Detector.EDS``
    as ``live_time`` and ``real_time``. They are kept as metadata only: one value
    for the file does not change the counts of any pixel relative to another.
    """
    times: dict[str, float] = {}
    instruments = signal_metadata.get("Acquisition_instrument") or {}
    for instrument in instruments.values():
        eds = ((instrument or {}).get("Detector") or {}).get("EDS") or {}
        for key in ("live_time", "real_time"):
            value = eds.get(key)
            if isinstance(value, (int, float)) and np.isfinite(value) and f"{key}_s" not in times:
                times[f"{key}_s"] = float(value)
    return times
