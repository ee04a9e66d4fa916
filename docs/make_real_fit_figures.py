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
    quantifier.scale = scale_from_standard(quantifier, summed, standard.ug_per_cm2)[0]
    fit = quantifier.fit(summed[None], keep_expected=True)
    assert fit.expected is not None
    energy = refined.energy_axis_keV()
    shown = quantifier.fit_channels
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.semilogy(energy[shown], summed[shown], "k", lw=0.8, label="measured (121 pixels summed)")
    top.semilogy(energy[shown], fit.expected[0, shown], "C3", lw=0.8, label="physics fit")
    for element in ("Si", "Cl", "Ca", "Fe", "Cu", "La", "Pb", "Pd"):
        i = fit.elements.index(element)
        top.plot([], [], " ", label=f"{element} {fit.values[0, i]:.3g} µg/cm²")
    top.legend(fontsize=7, ncol=2)
    top.set_ylabel("counts")
    top.set_title(
        f"AXO film, APS 2-ID-E: fit quality {fit.fit_quality[0]:.1f} "
        "(sum of 121 pixels, 1.5-10 keV)"
    )
    residual = (summed - fit.expected[0]) / np.sqrt(np.maximum(fit.expected[0], 1.0))
    bottom.plot(energy[shown], residual[shown], "k", lw=0.6)
    bottom.axhline(0.0, color="C3", lw=0.6)
    bottom.set_ylabel("(meas - fit) / sqrt(fit)")
    bottom.set_xlabel("energy (keV)")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    print(f"wrote {target}")


def bhvo_figure(target: Path) -> None:
    certificate = library()["BHVO-2G"]
    elements = [e for e in certificate.wt_percent if e != "O"]
    spectrum = np.asarray(read_cube(BHVO).data, dtype=np.float64).reshape(-1)
    quantifier = PhysicsQuantifier(
        elements,
        load_instrument(BREADBOARD / "instrument_calibrated.toml"),
        matrix="oxides",
        fit_keV=(1.0, 25.0),
    )
    refined, _, _ = refine_detector(quantifier, spectrum)
    quantifier = quantifier.with_instrument(refined)
    if pile_up_significance(quantifier, spectrum) >= PILE_UP_SIGMA:
        quantifier = quantifier.with_pile_up(spectrum)
    fit = quantifier.fit(spectrum[None], keep_expected=True)
    assert fit.expected is not None
    energy = refined.energy_axis_keV()
    shown = quantifier.fit_channels
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.semilogy(energy[shown], spectrum[shown], "k", lw=0.8, label="measured (1.2e8 counts)")
    top.semilogy(
        energy[shown], fit.expected[0, shown], "C3", lw=0.8, label="physics fit, composition free"
    )
    for element in ("Na", "Mg", "Al", "Si", "K", "Ca", "Ti", "Fe"):
        value, cert = fit.values[0, fit.elements.index(element)], certificate.wt_percent[element]
        top.plot([], [], " ", label=f"{element} {value:.2f} wt% (certificate {cert:.2f})")
    top.legend(fontsize=7, ncol=2)
    top.set_ylabel("counts")
    top.set_title(
        f"BHVO-2G, PIXL breadboard (Rh tube 28 kV): fit quality {fit.fit_quality[0]:.0f} (1-25 keV)"
    )
    residual = (spectrum - fit.expected[0]) / np.sqrt(np.maximum(fit.expected[0], 1.0))
    bottom.plot(energy[shown], residual[shown], "k", lw=0.6)
    bottom.axhline(0.0, color="C3", lw=0.6)
    bottom.set_ylabel("(meas - fit) / sqrt(fit)")
    bottom.set_xlabel("energy (keV)")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    print(f"wrote {target}")


LAGUNA_ELEMENTS = "Na,Mg,Al,Si,P,S,Cl,K,Ca,Ti,Cr,Mn,Fe,Ni,Zn,Sr,Zr".split(",")


def laguna_figure(target: Path) -> None:
    from napari_xrfquant.inference.element_search import on_cube_axis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stored calibrations' warning (refined)
        cube = read_cube(BREADBOARD / "LagunaSalinasdataset.bin")
    instrument = load_instrument(BREADBOARD / "instrument_calibrated.toml")
    spectra, instrument = on_cube_axis(cube.data, cube.energy_keV, instrument)
    summed = spectra.sum(axis=0)
    quantifier = PhysicsQuantifier(
        LAGUNA_ELEMENTS, instrument, matrix="oxides", fit_keV=(1.0, 25.0)
    )
    refined, _, _ = refine_detector(quantifier, summed)
    quantifier = quantifier.with_instrument(refined)
    if pile_up_significance(quantifier, summed) >= PILE_UP_SIGMA:
        quantifier = quantifier.with_pile_up(summed)
    fit = quantifier.fit(spectra, keep_expected=True)
    assert fit.expected is not None
    energy = refined.energy_axis_keV()
    shown = quantifier.fit_channels
    median = int(np.argsort(fit.fit_quality)[len(fit.fit_quality) // 2])
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1]}
    )
    fitted = fit.expected.sum(axis=0)
    top.semilogy(energy[shown], summed[shown], "k", lw=0.8, label="measured, 625 points summed")
    top.semilogy(energy[shown], fitted[shown], "C3", lw=0.8, label="sum of the 625 fits")
    top.legend(fontsize=7)
    top.set_ylabel("counts")
    top.set_title(
        f"Laguna Salinas map, PIXL breadboard: median fit quality "
        f"{np.median(fit.fit_quality):.2f} (each point, 1-25 keV)"
    )
    middle.semilogy(
        energy[shown],
        spectra[median, shown],
        "k",
        lw=0.6,
        label=f"the median point ({spectra[median].sum():.2g} counts)",
    )
    middle.semilogy(
        energy[shown],
        fit.expected[median, shown],
        "C3",
        lw=0.8,
        label=f"its fit, fit quality {fit.fit_quality[median]:.2f}",
    )
    middle.legend(fontsize=7)
    middle.set_ylabel("counts")
    residual = (summed - fitted) / np.sqrt(np.maximum(fitted, 1.0))
    bottom.plot(energy[shown], residual[shown], "k", lw=0.6)
    bottom.axhline(0.0, color="C3", lw=0.6)
    bottom.set_ylabel("sum: (meas - fit) / sqrt(fit)", fontsize=7)
    bottom.set_xlabel("energy (keV)")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    print(f"wrote {target}")


if __name__ == "__main__":
    axo_figure(HERE / "docs" / "images" / "axo_fit.png")
    bhvo_figure(HERE / "docs" / "images" / "bhvo_fit.png")
    laguna_figure(HERE / "docs" / "images" / "laguna_fit.png")
