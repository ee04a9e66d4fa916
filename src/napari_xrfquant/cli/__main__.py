"""``python -m napari_xrfquant.cli``: the same as the ``xrfquant`` command."""

from __future__ import annotations

import sys

from napari_xrfquant.cli import main

sys.exit(main())
