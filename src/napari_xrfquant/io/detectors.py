"""Multi-element detectors: each element with its own calibration, summed onto one axis.

A 4-element silicon drift detector writes four spectra per pixel, each with
the calibration of its own MCA. Their sum is the cube, but only once every
element's spectrum is on the same energy axis: summed channel by channel with
calibrations that disagree, every peak is smeared.

:func:`combine_elements` does, by ``detector``:

- ``"sum"`` (default): every element's calibration is checked against the
  lines its own spectrum shows (:mod:`.lines`). Each element is matched to the
  element with most counts (peak on peak); the calibration of the matched sum
  is then fitted to tabulated lines; an element whose peaks are too few to
  match keeps its stored calibration. Each element's counts are resampled
  onto the first element's channel grid (the one resampler, counts conserved)
  and summed. ``calibration_source`` is ``"lines"`` when the sum's
  calibration was refined on the lines, else ``"file"``.
- ``"stored"``: the same sum with the calibrations as stored.
- an element number (0-based): that element alone, with its stored calibration.
A file of one element is the same case with one element: its calibration is
checked and, with ``"sum"``, refined on its lines.

What was found goes to ``Cube.metadata["detector_elements"]`` (one line per
element: stored calibration, how far it put the lines, what was used) and
``metadata["resolution_eV"]`` (the FWHM of the strongest line in the sum: the
sum's real resolution, broader than one element's when alignment is imperfect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.io.calibration import polynomial_energy_axis
from napari_xrfquant.io.grid import Resampler, channel_edges_keV
from napari_xrfquant.io.lines import (
    MIN_MATCHED,
    LineFit,
    fit_lines,
    match_channels,
    misplacement_summary,
)
from napari_xrfquant.io.peaks import fwhm_eV

Calibration = tuple[float, float, float]
#: What the multi-element readers return: counts ``(H, W, C)``, the energy axis (None:
#: the file has no calibration), its source and the metadata.
Combined = tuple[Any, np.ndarray | None, str, dict[str, Any]]
#: The ways to combine detector elements (besides an element number).
DETECTOR_CHOICES = ("sum", "stored")


@dataclass(frozen=True)
class ElementReport:
    """What the check found for one detector element."""

    index: int
    stored_keV: Calibration
    used_keV: Calibration
    refined: bool
    misplaced: str | None
    matched: int

    def line(self) -> str:
        """One line for ``xrfquant info``."""
        o, g, _ = self.stored_keV
        text = f"element {self.index}: stored {o:.5g} keV + {g:.6g} keV/ch"
        if self.misplaced:
            text += f" puts {self.misplaced}"
        if self.refined:
            uo, ug, _ = self.used_keV
            text += f"; refined on {self.matched} peaks to {uo:.5g} keV + {ug:.6g} keV/ch"
        else:
            text += f"; kept (only {self.matched} peaks to check it on)"
        return text


def parse_detector(detector: str | int | None, n_elements: int, where: str) -> str | int:
    """Validate a ``detector`` choice: "sum", "stored" or an element number."""
    if detector is None:
        return "sum"
    if isinstance(detector, str) and detector.strip().lower() in DETECTOR_CHOICES:
        return detector.strip().lower()
    try:
        index = int(detector)
    except (TypeError, ValueError):
        raise CubeReadError(
            f"{where}: detector must be 'sum', 'stored' or an element number, got {detector!r}"
        ) from None
    if not 0 <= index < n_elements:
        raise CubeReadError(
            f"{where}: detector element {index} does not exist (the file has {n_elements}: "
            f"0-{n_elements - 1})"
        )
    return index


def _compose(reference: Calibration, a: float, b: float) -> Calibration:
    """The calibration of an element whose channel k sits at reference channel a + b k."""
    o, g, q = reference
    return (o + g * a + q * a * a, g * b + 2 * q * a * b, q * b * b)


def check_elements(
    spectra: np.ndarray, stored: list[Calibration], beam_keV: float | None
) -> tuple[list[Calibration], list[ElementReport], LineFit]:
    """Calibrations of each element, checked on the lines of its summed spectrum.

    Parameters
    ----------
    spectra
        ``(n_elements, C)`` each element's spectrum summed over all pixels.
    stored
        Each element's stored ``(offset, gain, quadratic)``.
    beam_keV
        The excitation energy when the file says.

    Returns
    -------
    tuple
        The calibrations to use, a report per element, and the line fit of
        the aligned sum.
    """
    n = len(stored)
    reference = int(np.argmax(spectra.sum(axis=1)))
    maps: list[tuple[float, float] | None] = []
    matched_counts: list[int] = []
    for index in range(n):
        if index == reference:
            maps.append((0.0, 1.0))
            matched_counts.append(MIN_MATCHED)
            continue
        a, b, matched = match_channels(spectra[index], spectra[reference], stored[index], beam_keV)
        maps.append((a, b) if matched >= MIN_MATCHED else None)
        matched_counts.append(matched)
    # the sum of the elements that matched, on the reference's channels
    channels = spectra.shape[1]
    aligned = np.zeros(channels)
    for index, mapping in enumerate(maps):
        if mapping is not None:
            a, b = mapping
            # the one resampler, in units of the reference's channels
            centres = a + b * np.arange(channels, dtype=np.float64)
            target_edges = np.arange(channels + 1, dtype=np.float64) - 0.5
            aligned += Resampler(centres, target_edges).numpy(spectra[index])
    fit = fit_lines(aligned, stored[reference], beam_keV)
    base = fit.calibration_keV
    used: list[Calibration] = []
    reports: list[ElementReport] = []
    for index, mapping in enumerate(maps):
        refined = fit.refined and mapping is not None
        misplaced = None
        if refined and mapping is not None:
            a, b = mapping
            calibration = _compose(base, a, b)
            # the sum's matched lines, at this element's own channels
            own = LineFit(calibration, tuple((label, energy, (ch - a) / b)
                                             for label, energy, ch in fit.matched), True)
            misplaced = misplacement_summary(own, stored[index])
        else:
            calibration = stored[index]
        used.append(calibration)
        matched = len(fit.matched) if refined else matched_counts[index]
        reports.append(ElementReport(index, stored[index], calibration, refined, misplaced,
                                     matched))
    return used, reports, fit


def combine_elements(
    stack: Any,
    stored: list[Calibration] | None,
    where: str,
    detector: str | int | None = "sum",
    beam_keV: float | None = None,
) -> Combined:
    """One cube from the elements of a multi-element detector (see the module rule).

    Parameters
    ----------
    stack
        ``(H, W, n_elements, C)`` counts (numpy).
    stored
        Each element's stored calibration; None (or a gain that is not
        positive) when the file has none: the elements are then summed channel
        by channel and the energy axis is left to the caller's fallbacks
        (sidecar, reference), ``energy_keV`` None and the source ``"none"``.
    where
        The file name, for messages.
    detector
        ``"sum"``, ``"stored"`` or an element number.
    beam_keV
        The excitation energy, when the file says.

    Returns
    -------
    tuple
        ``(data (H, W, C), energy_keV (C,) or None, calibration_source, metadata)``.
    """
    data = np.asarray(stack)
    n_elements, channels = int(data.shape[2]), int(data.shape[3])
    choice = parse_detector(detector, n_elements, where)
    metadata: dict[str, Any] = {"detector_choice": choice, "n_detector_elements": n_elements}
    if stored is None or any(gain <= 0 for _, gain, _ in stored):
        alone = data[:, :, choice, :] if isinstance(choice, int) else data.sum(axis=2)
        return alone, None, "none", metadata
    if isinstance(choice, int):
        energy = polynomial_energy_axis(*stored[choice], channels)
        metadata["calibration_keV"] = list(stored[choice])
        return data[:, :, choice, :], energy, "file", metadata
    # points never measured are NaN (masked on reading): the check sums the others
    spectra = np.asarray(np.nansum(data, axis=(0, 1), dtype=np.float64))
    if choice == "stored":
        used, source = list(stored), "file"
        reports: list[ElementReport] = []
    else:
        used, reports, fit = check_elements(spectra, stored, beam_keV)
        source = "lines" if fit.refined else "file"
        metadata["detector_elements"] = [r.line() for r in reports]
    target = polynomial_energy_axis(*used[0], channels)
    edges = channel_edges_keV(target)
    summed = np.zeros((*data.shape[:2], channels), dtype=np.float64)
    for index, calibration in enumerate(used):
        energy = polynomial_energy_axis(*calibration, channels)
        summed += Resampler(energy, edges).numpy(data[:, :, index, :])
    metadata["calibration_keV"] = list(used[0])
    total = np.nansum(summed, axis=(0, 1))
    fit_sum = fit_lines(total, used[0], beam_keV)
    # a K-alpha line below 10 keV, where Ka1 and Ka2 are one peak: the detector's
    # resolution rather than a family's spread (scatter and L families are wider)
    fluorescence = [m for m in fit_sum.matched if m[0].endswith(" Ka") and m[1] < 10.0]
    if fluorescence:
        strongest = max(fluorescence, key=lambda m: total[round(m[2])])
        width = fwhm_eV(total, target, strongest[1])
        if width is not None:
            metadata["resolution_eV"] = (strongest[0], width)
    if reports and any(r.misplaced for r in reports):
        if n_elements == 1:
            found = f"the stored calibration puts {reports[0].misplaced}"
            done = " (refined on its lines)"
        else:
            found = "the stored calibrations misplace the lines: " + "; ".join(
                f"element {r.index}: {r.misplaced}" for r in reports if r.misplaced)
            done = " (each element refined on its own lines before the sum)"
        metadata["calibration_warning"] = f"{where}: {found}" + (
            done if source == "lines" else "")
    return summed, target, source, metadata


def combined_times(
    live: np.ndarray, real: np.ndarray, choice: str | int
) -> tuple[np.ndarray, np.ndarray]:
    """Live and real time of the combined spectrum from the elements' ``(..., n)`` times.

    A sum of elements has counted for the sum of their live times (its counts
    per live second are the detector's rate) during the longest real time; one
    element, for its own.
    """
    live, real = np.asarray(live, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if isinstance(choice, int):
        return live[..., choice], real[..., choice]
    with np.errstate(all="ignore"):
        return np.nansum(live, axis=-1), np.nanmax(real, axis=-1)


def check_cube_calibration(cube: Any) -> str | None:
    """One line when an in-memory cube's calibration misplaces the lines its spectrum shows.

    For the files whose reader does not check (HDF5, TIFF, ``.npy``, ...): the
    spectrum summed over the cube is matched to the lines (:mod:`.lines`); the
    calibration is not changed, only said to be off. Lazy cubes and cubes
    their reader has checked already give None (reading a lazy cube through
    would read the whole file). ``xrfquant info`` and napari's reader ask it.
    """
    if cube.lazy or "detector_choice" in cube.metadata:  # its reader combined and checked it
        return None
    calibration = cube.calibration_keV
    spectrum = np.asarray(np.nansum(cube.data, axis=(0, 1), dtype=np.float64))
    fit = fit_lines(spectrum, calibration, cube.metadata.get("beam_keV"))
    misplaced = misplacement_summary(fit, calibration)
    if misplaced is None:
        return None
    name = cube.path.name if cube.path is not None else "the cube"
    return (f"{name}: the calibration ({cube.calibration_source}) puts {misplaced} of where "
            f"the spectrum shows them (checked on {len(fit.matched)} peaks); a sidecar "
            "<name>.calib.json or xrfquant calibrate corrects it")


def instrument_for_cube(instrument: Instrument, metadata: dict[str, Any]) -> Instrument:
    """``instrument`` for the detector elements a cube holds.

    An instrument that lists its detector elements (``[[geometry.detector_elements]]``)
    describes their sum; a file read one element at a time (``--detector N``) is
    that element's geometry alone.

    Raises
    ------
    CubeReadError
        If the file holds another number of detector elements than the instrument lists.
    """
    listed = instrument.geometry.detector_elements
    held = metadata.get("n_detector_elements")
    if not listed or held is None:
        return instrument
    if int(held) != len(listed):
        raise CubeReadError(f"the instrument lists {len(listed)} detector elements and the "
                            f"file holds {held}: list one [[geometry.detector_elements]] each")
    choice = metadata.get("detector_choice")
    if isinstance(choice, int):
        return instrument.replace(geometry=instrument.geometry.of_element(choice).model_dump())
    return instrument


def assumed_instrument(energy_keV: np.ndarray, metadata: dict[str, Any]) -> Instrument:
    """The set-up assumed for a cube given without an instrument file.

    The reference instrument read on the cube's channels, under the monochromatic
    beam the file states where it states one (``metadata["beam_keV"]``: a GSECARS
    file's mono energy). The beam decides what is excited and where the scattered
    beam lies: under the reference's 30 keV, the 21 keV Compton and Rayleigh peaks
    of a GSECARS AXO spectrum were searched as Ru and Rh at a fit quality of 625
    (15 with the file's beam). :func:`assumed_setup` says it in words.
    """
    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.io.calibration import on_energy_axis

    on_axis = on_energy_axis(reference_instrument(), energy_keV)
    beam = _stated_beam_keV(metadata)
    return on_axis if beam is None else on_axis.replace(**{"beam.energies_keV": (beam,)})


def assumed_setup(metadata: dict[str, Any]) -> str:
    """What :func:`assumed_instrument` assumed, for a message: ``"the reference set-up
    under the file's 21 keV beam"``."""
    from napari_xrfquant.instrument import reference_instrument

    beam = _stated_beam_keV(metadata)
    if beam is None:
        return (f"the reference set-up ({reference_instrument().max_beam_energy_keV:g} keV "
                "beam)")
    return f"the reference set-up under the file's {beam:.4g} keV beam"


def _stated_beam_keV(metadata: dict[str, Any]) -> float | None:
    """The monochromatic beam energy a reader found in the file (keV), or None for
    none or one no XRF beam has (a PV read in eV where keV was meant)."""
    value = metadata.get("beam_keV")
    if isinstance(value, int | float) and 1.0 <= float(value) <= 200.0:
        return float(value)
    return None
