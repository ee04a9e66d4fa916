"""HDF5 cubes: find the cube (CXC, NeXus or generic layout) and read it, lazily if large.

See :mod:`napari_xrfquant.io` for the CXC layout. A lazy cube keeps its
``h5py.File`` open (owned by the :class:`~napari_xrfquant.io.Cube`, closed by
``Cube.close()``) and wraps the dataset in dask with chunks that are whole
storage chunks; one pixel's spectrum is one hyperslab read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import (
    DEFAULT_LAZY_THRESHOLD_BYTES,
    SliceOnly,
    dask_chunks,
    dask_name,
    decide_lazy,
    guess_energy_axis,
    lazy_sample,
    move_energy_last,
    normalise_energy_axis,
    pixel_index,
)
from napari_xrfquant.io._h5 import (
    Located,
    check_dataset,
    get_dataset,
    open_file,
    plain,
)
from napari_xrfquant.io.calibration import (
    energy_from_offset_gain,
    energy_from_polynomial,
    resolve_energy_axis,
)
from napari_xrfquant.io.cube import Cube
from napari_xrfquant.io.cxc import (
    SPECTRA_PATH,
    GroundTruth,
    is_cxc,
    locate_cxc,
    read_truth,
    write_cxc_hdf5,
)
from napari_xrfquant.io.layouts import (
    find_pymca_stack,
    is_pyxrf,
    is_xrf_maps,
    locate_pymca,
    locate_pyxrf,
    locate_xrf_maps,
)
from napari_xrfquant.io.nexus import find_nxdata, locate_nexus

__all__ = ["GroundTruth", "open_hdf5", "read_truth", "write_cxc_hdf5"]


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


def _locate_generic(dataset: h5py.Dataset, energy_axis: int | None, where: str) -> Located:
    check_dataset(dataset, where)
    attrs = dataset.attrs
    axis = energy_axis
    if axis is None and "energy_axis" in attrs:
        axis = normalise_energy_axis(plain(attrs["energy_axis"]), where)
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
    return Located(dataset, axis, energy, "HDF5", metadata)


# -- reading ------------------------------------------------------------------
def _locate(
    file: h5py.File,
    dataset: str | None,
    energy_axis: int | None,
    where: str,
    path: Path,
    pyxrf_parameters: str | os.PathLike[str] | None = None,
) -> Located:
    """The cube of ``file``: the named dataset, else the first layout that matches
    (CXC, XRF-Maps, PyXRF, PyMca stack, NeXus), else the largest 3-D dataset."""
    if dataset is not None:
        node = get_dataset(file, dataset, where)
        if is_cxc(file) and node.name == SPECTRA_PATH:
            located = locate_cxc(file, where)
        elif node.name.split("/")[-1] == "data" and "calibration" in node.parent:
            located = locate_pymca(node, where)
        else:
            located = _locate_generic(node, energy_axis, where)
    elif is_cxc(file):
        located = locate_cxc(file, where)
    elif is_xrf_maps(file):
        located = locate_xrf_maps(file, where)
    elif is_pyxrf(file):
        located = locate_pyxrf(file, path, where, pyxrf_parameters)
    elif (stack := find_pymca_stack(file)) is not None:
        located = locate_pymca(stack, where)
    else:
        group = find_nxdata(file)
        if group is not None:
            located = locate_nexus(group, where)
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
    return da.from_array(dataset, chunks=chunks, lock=True, asarray=True, fancy=False, name=name)


def open_hdf5(
    path: str | os.PathLike[str],
    dataset: str | None = None,
    energy_axis: str | int | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
    pyxrf_parameters: str | os.PathLike[str] | None = None,
    calibration: str | Sequence[float] | None = None,
) -> Cube:
    """Read a cube from a CXC, XRF-Maps, PyXRF, PyMca, NeXus or generic HDF5 file.

    Parameters are those of :func:`napari_xrfquant.io.read_cube`; a text
    ``calibration`` names a dataset of ``[offset, gain(, quadratic)]`` (keV).
    """
    file_path = Path(path)
    where = file_path.name
    axis_choice = normalise_energy_axis(energy_axis, where)
    file = open_file(file_path)
    try:
        located = _locate(file, dataset, axis_choice, where, file_path, pyxrf_parameters)
        node, axis = located.dataset, located.energy_axis
        n_channels = node.shape[axis]
        stated = None
        if isinstance(calibration, str):
            coefficients = get_dataset(file, calibration, where)[...]
            located.energy_keV = energy_from_polynomial(
                coefficients, n_channels, f"{where}: {calibration}"
            )
        elif calibration is not None:
            stated = calibration
        energy, source = resolve_energy_axis(file_path, n_channels, located.energy_keV, stated)
        metadata = {
            "format": located.format,
            "dataset": node.name,
            "energy_axis_in_file": {0: "first", 2: "last"}.get(axis, axis),
            "attrs": {key: plain(value) for key, value in file.attrs.items()},
            **located.metadata,
        }
        nbytes = int(node.size) * node.dtype.itemsize
        if decide_lazy(nbytes, lazy, lazy_threshold_bytes):
            mapped = _contiguous_memmap(node, file_path)
            source_array = node if mapped is None else mapped
            data = move_energy_last(_lazy_array(node, axis, mapped), axis)
            try:
                # a corner read at open: a damaged file is refused now, not at the first chunk
                lazy_sample(data, source_array, axis)
            except (OSError, RuntimeError) as exc:
                raise CubeReadError(
                    f"{where}: cannot read {node.name} (damaged or truncated file: {exc})"
                ) from None

            def read_pixel(row: int, col: int) -> np.ndarray:
                try:
                    return np.array(source_array[pixel_index(row, col, axis)])
                except (OSError, RuntimeError) as exc:
                    raise CubeReadError(
                        f"{where}: cannot read pixel ({row}, {col}) of {node.name} "
                        f"(damaged file: {exc})"
                    ) from None

            return Cube(
                data,
                energy,
                source,
                file_path,
                metadata,
                located.format,
                _read_pixel=read_pixel,
                _closer=file.close,
            )
        values = np.ascontiguousarray(move_energy_last(_read_all(node, where), axis))
    except BaseException:
        file.close()
        raise
    file.close()
    return Cube(values, energy, source, file_path, metadata, located.format)
