"""Reading XRF cubes and writing element maps, without napari.

Entry points
------------
- :func:`read_cube` opens a cube (CXC HDF5, NeXus, generic HDF5, TIFF stack,
  ``.npy``) as a :class:`Cube`: counts channel-last ``(H, W, C)`` plus the
  energy axis in keV.
- :func:`write_cxc_hdf5` writes the CXC layout (sample data, tests, simulated
  measurements); :func:`read_truth` reads the ground truth of simulated files.
- :func:`write_element_maps` / :func:`read_element_maps` store quantified maps
  as ImageJ-compatible float32 TIFFs that round-trip exactly.

The CXC HDF5 layout (``format_version`` 1)
-------------------------------------------
This package's own layout for colour X-ray camera cubes, written by
:func:`write_cxc_hdf5` (the sample data, simulated measurements, tests). Other
HDF5 layouts (a vendor's, say) open through the generic-HDF5 mapping below
(``dataset``, ``energy_axis`` and ``calibration_dataset`` in the sidecar, or
the same arguments of :func:`read_cube`)::

    /                       attrs: format = "CXC", format_version = 1,
                                   instrument = TOML text (optional, the
                                   :mod:`napari_xrfquant.instrument` schema)
    /spectra                (rows, cols, channels) unsigned integer counts,
                            chunked (a few rows x up to 64 columns x all
                            channels), gzip + shuffle;
                            attrs: offset_keV, gain_keV (energy of channel k is
                                   offset_keV + gain_keV * k, channel centres),
                                   units = "counts", pixel_size_um (optional)
    /truth/wt_percent       (rows, cols, n_elements) float32, simulated data only;
                            attr elements = element symbols
    /truth/regions          (rows, cols) uint8 labels, simulated data only;
                            attr names = JSON list of region names (index = label)

A reader that meets ``format_version`` > 1 refuses the file rather than guess.
When ``/spectra`` has no ``offset_keV``/``gain_keV`` the ``[detector]`` table of
the ``instrument`` attribute gives the calibration.

Other formats
-------------
- Files of other XRF tools: PyMca HDF5 stacks, XRF-Maps (MAPS) and PyXRF files,
  with their calibrations, live and real times and scalers
  (:mod:`napari_xrfquant.io.layouts`; per-pixel maps in ``metadata["maps"]``).
- NeXus: the ``NXdata`` group named by the ``default`` attributes (else the
  first under an ``NXentry``), its ``signal`` dataset, and its ``axes`` (or
  ``<axis>_indices``) attributes: the energy axis is the one whose axis dataset
  has units keV or eV (or is named ``energy``), in any position; bin edges
  (C + 1 values) become centres.
- Generic HDF5: ``dataset=`` or the largest 3-D numeric dataset; the energy
  axis from its attributes ``energy_keV`` (values), ``offset_keV``/``gain_keV``
  or ``offset_eV``/``gain_eV``, and its position from ``energy_axis``
  ("first"/"last"), the length of ``energy_keV``, or the shape rule below.
- TIFF stacks: see :mod:`napari_xrfquant.io.tiff` (ImageJ/OME/tifffile axes
  first, then the shape rule; ``energy_axis=`` overrides).
- ``.npy``: always memory-mapped; axis from ``energy_axis=`` or the shape rule.
- Instruments' own files, with multi-element detectors combined by
  :mod:`.detectors`: APS MDA scans (:mod:`.mda`), GSECARS ASCII ``.mca``/``.xrf``
  (:mod:`.gsecars`), EMSA/MSA spectra, folders and zips (:mod:`.msa`), PIXLISE
  datasets (:mod:`.pixlise`).

One reader table (:data:`~napari_xrfquant.io.read.READERS`) chooses the reader
by suffix and content signature. Every cube then passes the same checks:
pixels with NaN, infinite or negative counts are masked, counted and said
(:mod:`.bad_pixels`, :class:`BadPixelWarning`), and a stored calibration that
misplaces the lines the spectrum shows is said (:mod:`.lines`).

Shape rule (files that do not say where the channels are): the middle axis is
spatial; of the two end axes, energy is the one whose length is least like the
middle one's (map sides resemble each other, channel counts do not). A tie
takes the first axis with an :class:`EnergyAxisWarning`.

Lazy cubes (larger than ``lazy_threshold_bytes``, or ``lazy=True``) wrap the
file in dask (chunks aligned to HDF5 storage chunks, or a memmap for
uncompressed data) and are checked for negative/NaN/inf counts only in a
sample of their first chunk at open; ``Cube.spectrum`` reads one pixel
straight from the file.

Energy calibration
------------------
``E = offset + gain * k + quadratic * k**2`` for channel ``k`` (keV), or any
increasing axis a file states. From ``read_cube(calibration=(offset, gain[,
quadratic]))`` when given (``calibration_source == "argument"``), else from the
file when it has one (``"file"``; a sidecar that disagrees by more than 1 eV
gets a :class:`CalibrationWarning`), else from a sidecar ``<name>.calib.json``
beside it (``{"offset_keV": 0.0, "gain_keV": 0.035, "quadratic_keV": 0.0}``;
``"sidecar"``), else the reference instrument's, with a
:class:`CalibrationWarning` (``"reference"``). The same sidecar may say where a
generic HDF5 file keeps its cube: ``{"dataset": "/entry/data/cube",
"energy_axis": "first", "calibration_dataset": "/entry/data/calibration"}``.
"""

from __future__ import annotations

from napari_xrfquant.io._checks import EnergyAxisWarning
from napari_xrfquant.io.bad_pixels import BadPixelWarning
from napari_xrfquant.io.calibration import (
    CalibrationWarning,
    sidecar_path,
    write_sidecar_calibration,
)
from napari_xrfquant.io.cube import Cube
from napari_xrfquant.io.hdf5 import GroundTruth, read_truth, write_cxc_hdf5
from napari_xrfquant.io.maps import ElementMaps, read_element_maps, write_element_maps
from napari_xrfquant.io.read import SUPPORTED_SUFFIXES, read_cube

__all__ = [
    "SUPPORTED_SUFFIXES",
    "BadPixelWarning",
    "CalibrationWarning",
    "Cube",
    "ElementMaps",
    "EnergyAxisWarning",
    "GroundTruth",
    "read_cube",
    "read_element_maps",
    "read_truth",
    "sidecar_path",
    "write_cxc_hdf5",
    "write_element_maps",
    "write_sidecar_calibration",
]
