"""``xrfquant quantify CUBE... -o OUTDIR``: element maps for many cubes, headless.

For every cube this writes into OUTDIR what the napari Quantify dock's Export
writes (:func:`napari_xrfquant.results.export_result`, the one export path):
``<name>_wt_percent.tif``, ``<name>_sigma_wt_percent.tif``,
``<name>_fit_quality.tif`` (float32 ImageJ TIFFs with element labels, units,
pixel size and the model id), ``<name>_statistics.csv`` (the whole map) and
with ``--preview`` ``<name>_preview.png``; ``--layout per-element`` gives one
TIFF per element (``<name>_Au_wt_percent.tif``, ...). ``summary.csv`` gathers
the statistics of all cubes. Cubes are processed one after another, each chunk
by chunk, so memory stays bounded however many there are; with ``--cluster``
each cube is a task on dask.distributed workers. ``xrfquant-manifest.json``
records the cubes done, so a rerun skips them (:mod:`napari_xrfquant.campaign`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from napari_xrfquant.cli._cube_options import add_cube_options
from napari_xrfquant.cli.quantify_physics import add_physics_options, run_physics, spectra_bar
from napari_xrfquant.errors import XRFQuantError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``quantify`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "quantify",
        help="element maps (wt%%) with uncertainty and fit quality for XRF cubes",
        description="Quantify every pixel of one or more XRF cubes with a model bundle, or "
        "with the simulator of an instrument file for any element list (--instrument FILE "
        "--elements LIST, no network), and write element-map TIFFs, uncertainty and "
        "fit-quality TIFFs and a summary CSV.",
    )
    parser.add_argument("cubes", nargs="+", metavar="CUBE", help="cube files (HDF5, TIFF, npy)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_frame_options(parser)
    add_physics_options(parser)
    parser.add_argument(
        "--overwrite", action="store_true",
        help="quantify every cube again and replace existing outputs (default: cubes done "
        "before with the same settings and model are skipped; other outputs are refused)",
    )
    parser.add_argument(
        "--cluster", default=None, metavar="local[:N]|ADDRESS",
        help="run the cubes as tasks on dask.distributed: N local worker processes "
        "(local: one per core) or the scheduler at ADDRESS (tcp://host:8786); each "
        "worker loads the model once (the cluster extra)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def add_frame_options(parser: argparse.ArgumentParser) -> None:
    """The options of how each frame is quantified and written (quantify and watch)."""
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument(
        "--layout",
        choices=("stack", "per-element"),
        default="stack",
        help="one multi-page TIFF per map kind, or one TIFF per element",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="spectra per chunk")
    parser.add_argument(
        "--mask-below",
        type=float,
        default=None,
        metavar="COUNTS",
        help="pixels with fewer counts in total are background: NaN in the element and "
        "sigma maps, left out of the summary (default 200; 0: no mask)",
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="N",
        help="N steps of a Poisson maximum-likelihood fit of each spectrum with the simulator, "
        "starting at the network's answer; sigma and fit quality then come from the fit",
    )
    parser.add_argument(
        "--instrument",
        default=None,
        metavar="FILE",
        help="with --refine: the (calibrated) instrument to fit with (default: the model's); "
        "without --model and --refine: quantify with its simulator, no network (with "
        "--elements, or the elements each cube shows)",
    )
    parser.add_argument(
        "--counts-scale",
        default=None,
        metavar="VALUE|MAP",
        help="turn the data into counts: multiply by VALUE, or by the file's per-pixel map "
        "MAP (e.g. I0 for I0-normalised data; xrfquant info lists them). Default: integer "
        "data are counts, spectra summing to 1 are noise-free, non-integer data with an I0 "
        "map are multiplied by it, others are used as they are (each with a warning)",
    )
    parser.add_argument("--preview", action="store_true", help="also write a PNG preview")
    add_cube_options(parser)


def frame_settings(args: argparse.Namespace) -> Any:
    """The :class:`~napari_xrfquant.campaign.FrameSettings` the options describe.

    Raises
    ------
    XRFQuantError
        For a value out of range, with the option's name.
    """
    from pydantic import ValidationError

    from napari_xrfquant.campaign import FrameSettings
    from napari_xrfquant.cli._cube_options import parse_calibration
    from napari_xrfquant.results import DEFAULT_MASK_BELOW_COUNTS

    mask = getattr(args, "mask_below", None)
    values = {
        "model": args.model,
        "device": args.device,
        "batch_size": args.batch_size,
        "refine": getattr(args, "refine", 0),
        "instrument": getattr(args, "instrument", None),
        "counts_scale": getattr(args, "counts_scale", None),
        "mask_below": DEFAULT_MASK_BELOW_COUNTS if mask is None else mask,
        "layout": args.layout,
        "preview": args.preview,
        "dataset": getattr(args, "dataset", None),
        "energy_axis": getattr(args, "energy_axis", None),
        "calibration": parse_calibration(getattr(args, "calibration", None)),
        "pyxrf_parameters": getattr(args, "pyxrf_parameters", None),
    }
    try:
        settings = FrameSettings(**values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        option = "--" + str(error["loc"][0]).replace("_", "-")
        given = values.get(str(error["loc"][0]))
        raise XRFQuantError(f"{option} {given}: {error['msg'].lower()}") from None
    if settings.instrument is not None and not settings.refine:
        raise XRFQuantError("--instrument is the instrument of --refine; give --refine N too")
    return settings


def run(args: argparse.Namespace) -> int:
    """Quantify every cube in ``args.cubes``; return the exit status (1 if a frame failed)."""
    if getattr(args, "elements", None) or (
            args.instrument is not None and args.model is None and not args.refine):
        return run_physics(args)  # no network: the elements given, or those found
    from napari_xrfquant.campaign import cached_model, connect, iter_campaign, plan_campaign
    from napari_xrfquant.inference import resolve_device
    from napari_xrfquant.jobs import drive

    settings = frame_settings(args)
    resolve_device(settings.device)  # refuse a bad device before any work
    if settings.instrument is not None:
        from napari_xrfquant.instrument import load_instrument

        load_instrument(settings.instrument)  # a bad instrument file: refused now, not per frame
    model = cached_model(settings.model)
    plan = plan_campaign(args.cubes, args.output, settings, model, overwrite=args.overwrite)
    cluster = getattr(args, "cluster", None)
    if cluster is None:
        summary = drive(iter_campaign(plan, model, progress=spectra_bar(args)),
                        _report(args, len(plan.paths)))
    else:
        with connect(cluster) as client:
            if not args.quiet:
                print(f"cluster: {len(client.scheduler_info()['workers'])} workers; "
                      f"dashboard {client.dashboard_link}", flush=True)
            summary = drive(iter_campaign(plan, client=client), _report(args, len(plan.paths)))
    for outcome in summary.failed:
        print(f"xrfquant quantify: error: {outcome.describe()}", file=sys.stderr)
    if not args.quiet:
        print(f"{len(summary.done)} quantified, {len(summary.skipped)} done before, "
              f"{len(summary.failed)} failed; summary {summary.summary_path}; outputs in "
              f"{plan.outdir}")
    return 1 if summary.failed else 0


def _report(args: argparse.Namespace, total: int) -> Any:
    """Print each frame's line (and, with several, a frames bar on stderr)."""
    bar = tqdm(total=total, desc="frames", unit=" frame", disable=args.quiet or total < 2,
               leave=False, file=sys.stderr)

    def report(outcome: Any) -> None:
        bar.update(1)
        for note in outcome.notes:
            tqdm.write(f"xrfquant quantify: warning: {note}", file=sys.stderr)
        if not args.quiet and outcome.status != "failed":
            tqdm.write(outcome.describe(), file=sys.stdout)
        if bar.n >= total:
            bar.close()

    return report
