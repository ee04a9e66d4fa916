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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from napari_xrfquant.calibration.fisher import fisher_scoring, fisher_sigma
from napari_xrfquant.calibration.groups import PixelGroups
from napari_xrfquant.calibration.parameters import (
    DEFAULT_FREE,
    FreeVector,
    clamp_natural,
    expand_free,
    parameter,
    parameter_values,
    start_instrument,
    with_values,
)
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.fit_quality import poisson_deviance
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.progress import Progress, drive

#: Lowest energy fitted: below it the window and the air leave almost nothing.
MIN_FIT_KEV = 1.0
#: Floor of composition fractions when logits are started from a model's guess.
MIN_START_FRACTION = 1e-3


@dataclass
class CalibrationResult:
    """What :func:`calibrate` found.

    Attributes
    ----------
    instrument
        The calibrated instrument (the start with the fitted values).
    start
        The instrument the fit started from.
    values, sigma
        Fitted value and 1-sigma of each free parameter (natural units).
    correlation
        ``(P, P)`` correlations of the free parameters, in ``names`` order.
    names
        The free parameters, in order.
    not_pinned
        Free parameters whose sigma exceeds their scale: the data did not fix them.
    groups
        The pixel groups fitted; ``wt_percent`` holds the fitted compositions.
    fit_quality_before, fit_quality_after
        ``(G,)`` fit quality of every group spectrum with the start and the
        calibrated instrument (about 1 = explained).
    deviance_before, deviance_after
        Poisson deviance of all group spectra together.
    iterations, seconds
        Work done.
    """

    instrument: Instrument
    start: Instrument
    values: dict[str, float]
    sigma: dict[str, float]
    correlation: np.ndarray
    names: list[str]
    not_pinned: list[str]
    groups: PixelGroups
    fit_quality_before: np.ndarray
    fit_quality_after: np.ndarray
    deviance_before: float
    deviance_after: float
    iterations: int = 0
    seconds: float = 0.0
    fit_channels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``calibration.json``."""
        start_values = parameter_values(self.start, self.names)
        return {
            "parameters": {
                name: {
                    "value": self.values[name],
                    "sigma": self.sigma[name],
                    "start": start_values[name],
                    "instrument_key": parameter(name).dotted,
                    "pinned": name not in self.not_pinned,
                }
                for name in self.names
            },
            "correlation": {"names": self.names, "matrix": np.round(self.correlation, 4).tolist()},
            "not_pinned": self.not_pinned,
            "groups": [
                {
                    "name": name,
                    "standard": bool(fixed),
                    "pixels": int(n),
                    "counts": float(total),
                    "wt_percent": None if np.isnan(wt).any() else [float(v) for v in wt],
                    "fit_quality_before": float(before),
                    "fit_quality_after": float(after),
                }
                for name, fixed, n, total, wt, before, after in zip(
                    self.groups.names,
                    self.groups.fixed,
                    self.groups.n_pixels,
                    self.groups.counts.sum(axis=1),
                    self.groups.wt_percent,
                    self.fit_quality_before,
                    self.fit_quality_after,
                    strict=True,
                )
            ],
            "deviance_before": self.deviance_before,
            "deviance_after": self.deviance_after,
            "iterations": self.iterations,
            "seconds": self.seconds,
        }


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
        self.kinds = [parameter(n, instrument).transform for n in names]
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
        leave them: a monotone optic's drop below 0)."""
        return torch.stack([clamp_natural(k, values[i]) for i, k in enumerate(self.kinds)])

    def shapes(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        overrides = {name: values[i] for i, name in enumerate(self.names)}
        return self.simulator(self.fractions(logits), overrides)[:, self.fit]

    def expected(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        f = self.shapes(values, logits).clamp_min(1e-300)
        scale = self.observed.sum(dim=1, keepdim=True) / f.sum(dim=1, keepdim=True)
        return scale * f

    def nll(self, values: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Poisson deviance per count: the likelihood up to constants, of order 1."""
        lam = self.expected(values, logits)
        return poisson_deviance(self.observed, lam).sum() / self.observed.sum()


def _fit_quality(observed: torch.Tensor, expected: torch.Tensor, n_parameters: int) -> np.ndarray:
    from napari_xrfquant.inference.fit_quality import poisson_fit_quality

    with torch.no_grad():
        return poisson_fit_quality(observed, expected, n_parameters).numpy()


def fit_channels(
    energy_keV: np.ndarray, beam_keV: float, exclude_keV: Sequence[tuple[float, float]] = ()
) -> np.ndarray:
    """Channels the fit uses: MIN_FIT_KEV to just above the beam, minus excluded ranges."""
    energy = np.asarray(energy_keV, dtype=np.float64)
    use = (energy >= MIN_FIT_KEV) & (energy <= beam_keV + 1.0)
    for low, high in exclude_keV:
        if not low < high:
            raise XRFQuantError(f"excluded range {low:g}-{high:g} keV is empty")
        use &= ~((energy >= low) & (energy <= high))
    if use.sum() < 10:
        raise XRFQuantError("fewer than 10 channels are left to fit")
    return use


def iter_calibrate(
    groups: PixelGroups,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    *,
    free: Sequence[str] = DEFAULT_FREE,
    exclude_keV: Sequence[tuple[float, float]] = (),
    start_wt_percent: np.ndarray | None = None,
    composition_steps: int = 60,
    lbfgs_steps: int = 100,
    iterations_per_step: int = 15,
    scoring_steps: int = 10,
    max_seconds: float = 100.0,
) -> Generator[Progress, None, CalibrationResult]:
    """:func:`calibrate` as a generator of :class:`Progress` (``stage="calibrate"``).

    Closing the generator between steps cancels the fit. The L-BFGS phase stops
    when a whole step brings no progress, after ``lbfgs_steps`` steps of
    ``iterations_per_step`` iterations, or after ``max_seconds`` in all; up to
    ``scoring_steps`` Fisher-scoring steps then finish the fit.
    """
    started = time.perf_counter()
    names = expand_free(free, instrument)
    energy = np.asarray(energy_keV, dtype=np.float64)
    if groups.counts.shape[1] != energy.size:
        raise XRFQuantError(
            f"the groups have {groups.counts.shape[1]} channels, the energy axis {energy.size}"
        )
    start = start_instrument(instrument, energy, names)
    fit = fit_channels(energy, start.max_beam_energy_keV, exclude_keV)
    model = FitModel(elements, start, groups, fit, names)
    vector = FreeVector(start, names, torch.float64)
    natural = vector.natural
    u = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    z = _start_logits(groups, start_wt_percent, len(elements)).requires_grad_(True)

    with torch.no_grad():
        before_expected = model.expected(natural(u), z)
    total_steps = composition_steps + lbfgs_steps
    # 1. the clusters' compositions at the start instrument (its response stays cached)
    adam = torch.optim.Adam([z], lr=0.1)
    start_values = natural(u).detach()
    for step in range(composition_steps if len(model.free_rows) else 0):
        adam.zero_grad()
        model.nll(start_values, z).backward()
        adam.step()
        yield Progress(step + 1, total_steps, "calibrate")
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
    steps_run = composition_steps
    for step in range(lbfgs_steps):
        # a few L-BFGS iterations between yields keep Cancel within about a second
        value = float(lbfgs.step(closure).detach())
        steps_run += 1
        yield Progress(composition_steps + step + 1, total_steps, "calibrate")
        if previous - value <= 1e-12:
            break  # no progress over a whole step: converged
        if time.perf_counter() - started > max_seconds:
            break  # the time budget is spent; sigma still comes from the curvature here
        previous = value
    with torch.no_grad():
        values, logits = fisher_scoring(model, natural(u), z.detach().clone(), scoring_steps)
        after_expected = model.expected(values, logits)
        fitted_wt = 100.0 * model.fractions(logits).numpy()
    sigma, correlation = fisher_sigma(model, values, logits)
    fitted = {n: float(values[i]) for i, n in enumerate(names)}
    n_free = len(elements)
    groups.wt_percent = np.where(groups.fixed[:, None], groups.wt_percent, fitted_wt)
    return CalibrationResult(
        instrument=with_values(start, fitted),
        start=start,
        values=fitted,
        sigma={n: float(sigma[i]) for i, n in enumerate(names)},
        correlation=correlation,
        names=names,
        not_pinned=[n for i, n in enumerate(names) if not sigma[i] <= parameter(n).scale],
        groups=groups,
        fit_quality_before=_fit_quality(model.observed, before_expected, n_free),
        fit_quality_after=_fit_quality(model.observed, after_expected, n_free),
        deviance_before=float(poisson_deviance(model.observed, before_expected).sum()),
        deviance_after=float(poisson_deviance(model.observed, after_expected).sum()),
        iterations=steps_run,
        seconds=time.perf_counter() - started,
        fit_channels=fit,
    )


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
    free: Sequence[str] = DEFAULT_FREE,
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
        optic's ``optic_drop_<i>``, or ``"optic"`` for all of the optic's).
    exclude_keV
        Energy ranges left out of the fit (e.g. lines of the set-up itself).
    start_wt_percent
        ``(G, E)`` starting compositions of the clusters (e.g. a model's), or None.
    max_seconds
        Time budget of the L-BFGS phase (:func:`iter_calibrate`); sigma comes
        from the curvature where the fit stops.
    progress
        Called with every :class:`~napari_xrfquant.progress.Progress`.

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
