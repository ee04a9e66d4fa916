"""Do the time budgets bound the work? ``--max-seconds`` and ``--minutes``, measured.

1. ``xrfquant calibrate SAMPLE --max-seconds 20`` (the bundled model's start, 16
   clusters), as a user runs it: wall time, the calibration's own seconds
   (``calibration.json``) and the rest (start-up: imports, reading, writing).
2. A calibration from an instrument file, then a new model trained for it
   (``calibrate --instrument --elements --retrain --minutes M``, through the same
   generators the CLI drives), and the bundled model fine-tuned on it
   (``calibrate --retrain --minutes M``): each phase's seconds against its budget.
3. The new model's accuracy on simulated spectra of that set-up (MAE at 1e3, 1e4
   and 1e5 counts), beside the bundled model's (trained an hour for the same set-up).

Run: ``python benchmarks/bench_calibrate_budget.py [--minutes 1]`` (``--minutes 10``
for the accuracy of a ten-minute model).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


def cli_sample_budget(seconds: float) -> None:
    from napari_xrfquant.sample import sample_cube_path

    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "napari_xrfquant.cli", "calibrate",
                        str(sample_cube_path()), "-o", folder, "--max-seconds", str(seconds),
                        "--quiet"], check=True)
        wall = time.perf_counter() - began
        record = json.loads((Path(folder) / "calibration.json").read_text())
    print(f"1. xrfquant calibrate SAMPLE --max-seconds {seconds:g}: wall {wall:.1f} s, "
          f"calibration {record['seconds']:.1f} s, start-up and writing "
          f"{wall - record['seconds']:.1f} s; fit quality {record['fit_quality']:.2f}")


def new_model(minutes: float, fine_tune: bool = True) -> object:
    from napari_xrfquant.calibration.session import (
        iter_calibration,
        iter_retrain,
        write_calibration,
    )
    from napari_xrfquant.instrument import reference_instrument, save_instrument
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.models.bundle import load_model
    from napari_xrfquant.physics import simulate

    reference = reference_instrument()
    rng = np.random.default_rng(0)
    wt = rng.dirichlet(np.ones(len(ELEMENTS)), size=256) * 100
    cube = rng.poisson(simulate(wt, ELEMENTS, instrument=reference).reshape(16, 16, -1) * 2e4)
    with tempfile.TemporaryDirectory() as folder:
        save_instrument(reference, Path(folder) / "set-up.toml")
        began = time.perf_counter()
        result = drive(iter_calibration(cube, reference.energy_axis_keV(), ELEMENTS, reference,
                                        max_seconds=20.0))
        calibrated = time.perf_counter() - began
        write_calibration(folder, result, ELEMENTS, "simulated")
        began = time.perf_counter()
        trained = drive(iter_retrain(None, Path(folder) / "instrument.toml", minutes, result,
                                     reference.energy_axis_keV(), "simulated",
                                     elements=ELEMENTS))
        training = time.perf_counter() - began
        if fine_tune:
            began = time.perf_counter()
            tuned = drive(iter_retrain(load_model(), Path(folder) / "instrument.toml", minutes,
                                       result, reference.energy_axis_keV(), "simulated"))
            print(f"   fine-tune of the bundled model (budget {60 * minutes:.0f} s): "
                  f"{time.perf_counter() - began:.1f} s, {len(tuned.history)} epochs")
    print(f"2. calibration (budget 20 s): {calibrated:.1f} s; new model (budget "
          f"{60 * minutes:.0f} s): {training:.1f} s, {len(trained.history)} epochs, "
          f"{trained.config.n_spectra} spectra asked for")
    return trained.model


def accuracy(model: object, label: str) -> None:
    from napari_xrfquant.inference import quantify
    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.physics import simulate

    reference = reference_instrument()
    rng = np.random.default_rng(7)
    truth = rng.dirichlet(np.ones(len(ELEMENTS)), size=1000) * 100
    spectra = simulate(truth, ELEMENTS, instrument=reference)
    figures = []
    for counts in (1e3, 1e4, 1e5):
        found = quantify(rng.poisson(spectra * counts), reference.energy_axis_keV(),
                         model=model, device="cpu")
        figures.append(f"{counts:.0e} {np.abs(found.concentrations - truth).mean():.2f}")
    print(f"3. {label}: MAE (wt%) at {', '.join(figures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-fine-tune", action="store_true",
                        help="leave out the bundled model's fine-tune")
    args = parser.parse_args()
    from napari_xrfquant.models.bundle import load_model

    cli_sample_budget(args.seconds)
    model = new_model(args.minutes, fine_tune=not args.no_fine_tune)
    accuracy(model, f"new model ({args.minutes:g} min)")
    accuracy(load_model(), "bundled model")


if __name__ == "__main__":
    main()
