"""Spectra -> maps: chunked per-pixel quantification on any device.

- :func:`quantify` / :func:`iter_quantify` (:mod:`.engine`): counts ``[..., C]``
  to a :class:`~napari_xrfquant.results.QuantResult`;
- :mod:`.resample`: energy grids and the one resampler (counts conserved);
- :mod:`.fit_quality`: the normalised Poisson deviance;
- :mod:`.forward`: the spectrum expected for a composition (emulator or simulator);
- :mod:`.devices`: device choice and out-of-memory fallback.

Names resolve lazily so that importing this package does not import torch.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
