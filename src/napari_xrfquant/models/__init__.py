"""Quantification networks and the model bundle format.

``load_model(name_or_path=None)`` returns a :class:`QuantModel`; the bundled
default (the reference CXC instrument, Au/Ag/Cu/Ni/Zn) lives in ``bundled/``.
Names resolve lazily so that importing this package does not import torch.
"""

from __future__ import annotations

from napari_xrfquant._lazy import lazy_exports

_LAZY = {
    "load_model": "napari_xrfquant.models.bundle",
    "save_bundle": "napari_xrfquant.models.bundle",
    "build_metadata": "napari_xrfquant.models.bundle",
    "list_bundled_models": "napari_xrfquant.models.bundle",
    "QuantModel": "napari_xrfquant.models.bundle",
    "UncertaintyCalibration": "napari_xrfquant.models.bundle",
    "BUNDLED_DIR": "napari_xrfquant.models.bundle",
    "build_network": "napari_xrfquant.models.architectures",
    "make_bin_edges": "napari_xrfquant.models.architectures",
    "ArchitectureSpec": "napari_xrfquant.models.architectures",
    "InputSpec": "napari_xrfquant.models.architectures",
    "QuantNet": "napari_xrfquant.models.architectures",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
