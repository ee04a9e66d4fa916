"""The parameter space of an instrument: what a fit can free, how, and within what range.

Each continuous parameter of an instrument file a calibration (or AXS) can fit:
where it lives (its dotted key), the transform that keeps it in range, a
typical step and the sigma above which the data did not pin it down; the
default free set, and the vector an optimiser moves. It sits beside
:mod:`napari_xrfquant.instrument`, below the physics and everything that fits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import Instrument

#: A knots optic's drop parameter: ``optic_drop_<i>`` (from knot ``i - 1`` to ``i``).
DROP_PATTERN = re.compile(r"optic_drop_([1-9][0-9]*)$")


def drop_index(name: str) -> int | None:
    """The knot index of an ``optic_drop_<i>`` name, else None."""
    match = DROP_PATTERN.match(name)
    return int(match.group(1)) if match else None


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
    #: the smallest start: a ``log`` share freed from 0 starts here (a share clamped
    #: at 0 instead would get no gradient once a first step took it below); None: any
    floor: float | None = None


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
    # from 1e-4 when the file has none: up to 0.18 of each peak
    "high_tail_fraction": Parameter("detector.high_tail_fraction", "log", 0.5, 2e-3, 1e-4),
    "high_tail_slope_keV": Parameter("detector.high_tail_slope_keV", "log", 0.2, 0.1),
    # the pulse processor's threshold: a fit moves its edge by tens of eV at a time
    "threshold_keV": Parameter("detector.threshold_keV", "identity", 0.05, 0.05),
    "threshold_width_keV": Parameter("detector.threshold_width_keV", "log", 0.2, 0.05),
    # starts at 0 (no pile-up) and stays >= 0 in the simulator; identity, not logit
    # a range of 0.015 either way: sum peaks of a few per cent of the counts
    "pileup_fraction": Parameter("detector.pileup_fraction", "identity", 1e-3, 1e-3),
    # from 1e-3 when the file has none (from 0, logit's range would end at 2e-8)
    "continuum_fraction": Parameter("continuum.fraction", "logit", 0.2, 0.01, 1e-3),
    "setup_fraction": Parameter("setup_lines.fraction", "identity", 1e-3, 1e-3),
    "scatter_scale": Parameter("scatter.scale", "log", 0.2, 0.05),
    # the mole share of air in the [path] gas: starts where the file says (often 0)
    "air_fraction": Parameter("path.air_fraction", "identity", 0.01, 0.005),
    # the tube's: a transmission anode's thickness and its L lines (physics.tube_beam)
    "anode_thickness_cm": Parameter("tube.transmission_thickness_cm", "log", 0.2, 5e-5),
    "l_lines_scale": Parameter("tube.l_lines_scale", "log", 0.1, 0.05),
    "l2_lines_scale": Parameter("tube.l2_lines_scale", "log", 0.1, 0.05),
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
#: Names that stand for several parameters in ``free`` ("optic": the knots'
#: drops instead when the optic is a knots optic, see :func:`expand_free`).
ALIASES = {"optic": OPTIC_PARAMETERS, "calibration": ("gain_keV", "offset_keV")}
#: Smallest start of a monotone optic's drop (its fit moves ``log`` of it).
MIN_MONOTONE_DROP = 1e-3
DEFAULT_FREE = (
    "gain_keV",
    "offset_keV",
    "noise_keV",
    "fano",
    "tail_fraction",
    "shelf_fraction",
    "continuum_fraction",
    "continuum_power",
    "scatter_scale",
    "optic",
)


def default_free(instrument: Instrument) -> tuple[str, ...]:
    """What a calibration frees unless told otherwise: :data:`DEFAULT_FREE`, less the
    optic when ``instrument`` has none (a set-up is calibrated as it is, not given
    parts it lacks; free ``optic`` to add one)."""
    if instrument.optic is None:
        return tuple(name for name in DEFAULT_FREE if name != "optic")
    return DEFAULT_FREE


#: A nearly flat optic to start from when the instrument has none.
FLAT_OPTIC = {
    "model": "sigmoids",
    "low_keV": 0.8,
    "low_width_keV": 0.3,
    "high_keV": 30.0,
    "high_width_keV": 4.0,
}


def parameter(name: str, instrument: Instrument | None = None) -> Parameter:
    """How the parameter ``name`` is fitted: :data:`PARAMETERS`, or a knots
    optic's ``optic_drop_<i>`` (``log T[i-1] - log T[i]``; see
    :mod:`napari_xrfquant.physics.optic`). The drops of a monotone optic of
    ``instrument`` are fitted in ``log``, so they stay positive; one unit there
    is a factor of e.

    Raises
    ------
    XRFQuantError
        For a name that is no instrument parameter.
    """
    if name in PARAMETERS:
        return PARAMETERS[name]
    index = drop_index(name)
    if index is None:
        known = ", ".join([*PARAMETERS, "optic_drop_<i>", *ALIASES])
        raise XRFQuantError(f"unknown instrument parameter {name!r} (known: {known})")
    dotted = f"optic.log_transmission[{index - 1}] - optic.log_transmission[{index}]"
    optic = None if instrument is None else instrument.optic
    if optic is not None and optic.monotone:
        return Parameter(dotted, "log", 0.5, 0.05)
    return Parameter(dotted, "identity", 0.1, 0.05)


def is_optic(name: str) -> bool:
    """Whether ``name`` is a parameter of the optic's transmission."""
    return name in OPTIC_PARAMETERS or drop_index(name) is not None


def optic_names(instrument: Instrument | None) -> tuple[str, ...]:
    """What ``"optic"`` stands for: the knots' drops of a knots optic, else the sigmoids'."""
    optic = None if instrument is None else instrument.optic
    if optic is not None and optic.model == "knots":
        return tuple(f"optic_drop_{i}" for i in range(1, len(optic.knots_keV)))
    return OPTIC_PARAMETERS


def expand_free(free: Sequence[str], instrument: Instrument | None = None) -> list[str]:
    """Free parameter names with aliases (``"optic"``) expanded, in a stable order.

    With ``instrument``, ``"optic"`` stands for its optic's parameters
    (:func:`optic_names`) and a name its optic lacks is refused.

    Raises
    ------
    XRFQuantError
        For a name that is no instrument parameter (of ``instrument``'s optic).
    """
    names: list[str] = []
    for item in free:
        members = optic_names(instrument) if item == "optic" else ALIASES.get(item, (item,))
        for name in members:
            parameter(name)
            if name not in names:
                names.append(name)
    if instrument is not None:
        wrong = [n for n in names if is_optic(n) and n not in optic_names(instrument)]
        if wrong and instrument.optic is not None:
            raise XRFQuantError(
                f"{wrong[0]} is no parameter of this {instrument.optic.model} optic "
                f"(free 'optic' for its parameters: {', '.join(optic_names(instrument))})"
            )
    return names


def parameter_values(instrument: Instrument, names: Sequence[str]) -> dict[str, float]:
    """The current value of each named parameter in ``instrument`` (NaN where its
    section is missing)."""
    out = {}
    for name in names:
        index = drop_index(name)
        if index is not None:
            log_t = instrument.optic.log_transmission if instrument.optic is not None else ()
            out[name] = float(log_t[index - 1] - log_t[index]) if index < len(log_t) else math.nan
            continue
        section, key = PARAMETERS[name].dotted.split(".")
        holder = getattr(instrument, section)
        out[name] = float(getattr(holder, key)) if holder is not None else math.nan
    return out


#: Shares fitted without a transform that the simulator clamps (at 0 below): the file
#: gets the clamped value, within the file's own bounds.
HELD_IN = {"air_fraction": (0.0, 1.0), "pileup_fraction": (0.0, 0.5),
           "setup_fraction": (0.0, 0.5)}


def with_values(instrument: Instrument, values: Mapping[str, float]) -> Instrument:
    """``instrument`` with fitted values written in (an optic added if needed).

    A knots optic's drops set its ``log T`` from knot 0 on, shifted so that
    the highest is at most 0 (only the shape of ``T`` matters).
    """
    changes: dict[str, Any] = {}
    optic = instrument.optic.model_dump() if instrument.optic is not None else None
    drops = {drop_index(n): v for n, v in values.items() if drop_index(n) is not None}
    for name, value in values.items():
        if drop_index(name) is not None:
            continue
        dotted = PARAMETERS[name].dotted
        if dotted.startswith("optic."):
            optic = dict(optic or FLAT_OPTIC)
            optic[dotted.split(".")[1]] = float(value)
        elif name in HELD_IN:  # identity-fitted shares the simulator holds in range
            low, high = HELD_IN[name]
            changes[dotted] = min(max(float(value), low), high)
        else:
            changes[dotted] = float(value)
    if drops and optic is not None:
        stored = list(optic["log_transmission"])
        log_t = stored[:1]
        for i in range(1, len(stored)):
            log_t.append(log_t[-1] - float(drops.get(i, stored[i - 1] - stored[i])))
        optic["log_transmission"] = [v - max(max(log_t), 0.0) for v in log_t]
    if optic is not None:
        changes["optic"] = {k: v for k, v in optic.items() if v not in (None, (), [])}
    return instrument.replace(**changes)


def knots_optic(
    instrument: Instrument, knots_keV: Sequence[float], monotone: bool = False
) -> dict[str, Any]:
    """A knots optic at ``knots_keV`` that starts as ``instrument``'s optic (flat
    without one); a monotone one made non-increasing, each drop at least
    :data:`MIN_MONOTONE_DROP` so that its ``log`` is finite.

    Raises
    ------
    XRFQuantError
        For fewer than two knots or knots that do not increase.
    """
    knots = np.asarray(knots_keV, dtype=np.float64)
    if knots.size < 2 or np.any(np.diff(knots) <= 0) or not np.all(np.isfinite(knots)):
        raise XRFQuantError(f"optic knots {list(knots_keV)}: give two or more increasing energies")
    optic = instrument.optic
    log_t = np.log(optic.transmission(knots)) if optic is not None else np.zeros(knots.size)
    if monotone:
        drops = np.maximum(-np.diff(log_t), MIN_MONOTONE_DROP)
        log_t = log_t[0] - np.concatenate([[0.0], np.cumsum(drops)])
    log_t = log_t - max(float(log_t.max()), 0.0)
    return {
        "model": "knots",
        "knots_keV": [float(k) for k in knots],
        "log_transmission": [float(v) for v in log_t],
        "monotone": bool(monotone),
    }


#: How close to the edge of its range a ``log`` or ``logit`` parameter may come.
EDGE = 1e-9


def to_free(kind: str, value: float) -> float:
    """``value`` in the free space of transform ``kind`` ("identity", "log", "logit")."""
    if kind == "log":
        return math.log(max(value, EDGE))
    if kind == "logit":
        v = min(max(value, EDGE), 1 - EDGE)
        return math.log(v / (1 - v))
    return value


def from_free(kind: str, u: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_free`, differentiable."""
    if kind == "log":
        return torch.exp(u)
    if kind == "logit":
        return torch.sigmoid(u)
    return u


def clamp_natural(kind: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` (natural units) moved into the range of transform ``kind``."""
    if kind == "log":
        return value.clamp_min(EDGE)
    if kind == "logit":
        return value.clamp(EDGE, 1 - EDGE)
    return value


def start_value(spec: Parameter, value: float) -> float:
    """Where a fit of parameter ``spec`` starts from the file's ``value``: at least its
    floor, when it has one (offsets and optic drops may start below 0)."""
    return value if spec.floor is None else max(value, spec.floor)


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
        specs = [parameter(n, start) for n in self.names]
        self.kinds = [spec.transform for spec in specs]
        free = [to_free(spec.transform, start_value(spec, values[n]))
                for spec, n in zip(specs, self.names, strict=True)]
        self.start = torch.tensor(free, dtype=dtype, device=device)
        self.units = torch.tensor([spec.unit for spec in specs], dtype=dtype, device=device)

    def natural(self, u: torch.Tensor) -> torch.Tensor:
        """The parameters' values (natural units) at ``u``, differentiable."""
        free = self.start + self.units * BOUND * torch.tanh(u / BOUND)
        return torch.stack([from_free(k, free[i]) for i, k in enumerate(self.kinds)])

    def natural_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The lowest and highest value (natural units) of each parameter: ``BOUND``
        units either side of the start (every transform increases)."""
        with torch.no_grad():
            ends = [self.start - self.units * BOUND, self.start + self.units * BOUND]
            low, high = (torch.stack([from_free(k, end[i]) for i, k in enumerate(self.kinds)])
                         for end in ends)
        return low, high

    def as_dict(self, u: torch.Tensor) -> dict[str, float]:
        """Plain values at ``u`` (for :func:`with_values`)."""
        with torch.no_grad():
            values = self.natural(u)
        return {n: float(values[i]) for i, n in enumerate(self.names)}


def check_freeable(instrument: Instrument, names: Sequence[str]) -> None:
    """Refuse to free a share of a part the set-up lacks: ``setup_fraction``
    without set-up lines, ``anode_thickness_cm`` without a transmission-anode tube,
    the tube's L-line factors without a tube or where the file has them at 0,
    ``air_fraction`` without a gas path from sample to detector, or with a tube whose
    beam crosses the gas too (filtered once, as read), or the pulse processor's
    threshold where the file has none to start from.

    Raises
    ------
    XRFQuantError
        With the reason, in one line.
    """
    if "setup_fraction" in names and instrument.setup_lines is None:
        raise XRFQuantError(
            "setup_fraction is the share of the set-up's own lines: name them first "
            '(instrument [setup_lines] elements = ["Ar"])'
        )
    tube = instrument.tube
    if "anode_thickness_cm" in names and (tube is None or tube.transmission_thickness_cm is None):
        raise XRFQuantError("anode_thickness_cm is the thickness of a transmission anode: this "
                            "set-up has none ([tube] transmission_thickness_cm)")
    for name in ("l_lines_scale", "l2_lines_scale"):
        if name in names and (tube is None or getattr(tube, name) <= 0.0):
            raise XRFQuantError(f"{name} is a factor on the anode's L lines of a [tube]: this "
                                "set-up has " + ("no tube" if tube is None else "it at 0"))
    threshold = [n for n in ("threshold_keV", "threshold_width_keV") if n in names]
    if threshold and instrument.detector.threshold_keV <= 0.0:
        # at 0 the spectrum above it does not depend on it: a fit could not move it
        raise XRFQuantError(f"{threshold[0]} belongs to the pulse processor's threshold: give "
                            "the file a start where the spectrum falls ([detector] "
                            "threshold_keV = 1.0)")
    if "air_fraction" not in names:
        return
    path = instrument.path
    if path is None or path.emergent_cm <= 0.0:
        raise XRFQuantError('air_fraction is the share of air in the gas path: describe the '
                            'path first ([path] gas = "He", emergent_cm = ...)')
    if instrument.tube is not None and path.incident_cm > 0.0:
        raise XRFQuantError("air_fraction is fitted on the path from sample to detector; this "
                            "tube's beam crosses the gas as well (incident_cm), which the fit "
                            "cannot follow: set incident_cm = 0 or give the share")
