"""Element identification: recall and false positives on simulated spectra, and the
real examples.

1. Simulated (the reference instrument, 30 keV): random bulk compositions of
   one major element and two to five others at log-uniform 0.05-20 wt%, drawn
   from a pool of 30 elements, as Poisson spectra of 1e4 and 1e6 counts.
   ``find_elements`` searches each (the sum spectrum alone; the instrument is
   the one that made them, so no detector refinement). Recall: elements at or
   above 0.1 wt% found, over those present; false positives: elements found
   that the composition does not hold, per spectrum.
2. Real (``xrfquant elements`` with defaults, the set-ups of ``sample_data``):
   the AXO map (the seven certified elements), BHVO-2G (the certificate's
   elements above 0.1 wt%) with the set-up file as written and with the set-up
   calibrated on it (``bhvo-calibrated``), and the Laguna Salinas map.
3. ``axo-evidence``: what the AXO map's sum shows of the elements its certificate
   does not list. The elements taken as present (the seven certified, the window's
   Si, and Al, Cl, K, Mn, Zn, whose peaks the sum shows and XRF-Maps' fit list for
   the beamline names) are fitted by the physics quantification's own fit with the
   set-up the search refined; printed: each one's likelihood-ratio significance
   (quasi-likelihood scaled, as the search's), that of each other element the
   search reports when added alone, and the data over that model at the other
   element's lines.

Usage: python benchmarks/bench_element_search.py
       [simulated|axo|bhvo|bhvo-calibrated|laguna|axo-evidence ...]
       [--spectra N]  (default 12 per count level; about 20 s a spectrum)
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from napari_xrfquant.inference.element_search import find_elements, search_range
from napari_xrfquant.inference.fit_quality import poisson_deviance
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.instrument import load_instrument, reference_instrument
from napari_xrfquant.io import read_cube
from napari_xrfquant.io.grid import resample_counts, same_grid
from napari_xrfquant.physics import simulate

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"
POOL = ("Si,P,S,Cl,K,Ca,Ti,V,Cr,Mn,Fe,Co,Ni,Cu,Zn,As,Se,Br,Rb,Sr,Zr,Mo,Ag,Sn,Sb,Ba,W,Au,"
        "Pb,Bi").split(",")
MAJORS = ("Si", "Ca", "Fe", "Cu")
PRESENT_ABOVE = 0.1  # wt%
AXO = ("Ca", "Fe", "Cu", "Mo", "Pd", "La", "Pb")
#: Besides the certificate's seven, what the AXO sum shows and XRF-Maps fits there.
AXO_PRESENT = (*AXO, "Si", "Al", "Cl", "K", "Mn", "Zn")
#: Elements the search reports on the AXO map that no file beside it names (Ce, Os,
#: Rh; Ag set aside beside the air's Ar K), and those it reported before its fit of
#: the amounts reached the optimum (P, S).
AXO_OTHERS = ("Ce", "Os", "Rh", "Ag", "P", "S")
REAL = {
    "axo": (SAMPLES / "aps_2ide" / "axo_std.mda", SAMPLES / "aps_2ide" / "instrument.toml"),
    "bhvo": (SAMPLES / "pixl_breadboard"
             / "Calibration_box_BHVO-2G_28kV_230uA_03_28_2019_bulk_sum.msa",
             SAMPLES / "pixl_breadboard" / "instrument.toml"),
    "laguna": (SAMPLES / "pixl_breadboard" / "LagunaSalinasdataset.bin",
               SAMPLES / "pixl_breadboard" / "instrument.toml"),
    # the same spectrum on the set-up calibrated on it (instrument_calibrated.toml)
    "bhvo-calibrated": (SAMPLES / "pixl_breadboard"
                        / "Calibration_box_BHVO-2G_28kV_230uA_03_28_2019_bulk_sum.msa",
                        SAMPLES / "pixl_breadboard" / "instrument_calibrated.toml"),
}


def random_composition(rng: np.random.Generator) -> dict[str, float]:
    """One major (the rest of 100 wt%) and two to five others at 0.05-20 wt%."""
    major = str(rng.choice(MAJORS))
    others = rng.choice([e for e in POOL if e != major], size=int(rng.integers(2, 6)),
                        replace=False)
    amounts = {str(e): float(10 ** rng.uniform(np.log10(0.05), np.log10(20.0))) for e in others}
    amounts[major] = 100.0 - sum(amounts.values())
    return amounts


def simulated(n_spectra: int) -> None:
    instrument = reference_instrument()
    rng = np.random.default_rng(7)
    compositions = [random_composition(rng) for _ in range(n_spectra)]
    for counts in (1e4, 1e6):
        present = found_present = false = 0
        started = time.perf_counter()
        for k, composition in enumerate(compositions):
            elements = list(composition)
            spectrum = simulate(np.array([list(composition.values())]), elements, instrument,
                                counts=counts, seed=k)
            found = set(find_elements(np.asarray(spectrum), instrument, refine=False,
                                      clusters=0).symbols)
            truth = {e for e, v in composition.items() if v >= PRESENT_ABOVE}
            present += len(truth)
            found_present += len(truth & found)
            false += len(found - set(composition))
            for e in sorted(truth - found):
                print(f"  {counts:.0e} counts, spectrum {k}: missed {e} "
                      f"({composition[e]:.2g} wt%)")
            for e in sorted(found - set(composition)):
                print(f"  {counts:.0e} counts, spectrum {k}: false {e}")
        seconds = (time.perf_counter() - started) / n_spectra
        print(f"simulated, {counts:.0e} counts: recall {found_present}/{present} = "
              f"{found_present / present:.2f} of the elements >= {PRESENT_ABOVE} wt%; "
              f"false positives {false} in {n_spectra} spectra ({false / n_spectra:.2f} a "
              f"spectrum); {seconds:.1f} s a spectrum")


def _spectra(name: str):
    """A real example's spectra ``(N, C)`` on its set-up's channels, and the set-up."""
    path, setup = REAL[name]
    instrument = load_instrument(setup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = read_cube(path)
    data = np.asarray(cube.data, dtype=np.float64)
    if not same_grid(np.asarray(cube.energy_keV), instrument.energy_axis_keV()):
        data = resample_counts(data, np.asarray(cube.energy_keV), instrument.energy_axis_keV())
    return data.reshape(-1, data.shape[-1]), instrument


def real(name: str) -> None:
    spectra, instrument = _spectra(name)
    search = find_elements(spectra, instrument)
    print(f"{name}: fit quality {search.fit_quality:.3g}, {search.seconds:.0f} s; found: "
          + ", ".join(f"{f.symbol} ({f.significance:.0f})" for f in search.found
                      if f.uncertain is None))
    print("  uncertain: " + ", ".join(f"{f.symbol} ({f.uncertain})" for f in search.found
                                      if f.uncertain is not None))
    if name == "axo":
        print(f"  certified found: {sorted(set(AXO) & set(search.symbols))}; missed: "
              f"{sorted(set(AXO) - set(search.symbols))}; others: "
              f"{sorted(set(search.symbols) - set(AXO))}")


def _fixed_fit(spectrum: np.ndarray, instrument, elements: list[str]):
    """Deviance and fit quality of ``elements`` fitted to ``spectrum`` by the physics
    quantification's own fit (:meth:`~.physics_fit.PhysicsQuantifier.solve`: amounts
    free, scatter, continuum, set-up lines and pile-up beside them, the matrix from
    the amounts) on the search's range; the fitted and the measured counts there, and
    their energies."""
    quantifier = PhysicsQuantifier(elements, instrument, fit_keV=search_range(instrument),
                                   secondary=False, setup_families=True).with_pile_up(spectrum)
    _, _, _, quality, fitted = quantifier.solve(spectrum[None, :], keep_expected=True)
    assert fitted is not None
    channels = quantifier.fit_channels
    observed = spectrum[channels]
    deviance = float(poisson_deviance(torch.as_tensor(observed[None]),
                                      torch.as_tensor(fitted))[0])
    return (deviance, float(quality[0]), fitted[0], observed,
            instrument.energy_axis_keV()[channels])


def axo_evidence() -> None:
    """The AXO sum's evidence for the elements no file beside the map names."""
    from napari_xrfquant.physics.lines import element_lines

    spectra, instrument = _spectra("axo")
    search = find_elements(spectra, instrument, clusters=0)
    refined = search.instrument
    summed = spectra.sum(axis=0)
    present = list(AXO_PRESENT)
    deviance, quality, fitted, observed, energy = _fixed_fit(summed, refined, present)

    def significance(d_without: float, d_with: float, phi: float) -> float:
        return math.sqrt(max(d_without - d_with, 0.0) / max(phi, 1.0))

    print(f"AXO sum, {', '.join(present)} with the search's set-up: fit quality {quality:.2f}")
    alone = {e: _fixed_fit(summed, refined, [p for p in present if p != e])[0] for e in present}
    print("  each one's significance: " + ", ".join(
        f"{e} {significance(d, deviance, quality):.1f}" for e, d in alone.items()))
    for other in AXO_OTHERS:
        d_with, q_with, *_ = _fixed_fit(summed, refined, [*present, other])
        lines = sorted(element_lines([other], refined, 0.05),
                       key=lambda line: -line.relative_intensity)[:3]
        at = []
        for line in lines:
            near = np.abs(energy - line.energy_keV) <= 0.04
            at.append(f"{line.label} {line.energy_keV:.2f} keV "
                      f"{observed[near].sum() / fitted[near].sum() - 1:+.1%}")
        print(f"  + {other}: {significance(deviance, d_with, q_with):.1f} sigma; data/model "
              f"- 1 without it at {', '.join(at)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["simulated", *REAL])
    parser.add_argument("--spectra", type=int, default=12)
    args = parser.parse_args()
    for what in args.what:
        if what == "simulated":
            simulated(args.spectra)
        elif what == "axo-evidence":
            axo_evidence()
        else:
            real(what)


if __name__ == "__main__":
    main()
