"""Fisher information of the calibration fit: Jacobian, scoring steps, 1-sigma.

For Poisson counts with expectations ``lambda(theta)`` the Fisher information is
``J^T diag(1/lambda) J``; its inverse gives the covariance of all parameters
(instrument, cluster compositions, scales), and a Newton step with it as the
Hessian is Fisher scoring.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from napari_xrfquant.instrument_parameters import parameter


class FitModel(Protocol):
    """What the Fisher machinery needs of a fit (:class:`.fit.FitModel` is one)."""

    names: list[str]
    observed: torch.Tensor
    free_rows: torch.Tensor

    def expected(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor: ...

    def nll(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor: ...

    def feasible(self, values: torch.Tensor) -> torch.Tensor: ...


def jacobian(
    model: FitModel,
    values: torch.Tensor,
    logits: torch.Tensor,
    keep: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``d lambda / d (instrument values, cluster logits, log scales)`` and ``lambda``.

    Columns by forward differences in float64: one simulation per instrument
    parameter, one per element for all clusters at once (a cluster's spectrum
    depends on its own composition only, so column ``(e, g)`` is that
    simulation's change of cluster g), and the scales analytically
    (d lambda / d log s = lambda). Rows: every fitted channel of every group.
    ``keep``: the instrument parameters (indices) given columns; default all.
    """
    with torch.no_grad():
        lam = model.expected(values, logits)
        columns: list[torch.Tensor] = []
        for i, name in enumerate(model.names):
            if keep is not None and i not in keep:
                continue
            # one-sided: half the simulations of central differences (on a tube set-up
            # 40 of them, 40 s, for every scoring step and the sigma); the error, a
            # thousandth of the column where the step is a thousandth of the scale,
            # moves neither the steps nor the sigma
            h = 1e-3 * parameter(name).scale
            up = values.clone()
            up[i] += h
            columns.append((model.expected(up, logits) - lam) / h)
        for e in range(logits.shape[1] if len(model.free_rows) else 0):
            up = logits.clone()
            up[:, e] += 1e-4
            d = (model.expected(values, up) - lam) / 1e-4
            for row in model.free_rows.tolist():
                col = torch.zeros_like(lam)
                col[row] = d[row]
                columns.append(col)
        for row in range(lam.shape[0]):
            col = torch.zeros_like(lam)
            col[row] = lam[row]
            columns.append(col)
        matrix = torch.stack([c.reshape(-1) for c in columns], dim=1)
    return matrix, lam.reshape(-1)


def fisher_information(jac: torch.Tensor, lam: torch.Tensor) -> np.ndarray:
    """``J^T diag(1/lambda) J``."""
    weighted = jac / torch.sqrt(lam.clamp_min(1e-300))[:, None]
    return (weighted.T @ weighted).numpy()


def fisher_scoring(
    model: FitModel,
    values: torch.Tensor,
    logits: torch.Tensor,
    steps: int,
    deadline: float = math.inf,
    step_seconds: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton steps with the Fisher information as the Hessian (Poisson Gauss-Newton).

    Near the optimum they converge where first-order methods crawl along the
    poorly conditioned valleys (a gain is known to 1e-6, the optic's low edge to
    a few per cent). A step that does not lower the deviance is halved. No step
    starts that would end after ``deadline`` (``time.perf_counter()``), judged by
    the time the last one took, or for the first by ``step_seconds`` (an estimate:
    a Jacobian is 40 simulations on a tube set-up, a step past the budget).
    """
    from scipy.linalg import pinvh

    n_values, n_logit = len(model.names), logits.numel()
    observed = model.observed.reshape(-1)
    with torch.no_grad():
        current = float(model.nll(values, logits))
    last = step_seconds
    for _ in range(steps):
        began = time.perf_counter()
        if began + last > deadline:
            break
        jac, lam = jacobian(model, values, logits)
        score = (jac.T @ (observed / lam.clamp_min(1e-300) - 1.0)).numpy()
        step = pinvh(fisher_information(jac, lam)) @ score
        d_values = torch.as_tensor(step[:n_values])
        # the Jacobian holds the logits element-major; they are stored by cluster
        d_logits = torch.zeros_like(logits)
        if n_logit:
            block = step[n_values : n_values + n_logit]
            d_logits = torch.as_tensor(block).reshape(logits.shape[1], logits.shape[0]).T
        trial_values, trial_logits, trial = values, logits, math.inf
        for _halving in range(8):
            trial_values, trial_logits = model.feasible(values + d_values), logits + d_logits
            with torch.no_grad():
                trial = float(model.nll(trial_values, trial_logits))
            if math.isfinite(trial) and trial <= current:
                break
            d_values, d_logits = d_values / 2, d_logits / 2
        else:
            break  # no step lowers the deviance: at the optimum
        improvement = current - trial
        values, logits, current = trial_values, trial_logits, trial
        last = time.perf_counter() - began
        if improvement <= 1e-14:
            break
    return values, logits


def fisher_sigma(
    model: FitModel,
    values: torch.Tensor,
    logits: torch.Tensor,
    keep: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """1-sigma and correlations of the instrument values from the Fisher information.

    ``keep``: the parameters (indices) whose sigma is estimated; the others are
    held at their values, as a fit treats a parameter at a limit, and get NaN.
    """
    from scipy.linalg import pinvh

    n = len(model.names)
    kept = list(range(n)) if keep is None else sorted(keep)
    sigma, correlation = np.full(n, np.nan), np.full((n, n), np.nan)
    if not kept:
        return sigma, correlation
    jac, lam = jacobian(model, values, logits, kept)
    m = len(kept)
    covariance = pinvh(fisher_information(jac, lam))[:m, :m]
    s = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    scale = np.where(s > 0, s, 1.0)
    sigma[kept] = s
    correlation[np.ix_(kept, kept)] = covariance / np.outer(scale, scale)
    return sigma, correlation


def jacobian_seconds(
    model: FitModel, values: torch.Tensor, logits: torch.Tensor, n_elements: int
) -> float:
    """About how long one Jacobian takes: one simulation at moved parameters, timed,
    times the simulations a Jacobian makes (:func:`jacobian`)."""
    moved = values.clone()
    if len(moved):
        moved[0] = moved[0] + 1e-3 * parameter(model.names[0]).scale
    began = time.perf_counter()
    with torch.no_grad():
        model.expected(moved, logits)
    one = time.perf_counter() - began
    columns = len(model.names) + (n_elements if len(model.free_rows) else 0) + 1
    return one * columns
