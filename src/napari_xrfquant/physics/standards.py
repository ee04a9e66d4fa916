"""Standards: materials of known composition, from the library, a CSV file or typed in.

The library (``standards.json`` beside this module) holds certified materials
with their sources: the BAM gold alloys ERM-EB506/507/508 (wt%), USGS BHVO-2G
basalt glass (wt%, oxygen included) and the AXO thin film measured at APS
2-ID-E (µg/cm²). A user's standard is

- a composition typed in, ``Au=75,Ag=12.5,Cu=12.5`` (wt%, summing to 100
  within 0.5 wt%);
- or a CSV file: a column ``element`` (symbols, or oxide formulas such as
  ``SiO2``, all rows the one or the other), one value column, ``wt_percent``
  or ``ug_per_cm2``, and optionally ``sigma_wt_percent`` / ``sigma_ug_per_cm2``;
  ``#`` lines are comments. Element wt% must sum to 100 within 0.5 wt%; oxides,
  as analyses are reported, within 1.5 wt% (then scaled to 100). Oxides are
  turned into elements and oxygen by stoichiometry.

A thin film (µg/cm²) is a standard of known areal densities: its composition
is that of the film (the densities' shares) and its mass their sum.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from napari_xrfquant.errors import XRFQuantError

#: A composition of elements whose sum is further than this from 100 wt% is refused.
SUM_TOLERANCE_WT_PERCENT = 0.5
#: Oxide analyses sum to 100 within this (volatiles, rounding); they are scaled to 100.
OXIDE_SUM_TOLERANCE_WT_PERCENT = 1.5
#: The value columns a standard's CSV file may have, and their units.
UNITS = {"wt_percent": "wt%", "ug_per_cm2": "µg/cm²"}


@dataclass(frozen=True)
class Standard:
    """A material of known composition.

    Attributes
    ----------
    name
        What it is called (a library key, a file name or the typed composition).
    wt_percent
        Element mass fractions (wt%, summing to 100): the material's, or for a
        thin film the film's (its areal densities' shares).
    ug_per_cm2
        A thin film's areal density of each element (µg/cm²); None for bulk.
    sigma
        1-sigma of the certified values, in the standard's unit, where known.
    source
        Where the values come from.
    """

    name: str
    wt_percent: dict[str, float]
    ug_per_cm2: dict[str, float] | None = None
    sigma: dict[str, float] = field(default_factory=dict)
    source: str = ""

    @property
    def unit(self) -> str:
        """``"wt_percent"`` or ``"ug_per_cm2"``: how the certificate states it."""
        return "wt_percent" if self.ug_per_cm2 is None else "ug_per_cm2"

    @property
    def mass_ug_cm2(self) -> float | None:
        """A thin film's total areal density (µg/cm²) of the listed elements."""
        return None if self.ug_per_cm2 is None else sum(self.ug_per_cm2.values())

    def vector(self, elements: Sequence[str]) -> list[float]:
        """The composition (wt%) in the order of ``elements`` (elements it lacks are 0).

        Raises
        ------
        XRFQuantError
            If the standard holds an element that is not in ``elements``.
        """
        unknown = [e for e, v in self.wt_percent.items() if v > 0 and e not in elements]
        if unknown:
            raise XRFQuantError(
                f"standard {self.name} holds {', '.join(unknown)}, which the model does not "
                f"quantify ({', '.join(elements)})"
            )
        return [float(self.wt_percent.get(e, 0.0)) for e in elements]


def _from_values(
    name: str, unit: str, values: Mapping[str, float], sigma: Mapping[str, float], source: str
) -> Standard:
    """A standard from element values in ``unit`` (checked: finite, >= 0, sums)."""
    if unit == "ug_per_cm2":
        total = sum(values.values())
        if not total > 0:
            raise XRFQuantError(f"standard {name}: its areal densities sum to 0 µg/cm²")
        shares = {e: 100.0 * v / total for e, v in values.items()}
        return Standard(name, shares, dict(values), dict(sigma), source)
    total = sum(values.values())
    if abs(total - 100.0) > SUM_TOLERANCE_WT_PERCENT:
        raise XRFQuantError(f"standard {name} sums to {total:g} wt%, not 100")
    return Standard(name, dict(values), None, dict(sigma), source)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise XRFQuantError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise XRFQuantError(f"{where}: {text!r} must be a non-negative number")
    return value


def _symbols(names: Sequence[str], where: str) -> list[str]:
    from napari_xrfquant.physics.lines import parse_elements

    try:
        return list(parse_elements(list(names), light=True))
    except Exception as exc:  # the element parser's one-line message, with the file
        raise XRFQuantError(f"{where}: {exc}") from None


def _as_elements(
    name: str, unit: str, rows: dict[str, float], sigma: dict[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """Oxide rows turned into elements and oxygen (values and 1-sigma, same unit)."""
    from napari_xrfquant.physics.oxides import (
        elements_from_oxides,
        is_oxide_formula,
        oxide_formula,
        oxygen_per_element,
    )

    oxide = [is_oxide_formula(k) for k in rows]
    if not any(oxide):
        symbols = _symbols(list(rows), f"standard {name}")
        return dict(zip(symbols, rows.values(), strict=True)), {
            s: sigma[k] for s, k in zip(symbols, rows, strict=True) if k in sigma}
    if not all(oxide):
        raise XRFQuantError(f"standard {name} mixes elements and oxides: give one or the other")
    for formula in rows:  # one by one: FeO beside Fe2O3 is one element twice, and allowed
        _symbols([oxide_formula(formula)[0]], f"standard {name}")
    if unit == "wt_percent":
        total = sum(rows.values())
        if abs(total - 100.0) > OXIDE_SUM_TOLERANCE_WT_PERCENT:
            raise XRFQuantError(f"standard {name}: its oxides sum to {total:g} wt%, not "
                                f"100 within {OXIDE_SUM_TOLERANCE_WT_PERCENT:g}")
        rows = {k: 100.0 * v / total for k, v in rows.items()}
    # an oxide's sigma carries over to its element by the element's share of it
    element_sigma = {oxide_formula(k)[0]: s / (1.0 + oxygen_per_element(k))
                     for k, s in sigma.items()}
    return elements_from_oxides(rows), element_sigma


def read_standard_csv(path: str | Path) -> Standard:
    """A standard from a CSV file (see the module for its columns).

    Raises
    ------
    XRFQuantError
        For a file that cannot be read, no ``element`` column, no value column or
        two, values that are not non-negative numbers, unknown symbols or
        formulas, elements mixed with oxides, an element twice, or wt% that do
        not sum to 100.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise XRFQuantError(f"{file}: cannot read the standard ({exc.strerror})") from None
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    comments = [line.lstrip("# ").strip() for line in text.splitlines()
                if line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    if "element" not in header:
        raise XRFQuantError(f"{file.name}: a standard's CSV needs an 'element' column "
                            f"(found: {', '.join(header) or 'none'})")
    units = [u for u in UNITS if u in header]
    if len(units) != 1:
        raise XRFQuantError(
            f"{file.name}: give one value column, wt_percent or ug_per_cm2 "
            f"(found: {', '.join(units) or 'none'})")
    unit = units[0]
    values: dict[str, float] = {}
    sigma: dict[str, float] = {}
    for number, row in enumerate(reader, start=2):
        key = (row.get("element") or "").strip()
        where = f"{file.name}, row {number}"
        if not key:
            raise XRFQuantError(f"{where}: no element")
        if key in values:
            raise XRFQuantError(f"{where}: {key} is listed twice")
        values[key] = _number((row.get(unit) or "").strip(), where)
        spread = (row.get(f"sigma_{unit}") or "").strip()
        if spread:
            sigma[key] = _number(spread, where)
    if not values:
        raise XRFQuantError(f"{file.name}: the standard lists no element")
    name = file.stem
    elements, element_sigma = _as_elements(name, unit, values, sigma)
    return _from_values(name, unit, elements, element_sigma, " ".join(comments))


@functools.lru_cache(maxsize=1)
def library() -> dict[str, Standard]:
    """The standards shipped with the package, by short name (``"ERM-EB506"``)."""
    text = resources.files("napari_xrfquant.physics").joinpath("standards.json")
    data = json.loads(text.read_text(encoding="utf-8"))
    out = {}
    for key, entry in data["standards"].items():
        unit = "ug_per_cm2" if "ug_per_cm2" in entry else "wt_percent"
        values = {k: float(v) for k, v in entry[unit].items()}
        sigma = {k: float(v) for k, v in entry.get("sigma", {}).items()}
        out[key] = _from_values(str(entry["name"]), unit, values, sigma,
                                str(entry.get("source", "")))
    return out


def parse_standard(text: str) -> Standard:
    """A standard from a library name, a CSV file or ``"Au=75,Ag=12.5,Cu=12.5"``.

    Raises
    ------
    XRFQuantError
        For an unknown name, an unreadable composition or file (see
        :func:`read_standard_csv`), unknown element symbols, negative values,
        or a sum further than 0.5 wt% from 100.
    """
    entry = text.strip()
    if entry.lower().endswith(".csv"):
        return read_standard_csv(entry)
    if "=" not in entry:
        known = library()
        match = next((s for key, s in known.items() if key.lower() == entry.lower()), None)
        if match is None:
            raise XRFQuantError(
                f"unknown standard {entry!r} (library: {', '.join(known)}; a CSV file; or "
                "a composition such as Au=75,Ag=12.5,Cu=12.5)"
            )
        return match
    values: dict[str, float] = {}
    for part in re.split(r"[,;\s]+", entry):
        if not part:
            continue
        symbol, _, number = part.partition("=")
        values[symbol.strip()] = _number(number, f"standard {entry!r}, {part!r} (ELEMENT=wt%)")
    symbols = _symbols(list(values), f"standard {entry!r}")
    return _from_values(entry, "wt_percent", dict(zip(symbols, values.values(), strict=True)),
                        {}, "")
