"""The lines an instrument excites: element symbols, line families, absorption edges.

Public physics lookups for everything outside the simulator that must know
which fluorescence lines a set-up produces: plot markers (:func:`element_lines`),
the training-settings checks (:func:`strongest_line`, :func:`lowest_emitting_edge`)
and element lists typed by people (:func:`parse_elements`). They use the
simulator's own line tables (:func:`~napari_xrfquant.physics.tables.lines_of_element`:
xraylib data with the package's cascade corrections), so a check ranks lines
exactly as the simulated spectra contain them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_xrfquant.errors import SimulationError
from napari_xrfquant.instrument import Instrument, reference_instrument
from napari_xrfquant.physics import _xraydata as xd
from napari_xrfquant.physics import tables as tb

#: Line families, and the Siegbahn names they gather (a = alpha, b = beta, g =
#: gamma, l = ell, n = eta, z = zeta).
FAMILIES = ("Ka", "Kb", "La", "Lb", "Lg", "Ll", "Ln", "Ma", "Mb", "Mg", "Mz")

#: The families whose shells decide what a beam can excite (K, L2, L3, M4, M5).
MAIN_FAMILIES = ("Ka", "Kb", "La", "Lb", "Ma", "Mb")

#: Lightest and heaviest element the simulator supports (Na, U).
Z_MIN, Z_MAX = xd.Z_MIN, xd.Z_MAX


@dataclass(frozen=True)
class Line:
    """An emission-line family of one element, as a detector sees it.

    Attributes
    ----------
    element
        Element symbol, e.g. "Au".
    label
        e.g. "Au La".
    energy_keV
        Intensity-weighted mean energy of the family's lines.
    relative_intensity
        Intensity relative to the element's strongest family (pure element,
        the instrument's beam; detector efficiency included by
        :func:`element_lines`, not by :func:`strongest_line`).
    cross_section_cm2_g
        Production cross section of the family, weighted over the beam energies.
    """

    element: str
    label: str
    energy_keV: float
    relative_intensity: float
    cross_section_cm2_g: float = 0.0


def parse_elements(elements: Sequence[str] | str, light: bool = False) -> list[str]:
    """Element symbols from ``"fe, NI; cr Au"`` or a list, in their usual case.

    ``light`` admits H-F too (a matrix that absorbs and scatters but shows no line).

    Raises
    ------
    SimulationError
        For an empty list, an unknown symbol, an element outside Na-U (H-U with
        ``light``), or a symbol listed twice.
    """
    if isinstance(elements, str):
        elements = [item for item in re.split(r"[\s,;]+", elements.strip()) if item]
    symbols, _ = xd.parse_elements([str(e).strip() for e in elements if str(e).strip()],
                                   light=light)
    return list(symbols)


def line_family(siegbahn: str) -> str | None:
    """The family (:data:`FAMILIES`) of a Siegbahn line name: ``"La1"`` -> ``"La"``."""
    return siegbahn[:2] if siegbahn[:2] in FAMILIES else None


def _families(
    symbol: str, z: int, beam_keV: np.ndarray, weights: np.ndarray
) -> dict[str, tuple[float, float]]:
    """Family -> (beam-weighted cross section, cross-section-weighted mean energy)."""
    sums: dict[str, list[float]] = {}
    for line, cs in tb.lines_of_element(z, 0, beam_keV):
        name = line_family(line.siegbahn)
        if name is None:
            continue
        production = float(cs @ weights)
        acc = sums.setdefault(name, [0.0, 0.0])
        acc[0] += production
        acc[1] += production * line.energy_keV
    return {name: (v[0], v[1] / v[0]) for name, v in sums.items() if v[0] > 0}


def _beam(instrument: Instrument) -> tuple[np.ndarray, np.ndarray]:
    energies = np.asarray(instrument.beam.energies_keV, dtype=np.float64)
    weights = np.asarray(instrument.beam.weights, dtype=np.float64)
    return energies, weights / weights.sum()


def strongest_line(element: str, instrument: Instrument | None = None) -> Line | None:
    """The line family with the largest production cross section for the beam.

    Matrix absorption and detector efficiency are left out: they do not change
    which line of one element is strongest except in rare edge coincidences.

    Returns
    -------
    Line or None
        None when the beam lies below every absorption edge of ``element``.
    """
    inst = instrument if instrument is not None else reference_instrument()
    (symbol,), (z,) = xd.parse_elements([element])
    beam, weights = _beam(inst)
    families = _families(symbol, z, beam, weights)
    if not families:
        return None
    name, (cross_section, energy) = max(families.items(), key=lambda item: item[1][0])
    return Line(symbol, f"{symbol} {name}", energy, 1.0, cross_section)


def lowest_emitting_edge(element: str) -> tuple[str, float]:
    """The lowest absorption edge whose vacancies emit a line: ``(shell, energy_keV)``.

    Outer M shells of light elements have tabulated edges of a few eV but emit no
    line a detector sees, so only shells that emit a main family (:data:`MAIN_FAMILIES`)
    count.
    """
    (symbol,), (z,) = xd.parse_elements([element])
    emitting = {
        t.initial_shell
        for t in xd.transition_macros()
        if xd.SIEGBAHN.get(t.iupac, "")[:2] in MAIN_FAMILIES and xd.line_energy_keV(z, t.macro) > 0
    }
    edges = [
        (shell, xd.edge_energy_keV(z, shell))
        for shell in xd.EMITTING_SHELLS
        if shell in emitting and xd.edge_energy_keV(z, shell) > 0
    ]
    if not edges:
        raise SimulationError(f"{symbol}: xraylib tabulates no emitting shell")
    return min(edges, key=lambda item: item[1])


def edge_above_beam(
    element: str, line_energy_keV: float, beam_keV: float
) -> tuple[str, float] | None:
    """The first of the K, L3, M5 edges above both the beam and the line, if any.

    Explains why a family is dark: ``("K", 9.66)`` for Zn under an 8 keV beam.
    """
    (_,), (z,) = xd.parse_elements([element])
    for shell in ("K", "L3", "M5"):
        edge = xd.edge_energy_keV(z, shell)
        if edge > beam_keV and edge > line_energy_keV:
            return shell, edge
    return None


def element_lines(
    elements: Sequence[str] | str,
    instrument: Instrument | None = None,
    min_relative_intensity: float = 0.01,
) -> list[Line]:
    """Emission-line families of ``elements`` excited by the instrument's beam.

    Parameters
    ----------
    elements
        Element symbols (or a comma-separated string).
    instrument
        Set-up; None for the reference instrument.
    min_relative_intensity
        Families weaker than this (relative to the element's strongest, detector
        efficiency included) are left out.

    Returns
    -------
    list of Line
        Sorted by element (input order), then energy.

    Raises
    ------
    SimulationError
        For unknown symbols or a beam that excites none of the elements.
    """
    inst = instrument if instrument is not None else reference_instrument()
    symbols, zs = xd.parse_elements(elements)
    return list(_element_lines(tuple(symbols), tuple(zs), inst, float(min_relative_intensity)))


# the inspector asks again at every click (2 ms an element); instruments are hashable
@functools.lru_cache(maxsize=64)
def _element_lines(symbols: tuple[str, ...], zs: tuple[int, ...], inst: Instrument,
                   min_relative_intensity: float) -> tuple[Line, ...]:
    beam, weights = _beam(inst)
    tb.check_beam_excites(list(symbols), list(zs), beam)
    out: list[Line] = []
    for symbol, z in zip(symbols, zs, strict=True):
        families = _families(symbol, z, beam, weights)
        if not families:
            continue
        names = list(families)
        energies = np.array([families[n][1] for n in names])
        production = np.array([families[n][0] for n in names])
        detected = production * tb.detector_efficiency(inst, energies)
        strongest = float(detected.max())
        items = [
            Line(symbol, f"{symbol} {name}", float(e), float(d / strongest), families[name][0])
            for name, e, d in zip(names, energies, detected, strict=True)
            if strongest > 0 and d >= min_relative_intensity * strongest
        ]
        out.extend(sorted(items, key=lambda ln: ln.energy_keV))
    return tuple(out)


def unseen_elements(
    elements: Sequence[str], instrument: Instrument, low_keV: float, high_keV: float,
    min_relative_intensity: float = 1e-3,
) -> dict[str, str]:
    """Elements none of whose excited line families lies in ``low_keV``-``high_keV``,
    with why (a spectrum there cannot show them: a tube voltage or beam energy below
    their K edge, lines below the fitted range), e.g. ``{"Mo": "the tube (12 kV) is
    below its K edge (20 keV); its lines (La 2.29, Lb 2.41 keV) lie outside 3-11
    keV"}``."""
    tube = instrument.tube
    beam_max = float(tube.voltage_kV if tube is not None else max(instrument.beam.energies_keV))
    source = (f"the tube ({beam_max:g} kV)" if tube is not None
              else f"the beam ({beam_max:g} keV at most)")
    out: dict[str, str] = {}
    for element in elements:
        try:
            lines = element_lines([element], instrument, min_relative_intensity)
        except SimulationError:
            lines = []
        if any(low_keV <= line.energy_keV <= high_keV for line in lines):
            continue
        (_,), (z,) = xd.parse_elements([element])
        parts = []
        edge = xd.edge_energy_keV(z, "K")
        if edge > beam_max:
            parts.append(f"{source} is below its K edge ({edge:.3g} keV)")
        if lines:
            where = ", ".join(f"{ln.label.split()[1]} {ln.energy_keV:.3g}" for ln in lines)
            parts.append(f"its lines ({where} keV) lie outside {low_keV:g}-{high_keV:g} keV")
        else:
            parts.append("the beam excites none of its lines")
        out[element] = "; ".join(parts)
    return out
