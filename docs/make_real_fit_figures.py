"""The fits of the real examples in the README: measured against fitted, with residuals.

``docs/images/axo_fit.png``: the AXO map's sum spectrum (APS 2-ID-E) and its physics
fit in µg/cm² (the detector refined on it, the scale from Ca, Fe and Cu), as
``xrfquant quantify --instrument --elements --standard`` computes it.

``docs/images/laguna_fit.png``: the Laguna Salinas map (PIXL breadboard, 625 points) on
that calibrated set-up, every point fitted (oxides, 17 elements): the sum of the
measured spectra against the sum of the fits, and the point of median fit quality.

``docs/images/bhvo_fit.png``: the BHVO-2G spectrum (PIXL breadboard) and its physics
fit with the composition free (oxides), on the set-up calibrated on it
(``sample_data/pixl_breadboard/instrument_calibrated.toml``), as ``xrfquant quantify
--instrument --elements --matrix oxides`` computes it.

Usage: python docs/make_real_fit_figures.py   (about 3 min)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.inference.physics_quantify import PILE_UP_SIGMA
from napari_xrfquant.inference.physics_setup import (
    pile_up_significance,
    refine_detector,
    scale_from_standard,
)
from napari_xrfquant.instrument import load_instrument
from napari_xrfquant.io import read_cube
from napari_xrfquant.physics.standards import library, read_standard_csv

HERE = Path(__file__).resolve().parents[1]
AXO = HERE / "sample_data" / "aps_2ide"
BREADBOARD = HERE / "sample_data" / "pixl_breadboard"
BHVO = BREADBOARD / "Calibration_box_BHVO-2G_28kV_230uA_03_28_2019_bulk_sum.msa"
ELEMENTS = "Si,P,S,Cl,K,Ca,Ti,Cr,Mn,Fe,Ni,Cu,Zn,Mo,Pd,La,Pb".split(",")


def measured_against_fit(
    energy: np.ndarray,
    shown: np.ndarray,
    measured: np.ndarray,
    fitted: np.ndarray,
    labels: tuple[str, str],
    notes: list[str],
    title: str,
    target: Path,
    point: tuple[np.ndarray, np.ndarray, str, str] | None = None,
) -> None:
    """Measured and fitted counts on a log scale (``notes`` as legend lines), an
    optional single ``point`` (its counts, fit and their labels) below, and the
    residuals over sqrt(fit) of the first pair at the bottom."""
    heights = [3, 2, 1] if point is not None else [3, 1]
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(10, 2 * len(heights) + 2),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
    )
    top, bottom = axes[0], axes[-1]
    top.semilogy(energy[shown], measured[shown], "k", lw=0.8, label=labels[0])
    top.semilogy(energy[shown], fitted[shown], "C3", lw=0.8, label=labels[1])
    for note in notes:
        top.plot([], [], " ", label=note)
    top.legend(fontsize=7, ncol=2)
    top.set_ylabel("counts")
    top.set_title(title)
    if point is not None:
        counts, fit, counts_label, fit_label = point
        axes[1].semilogy(energy[shown], counts[shown], "k", lw=0.6, label=counts_label)
        axes[1].semilogy(energy[shown], fit[shown], "C3", lw=0.8, label=fit_label)
        axes[1].legend(fontsize=7)
        axes[1].set_ylabel("counts")
    residual = (measured - fitted) / np.sqrt(np.maximum(fitted, 1.0))
    bottom.plot(energy[shown], residual[shown], "k", lw=0.6)
    bottom.axhline(0.0, color="C3", lw=0.6)
    bottom.set_ylabel("(meas - fit) / sqrt(fit)", fontsize=7)
    bottom.set_xlabel("energy (keV)")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    print(f"wrote {target}")


def with_pile_up_if_shown(quantifier: PhysicsQuantifier, summed: np.ndarray) -> PhysicsQuantifier:
    """The quantifier with the detector refined on ``summed`` and its pile-up where
    the spectrum shows it, as ``quantify_physics`` prepares it."""
    refined, _, _ = refine_detector(quantifier, summed)
    quantifier = quantifier.with_instrument(refined)
    if pile_up_significance(quantifier, summed) >= PILE_UP_SIGMA:
        quantifier = quantifier.with_pile_up(summed)
    return quantifier


def axo_figure(target: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = read_cube(AXO / "axo_std.mda")
    summed = np.asarray(cube.data, dtype=np.float64).sum(axis=(0, 1))
    quantifier = PhysicsQuantifier(
        ELEMENTS, load_instrument(AXO / "instrument.toml"), fit_keV=(1.5, 10.0)
    )
    refined, _, _ = refine_detector(quantifier, summed)
    quantifier = quantifier.with_instrument(refined)
    standard = read_standard_csv(AXO / "AXO_CaFeCu.csv")
    assert standard.ug_per_cm2 is not None
    quantifier.scale = scale_from_standard(quantifier, summed, standard.ug_per_cm2,
                                           standard.sigma)[0]
    fit = quantifier.fit(summed[None], keep_expected=True)
    assert fit.expected is not None
    notes = [
        f"{e} {fit.values[0, fit.elements.index(e)]:.3g} µg/cm²"
        for e in ("Si", "Cl", "Ca", "Fe", "Cu", "La", "Pb", "Pd")
    ]
    measured_against_fit(
        refined.energy_axis_keV(),
        quantifier.fit_channels,
        summed,
        fit.expected[0],
        ("measured (121 pixels summed)", "physics fit"),
        notes,
        f"AXO film, APS 2-ID-E: fit quality {fit.fit_quality[0]:.1f} "
        "(sum of 121 pixels, 1.5-10 keV)",
        target,
    )


def bhvo_figure(target: Path) -> None:
    certificate = library()["BHVO-2G"]
    elements = [e for e in certificate.wt_percent if e != "O"]
    spectrum = np.asarray(read_cube(BHVO).data, dtype=np.float64).reshape(-1)
    quantifier = with_pile_up_if_shown(
        PhysicsQuantifier(
            elements,
            load_instrument(BREADBOARD / "instrument_calibrated.toml"),
            matrix="oxides",
            fit_keV=(1.0, 25.0),
        ),
        spectrum,
    )
    fit = quantifier.fit(spectrum[None], keep_expected=True)
    assert fit.expected is not None
    notes = [
        f"{e} {fit.values[0, fit.elements.index(e)]:.2f} wt% "
        f"(certificate {certificate.wt_percent[e]:.2f})"
        for e in ("Na", "Mg", "Al", "Si", "K", "Ca", "Ti", "Fe")
    ]
    measured_against_fit(
        quantifier.instrument.energy_axis_keV(),
        quantifier.fit_channels,
        spectrum,
        fit.expected[0],
        ("measured (1.2e8 counts)", "physics fit, composition free"),
        notes,
        f"BHVO-2G, PIXL breadboard (Rh tube 28 kV): fit quality {fit.fit_quality[0]:.0f} "
        "(1-25 keV)",
        target,
    )


LAGUNA_ELEMENTS = "Na,Mg,Al,Si,P,S,Cl,K,Ca,Ti,Cr,Mn,Fe,Ni,Zn,Sr,Zr".split(",")


def laguna_figure(target: Path) -> None:
    from napari_xrfquant.inference.element_search import on_cube_axis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stored calibrations' warning (refined)
        cube = read_cube(BREADBOARD / "LagunaSalinasdataset.bin")
    instrument = load_instrument(BREADBOARD / "instrument_calibrated.toml")
    spectra, instrument = on_cube_axis(cube.data, cube.energy_keV, instrument)
    summed = spectra.sum(axis=0)
    quantifier = with_pile_up_if_shown(
        PhysicsQuantifier(LAGUNA_ELEMENTS, instrument, matrix="oxides", fit_keV=(1.0, 25.0)),
        summed,
    )
    fit = quantifier.fit(spectra, keep_expected=True)
    assert fit.expected is not None
    median = int(np.argsort(fit.fit_quality)[len(fit.fit_quality) // 2])
    point = (
        spectra[median],
        fit.expected[median],
        f"the median point ({spectra[median].sum():.2g} counts)",
        f"its fit, fit quality {fit.fit_quality[median]:.2f}",
    )
    measured_against_fit(
        quantifier.instrument.energy_axis_keV(),
        quantifier.fit_channels,
        summed,
        fit.expected.sum(axis=0),
        ("measured, 625 points summed", "sum of the 625 fits"),
        [],
        "Laguna Salinas map, PIXL breadboard: median fit quality "
        f"{np.median(fit.fit_quality):.2f} (each point, 1-25 keV)",
        target,
        point,
    )


if __name__ == "__main__":
    axo_figure(HERE / "docs" / "images" / "axo_fit.png")
    bhvo_figure(HERE / "docs" / "images" / "bhvo_fit.png")
    laguna_figure(HERE / "docs" / "images" / "laguna_fit.png")
