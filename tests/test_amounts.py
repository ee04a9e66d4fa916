"""The non-negative Poisson amounts at the heart of the physics fit and the element
search reach the constrained optimum where lines overlap and some are absent."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from napari_xrfquant.inference.amounts import fit_amounts


def _overlapping_lines(n_channels: int = 400) -> np.ndarray:
    """Shapes ``(K, C)``: a flat background and eight lines 0.4 FWHM apart (as
    Mo L, S K, Pb M and Bi M are at 2.3 keV), each normalised to 1."""
    channel = np.arange(n_channels, dtype=np.float64)
    centres = 150.0 + 5.0 * np.arange(8)
    peaks = np.exp(-0.5 * ((channel[None, :] - centres[:, None]) / 5.3) ** 2)
    shapes = np.vstack([np.ones(n_channels), peaks, 0.3 * peaks[:, ::-1] + peaks])
    return shapes / shapes.sum(axis=1, keepdims=True)


def _deviance(x: np.ndarray, lam: np.ndarray) -> float:
    lam = np.clip(lam, 1e-300, None)
    return float(2.0 * np.sum(np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / lam), 0.0)
                              - x + lam))


def _reference_optimum(x: np.ndarray, shapes: np.ndarray, start: np.ndarray) -> float:
    """The constrained optimum's deviance by L-BFGS-B (slow, tight tolerance)."""
    def objective(a: np.ndarray) -> tuple[float, np.ndarray]:
        lam = np.clip(a @ shapes, 1e-12, None)
        return _deviance(x, lam), -2.0 * shapes @ (x / lam - 1.0)

    best = minimize(objective, start, jac=True, method="L-BFGS-B",
                    bounds=[(0.0, None)] * len(start),
                    options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-10})
    return float(best.fun)


@pytest.mark.parametrize("seed", range(6))
def test_overlapping_lines_with_absent_ones_reach_the_constrained_optimum(seed):
    shapes = _overlapping_lines()
    rng = np.random.default_rng(seed)
    truth = np.where(rng.random(len(shapes)) < 0.5, 0.0, 10 ** rng.uniform(4, 6, len(shapes)))
    truth[0] = 2e5  # the background
    x = rng.poisson(truth @ shapes).astype(np.float64)[None, :]
    amounts, _, expected = fit_amounts(x, shapes)
    found = _deviance(x[0], expected[0])
    optimum = _reference_optimum(x[0], shapes, np.maximum(amounts[0], 1.0))
    assert found <= optimum + 1e-3 * max(1.0, abs(optimum))
    # the optimality conditions: no amount at 0 could rise, no positive one move
    gradient = shapes @ (x[0] / expected[0] - 1.0)
    assert np.all(gradient[amounts[0] == 0.0] < 1e-3)
    assert np.all(amounts[0] >= 0.0)
