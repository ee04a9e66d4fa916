"""Peaks of a spectrum: where they are, how wide, and the elastic peak beside its Compton peak.

What :mod:`.lines` matches to tabulated lines, and what a reader reports of a
spectrum (the resolution of a detector sum):

- :func:`find_peaks`: the prominent peaks (scipy), each at the vertex of a
  parabola through the log counts of its top three channels;
- :func:`elastic_channel`: the elastic peak, fitted with the Compton peak it
  blends with (the blend's maximum sits tens of eV low);
- :func:`fwhm_eV`: the width of a peak;
- :func:`peak_keV`: where the highest peak near an energy is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Prominence of a peak in the square root of the counts (noise 1/2 there).
PROMINENCE = 4.0
#: Peaks of a spectrum kept (the most prominent).
MAX_PEAKS = 15
#: Compton scatter of the beam lies within this fraction below it.
SCATTER_FRACTION = 0.15


@dataclass(frozen=True)
class Peaks:
    """Prominent peaks of a spectrum: fractional channels and weights (sqrt prominence)."""

    channels: np.ndarray
    weights: np.ndarray


def find_peaks(counts: np.ndarray, max_peaks: int = MAX_PEAKS) -> Peaks:
    """The most prominent peaks of a spectrum (counts per channel).

    Peaks are found on the square root of the counts, where Poisson noise has
    the same size (1/2) everywhere: a peak must stand :data:`PROMINENCE`
    above its surroundings (8 sigma) and be at least two channels wide. Small
    peaks on a low background count as much as their significance.
    """
    from scipy.signal import find_peaks as scipy_find_peaks

    spectrum = np.clip(np.nan_to_num(np.asarray(counts, dtype=np.float64)), 0.0, None)
    if spectrum.size < 5 or spectrum.max() <= 0:
        return Peaks(np.zeros(0), np.zeros(0))
    index, props = scipy_find_peaks(np.sqrt(spectrum), prominence=PROMINENCE, width=2)
    channels = np.array([_vertex(spectrum, int(i)) for i in index], dtype=np.float64)
    weights = np.asarray(props["prominences"], dtype=np.float64)
    order = np.argsort(weights)[::-1][:max_peaks]
    return Peaks(channels[order], weights[order])


def _vertex(spectrum: np.ndarray, i: int) -> float:
    """The vertex of the parabola through the log counts of channels i-1, i, i+1."""
    if i < 1 or i >= spectrum.size - 1 or np.any(spectrum[i - 1 : i + 2] <= 0):
        return float(i)
    a, b, c = np.log(spectrum[i - 1 : i + 2])
    curvature = a - 2 * b + c
    return float(i) if curvature >= 0 else float(i + 0.5 * (a - c) / curvature)




def elastic_channel(
    counts: np.ndarray, calibration_keV: tuple[float, float, float], beam_keV: float
) -> float | None:
    """The channel of the elastic peak, fitted beside the Compton peak it blends with.

    Two Gaussians and a constant are fitted (scipy) to the counts from 15 %
    below the beam energy to 0.6 keV above it: the elastic one near the beam
    energy (within 0.4 keV of where the calibration puts it), 30-300 eV wide,
    the Compton one below it. Its centre is where the blend's maximum is not:
    the Compton peak pulls that maximum down by tens of eV.

    Returns
    -------
    float or None
        The fractional channel, or None when there is no such peak (too few
        counts, the window off the spectrum, or a fit that does not converge).
    """
    from scipy.optimize import curve_fit

    spectrum = np.clip(np.nan_to_num(np.asarray(counts, dtype=np.float64)), 0.0, None)
    offset, gain, quadratic = calibration_keV
    channel = np.arange(spectrum.size, dtype=np.float64)
    energy = offset + gain * channel + quadratic * channel**2
    window = (energy > beam_keV * (1.0 - SCATTER_FRACTION)) & (energy < beam_keV + 0.6)
    x, y = channel[window], spectrum[window]
    if x.size < 10 or y.max() < 100:
        return None
    at_beam = float(np.interp(beam_keV, energy, channel))
    per_keV = 1.0 / gain

    def model(k: np.ndarray, a1: float, m1: float, s1: float, a2: float, m2: float, s2: float,
              b: float) -> np.ndarray:
        return (a1 * np.exp(-0.5 * ((k - m1) / s1) ** 2)
                + a2 * np.exp(-0.5 * ((k - m2) / s2) ** 2) + b)

    start = [y.max() / 2, at_beam, 0.1 * per_keV, y.max() / 2, at_beam - 0.03 * beam_keV *
             per_keV, 0.2 * per_keV, float(y.min())]
    low = [0, at_beam - 0.4 * per_keV, 0.03 * per_keV, 0, x[0], 0.03 * per_keV, 0]
    high = [np.inf, at_beam + 0.4 * per_keV, 0.3 * per_keV, np.inf, at_beam,
            beam_keV * 0.1 * per_keV, np.inf]
    start = [min(max(v, lo), hi) for v, lo, hi in zip(start, low, high, strict=True)]
    try:
        fitted, _ = curve_fit(model, x, y, p0=start, bounds=(low, high),
                              sigma=np.sqrt(y + 1.0), maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    area = fitted[0] * fitted[2] * np.sqrt(2 * np.pi)
    if area < 10 * np.sqrt(max(float(y.sum()), 1.0)):  # not a peak that stands out
        return None
    return float(fitted[1])


def fwhm_eV(counts: np.ndarray, energy_keV: np.ndarray, line_keV: float) -> float | None:
    """Full width at half maximum (eV) of the peak nearest ``line_keV``, or None."""
    from scipy.signal import peak_widths

    spectrum = np.asarray(counts, dtype=np.float64)
    centre = int(np.argmin(np.abs(energy_keV - line_keV)))
    window = slice(max(centre - 5, 0), min(centre + 6, spectrum.size))
    top = window.start + int(np.argmax(spectrum[window]))
    widths, *_ = peak_widths(spectrum, [top], rel_height=0.5)
    if not np.isfinite(widths[0]) or widths[0] <= 0:
        return None
    gain = float(np.gradient(energy_keV)[top])
    return float(widths[0] * gain * 1000.0)


def peak_keV(
    counts: np.ndarray, energy_keV: np.ndarray, near_keV: float, window_keV: float = 0.25
) -> float:
    """Energy of the highest channel within ``window_keV`` of ``near_keV``, refined to the
    vertex of the parabola through the log counts of it and its neighbours.

    How far a line lies from its tabulated energy, as the tests and
    ``benchmarks/bench_real_files.py`` measure it.
    """
    spectrum = np.asarray(counts, dtype=np.float64)
    energy = np.asarray(energy_keV, dtype=np.float64)
    inside = np.flatnonzero(np.abs(energy - near_keV) < window_keV)
    if inside.size == 0:
        raise ValueError(f"no channel within {window_keV} keV of {near_keV} keV")
    top = int(inside[np.argmax(spectrum[inside])])
    return float(np.interp(_vertex(spectrum, top), np.arange(energy.size), energy))
