"""Differentiable fundamental-parameter XRF simulator.

- :func:`simulate`: expected or Poisson spectra of bulk samples (numpy or torch).
- :class:`XRFSimulator`: the torch module behind it (batched, differentiable,
  instrument parameters as tensors, bulk or single layer).
- :func:`element_lines`: emission-line families for plot markers.

torch and xraylib load when a name is first used, so importing the package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "simulate": "napari_xrfquant.physics.api",
    "element_lines": "napari_xrfquant.physics.api",
    "Line": "napari_xrfquant.physics.api",
    "SUM_TOLERANCE_WT_PERCENT": "napari_xrfquant.physics.api",
    "XRFSimulator": "napari_xrfquant.physics.simulator",
    "PARAMETER_NAMES": "napari_xrfquant.physics.simulator",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_xrfquant.physics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
