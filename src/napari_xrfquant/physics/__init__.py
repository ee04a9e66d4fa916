"""Differentiable fundamental-parameter XRF simulator.

- :func:`simulate`: expected or Poisson spectra of bulk samples (numpy or torch).
- :class:`XRFSimulator`: the torch module behind it (batched, differentiable,
  instrument parameters as tensors, bulk or single layer).
- :func:`element_lines`: emission-line families for plot markers.

torch and xraylib load when a name is first used, so importing the package is cheap.
"""

from __future__ import annotations

from napari_xrfquant._lazy import lazy_exports

_LAZY = {
    "simulate": "napari_xrfquant.physics.api",
    "element_lines": "napari_xrfquant.physics.lines",
    "strongest_line": "napari_xrfquant.physics.lines",
    "lowest_emitting_edge": "napari_xrfquant.physics.lines",
    "parse_elements": "napari_xrfquant.physics.lines",
    "Line": "napari_xrfquant.physics.lines",
    "SUM_TOLERANCE_WT_PERCENT": "napari_xrfquant.physics.api",
    "XRFSimulator": "napari_xrfquant.physics.simulator",
    "PARAMETER_NAMES": "napari_xrfquant.physics.simulator",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
