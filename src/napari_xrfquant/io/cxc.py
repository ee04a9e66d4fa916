"""The CXC HDF5 layout: reading (with ground truth of simulated files) and writing.

The layout is this project's own (documented in :mod:`napari_xrfquant.io`):
the sample data, the tests and simulated measurements use it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import CubeReadError, XRFQuantError
from napari_xrfquant.io._h5 import Located, check_dataset, get_dataset, open_file, text, text_list
from napari_xrfquant.io.calibration import (
    energy_from_offset_gain,
    fit_linear_calibration,
    is_linear,
)

CXC_FORMAT = "CXC"
CXC_FORMAT_VERSION = 1
SPECTRA_PATH = "/spectra"
TRUTH_WT_PERCENT_PATH = "/truth/wt_percent"
TRUTH_REGIONS_PATH = "/truth/regions"

#: Storage chunk of written CXC files: 4 x 64 pixels x all channels (512 KiB
#: of uint16) keeps one pixel's read to about a millisecond of gzip.
_CXC_CHUNK_PIXELS = (4, 64)
_GZIP_LEVEL = 4


@dataclass(frozen=True)
class GroundTruth:
    """Known composition of a simulated cube (the ``/truth`` group of a CXC file).

    Attributes
    ----------
    wt_percent
        ``(H, W, E)`` float32 mass fractions in wt%, or None.
    elements
        Element symbols of the last axis of ``wt_percent``.
    regions
        ``(H, W)`` uint8 region labels, or None.
    region_names
        Name of each label (index = label).
    """

    wt_percent: np.ndarray | None = None
    elements: tuple[str, ...] = ()
    regions: np.ndarray | None = None
    region_names: tuple[str, ...] = ()


# -- CXC -----------------------------------------------------------------------
def is_cxc(file: h5py.File) -> bool:
    return text(file.attrs.get("format", "")) == CXC_FORMAT


def locate_cxc(file: h5py.File, where: str) -> Located:
    version = file.attrs.get("format_version", CXC_FORMAT_VERSION)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise CubeReadError(f"{where}: CXC format_version {version!r} is not a number") from None
    if version > CXC_FORMAT_VERSION:
        raise CubeReadError(
            f"{where}: CXC format version {version} is newer than this reader "
            f"({CXC_FORMAT_VERSION}); update napari-xrfquant"
        )
    dataset = get_dataset(file, SPECTRA_PATH, where)
    check_dataset(dataset, where)
    n_channels = dataset.shape[2]
    attrs = dataset.attrs
    metadata: dict[str, Any] = {"format_version": version}
    instrument_text = text(file.attrs["instrument"]) if "instrument" in file.attrs else None
    if instrument_text:
        metadata["instrument"] = instrument_text
    energy = None
    if "offset_keV" in attrs and "gain_keV" in attrs:
        energy = energy_from_offset_gain(attrs["offset_keV"], attrs["gain_keV"], n_channels, where)
    elif instrument_text:
        energy = _energy_from_instrument_text(instrument_text, n_channels, where)
    if "pixel_size_um" in attrs:
        metadata["pixel_size_um"] = float(attrs["pixel_size_um"])
    if "units" in attrs:
        metadata["units"] = text(attrs["units"])
    truth = read_truth_group(file, where)
    if truth is not None:
        metadata["truth"] = truth
    return Located(dataset, 2, energy, "CXC HDF5", metadata)


def _energy_from_instrument_text(text: str, n_channels: int, where: str) -> np.ndarray | None:
    import tomllib

    try:
        detector = tomllib.loads(text).get("detector", {})
    except ValueError:
        raise CubeReadError(f"{where}: the instrument attribute is not valid TOML") from None
    if "offset_keV" in detector and "gain_keV" in detector:
        return energy_from_offset_gain(
            detector["offset_keV"], detector["gain_keV"], n_channels, where
        )
    return None


def read_truth_group(file: h5py.File, where: str) -> GroundTruth | None:
    if "truth" not in file:
        return None
    try:
        wt = regions = None
        elements: list[str] = []
        names: list[str] = []
        if TRUTH_WT_PERCENT_PATH in file:
            node = file[TRUTH_WT_PERCENT_PATH]
            wt = np.asarray(node[...], dtype=np.float32)
            elements = text_list(node.attrs.get("elements", []))
        if TRUTH_REGIONS_PATH in file:
            node = file[TRUTH_REGIONS_PATH]
            regions = np.asarray(node[...], dtype=np.uint8)
            names = text_list(node.attrs.get("names", "[]"))
    except OSError as exc:
        raise CubeReadError(f"{where}: cannot read the /truth group ({exc})") from None
    return GroundTruth(wt, tuple(elements), regions, tuple(names))


def read_truth(path: str | os.PathLike[str]) -> GroundTruth | None:
    """The ground truth of a simulated CXC file, without reading its spectra.

    Parameters
    ----------
    path
        A CXC HDF5 file.

    Returns
    -------
    GroundTruth or None
        None when the file has no ``/truth`` group.

    Raises
    ------
    CubeReadError
        If the file is missing or not readable HDF5.
    """
    file_path = Path(path)
    with open_file(file_path) as file:
        return read_truth_group(file, file_path.name)


# -- writing ------------------------------------------------------------------
def _counts_for_cxc(counts: Any) -> np.ndarray:
    array = np.asarray(counts)
    if array.ndim != 3:
        raise XRFQuantError(f"counts must be 3-D (rows, cols, channels), got shape {array.shape}")
    if array.dtype.kind in "iu":
        if array.size and array.min() < 0:
            raise XRFQuantError("counts must not be negative")
        return array
    if array.dtype.kind != "f":
        raise XRFQuantError(f"counts must be integers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)) or (array.size and array.min() < 0):
        raise XRFQuantError("counts must be finite and non-negative")
    if not np.array_equal(array, np.round(array)):
        raise XRFQuantError("counts must be whole numbers (the CXC format stores integers)")
    peak = float(array.max()) if array.size else 0.0
    for dtype in (np.uint16, np.uint32, np.uint64):
        if peak <= np.iinfo(dtype).max:
            return array.astype(dtype)
    raise XRFQuantError("counts too large for 64-bit integers")


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return np.array(value, dtype=h5py.string_dtype())
    if isinstance(value, (list, tuple, np.ndarray)):
        array = np.asarray(value)
        if array.dtype.kind in "iuf":
            return array
    return json.dumps(value)


def write_cxc_hdf5(
    path: str | os.PathLike[str],
    counts: Any,
    energy_keV: Any,
    metadata: dict[str, Any] | None = None,
    truth_wt_percent: Any = None,
    truth_elements: list[str] | tuple[str, ...] | None = None,
    regions: Any = None,
    region_names: list[str] | tuple[str, ...] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a cube in the CXC HDF5 layout, atomically.

    Parameters
    ----------
    path
        Destination file (``.h5``).
    counts
        ``(rows, cols, channels)`` non-negative integer counts (whole-number
        floats are converted to the smallest unsigned type that holds them).
    energy_keV
        ``(channels,)`` channel-centre energies; must be linear
        (``offset + gain * k``), since the format stores offset and gain.
    metadata
        Optional: ``pixel_size_um`` (stored on ``/spectra``), ``instrument``
        (an :class:`~napari_xrfquant.instrument.Instrument` or TOML text, stored
        as the root attribute ``instrument``); other entries become root
        attributes (JSON text for nested values).
    truth_wt_percent, truth_elements
        Ground truth of simulated data: ``(rows, cols, n_elements)`` wt% and
        the element symbols.
    regions, region_names
        ``(rows, cols)`` integer labels (< 256) and the name of each label.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    XRFQuantError
        If the arrays do not fit together or cannot be stored.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    values = _counts_for_cxc(counts)
    rows, cols, n_channels = values.shape
    energy = np.asarray(energy_keV, dtype=np.float64).reshape(-1)
    if energy.size != n_channels or n_channels < 2:
        raise XRFQuantError(
            f"energy_keV has {energy.size} values for {n_channels} channels (need >= 2)"
        )
    if not np.all(np.diff(energy) > 0) or not is_linear(energy):
        raise XRFQuantError("energy_keV must increase linearly with channel (offset + gain * k)")
    offset_keV, gain_keV = fit_linear_calibration(energy)
    meta = dict(metadata or {})
    pixel_size_um = meta.pop("pixel_size_um", None)
    instrument = meta.pop("instrument", None)
    if instrument is not None and not isinstance(instrument, str):
        from napari_xrfquant.instrument import instrument_to_toml

        instrument = instrument_to_toml(instrument)
    truth = _truth_arrays(truth_wt_percent, truth_elements, regions, region_names, (rows, cols))
    chunks = (min(rows, _CXC_CHUNK_PIXELS[0]), min(cols, _CXC_CHUNK_PIXELS[1]), n_channels)
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as file:
        file.attrs["format"] = CXC_FORMAT
        file.attrs["format_version"] = CXC_FORMAT_VERSION
        if instrument is not None:
            file.attrs["instrument"] = instrument
        for key, value in meta.items():
            file.attrs[key] = _attr_value(value)
        spectra = file.create_dataset(
            SPECTRA_PATH,
            data=values,
            chunks=chunks,
            compression="gzip",
            compression_opts=_GZIP_LEVEL,
            shuffle=True,
        )
        spectra.attrs["offset_keV"] = offset_keV
        spectra.attrs["gain_keV"] = gain_keV
        spectra.attrs["units"] = "counts"
        if pixel_size_um is not None:
            spectra.attrs["pixel_size_um"] = float(pixel_size_um)
        _write_truth(file, truth)
    return target


def _truth_arrays(
    wt_percent: Any, elements: Any, regions: Any, region_names: Any, shape: tuple[int, int]
) -> dict[str, Any]:
    truth: dict[str, Any] = {}
    if wt_percent is not None:
        wt = np.asarray(wt_percent, dtype=np.float32)
        names = [str(e) for e in (elements or [])]
        if wt.ndim != 3 or wt.shape[:2] != shape or wt.shape[2] != len(names):
            raise XRFQuantError(
                f"truth_wt_percent shape {wt.shape} does not match the map {shape} "
                f"and {len(names)} truth_elements"
            )
        truth["wt"], truth["elements"] = wt, names
    if regions is not None:
        labels = np.asarray(regions)
        if labels.shape != shape or labels.dtype.kind not in "iu":
            raise XRFQuantError(f"regions must be integer labels of shape {shape}")
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise XRFQuantError("region labels must lie in 0..255")
        names = [str(n) for n in (region_names or [])]
        if labels.size and names and len(names) <= int(labels.max()):
            raise XRFQuantError(f"{len(names)} region_names for labels up to {labels.max()}")
        truth["regions"], truth["names"] = labels.astype(np.uint8), names
    return truth


def _write_truth(file: h5py.File, truth: dict[str, Any]) -> None:
    if "wt" in truth:
        node = file.create_dataset(TRUTH_WT_PERCENT_PATH, data=truth["wt"], compression="gzip")
        node.attrs["elements"] = np.array(truth["elements"], dtype=h5py.string_dtype())
    if "regions" in truth:
        node = file.create_dataset(TRUTH_REGIONS_PATH, data=truth["regions"], compression="gzip")
        node.attrs["names"] = json.dumps(truth["names"])
