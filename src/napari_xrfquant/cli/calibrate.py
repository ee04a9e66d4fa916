"""``xrfquant calibrate CUBE -o OUTDIR``: learn the instrument from the cube itself.

Groups the cube's pixels (standards from ``--labels``/``--standard``, the rest by
k-means), fits the free instrument parameters and the groups' compositions by
Poisson maximum likelihood (:mod:`napari_xrfquant.calibration`) and writes, into
OUTDIR (nothing is replaced without ``--overwrite``):

- ``instrument.toml``: the calibrated instrument, for ``xrfquant train`` and the Train dock;
- ``calibration.json``: each parameter's start, fitted value, 1-sigma and whether the
  data pinned it down, their correlations, and each group's composition and fit
  quality before and after;
- ``calibration.png``: each standard measured against simulated, before and after
  (log scale), and the fitted optic transmission with its 1-sigma band;
- with ``--retrain``, ``model/``: the model fine-tuned on the calibrated instrument, or a
  new model of the elements when the calibration started from ``--instrument``
  (:mod:`napari_xrfquant.calibration.retrain`), which ``xrfquant quantify --model`` takes.

It starts from a model bundle (its elements and instrument; the bundled one by
default) or from ``--instrument FILE --elements LIST``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant.calibration.session import OUTPUTS, parse_range
from napari_xrfquant.cli._cube_options import add_cube_options
from napari_xrfquant.errors import XRFQuantError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``calibrate`` on the ``xrfquant`` subparsers."""
    from napari_xrfquant.instrument_parameters import DEFAULT_FREE, PARAMETERS

    parser = subparsers.add_parser(
        "calibrate",
        help="fit the instrument to a cube (standards and unlabelled pixels)",
        description="Learn the instrument from a measured cube: a Poisson maximum-likelihood "
        "fit of the instrument parameters and the compositions of groups of pixels, with "
        "standards fixed to their certificates.",
    )
    parser.add_argument("cube", metavar="CUBE", help="cube file (HDF5, TIFF, npy)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument(
        "--model", default=None, help="model bundle to start from (default: bundled)"
    )
    parser.add_argument(
        "--instrument",
        default=None,
        metavar="FILE",
        help="instrument file to start from (with --elements)",
    )
    parser.add_argument(
        "--elements",
        default=None,
        metavar="LIST",
        help="elements of the sample, e.g. Au,Ag,Cu (with --instrument; default: those "
        "the cube shows, as xrfquant elements finds them)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        metavar="LABELS",
        help="TIFF or .npy of integer region labels the size of the map (0: none)",
    )
    parser.add_argument(
        "--standard",
        action="append",
        default=[],
        metavar="LABEL=STANDARD",
        help="a labelled region's standard: LABEL=ERM-EB506, LABEL=Au=75,Ag=25 or "
        "LABEL=FILE.csv (repeatable); without LABEL= the whole map is that standard "
        "(single spectra)",
    )
    parser.add_argument(
        "--free",
        default=None,
        metavar="PARAMS",
        help="instrument parameters to fit, comma-separated, from: "
        + ", ".join([*PARAMETERS, "optic"])
        + " (default: " + ",".join(DEFAULT_FREE) + "; the optic only when the instrument "
        "has one, pileup_fraction when the cube shows sum peaks, setup_fraction when the "
        "instrument names its own lines)",
    )
    parser.add_argument(
        "--optic-knots",
        default="",
        metavar="KEV,KEV,...",
        help="fit the optic as log-transmission knots at these energies (a smooth monotone "
        "cubic between them) instead of two sigmoids; 'optic' in --free fits them",
    )
    parser.add_argument(
        "--monotone",
        action="store_true",
        help="with --optic-knots: keep the transmission non-increasing with energy",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="KEV-KEV",
        help="energy range left out of the fit, e.g. 2.8-3.1 (repeatable)",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=16,
        metavar="N",
        help="groups for the pixels outside the standards (default: 16)",
    )
    parser.add_argument(
        "--mask-below",
        type=float,
        default=200.0,
        metavar="COUNTS",
        help="pixels with fewer counts are background (default: 200)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=100.0,
        metavar="S",
        help="time budget of the whole calibration (grouping, start and fit); sigma still "
        "comes from the curvature where it stops (default: 100)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="then fine-tune the model on the calibrated instrument, or (from --instrument) "
        "train a new model of the elements for it (OUTDIR/model)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=10.0,
        metavar="N",
        help="time budget of --retrain, simulation included (default: 10)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cube_options(parser)
    return parser


#: The key of a standard given without a label: it is the whole map.
WHOLE_MAP = 0


def parse_standards(entries: list[str]) -> dict[int, Any]:
    """``["1=ERM-EB506", "4=Au=75,Ag=25"]`` -> ``{1: Standard, 4: Standard}``.

    An entry without a label (``"BHVO-2G"``, ``"std.csv"``, ``"Au=75,Ag=25"``)
    is the standard of the whole map, under :data:`WHOLE_MAP`, and must be the
    only one.
    """
    from napari_xrfquant.physics.standards import parse_standard

    out = {}
    for entry in entries:
        label, sep, value = entry.partition("=")
        if not sep or not label.strip().lstrip("+-").isdigit():
            out[WHOLE_MAP] = parse_standard(entry)
            continue
        number = int(label)
        if number < 1:
            raise XRFQuantError(f"--standard {entry!r}: give LABEL=STANDARD with a label >= 1")
        out[number] = parse_standard(value)
    if WHOLE_MAP in out and len(out) > 1:
        raise XRFQuantError("a --standard without a label is the whole map: give it alone, "
                            "or give every standard a label")
    return out


def starting_point(args: argparse.Namespace) -> tuple[list[str] | None, Any, Any]:
    """Elements, instrument and model (or None) the calibration starts from; the
    elements are None for an instrument without ``--elements`` (those the cube
    shows, searched once the cube is open)."""
    from napari_xrfquant.instrument import load_instrument
    from napari_xrfquant.models.bundle import load_model
    from napari_xrfquant.physics.lines import parse_elements

    if args.instrument is not None or args.elements is not None:
        if args.instrument is None or args.model is not None:
            raise XRFQuantError("start from --model, or from --instrument FILE (with "
                                "--elements, or the elements the cube shows)")
        if args.elements is None:
            return None, load_instrument(args.instrument), None
        # H-F may be listed as the matrix (oxygen of a rock): absorbed and scattered, no line
        return parse_elements(args.elements, light=True), load_instrument(args.instrument), None
    model = load_model(args.model)
    return list(model.elements), model.instrument, model


def run(args: argparse.Namespace) -> int:
    """Calibrate ``args.cube``; return the exit status."""
    from tqdm import tqdm

    from napari_xrfquant.calibration.session import (
        check_request,
        iter_calibration,
        parse_energies,
        with_knots_optic,
        write_calibration,
    )
    from napari_xrfquant.cli._cube_options import checked_mask_below, open_cube
    from napari_xrfquant.io.detectors import instrument_for_cube
    from napari_xrfquant.io.labels import read_labels
    from napari_xrfquant.jobs import drive

    outdir = Path(args.output)
    if not args.overwrite:
        clash = [outdir / name for name in OUTPUTS if (outdir / name).exists()]
        if clash:
            raise FileExistsError(f"{clash[0]}: exists; use --overwrite to replace outputs")
    if not args.max_seconds > 0:
        raise XRFQuantError(f"--max-seconds {args.max_seconds:g}: the time budget must be positive")
    if args.retrain and not args.minutes > 0:
        raise XRFQuantError(f"--minutes {args.minutes:g}: the time budget must be positive")
    mask_below = checked_mask_below(args.mask_below)
    free = None if args.free is None else [f.strip() for f in args.free.split(",") if f.strip()]
    exclude = [parse_range(text) for text in args.exclude]
    standards = parse_standards(args.standard)
    labels = read_labels(args.labels) if args.labels else None
    if WHOLE_MAP in standards and labels is not None:
        raise XRFQuantError("a --standard without a label is the whole map; with --labels, "
                            "give it its label (LABEL=STANDARD)")
    elements, instrument, model = starting_point(args)
    knots = parse_energies(args.optic_knots)
    if args.monotone and not knots:
        raise XRFQuantError("--monotone shapes a knots optic: give --optic-knots too")
    instrument = with_knots_optic(instrument, knots, args.monotone)
    cube = open_cube(args, args.cube, lazy=False)
    instrument = instrument_for_cube(instrument, cube.metadata)
    if elements is None:
        from napari_xrfquant.cli.elements import found_elements

        elements = found_elements(args, cube, "xrfquant calibrate", instrument)
    if WHOLE_MAP in standards:  # every pixel is that standard
        labels = np.ones(cube.data.shape[:2], dtype=np.int64)
        standards = {1: standards[WHOLE_MAP]}
    check_request(cube.energy_keV, elements, instrument, standards, free, exclude)  # refuse early
    started = time.perf_counter()  # --max-seconds: everything from here to the result
    generator = iter_calibration(
        cube.data,
        cube.energy_keV,
        elements,
        instrument,
        model,
        labels=labels,
        standards=standards,
        free=free,
        exclude_keV=exclude,
        n_clusters=args.clusters,
        mask_below_counts=mask_below,
        max_seconds=args.max_seconds,
        started=started,
    )
    with tqdm(
        desc="xrfquant calibrate", unit=" steps", disable=args.quiet, file=sys.stderr, leave=False
    ) as bar:

        def advance(event: Any) -> None:
            bar.total = event.total
            bar.update(event.done - bar.n)

        result = drive(generator, advance)
    write_calibration(outdir, result, elements, Path(args.cube).name, overwrite=args.overwrite)
    if args.retrain:
        retrain_model(args, outdir, model, standards, result, cube.energy_keV, elements)
    if result.warning:
        print(f"xrfquant calibrate: warning: {result.warning}", file=sys.stderr)
    if not args.quiet:
        print_parameters(result)
        print(
            f"fit quality of the group spectra: median {np.median(result.fit_quality_before):.2f} "
            f"before, {np.median(result.fit_quality_after):.2f} after; {result.seconds:.0f} s; "
            f"wrote {', '.join(OUTPUTS if args.retrain else OUTPUTS[:3])} to {outdir}"
        )
    return 0


def print_parameters(result: Any) -> None:
    """One line per free parameter: value, sigma, and why the data did not fix it."""
    for name in result.names:
        if name in result.flags:
            note, sigma = f" (not measured: {result.flags[name]})", "no sigma"
        else:
            note = " (not pinned down by these data)" if name in result.not_pinned else ""
            sigma = f"± {result.sigma[name]:.2g}"
        print(f"{name:22s} {result.values[name]:.6g} {sigma}{note}")
    if result.sigma_scale > 1.05:
        print(f"sigma scaled by {result.sigma_scale:.2f} (the square root of the fit quality "
              f"{result.fit_quality:.2f}): the model misses the data")


def retrain_model(
    args: argparse.Namespace,
    outdir: Path,
    model: Any,
    standards: dict[int, Any],
    result: Any,
    energy_keV: np.ndarray,
    elements: list[str],
) -> Path:
    """Fine-tune ``model`` on ``outdir/instrument.toml`` (a new model of ``elements``
    when it is None); write the bundle to ``outdir/model``."""
    from napari_xrfquant.calibration.session import iter_retrain
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.training.events import EpochEnd

    def report(event: Any) -> None:
        if isinstance(event, EpochEnd) and not args.quiet:
            print(f"retrain epoch {event.epoch}: val MAE {event.val_mae:.3f} wt%", file=sys.stderr)

    generator = iter_retrain(
        model,
        outdir / "instrument.toml",
        args.minutes,
        result,
        energy_keV,
        Path(args.cube).name,
        standards,
        elements=elements,
    )
    trained = drive(generator, report)
    target = trained.save(outdir / "model", overwrite=args.overwrite)
    if not args.quiet:
        levels = trained.metrics.get("test", {}).get("levels", {})
        maes = ", ".join(f"{k} {v['mae_wt']:.3f}" for k, v in levels.items())
        verb = "retrained" if model is not None else "trained a new model"
        print(
            f"{verb} {trained.model.model_id} in {len(trained.history)} epochs; "
            f"test MAE (wt%) {maes}; wrote {target}"
        )
    return target
