"""What a calibration found: :class:`CalibrationResult` and its ``calibration.json`` form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_xrfquant.calibration.diagnosis import ResidualRange
from napari_xrfquant.calibration.groups import PixelGroups
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.instrument_parameters import parameter, parameter_values


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
        Free parameters the data did not fix: those of ``flags``, and those
        whose sigma exceeds their scale.
    flags
        ``{name: reason}`` of parameters at a limit or acting outside the fitted
        energies (:func:`.diagnosis.parameter_flags`); their sigma is NaN.
    sigma_scale
        The factor the Fisher sigma were multiplied by: the square root of the
        pooled fit quality where it exceeds 1 (the model misses the data, so
        the curvature alone understates the uncertainty).
    groups
        The pixel groups fitted; ``wt_percent`` holds the fitted compositions.
    fit_quality_before, fit_quality_after
        ``(G,)`` fit quality of every group spectrum with the start and the
        calibrated instrument (about 1 = explained).
    deviance_before, deviance_after
        Poisson deviance of all group spectra together.
    iterations, seconds
        Work done.
    misfit, warning
        Where the calibrated set-up still misses the data, and the warning
        when its fit quality exceeds :data:`.diagnosis.MISFIT_QUALITY`.
    fit_quality
        The fit quality of all group spectra pooled (their deviances over
        their expectations), after the calibration.
    spectra_before, spectra_after
        ``(G, C)`` expected group spectra on every channel with the start and the
        calibrated instrument (the fitted compositions), scaled to the measured
        counts over the fitted channels: what the figure draws.
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
    flags: dict[str, str] = field(default_factory=dict)
    sigma_scale: float = 1.0
    misfit: list[ResidualRange] = field(default_factory=list)
    warning: str | None = None
    fit_quality: float = math.nan  #: pooled over all groups, after
    spectra_before: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    spectra_after: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``calibration.json``."""
        start_values = parameter_values(self.start, self.names)
        correlation = np.round(self.correlation, 4)
        return {
            "parameters": {
                name: {
                    "value": self.values[name],
                    "sigma": _finite_or_none(self.sigma[name]),
                    "start": _finite_or_none(start_values[name]),
                    "instrument_key": parameter(name).dotted,
                    "pinned": name not in self.not_pinned,
                    "flag": self.flags.get(name),
                }
                for name in self.names
            },
            "correlation": {
                "names": self.names,
                "matrix": [[_finite_or_none(v) for v in row] for row in correlation.tolist()],
            },
            "not_pinned": self.not_pinned,
            "sigma_scaled_by": self.sigma_scale,
            "fit_quality": self.fit_quality,
            "warnings": [self.warning] if self.warning else [],
            "residual_ranges": [r.to_dict() for r in self.misfit],
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


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a value that is not finite is written as null."""
    return float(value) if math.isfinite(value) else None
