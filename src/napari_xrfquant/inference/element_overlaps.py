"""Which elements an element search found can be told from their neighbours' lines.

An element found only because the model misses the shape of a strong line
beside it is not in the sample. Two rules set such an element aside as
*uncertain*, with the reason:

- its strongest line lies within one FWHM of a line of an element
  :data:`DOMINANCE` times as significant that carries :data:`DOMINANCE` times
  its photons, a faint family too (a misfit of that line, a share of its
  photons, explains as much as the element does: Co Kα beside Fe Kβ; in the
  sum of the bundled sample's several gold alloys, whose Ag L to K ratio
  follows each alloy's Au M edges, an Ar Kα phantom at 5.9 σ beside Ag Lα,
  0.5 % of Ag's photons and 11 times Ar Kα's);
- every line family it shows lies within one FWHM of a line of an element
  kept before it that carries at least as many photons there (its whole
  evidence sits under their lines: Bi and Hg M under Pb M, S Kα under Pb Mβ).
  A kept element's lines alone count, so one uncertain element does not hide
  the next. The elements of the map's sum are taken brightest first, so of two
  that share a peak the one that explains more of it stands (Pb and Bi M: their
  significances are alike, each explaining what the other leaves), and a weak
  line hides nothing brighter than itself: on the AXO film Pb Mα (2.35 keV,
  Pb's brightest line) lies 62 eV from Au Mγ, 4 % of Au's M photons and a
  fiftieth of Pb Mα's, which no misfit of its shape could make. The families
  an element shows are those of :data:`MIN_FAMILY` of its brightest's photons
  or more, on both sides: a fainter one is neither evidence nor cover (Au Lℓ,
  2 % of Au's L photons, would hide the bundled sample's real Zn Kα).

A line in the high-energy shoulder of a far brighter one (within
:data:`SHOULDER_FWHM` FWHM above a line of an element :data:`DOMINANCE` times as
significant that carries :data:`SHOULDER_BRIGHTNESS` times its photons) is the
first rule's case one step further out: there the bright peak's own shape decides
(its tail above the peak, pile-up with pulses too small to reject), and a misfit
of 1 % of it is as bright as the line. On BHVO-2G (1.2e8 counts) Ho Lα stood 2.2
FWHM above Fe Kα, 379 times as bright, at 19 sigma; on the AXO map's sum Os Mα 1.2
FWHM above Si Kα (x189) at 8 sigma. Neither sample holds them. The real lines
nearest the rule stay: P Kα 2.9 FWHM above Si Kα (x217) and Zn Kα 2.7 FWHM above
Cu Kα (x52). Only the high side: the low tail is modelled, and the same rule below
a peak would set aside the AXO map's K, 2.3 FWHM below Ca Kα (x160).

A third rule takes the set-up's own lines (the air path's Ar K, a window's
elements: in every spectrum, fitted beside the elements, each family with its
own amount): an element whose fitted amount correlates with a set-up family's
at :data:`SETUP_CORRELATION` or more negatively is uncertain, since the fit
cannot tell the two apart. On the AXO map's sum, Ag (Lα 27 eV from Ar Kα)
correlates at -0.88 with Ar Kβ and -0.80 with Ar Kα; the certified Pd, whose Lα
lies 119 eV below Ar Kα, at -0.40, and K at +0.44. A rule by distance would
not part them: Pd's L lines lie within one FWHM of Ar K's as Ag's do.

An element found only in a cluster's sum (``where`` other than ``"sum"``) sets
aside no element of the map's sum: its significance comes from another spectrum,
of fewer pixels and its own fit quality. It is judged after the sum's, and a
line of the sum hides it if that element is the more significant (photons of
two spectra do not compare).

The elements kept are listed with the other kept elements their strongest line
overlaps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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

#: The first rule reaches this many FWHM above a line that carries
#: :data:`SHOULDER_BRIGHTNESS` times the element's photons (the line's shoulder).
SHOULDER_FWHM = 2.5
#: How many times an element's photons a line carries to stand for it in its shoulder.
SHOULDER_BRIGHTNESS = 100.0

#: Each found element's visible line families: ``(name, energy keV, photons)``, the
#: photons at the found shares (comparable among the elements of one spectrum).
Lines = dict[str, list[tuple[str, float, float]]]
#: A found element whose amount correlates with a set-up line family's this
#: negatively or more in the fit is uncertain (the third rule).
SETUP_CORRELATION = 0.8
#: A line hides another within one FWHM if it carries this share of its photons.
COVERING = 1.0
#: The line families an element shows: this share of its brightest's photons or more
#: (a candidate needs one in range; an element hidden has each of these covered).
MIN_FAMILY = 0.05


def judge_overlaps(ordered: Sequence[_Found], lines: Lines,
                   fwhm_keV: Callable[[float], float],
                   with_setup: Mapping[str, tuple[str, float] | None] | None = None,
                   ) -> list[Judgement]:
    """The judgement of each element of ``ordered`` (most significant first), in its
    order; ``fwhm_keV`` is the detector's FWHM at an energy; ``with_setup``: per
    element, the set-up line family whose fitted amount correlates most negatively
    with its own in the fit that found it, and that correlation."""
    reasons: dict[str, str | None] = {}
    kept: list[_Found] = []
    for element in sorted(ordered, key=lambda f: _brightness(f, lines)):
        reason = (_beside_setup((with_setup or {}).get(element.symbol))
                  or _dominated(element, _may_judge(element, ordered), lines, fwhm_keV)
                  or _hidden_under(element, _may_judge(element, kept), lines, fwhm_keV))
        reasons[element.symbol] = reason
        if reason is None:
            kept.append(element)
    return [Judgement(reasons[element.symbol], _overlapping(element, kept, fwhm_keV))
            for element in ordered]


def _brightness(element: _Found, lines: Lines) -> tuple[int, float]:
    """The order in which elements may hide others: the map's sum's by their brightest
    line's photons (of two elements that share a peak, Pb and Bi M, the one that
    explains more of it stands; their significances are alike, each explaining what
    the other leaves), then the clusters' by significance (their photons are of other
    spectra)."""
    if element.where == "sum":
        return 0, -_brightest(lines[element.symbol])
    return 1, -element.significance


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


def _beside_setup(correlation: tuple[str, float] | None) -> str | None:
    """The third rule: an element the fit can hardly tell from a line of the set-up's
    own, which every spectrum holds."""
    if correlation is None or correlation[1] > -SETUP_CORRELATION:
        return None
    return (f"its amount and that of the set-up's own {correlation[0]} correlate at "
            f"{correlation[1]:.2f} in the fit: it cannot separate them")


def _dominated(element: _Found, ordered: Sequence[_Found], lines: Lines,
               fwhm_keV: Callable[[float], float]) -> str | None:
    width = fwhm_keV(element.line_keV)
    own = _brightest(lines[element.symbol])
    for other in ordered:
        if other.significance < DOMINANCE * element.significance:
            return None
        # a misfit of a line is a share of its photons: only a line DOMINANCE times as
        # bright as this element's can stand for it
        near = [name for name, energy, photons in lines[other.symbol]
                if abs(energy - element.line_keV) < width
                and _hides(other, photons, element, own, DOMINANCE)]
        if near:
            return (f"its {element.line.split()[1]} line lies within one FWHM of "
                    f"{near[0]} (significance {other.significance:.0f})")
        shoulder = [(name, (element.line_keV - energy) / width, photons / own)
                    for name, energy, photons in lines[other.symbol]
                    if 0.0 < element.line_keV - energy <= SHOULDER_FWHM * width
                    and _hides(other, photons, element, own, SHOULDER_BRIGHTNESS)]
        if shoulder:
            name, distance, brighter = shoulder[0]
            # photons of two spectra (a cluster's element, the sum's line) do not compare
            bright = (f", {brighter:.0f} times as bright," if other.where == element.where
                      else f" (significance {other.significance:.0f}),")
            return (f"its {element.line.split()[1]} line lies {distance:.1f} FWHM above "
                    f"{name}{bright} where that peak's own shape decides: the fit cannot "
                    "separate it")
    return None


def _hidden_under(element: _Found, kept: Sequence[_Found], lines: Lines,
                  fwhm_keV: Callable[[float], float]) -> str | None:
    covering = []
    for _family, energy, own in _shown(lines[element.symbol]):
        width = fwhm_keV(energy)
        near = [name for other in kept for name, at, photons in _shown(lines[other.symbol])
                if abs(at - energy) < width and _hides(other, photons, element, own)]
        if not near:
            return None
        covering.append(near[0])
    return ("every line it shows lies within one FWHM of a stronger element's ("
            + ", ".join(dict.fromkeys(covering)) + "): the fit cannot separate it")


def _shown(families: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The families an element shows: :data:`MIN_FAMILY` of its brightest's photons or
    more (a fainter one is neither evidence of it nor a peak to hide another under;
    the fit ties it to the bright ones)."""
    brightest = _brightest(families)
    return [f for f in families if f[2] >= MIN_FAMILY * brightest]


def _brightest(families: list[tuple[str, float, float]]) -> float:
    """The photons of an element's brightest family (0 for none)."""
    return max((photons for _name, _energy, photons in families), default=0.0)


def _hides(other: _Found, photons: float, element: _Found, own: float,
           factor: float = COVERING) -> bool:
    """Whether ``other``'s line of ``photons`` can hide ``element``'s of ``own`` photons
    beside it: in one spectrum if it is ``factor`` times as bright, across spectra (a
    cluster's element under the sum's) if ``other`` is the more significant (photons
    of two spectra do not compare)."""
    if other.where == element.where:
        return photons >= factor * own
    return other.significance > element.significance
