"""``read_cube``: one entry point for every cube format, chosen by suffix."""

from __future__ import annotations

import os
from pathlib import Path

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import DEFAULT_LAZY_THRESHOLD_BYTES
from napari_xrfquant.io.cube import Cube

#: File suffixes each reader accepts (lower case).
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5", ".cxc")
TIFF_SUFFIXES = (".tif", ".tiff")
NPY_SUFFIXES = (".npy",)
SUPPORTED_SUFFIXES = HDF5_SUFFIXES + TIFF_SUFFIXES + NPY_SUFFIXES


def read_cube(
    path: str | os.PathLike[str],
    dataset: str | None = None,
    energy_axis: str | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
) -> Cube:
    """Read an XRF cube (counts per pixel and channel) with its energy axis.

    Parameters
    ----------
    path
        A CXC or NeXus or generic HDF5 file (``.h5``, ``.hdf5``, ``.nxs``, ...),
        a TIFF stack (``.tif``, ``.tiff``) or a NumPy ``.npy`` file.
    dataset
        HDF5 only: path of the dataset to read (default: ``/spectra`` of a CXC
        file, the NeXus signal, or the largest 3-D numeric dataset).
    energy_axis
        ``"first"`` or ``"last"``: where the channels are in the file, for
        files that do not say (TIFF, ``.npy``, generic HDF5). Default: from the
        file's metadata, else guessed from the shape (see
        :func:`~napari_xrfquant.io._checks.guess_energy_axis`). CXC and NeXus
        files state their axis order, which wins (with a warning) over this.
    lazy
        True: keep the data in the file and return a dask array; False: load
        it; None: lazy only when the cube is larger than ``lazy_threshold_bytes``.
    lazy_threshold_bytes
        Size above which ``lazy=None`` opens lazily (default 2 GiB).

    Returns
    -------
    Cube
        Counts channel-last ``(H, W, C)`` with ``energy_keV`` and its
        ``calibration_source``. Close lazy cubes (``cube.close()`` or
        ``with read_cube(...) as cube:``) to release the file.

    Raises
    ------
    CubeReadError
        ``"<file name>: <problem>"`` for a missing file, an unsupported suffix,
        a damaged or truncated file, data that is not a 3-D numeric cube,
        negative, NaN or infinite counts (lazy cubes: checked in their first
        chunk only, the rest is not read at open), or an energy calibration
        that does not increase with channel.

    Warns
    -----
    CalibrationWarning
        When neither the file nor a sidecar ``<name>.calib.json`` has an
        energy calibration and the reference instrument's is used.

    Examples
    --------
    >>> cube = read_cube("map.h5")                        # doctest: +SKIP
    >>> cube.spectrum(10, 20).shape                       # doctest: +SKIP
    (1024,)
    """
    file_path = Path(path)
    suffix = file_path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "no suffix"
        raise CubeReadError(
            f"{file_path.name}: unsupported file type ({shown}); "
            f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not file_path.exists():
        raise CubeReadError(f"{file_path.name}: no such file")
    if file_path.is_dir():
        raise CubeReadError(f"{file_path.name}: is a folder, not a file")
    if dataset is not None and suffix not in HDF5_SUFFIXES:
        raise CubeReadError(f"{file_path.name}: dataset= applies to HDF5 files only")
    threshold = int(lazy_threshold_bytes)
    if suffix in HDF5_SUFFIXES:
        from napari_xrfquant.io.hdf5 import open_hdf5

        return open_hdf5(
            file_path,
            dataset=dataset,
            energy_axis=energy_axis,
            lazy=lazy,
            lazy_threshold_bytes=threshold,
        )
    if suffix in TIFF_SUFFIXES:
        from napari_xrfquant.io.tiff import open_tiff

        return open_tiff(
            file_path, energy_axis=energy_axis, lazy=lazy, lazy_threshold_bytes=threshold
        )
    from napari_xrfquant.io.npy import open_npy

    return open_npy(file_path, energy_axis=energy_axis, lazy=lazy, lazy_threshold_bytes=threshold)
