"""Which model wins on labelled spectra of a non-reference set-up: 10-fold cross-validation.

180 labelled spectra of random Au-Ag-Cu-Ni-Zn alloys (Dirichlet 0.7 compositions)
simulated with the hidden instrument of :mod:`napari_xrfquant.calibration.hidden`
at about 1e4 counts each (Poisson), cross-validated for lr, lasso, fcnn, cnn,
mlp (the bundled network fine-tuned) and axs (the same with the reconstruction
loss, its decoder learning the instrument, on the fold's spectra plus 2000
unlabelled spectra of other random alloys from the same set-up). Prints the
time, the report and the winners; writes the report into a temporary folder
(or ``--out``).

Usage::

    .venv/bin/python benchmarks/bench_compare.py [--folds 10] [--n 180] [--unlabelled 2000]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--n", type=int, default=180)
    parser.add_argument("--counts", type=float, default=1e4)
    parser.add_argument("--unlabelled", type=int, default=2000, help="unlabelled spectra")
    parser.add_argument("--out", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from napari_xrfquant.calibration.hidden import ELEMENTS, hidden_instrument
    from napari_xrfquant.evaluation.compare import compare, report_markdown, write_report
    from napari_xrfquant.physics import simulate

    rng = np.random.default_rng(0)
    wt = rng.dirichlet(np.full(len(ELEMENTS), 0.7), size=args.n) * 100
    instrument = hidden_instrument()
    counts = rng.poisson(simulate(wt, list(ELEMENTS), instrument=instrument) * args.counts)
    unlabelled = None
    if args.unlabelled:
        others = rng.dirichlet(np.full(len(ELEMENTS), 0.7), size=args.unlabelled) * 100
        unlabelled = rng.poisson(
            simulate(others, list(ELEMENTS), instrument=instrument) * args.counts
        )
    started = time.perf_counter()
    result = compare(counts, wt, instrument.energy_axis_keV(), list(ELEMENTS),
                     folds=args.folds, instrument=instrument, unlabelled=unlabelled)
    seconds = time.perf_counter() - started
    out = args.out or tempfile.mkdtemp(prefix="compare_")
    write_report(out, result, overwrite=True)
    print(f"{args.n} labelled and {args.unlabelled} unlabelled spectra, {args.folds} folds, "
          f"{len(result.scores)} models: "
          f"{seconds / 60:.1f} min "
          f"(report in {out})\n")
    print(report_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
