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
Written by the colour X-ray camera's acquisition software and by
:func:`write_cxc_hdf5`::

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

Energy calibration
------------------
From the file when it has one (``calibration_source == "file"``), else from a
sidecar ``<name>.calib.json`` beside it (``{"offset_keV": 0.0, "gain_keV":
0.035}``; ``"sidecar"``), else the reference instrument's, with a
:class:`CalibrationWarning` (``"reference"``).
"""

from __future__ import annotations

from napari_xrfquant.io._checks import EnergyAxisWarning
from napari_xrfquant.io.calibration import CalibrationWarning, sidecar_path
from napari_xrfquant.io.cube import Cube
from napari_xrfquant.io.hdf5 import GroundTruth, read_truth, write_cxc_hdf5
from napari_xrfquant.io.maps import ElementMaps, read_element_maps, write_element_maps
from napari_xrfquant.io.read import SUPPORTED_SUFFIXES, read_cube

__all__ = [
    "SUPPORTED_SUFFIXES",
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
]
