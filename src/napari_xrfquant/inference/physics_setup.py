"""Setting up the physics quantification on a measurement: the detector refined on a
sum spectrum, and a thin sample's scale from a standard film's areal densities.

Both keep to :mod:`.physics_fit`'s model (free scatter, linear amounts), so what
they find is what the quantification then uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.amounts import fit_amounts
from napari_xrfquant.inference.fit_quality import (
    poisson_deviance_terms,
    poisson_fit_quality,
)
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.instrument import Instrument

#: Detector parameters :func:`refine_detector` frees by default, with the step
#: (natural units) that is "small" for each: the energy calibration, resolution
#: and the low-energy tail of the peaks.
DETECTOR_STEPS = {
    "offset_keV": 0.002,
    "gain_keV": 2e-6,
    "quadratic_keV": 1e-9,
    "noise_keV": 0.002,
    "fano": 0.005,
    "tail_fraction": 0.002,
    "tail_slope_keV": 0.01,
    "shelf_fraction": 0.0005,
}
#: Detector parameters that must stay positive (the others may cross zero).
_POSITIVE = {"gain_keV", "noise_keV", "fano", "tail_fraction", "tail_slope_keV", "shelf_fraction"}
#: Upper bounds of the line-shape parameters (a search left free wanders to
#: shapes no detector has where a line is missing from the model).
_UPPER = {"fano": 0.5, "tail_fraction": 0.5, "shelf_fraction": 0.2}


def refine_detector(
    quantifier: PhysicsQuantifier,
    spectrum: np.ndarray,
    names: Sequence[str] = tuple(DETECTOR_STEPS),
    max_evaluations: int = 20,
) -> tuple[Instrument, float, float]:
    """The detector parameters that best explain one rich spectrum (a map's sum).

    The component amounts are re-fitted at every trial (they are linear), so
    only the detector's own parameters are searched (a bounded trust-region
    least-squares fit of the deviance residuals, in steps of
    :data:`DETECTOR_STEPS`), as a fit of a sum spectrum with the calibration and
    resolution free does in PyMca. No composition is assumed.
    ``max_evaluations`` bounds the iterations (each costs one spectrum per
    parameter for the Jacobian and one for the step).

    Returns
    -------
    instrument
        ``quantifier.instrument`` with the refined values.
    before, after
        Fit quality of ``spectrum`` with the start and the refined detector.
    """
    from scipy.optimize import least_squares

    start = {n: float(getattr(quantifier.instrument.detector, n)) for n in names}
    x = np.asarray(spectrum, dtype=np.float64)[None, :]
    fit = quantifier.fit_channels
    observed = x[0, fit]
    # the scatter's shape follows the matrix: that of a first fit
    w = quantifier.solve(x)[0]
    weights = quantifier.component_atoms(quantifier._intensities(w)[0])
    base = quantifier.simulator

    def expected(values: Mapping[str, float]) -> np.ndarray:
        sim = base.with_parameters(**values)
        with torch.no_grad():
            atoms = sim.atom_matrix().numpy()
            continuum = sim.continuum().numpy()
        shapes = quantifier.component_shapes(weights, atoms, continuum)
        return fit_amounts(x[:, fit], shapes[:, fit])[2]

    def natural(u: np.ndarray) -> dict[str, float]:
        return {name: start[name] + value * DETECTOR_STEPS[name]
                for value, name in zip(u, names, strict=True)}

    def residuals(u: np.ndarray) -> np.ndarray:
        # deviance residuals: their squares sum to the Poisson deviance
        lam = expected(natural(u))
        terms = poisson_deviance_terms(torch.as_tensor(x[:, fit]), torch.as_tensor(lam))
        return np.sign(observed - lam[0]) * np.sqrt(np.clip(terms[0].numpy(), 0.0, None))

    steps = np.array([DETECTOR_STEPS[n] for n in names])
    origin = np.array([start[n] for n in names])
    low = np.array([(1e-9 if n in _POSITIVE else -np.inf) for n in names])
    high = np.array([_UPPER.get(n, np.inf) for n in names])
    lower, upper = (low - origin) / steps, (high - origin) / steps
    u0 = np.clip(np.zeros(len(names)), lower + 1e-6, upper - 1e-6)
    # Levenberg-Marquardt-like steps (trust region, bounds) on the deviance residuals:
    # each iteration costs one evaluation per parameter, and a few iterations do
    found = least_squares(residuals, u0, bounds=(lower, upper), diff_step=0.05,
                          max_nfev=max_evaluations, x_scale=1.0, xtol=1e-3, ftol=1e-6)
    best = natural(found.x)
    refined = quantifier.instrument.replace(**{f"detector.{n}": v for n, v in best.items()})
    n_components = len(quantifier.components)
    before, after = (
        float(poisson_fit_quality(torch.as_tensor(x[:, fit]), torch.as_tensor(expected(v)),
                                  n_components)[0])
        for v in (start, best))
    return refined, before, after


def pile_up_significance(quantifier: PhysicsQuantifier, spectrum: np.ndarray) -> float:
    """How many sigma a pile-up component (``quantifier.with_pile_up(spectrum)``)
    holds in ``spectrum`` (a map's sum), scaled by the fit quality where it exceeds 1:
    sum peaks the data call for."""
    piled = quantifier.with_pile_up(spectrum)
    x = np.asarray(spectrum, dtype=np.float64)[None, :]
    _, amounts, covariance, quality, _ = piled.solve(x)
    index = piled.components.index("pile-up")
    sigma = math.sqrt(max(float(covariance[0, index, index]), 1e-300))
    return float(amounts[0, index]) / (sigma * math.sqrt(max(float(quality[0]), 1.0)))


def scale_from_standard(
    quantifier: PhysicsQuantifier,
    counts: np.ndarray,
    known_ug_cm2: Mapping[str, float],
    known_sigma: Mapping[str, float] | None = None,
) -> tuple[float, float]:
    """The counts per unit simulated intensity that give a thin standard its areal densities.

    ``counts`` ``(C,)`` is the standard's spectrum (e.g. a map's sum); the
    elements of ``known_ug_cm2`` (those certified, e.g. Ca, Fe, Cu of the AXO
    film) set the scale, the other elements of the quantifier are fitted
    freely beside them. Each known element implies a scale (its fitted amount
    over the intensity its areal density gives); the scale is their weighted
    mean, each weighted by its variance: counting statistics plus the
    certificate's 1-sigma where ``known_sigma`` gives it (generalised least
    squares; with counting statistics alone it is close to the Poisson ML
    value, the start).

    Parameters
    ----------
    quantifier
        A thin-sample quantifier.
    counts
        The standard's spectrum ``(C,)``.
    known_ug_cm2
        Certified areal densities by element.
    known_sigma
        Their 1-sigma (µg/cm²), where the certificate gives it.

    Returns
    -------
    scale, sigma
        The scale and its 1-sigma. The sigma is the weighted mean's, scaled up
        by the Birge ratio ``sqrt(chi2 / (n - 1))`` where the known elements
        disagree with one another beyond their variances: a scale the
        standard's own elements do not agree on is only known as well as they
        agree.

    Raises
    ------
    XRFQuantError
        For a bulk instrument or a known element the quantifier does not fit.
    """
    if not quantifier.thin or quantifier.layer_ug_cm2 is None:
        raise XRFQuantError("a scale from areal densities needs a thin sample ([sample])")
    missing = [e for e in known_ug_cm2 if e not in quantifier.elements]
    if missing:
        raise XRFQuantError(f"the standard's {', '.join(missing)} are not among the elements "
                            "fitted")
    x = np.asarray(counts, dtype=np.float64)[None, :]
    total = np.array([sum(known_ug_cm2.values())])
    w = np.array([[known_ug_cm2.get(e, 0.0) for e in quantifier.elements]]) / total[:, None]
    w = np.where(w > 0, w, 1e-3)
    shapes = quantifier.shapes(w[0] / w[0].sum())
    amounts, covariance, _, _ = quantifier._fit_batches(x, shapes)
    s = quantifier.sensitivities(w / w.sum())[0]
    # an element certified at 0 implies no scale (0 / 0): it is fitted, not weighed
    index = [quantifier.elements.index(e) for e, v in known_ug_cm2.items() if v > 0]
    if not index:
        raise XRFQuantError("the standard certifies none of the elements fitted above 0")
    predicted = np.array([known_ug_cm2[quantifier.elements[i]] / quantifier.layer_ug_cm2 * s[i]
                          for i in index])
    measured = amounts[0, index]
    counting = np.maximum(np.diag(covariance[0])[index], 0.0)
    certified = np.array([(known_sigma or {}).get(quantifier.elements[i], 0.0)
                          / known_ug_cm2[quantifier.elements[i]] for i in index])
    implied = measured / predicted  # the scale each known element implies

    def weights(at: float) -> np.ndarray:
        """1 / variance of each implied scale; the certificate's share depends on it."""
        return predicted**2 / np.maximum(counting + (at * predicted * certified) ** 2, 1e-300)

    scale = float(measured.sum() / predicted.sum())  # the Poisson ML value: the start
    for _ in range(3):
        weight = weights(scale)
        scale = float((weight * implied).sum() / weight.sum())
    weight = weights(scale)
    chi2 = float((weight * (implied - scale) ** 2).sum())
    birge = math.sqrt(chi2 / (len(index) - 1)) if len(index) > 1 else 1.0
    return scale, float(max(birge, 1.0) / math.sqrt(weight.sum()))
