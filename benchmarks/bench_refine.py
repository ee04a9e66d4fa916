"""Physics refinement at quantify time on a cube from a hidden instrument.

The cube is :func:`napari_xrfquant.calibration.hidden.hidden_cube` (three BAM
standards, four unknown alloys; a set-up that is not the reference one). Prints
the region-mean MAE (wt%, the four unknowns), the median per-pixel fit quality
and the speed of:

- the bundled network alone;
- the bundled network refined with ``--refine N`` on the reference instrument
  (no calibration: the safety net alone);
- the bundled network refined on the instrument ``calibrate()`` fitted from
  the cube with its three standards (the calibrate-then-quantify workflow).

Usage::

    .venv/bin/python benchmarks/bench_refine.py [--steps 3] [--rows 32] [--counts 5000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def region_mae(concentrations, labels, truth) -> float:
    """MAE (wt%) of the unknown regions' mean compositions (labels 4-7)."""
    means = np.array([np.nanmean(concentrations[labels == k], axis=0) for k in range(4, 8)])
    return float(np.abs(means - truth[3:]).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=32, help="rows of the cube (7 x 16 columns)")
    parser.add_argument("--counts", type=float, default=5000.0, help="counts per pixel")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import napari_xrfquant as xq
    from napari_xrfquant.calibration.fit import calibrate
    from napari_xrfquant.calibration.groups import group_pixels
    from napari_xrfquant.calibration.hidden import ELEMENTS, STANDARDS, hidden_cube
    from napari_xrfquant.instrument_parameters import DEFAULT_FREE
    from napari_xrfquant.models import load_model
    from napari_xrfquant.physics.standards import library

    cube = hidden_cube((args.rows, 16), args.counts, seed=1)
    n = cube.labels.size
    model = load_model()
    standards = {i + 1: library()[name] for i, name in enumerate(STANDARDS)}
    started = time.perf_counter()
    groups = group_pixels(cube.counts, ELEMENTS, labels=cube.labels, standards=standards)
    start_wt = xq.quantify(groups.counts, cube.energy_keV, model=model, device="cpu")
    calibrated = calibrate(groups, cube.energy_keV, ELEMENTS, model.instrument, free=DEFAULT_FREE,
                           start_wt_percent=start_wt.concentrations).instrument
    print(f"cube {cube.counts.shape}, {args.counts:g} counts/pixel; calibration "
          f"{time.perf_counter() - started:.1f} s")
    runs = [
        ("bundled network", {}),
        (f"refine {args.steps}, reference instrument", {"refine": args.steps}),
        (f"refine {args.steps}, calibrated instrument",
         {"refine": args.steps, "instrument": calibrated}),
    ]
    print("\nrun                                        region MAE  median fit quality  spectra/s")
    for title, options in runs:
        started = time.perf_counter()
        result = xq.quantify(cube.counts, cube.energy_keV, model=model, device="cpu", **options)
        rate = n / (time.perf_counter() - started)
        mae = region_mae(result.concentrations, cube.labels, cube.wt_percent)
        print(f"  {title:40s} {mae:7.3f} wt%  {np.nanmedian(result.fit_quality):8.2f}"
              f"  {rate:12.0f}")
    print(f"\na 264 x 264 frame at the last rate: {264 * 264 / rate / 60:.1f} min on "
          f"{args.threads} CPU threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
