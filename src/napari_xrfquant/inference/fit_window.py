"""The channels a fit or an element search reads: one check of an energy range."""

from __future__ import annotations

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import Instrument

#: The fewest channels a fit range may hold.
MIN_FIT_CHANNELS = 10


def fit_channel_mask(instrument: Instrument, window: tuple[float, float]) -> np.ndarray:
    """The instrument's channels inside ``window`` (keV, both ends included), as a
    boolean mask: what a fit of the simulator's components or a search reads.

    Raises
    ------
    XRFQuantError
        When fewer than :data:`MIN_FIT_CHANNELS` channels lie there (a range above
        the detector's, or between two channels), naming the detector's own range.
    """
    low, high = window
    energy = instrument.energy_axis_keV()
    mask = (energy >= low) & (energy <= high)
    if int(mask.sum()) < MIN_FIT_CHANNELS:
        raise XRFQuantError(f"fewer than {MIN_FIT_CHANNELS} channels lie in {low:g}-{high:g} "
                            f"keV (the detector's channels span "
                            f"{energy[0]:.2f}-{energy[-1]:.2f} keV)")
    return mask
