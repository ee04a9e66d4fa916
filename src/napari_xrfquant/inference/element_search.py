"""Which elements a spectrum shows: a likelihood-ratio search over Na-U with the simulator.

Every candidate element whose lines the beam excites inside the fitted range
is fitted at once with :class:`~.physics_fit.PhysicsQuantifier`'s model
(non-negative Poisson ML amounts of each element's simulated line spectrum,
escape peaks and tails included, beside free Rayleigh, Compton, continuum,
pile-up and set-up-line components, each of the set-up's line families apart:
a sum spectrum of 1e6-1e8 counts shows a ratio a few % off as a line), so
overlapping lines (Pb L / As K, Ti K / Ba L, a sum peak on a line) share their
counts as the fit decides. Elements
are then removed one at a time, the least significant first (backward
elimination on the Wald statistic, the overlaps taken into account through
the amounts' covariance), until every one left is significant. The reported
significance of each element found is the likelihood ratio of the model
without it against the model with it,

    z = sqrt(max(D_without - D_with, 0) / phi),

with the deviance ``D`` re-fitted without the element and ``phi`` the final
model's fit quality where it exceeds 1 (quasi-likelihood: a spectrum of
10^8 counts that the physics explains to 1 % has residuals no element should
be found in).

A map is searched in its sum spectrum and in the sums of its pixel clusters
(k-means on the normalised spectra), so an element present in a few pixels
only stands out of its cluster's sum where the whole map's would hide it. An
element only a cluster shows sets aside no element of the sum in the overlap
rules (:mod:`.element_overlaps`): its significance comes from fewer pixels with
their own fit quality (on the AXO map an S Ka of one cluster set aside the
sum's Pd, Mo and Pb). The sum's elements the rules keep are searched again
without those they set aside (:func:`_confirmed`): what falls under the
threshold then is uncertain too.

Ar found is uncertain (:data:`AIR_ARGON`): a sample seldom holds it, and a set-up
whose path holds air fits its lines as the set-up's own.

Left out of the candidates, with the reason kept: the short-lived radioactive
elements and the noble gases other than Ar (no sample holds them in amounts
that show), the set-up's own line elements (their component fits them) and a
tube's anode (its lines in a spectrum are scattered beam).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.element_elimination import eliminate, setup_correlation
from napari_xrfquant.inference.element_overlaps import MIN_FAMILY, Lines, judge_overlaps
from napari_xrfquant.inference.fit_window import fit_channel_mask
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.inference.pixel_groups import (
    Groups,
    groups_in_memory,
    iter_groups_in_cube,
)
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.jobs import Progress, drive

#: Significance (sigma, quasi-likelihood scaled) above which an element is found.
DEFAULT_THRESHOLD = 5.0
#: Elements never proposed: no long-lived isotope, or a noble gas (Ar of air is kept).
NOT_CANDIDATES = frozenset({"Tc", "Pm", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Pa", "Ne",
                            "Kr", "Xe"})
#: Why Ar found is uncertain: a set-up whose path holds argon fits it as its own line
#: (never a candidate then), so Ar found comes from air the set-up does not name.
AIR_ARGON = ("most likely argon of air in the beam path (a helium flush that leaks): name it "
             "in the set-up, [setup_lines] elements = [\"Ar\"] or the path's air_fraction")


@dataclass(frozen=True)
class FoundElement:
    """One element a spectrum shows.

    Attributes
    ----------
    symbol
        e.g. ``"Fe"``.
    line
        Its strongest line family in the fitted range, e.g. ``"Fe Ka"``.
    line_keV
        That family's mean energy.
    significance
        Likelihood-ratio significance in sigma (see the module).
    wt_percent
        Approximate mass share among the elements found (wt% of a bulk sample
        of only these elements; for a thin film, its share of the film's mass).
    where
        ``"sum"`` or the cluster it was found in (``"cluster 2 (31 pixels)"``).
    overlaps
        Elements found whose strongest line lies within one FWHM of this one's.
    uncertain
        Why it may not be there (None: found): a line of a much more significant
        element beside its strongest line or just below it (in its shoulder), or
        every line it shows under a stronger element's, whose shape the model may
        miss by as much as this element explains, or its amount tied to a set-up
        line's in the fit (:mod:`.element_overlaps`); under the threshold once the
        elements set aside are left out of the sum's fit; for Ar, air in the path
        (:data:`AIR_ARGON`).
    """

    symbol: str
    line: str
    line_keV: float
    significance: float
    wt_percent: float
    where: str = "sum"
    overlaps: tuple[str, ...] = ()
    uncertain: str | None = None


@dataclass
class ElementSearch:
    """What :func:`find_elements` found, and what it left out and why."""

    found: list[FoundElement]
    fit_quality: float
    candidates: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    setup_elements: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: The set-up the final fits used: the detector refined on the sum spectrum
    #: where the search refined it (what a fit of the elements found should use).
    instrument: Instrument | None = None

    @property
    def symbols(self) -> list[str]:
        """The elements found (not the uncertain ones), strongest first."""
        return [f.symbol for f in self.found if f.uncertain is None]

    def to_dict(self) -> dict[str, object]:
        """The JSON form: ``{"elements": [{"symbol", "line", "significance",
        "wt_percent", ...}], "uncertain": [... "reason"], ...}``."""
        def entry(f: FoundElement) -> dict[str, object]:
            out: dict[str, object] = {
                "symbol": f.symbol, "line": f.line, "line_keV": round(f.line_keV, 4),
                "significance": round(f.significance, 2), "wt_percent": round(f.wt_percent, 4),
                "where": f.where, "overlaps": list(f.overlaps)}
            if f.uncertain is not None:
                out["reason"] = f.uncertain
            return out

        return {
            "elements": [entry(f) for f in self.found if f.uncertain is None],
            "uncertain": [entry(f) for f in self.found if f.uncertain is not None],
            "fit_quality": round(self.fit_quality, 3),
            "setup_elements": list(self.setup_elements),
            "excluded": dict(self.excluded),
            "candidates": list(self.candidates),
        }


def candidate_elements(
    instrument: Instrument, fit_keV: tuple[float, float]
) -> tuple[list[str], dict[str, str]]:
    """Elements Na-U with an excited line family in ``fit_keV``, and those left out
    with the reason (see the module)."""
    from napari_xrfquant.errors import SimulationError
    from napari_xrfquant.physics import _xraydata as xd
    from napari_xrfquant.physics.lines import element_lines

    low, high = fit_keV
    excluded: dict[str, str] = {}
    setup = set(instrument.setup_lines.elements) if instrument.setup_lines is not None else set()
    anode = instrument.tube.anode if instrument.tube is not None else None
    out = []
    for z in range(xd.Z_MIN, xd.Z_MAX + 1):
        symbol = xd.z_to_symbol(z)
        if symbol in NOT_CANDIDATES:
            continue
        if symbol in setup:
            excluded[symbol] = "the set-up's own lines (fitted as their component)"
            continue
        if symbol == anode:
            excluded[symbol] = "the tube's anode (its lines are scattered beam)"
            continue
        try:
            lines = element_lines([symbol], instrument, MIN_FAMILY)
        except SimulationError:  # the beam excites none of its lines
            continue
        if any(low <= line.energy_keV <= high for line in lines):
            out.append(symbol)
    return out, excluded


def find_elements(spectra: np.ndarray, instrument: Instrument, **options: Any) -> ElementSearch:
    """:func:`iter_find_elements` run to its end (the same arguments)."""
    return drive(iter_find_elements(spectra, instrument, **options))


def iter_find_elements(
    spectra: np.ndarray,
    instrument: Instrument,
    *,
    fit_keV: tuple[float, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    candidates: Sequence[str] | None = None,
    clusters: int | None = None,
    refine: bool = True,
) -> Generator[Progress, None, ElementSearch]:
    """The elements that ``spectra`` ``(N, C)`` (on the instrument's channels) show,
    yielding :class:`~napari_xrfquant.jobs.Progress` between the searches
    (stage ``"set-up"``, then ``"search"``: the sum, the refinement, each
    cluster), where a worker may cancel.

    Parameters
    ----------
    spectra
        A map's pixel spectra (or one spectrum, ``(1, C)``).
    instrument
        The set-up (its beam decides what is excited).
    fit_keV
        Energy range searched (default: :func:`search_range`).
    threshold
        Significance in sigma an element needs.
    candidates
        Elements to test (default: :func:`candidate_elements`).
    clusters
        Pixel clusters to search beside the sum (default: up to
        :data:`~.pixel_groups.MAX_CLUSTERS`, fewer for small maps; 0 for the sum only).
    refine
        Search twice: the detector (calibration, resolution, tails) is refined
        on the sum spectrum with the elements of the first search
        (:func:`~.physics_setup.refine_detector`) before the second.

    Raises
    ------
    XRFQuantError
        For spectra on other channels, no counts, or no candidate in range.
    """
    started = time.perf_counter()
    x = np.nan_to_num(np.asarray(spectra, dtype=np.float64), nan=0.0)
    if x.ndim != 2 or x.shape[1] != instrument.detector.n_channels:
        raise XRFQuantError(f"spectra have shape {x.shape}; the instrument has "
                            f"{instrument.detector.n_channels} channels")
    window = fit_keV if fit_keV is not None else search_range(instrument)
    _check_threshold(threshold)
    groups = groups_in_memory(x, fit_channel_mask(instrument, window), clusters)
    return (yield from _search_groups(groups, instrument, window, threshold, candidates,
                                      refine, started))


def iter_find_elements_in_cube(
    counts: ArrayLike,
    energy_keV: np.ndarray,
    instrument: Instrument | None = None,
    *,
    fit_keV: tuple[float, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    candidates: Sequence[str] | None = None,
    clusters: int | None = None,
    refine: bool = True,
) -> Generator[Progress, None, ElementSearch]:
    """:func:`iter_find_elements` of a cube ``(H, W, C)`` (a lazy one too) on its
    ``energy_keV`` axis, read a slab of rows at a time onto ``instrument``'s
    channels (without one: the reference set-up read on the cube's own axis), so
    that it is never held whole (stage ``"read"``, then as there).

    Raises
    ------
    XRFQuantError
        For what is not a cube, no counts, or no candidate in range.
    """
    from napari_xrfquant.io.detectors import assumed_instrument

    started = time.perf_counter()
    shape = tuple(int(n) for n in np.shape(counts))
    if len(shape) != 3:
        raise XRFQuantError(f"counts of shape {shape}: give a cube (H, W, C)")
    energy = np.asarray(energy_keV, dtype=np.float64)
    if instrument is None:
        instrument = assumed_instrument(energy, {})
    window = fit_keV if fit_keV is not None else search_range(instrument)
    _check_threshold(threshold)
    groups = yield from iter_groups_in_cube(counts, energy, instrument.energy_axis_keV(),
                                            fit_channel_mask(instrument, window), clusters)
    return (yield from _search_groups(groups, instrument, window, threshold, candidates,
                                      refine, started))


def _check_threshold(threshold: float) -> None:
    """A significance threshold is a positive number of sigma."""
    if not (math.isfinite(threshold) and threshold > 0.0):
        raise XRFQuantError(f"threshold {threshold:g}: give a significance in sigma above 0 "
                            f"(default {DEFAULT_THRESHOLD:g})")


def _search_groups(
    groups: Groups, instrument: Instrument, window: tuple[float, float], threshold: float,
    candidates: Sequence[str] | None, refine: bool, started: float,
) -> Generator[Progress, None, ElementSearch]:
    """The search of a map's sum and clusters' sums (``groups``, the sum first)."""
    summed = groups[0][1]
    if summed.sum() <= 0:
        raise XRFQuantError("the spectra hold no counts")
    excluded: dict[str, str] = {}
    if candidates is None:
        candidates, excluded = candidate_elements(instrument, window)
    if not candidates:
        raise XRFQuantError(f"the beam excites no line of Na-U in {window[0]:g}-"
                            f"{window[1]:g} keV")
    yield Progress(0, 1, "set-up")
    quantifier = PhysicsQuantifier(list(candidates), instrument, fit_keV=window,
                                   secondary=False, setup_families=True).with_pile_up(summed)
    steps = len(groups) + (2 if refine else 0)
    if refine:
        yield Progress(0, steps, "search")
        first = [quantifier.elements[e] for e in eliminate(quantifier, summed, threshold)[0]]
        yield Progress(1, steps, "search")
        if first:
            instrument = _refined(first, instrument, window, summed)
            quantifier = quantifier.with_instrument(instrument)
    found: dict[str, FoundElement] = {}
    lines: Lines = {}  # each found element's visible lines
    with_setup: dict[str, tuple[str, float] | None] = {}
    quality = math.nan
    for k, (where, spectrum) in enumerate(groups):
        yield Progress(steps - len(groups) + k, steps, "search")
        kept, shares, significance, group_quality, covariance = eliminate(
            quantifier, spectrum, threshold)
        if where == "sum":
            quality = group_quality
        families = quantifier.family_counts(shares)
        for e in kept:
            symbol = quantifier.elements[e]
            if symbol in found:
                continue
            # its families in the range (all of them, should rounding leave none there)
            visible = ({f: v for f, v in families[e].items() if _inside(v[1], window)}
                       or families[e])
            name, (_photons, energy) = max(visible.items(), key=lambda item: item[1][0])
            # every family in range, the faint too: a faint line of a bright element may
            # be what a phantom stands for (Ag La, 0.5 % of Ag's photons in gold, for Ar)
            lines[symbol] = [(f"{symbol} {f}", v[1], v[0]) for f, v in visible.items()]
            found[symbol] = FoundElement(symbol, f"{symbol} {name}", energy,
                                         float(significance[e]), 100.0 * float(shares[e]),
                                         where)
            with_setup[symbol] = setup_correlation(quantifier, kept, covariance, e)
    ordered = sorted(found.values(), key=lambda f: -f.significance)
    judged = judge_overlaps(ordered, lines, lambda e: float(instrument.fwhm_keV(e)),
                            with_setup)
    confirmed = _confirmed([replace(f, uncertain=j.uncertain, overlaps=j.overlaps)
                            for f, j in zip(ordered, judged, strict=True)],
                           quantifier, summed, threshold)
    # Ar's lines are in the spectrum, so its component stays in the fit above; it is
    # set aside as the sample's only now
    result = [replace(f, uncertain=AIR_ARGON) if f.symbol == "Ar" and f.uncertain is None
              else f for f in confirmed]
    setup = list(instrument.setup_lines.elements) if instrument.setup_lines is not None else []
    yield Progress(steps, steps, "search")
    return ElementSearch(result, quality, list(candidates), excluded, setup,
                         time.perf_counter() - started, instrument)


def _confirmed(found: list[FoundElement], quantifier: PhysicsQuantifier,
               summed: np.ndarray, threshold: float) -> list[FoundElement]:
    """``found`` with the map's sum searched again from its kept elements alone.

    The elements set aside as uncertain are not used, so an element of the sum is
    found only if it still reaches the threshold in a fit without them: their
    components had lowered the fit quality by which every significance is divided,
    and taken counts that a phantom's lines then shared (the AXO map's Rh at 8.5
    sigma beside the set-aside Ag and Bi; 0 once they are gone).
    """
    kept = [f for f in found if f.where == "sum" and f.uncertain is None]
    if len(kept) == sum(f.where == "sum" for f in found):
        return found  # nothing of the sum set aside: the same fit again
    index = {symbol: e for e, symbol in enumerate(quantifier.elements)}
    matrix = np.full(len(index), 1e-12)
    for f in kept:
        matrix[index[f.symbol]] = max(f.wt_percent / 100.0, 1e-12)
    active = eliminate(quantifier, summed, threshold, [index[f.symbol] for f in kept],
                       matrix)[0]
    reason = (f"under {threshold:g} sigma once the elements set aside are left out of "
              "the sum's fit")
    return [replace(f, uncertain=reason) if f in kept and index[f.symbol] not in active
            else f for f in found]


def on_cube_axis(
    counts: ArrayLike, energy_keV: np.ndarray, instrument: Instrument | None = None
) -> tuple[np.ndarray, Instrument]:
    """A cube's spectra ``(N, C)`` and the set-up to search or fit them with: its
    counts resampled onto ``instrument``'s channels (the one resampler), or, without
    an instrument, the reference set-up read on the cube's own energy axis."""
    from napari_xrfquant.io.detectors import assumed_instrument
    from napari_xrfquant.io.grid import resample_counts, same_grid

    data = np.asarray(counts, dtype=np.float64)
    energy = np.asarray(energy_keV, dtype=np.float64)
    if instrument is None:
        instrument = assumed_instrument(energy, {})
    target = instrument.energy_axis_keV()
    if not same_grid(energy, target):
        data = resample_counts(data, energy, target)
    return data.reshape(-1, data.shape[-1]), instrument


def search_range(instrument: Instrument) -> tuple[float, float]:
    """The energies searched by default: 1 keV up to 1 keV above the beam, or, under
    a monochromatic beam, up to three FWHM below its Compton peak (whose shape the
    simulator's free scatter amounts do not adapt; lines under it are not searched)."""
    high = instrument.max_beam_energy_keV + 1.0
    if len(instrument.beam.energies_keV) == 1:
        beam = instrument.max_beam_energy_keV
        angle = math.radians(instrument.geometry.scattering_deg)
        compton = beam / (1.0 + beam / 511.0 * (1.0 - math.cos(angle)))
        high = compton - 3.0 * float(instrument.fwhm_keV(compton))
    return 1.0, high


def _refined(
    elements: list[str], instrument: Instrument, window: tuple[float, float],
    summed: np.ndarray,
) -> Instrument:
    """The instrument with its detector refined on ``summed`` with ``elements``."""
    from napari_xrfquant.inference.physics_setup import refine_detector

    first = PhysicsQuantifier(elements, instrument, fit_keV=window, secondary=False,
                              setup_families=True).with_pile_up(summed)
    return refine_detector(first, summed)[0]


def _inside(energy: float, window: tuple[float, float]) -> bool:
    return window[0] <= energy <= window[1]
