"""The energy calibration checked against the lines a spectrum shows.

A stored calibration can be off: on the AXO map of APS 2-ID-E the MCA records
put Fe Kα 75-160 eV below 6.404 keV, by a different amount in each detector
element. The peaks themselves are the reference. This module finds them and
asks which linear calibration puts them on tabulated lines:

1. :func:`~napari_xrfquant.io.peaks.find_peaks` finds the prominent peaks of
   a spectrum (:mod:`.peaks`);
2. :func:`line_library` lists the lines a spectrum can show: Kα (Kα1 and Kα2),
   Kβ (Kβ1, Kβ3), Lα (Lα1, Lα2) and Lβ (Lβ1, Lβ2) of Na-U from xraylib, each
   family at the mean of its lines weighted by their radiative rates, only
   those whose edge the beam can excite when the beam energy is known, and
   then the elastic peak at the beam energy;
3. :func:`~napari_xrfquant.io.peaks.elastic_channel` fits the elastic peak
   beside the Compton peak it blends with, when the beam energy is known;
4. :func:`fit_lines` searches offset (±0.4 keV) and gain (±5 %) around the
   stored calibration for the one that puts the most peak weight within a
   few tens of eV of a line, then refines it by least squares on the matched
   peaks. Compton peaks (within 15 % below the beam energy) are left out.

The search needs several peaks to be trusted: a fit that matches fewer than
:data:`MIN_MATCHED` peaks is reported as not refined, and the stored
calibration is kept, except that the elastic peak alone (a line known
without naming any element) corrects the gain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_xrfquant.io.peaks import SCATTER_FRACTION, elastic_channel, find_peaks

#: Elements whose lines are matched: Na to U, as the simulator's.
LINE_ELEMENTS = range(11, 93)
#: Peaks a refined calibration must put on lines before it is believed.
MIN_MATCHED = 4
#: A stored calibration whose lines sit further off than this is reported (eV).
MISPLACED_EV = 25.0
#: Width of the match between a peak and a line in the search (keV).
MATCH_WIDTH_KEV = 0.012
#: A peak further than this from every line is not matched (keV).
MATCH_LIMIT_KEV = 0.030
#: The search range around the stored calibration.
OFFSET_RANGE_KEV = 0.4
GAIN_RANGE = 0.05
#: How far a stored calibration is expected to misplace lines, at most (keV, the width
#: of the prior that decides between calibrations matching equally many peaks).
STORED_PRIOR_KEV = 0.2
#: Distinct optima of the grid tried before the one whose matches stand best is kept.
CANDIDATES = 8
#: A peak this close below the beam energy (or above) is the elastic peak (keV).
ELASTIC_WINDOW_KEV = 0.12

#: Each family: its label, the lines a detector cannot resolve (their mean, weighted
#: by the radiative rates, is the peak's centre: Kα1 and Kα2 of Ag lie 173 eV
#: apart), and the shell the beam must ionise.
_FAMILIES = (
    ("Ka", ("KL3", "KL2"), "K"),
    ("Kb", ("KM3", "KM2"), "K"),
    ("La", ("L3M5", "L3M4"), "L3"),
    ("Lb", ("L2M4", "L3N5"), "L2"),
)


@dataclass(frozen=True)
class LineFit:
    """A calibration fitted to the lines of a spectrum.

    Attributes
    ----------
    calibration_keV
        ``(offset, gain, quadratic)`` that puts the peaks on their lines (the
        quadratic term is the stored one, kept).
    matched
        ``(label, line energy keV, peak channel)`` of each matched peak.
    refined
        Whether enough peaks matched (:data:`MIN_MATCHED`) to trust it.
    """

    calibration_keV: tuple[float, float, float]
    matched: tuple[tuple[str, float, float], ...]
    refined: bool

    def misplacement_eV(
        self, calibration_keV: tuple[float, float, float]
    ) -> list[tuple[str, float]]:
        """``(label, eV)``: how far ``calibration_keV`` puts each matched line from its energy."""
        offset, gain, quadratic = calibration_keV
        return [
            (label, 1000.0 * (offset + gain * ch + quadratic * ch * ch - energy))
            for label, energy, ch in self.matched
        ]


#: The families a spectrum shows first: a Kβ or Lβ peak is only believed beside
#: the same element's Kα or Lα.
PRIMARY = ("Ka", "La", "elastic")


@functools.lru_cache(maxsize=32)
def line_library(
    beam_keV: float | None = None, primary: bool = False
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Energies (keV, sorted) and labels of the lines a spectrum can show.

    Parameters
    ----------
    beam_keV
        The excitation energy: lines whose edge lies above it are left out.
        None keeps every line.
    primary
        Only the Kα and Lα families (and the elastic peak): the search for a
        calibration matches these, since with the β lines too a line lies
        within a few tens of eV of almost any energy.
    """
    import xraylib  # the readers sit below the physics package: xraylib directly

    found: dict[float, str] = {}
    for z in LINE_ELEMENTS:
        for family, macros, shell in _FAMILIES:
            energy = _family_energy(z, macros, xraylib)
            if energy < 0.9:  # below what detectors see through their window
                continue
            edge = _safe(xraylib.EdgeEnergy, z, getattr(xraylib, f"{shell}_SHELL"))
            if beam_keV is not None and edge >= beam_keV:
                continue
            if primary and family not in PRIMARY:
                continue
            found.setdefault(round(energy, 5), f"{xraylib.AtomicNumberToSymbol(z)} {family}")
    if beam_keV is not None:
        found[round(float(beam_keV), 5)] = "elastic"
    energies = np.array(sorted(found), dtype=np.float64)
    return energies, tuple(found[e] for e in sorted(found))


def _safe(function: Any, *args: Any) -> float:
    """xraylib's value, or 0 where it has none (it raises ValueError there)."""
    try:
        return float(function(*args))
    except ValueError:
        return 0.0


def _family_energy(z: int, macros: tuple[str, ...], xraylib: Any) -> float:
    """The radiative-rate weighted mean energy of ``macros`` of element ``z`` (keV), or 0."""
    energies, rates = [], []
    for macro in macros:
        code = getattr(xraylib, f"{macro}_LINE")
        energy = _safe(xraylib.LineEnergy, z, code)
        rate = _safe(xraylib.RadRate, z, code)
        if energy > 0 and rate > 0:
            energies.append(energy)
            rates.append(rate)
    if not energies:
        return 0.0
    return float(np.average(energies, weights=rates))


def _nearest(energies: np.ndarray, library: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest library line to each energy, and the distance (keV)."""
    right = np.clip(np.searchsorted(library, energies), 1, library.size - 1)
    left = right - 1
    take_left = np.abs(energies - library[left]) <= np.abs(energies - library[right])
    index = np.where(take_left, left, right)
    return index, np.abs(energies - library[index])


def _grid_search(
    channels: np.ndarray,
    weights: np.ndarray,
    library: np.ndarray,
    offset: float,
    gain: float,
    bend: np.ndarray,
    offset_range: float,
    width: float,
    candidates: int = 1,
) -> list[tuple[float, float]]:
    """The ``(offset, gain)`` of the grid that put the most peak weight near ``library``:
    the best, and up to ``candidates`` distinct runners-up (their neighbourhoods of a
    tenth of the offset range and 1 % in gain apart), best first."""
    gains = gain * (1.0 + np.linspace(-GAIN_RANGE, GAIN_RANGE, 201))
    offsets = offset + np.linspace(-offset_range, offset_range, 401)
    score = np.empty((gains.size, offsets.size))
    for i, g in enumerate(gains):  # one row of the grid at a time keeps memory small
        energy = offsets[:, None] + g * channels[None, :] + bend[None, :]
        _, distance = _nearest(energy.ravel(), library)
        score[i] = np.exp(-0.5 * (distance.reshape(energy.shape) / width) ** 2) @ weights
    found = []
    for _ in range(candidates):
        best_gain, best_offset = np.unravel_index(int(np.argmax(score)), score.shape)
        if not np.isfinite(score[best_gain, best_offset]):
            break
        found.append((float(offsets[best_offset]), float(gains[best_gain])))
        rows = slice(max(best_gain - 20, 0), best_gain + 21)
        score[rows, max(best_offset - 20, 0) : best_offset + 21] = -np.inf
    return found


def _least_squares(
    channels: np.ndarray,
    weights: np.ndarray,
    library: np.ndarray,
    offset: float,
    gain: float,
    bend: np.ndarray,
    limit: float,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Refine ``(offset, gain)`` on the peaks within ``limit`` of a line; match again, thrice."""
    matched = np.zeros(channels.size, dtype=bool)
    nearest = np.zeros(channels.size, dtype=np.int64)
    for _ in range(3):
        nearest, distance = _nearest(offset + gain * channels + bend, library)
        matched = distance < limit
        if matched.sum() < 2:
            break
        w = weights[matched, None]
        design = np.column_stack([np.ones(int(matched.sum())), channels[matched]]) * w
        target = (library[nearest[matched]] - bend[matched]) * w[:, 0]
        (offset, gain), *_ = np.linalg.lstsq(design, target, rcond=None)
        offset, gain = float(offset), float(gain)
    return offset, gain, nearest, matched


def fit_lines(
    counts: np.ndarray,
    calibration_keV: tuple[float, float, float],
    beam_keV: float | None = None,
) -> LineFit:
    """The linear calibration that puts the peaks of ``counts`` on tabulated lines.

    Parameters
    ----------
    counts
        One spectrum ``(C,)`` (a sum over pixels: more counts, sharper peaks).
    calibration_keV
        The stored ``(offset, gain, quadratic)``; the search is around it and
        keeps its quadratic term.
    beam_keV
        The excitation energy, when known: lines it cannot excite and the
        scatter peaks below it are left out.

    Returns
    -------
    LineFit
        ``refined`` False (and the stored calibration) when fewer than
        :data:`MIN_MATCHED` peaks match lines.
    """
    offset, gain, quadratic = (float(v) for v in calibration_keV)
    stored = (offset, gain, quadratic)
    channels, weights = _fluorescence_peaks(counts, stored, beam_keV)
    elastic = None if beam_keV is None or gain <= 0 else elastic_channel(counts, stored, beam_keV)
    if elastic is not None:  # the fitted elastic centre stands for the blended peak
        energy = offset + gain * channels + quadratic * channels**2
        keep = energy < beam_keV - ELASTIC_WINDOW_KEV  # type: ignore[operator]
        top = float(weights.max()) if weights.size else 10.0
        channels = np.append(channels[keep], elastic)
        weights = np.append(weights[keep], top)
    if (channels.size < MIN_MATCHED or gain <= 0) and elastic is None:
        return LineFit(stored, (), False)
    if channels.size < MIN_MATCHED:
        return _elastic_only(stored, elastic, beam_keV)
    beam = None if beam_keV is None else round(float(beam_keV), 3)
    bend = quadratic * channels**2
    anchors, _ = line_library(beam, primary=True)
    best: tuple[float, tuple[float, float], tuple[tuple[str, float, float], ...]] | None = None
    for start in _grid_search(channels, weights, anchors, offset, gain, bend,
                              OFFSET_RANGE_KEV, MATCH_WIDTH_KEV, CANDIDATES):
        o, g, _, _ = _least_squares(channels, weights, anchors, *start, bend, MATCH_LIMIT_KEV)
        weight, calibration, pairs = _consistent(channels, weights, bend, o, g, beam)
        weight *= _plausibility(pairs, stored, calibration)
        if best is None or weight > best[0]:
            best = (weight, calibration, pairs)
    assert best is not None
    _, (offset, gain), pairs = best
    if len(pairs) >= MIN_MATCHED:
        return LineFit((offset, gain, quadratic), pairs, True)
    if elastic is not None:
        return _elastic_only(stored, elastic, beam_keV)
    return LineFit(stored, pairs, False)


def _plausibility(
    pairs: tuple[tuple[str, float, float], ...],
    stored: tuple[float, float, float],
    calibration: tuple[float, float],
) -> float:
    """How plausible a calibration is next to the stored one: a Gaussian prior on how far
    (rms over the matched peaks) it moves them, of width :data:`STORED_PRIOR_KEV`.

    Few peaks can be put on lines by more than one calibration; the one that
    moves the stored energies by a few hundred eV (a calibration that far off
    is rare) loses to the one that moves them by tens.
    """
    if not pairs:
        return 0.0
    channels = np.array([ch for _, _, ch in pairs])
    offset, gain, _ = stored
    moved = (calibration[0] - offset) + (calibration[1] - gain) * channels
    rms = float(np.sqrt(np.mean(moved**2)))
    return float(np.exp(-0.5 * (rms / STORED_PRIOR_KEV) ** 2))


def _consistent(
    channels: np.ndarray, weights: np.ndarray, bend: np.ndarray, offset: float, gain: float,
    beam: float | None,
) -> tuple[float, tuple[float, float], tuple[tuple[str, float, float], ...]]:
    """Least squares on every line, keeping only the matches that stand together
    (:func:`_believed`); returns their total weight, the calibration and the pairs."""
    library, labels = line_library(beam)
    top = float(library[-1]) if library.size else 0.0
    keep = np.ones(channels.size, dtype=bool)
    for _ in range(4):
        offset, gain, nearest, matched = _least_squares(
            channels[keep], weights[keep], library, offset, gain, bend[keep], MATCH_LIMIT_KEV)
        names = [labels[int(n)] if ok else "" for n, ok in zip(nearest, matched, strict=True)]
        believed = np.array([_believed(name, names, labels, library, top) for name in names],
                            dtype=bool)
        if believed.all():
            break
        kept = np.flatnonzero(keep)
        keep[kept[~believed]] = False
    else:  # the matches of the peaks finally kept
        offset, gain, nearest, matched = _least_squares(
            channels[keep], weights[keep], library, offset, gain, bend[keep], MATCH_LIMIT_KEV)
    pairs = tuple(
        (labels[int(n)], float(library[int(n)]), float(ch))
        for n, ch, ok in zip(nearest, channels[keep], matched, strict=True) if ok
    )
    weight = float(weights[keep][np.asarray(matched, dtype=bool)].sum()) if pairs else 0.0
    return weight, (offset, gain), pairs


def _believed(name: str, names: list[str], labels: tuple[str, ...], library: np.ndarray,
              top_keV: float) -> bool:
    """Whether a match stands beside the others.

    Unmatched peaks, K-alpha lines and the elastic peak stand alone; a K-beta or
    L-beta line only beside its element's alpha line; an L-alpha line only
    beside its element's L-beta line, when that line can be excited and lies
    in the range (the two are of comparable strength).
    """
    if not name or name == "elastic" or name.endswith(" Ka"):
        return True
    element, family = name.split()
    if family in ("Kb", "Lb"):
        return f"{element} {family[0]}a" in names
    partner = f"{element} Lb"
    if partner not in labels or library[labels.index(partner)] > top_keV:
        return True
    return partner in names


def _elastic_only(
    stored: tuple[float, float, float], elastic: float | None, beam_keV: float | None
) -> LineFit:
    """A gain correction from the elastic peak alone (the offset kept): the one line
    whose energy is known without identifying any element."""
    offset, _, quadratic = stored
    if elastic is None or beam_keV is None or elastic <= 0:
        return LineFit(stored, (), False)
    fitted_gain = (beam_keV - offset - quadratic * elastic**2) / elastic
    return LineFit((offset, fitted_gain, quadratic), (("elastic", float(beam_keV), elastic),),
                   True)


def _fluorescence_peaks(
    counts: np.ndarray, calibration_keV: tuple[float, float, float], beam_keV: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Peak channels and weights, without the scatter peaks when the beam energy is known."""
    peaks = find_peaks(counts)
    channels, weights = peaks.channels, peaks.weights
    if beam_keV is not None and channels.size:
        # Compton peaks (below the beam, at an energy that depends on the angle) are
        # left out; the elastic peak, at the beam energy itself, is a line like others.
        offset, gain, quadratic = calibration_keV
        energy = offset + gain * channels + quadratic * channels**2
        compton = (energy > beam_keV * (1.0 - SCATTER_FRACTION)) & (
            energy < beam_keV - ELASTIC_WINDOW_KEV)
        channels, weights = channels[~compton], weights[~compton]
    return channels, weights


def match_channels(
    counts: np.ndarray,
    reference: np.ndarray,
    calibration_keV: tuple[float, float, float],
    beam_keV: float | None = None,
) -> tuple[float, float, int]:
    """The channel map ``k_ref = a + b k`` that puts the peaks of ``counts`` on those of
    ``reference``: two elements of one detector seeing the same sample.

    Returns
    -------
    tuple
        ``(a, b, matched)``: the map, and how many peaks it matched (fewer than
        :data:`MIN_MATCHED`: not to be trusted).
    """
    channels, weights = _fluorescence_peaks(counts, calibration_keV, beam_keV)
    targets, _ = _fluorescence_peaks(reference, calibration_keV, beam_keV)
    gain = float(calibration_keV[1])
    if channels.size < 2 or targets.size < 2 or gain <= 0:
        return 0.0, 1.0, 0
    library = np.sort(targets)
    zero = np.zeros_like(channels)
    a, b = _grid_search(channels, weights, library, 0.0, 1.0, zero,
                        OFFSET_RANGE_KEV / gain, MATCH_WIDTH_KEV / gain)[0]
    a, b, _, matched = _least_squares(channels, weights, library, a, b, zero,
                                      MATCH_LIMIT_KEV / gain)
    return a, b, int(matched.sum())


def misplacement_summary(fit: LineFit, calibration_keV: tuple[float, float, float]) -> str | None:
    """One phrase saying how far ``calibration_keV`` puts the matched lines, or None when
    no line sits further than :data:`MISPLACED_EV` (or the fit was not trusted).

    Examples: ``"Fe Ka 75 eV low, Ca Ka 60 eV low, Cu Ka 110 eV low"``.
    """
    if not fit.refined:
        return None
    shifts = fit.misplacement_eV(calibration_keV)
    if max(abs(eV) for _, eV in shifts) <= MISPLACED_EV:
        return None
    # K-alpha lines first: the strongest and least ambiguous a spectrum shows
    shown = sorted(shifts, key=lambda item: (not item[0].endswith(" Ka"), -abs(item[1])))[:3]
    return ", ".join(f"{label} {abs(eV):.0f} eV {'low' if eV < 0 else 'high'}"
                     for label, eV in shown)
