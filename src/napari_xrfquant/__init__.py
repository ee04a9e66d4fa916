"""napari-xrfquant: quantitative element maps from X-ray fluorescence cubes.

The public API works without napari or Qt::

    import napari_xrfquant as xq
    cube = xq.read_cube("map.h5")
    result = xq.quantify(cube.data, cube.energy_keV)   # wt% per element
    spectra = xq.simulate([[58.56, 3.90, 35.65, 0, 1.891]], ["Au", "Ag", "Cu", "Ni", "Zn"])

Heavy modules (torch, xraylib) are imported on first use so that napari starts
fast when it scans plugins.
"""

from __future__ import annotations

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
