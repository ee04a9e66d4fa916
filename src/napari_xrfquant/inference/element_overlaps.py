"""Which elements an element search found can be told from their neighbours' lines.

An element found only because the model misses the shape of a strong line
beside it is not in the sample. Two rules set such an element aside as
*uncertain*, with the reason, strongest elements first:

- its strongest line lies within one FWHM of a line of an element
  :data:`DOMINANCE` times as significant (a misfit of that line's shape
  explains as much as the element does: Co Kα beside Fe Kβ);
- every line family it shows lies within one FWHM of a line of an element
  found before it and kept (its whole evidence sits under their lines: Bi and
  Hg M under Pb M, S Kα under Pb Mβ). A kept element's lines alone count, so
  one uncertain element does not hide the next.

An element found only in a cluster's sum (``where`` other than ``"sum"``) sets
aside no element of the map's sum: its significance comes from another spectrum,
of fewer pixels and its own fit quality.

The elements kept are listed with the other kept elements their strongest line
overlaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol


class _Found(Protocol):
    """What the rules read of a found element (``element_search.FoundElement``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def line_keV(self) -> float: ...
    @property
    def significance(self) -> float: ...
    @property
    def where(self) -> str: ...


class Judgement(NamedTuple):
    """Why an element is uncertain (None: kept), and the kept elements it overlaps."""

    uncertain: str | None
    overlaps: tuple[str, ...]


#: A found element is uncertain next to a line of an element this many times as
#: significant (a misfit of that line's shape explains as much as it does).
DOMINANCE = 10.0

#: Each found element's visible line families: ``(name, energy keV)``.
Lines = dict[str, list[tuple[str, float]]]


def judge_overlaps(ordered: Sequence[_Found], lines: Lines,
                   fwhm_keV: Callable[[float], float]) -> list[Judgement]:
    """The judgement of each element of ``ordered`` (most significant first), in its
    order; ``fwhm_keV`` is the detector's FWHM at an energy."""
    reasons: list[str | None] = []
    kept: list[_Found] = []
    for element in ordered:
        reason = (_dominated(element, _may_judge(element, ordered), lines, fwhm_keV)
                  or _hidden_under(element, _may_judge(element, kept), lines, fwhm_keV))
        reasons.append(reason)
        if reason is None:
            kept.append(element)
    return [Judgement(reason, _overlapping(element, kept, fwhm_keV))
            for element, reason in zip(ordered, reasons, strict=True)]


def _may_judge(element: _Found, others: Sequence[_Found]) -> list[_Found]:
    """The ``others`` that may set ``element`` aside: for an element of the map's sum,
    those of the sum alone."""
    return [o for o in others if element.where != "sum" or o.where == "sum"]


def _overlapping(element: _Found, kept: Sequence[_Found],
                 fwhm_keV: Callable[[float], float]) -> tuple[str, ...]:
    width = fwhm_keV(element.line_keV)
    return tuple(f.symbol for f in kept
                 if f.symbol != element.symbol
                 and abs(f.line_keV - element.line_keV) < width)


def _dominated(element: _Found, ordered: Sequence[_Found], lines: Lines,
               fwhm_keV: Callable[[float], float]) -> str | None:
    width = fwhm_keV(element.line_keV)
    for other in ordered:
        if other.significance < DOMINANCE * element.significance:
            return None
        near = [name for name, energy in lines[other.symbol]
                if abs(energy - element.line_keV) < width]
        if near:
            return (f"its {element.line.split()[1]} line lies within one FWHM of "
                    f"{near[0]} (significance {other.significance:.0f})")
    return None


def _hidden_under(element: _Found, kept: Sequence[_Found], lines: Lines,
                  fwhm_keV: Callable[[float], float]) -> str | None:
    stronger = [(name, energy) for other in kept for name, energy in lines[other.symbol]]
    covering = []
    for _family, energy in lines[element.symbol]:
        width = fwhm_keV(energy)
        near = [name for name, at in stronger if abs(at - energy) < width]
        if not near:
            return None
        covering.append(near[0])
    return ("every line it shows lies within one FWHM of a stronger element's ("
            + ", ".join(dict.fromkeys(covering)) + "): the fit cannot separate it")
