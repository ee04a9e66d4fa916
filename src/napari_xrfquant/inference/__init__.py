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

from napari_xrfquant._lazy import lazy_exports

_LAZY = {
    "quantify": "napari_xrfquant.inference.engine",
    "iter_quantify": "napari_xrfquant.inference.engine",
    "channel_edges_keV": "napari_xrfquant.inference.resample",
    "resample_counts": "napari_xrfquant.inference.resample",
    "Resampler": "napari_xrfquant.inference.resample",
    "poisson_fit_quality": "napari_xrfquant.inference.fit_quality",
    "forward_model": "napari_xrfquant.inference.forward",
    "simulator_forward_model": "napari_xrfquant.inference.forward",
    "resolve_device": "napari_xrfquant.inference.devices",
    "QuantResult": "napari_xrfquant.results.result",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
