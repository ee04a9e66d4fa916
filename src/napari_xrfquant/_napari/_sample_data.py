"""npe2 sample data: the simulated CXC gold sample (``sample_data/cxc_gold_sample.h5``).

The cube is shipped beside the package in an editable install (the repository's
``sample_data/`` folder); ``XRFQUANT_SAMPLE_DATA`` may point at another copy.
It opens exactly like a file given to the reader: a cube layer with the keV
slider and a total-counts layer.
"""

from __future__ import annotations

import os
from pathlib import Path

from napari_xrfquant._napari._layers import LayerData, cube_layer_data
from napari_xrfquant._napari._reader import install_readout

SAMPLE_FILE_NAME = "cxc_gold_sample.h5"
SAMPLE_LAYER_NAME = "cxc_gold_sample"
#: Environment variable naming another copy of the sample cube.
SAMPLE_ENV = "XRFQUANT_SAMPLE_DATA"


def sample_cube_path() -> Path:
    """Where the sample cube is: ``$XRFQUANT_SAMPLE_DATA`` or the repository's copy.

    Returns
    -------
    Path
        The path (which may not exist yet; :func:`cxc_gold_sample` checks).
    """
    override = os.environ.get(SAMPLE_ENV)
    if override:
        return Path(override)
    # src/napari_xrfquant/_napari/_sample_data.py -> repository root is parents[3]
    return Path(__file__).resolve().parents[3] / "sample_data" / SAMPLE_FILE_NAME


def cxc_gold_sample() -> list[LayerData]:
    """Layers of the simulated CXC gold sample: the cube and its total counts.

    Raises
    ------
    CubeReadError
        If the sample file is missing or unreadable (message names the file).
    """
    from napari_xrfquant.errors import CubeReadError
    from napari_xrfquant.io import read_cube

    path = sample_cube_path()
    if not path.is_file():
        raise CubeReadError(
            f"{path}: sample cube not found; it ships in the repository's sample_data/ "
            f"folder (or set {SAMPLE_ENV} to a copy)"
        )
    layers = cube_layer_data(read_cube(path), SAMPLE_LAYER_NAME)
    install_readout()
    return layers
