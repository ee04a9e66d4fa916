"""The fits of the real examples in the README: measured against fitted, with residuals.

``docs/images/axo_fit.png``: the AXO map's sum spectrum (APS 2-ID-E) and its physics
fit in µg/cm² (the detector refined on it, the scale from Ca, Fe and Cu), as
``xrfquant quantify --instrument --elements --standard`` computes it.

Usage: python docs/make_real_fit_figures.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.inference.physics_setup import (
    refine_detector,
    scale_from_standard,
)
from napari_xrfquant.instrument import load_instrument
from napari_xrfquant.io import read_cube
from napari_xrfquant.physics.standards import read_standard_csv

HERE = Path(__file__).resolve().parents[1]
AXO = HERE / "sample_data" / "aps_2ide"
ELEMENTS = "Si,P,S,Cl,K,Ca,Ti,Cr,Mn,Fe,Ni,Cu,Zn,Mo,Pd,La,Pb".split(",")


def axo_figure(target: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = read_cube(AXO / "axo_std.mda")
    summed = np.asarray(cube.data, dtype=np.float64).sum(axis=(0, 1))
    quantifier = PhysicsQuantifier(ELEMENTS, load_instrument(AXO / "instrument.toml"),
                                   fit_keV=(1.5, 10.0))
    refined, _, _ = refine_detector(quantifier, summed)
    quantifier = quantifier.with_instrument(refined)
    standard = read_standard_csv(AXO / "AXO_CaFeCu.csv")
    assert standard.ug_per_cm2 is not None
    quantifier.scale = scale_from_standard(quantifier, summed, standard.ug_per_cm2)[0]
    fit = quantifier.fit(summed[None], keep_expected=True)
    assert fit.expected is not None
    energy = refined.energy_axis_keV()
    shown = quantifier.fit_channels
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.semilogy(energy[shown], summed[shown], "k", lw=0.8, label="measured (121 pixels summed)")
    top.semilogy(energy[shown], fit.expected[0, shown], "C3", lw=0.8, label="physics fit")
    for element in ("Si", "Cl", "Ca", "Fe", "Cu", "La", "Pb", "Pd"):
        i = fit.elements.index(element)
        top.plot([], [], " ", label=f"{element} {fit.values[0, i]:.3g} µg/cm²")
    top.legend(fontsize=7, ncol=2)
    top.set_ylabel("counts")
    top.set_title(f"AXO film, APS 2-ID-E: fit quality {fit.fit_quality[0]:.1f} "
                  "(sum of 121 pixels, 1.5-10 keV)")
    residual = (summed - fit.expected[0]) / np.sqrt(np.maximum(fit.expected[0], 1.0))
    bottom.plot(energy[shown], residual[shown], "k", lw=0.6)
    bottom.axhline(0.0, color="C3", lw=0.6)
    bottom.set_ylabel("(meas - fit) / sqrt(fit)")
    bottom.set_xlabel("energy (keV)")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    print(f"wrote {target}")


if __name__ == "__main__":
    axo_figure(HERE / "docs" / "images" / "axo_fit.png")
