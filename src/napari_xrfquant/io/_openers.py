"""The openers and signatures of the reader table (:data:`napari_xrfquant.io.read.READERS`).

Each opener has the one signature ``opener(path, options) -> Cube`` and hands
the options that apply to its format's reader; the format modules are
imported only when a file of theirs is opened (some need an extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.io.calibration import resolve_energy_axis
from napari_xrfquant.io.cube import Cube

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.io.read import ReadOptions

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"


# -- signatures ---------------------------------------------------------------------
def is_hdf5(head: bytes) -> bool:
    """HDF5's superblock signature (at the file's start, where our files keep it)."""
    return head.startswith(HDF5_MAGIC)


def is_npy(head: bytes) -> bool:
    """NumPy's ``.npy`` magic string."""
    return head.startswith(NPY_MAGIC)


def is_mda(head: bytes) -> bool:
    """An MDA header: a float version near 1, then a small rank and its dimensions."""
    if len(head) < 16:
        return False
    version = float(np.frombuffer(head[:4], ">f4")[0])
    rank = int(np.frombuffer(head[8:12], ">i4")[0])
    return 1.0 <= version < 2.0 and 1 <= rank <= 4


# -- openers of the formats read before the table ---------------------------------------
def open_hdf5(path: Path, options: ReadOptions) -> Cube:
    """HDF5: CXC, XRF-Maps/MAPS, PyMca, PyXRF, NeXus, generic."""
    from napari_xrfquant.io.hdf5 import open_hdf5 as open_file

    return open_file(path, dataset=options.dataset, energy_axis=options.energy_axis,
                     lazy=options.lazy, lazy_threshold_bytes=options.lazy_threshold_bytes,
                     pyxrf_parameters=options.pyxrf_parameters, calibration=options.calibration)


def open_tiff(path: Path, options: ReadOptions) -> Cube:
    """TIFF stacks; this package's own map TIFFs are maps, not spectra, and refused."""
    from napari_xrfquant.errors import CubeReadError
    from napari_xrfquant.io.maps import is_element_maps, read_element_maps
    from napari_xrfquant.io.tiff import open_tiff as open_file

    if is_element_maps(path):
        maps = read_element_maps(path)
        raise CubeReadError(
            f"{path.name}: {maps.kind} maps of {', '.join(maps.elements)} written by "
            "napari-xrfquant, not a spectrum cube (napari opens them as maps; in Python, "
            "read_element_maps)")

    return open_file(path, options.energy_axis, options.lazy, options.lazy_threshold_bytes,
                     options.stated_calibration(path.name))


def open_npy(path: Path, options: ReadOptions) -> Cube:
    """NumPy ``.npy``."""
    from napari_xrfquant.io.npy import open_npy as open_file

    return open_file(path, options.energy_axis, options.lazy, options.lazy_threshold_bytes,
                     options.stated_calibration(path.name))


def open_rosetta(path: Path, options: ReadOptions) -> Cube:
    """HyperSpy and Bruker files through rosettasciio."""
    from napari_xrfquant.io.rosetta import open_rosetta as open_file

    return open_file(path, options.lazy, options.lazy_threshold_bytes,
                     options.stated_calibration(path.name))


def open_edf(path: Path, options: ReadOptions) -> Cube:
    """EDF through fabio."""
    from napari_xrfquant.io.esrf import open_edf as open_file

    return open_file(path, options.stated_calibration(path.name), options.lazy,
                     options.lazy_threshold_bytes)


def open_spec(path: Path, options: ReadOptions) -> Cube:
    """SPEC files with MCA data, through silx."""
    from napari_xrfquant.io.esrf import open_spec as open_file

    return open_file(path, options.stated_calibration(path.name), options.lazy,
                     options.lazy_threshold_bytes)


# -- the multi-element formats --------------------------------------------------------
def open_mda(path: Path, options: ReadOptions) -> Cube:
    """APS MDA scans (:mod:`.mda`)."""
    from napari_xrfquant.io.mda import open_mda as open_file

    return _element_cube(path, "APS MDA", open_file, options)


def open_gsecars(path: Path, options: ReadOptions) -> Cube:
    """GSECARS ASCII ``.mca``/``.xrf`` (:mod:`.gsecars`)."""
    from napari_xrfquant.io.gsecars import open_gsecars as open_file

    return _element_cube(path, "GSECARS MCA", open_file, options)


def open_msa(path: Path, options: ReadOptions) -> Cube:
    """EMSA/MSA: a file, or a folder or zip of them (:mod:`.msa`)."""
    from napari_xrfquant.io.msa import open_msa as open_file

    return _element_cube(path, "EMSA/MSA", open_file, options)


def open_pixlise(path: Path, options: ReadOptions) -> Cube:
    """PIXLISE datasets (:mod:`.pixlise`)."""
    from napari_xrfquant.io.pixlise import open_pixlise as open_file

    return _element_cube(path, "PIXLISE dataset", open_file, options)


def _element_cube(path: Path, name: str, open_file: Any, options: ReadOptions) -> Cube:
    """A cube from an opener of a (possibly) multi-element file.

    A stated calibration applies to every element: they are summed as stored
    with it (``calibration_source`` ``"argument"``).
    """
    stated = options.stated_calibration(path.name)
    summed = options.detector in (None, "sum")
    detector = "stored" if stated is not None and summed else options.detector
    data, energy, source, metadata = open_file(path, detector)
    energy_keV, resolved = resolve_energy_axis(path, int(data.shape[-1]), energy, stated)
    if resolved == "file" and source == "lines":
        resolved = "lines"
    metadata["format"] = name
    return Cube(np.asarray(data), energy_keV, resolved, path, metadata, name)
