"""HDF5 layouts other XRF tools write: PyMca stacks, XRF-Maps (MAPS) and PyXRF files.

Each layout as its own project documents or writes it:

- **PyMca** (its "HDF5 XRF Stack" recipe): a 3-D ``data`` dataset (rows, cols,
  channels) with, in the same group, ``calibration`` ``[a, b, c]`` (``E = a +
  b ch + c ch**2``, keV), optionally ``channels`` (the channel numbers ``ch``
  of the columns; default 0, 1, ...) and ``live_time`` (one value per
  spectrum). The recipe's example puts it at ``/entry/instrument/detector``;
  any group works.
- **XRF-Maps / MAPS**: ``/MAPS/Spectra/mca_arr`` (channels, rows, cols; also
  linked at ``/MAPS/mca_arr``), ``/MAPS/Spectra/Energy_Calibration`` ``[offset,
  slope, quadratic]`` (keV), ``Elapsed_Livetime`` and ``Elapsed_Realtime``
  (rows, cols) beside it, and scalers in ``/MAPS/Scalers/Names`` and
  ``Values`` (n, rows, cols).
- **PyXRF**: ``xrfmap/detsum/counts`` (rows, cols, channels; PyXRF pads to
  4096 channels with zeros) and scalers in ``xrfmap/scalers/name`` and ``val``
  (rows, cols, n). The energy calibration is not in the file but in PyXRF's
  JSON parameter file (``e_offset``, ``e_linear``, ``e_quadratic``, each with
  a ``value`` in keV): given explicitly, or the one JSON beside the file that
  holds those keys; without one the reference calibration is used, with a
  warning naming what is missing.

Per-pixel maps the files hold (live time, real time, scalers) go to
``Cube.metadata["maps"]`` as ``(rows, cols)`` float64 arrays, by name.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._h5 import Located, check_dataset, get_dataset, text
from napari_xrfquant.io.calibration import CalibrationWarning, energy_from_polynomial

XRF_MAPS_SPECTRA = ("/MAPS/Spectra/mca_arr", "/MAPS/mca_arr")
PYXRF_COUNTS = "xrfmap/detsum/counts"
#: Keys of PyXRF's parameter file that hold the energy calibration (keV).
PYXRF_CALIBRATION_KEYS = ("e_offset", "e_linear", "e_quadratic")


# -- detection -------------------------------------------------------------------
def is_xrf_maps(file: h5py.File) -> bool:
    """Whether ``file`` holds an XRF-Maps (MAPS) spectra volume."""
    return any(_is_dataset(file, path) for path in XRF_MAPS_SPECTRA)


def is_pyxrf(file: h5py.File) -> bool:
    """Whether ``file`` holds a PyXRF detector-sum cube."""
    return _is_dataset(file, PYXRF_COUNTS)


def find_pymca_stack(file: h5py.File) -> h5py.Dataset | None:
    """The first 3-D ``data`` dataset whose group also holds a PyMca ``calibration``."""
    found: list[h5py.Dataset] = []

    def visit(name: str, obj: h5py.HLObject) -> None:
        if found or not isinstance(obj, h5py.Dataset) or name.split("/")[-1] != "data":
            return
        parent = obj.parent
        if obj.ndim == 3 and _is_dataset(parent, "calibration"):
            found.append(obj)

    file.visititems(visit)
    return found[0] if found else None


def _is_dataset(group: h5py.Group, path: str) -> bool:
    try:
        return isinstance(group.get(path), h5py.Dataset)
    except (KeyError, OSError, ValueError):
        return False


# -- PyMca -----------------------------------------------------------------------
def locate_pymca(data: h5py.Dataset, where: str) -> Located:
    """A PyMca stack: ``data`` (rows, cols, channels) and its siblings."""
    check_dataset(data, where)
    group = data.parent
    rows, cols, n_channels = data.shape
    channels = np.arange(n_channels, dtype=np.float64)
    if _is_dataset(group, "channels"):
        channels = np.asarray(group["channels"][...], dtype=np.float64).reshape(-1)
        if channels.size != n_channels:
            raise CubeReadError(
                f"{where}: {group.name}/channels has {channels.size} values for "
                f"{n_channels} channels"
            )
    a, b, c = _three(group["calibration"][...], f"{where}: {group.name}/calibration")
    if np.array_equal(channels, np.arange(n_channels)):
        # refuses a calibration that turns, naming the channel
        energy = energy_from_polynomial([a, b, c], n_channels, f"{where}: {group.name}")
    else:  # checked for increasing with the rest by resolve_energy_axis
        energy = a + b * channels + c * channels**2
    maps = {}
    if _is_dataset(group, "live_time"):
        maps["live_time"] = _pixel_map(group["live_time"], (rows, cols), where)
    metadata = {"maps": maps, "calibration_keV": [a, b, c]}
    return Located(data, 2, energy, "PyMca HDF5", metadata)


# -- XRF-Maps --------------------------------------------------------------------
def locate_xrf_maps(file: h5py.File, where: str) -> Located:
    """An XRF-Maps or MAPS file: ``mca_arr`` (channels, rows, cols), its calibration and maps.

    Two layouts: XRF-Maps' ``/MAPS/Spectra`` group (``Energy_Calibration``,
    ``Elapsed_Livetime``, ``/MAPS/Scalers/Names`` and ``Values``), and the
    older MAPS one that APS files such as the Bionanoprobe's still hold:
    ``/MAPS/energy_calib`` ``[offset, slope, quadratic]`` (keV) or the axis
    ``/MAPS/energy``, and ``/MAPS/scalers`` (n, rows, cols) named by
    ``/MAPS/scaler_names``, among them the live and real times (``ELT*``,
    ``ERT*``) and the upstream ion chamber (``us_ic``, the I0).
    """
    path = next(p for p in XRF_MAPS_SPECTRA if _is_dataset(file, p))
    spectra = get_dataset(file, path, where)
    check_dataset(spectra, where)
    n_channels, rows, cols = spectra.shape
    group = file["/MAPS/Spectra"] if "/MAPS/Spectra" in file else spectra.parent
    energy = None
    metadata: dict[str, Any] = {}
    for name in ("Energy_Calibration", "/MAPS/energy_calib"):
        holder = group if not name.startswith("/") else file
        if _is_dataset(holder, name):
            coefficients = _three(holder[name][...], f"{where}: {name}")
            energy = energy_from_polynomial(coefficients, n_channels, f"{where}: {name}")
            metadata["calibration_keV"] = list(coefficients)
            metadata["calibration_dataset"] = holder[name].name
            break
    if energy is None and _is_dataset(file, "/MAPS/energy"):
        axis = np.asarray(file["/MAPS/energy"][...], dtype=np.float64).reshape(-1)
        if axis.size == n_channels:
            energy = axis
            metadata["calibration_dataset"] = "/MAPS/energy"
    maps = {}
    for name, key in (("Elapsed_Livetime", "live_time"), ("Elapsed_Realtime", "real_time")):
        if _is_dataset(group, name):
            maps[key] = _pixel_map(group[name], (rows, cols), where)
    for names_path, values_path in (("/MAPS/Scalers/Names", "/MAPS/Scalers/Values"),
                                    ("/MAPS/scaler_names", "/MAPS/scalers")):
        if _is_dataset(file, names_path) and _is_dataset(file, values_path):
            names = [text(n) for n in file[names_path][...].reshape(-1)]
            values = file[values_path]
            if values.shape == (len(names), rows, cols):
                for i, name in enumerate(names):
                    maps.setdefault(name, np.asarray(values[i], dtype=np.float64))
    for prefix, key in (("elt", "live_time"), ("ert", "real_time"), ("us_ic", "I0")):
        found = [maps[n] for n in list(maps) if n.lower().startswith(prefix)]
        if found and key not in maps:
            maps[key] = np.mean(found, axis=0)
    metadata["maps"] = maps
    fmt = "XRF-Maps HDF5" if "/MAPS/Spectra" in file else "MAPS HDF5"
    return Located(spectra, 0, energy, fmt, metadata)


# -- PyXRF -----------------------------------------------------------------------
def locate_pyxrf(
    file: h5py.File,
    path: Path,
    where: str,
    parameters: str | os.PathLike[str] | None = None,
) -> Located:
    """A PyXRF file: ``xrfmap/detsum/counts`` with the calibration of its parameter file."""
    counts = get_dataset(file, PYXRF_COUNTS, where)
    check_dataset(counts, where)
    rows, cols, n_channels = counts.shape
    metadata: dict[str, Any] = {}
    parameter_file = Path(parameters) if parameters is not None else pyxrf_parameter_file(path)
    energy = None
    if parameter_file is None:
        warnings.warn(
            f"{where}: a PyXRF file keeps its energy calibration in PyXRF's parameter "
            "JSON, and none was given or found beside it (give it with "
            "read_cube(..., pyxrf_parameters=FILE) or --pyxrf-parameters FILE)",
            CalibrationWarning,
            stacklevel=5,
        )
    else:
        coefficients = read_pyxrf_calibration(parameter_file)
        energy = energy_from_polynomial(coefficients, n_channels, parameter_file.name)
        metadata["calibration_keV"] = list(coefficients)
        metadata["calibration_file"] = str(parameter_file)
    maps = {}
    if _is_dataset(file, "xrfmap/scalers/name") and _is_dataset(file, "xrfmap/scalers/val"):
        names = [text(n) for n in file["xrfmap/scalers/name"][...].reshape(-1)]
        values = file["xrfmap/scalers/val"]
        if values.shape == (rows, cols, len(names)):
            maps = {name: np.asarray(values[:, :, i], dtype=np.float64)
                    for i, name in enumerate(names)}
    metadata["maps"] = maps
    return Located(counts, 2, energy, "PyXRF HDF5", metadata)


def read_pyxrf_calibration(path: str | os.PathLike[str]) -> tuple[float, float, float]:
    """``(e_offset, e_linear, e_quadratic)`` (keV) from a PyXRF parameter JSON.

    Raises
    ------
    CubeReadError
        For a file that is not such a JSON (the message names the file).
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CubeReadError(f"{file.name}: no such PyXRF parameter file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CubeReadError(f"{file.name}: not a readable PyXRF parameter file ({exc})") from None
    values = []
    for key in PYXRF_CALIBRATION_KEYS:
        entry = data.get(key) if isinstance(data, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else None
        if value is None and key != "e_quadratic":
            raise CubeReadError(f"{file.name}: no {key} value (not a PyXRF parameter file?)")
        values.append(0.0 if value is None else value)
    try:
        a, b, c = (float(v) for v in values)
    except (TypeError, ValueError):
        raise CubeReadError(f"{file.name}: e_offset/e_linear/e_quadratic are not numbers") from None
    return a, b, c


def pyxrf_parameter_file(path: Path) -> Path | None:
    """The one JSON beside ``path`` that holds PyXRF's ``e_offset`` and ``e_linear``."""
    found = []
    for candidate in sorted(path.parent.glob("*.json")):
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(data, dict) and all(
            isinstance(data.get(k), dict) and "value" in data[k] for k in PYXRF_CALIBRATION_KEYS[:2]
        ):
            found.append(candidate)
    return found[0] if len(found) == 1 else None


# -- shared ----------------------------------------------------------------------
def _three(values: Any, where: str) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size not in (2, 3) or not np.all(np.isfinite(array)):
        raise CubeReadError(f"{where}: expected 2 or 3 finite calibration numbers, got {array}")
    a, b, c = (*array.tolist(), 0.0)[:3]
    return float(a), float(b), float(c)


def _pixel_map(dataset: h5py.Dataset, shape: tuple[int, int], where: str) -> np.ndarray:
    """A per-pixel value as a ``shape`` map (PyMca stores one value per spectrum, flat)."""
    values = np.asarray(dataset[...], dtype=np.float64)
    if values.size != shape[0] * shape[1]:
        raise CubeReadError(
            f"{where}: {dataset.name} has {values.size} values for {shape[0]} x {shape[1]} pixels"
        )
    return values.reshape(shape)
