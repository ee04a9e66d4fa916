"""HDF5 cubes: the CXC layout, NeXus NXdata, and generic HDF5.

See :mod:`napari_xrfquant.io` for the CXC layout. A lazy cube keeps its
``h5py.File`` open (owned by the :class:`~napari_xrfquant.io.Cube`, closed by
``Cube.close()``) and wraps the dataset in dask with chunks that are whole
storage chunks; one pixel's spectrum is one hyperslab read.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import CubeReadError, XRFQuantError
from napari_xrfquant.io._checks import (
    DEFAULT_LAZY_THRESHOLD_BYTES,
    SliceOnly,
    check_count_values,
    check_numeric_dtype,
    check_rank,
    dask_chunks,
    dask_name,
    decide_lazy,
    guess_energy_axis,
    lazy_sample,
    move_energy_last,
    normalise_energy_axis,
    pixel_index,
)
from napari_xrfquant.io.calibration import (
    energy_from_offset_gain,
    energy_from_units,
    fit_linear_calibration,
    is_linear,
    resolve_energy_axis,
)
from napari_xrfquant.io.cube import Cube

CXC_FORMAT = "CXC"
CXC_FORMAT_VERSION = 1
SPECTRA_PATH = "/spectra"
TRUTH_WT_PERCENT_PATH = "/truth/wt_percent"
TRUTH_REGIONS_PATH = "/truth/regions"

#: HDF5 chunk cache per open file: holds a neighbourhood of recently clicked
#: pixels, so moving the mouse around one area does not decompress again.
_CHUNK_CACHE_BYTES = 32 * 1024**2
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


@dataclass
class _Located:
    """The cube dataset a layout parser found, and what the file says about it."""

    dataset: h5py.Dataset
    energy_axis: int
    energy_keV: np.ndarray | None
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)


# -- small decoders ------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _text_list(value: Any) -> list[str]:
    if isinstance(value, (str, bytes, np.bytes_)):
        text = _text(value)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
        # NeXus's older style separates axis names with colons.
        return [part for part in text.replace(",", ":").split(":")] if text else []
    return [_text(v) for v in np.asarray(value).reshape(-1)]


def _plain(value: Any) -> Any:
    """An HDF5 attribute as plain Python data (str, number, list)."""
    if isinstance(value, (bytes, np.bytes_, str)):
        return _text(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_text(v) for v in value.reshape(-1)]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _nx_class(obj: h5py.HLObject) -> str:
    return _text(obj.attrs.get("NX_class", ""))


# -- opening ------------------------------------------------------------------
def _open_file(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES, rdcc_nslots=10007)
    except FileNotFoundError:
        raise CubeReadError(f"{path.name}: no such file") from None
    except OSError as exc:
        message = str(exc)
        if "truncated" in message:
            problem = "HDF5 file is truncated (an incomplete copy or an interrupted write?)"
        elif "signature" in message:
            problem = "not an HDF5 file"
        else:
            problem = f"not a readable HDF5 file ({message})"
        raise CubeReadError(f"{path.name}: {problem}") from None


def _get_dataset(file: h5py.File, name: str, where: str) -> h5py.Dataset:
    try:
        obj = file[name]
    except (KeyError, ValueError):
        raise CubeReadError(f"{where}: no dataset {name!r} in the file") from None
    except OSError as exc:
        raise CubeReadError(f"{where}: cannot read {name!r} ({exc})") from None
    if not isinstance(obj, h5py.Dataset):
        raise CubeReadError(f"{where}: {name!r} is a group, not a dataset")
    return obj


def _check_dataset(dataset: h5py.Dataset, where: str) -> None:
    check_numeric_dtype(dataset.dtype, f"{where}: {dataset.name}")
    check_rank(dataset.shape, f"{where}: {dataset.name}")


# -- CXC -----------------------------------------------------------------------
def _is_cxc(file: h5py.File) -> bool:
    return _text(file.attrs.get("format", "")) == CXC_FORMAT


def _locate_cxc(file: h5py.File, where: str) -> _Located:
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
    dataset = _get_dataset(file, SPECTRA_PATH, where)
    _check_dataset(dataset, where)
    n_channels = dataset.shape[2]
    attrs = dataset.attrs
    metadata: dict[str, Any] = {"format_version": version}
    instrument_text = _text(file.attrs["instrument"]) if "instrument" in file.attrs else None
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
        metadata["units"] = _text(attrs["units"])
    truth = _read_truth_group(file, where)
    if truth is not None:
        metadata["truth"] = truth
    return _Located(dataset, 2, energy, "CXC HDF5", metadata)


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


def _read_truth_group(file: h5py.File, where: str) -> GroundTruth | None:
    if "truth" not in file:
        return None
    try:
        wt = regions = None
        elements: list[str] = []
        names: list[str] = []
        if TRUTH_WT_PERCENT_PATH in file:
            node = file[TRUTH_WT_PERCENT_PATH]
            wt = np.asarray(node[...], dtype=np.float32)
            elements = _text_list(node.attrs.get("elements", []))
        if TRUTH_REGIONS_PATH in file:
            node = file[TRUTH_REGIONS_PATH]
            regions = np.asarray(node[...], dtype=np.uint8)
            names = _text_list(node.attrs.get("names", "[]"))
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
    with _open_file(file_path) as file:
        return _read_truth_group(file, file_path.name)


# -- NeXus ---------------------------------------------------------------------
def _find_nxdata(file: h5py.File) -> h5py.Group | None:
    """The NXdata group to plot, following the ``default`` attributes first."""
    entries = [
        g for g in file.values() if isinstance(g, h5py.Group) and _nx_class(g) == "NXentry"
    ]
    if not entries:
        return None
    default = _text(file.attrs.get("default", ""))
    if default in file and _nx_class(file[default]) == "NXentry":
        entries.insert(0, file[default])
    for entry in entries:
        data_name = _text(entry.attrs.get("default", ""))
        if data_name in entry and _nx_class(entry[data_name]) == "NXdata":
            return entry[data_name]
        for child in entry.values():
            if isinstance(child, h5py.Group) and _nx_class(child) == "NXdata":
                return child
    found: list[h5py.Group] = []

    def visit(_name: str, obj: h5py.HLObject) -> None:
        if not found and isinstance(obj, h5py.Group) and _nx_class(obj) == "NXdata":
            found.append(obj)

    file.visititems(visit)
    return found[0] if found else None


def _nx_signal(group: h5py.Group, where: str) -> h5py.Dataset:
    name = _text(group.attrs.get("signal", ""))
    if name:
        return _get_dataset(group, name, where)
    for child in group.values():  # NeXus before 2014: signal=1 on the dataset
        if isinstance(child, h5py.Dataset) and _text(child.attrs.get("signal", "")) == "1":
            return child
    if "data" in group and isinstance(group["data"], h5py.Dataset):
        return group["data"]
    raise CubeReadError(f"{where}: NXdata group {group.name} names no signal dataset")


def _nx_axis_names(group: h5py.Group, signal: h5py.Dataset) -> list[str]:
    """One axis name per signal dimension ('.' where there is none)."""
    names = ["."] * signal.ndim
    if "axes" in group.attrs:
        listed = _text_list(group.attrs["axes"])
        if len(listed) == signal.ndim:
            names = listed
    elif "axes" in signal.attrs:
        listed = _text_list(signal.attrs["axes"])
        if len(listed) == signal.ndim:
            names = listed
    for key, value in group.attrs.items():
        if key.endswith("_indices"):
            indices = np.atleast_1d(np.asarray(value)).astype(int)
            if indices.size == 1 and 0 <= indices[0] < signal.ndim:
                names[int(indices[0])] = key[: -len("_indices")]
    return names


def _is_energy_axis(group: h5py.Group, name: str) -> bool:
    if name in (".", "") or name not in group:
        return "energy" in name.lower()
    units = _text(group[name].attrs.get("units", "")).strip().lower()
    return units in ("kev", "ev") or "energy" in name.lower()


def _locate_nexus(group: h5py.Group, where: str) -> _Located:
    signal = _nx_signal(group, where)
    _check_dataset(signal, where)
    names = _nx_axis_names(group, signal)
    candidates = [i for i, name in enumerate(names) if _is_energy_axis(group, name)]
    metadata: dict[str, Any] = {"nexus_axes": names}
    if not candidates:
        axis = guess_energy_axis(signal.shape, where)
        return _Located(signal, axis, None, "NeXus", metadata)
    axis = candidates[0]
    name = names[axis]
    energy = None
    if name in group and isinstance(group[name], h5py.Dataset):
        node = group[name]
        values = np.asarray(node[...], dtype=np.float64).reshape(-1)
        units = _text(node.attrs["units"]) if "units" in node.attrs else None
        values = energy_from_units(values, units, f"{where}: {node.name}")
        n_channels = signal.shape[axis]
        if values.size == n_channels + 1:  # bin edges: take the centres
            values = 0.5 * (values[:-1] + values[1:])
        energy = values
    return _Located(signal, axis, energy, "NeXus", metadata)


# -- generic HDF5 ---------------------------------------------------------------
def _largest_cube(file: h5py.File, where: str) -> h5py.Dataset:
    cubes: list[h5py.Dataset] = []
    others: list[str] = []

    def visit(name: str, obj: h5py.HLObject) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.ndim == 3 and obj.dtype.kind in "iuf" and obj.dtype.fields is None:
            cubes.append(obj)
        elif obj.ndim >= 2 or obj.dtype.kind not in "iuf":
            others.append(f"/{name} ({obj.ndim}-D {obj.dtype})")

    file.visititems(visit)
    if not cubes:
        seen = f" (found {', '.join(others[:4])})" if others else ""
        raise CubeReadError(f"{where}: no 3-D numeric dataset to read as a cube{seen}")
    return max(cubes, key=lambda d: d.size)


def _locate_generic(
    dataset: h5py.Dataset, energy_axis: int | None, where: str
) -> _Located:
    _check_dataset(dataset, where)
    attrs = dataset.attrs
    axis = energy_axis
    if axis is None and "energy_axis" in attrs:
        axis = normalise_energy_axis(_plain(attrs["energy_axis"]), where)
    energy = None
    if "energy_keV" in attrs:
        energy = np.asarray(attrs["energy_keV"], dtype=np.float64).reshape(-1)
    if axis is None and energy is not None:
        matches = [i for i in (0, 2) if dataset.shape[i] == energy.size]
        axis = matches[0] if len(matches) == 1 else None
    if axis is None:
        axis = guess_energy_axis(dataset.shape, where)
    n_channels = dataset.shape[axis]
    if energy is None and "offset_keV" in attrs and "gain_keV" in attrs:
        energy = energy_from_offset_gain(attrs["offset_keV"], attrs["gain_keV"], n_channels, where)
    elif energy is None and "offset_eV" in attrs and "gain_eV" in attrs:
        energy = energy_from_offset_gain(
            float(attrs["offset_eV"]) / 1000, float(attrs["gain_eV"]) / 1000, n_channels, where
        )
    metadata: dict[str, Any] = {}
    if "pixel_size_um" in attrs:
        metadata["pixel_size_um"] = float(attrs["pixel_size_um"])
    return _Located(dataset, axis, energy, "HDF5", metadata)


# -- reading ------------------------------------------------------------------
def _locate(
    file: h5py.File, dataset: str | None, energy_axis: int | None, where: str
) -> _Located:
    if dataset is not None:
        node = _get_dataset(file, dataset, where)
        if _is_cxc(file) and node.name == SPECTRA_PATH:
            located = _locate_cxc(file, where)
        else:
            located = _locate_generic(node, energy_axis, where)
    elif _is_cxc(file):
        located = _locate_cxc(file, where)
    else:
        group = _find_nxdata(file)
        if group is not None:
            located = _locate_nexus(group, where)
        else:
            located = _locate_generic(_largest_cube(file, where), energy_axis, where)
    if energy_axis is not None and located.format != "HDF5" and energy_axis != located.energy_axis:
        warnings.warn(
            f"{where}: the {located.format} file states its axis order; "
            "ignoring the energy_axis argument",
            UserWarning,
            stacklevel=4,
        )
    return located


def _read_all(dataset: h5py.Dataset, where: str) -> np.ndarray:
    try:
        return dataset[...]
    except (OSError, RuntimeError) as exc:
        raise CubeReadError(
            f"{where}: cannot read {dataset.name} (damaged or truncated file: {exc})"
        ) from None


def _contiguous_memmap(dataset: h5py.Dataset, path: Path) -> np.ndarray | None:
    """Read-only memmap of an unchunked, unfiltered dataset stored in ``path``, else None.

    Such data lie as one plain block in the file: a memmap reads a pixel's
    strided spectrum without HDF5's per-call overhead (microseconds rather
    than ~10 ms for an energy-first cube).
    """
    if dataset.chunks is not None or dataset.compression is not None or dataset.external:
        return None
    try:
        offset = dataset.id.get_offset()
    except (OSError, RuntimeError):
        return None
    if offset is None or dataset.dtype.kind not in "iuf":
        return None
    if path.stat().st_size < offset + dataset.size * dataset.dtype.itemsize:
        return None  # let h5py report the damage
    return np.memmap(path, dtype=dataset.dtype, mode="r", offset=offset, shape=dataset.shape)


def _lazy_array(dataset: h5py.Dataset, energy_axis: int, mapped: np.ndarray | None) -> Any:
    import dask.array as da

    chunks = dask_chunks(dataset.shape, dataset.dtype.itemsize, dataset.chunks, energy_axis)
    name = dask_name(dataset.file.filename, dataset.name, chunks)
    if mapped is not None:
        return da.from_array(SliceOnly(mapped), chunks=chunks, asarray=True, name=name)
    # h5py serialises calls itself; the dask lock keeps reads of one file in order.
    return da.from_array(
        dataset, chunks=chunks, lock=True, asarray=True, fancy=False, name=name
    )


def open_hdf5(
    path: str | os.PathLike[str],
    dataset: str | None = None,
    energy_axis: str | int | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
) -> Cube:
    """Read a cube from a CXC, NeXus or generic HDF5 file.

    Parameters are those of :func:`napari_xrfquant.io.read_cube`.
    """
    file_path = Path(path)
    where = file_path.name
    axis_choice = normalise_energy_axis(energy_axis, where)
    file = _open_file(file_path)
    try:
        located = _locate(file, dataset, axis_choice, where)
        node, axis = located.dataset, located.energy_axis
        n_channels = node.shape[axis]
        energy, source = resolve_energy_axis(file_path, n_channels, located.energy_keV)
        metadata = {
            "format": located.format,
            "dataset": node.name,
            "energy_axis_in_file": {0: "first", 2: "last"}.get(axis, axis),
            "attrs": {key: _plain(value) for key, value in file.attrs.items()},
            **located.metadata,
        }
        nbytes = int(node.size) * node.dtype.itemsize
        if decide_lazy(nbytes, lazy, lazy_threshold_bytes):
            mapped = _contiguous_memmap(node, file_path)
            source_array = node if mapped is None else mapped
            data = move_energy_last(_lazy_array(node, axis, mapped), axis)
            try:
                sample = lazy_sample(data, source_array, axis)
            except (OSError, RuntimeError) as exc:
                raise CubeReadError(
                    f"{where}: cannot read {node.name} (damaged or truncated file: {exc})"
                ) from None
            check_count_values(sample, where, partial=True)

            def read_pixel(row: int, col: int) -> np.ndarray:
                try:
                    return np.array(source_array[pixel_index(row, col, axis)])
                except (OSError, RuntimeError) as exc:
                    raise CubeReadError(
                        f"{where}: cannot read pixel ({row}, {col}) of {node.name} "
                        f"(damaged file: {exc})"
                    ) from None

            return Cube(
                data, energy, source, file_path, metadata, located.format,
                _read_pixel=read_pixel, _closer=file.close,
            )
        values = np.ascontiguousarray(move_energy_last(_read_all(node, where), axis))
    except BaseException:
        file.close()
        raise
    file.close()
    check_count_values(values, where)
    return Cube(values, energy, source, file_path, metadata, located.format)


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
            SPECTRA_PATH, data=values, chunks=chunks, compression="gzip",
            compression_opts=_GZIP_LEVEL, shuffle=True,
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
