"""The calibration figure: standards before and after, their residuals, and the optic."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.calibration.result import CalibrationResult
from napari_xrfquant.instrument_parameters import is_optic, with_values


def transmission_band(
    result: CalibrationResult, energy_keV: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The fitted optic transmission and its 1-sigma (delta method over the optic parameters)."""
    optic = result.instrument.optic
    if optic is None:
        return np.ones_like(energy_keV), np.zeros_like(energy_keV)
    curve = optic.transmission(energy_keV)
    # a flagged parameter has no sigma: it adds nothing to the band
    names = [n for n in result.names if is_optic(n) and n not in result.flags]
    if not names:
        return curve, np.zeros_like(curve)
    index = [result.names.index(n) for n in names]
    sigma = np.array([result.sigma[n] for n in names])
    covariance = result.correlation[np.ix_(index, index)] * np.outer(sigma, sigma)
    gradient = []
    for name, s in zip(names, sigma, strict=True):
        step = max(1e-3 * s, 1e-6)
        values = dict(result.values)
        values[name] += step
        shifted = with_values(result.instrument, {name: values[name]}).optic
        assert shifted is not None
        gradient.append((shifted.transmission(energy_keV) - curve) / step)
    g = np.stack(gradient, axis=1)
    return curve, np.sqrt(np.clip(np.einsum("ki,ij,kj->k", g, covariance, g), 0.0, None))


def n_panels(result: CalibrationResult) -> int:
    """Panels of :func:`draw_calibration`: the groups, the residuals, the optic if any."""
    return len(panel_rows(result)) + 1 + (result.instrument.optic is not None)


def panel_rows(result: CalibrationResult) -> list[int]:
    """The groups shown: every standard, or the two brightest groups when there is none."""
    rows = [int(r) for r in np.nonzero(result.groups.fixed)[0]]
    return rows or [int(r) for r in np.argsort(result.groups.counts.sum(axis=1))[::-1][:2]]


def deviance_residuals(measured: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Signed square roots of each channel's Poisson deviance: about N(0, 1) where the
    model is right, at every count level."""
    import torch

    from napari_xrfquant.inference.fit_quality import poisson_deviance_terms

    x = torch.as_tensor(np.asarray(measured, dtype=np.float64))
    lam = torch.as_tensor(np.asarray(expected, dtype=np.float64))
    return (torch.sign(x - lam) * torch.sqrt(poisson_deviance_terms(x, lam))).numpy()


def draw_calibration(
    figure: Any, result: CalibrationResult, measured_colour: str = "0.2"
) -> list[Any]:
    """Draw the calibration panels into ``figure``; return their axes.

    One panel per group of :func:`panel_rows`, log scale: measured against the
    fit's expected spectra with the start and the calibrated instrument
    (``result.spectra_before``, ``spectra_after``: nothing is simulated here, so
    drawing is quick on the dock's UI thread); a residual panel
    (deviance residuals of those groups after the calibration, the ranges of
    its misfit warning shaded); for a set-up with an optic, a last panel with
    its transmission and 1-sigma band.
    """
    energy = result.instrument.energy_axis_keV()
    before, after = result.spectra_before, result.spectra_after
    rows = panel_rows(result)
    axes_list = list(figure.subplots(n_panels(result), 1, squeeze=False)[:, 0])
    high = result.instrument.max_beam_energy_keV + 1.0
    for axes, row in zip(axes_list, rows, strict=False):
        measured = result.groups.counts[row]
        axes.semilogy(energy, np.maximum(measured, 0.5), color=measured_colour, lw=0.8,
                      label="measured")
        axes.semilogy(energy, np.maximum(before[row], 0.5), color="tab:red", lw=0.9,
                      label=f"set-up as it was (fit quality {result.fit_quality_before[row]:.2f})")
        axes.semilogy(energy, np.maximum(after[row], 0.5), color="tab:blue", lw=0.9,
                      label=f"calibrated (fit quality {result.fit_quality_after[row]:.2f})")
        axes.set_title(result.groups.names[row])
        axes.set_ylabel("counts")
        axes.set_xlim(1.0, high)
        axes.legend(loc="upper right", fontsize=8)
    draw_residuals(axes_list[len(rows)], result, rows, after, energy, high)
    if result.instrument.optic is None:
        axes_list[len(rows)].set_xlabel("energy (keV)")
        return axes_list
    axes = axes_list[-1]
    curve, band = transmission_band(result, energy)
    axes.plot(energy, curve, color="tab:blue", label="fitted transmission")
    axes.fill_between(
        energy, curve - band, curve + band, color="tab:blue", alpha=0.25, label="1-sigma"
    )
    axes.set_ylim(0.0, 1.05)
    axes.set_xlim(1.0, high)
    axes.set_xlabel("energy (keV)")
    axes.set_ylabel("optic transmission")
    axes.legend(loc="lower left", fontsize=8)
    return axes_list


def draw_residuals(
    axes: Any,
    result: CalibrationResult,
    rows: Sequence[int],
    after: np.ndarray,
    energy: np.ndarray,
    high_keV: float,
) -> None:
    """Deviance residuals of the shown groups after the calibration, the misfit's ranges
    shaded; ±2 marks what Poisson noise gives."""
    fit = result.fit_channels
    for row in rows:
        residual = deviance_residuals(result.groups.counts[row, fit], after[row, fit])
        axes.plot(energy[fit], residual, lw=0.7, label=result.groups.names[row])
    for misfit in result.misfit:
        axes.axvspan(misfit.low_keV, misfit.high_keV, color="tab:orange", alpha=0.25)
    axes.axhline(2.0, color="0.5", lw=0.6, ls="--")
    axes.axhline(-2.0, color="0.5", lw=0.6, ls="--")
    axes.set_xlim(1.0, high_keV)
    axes.set_ylabel("deviance residual")
    title = "residuals, calibrated"
    if result.misfit:
        title += " (shaded: largest misfit)"
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize=8)


def write_calibration_png(
    path: str | os.PathLike[str],
    result: CalibrationResult,
    overwrite: bool = False,
) -> Path:
    """:func:`draw_calibration` as a PNG file (written under a temporary name, renamed)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 3.0 * n_panels(result)), dpi=100, layout="constrained")
    draw_calibration(figure, result)
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png")
    return target
