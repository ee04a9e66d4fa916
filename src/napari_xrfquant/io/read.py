"""``read_cube``: one entry point for every cube format, chosen by suffix."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import DEFAULT_LAZY_THRESHOLD_BYTES
from napari_xrfquant.io.calibration import read_mapping
from napari_xrfquant.io.cube import Cube

#: File suffixes each reader accepts (lower case).
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5", ".cxc")
TIFF_SUFFIXES = (".tif", ".tiff")
NPY_SUFFIXES = (".npy",)
#: Read through rosettasciio (the ``formats`` extra): HyperSpy and Bruker files.
ROSETTA_SUFFIXES = (".hspy", ".zspy", ".bcf", ".spx")
#: ESRF formats (the ``formats`` extra): EDF through fabio, SPEC through silx.
ESRF_SUFFIXES = (".edf", ".spec", ".mca")
SUPPORTED_SUFFIXES = (
    HDF5_SUFFIXES + TIFF_SUFFIXES + NPY_SUFFIXES + ROSETTA_SUFFIXES + ESRF_SUFFIXES
)


def read_cube(
    path: str | os.PathLike[str],
    dataset: str | None = None,
    energy_axis: str | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
    calibration: str | Sequence[float] | None = None,
    pyxrf_parameters: str | os.PathLike[str] | None = None,
) -> Cube:
    """Read an XRF cube (counts per pixel and channel) with its energy axis.

    Parameters
    ----------
    path
        An HDF5 file (``.h5``, ``.hdf5``, ``.nxs``, ...: CXC, XRF-Maps, PyXRF,
        PyMca stack, NeXus or generic; see :mod:`napari_xrfquant.io`), a TIFF
        stack (``.tif``, ``.tiff``) or a NumPy ``.npy`` file.
    dataset
        HDF5 only: path of the dataset to read (default: the layout's cube, the
        NeXus signal, or the largest 3-D numeric dataset; or ``dataset`` of the
        sidecar ``<name>.calib.json``).
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
    calibration
        The energy calibration when the file's layout does not say: ``(offset,
        gain[, quadratic])`` in keV (``calibration_source == "argument"``, over
        anything in the file), or, for HDF5, the path of a dataset holding those
        numbers (or ``calibration_dataset`` of the sidecar).
    pyxrf_parameters
        PyXRF files: PyXRF's parameter JSON with the energy calibration
        (default: the one JSON beside the file that holds it).

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
    if file_path.is_dir() and suffix != ".zspy":  # a zarr store is a folder
        raise CubeReadError(f"{file_path.name}: is a folder, not a file")
    if dataset is not None and suffix not in HDF5_SUFFIXES:
        raise CubeReadError(f"{file_path.name}: dataset= applies to HDF5 files only")
    mapping = read_mapping(file_path)
    dataset = dataset if dataset is not None else mapping.get("dataset")
    energy_axis = energy_axis if energy_axis is not None else mapping.get("energy_axis")
    if calibration is None and "calibration_dataset" in mapping:
        calibration = mapping["calibration_dataset"]
    if isinstance(calibration, str) and suffix not in HDF5_SUFFIXES:
        raise CubeReadError(f"{file_path.name}: a calibration dataset applies to HDF5 files only")
    return _open(file_path, suffix, dataset, energy_axis, lazy, int(lazy_threshold_bytes),
                 calibration, pyxrf_parameters)


def _open(
    file_path: Path,
    suffix: str,
    dataset: str | None,
    energy_axis: str | None,
    lazy: bool | None,
    threshold: int,
    calibration: str | Sequence[float] | None,
    pyxrf_parameters: str | os.PathLike[str] | None,
) -> Cube:
    if suffix in HDF5_SUFFIXES:
        from napari_xrfquant.io.hdf5 import open_hdf5

        return open_hdf5(
            file_path,
            dataset=dataset,
            energy_axis=energy_axis,
            lazy=lazy,
            lazy_threshold_bytes=threshold,
            pyxrf_parameters=pyxrf_parameters,
            calibration=calibration,
        )
    if suffix in ESRF_SUFFIXES:
        from napari_xrfquant.io.esrf import open_edf, open_spec

        assert not isinstance(calibration, str)
        if suffix == ".edf":
            return open_edf(file_path, calibration, lazy, threshold)
        return open_spec(file_path, calibration, lazy, threshold)
    if suffix in ROSETTA_SUFFIXES:
        from napari_xrfquant.io.rosetta import open_rosetta

        assert not isinstance(calibration, str)
        return open_rosetta(file_path, lazy, threshold, calibration)
    if suffix in TIFF_SUFFIXES:
        from napari_xrfquant.io.tiff import open_tiff

        assert not isinstance(calibration, str)  # refused above
        return open_tiff(file_path, energy_axis, lazy, threshold, calibration)
    from napari_xrfquant.io.npy import open_npy

    assert not isinstance(calibration, str)
    return open_npy(file_path, energy_axis, lazy, threshold, calibration)
