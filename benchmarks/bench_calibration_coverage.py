"""Do the calibration's 1-sigma cover the truth? Simulated cubes with a known set-up.

Each trial simulates the three BAM standards and four unknown alloys (2 x 2
pixels each, ``--counts`` per pixel, Poisson noise of its own seed) with a set-up
that is not the reference one (:data:`CHANGES`), calibrates from the reference
one with the default free parameters, and records ``(fitted - true) / sigma``
of every parameter. Two cases:

- ``modelled``: everything the data hold is in the model; the fractions within
  1 and 2 sigma should be about 0.68 and 0.95;
- ``misfit``: the true tail slope differs and is not freed, so the model misses
  the data; printed with the sigma as reported (scaled by the square root of the
  fit quality) and unscaled, to show what the scaling buys.

Run: ``python benchmarks/bench_calibration_coverage.py [--trials 12] [--counts 2e4]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_xrfquant.calibration.hidden import HIDDEN_CHANGES

#: The set-up the data come from: the hidden set-up's changes (without its optic: the
#: defaults free none for an instrument without one) and stronger scatter.
CHANGES = {**HIDDEN_CHANGES, "scatter.scale": 1.5}


def trial(truth, seed: int, counts: float) -> tuple[np.ndarray, float, float]:
    """z of every free parameter, the fit's sigma scale and its pooled fit quality."""
    from napari_xrfquant.calibration.hidden import ELEMENTS, STANDARDS, UNKNOWN_WT_PERCENT
    from napari_xrfquant.calibration.session import iter_calibration
    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.instrument_parameters import parameter_values
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.physics import simulate
    from napari_xrfquant.physics.standards import library

    wt = np.array([*[library()[n].vector(list(ELEMENTS)) for n in STANDARDS],
                   *UNKNOWN_WT_PERCENT])
    spectra = simulate(wt, list(ELEMENTS), instrument=truth)
    labels = np.repeat(np.arange(1, len(wt) + 1), 2)[None, :].repeat(2, axis=0)
    cube = np.random.default_rng(seed).poisson(spectra[labels - 1] * counts)
    standards = {i + 1: library()[n] for i, n in enumerate(STANDARDS)}
    reference = reference_instrument()
    result = drive(iter_calibration(cube, reference.energy_axis_keV(), ELEMENTS, reference,
                                    labels=labels, standards=standards, n_clusters=4,
                                    max_seconds=120.0))
    names = [n for n in result.names if n not in result.flags]
    true = parameter_values(truth, names)
    z = np.array([(result.values[n] - true[n]) / result.sigma[n] for n in names])
    return z, result.sigma_scale, result.fit_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--counts", type=float, default=2e4)
    args = parser.parse_args()
    from napari_xrfquant.instrument import reference_instrument

    cases = {
        "modelled": reference_instrument().replace(**CHANGES),
        "misfit": reference_instrument().replace(
            **{**CHANGES, "detector.tail_slope_keV": 0.6}),
    }
    for name, truth in cases.items():
        started = time.perf_counter()
        zs, scales, qualities = [], [], []
        for seed in range(args.trials):
            z, scale, quality = trial(truth, seed, args.counts)
            zs.append(z)
            scales.append(scale)
            qualities.append(quality)
        z_all = np.concatenate(zs)
        unscaled = np.concatenate([z * s for z, s in zip(zs, scales, strict=True)])
        print(f"{name}: {args.trials} trials, {z_all.size} parameter estimates, "
              f"{time.perf_counter() - started:.0f} s; fit quality median "
              f"{np.median(qualities):.2f}, sigma scaled by {np.median(scales):.2f}")
        for label, values in (("reported sigma", z_all), ("unscaled Fisher sigma", unscaled)):
            within1 = float(np.mean(np.abs(values) <= 1.0))
            within2 = float(np.mean(np.abs(values) <= 2.0))
            print(f"  {label:22s} within 1 sigma {within1:.2f} (0.68), within 2 sigma "
                  f"{within2:.2f} (0.95); rms z {float(np.sqrt(np.mean(values**2))):.2f}")


if __name__ == "__main__":
    main()
