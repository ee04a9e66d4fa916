"""The share of air in the gas path as a parameter a fit can move.

A helium flush that leaks holds some air; the instrument file's ``[path]``
says how much (``air_fraction``, a mole share). Its attenuation along the path
from sample to detector is ``exp(-L rho mu)`` with ``rho mu`` the sum over the
gas's elements of their partial densities times their mass attenuation; at a
fixed pressure every partial density is linear in the air share, so the
optical depth is too::

    tau(E, f) = tau(E, f0) + (f - f0) L [(rho mu)_air(E) - (rho mu)_gas(E)]

The simulator holds the tables at the file's share ``f0`` and multiplies the
detection efficiency by ``exp(-(f - f0) excess(E))``, which is differentiable
in ``f``.
"""

from __future__ import annotations

import numpy as np

from napari_xrfquant.instrument import Instrument
from napari_xrfquant.physics import _xraydata as xd


def air_excess_depth(instrument: Instrument, energies_keV: np.ndarray) -> np.ndarray:
    """``(A,)`` optical depth that the whole gas path from sample to detector being
    air adds over its being the file's own gas (0 without a ``[path]``)."""
    energies = np.asarray(energies_keV, dtype=np.float64)
    path = instrument.path
    if path is None or path.emergent_cm <= 0.0:
        return np.zeros_like(energies)

    def depth(air_fraction: float) -> np.ndarray:
        layer = path.model_copy(update={"air_fraction": air_fraction}).layer(path.emergent_cm)
        if layer is None:
            return np.zeros_like(energies)
        mu = xd.material(layer["material"]).cs_total(energies)
        return mu * layer["density_g_cm3"] * layer["thickness_cm"]

    return depth(1.0) - depth(0.0)
