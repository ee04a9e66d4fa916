"""What a calibration cannot vouch for: parameters it did not measure, and misfit.

Two questions a fit answers badly on its own:

- *Which fitted values mean nothing?* A parameter that ended at the edge of its
  range (:data:`~napari_xrfquant.instrument_parameters.BOUND` units from the
  start, or a physical limit such as a pile-up fraction of 0) or whose effect
  lies outside the fitted energies (an optic edge at 45 keV on data that stop
  at 21) has a curvature-based sigma that is not an uncertainty.
  :func:`parameter_flags` names them, with why.
- *Where does the calibrated set-up still miss the data, and why?*
  :func:`residual_ranges` finds the energy ranges that hold most of the excess
  deviance and :func:`likely_cause` names the usual suspects: scatter the
  simulator underestimates, sum peaks (pile-up), the set-up's own lines, an
  element missing from the list, or the shape of a line that is in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from napari_xrfquant.instrument import Instrument
from napari_xrfquant.instrument_parameters import (
    BOUND,
    EDGE,
    HELD_IN,
    drop_index,
    is_optic,
    parameter,
    parameter_values,
    start_value,
    to_free,
)

#: Share of its range (``BOUND`` units either way) beyond which a value sits at the edge.
AT_BOUND = 0.98
#: A fit quality above this after a calibration is a warning (issue: "explained" is ~1).
MISFIT_QUALITY = 1.5
#: Residual ranges reported at most, and the share of the excess deviance one must hold.
MAX_RANGES, MIN_SHARE = 3, 0.05
#: Argon K-alpha: the air path's line, the most common unmodelled set-up line.
ARGON_KA_KEV = 2.957


@dataclass(frozen=True)
class ResidualRange:
    """An energy range where the calibrated set-up misses the data.

    Attributes
    ----------
    low_keV, high_keV
        The range.
    share
        Its part of the excess deviance of all fitted channels (0-1).
    data_above
        True where the measured counts exceed the model there.
    cause
        The likely cause, in words (:func:`likely_cause`).
    """

    low_keV: float
    high_keV: float
    share: float
    data_above: bool
    cause: str

    def describe(self) -> str:
        """``"6.2-6.6 keV (41 % of the misfit, data above the model): ..."``."""
        side = "data above the model" if self.data_above else "data below the model"
        return (f"{self.low_keV:.2f}-{self.high_keV:.2f} keV ({100 * self.share:.0f} % of the "
                f"misfit, {side}): {self.cause}")

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``calibration.json``."""
        return asdict(self)


def parameter_flags(
    instrument: Instrument,
    start: Instrument,
    values: Mapping[str, float],
    fit_keV: tuple[float, float],
) -> dict[str, str]:
    """Free parameters whose fitted value the data do not vouch for, with why.

    Parameters
    ----------
    instrument
        The calibrated set-up (its optic's widths tell how far an edge reaches).
    start
        The set-up the fit started from (the centre of each parameter's range).
    values
        Fitted value of each free parameter (natural units).
    fit_keV
        The lowest and highest fitted channel energy.

    Returns
    -------
    dict
        ``{name: reason}`` for parameters at the edge of their range or acting
        outside ``fit_keV`` only; these get no sigma.
    """
    start_values = parameter_values(start, list(values))
    flags: dict[str, str] = {}
    for name, value in values.items():
        spec = parameter(name, start)
        began = start_value(spec, start_values[name])  # where the fit started
        reason = _at_bound(name, spec.transform, spec.unit, value, began)
        if reason is None and is_optic(name):
            reason = _outside_range(name, instrument, fit_keV)
        if reason is not None:
            flags[name] = reason
    return flags


def _at_bound(name: str, kind: str, unit: float, value: float, start: float) -> str | None:
    if name in HELD_IN and value <= HELD_IN[name][0]:
        return "at its lower limit 0 (the data show none)"
    if kind == "log" and value <= 10 * EDGE:
        return "at its lower limit 0"
    if kind == "logit" and not 10 * EDGE < value < 1 - 10 * EDGE:
        return f"at its limit {0 if value < 0.5 else 1}"
    if math.isnan(start):
        return None  # a value the start lacks (a knot it has not): no range to be at the edge of
    moved = (to_free(kind, value) - to_free(kind, start)) / (unit * BOUND)
    if abs(moved) >= AT_BOUND:
        side = "upper" if moved > 0 else "lower"
        return f"at the {side} edge of its range (start {start:.4g} ± {BOUND:g} steps)"
    return None


def _outside_range(
    name: str, instrument: Instrument, fit_keV: tuple[float, float]
) -> str | None:
    """Why an optic parameter acts outside the fitted energies, or None."""
    optic = instrument.optic
    if optic is None:
        return None
    low, high = fit_keV
    where = f"outside the fitted {low:.1f}-{high:.1f} keV"
    if optic.model == "knots":
        index = drop_index(name)
        if index is None:
            return None
        a, b = optic.knots_keV[index - 1], optic.knots_keV[index]
        if b < low or a > high:
            return f"its knots ({a:g}, {b:g} keV) lie {where}"
        return None
    if name.startswith("optic_low"):
        edge, width = optic.low_keV, optic.low_width_keV
    else:
        edge, width = optic.high_keV, optic.high_width_keV
    if edge is None or width is None:
        return None
    if edge + 2 * width < low or edge - 2 * width > high:
        return f"the optic's edge ({edge:.3g} keV, width {width:.2g}) lies {where}"
    return None


def residual_ranges(
    energy_keV: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray,
    fwhm_keV: np.ndarray,
) -> list[tuple[float, float, float, bool]]:
    """The energy ranges holding most of the excess Poisson deviance.

    Parameters
    ----------
    energy_keV
        ``(K,)`` energies of the fitted channels.
    observed, expected
        ``(G, K)`` counts and the fit's expectation of every group.
    fwhm_keV
        ``(K,)`` detector resolution at each channel: a range is a peak's width
        or wider.

    Returns
    -------
    list of (low_keV, high_keV, share, data_above)
        Up to :data:`MAX_RANGES`, largest first, each holding at least
        :data:`MIN_SHARE` of the excess deviance.
    """
    import torch

    from napari_xrfquant.inference.fit_quality import (
        expected_deviance_terms,
        poisson_deviance_terms,
    )

    x = torch.as_tensor(np.asarray(observed, dtype=np.float64))
    lam = torch.as_tensor(np.asarray(expected, dtype=np.float64))
    excess = (poisson_deviance_terms(x, lam) - expected_deviance_terms(lam)).sum(dim=0).numpy()
    signed = (x - lam).sum(dim=0).numpy()
    energy = np.asarray(energy_keV, dtype=np.float64)
    gain = float(np.median(np.diff(energy))) if energy.size > 1 else 1.0
    total = float(np.clip(excess, 0.0, None).sum())
    if total <= 0.0:
        return []
    remaining = np.clip(excess, 0.0, None)
    out = []
    for _ in range(MAX_RANGES):
        # a peak's worth of channels around each one: the misfit of a line is a line wide
        width = max(round(float(np.median(fwhm_keV)) / gain), 1)
        window = np.convolve(remaining, np.ones(width), mode="same")
        centre = int(np.argmax(window))
        if window[centre] < MIN_SHARE * total:
            break
        half = max(round(1.5 * float(fwhm_keV[centre]) / gain), 1)
        lo, hi = max(centre - half, 0), min(centre + half + 1, energy.size)
        share = float(remaining[lo:hi].sum()) / total
        out.append((float(energy[lo]), float(energy[hi - 1]), share,
                    bool(signed[lo:hi].sum() > 0)))
        remaining[lo:hi] = 0.0
    return out


def likely_cause(
    low_keV: float,
    high_keV: float,
    data_above: bool,
    elements: Sequence[str],
    instrument: Instrument,
    free: Sequence[str],
) -> str:
    """The likely cause of a residual range, in words, with what to do about it.

    The checks, in order: the scattered beam (Rayleigh and Compton of the beam's
    lines), the air path's Ar K line, sum peaks of the strongest lines, a line
    of an element in the list (its shape or intensity), an element missing from
    the list (data above the model at one of its lines), else unexplained.
    """
    from napari_xrfquant.physics.lines import element_lines
    from napari_xrfquant.physics.oxides import elements_with_lines

    centre = 0.5 * (low_keV + high_keV)
    fwhm = float(instrument.fwhm_keV(centre))
    near = max(1.5 * fwhm, 0.5 * (high_keV - low_keV))
    setup = instrument.setup_lines
    argon = None
    if abs(centre - ARGON_KA_KEV) <= near and (setup is None or "Ar" not in setup.elements):
        argon = ("Ar K of the air path, which the set-up does not name: add [setup_lines] "
                 'elements = ["Ar"] and free setup_fraction')
    if (scatter := _scatter_cause(centre, near, instrument)) is not None:
        # a tube's Rh L lines scatter right beside Ar Ka (2.96 keV): name both
        return scatter if argon is None else f"{scatter}; or {argon}"
    if argon is not None:
        return argon
    lines = [ln for ln in element_lines(elements_with_lines(elements), instrument)
             if ln.relative_intensity > 0]
    strong = sorted(lines, key=lambda ln: -ln.relative_intensity)[:4]
    if data_above:
        for a in strong:
            for b in strong:
                if a.energy_keV <= b.energy_keV and abs(a.energy_keV + b.energy_keV
                                                        - centre) <= near:
                    fix = ("the fitted pile-up fraction is too small" if "pileup_fraction" in free
                           else "free pileup_fraction")
                    return f"sum peaks of {a.label} + {b.label} (pile-up): {fix}"
    own = [ln for ln in lines if abs(ln.energy_keV - centre) <= near]
    if own:
        names = ", ".join(ln.label for ln in own[:3])
        return (f"the shape or intensity of {names} (peak tails, resolution or calibration "
                "not free, or the element's amount)")
    if data_above and (missing := _missing_elements(centre, near, elements, instrument)):
        return f"an element missing from the list ({', '.join(missing)}): add it to the elements"
    return "an unmodelled line, escape peak or continuum shape: exclude the range"


def _scatter_cause(centre: float, near: float, instrument: Instrument) -> str | None:
    from napari_xrfquant.physics._xraydata import compton_energy_keV

    weights = np.asarray(instrument.beam.weights, dtype=np.float64)
    energies = np.asarray(instrument.beam.energies_keV, dtype=np.float64)
    lines = energies[weights >= 0.1 * weights.max()]  # the beam's lines, not its continuum
    theta = math.radians(instrument.geometry.scattering_deg)
    for energy in lines:
        compton = float(compton_energy_keV(float(energy), np.array([theta]))[0])
        if compton - 2 * near <= centre <= energy + near:
            return (f"scatter of the {energy:.2f} keV beam (Rayleigh {energy:.2f}, Compton "
                    f"~{compton:.2f} keV), which the simulator under- or overestimates: "
                    "exclude the range")
    return None


def _missing_elements(
    centre: float, near: float, elements: Sequence[str], instrument: Instrument
) -> list[str]:
    """Up to three elements not in ``elements`` whose strongest lines fall at ``centre``."""
    from napari_xrfquant.errors import SimulationError
    from napari_xrfquant.physics import _xraydata as xd
    from napari_xrfquant.physics.lines import element_lines

    found: list[tuple[float, str]] = []
    for z in range(xd.Z_MIN, xd.Z_MAX + 1):
        symbol = xd.z_to_symbol(z)
        if symbol in elements:
            continue
        try:
            lines = element_lines([symbol], instrument, 0.3)
        except SimulationError:
            continue
        for line in lines:
            if abs(line.energy_keV - centre) <= near:
                found.append((abs(line.energy_keV - centre), f"{line.label} {line.energy_keV:.2f}"))
                break
    return [label for _, label in sorted(found)[:3]]


def diagnose_misfit(
    energy_keV: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    free: Sequence[str],
) -> list[ResidualRange]:
    """:func:`residual_ranges` of a fit, each with its :func:`likely_cause`."""
    energy = np.asarray(energy_keV, dtype=np.float64)
    ranges = residual_ranges(energy, observed, expected, instrument.fwhm_keV(energy))
    return [
        ResidualRange(low, high, share, above,
                      likely_cause(low, high, above, elements, instrument, free))
        for low, high, share, above in ranges
    ]


def misfit_warning(fit_quality: float, ranges: Sequence[ResidualRange]) -> str | None:
    """The warning of a calibration whose fit quality exceeds :data:`MISFIT_QUALITY`."""
    if not fit_quality > MISFIT_QUALITY:
        return None
    where = "; ".join(r.describe() for r in ranges) or "spread over the whole range"
    return (f"the calibrated set-up does not explain the data (fit quality {fit_quality:.2f}, "
            f"above {MISFIT_QUALITY:g}); largest residuals at {where}")
