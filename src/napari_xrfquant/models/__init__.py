"""Quantification networks and the model bundle format.

``load_model(name_or_path=None)`` returns a :class:`QuantModel`; the bundled
default (the reference CXC instrument, Au/Ag/Cu/Ni/Zn) lives in ``bundled/``.
Names resolve lazily so that importing this package does not import torch.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
