"""``xrfquant compare LABELLED.h5 -o REPORT_DIR``: which model to trust on labelled spectra.

k-fold cross-validation of the published baselines and our network
(:mod:`napari_xrfquant.evaluation`) on a labelled set in the project's
training-set format; writes ``report.md``, ``report.json`` and one MSE bar
chart per element.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from napari_xrfquant.errors import XRFQuantError

DEFAULT_MODELS = "lr,lasso,fcnn,cnn,mlp,axs"
#: Unlabelled pixels of a cube that axs reconstructs, and their least counts.
UNLABELLED_SPECTRA, UNLABELLED_MIN_COUNTS = 2000, 1000.0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``compare`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "compare",
        help="k-fold cross-validation of LR, LASSO, FCNN, CNN, our MLP and AXS on labelled spectra",
        description="Cross-validate models on a labelled training-set file (xrfquant-spectra "
        "HDF5 with wt_percent) and write report.md, report.json and MSE charts per element.",
    )
    parser.add_argument("labelled", metavar="LABELLED.h5", help="labelled spectra")
    parser.add_argument("-o", "--output", required=True, metavar="REPORT_DIR")
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--unlabelled", default=None, metavar="CUBE",
                        help="a cube of the same set-up whose pixels axs also reconstructs")
    parser.add_argument("--folds", type=int, default=10, help="k (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="fold shuffling (default: 0)")
    parser.add_argument("--mlp-model", default=None, metavar="BUNDLE",
                        help="the pre-trained network mlp fine-tunes (default: the bundled one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Cross-validate and write the report; return the exit status."""
    from tqdm import tqdm

    from napari_xrfquant.evaluation.compare import (
        check_labelled,
        iter_compare,
        read_labelled,
        write_report,
    )
    from napari_xrfquant.jobs import drive

    outdir = Path(args.output)
    if (outdir / "report.json").exists() and not args.overwrite:
        raise FileExistsError(f"{outdir / 'report.json'}: exists; use --overwrite to replace it")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise XRFQuantError("--models names no model")
    data, instrument = read_labelled(args.labelled)
    check_labelled(data.spectra, data.wt_percent, data.energy_keV, data.elements, models,
                   args.folds, instrument)  # refuse before any work
    unlabelled = None
    if args.unlabelled:
        from napari_xrfquant.io import read_cube
        from napari_xrfquant.training.axs import sample_unlabelled

        with read_cube(args.unlabelled) as cube:
            unlabelled = sample_unlabelled(cube.data, UNLABELLED_MIN_COUNTS, UNLABELLED_SPECTRA,
                                           args.seed)
    generator = iter_compare(data.spectra, data.wt_percent, data.energy_keV, data.elements,
                             models, args.folds, args.seed, instrument, args.mlp_model,
                             unlabelled)
    with tqdm(desc="xrfquant compare", unit=" fits", disable=args.quiet, file=sys.stderr,
              leave=False) as bar:

        def advance(event: Any) -> None:
            bar.total = event.total
            bar.set_postfix_str(event.stage)
            bar.update(event.done - bar.n)

        comparison = drive(generator, advance)
    write_report(outdir, comparison, overwrite=args.overwrite)
    if not args.quiet:
        best = comparison.best()
        for element in comparison.elements:
            scores = comparison.to_dict()["models"][best[element]]["per_element"][element]
            print(f"{element}: best {best[element]} (MSE {scores['mse']:.3g} ± "
                  f"{scores['se']:.2g} wt%², MAE {scores['mae']:.3g} wt%)")
        print(f"wrote report.md, report.json and {len(comparison.elements)} charts to {outdir}")
    return 0
