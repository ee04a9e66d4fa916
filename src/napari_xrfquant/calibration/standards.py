"""Standards: materials of known composition, from the library or typed by the user.

The library (``standards.json`` beside this module) holds the certified BAM gold
reference materials ERM-EB506/507/508. A user standard is written
``Au=75,Ag=12.5,Cu=12.5`` (wt%, summing to 100 within 0.5 wt%).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from napari_xrfquant.errors import XRFQuantError

#: A composition whose sum is further than this from 100 wt% is refused.
SUM_TOLERANCE_WT_PERCENT = 0.5


@dataclass(frozen=True)
class Standard:
    """A material of known composition (wt%)."""

    name: str
    wt_percent: dict[str, float]

    def vector(self, elements: Sequence[str]) -> list[float]:
        """The composition in the order of ``elements`` (elements it lacks are 0).

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


@functools.lru_cache(maxsize=1)
def library() -> dict[str, Standard]:
    """The standards shipped with the package, by short name (``"ERM-EB506"``)."""
    text = resources.files("napari_xrfquant.calibration").joinpath("standards.json")
    data = json.loads(text.read_text(encoding="utf-8"))
    return {
        key: Standard(str(entry["name"]), {k: float(v) for k, v in entry["wt_percent"].items()})
        for key, entry in data["standards"].items()
    }


def parse_standard(text: str) -> Standard:
    """A standard from a library name or ``"Au=75,Ag=12.5,Cu=12.5"``.

    Raises
    ------
    XRFQuantError
        For an unknown name, an unreadable composition, unknown element symbols,
        negative values, or a sum further than 0.5 wt% from 100.
    """
    from napari_xrfquant.physics.lines import parse_elements

    entry = text.strip()
    if "=" not in entry:
        known = library()
        match = next((s for key, s in known.items() if key.lower() == entry.lower()), None)
        if match is None:
            raise XRFQuantError(
                f"unknown standard {entry!r} (library: {', '.join(known)}; or give "
                "a composition such as Au=75,Ag=12.5,Cu=12.5)"
            )
        return match
    values: dict[str, float] = {}
    for part in re.split(r"[,;\s]+", entry):
        if not part:
            continue
        symbol, _, number = part.partition("=")
        try:
            value = float(number)
        except ValueError:
            raise XRFQuantError(f"standard {entry!r}: {part!r} is not ELEMENT=wt%") from None
        if not math.isfinite(value) or value < 0:
            raise XRFQuantError(f"standard {entry!r}: {symbol} must be a non-negative wt%")
        values[symbol.strip()] = value
    symbols = parse_elements(list(values))
    values = dict(zip(symbols, values.values(), strict=True))
    total = sum(values.values())
    if abs(total - 100.0) > SUM_TOLERANCE_WT_PERCENT:
        raise XRFQuantError(f"standard {entry!r} sums to {total:g} wt%, not 100")
    return Standard(entry, values)
