"""``calibrate()``: the instrument learned from the measurement itself.

A maximum-likelihood (Poisson) fit of the global instrument parameters together
with the compositions of the pixel groups (:mod:`.groups`): standards keep their
certified compositions, clusters get compositions on the simplex (softmax
logits). Every group spectrum is ``s_g * f(W_g; theta)`` with ``f`` the
differentiable simulator's spectrum and the scale ``s_g`` profiled out
(``sum x / sum f`` over the fitted channels). Adam runs first (robust far from
the optimum), L-BFGS finishes. The 1-sigma of each parameter comes from the
inverse Fisher information ``J^T diag(1/lambda) J`` of all parameters (instrument,
compositions, scales), so correlations with the nuisance parameters are taken
into account; a parameter whose sigma is above its scale (:data:`PARAMETERS`)
is reported as not pinned down by the data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from napari_xrfquant.calibration.diagnosis import (
    MISFIT_QUALITY,
    ResidualRange,
    diagnose_misfit,
    misfit_warning,
    parameter_flags,
)
from napari_xrfquant.calibration.fisher import fisher_scoring, fisher_sigma, jacobian_seconds
from napari_xrfquant.calibration.groups import PixelGroups
from napari_xrfquant.calibration.result import CalibrationResult
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.fit_quality import fit_channels, poisson_deviance
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.instrument_parameters import (
    FreeVector,
    clamp_natural,
    default_free,
    expand_free,
    parameter,
    with_values,
)
from napari_xrfquant.io.calibration import on_energy_axis, start_instrument
from napari_xrfquant.jobs import Progress, drive

#: Deviance gained by a whole L-BFGS step below which the fit is left to Fisher scoring.
DEVIANCE_TOLERANCE = 0.01
#: Floor of composition fractions when logits are started from a model's guess.
MIN_START_FRACTION = 1e-3


class FitModel:
    """The group spectra as a function of instrument values and composition logits."""

    def __init__(
        self,
        elements: Sequence[str],
        instrument: Instrument,
        groups: PixelGroups,
        fit: np.ndarray,
        names: list[str],
    ) -> None:
        from napari_xrfquant.physics import XRFSimulator

        self.simulator = XRFSimulator(list(elements), instrument=instrument, dtype=torch.float64)
        self.names = names
        self.vector = FreeVector(instrument, names, torch.float64)
        self.observed = torch.as_tensor(groups.counts[:, fit], dtype=torch.float64)
        self.fit = torch.as_tensor(fit)
        fixed = groups.fixed
        self.fixed_rows = torch.as_tensor(np.nonzero(fixed)[0])
        self.free_rows = torch.as_tensor(np.nonzero(~fixed)[0])
        wt = np.nan_to_num(groups.wt_percent[fixed], nan=0.0)
        self.fixed_fractions = torch.as_tensor(
            wt / wt.sum(axis=1, keepdims=True) if len(wt) else wt, dtype=torch.float64
        )
        self.n_groups, self.n_elements = groups.counts.shape[0], len(elements)

    def fractions(self, logits: torch.Tensor) -> torch.Tensor:
        w = torch.zeros((self.n_groups, self.n_elements), dtype=torch.float64)
        w = w.index_copy(0, self.fixed_rows, self.fixed_fractions) if len(self.fixed_rows) else w
        if len(self.free_rows):
            w = w.index_copy(0, self.free_rows, torch.softmax(logits, dim=1))
        return w

    def feasible(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` moved into their ranges (a Newton step in natural units may
        leave them: a monotone optic's drop below 0, a continuum power of 42): the
        transform's domain, then the fit's range (:meth:`.FreeVector.natural_range`)."""
        kinds = self.vector.kinds
        inside = torch.stack([clamp_natural(k, values[i]) for i, k in enumerate(kinds)])
        low, high = self.vector.natural_range()
        return torch.minimum(torch.maximum(inside, low), high)

    def spectra(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``(G, C)`` expected counts on every channel, each group scaled to its
        measured counts over the fitted channels."""
        overrides = {name: values[i] for i, name in enumerate(self.names)}
        f = self.simulator(self.fractions(logits), overrides).clamp_min(1e-300)
        scale = self.observed.sum(dim=1, keepdim=True) / f[:, self.fit].sum(dim=1, keepdim=True)
        return scale * f

    def expected(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``(G, F)`` expected counts on the fitted channels."""
        return self.spectra(values, logits)[:, self.fit]

    def nll(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Poisson deviance per count: the likelihood up to constants, of order 1."""
        lam = self.expected(values, logits)
        return poisson_deviance(self.observed, lam).sum() / self.observed.sum()


def _fit_quality(observed: torch.Tensor, expected: torch.Tensor, n_parameters: int) -> np.ndarray:
    from napari_xrfquant.inference.fit_quality import poisson_fit_quality

    with torch.no_grad():
        return poisson_fit_quality(observed, expected, n_parameters).numpy()


def iter_calibrate(
    groups: PixelGroups,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    *,
    free: Sequence[str] | None = None,
    exclude_keV: Sequence[tuple[float, float]] = (),
    start_wt_percent: np.ndarray | None = None,
    composition_steps: int = 60,
    lbfgs_steps: int = 100,
    iterations_per_step: int = 15,
    scoring_steps: int = 10,
    max_seconds: float = 100.0,
    started: float | None = None,
) -> Generator[Progress, None, CalibrationResult]:
    """:func:`calibrate` as a generator of :class:`Progress` (``stage="calibrate"``).

    Closing the generator between steps cancels the fit. ``free`` defaults to
    :func:`~napari_xrfquant.instrument_parameters.default_free` of ``instrument``. The fit quality
    "before" is that of ``instrument`` exactly as it is (the groups'
    compositions fitted), so a set-up the data agree with scores about 1 before
    and after. The L-BFGS phase stops when a whole step brings no progress,
    after ``lbfgs_steps`` steps of ``iterations_per_step`` iterations, or when
    what is left of ``max_seconds`` (counted from ``started``, a
    ``time.perf_counter()`` value; default: now) is needed for the
    Fisher-scoring steps that finish the fit and the sigma.
    """
    started = time.perf_counter() if started is None else started
    deadline = started + max_seconds
    names = expand_free(default_free(instrument) if free is None else free, instrument)
    energy = np.asarray(energy_keV, dtype=np.float64)
    if groups.counts.shape[1] != energy.size:
        raise XRFQuantError(
            f"the groups have {groups.counts.shape[1]} channels, the energy axis {energy.size}"
        )
    start = start_instrument(instrument, energy, names)
    fit = fit_channels(energy, start.max_beam_energy_keV, exclude_keV)
    model = FitModel(elements, start, groups, fit, names)
    vector = model.vector
    natural = vector.natural
    u = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    z = _start_logits(groups, start_wt_percent, len(elements)).requires_grad_(True)
    start_values = natural(u).detach()
    # "before" is the set-up as it is: without the optic the fit adds to start from
    as_is = on_energy_axis(instrument, energy)
    before_model, before_values = model, start_values
    if as_is != start:
        before_model = FitModel(elements, as_is, groups, fit, [])
        before_values = torch.zeros(0, dtype=torch.float64)
    total_steps = composition_steps + lbfgs_steps
    # 1. the clusters' compositions at the start (its response stays cached): Adam
    # is robust far from them, L-BFGS then converges, so "before" is the set-up's best
    adam = torch.optim.Adam([z], lr=0.1)
    for step in range(composition_steps if len(model.free_rows) else 0):
        adam.zero_grad()
        before_model.nll(before_values, z).backward()
        adam.step()
        yield Progress(step + 1, total_steps, "calibrate")
    if len(model.free_rows):
        yield from _converge_compositions(before_model, before_values, z, deadline)
    with torch.no_grad():
        # every channel, for the figure: drawing it must not build two more simulators
        # (a minute each on a tube set-up, outside the budget and on the dock's UI thread)
        spectra_before = before_model.spectra(before_values, z)
        before_expected = spectra_before[:, model.fit]
    # what finishing costs: the scoring steps and the sigma, a Jacobian each
    one_jacobian = jacobian_seconds(model, start_values, z.detach(), len(elements))
    reserve = 3.0 * one_jacobian
    # 2. instrument and compositions together
    lbfgs = torch.optim.LBFGS(
        [u, z],
        lr=1.0,
        max_iter=iterations_per_step,
        history_size=50,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        value = model.nll(natural(u), z)
        value.backward()
        return value

    previous = math.inf
    # nll is the deviance per count: a step that lowers the deviance by less than 0.01
    # (a hundredth of what moves a parameter by one sigma) is no progress
    converged = DEVIANCE_TOLERANCE / float(model.observed.sum())
    steps_run = composition_steps if len(model.free_rows) else 0
    last = 0.0
    joint_began = time.perf_counter()
    for step in range(lbfgs_steps):
        began = time.perf_counter()
        if began + last + reserve > deadline:
            break  # the budget is spent but for finishing; sigma comes from where it stops
        # a few L-BFGS iterations between yields keep Cancel within about a second
        value = float(lbfgs.step(closure).detach())
        last = time.perf_counter() - began
        steps_run += 1
        yield Progress(composition_steps + step + 1, total_steps, "calibrate")
        if previous - value <= converged:
            break  # a whole step gained next to nothing: Fisher scoring finishes
        previous = value
    yield Progress(total_steps, total_steps, "calibrate")
    with torch.no_grad():
        values, logits = fisher_scoring(model, natural(u), z.detach().clone(), scoring_steps,
                                        deadline - one_jacobian, step_seconds=one_jacobian)
        spectra_after = model.spectra(values, logits)
        after_expected = spectra_after[:, model.fit]
        fitted_wt = 100.0 * model.fractions(logits).numpy()
    fitted = {n: float(values[i]) for i, n in enumerate(names)}
    calibrated = with_values(start, fitted)
    energy_fit = calibrated.energy_axis_keV()[fit]
    flags = parameter_flags(calibrated, start, fitted, (float(energy_fit[0]),
                                                        float(energy_fit[-1])))
    n_free = len(elements)
    quality_after = _fit_quality(model.observed, after_expected, n_free)
    deviance_after = poisson_deviance(model.observed, after_expected)
    pooled = float(deviance_after.sum() / (deviance_after.numpy() / quality_after).sum())
    keep = [i for i, n in enumerate(names) if n not in flags]
    sigma, correlation = fisher_sigma(model, values, logits, keep)
    sigma_scale = math.sqrt(max(pooled, 1.0))  # quasi-likelihood: misfit widens sigma
    sigma = sigma * sigma_scale
    groups.wt_percent = np.where(groups.fixed[:, None], groups.wt_percent, fitted_wt)
    budget_note = None
    if len(names) and torch.equal(values, start_values):  # the budget ended before any step
        budget_note = unmoved_warning(max_seconds, joint_began - started, one_jacobian)
    misfit: list[ResidualRange] = []
    if pooled > MISFIT_QUALITY:
        misfit = diagnose_misfit(energy_fit, model.observed.numpy(), after_expected.numpy(),
                                 elements, calibrated, names)
    return CalibrationResult(
        instrument=calibrated,
        start=as_is,
        values=fitted,
        sigma={n: float(sigma[i]) for i, n in enumerate(names)},
        correlation=correlation,
        names=names,
        not_pinned=[n for i, n in enumerate(names)
                    if n in flags or not sigma[i] <= parameter(n).scale],
        groups=groups,
        fit_quality_before=_fit_quality(model.observed, before_expected, n_free),
        fit_quality_after=quality_after,
        deviance_before=float(poisson_deviance(model.observed, before_expected).sum()),
        deviance_after=float(deviance_after.sum()),
        iterations=steps_run,
        seconds=time.perf_counter() - started,
        fit_channels=fit,
        flags=flags,
        sigma_scale=sigma_scale,
        misfit=misfit,
        warning="; ".join(w for w in (budget_note, misfit_warning(pooled, misfit)) if w) or None,
        fit_quality=pooled,
        spectra_before=spectra_before.numpy(),
        spectra_after=spectra_after.numpy(),
    )


def unmoved_warning(max_seconds: float, start_seconds: float, sigma_seconds: float) -> str:
    """The warning of a calibration whose budget ended before it moved the instrument:
    what took the time, so that the user gives it more rather than blaming the set-up."""
    return (f"the time budget ({max_seconds:g} s) ended before the instrument was fitted, so "
            f"'after' is the start: {start_seconds:.0f} s went to building the simulator and "
            f"the start, and the 1-sigma takes about {sigma_seconds:.0f} s; give it more time "
            "(--max-seconds, the dock's Fit time)")


def _converge_compositions(
    model: FitModel, values: torch.Tensor, logits: torch.Tensor, deadline: float,
    steps: int = 10,
) -> Generator[Progress, None, None]:
    """L-BFGS on the clusters' composition logits alone (``logits`` in place)."""
    lbfgs = torch.optim.LBFGS([logits], lr=1.0, max_iter=20, history_size=20,
                              tolerance_grad=1e-10, tolerance_change=1e-12,
                              line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        value = model.nll(values, logits)
        value.backward()
        return value

    previous = math.inf
    for step in range(steps):
        value = float(lbfgs.step(closure).detach())
        yield Progress(step + 1, steps, "compositions")
        if previous - value <= 1e-10 or time.perf_counter() > deadline:
            break
        previous = value


def _start_logits(groups: PixelGroups, start: np.ndarray | None, n_elements: int) -> torch.Tensor:
    free = ~groups.fixed
    if start is None:
        return torch.zeros((int(free.sum()), n_elements), dtype=torch.float64)
    fractions = np.clip(np.asarray(start, dtype=np.float64)[free] / 100.0, MIN_START_FRACTION, 1)
    return torch.as_tensor(np.log(fractions), dtype=torch.float64)


def calibrate(
    groups: PixelGroups,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    *,
    free: Sequence[str] | None = None,
    exclude_keV: Sequence[tuple[float, float]] = (),
    start_wt_percent: np.ndarray | None = None,
    max_seconds: float = 100.0,
    progress: Callable[[Progress], Any] | None = None,
) -> CalibrationResult:
    """Fit the instrument (and the groups' compositions) to grouped spectra.

    Parameters
    ----------
    groups
        Pixel groups (:func:`~napari_xrfquant.calibration.groups.group_pixels`):
        standards with known compositions, clusters with unknown ones.
    energy_keV
        The cube's channel energies; they set the channel count and the start
        of the energy calibration.
    elements
        The elements of the compositions.
    instrument
        The instrument to start from (an optic is added when ``free`` holds one).
    free
        Instrument parameters to fit (names of :data:`PARAMETERS`, a knots
        optic's ``optic_drop_<i>``, or ``"optic"`` for all of the optic's);
        default :func:`~napari_xrfquant.instrument_parameters.default_free` of ``instrument``.
    exclude_keV
        Energy ranges left out of the fit (e.g. lines of the set-up itself).
    start_wt_percent
        ``(G, E)`` starting compositions of the clusters (e.g. a model's), or None.
    max_seconds
        Time budget of the whole fit (:func:`iter_calibrate`); sigma comes
        from the curvature where the fit stops.
    progress
        Called with every :class:`~napari_xrfquant.jobs.Progress`.

    Returns
    -------
    CalibrationResult
    """
    generator = iter_calibrate(
        groups,
        energy_keV,
        elements,
        instrument,
        free=free,
        exclude_keV=exclude_keV,
        start_wt_percent=start_wt_percent,
        max_seconds=max_seconds,
    )
    return drive(generator, progress)
