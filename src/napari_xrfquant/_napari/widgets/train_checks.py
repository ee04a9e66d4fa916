"""Physics checks of training settings, run before anything is simulated.

The training widget (and anyone building a :class:`TrainingConfig` by hand)
calls :func:`settings_problems` to refuse settings that cannot give a working
model: elements outside Na-U, a beam that excites none of an element's shells,
an energy calibration or input range that misses an element's strongest line,
non-positive sizes. This module imports neither Qt nor napari, so it is tested
(and usable) without a GUI; xraylib is imported inside the functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from napari_xrfquant.errors import XRFQuantError

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.training.config import TrainingConfig

#: Lightest and heaviest element the simulator supports (Na, U).
Z_MIN, Z_MAX = 11, 92

#: Shells whose absorption edges decide what a beam can excite.
_SHELLS = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")

#: Line families ranked by :func:`strongest_excited_line` (Siegbahn prefixes).
_FAMILIES = ("Ka", "Kb", "La", "Lb", "Ma", "Mb")

#: Line families a detector sees, with the shell whose vacancy emits them.
_LINES = (
    ("Ka", "KA_LINE", "K"),
    ("Kb", "KB_LINE", "K"),
    ("La", "LA_LINE", "L3"),
    ("Lb", "LB_LINE", "L2"),
    ("Ma", "MA1_LINE", "M5"),
    ("Mb", "MB_LINE", "M4"),
)

#: Sizes that must be positive, as (attribute path, what the user calls it).
_POSITIVE_SIZES = (
    ("n_spectra", "data set size"),
    ("batch_size", "batch size"),
    ("epochs", "epochs"),
    ("patience", "patience"),
    ("model.hidden_layers", "hidden layers"),
    ("model.neurons", "neurons per layer"),
    ("lr", "learning rate"),
    ("counts_min", "minimum counts"),
    ("counts_max", "maximum counts"),
)


@dataclass(frozen=True)
class ExcitedLine:
    """The strongest fluorescence line a beam excites in one element.

    Attributes
    ----------
    element
        Element symbol.
    label
        E.g. ``"Fe Ka"``.
    energy_keV
        Line energy.
    cross_section_cm2_g
        Line production cross section at the beam energy (cascade included),
        weighted over the beam energies.
    """

    element: str
    label: str
    energy_keV: float
    cross_section_cm2_g: float


def parse_element_list(text: str | Sequence[str]) -> list[str]:
    """Element symbols from ``"Fe, Ni, Cr"`` (commas, semicolons or spaces).

    Symbols are normalised to their usual case (``"fe"`` -> ``"Fe"``).

    Raises
    ------
    XRFQuantError
        For an empty list, an unknown symbol, an element outside Na-U, or a
        symbol listed twice.
    """
    import xraylib

    items = re.split(r"[\s,;]+", text.strip()) if isinstance(text, str) else list(text)
    items = [item.strip() for item in items if item and item.strip()]
    if not items:
        raise XRFQuantError("no elements given; name at least one, e.g. 'Fe, Ni, Cr'")
    symbols: list[str] = []
    for item in items:
        symbol = item[:1].upper() + item[1:].lower()
        try:
            z = int(xraylib.SymbolToAtomicNumber(symbol))
        except ValueError:
            z = 0
        if z <= 0:
            raise XRFQuantError(f"unknown element symbol {item!r}")
        if not Z_MIN <= z <= Z_MAX:
            raise XRFQuantError(f"element {symbol} (Z={z}) is outside the supported range Na-U")
        if symbol in symbols:
            raise XRFQuantError(f"element {symbol} is listed twice")
        symbols.append(symbol)
    return symbols


def lowest_edge_keV(element: str) -> tuple[str, float]:
    """The lowest absorption edge whose vacancies emit a line, as ``(shell, energy_keV)``.

    Outer M shells of light elements have tabulated edges of a few eV but emit no
    line a detector sees, so only the shells of :data:`_LINES` count.
    """
    import xraylib

    z = int(xraylib.SymbolToAtomicNumber(element))
    edges = []
    for _, macro_name, shell in _LINES:
        try:
            xraylib.LineEnergy(z, getattr(xraylib, macro_name))
        except ValueError:
            continue
        edge = _edge_keV(z, shell)
        if edge > 0:
            edges.append((shell, edge))
    return min(edges, key=lambda item: item[1])


def _higher_edge_note(element: str, line_energy_keV: float, beam_keV: float) -> str:
    """`` (the K edge, 7.11 keV, lies above the beam)`` when a higher family is dark."""
    import xraylib

    z = int(xraylib.SymbolToAtomicNumber(element))
    for shell in ("K", "L3", "M5"):
        edge = _edge_keV(z, shell)
        if edge > beam_keV and edge > line_energy_keV:
            return f" (the {element} {shell} edge, {edge:.2f} keV, lies above the beam)"
    return ""


def _edge_keV(z: int, shell: str) -> float:
    import xraylib

    try:
        return float(xraylib.EdgeEnergy(z, getattr(xraylib, f"{shell}_SHELL")))
    except ValueError:
        return 0.0


def strongest_excited_line(
    element: str, beam_energies_keV: Sequence[float], beam_weights: Sequence[float] | None = None
) -> ExcitedLine | None:
    """The line family with the largest production cross section for this beam.

    Each family (Ka, Kb, La, Lb, Ma, Mb) sums the simulator's own line cross
    sections (:func:`napari_xrfquant.physics._xraydata.fluor_line_cs`:
    photo-ionisation, fluorescence yield, radiative rate and the vacancy cascade
    with the simulator's corrections for heavy elements' M lines) over its
    IUPAC transitions, so the check ranks lines exactly as the training data
    will contain them. Matrix absorption is ignored, which does not change which
    line of one element is strongest except in rare edge coincidences.

    Returns
    -------
    ExcitedLine or None
        None when the beam lies below every absorption edge of ``element``;
        else the family with its cross-section-weighted mean energy.
    """
    import xraylib

    from napari_xrfquant.physics import _xraydata as xd

    z = int(xraylib.SymbolToAtomicNumber(element))
    weights = list(beam_weights) if beam_weights is not None else [1.0] * len(beam_energies_keV)
    lines: dict[str, tuple[str, float, float]] = {}  # iupac -> (family, keV, cm2/g)
    combined = []
    for transition in xd.transition_macros():
        family = xd.SIEGBAHN.get(transition.iupac, transition.iupac)[:2]
        if family not in _FAMILIES:
            continue
        energy_keV = xd.line_energy_keV(z, transition.macro)
        if energy_keV <= 0:
            continue
        cross_section = sum(
            weight * xd.fluor_line_cs(z, transition.macro, float(beam_keV))
            for beam_keV, weight in zip(beam_energies_keV, weights, strict=True)
        )
        if cross_section <= 0:
            continue
        if transition.parts:
            combined.append((transition, family, energy_keV, cross_section))
        else:
            lines[transition.iupac] = (family, energy_keV, cross_section)
    # as in the simulator: a combined macro (L3O45) only where none of its parts is tabulated
    for transition, family, energy_keV, cross_section in combined:
        if not any(part in lines for part in transition.parts):
            lines[transition.iupac] = (family, energy_keV, cross_section)
    families: dict[str, list[float]] = {}
    for family, energy_keV, cross_section in lines.values():
        total = families.setdefault(family, [0.0, 0.0])
        total[0] += cross_section
        total[1] += cross_section * energy_keV
    if not families:
        return None
    name, (cross_section, moment) = max(families.items(), key=lambda item: item[1][0])
    return ExcitedLine(element, f"{element} {name}", moment / cross_section, cross_section)


def input_ranges_keV(config: TrainingConfig, instrument: Instrument) -> list[tuple[float, float]]:
    """Energy ranges the model reads: its input segments clipped to the channels."""
    energy = instrument.energy_axis_keV()
    low, high = float(energy[0]), float(energy[-1])
    ranges = []
    for start, stop, _ in config.input.segments:
        lo, hi = max(float(start), low), min(float(stop), high)
        if hi > lo:
            ranges.append((lo, hi))
    return ranges


def _format_ranges(ranges: Iterable[tuple[float, float]]) -> str:
    merged: list[list[float]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return ", ".join(f"{lo:.2f}-{hi:.2f} keV" for lo, hi in merged) or "nothing"


def _get(config: Any, dotted: str) -> Any:
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def size_problems(values: dict[str, Any]) -> list[str]:
    """Messages for sizes that are not positive, from plain form values.

    Parameters
    ----------
    values
        Mapping of the dotted names in ``_POSITIVE_SIZES`` (e.g. ``"model.neurons"``)
        to numbers; missing names are skipped.
    """
    problems = []
    for key, label in _POSITIVE_SIZES:
        if key not in values:
            continue
        value = values[key]
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            problems.append(f"{label} must be positive (got {value})")
    if "counts_min" in values and "counts_max" in values and not problems:
        if values["counts_min"] > values["counts_max"]:
            problems.append(
                f"counts range {values['counts_min']:g}-{values['counts_max']:g}: "
                "the minimum exceeds the maximum"
            )
    return problems


def physics_problems(
    elements: Sequence[str], config: TrainingConfig, instrument: Instrument
) -> list[str]:
    """Messages for elements the beam cannot excite or the model cannot see.

    Parameters
    ----------
    elements
        Validated element symbols.
    config
        Supplies the model's input segments (the energy range it reads).
    instrument
        Supplies the beam energies and the energy calibration.
    """
    problems = []
    beam = instrument.beam
    beam_keV = max(beam.energies_keV)
    ranges = input_ranges_keV(config, instrument)
    if not ranges:
        energy = instrument.energy_axis_keV()
        return [
            f"the model's input segments miss the channels' energy range "
            f"({energy[0]:.2f}-{energy[-1]:.2f} keV)"
        ]
    not_excited = []
    for element in elements:
        line = strongest_excited_line(element, beam.energies_keV, beam.weights)
        if line is None:
            shell, edge = lowest_edge_keV(element)
            not_excited.append(f"{element} (lowest edge {shell} {edge:.2f} keV)")
            continue
        if not any(lo <= line.energy_keV <= hi for lo, hi in ranges):
            problems.append(
                f"the calibration and input range ({_format_ranges(ranges)}) miss "
                f"{line.label} at {line.energy_keV:.2f} keV, the strongest line a "
                f"{beam_keV:g} keV beam excites"
                + _higher_edge_note(element, line.energy_keV, beam_keV)
            )
    if not_excited:
        problems.insert(
            0,
            f"beam energy {beam_keV:g} keV lies below every absorption edge of "
            + ", ".join(not_excited),
        )
    return problems


def settings_problems(config: TrainingConfig, instrument: Instrument) -> list[str]:
    """Every reason why ``config`` with ``instrument`` cannot be trained (empty: fine).

    Covers what :class:`TrainingConfig` itself does not know: the physics of the
    chosen elements under this beam and calibration, and positive sizes.
    """
    problems = size_problems({key: _get(config, key) for key, _ in _POSITIVE_SIZES})
    try:
        elements = parse_element_list(config.elements)
    except XRFQuantError as exc:
        return [str(exc), *problems]
    return physics_problems(elements, config, instrument) + problems


def check_settings(config: TrainingConfig, instrument: Instrument) -> None:
    """Raise :class:`XRFQuantError` with the first reason ``config`` cannot be trained."""
    problems = settings_problems(config, instrument)
    if problems:
        raise XRFQuantError(problems[0])
