"""Oxides: element mass fractions and the oxides (and oxygen) they stand for.

Rocks and glasses are reported as oxides, and their oxygen (about 44 wt% of a
basalt) emits nothing a detector sees: it is counted by stoichiometry, each
element with the oxide it is conventionally reported as (:data:`OXIDES`; Fe
as FeO, the geochemists' "total iron as FeO"; any other formula may be given).
Atomic weights are xraylib's.

Examples
--------
>>> round(oxide_wt_percent({"Si": 46.74})["SiO2"], 1)
100.0
>>> round(oxygen_wt_percent({"Si": 46.74}), 2)
53.26
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from napari_xrfquant.errors import SimulationError
from napari_xrfquant.physics._xraylib import xrl

#: The oxide each element is reported as, by convention (geochemistry).
OXIDES = {
    "Na": "Na2O", "Mg": "MgO", "Al": "Al2O3", "Si": "SiO2", "P": "P2O5", "S": "SO3",
    "K": "K2O", "Ca": "CaO", "Sc": "Sc2O3", "Ti": "TiO2", "V": "V2O3", "Cr": "Cr2O3",
    "Mn": "MnO", "Fe": "FeO", "Co": "CoO", "Ni": "NiO", "Cu": "CuO", "Zn": "ZnO",
    "Ga": "Ga2O3", "Rb": "Rb2O", "Sr": "SrO", "Y": "Y2O3", "Zr": "ZrO2", "Nb": "Nb2O5",
    "Ba": "BaO", "La": "La2O3", "Ce": "CeO2", "Nd": "Nd2O3", "Pb": "PbO", "Th": "ThO2",
    "U": "UO2",
}

#: Elements the simulator takes as matrix only: they absorb and scatter, and their
#: lines (below 0.7 keV) are out of every detector's reach here.
LIGHT_ELEMENTS = frozenset({"H", "He", "Li", "Be", "B", "C", "N", "O", "F"})


def elements_with_lines(elements: Sequence[str]) -> list[str]:
    """``elements`` without the light ones (H-F: a matrix, such as a rock's oxygen,
    that absorbs and scatters but shows no line to fit), in their order."""
    return [e for e in elements if e not in LIGHT_ELEMENTS]

_FORMULA = re.compile(r"^(?P<element>[A-Z][a-z]?)(?P<n>\d*)O(?P<m>\d*)$")


@functools.lru_cache(maxsize=256)
def oxide_formula(formula: str) -> tuple[str, int, int]:
    """``"Al2O3"`` -> ``("Al", 2, 3)``: the element and the atoms of it and of oxygen.

    Raises
    ------
    SimulationError
        For a formula that is not one element and oxygen.
    """
    match = _FORMULA.match(formula.strip())
    if match is None:
        raise SimulationError(f"{formula!r} is no oxide formula (one element and O: 'Al2O3')")
    return match["element"], int(match["n"] or 1), int(match["m"] or 1)


def is_oxide_formula(text: str) -> bool:
    """Whether ``text`` reads as one element and oxygen (``"SiO2"``, not ``"Si"`` or ``"O"``)."""
    return _FORMULA.match(text.strip()) is not None


def _weight(symbol: str) -> float:
    from napari_xrfquant.physics._xraydata import symbol_to_z

    return float(xrl().AtomicWeight(symbol_to_z(symbol, light=True)))


def oxygen_per_element(formula: str) -> float:
    """Mass of oxygen per unit mass of the element in ``formula`` (SiO2: 1.139)."""
    element, n, m = oxide_formula(formula)
    return m * _weight("O") / (n * _weight(element))


def _formulas(elements: Mapping[str, float], oxides: Mapping[str, str] | None) -> dict[str, str]:
    chosen = {**OXIDES, **dict(oxides or {})}
    missing = [e for e in elements if e != "O" and e not in chosen]
    if missing:
        raise SimulationError(f"no oxide formula for {', '.join(missing)}: give one "
                              "(oxides={'X': 'XO2'})")
    for element in elements:
        if element != "O" and oxide_formula(chosen[element])[0] != element:
            raise SimulationError(f"{chosen[element]} is not an oxide of {element}")
    return chosen


def oxygen_wt_percent(
    elements_wt: Mapping[str, float], oxides: Mapping[str, str] | None = None
) -> float:
    """Oxygen (wt%) the elements carry as their oxides."""
    chosen = _formulas(elements_wt, oxides)
    return sum(w * oxygen_per_element(chosen[e]) for e, w in elements_wt.items() if e != "O")


def oxide_wt_percent(
    elements_wt: Mapping[str, float], oxides: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Each element's oxide (wt%): element plus the oxygen it carries.

    Parameters
    ----------
    elements_wt
        Element mass fractions in wt% (oxygen, if listed, is left out: it is
        what the oxides hold).
    oxides
        Formulas other than :data:`OXIDES`, by element (``{"Fe": "Fe2O3"}``).
    """
    chosen = _formulas(elements_wt, oxides)
    return {chosen[e]: w * (1.0 + oxygen_per_element(chosen[e]))
            for e, w in elements_wt.items() if e != "O"}


def elements_from_oxides(oxides_wt: Mapping[str, float]) -> dict[str, float]:
    """Element mass fractions (wt%, oxygen included) of oxides given in wt%.

    The oxides' own sum is kept: oxides summing to 100 give elements (with O)
    summing to 100.
    """
    out: dict[str, float] = {}
    for formula, w in oxides_wt.items():
        element, _, _ = oxide_formula(formula)
        share = 1.0 / (1.0 + oxygen_per_element(formula))
        out[element] = out.get(element, 0.0) + w * share
        out["O"] = out.get("O", 0.0) + w * (1.0 - share)
    return out
