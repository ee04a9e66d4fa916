"""``read_cube``: one entry point for every cube format, chosen from one reader table.

:data:`READERS` lists every format once: its name, the suffixes it claims, a
content signature (the first bytes of the file) where a suffix is shared or
absent, and its opener. Every opener has one signature, ``opener(path,
options) -> Cube``. A file goes to the reader whose suffix it has (the one whose
signature matches, where several share the suffix, as SPEC and GSECARS share
``.mca``), else to the reader whose signature matches its first bytes. After
the opener, every cube passes the same checks (:func:`finish`): pixels with
NaN, infinite or negative counts are masked (zeroed, so that they are NaN in
the maps) and counted, and what the opener found wrong with the calibration
(the multi-element readers check it against the lines, :mod:`.detectors`) is
said. ``xrfquant info`` and napari's reader check the other formats' in-memory
cubes the same way (:func:`~napari_xrfquant.io.detectors.check_cube_calibration`).
A ``.bin`` or ``.zip`` goes to its reader only when its content is what that
reader reads (``Reader.signed``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import DEFAULT_LAZY_THRESHOLD_BYTES
from napari_xrfquant.io.calibration import read_mapping
from napari_xrfquant.io.cube import Cube


@dataclass(frozen=True)
class ReadOptions:
    """What the caller of :func:`read_cube` asked for; each opener takes what applies."""

    dataset: str | None = None
    energy_axis: str | None = None
    lazy: bool | None = None
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES
    calibration: str | Sequence[float] | None = None
    pyxrf_parameters: str | os.PathLike[str] | None = None
    detector: str | int | None = "sum"

    def stated_calibration(self, where: str) -> Sequence[float] | None:
        """The calibration as numbers; a dataset path applies to HDF5 files only."""
        if isinstance(self.calibration, str):
            raise CubeReadError(f"{where}: a calibration dataset applies to HDF5 files only")
        return self.calibration


Opener = Callable[[Path, ReadOptions], Cube]


@dataclass(frozen=True)
class Reader:
    """One format of the reader table.

    Attributes
    ----------
    name
        The format, as ``xrfquant info`` names it.
    suffixes
        File suffixes (lower case) it claims.
    opener
        ``"module:function"`` of the opener (imported when used: some need an extra).
    signature
        ``"module:function"`` of ``head bytes -> bool``, or None.
    folders
        Whether it opens a folder (a zarr store, a folder of MSA files).
    signed
        Whether its suffix is too common to go by (``.bin``): the signature
        must match as well.
    """

    name: str
    suffixes: tuple[str, ...]
    opener: str
    signature: str | None = None
    folders: bool = False
    signed: bool = False

    def open(self, path: Path, options: ReadOptions) -> Cube:
        """Open ``path`` with this reader's opener."""
        opener: Opener = _resolve(self.opener)
        return opener(path, options)

    def matches(self, head: bytes) -> bool:
        """Whether ``head`` (the file's first bytes) carries this reader's signature."""
        if self.signature is None:
            return False
        check: Callable[[bytes], bool] = _resolve(self.signature)
        return bool(check(head))


def _resolve(target: str) -> Any:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


_OPENERS = "napari_xrfquant.io._openers"

#: Every format, once. Order matters only among readers sharing a suffix.
READERS: tuple[Reader, ...] = (
    Reader("HDF5 (CXC, XRF-Maps/MAPS, PyMca, PyXRF, NeXus, generic)",
           (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5", ".cxc"), f"{_OPENERS}:open_hdf5",
           f"{_OPENERS}:is_hdf5"),
    Reader("TIFF stack", (".tif", ".tiff"), f"{_OPENERS}:open_tiff"),
    Reader("NumPy .npy", (".npy",), f"{_OPENERS}:open_npy", f"{_OPENERS}:is_npy"),
    Reader("HyperSpy / Bruker (rosettasciio)", (".hspy", ".zspy", ".bcf", ".spx"),
           f"{_OPENERS}:open_rosetta", folders=True),
    Reader("EDF (fabio)", (".edf",), f"{_OPENERS}:open_edf"),
    Reader("APS MDA scan", (".mda",), f"{_OPENERS}:open_mda", f"{_OPENERS}:is_mda"),
    Reader("GSECARS MCA", (".mca", ".xrf"), f"{_OPENERS}:open_gsecars",
           "napari_xrfquant.io.gsecars:is_gsecars"),
    Reader("SPEC (silx)", (".spec", ".mca"), f"{_OPENERS}:open_spec"),
    Reader("EMSA/MSA", (".msa", ".emsa"), f"{_OPENERS}:open_msa",
           "napari_xrfquant.io.msa:is_msa", folders=True),
    Reader("EMSA/MSA zip", (".zip",), f"{_OPENERS}:open_msa",
           "napari_xrfquant.io.msa:is_msa_zip", signed=True),
    Reader("PIXLISE dataset", (".bin",), f"{_OPENERS}:open_pixlise",
           "napari_xrfquant.io.pixlise:is_pixlise", signed=True),
)

#: File suffixes some reader accepts (lower case).
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(
    suffix for reader in READERS for suffix in reader.suffixes))
#: The HDF5 reader: ``dataset=`` and a calibration dataset apply to its files only.
HDF5_READER = READERS[0]
#: Suffixes of the HDF5 reader.
HDF5_SUFFIXES = HDF5_READER.suffixes
#: Bytes read to test signatures.
HEAD_BYTES = 4096


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError:
        return b""


def find_reader(path: str | os.PathLike[str]) -> Reader | None:
    """The reader for ``path``: by suffix (and signature, where readers share it), else by
    signature alone; a folder by what it holds. None when no reader takes it."""
    file_path = Path(path)
    suffix = file_path.suffix.lower()
    if file_path.is_dir():
        if suffix == ".zspy":  # a zarr store
            return next(r for r in READERS if suffix in r.suffixes)
        if any(p.suffix.lower() in (".msa", ".emsa") for p in file_path.iterdir()):
            return next(r for r in READERS if r.name == "EMSA/MSA")
        return None
    head = _head(file_path)
    claimed = [r for r in READERS if suffix in r.suffixes and (not r.signed or r.matches(head))]
    if len(claimed) == 1:
        return claimed[0]
    if claimed:
        return next((r for r in claimed if r.matches(head)), claimed[-1])
    return next((r for r in READERS if r.matches(head)), None)


def can_read(path: str | os.PathLike[str]) -> bool:
    """Whether some reader takes ``path`` (napari's reader asks this first)."""
    file_path = Path(path)
    if not file_path.exists():
        return file_path.suffix.lower() in SUPPORTED_SUFFIXES
    return find_reader(file_path) is not None


def read_cube(
    path: str | os.PathLike[str],
    dataset: str | None = None,
    energy_axis: str | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
    calibration: str | Sequence[float] | None = None,
    pyxrf_parameters: str | os.PathLike[str] | None = None,
    detector: str | int | None = "sum",
) -> Cube:
    """Read an XRF cube (counts per pixel and channel) with its energy axis.

    Parameters
    ----------
    path
        Any file of :data:`READERS`: HDF5 (CXC, XRF-Maps/MAPS, PyXRF, PyMca
        stack, NeXus or generic; see :mod:`napari_xrfquant.io`), TIFF stack,
        ``.npy``, HyperSpy/Bruker, EDF, SPEC, APS MDA, GSECARS ``.mca``/``.xrf``,
        EMSA/MSA (a file, or a folder or zip of them).
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
    detector
        Files of multi-element detectors (MDA, GSECARS, multi-column MSA):
        ``"sum"`` (default) sums the elements after each one's calibration is
        checked and refined on its own lines; ``"stored"`` sums them with the
        calibrations as stored; an element number reads that element alone
        (:mod:`napari_xrfquant.io.detectors`).

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
        a damaged or truncated file, data that is not a 3-D numeric cube, or
        an energy calibration that does not increase with channel. Pixels
        with negative, NaN or infinite counts do not refuse the cube: they
        are masked (:mod:`napari_xrfquant.io.bad_pixels`).

    Warns
    -----
    CalibrationWarning
        When neither the file nor a sidecar ``<name>.calib.json`` has an
        energy calibration and the reference instrument's is used, or when the
        stored calibration misplaces the lines the spectrum shows.
    BadPixelWarning
        When pixels with NaN, infinite or negative counts were masked.

    Examples
    --------
    >>> cube = read_cube("map.h5")                        # doctest: +SKIP
    >>> cube.spectrum(10, 20).shape                       # doctest: +SKIP
    (1024,)
    """
    file_path = Path(path)
    if not file_path.exists():
        raise CubeReadError(f"{file_path.name}: no such file")
    reader = find_reader(file_path)
    if reader is None:
        shown = file_path.suffix.lower() or "no suffix"
        what = ("a folder of no known format" if file_path.is_dir()
                else f"unsupported file type ({shown})")
        raise CubeReadError(
            f"{file_path.name}: {what}; expected one of {', '.join(SUPPORTED_SUFFIXES)}, "
            "or a folder of .msa files"
        )
    if file_path.is_dir() and not reader.folders:
        raise CubeReadError(f"{file_path.name}: is a folder, not a file")
    if dataset is not None and reader is not HDF5_READER:
        raise CubeReadError(f"{file_path.name}: dataset= applies to HDF5 files only")
    mapping = read_mapping(file_path) if file_path.is_file() else {}
    if calibration is None and "calibration_dataset" in mapping:
        calibration = mapping["calibration_dataset"]
    options = ReadOptions(
        dataset=dataset if dataset is not None else mapping.get("dataset"),
        energy_axis=energy_axis if energy_axis is not None else mapping.get("energy_axis"),
        lazy=lazy,
        lazy_threshold_bytes=int(lazy_threshold_bytes),
        calibration=calibration,
        pyxrf_parameters=pyxrf_parameters,
        detector=detector,
    )
    return finish(reader.open(file_path, options))


def finish(cube: Cube) -> Cube:
    """The checks every cube passes after its opener: bad pixels masked, lines checked.

    Warns
    -----
    BadPixelWarning
        When pixels were masked (how many, and why).
    CalibrationWarning
        When the calibration misplaces the lines the spectrum shows.
    """
    from napari_xrfquant.io.bad_pixels import mask_bad_pixels
    from napari_xrfquant.io.calibration import CalibrationWarning

    cube = mask_bad_pixels(cube)
    message = cube.metadata.get("calibration_warning")
    if message:
        warnings.warn(message, CalibrationWarning, stacklevel=3)
    return cube
