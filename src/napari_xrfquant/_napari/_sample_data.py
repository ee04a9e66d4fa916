"""npe2 sample data: the simulated CXC gold sample (:mod:`napari_xrfquant.sample`).

The cube is made from the simulator on first use and cached in the user cache
folder (``$XRFQUANT_SAMPLE_DATA`` may point at another copy). It opens exactly
like a file given to the reader: a cube layer with the keV slider, a
total-counts layer and the hidden truth-region labels.
"""

from __future__ import annotations

from napari_xrfquant._napari._layers import LayerData, cube_layer_data
from napari_xrfquant._napari._reader import install_readout

SAMPLE_LAYER_NAME = "cxc_gold_sample"


def cxc_gold_sample() -> list[LayerData]:
    """Layers of the simulated CXC gold sample: the cube and its total counts.

    Raises
    ------
    CubeReadError
        If the sample file is unreadable (the message names the file).
    """
    from napari_xrfquant.io import read_cube
    from napari_xrfquant.sample import sample_cube_path

    layers = cube_layer_data(read_cube(sample_cube_path()), SAMPLE_LAYER_NAME)
    install_readout()
    return layers
