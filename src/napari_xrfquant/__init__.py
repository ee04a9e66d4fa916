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

from napari_xrfquant._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Instrument": "napari_xrfquant.instrument",
    "load_instrument": "napari_xrfquant.instrument",
    "read_cube": "napari_xrfquant.io",
    "simulate": "napari_xrfquant.physics",
    "load_model": "napari_xrfquant.models",
    "quantify": "napari_xrfquant.inference",
    "XRFQuantError": "napari_xrfquant.errors",
}

__all__ = [*sorted(_LAZY), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, extra=("__version__",))
