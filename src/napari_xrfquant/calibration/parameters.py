"""The instrument parameters a calibration can free: where they live, how they are fitted."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import Instrument


@dataclass(frozen=True)
class Parameter:
    """A global instrument parameter the fit can free.

    The optimiser moves ``u``; the parameter is ``transform(start + unit *
    BOUND * tanh(u / BOUND))``, so one unit of ``u`` is a typical change and no
    step can leave the plausible range (``BOUND`` units either way).
    """

    dotted: str  #: where it lives in the instrument file
    transform: str  #: "identity", "log" (positive) or "logit" (in (0, 1))
    unit: float  #: a typical change, in the transformed space
    scale: float  #: a sigma above this (natural units) means the data did not pin it down


#: Simulator parameter name -> how it is fitted.
PARAMETERS: dict[str, Parameter] = {
    "gain_keV": Parameter("detector.gain_keV", "log", 0.002, 2e-4),
    "offset_keV": Parameter("detector.offset_keV", "identity", 0.01, 0.02),
    "quadratic_keV": Parameter("detector.quadratic_keV", "identity", 1e-7, 2e-7),
    "noise_keV": Parameter("detector.noise_keV", "log", 0.05, 0.01),
    "fano": Parameter("detector.fano", "log", 0.05, 0.03),
    "tail_fraction": Parameter("detector.tail_fraction", "logit", 0.2, 0.01),
    "tail_slope_keV": Parameter("detector.tail_slope_keV", "log", 0.1, 0.1),
    "shelf_fraction": Parameter("detector.shelf_fraction", "logit", 0.2, 0.003),
    # starts at 0 (no pile-up) and stays >= 0 in the simulator; identity, not logit
    "pileup_fraction": Parameter("detector.pileup_fraction", "identity", 2e-4, 1e-3),
    "continuum_fraction": Parameter("continuum.fraction", "logit", 0.2, 0.01),
    "setup_fraction": Parameter("setup_lines.fraction", "identity", 2e-4, 1e-3),
    "continuum_power": Parameter("continuum.power", "identity", 0.2, 0.3),
    "continuum_decay_keV": Parameter("continuum.decay_keV", "log", 0.1, 2.0),
    "optic_low_keV": Parameter("optic.low_keV", "identity", 0.2, 0.5),
    "optic_low_width_keV": Parameter("optic.low_width_keV", "log", 0.1, 0.3),
    "optic_high_keV": Parameter("optic.high_keV", "identity", 1.0, 1.0),
    "optic_high_width_keV": Parameter("optic.high_width_keV", "log", 0.1, 1.0),
}
#: Largest change of a parameter, in its units (see :class:`Parameter`).
BOUND = 15.0
OPTIC_PARAMETERS = (
    "optic_low_keV",
    "optic_low_width_keV",
    "optic_high_keV",
    "optic_high_width_keV",
)
#: Names that stand for several parameters in ``free``.
ALIASES = {"optic": OPTIC_PARAMETERS, "calibration": ("gain_keV", "offset_keV")}
DEFAULT_FREE = (
    "gain_keV",
    "offset_keV",
    "noise_keV",
    "fano",
    "tail_fraction",
    "shelf_fraction",
    "continuum_fraction",
    "continuum_power",
    "optic",
)
#: A nearly flat optic to start from when the instrument has none.
FLAT_OPTIC = {
    "model": "sigmoids",
    "low_keV": 0.8,
    "low_width_keV": 0.3,
    "high_keV": 30.0,
    "high_width_keV": 4.0,
}


def expand_free(free: Sequence[str]) -> list[str]:
    """Free parameter names with aliases (``"optic"``) expanded, in a stable order.

    Raises
    ------
    XRFQuantError
        For a name that is no instrument parameter.
    """
    names: list[str] = []
    for item in free:
        for name in ALIASES.get(item, (item,)):
            if name not in PARAMETERS:
                known = ", ".join([*PARAMETERS, *ALIASES])
                raise XRFQuantError(f"unknown instrument parameter {name!r} (known: {known})")
            if name not in names:
                names.append(name)
    return names


def parameter_values(instrument: Instrument, names: Sequence[str]) -> dict[str, float]:
    """The current value of each named parameter in ``instrument``."""
    out = {}
    for name in names:
        section, key = PARAMETERS[name].dotted.split(".")
        holder = getattr(instrument, section)
        out[name] = float(getattr(holder, key)) if holder is not None else math.nan
    return out


def with_values(instrument: Instrument, values: Mapping[str, float]) -> Instrument:
    """``instrument`` with fitted values written in (an optic added if needed)."""
    changes: dict[str, Any] = {}
    optic = instrument.optic.model_dump() if instrument.optic is not None else None
    for name, value in values.items():
        dotted = PARAMETERS[name].dotted
        if dotted.startswith("optic."):
            optic = dict(optic or FLAT_OPTIC)
            optic[dotted.split(".")[1]] = float(value)
        else:
            changes[dotted] = float(value)
    if optic is not None:
        changes["optic"] = {k: v for k, v in optic.items() if v not in (None, (), [])}
    return instrument.replace(**changes)


def start_instrument(
    instrument: Instrument, energy_keV: np.ndarray, names: Sequence[str]
) -> Instrument:
    """Where a fit starts: ``instrument`` with the cube's channel count and stated
    (linear) calibration, and a nearly flat optic when one is to be fitted and
    the instrument has none."""
    from napari_xrfquant.io.calibration import fit_linear_calibration

    offset, gain = fit_linear_calibration(np.asarray(energy_keV, dtype=np.float64))
    changes: dict[str, Any] = {
        "detector.n_channels": int(np.asarray(energy_keV).size),
        "detector.offset_keV": offset,
        "detector.gain_keV": gain,
    }
    if "setup_fraction" in names and instrument.setup_lines is None:
        raise XRFQuantError(
            "setup_fraction is the share of the set-up's own lines: name them first "
            '(instrument [setup_lines] elements = ["Ar"])'
        )
    if instrument.optic is None and any(n in OPTIC_PARAMETERS for n in names):
        changes["optic"] = dict(FLAT_OPTIC)
    return instrument.replace(**changes)


def to_free(name: str, value: float) -> float:
    kind = PARAMETERS[name].transform
    if kind == "log":
        return math.log(value)
    if kind == "logit":
        v = min(max(value, 1e-9), 1 - 1e-9)
        return math.log(v / (1 - v))
    return value


def from_free(name: str, u: torch.Tensor) -> torch.Tensor:
    kind = PARAMETERS[name].transform
    if kind == "log":
        return torch.exp(u)
    if kind == "logit":
        return torch.sigmoid(u)
    return u


class FreeVector:
    """The free parameters of ``names`` as one unconstrained vector ``u``.

    ``u = 0`` is the start; one unit of ``u`` is a typical change of its
    parameter (:attr:`Parameter.unit`), so optimisers see comparable curvature
    in every direction, and ``tanh`` keeps every value within ``BOUND`` units
    of the start (see :class:`Parameter`).
    """

    def __init__(
        self,
        start: Instrument,
        names: Sequence[str],
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        self.names = list(names)
        values = parameter_values(start, self.names)
        free = [to_free(n, values[n]) for n in self.names]
        self.start = torch.tensor(free, dtype=dtype, device=device)
        self.units = torch.tensor(
            [PARAMETERS[n].unit for n in self.names], dtype=dtype, device=device
        )

    def natural(self, u: torch.Tensor) -> torch.Tensor:
        """The parameters' values (natural units) at ``u``, differentiable."""
        free = self.start + self.units * BOUND * torch.tanh(u / BOUND)
        return torch.stack([from_free(n, free[i]) for i, n in enumerate(self.names)])

    def as_dict(self, u: torch.Tensor) -> dict[str, float]:
        """Plain values at ``u`` (for :func:`with_values`)."""
        with torch.no_grad():
            values = self.natural(u)
        return {n: float(values[i]) for i, n in enumerate(self.names)}
