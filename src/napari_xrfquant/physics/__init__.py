"""Differentiable fundamental-parameter XRF simulator.

- :func:`simulate`: expected or Poisson spectra of bulk samples (numpy or torch).
- :class:`XRFSimulator`: the torch module behind it (batched, differentiable,
  instrument parameters as tensors, bulk or single layer).
- :func:`element_lines`: emission-line families for plot markers.

torch and xraylib load when a name is first used, so importing the package is cheap.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
