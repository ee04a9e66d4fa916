"""Non-negative Poisson maximum-likelihood amounts of fixed spectral shapes.

The linear core of the physics fit (:mod:`.physics_fit`), of the detector's
refinement (:mod:`.physics_setup`) and of the element search
(:mod:`.element_search`): counts ``x`` ``(N, C)`` explained as ``lambda = a M``
with ``a >= 0``, a weighted least-squares start (PyMca's fast linear fit) and
Fisher-scoring steps with step halving, batched over spectra.

The steps are projected Newton steps (Bertsekas 1982): a component at its
bound 0 whose gradient points below it is held there for the step, and the
step is solved for the others. An unprojected step asks the held component to
go negative and the others to make up for it; clipping it at 0 then leaves
them overshooting, step halving cannot repair that, and the fit stops far from
the optimum (on the AXO map's sum spectrum at twice the optimum's deviance).
"""

from __future__ import annotations

import numpy as np
import torch

#: Fisher-scoring steps after the least-squares start.
SCORING_STEPS = 5
#: Spectra from which a batch iterates in float32 (see :func:`fit_amounts`).
FLOAT32_FROM = 256
#: Floor of an expected count (a channel no component reaches).
MIN_EXPECTED = 1e-9
#: An amount below this share of its spectrum's counts counts as at its bound 0
#: (the epsilon-active set of the projected Newton step).
AT_BOUND = 1e-9


def _fisher(inverse_lambda: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``(N, K, K)`` = ``M diag(1/lambda_n) M^T`` for every spectrum: for a batch one
    ``(N, C) @ (C, K)`` product per component (an ``(N, K, C)`` temporary is hundreds
    of MB of memory traffic; these are 1.6x faster), for a few spectra one batched
    product (K small products cost more in calls than in arithmetic)."""
    if inverse_lambda.shape[0] < FLOAT32_FROM:
        return (m[None, :, :] * inverse_lambda[:, None, :]) @ m.T
    return torch.stack([(inverse_lambda * row) @ m.T for row in m], dim=1)


def _projected(
    fisher: torch.Tensor, gradient: torch.Tensor, free: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Newton system ``(N, K, K)``, ``(N, K)`` with the components not ``free``
    held: their rows and columns replaced by the identity, their gradient by 0, so
    their step is 0 and the others' is the Newton step of the free ones alone."""
    pair = free[:, :, None] & free[:, None, :]
    held = torch.diag_embed((~free).to(fisher.dtype))
    return torch.where(pair, fisher, torch.zeros_like(fisher)) + held, gradient * free


def fit_amounts(
    counts: np.ndarray,
    shapes: np.ndarray,
    steps: int = SCORING_STEPS,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson ML non-negative amounts of ``shapes`` ``(K, C)`` in ``counts`` ``(N, C)``.

    ``start`` ``(N, K)``: amounts to start from (default: the weighted
    least-squares fit).

    Returns
    -------
    amounts
        ``(N, K)``.
    covariance
        ``(N, K, K)`` their covariance (the inverse Fisher information).
    expected
        ``(N, C)`` the fitted spectra.
    """
    x64 = np.asarray(counts, dtype=np.float64)
    m64 = torch.as_tensor(np.asarray(shapes, dtype=np.float64))  # (K, C)
    # many pixel spectra iterate in float32 (half the memory traffic of these
    # memory-bound steps); one rich spectrum (a map's sum, 1e8 counts) needs float64
    # for its deviance. The small K x K systems and the answer are float64 either way.
    work = torch.float32 if x64.shape[0] >= FLOAT32_FROM else torch.float64
    x, m = torch.as_tensor(x64, dtype=work), m64.to(work)
    k = m.shape[0]
    eye = torch.eye(k, dtype=torch.float64) * 1e-12

    def solve(fisher: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(fisher.double() + eye, vector.double()).to(work)

    if start is None:
        # least squares with Poisson weights 1 / max(x, 1): PyMca's fast fit
        weight = 1.0 / x.clamp_min(1.0)
        a = solve(_fisher(weight, m), (weight * x) @ m.T).clamp_min(0.0)
        # no component left at exactly 0 for the first step: it may belong
        a = a + 1e-3 * x.sum(dim=1, keepdim=True) / k
    else:
        a = torch.as_tensor(np.asarray(start), dtype=work).clamp_min(0.0)
    # the deviance's x log x and sum x do not change: computed once (xlogy is slow)
    x_log_x, x_total = torch.xlogy(x, x).sum(dim=1), x.sum(dim=1)

    def deviance(lam: torch.Tensor) -> torch.Tensor:
        return 2.0 * (x_log_x - (x * torch.log(lam)).sum(dim=1) - x_total + lam.sum(dim=1))

    lam = (a @ m).clamp_min(MIN_EXPECTED)
    before = deviance(lam)
    at_bound = AT_BOUND * x_total.clamp_min(1.0)[:, None]
    for _ in range(steps):
        inverse = 1.0 / lam
        gradient = (x * inverse - 1.0) @ m.T
        step = solve(*_projected(_fisher(inverse, m), gradient, (a > at_bound) | (gradient > 0)))
        scale = torch.ones_like(before)
        for _ in range(4):  # halve where the step raises the deviance
            trial = (a + scale[:, None] * step).clamp_min(0.0)
            trial_lam = (trial @ m).clamp_min(MIN_EXPECTED)
            after = deviance(trial_lam)
            worse = after > before + 1e-9
            if not bool(worse.any()):
                break
            scale = torch.where(worse, 0.5 * scale, scale)
        else:  # the last halving was not tried: the spectra it concerns stay where they were
            keep = worse[:, None]
            trial = torch.where(keep, a, trial)
            trial_lam = torch.where(keep, lam, trial_lam)
            after = torch.where(worse, before, after)
        a, lam, before = trial, trial_lam, after
    a = a.double()
    lam = (a @ m64).clamp_min(MIN_EXPECTED)
    covariance = torch.linalg.pinv(_fisher(1.0 / lam, m64) + eye)
    return a.numpy(), covariance.numpy(), lam.numpy()
