"""The optic's transmission in torch: two sigmoids or log-transmission knots.

See :class:`napari_xrfquant.instrument.Optic` for the models; the numpy twin is
``Optic.transmission``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from napari_xrfquant.instrument import Instrument

#: The optic's scalar simulator parameters.
OPTIC_NAMES = ("optic_low_keV", "optic_low_width_keV", "optic_high_keV", "optic_high_width_keV")


def optic_transmission(
    model: str | None,
    energy_keV: torch.Tensor,
    values: Mapping[str, torch.Tensor],
    knots_keV: torch.Tensor,
    log_transmission: torch.Tensor,
) -> torch.Tensor:
    """``T(E)`` of an optic of ``model`` ("sigmoids", "knots" or None: 1)."""
    if model == "sigmoids":
        rise = torch.sigmoid((energy_keV - values["optic_low_keV"]) / values["optic_low_width_keV"])
        fall = torch.sigmoid(
            (values["optic_high_keV"] - energy_keV) / values["optic_high_width_keV"]
        )
        return rise * fall
    if model == "knots":
        return torch.exp(interp(energy_keV, knots_keV, log_transmission))
    return torch.ones_like(energy_keV)


def optic_values(instrument: Instrument) -> dict[str, float]:
    """The optic's scalar parameters (placeholders for an optic of another model)."""
    optic = instrument.optic
    if optic is not None and optic.model == "sigmoids":
        return {
            "optic_low_keV": float(optic.low_keV or 0.0),
            "optic_low_width_keV": float(optic.low_width_keV or 1.0),
            "optic_high_keV": float(optic.high_keV or 0.0),
            "optic_high_width_keV": float(optic.high_width_keV or 1.0),
        }
    return dict.fromkeys(OPTIC_NAMES, 1.0)


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` in torch (flat outside ``xp``), differentiable in ``fp``."""
    index = torch.searchsorted(xp, x.clamp(xp[0], xp[-1]), right=True).clamp(1, len(xp) - 1)
    x0, x1 = xp[index - 1], xp[index]
    t = ((x.clamp(xp[0], xp[-1]) - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return fp[index - 1] + t * (fp[index] - fp[index - 1])
