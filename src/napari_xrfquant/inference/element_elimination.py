"""Backward elimination of candidate elements on one spectrum: the core of the
element search (:mod:`.element_search`).

Every candidate is fitted at once with :class:`~.physics_fit.PhysicsQuantifier`'s
model beside its scatter, continuum, set-up-line and pile-up components; the
least significant element goes (first on the Wald statistic, then on the
likelihood ratio of the model without it), one at a time, until every element
left reaches the threshold. Significances are quasi-likelihood scaled by the
final fit's quality where it exceeds 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from napari_xrfquant.inference.amounts import fit_amounts
from napari_xrfquant.inference.fit_quality import poisson_deviance, poisson_fit_quality
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier

#: Fixed-point steps of the shares of the elements kept (they start from equal shares).
SHARE_STEPS = 4
#: Scoring steps of each re-fit within the elimination (it starts from the last fit).
REFIT_STEPS = 6


def eliminate(
    quantifier: PhysicsQuantifier, spectrum: np.ndarray, threshold: float,
    only: list[int] | None = None, matrix: np.ndarray | None = None,
) -> tuple[list[int], np.ndarray, np.ndarray, float, np.ndarray]:
    """Backward elimination on one spectrum: the elements kept (indices), the mass
    shares ``(E,)`` of the kept ones, every element's significance ``(E,)`` (0
    for those removed), the final fit quality and that fit's covariance of the
    kept elements' and the other components' amounts, in that order.

    ``only``: the elements to start from (default: all of the quantifier's);
    ``matrix``: the mass fractions ``(E,)`` of the first fit's line shapes
    (default: equal shares).
    """
    n_el = len(quantifier.elements)
    fit = quantifier.fit_channels
    x = np.asarray(spectrum, dtype=np.float64)[None, fit]
    nuisance = list(range(n_el, len(quantifier.components)))
    active = list(range(n_el)) if only is None else list(only)
    shapes = quantifier.shapes(np.full(n_el, 1.0 / n_el) if matrix is None else matrix)[:, fit]
    amounts = np.zeros(len(quantifier.components))
    start: np.ndarray | None = None
    significance = np.zeros(n_el)
    phi = 1.0
    covariance = np.zeros((1, 0, 0))
    while active:
        rows = active + nuisance
        a, covariance, lam = fit_amounts(x, shapes[rows], start=start)
        amounts[:] = 0.0
        amounts[rows] = a[0]
        phi = max(1.0, _quality(x, lam, len(rows)))  # quasi-likelihood over-dispersion
        sigma = np.sqrt(np.clip(np.diagonal(covariance[0]), 1e-300, None))
        wald = a[0, :len(active)] / (sigma[:len(active)] * math.sqrt(phi))
        # an element at exactly 0 contributes nothing: all such go at once
        zero = [e for e, z in zip(active, wald, strict=True) if z <= 0.0]
        if zero:
            active = [e for e in active if e not in zero]
        elif float(wald.min()) < threshold:
            active.pop(int(np.argmin(wald)))
        else:
            significance = _likelihood_ratios(x, lam, shapes, active, nuisance, amounts, phi)
            weak = [e for e in active if significance[e] < threshold]
            if not weak:
                break
            active.remove(min(weak, key=lambda e: significance[e]))
        start = amounts[active + nuisance][None, :]
        shapes = quantifier.shapes(_shares(quantifier, amounts, active))[:, fit]
    return active, _shares(quantifier, amounts, active), significance, phi, covariance[0]


def setup_correlation(
    quantifier: PhysicsQuantifier, kept: list[int], covariance: np.ndarray, element: int
) -> tuple[str, float] | None:
    """The set-up line family whose fitted amount correlates most negatively with
    ``element``'s in the fit that kept it (``covariance`` over the ``kept`` elements
    and then every other component), and that correlation; None without set-up lines."""
    n_el = len(quantifier.elements)
    at = kept.index(element)
    sigma = np.sqrt(np.clip(np.diagonal(covariance), 1e-300, None))
    pairs = [(name.removeprefix("set-up "),
              float(covariance[at, row] / (sigma[at] * sigma[row])))
             for row, name in enumerate(quantifier.components[n_el:], start=len(kept))
             if name.startswith("set-up ")]
    return min(pairs, key=lambda pair: pair[1], default=None)


def _quality(x: np.ndarray, lam: np.ndarray, n_components: int) -> float:
    return float(poisson_fit_quality(torch.as_tensor(x), torch.as_tensor(lam), n_components)[0])


def _likelihood_ratios(
    x: np.ndarray, lam: np.ndarray, shapes: np.ndarray, active: list[int],
    nuisance: list[int], amounts: np.ndarray, phi: float,
) -> np.ndarray:
    """Significance of each active element: the model re-fitted without it, against
    the fit with all of them (expected counts ``lam``)."""
    rows = active + nuisance
    observed = torch.as_tensor(x)
    with_all = float(poisson_deviance(observed, torch.as_tensor(lam))[0])
    out = np.zeros(shapes.shape[0])
    for e in active:
        others = [r for r in rows if r != e]
        lam = fit_amounts(x, shapes[others], REFIT_STEPS, amounts[others][None, :])[2]
        without = float(poisson_deviance(observed, torch.as_tensor(lam))[0])
        out[e] = math.sqrt(max(without - with_all, 0.0) / phi)
    return out


def _shares(quantifier: PhysicsQuantifier, amounts: np.ndarray, active: list[int]) -> np.ndarray:
    """Mass shares ``(E,)`` of the active elements from their amounts (the closure's
    fixed point, :meth:`~.physics_fit.PhysicsQuantifier.matrix_fractions`; the others
    at the floor of 1e-12 a fitted amount gets)."""
    n_el = len(quantifier.elements)
    if not active:
        return np.full(n_el, 1.0 / n_el)
    start = np.zeros((1, n_el))
    start[0, active] = 1.0 / len(active)
    element_amounts = np.zeros((1, n_el))
    element_amounts[0, active] = amounts[active]
    return quantifier.matrix_fractions(element_amounts, start, SHARE_STEPS)[0]
