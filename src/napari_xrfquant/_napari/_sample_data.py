"""npe2 sample data: the simulated CXC gold sample (:mod:`napari_xrfquant.sample`) and
the real AXO map of ``sample_data/``.

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


AXO_LAYER_NAME = "axo_std"


def axo_sample() -> list[LayerData]:
    """Layers of the real AXO thin-film map (APS 2-ID-E, ``sample_data/aps_2ide``).

    Its four detector elements are aligned on their own lines as it is read;
    what the reader found comes as notifications, as when the file is opened.

    Raises
    ------
    CubeReadError
        When the map is not beside the package (an installed wheel carries
        no ``sample_data/``): the message says where it was looked for.
    """
    from napari.utils.notifications import show_warning

    from napari_xrfquant._napari._reader import read_cube_with_warnings
    from napari_xrfquant.sample import real_sample_path

    cube, messages = read_cube_with_warnings(real_sample_path("aps_2ide/axo_std.mda"))
    for message in messages:
        show_warning(message)
    layers = cube_layer_data(cube, AXO_LAYER_NAME)
    install_readout()
    return layers
