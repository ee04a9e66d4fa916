"""Non-negative Poisson maximum-likelihood amounts of fixed spectral shapes.

The linear core of the physics fit (:mod:`.physics_fit`), of the detector's
refinement (:mod:`.physics_setup`) and of the element search
(:mod:`.element_search`): counts ``x`` ``(N, C)`` explained as ``lambda = a M``
with ``a >= 0``, a weighted least-squares start (PyMca's fast linear fit) and
Fisher-scoring steps with step halving until each spectrum converges, batched
over spectra.

The steps are projected Newton steps (Bertsekas 1982): a component at its
bound 0 whose gradient points below it is held there for the step, and the
step is solved for the others. An unprojected step asks the held component to
go negative and the others to make up for it; clipping it at 0 then leaves
them overshooting, step halving cannot repair that, and the fit stops far from
the optimum (on the AXO map's sum spectrum at twice the optimum's deviance).
A projected step can still need 1/16 of its length or less to lower the
deviance (bright lines over a faint background, the least-squares start far
off): with 3 halvings such a spectrum never left its start.
"""

from __future__ import annotations

import numpy as np
import torch

#: Most Fisher-scoring steps after the start (a spectrum stops once converged:
#: the AXO map's and the Laguna Salinas scan's pixels after 4 to 8 steps,
#: overlapping lines over a faint background after up to 10).
SCORING_STEPS = 12
#: Spectra from which a batch iterates in float32 (see :func:`fit_amounts`).
FLOAT32_FROM = 256
#: Halvings of a Fisher-scoring step that raises a spectrum's deviance (down to
#: 1e-6 of the step: the projected step is a descent direction, so some short
#: step lowers it; 3 halvings left the AXO map's sum spectrum at 1.2x its optimum).
HALVINGS = 20
#: A rise of the deviance this small is no rise (beyond the rounding allowance).
MIN_CHANGE = 1e-9
#: A spectrum whose Fisher-scoring step promises to take less than this off its
#: deviance takes that step and no more: the step is then under 0.1 sigma of its
#: amounts (s' F s = g' F^-1 g) and the next one far smaller.
CONVERGED = 1e-2
#: Floor of an expected count (a channel no component reaches).
MIN_EXPECTED = 1e-9
#: An amount below this share of its spectrum's counts counts as at its bound 0
#: (the epsilon-active set of the projected Newton step).
AT_BOUND = 1e-9


def _component_pairs(m: torch.Tensor, spectra: int) -> torch.Tensor | None:
    """``(C, K * K)``: every product ``m_i[c] m_j[c]`` of two components' shapes, so
    that the Fisher information of all spectra is one matrix product
    (:func:`_fisher`); None for fewer spectra than components (an element search's
    sum spectrum against ~80 candidates: the pairs would outweigh the spectra)."""
    k, channels = m.shape
    if spectra <= k:
        return None
    return (m[:, None, :] * m[None, :, :]).reshape(k * k, channels).T.contiguous()


def _fisher(
    inverse_lambda: torch.Tensor, m: torch.Tensor, pairs: torch.Tensor | None
) -> torch.Tensor:
    """``(N, K, K)`` = ``M diag(1/lambda_n) M^T`` for every spectrum: with the shapes'
    pairwise products (:func:`_component_pairs`) one ``(N, C) @ (C, K * K)`` product
    that reads the weights once (a product per component, with an ``(N, C)``
    temporary each, was 10x slower), else one batched product."""
    if pairs is None:
        return (m[None, :, :] * inverse_lambda[:, None, :]) @ m.T
    return (inverse_lambda @ pairs).reshape(-1, m.shape[0], m.shape[0])


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
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson ML non-negative amounts of ``shapes`` ``(K, C)`` in ``counts`` ``(N, C)``.

    ``steps``: the most Fisher-scoring steps; each spectrum stops once a step
    promises to take less than :data:`CONVERGED` off its deviance.
    ``start`` ``(N, K)``: amounts to start from (default: the weighted
    least-squares fit). ``device``: where the steps run (a torch device name).

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
    m64 = torch.as_tensor(np.asarray(shapes, dtype=np.float64), device=device)  # (K, C)
    # many pixel spectra iterate in float32 (half the memory traffic of these
    # memory-bound steps); one rich spectrum (a map's sum, 1e8 counts) needs float64
    # for its deviance. The small K x K systems and the answer are float64 either way.
    work = torch.float32 if x64.shape[0] >= FLOAT32_FROM else torch.float64
    x, m = torch.as_tensor(x64, dtype=work, device=device), m64.to(work)
    k = m.shape[0]
    pairs = _component_pairs(m, x.shape[0])
    eye = torch.eye(k, dtype=torch.float64, device=device) * 1e-12

    def solve(fisher: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(fisher.double() + eye, vector.double()).to(work)

    if start is None:
        # least squares with Poisson weights 1 / max(x, 1): PyMca's fast fit
        weight = x.clamp_min(1.0).reciprocal()
        a = solve(_fisher(weight, m, pairs), (weight * x) @ m.T).clamp_min(0.0)
        # no component left at exactly 0 for the first step: it may belong
        a = a + 1e-3 * x.sum(dim=1, keepdim=True) / k
    else:
        a = torch.as_tensor(np.asarray(start), dtype=work, device=device).clamp_min(0.0)
    # the deviance's x log x and sum x do not change: computed once (xlogy is slow)
    x_log_x, x_total = torch.xlogy(x, x).sum(dim=1), x.sum(dim=1)

    def deviance(lam: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The Poisson deviance of the spectra ``rows`` at their expected ``lam``."""
        return 2.0 * (x_log_x[rows] - (x[rows] * torch.log(lam)).sum(dim=1) - x_total[rows]
                      + lam.sum(dim=1))

    every = torch.arange(x.shape[0], device=device)
    lam = (a @ m).clamp_min(MIN_EXPECTED)
    before = deviance(lam, every)
    # a rise no larger than the deviance's rounding (float32: up to 1e-2 on a pixel of
    # 3e3 counts) is no rise: it would send the step through every halving
    noise = MIN_CHANGE + 64.0 * torch.finfo(work).eps * (x_log_x.abs() + x_total)
    at_bound = AT_BOUND * x_total.clamp_min(1.0)[:, None]
    live = every  # the spectra not yet converged
    for _ in range(steps):
        inverse = lam[live].reciprocal()
        gradient = (x[live] * inverse) @ m.T - m.sum(dim=1)
        free = (a[live] > at_bound[live]) | (gradient > 0)
        step = solve(*_projected(_fisher(inverse, m, pairs), gradient, free))
        trial = (a[live] + step).clamp_min(0.0)
        trial_lam = (trial @ m).clamp_min(MIN_EXPECTED)
        after = deviance(trial_lam, live)
        limit = before[live] + noise[live]  # the most deviance a step may end with
        scale = 1.0
        for _ in range(HALVINGS):  # halve where the step raises the deviance
            worse = torch.nonzero(after > limit).reshape(-1)
            if worse.numel() == 0:
                break
            # only those spectra again: the whole batch again, up to four times a
            # step, was most of the fit's time after the Fisher information
            scale *= 0.5
            trial[worse] = (a[live[worse]] + scale * step[worse]).clamp_min(0.0)
            trial_lam[worse] = (trial[worse] @ m).clamp_min(MIN_EXPECTED)
            after[worse] = deviance(trial_lam[worse], live[worse])
        # the spectra no halving made better stay where they were
        better = after <= limit
        moved = live[better]
        a[moved], lam[moved], before[moved] = trial[better], trial_lam[better], after[better]
        # the deviance the full step promised to take off (g' F^-1 g, the log-likelihood's
        # squared Newton decrement): a spectrum that had less to gain is at its optimum
        # after this step
        live = live[(gradient * step).sum(dim=1) > CONVERGED]
        if live.numel() == 0:
            break
    # a component none of the channels shows (all-zero shape) was never moved from
    # its start: it has no amount to report
    a = torch.where(m64.abs().sum(dim=1) > 0, a.double(), 0.0)
    lam = (a @ m64).clamp_min(MIN_EXPECTED)
    fisher = _fisher(lam.reciprocal(), m64, _component_pairs(m64, len(lam))) + eye
    # a batched inverse is 10x faster than the pseudo-inverse; the pseudo-inverse is
    # kept for the spectra whose information is singular (a component none of them shows)
    covariance, info = torch.linalg.inv_ex(fisher)
    singular = (info != 0) | ~torch.isfinite(covariance).flatten(1).all(dim=1)
    if bool(singular.any()):
        covariance[singular] = torch.linalg.pinv(fisher[singular])
    return a.cpu().numpy(), covariance.cpu().numpy(), lam.cpu().numpy()
