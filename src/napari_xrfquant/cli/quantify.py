"""``xrfquant quantify CUBE... -o OUTDIR``: element maps for many cubes, headless.

For every cube this writes into OUTDIR what the napari Quantify dock's Export
writes (:func:`napari_xrfquant.results.export_result`, the one export path):
``<name>_wt_percent.tif``, ``<name>_sigma_wt_percent.tif``,
``<name>_fit_quality.tif`` (float32 ImageJ TIFFs with element labels, units,
pixel size and the model id), ``<name>_statistics.csv`` (the whole map) and
with ``--preview`` ``<name>_preview.png``; ``--layout per-element`` gives one
TIFF per element (``<name>_Au_wt_percent.tif``, ...). ``summary.csv`` gathers
the statistics of all cubes. Cubes are processed one after another, each chunk
by chunk, so memory stays bounded however many there are.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from napari_xrfquant.cli._cube_options import add_cube_options, open_cube
from napari_xrfquant.errors import XRFQuantError

SUMMARY_FILE = "summary.csv"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``quantify`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "quantify",
        help="element maps (wt%%) with uncertainty and fit quality for XRF cubes",
        description="Quantify every pixel of one or more XRF cubes with a model bundle "
        "and write element-map TIFFs, uncertainty and fit-quality TIFFs and a summary CSV.",
    )
    parser.add_argument("cubes", nargs="+", metavar="CUBE", help="cube files (HDF5, TIFF, npy)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
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
        help="with --refine: the (calibrated) instrument to fit with (default: the model's)",
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
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--preview", action="store_true", help="also write a PNG preview")
    add_cube_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def mask_threshold(args: argparse.Namespace) -> float:
    """The background threshold in counts: ``--mask-below``, else the shared default."""
    from napari_xrfquant.results import DEFAULT_MASK_BELOW_COUNTS

    value = getattr(args, "mask_below", None)
    threshold = DEFAULT_MASK_BELOW_COUNTS if value is None else float(value)
    if not math.isfinite(threshold) or threshold < 0:
        raise XRFQuantError(f"--mask-below must be 0 or a positive count, not {value}")
    return threshold


def quantify_file(
    path: Path,
    outdir: Path,
    model: Any,
    args: argparse.Namespace,
) -> tuple[Any, list[Path], list[Any]]:
    """Quantify one cube file and export it; return the result, its files and statistics."""
    from napari_xrfquant.inference import iter_quantify
    from napari_xrfquant.inference.counts import resolve_counts_scale
    from napari_xrfquant.progress import drive
    from napari_xrfquant.results import (
        background_mask,
        export_result,
        mask_background,
        region_statistics,
        whole_map,
    )

    cube = open_cube(args, path)
    scale = resolve_counts_scale(
        getattr(args, "counts_scale", None), cube.data, cube.metadata.get("maps")
    )
    generator = iter_quantify(
        cube.data,
        cube.energy_keV,
        model=model,
        device=args.device,
        batch_size=args.batch_size,
        refine=getattr(args, "refine", 0),
        instrument=getattr(args, "refine_instrument", None),
        counts_scale=scale,
    )
    bars: list[Any] = []

    def advance(event: Any) -> None:
        if not bars:  # only once work runs: an early error prints its line alone
            bars.append(tqdm(total=event.total, desc=path.name, unit=" spectra",
                             disable=args.quiet, leave=False, file=sys.stderr))
        bars[0].update(event.done - bars[0].n)

    try:
        result = drive(generator, advance)
    finally:
        for bar in bars:
            bar.close()
    threshold = mask_threshold(args)
    if threshold > 0:
        mask = background_mask(cube.total_counts() * result.counts_scale, threshold)
        result = mask_background(result, mask, threshold)
    rows, cols = result.image_shape[:2]
    statistics = region_statistics(result, [whole_map((rows, cols))], source=path.name)
    written = export_result(
        outdir,
        result,
        path.stem,
        layout=args.layout,
        pixel_size_um=cube.metadata.get("pixel_size_um"),
        statistics=statistics,
        source=path.name,
        preview=args.preview,
        overwrite=args.overwrite,
    )
    return result, written, statistics


def run(args: argparse.Namespace) -> int:
    """Quantify every cube in ``args.cubes``; return the exit status."""
    from napari_xrfquant.inference import resolve_device
    from napari_xrfquant.models.bundle import load_model
    from napari_xrfquant.results import export_plan, write_statistics_csv

    paths = [Path(p) for p in args.cubes]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
    stems = [p.stem for p in paths]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise XRFQuantError(f"several cubes are named {duplicates[0]!r}; their outputs would clash")
    if args.batch_size is not None and args.batch_size < 1:
        raise XRFQuantError(f"--batch-size must be positive, got {args.batch_size}")
    mask_threshold(args)  # refuse a bad threshold or device before any work
    resolve_device(args.device)
    if args.refine < 0:
        raise XRFQuantError(f"--refine must be 0 or a positive number of steps, got {args.refine}")
    if args.instrument is not None and not args.refine:
        raise XRFQuantError("--instrument is the instrument of --refine; give --refine N too")
    if args.instrument is not None:
        from napari_xrfquant.instrument import load_instrument

        args.refine_instrument = load_instrument(args.instrument)
    model = load_model(args.model)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise XRFQuantError(f"{outdir}: exists and is not a folder")
    if not args.overwrite:
        planned = [
            item.path
            for stem in stems
            for item in export_plan(outdir, stem, model.elements, args.layout, True, args.preview)
        ] + [outdir / SUMMARY_FILE]
        clash = [p for p in planned if p.exists()]
        if clash:
            raise FileExistsError(f"{clash[0]}: exists; use --overwrite to replace outputs")
    outdir.mkdir(parents=True, exist_ok=True)
    rows: list[Any] = []
    for path in paths:
        result, _written, statistics = quantify_file(path, outdir, model, args)
        rows += statistics
        if not args.quiet:
            means = ", ".join(f"{r.element} {r.mean_wt_percent:.2f}" for r in statistics)
            print(f"{path.name}: {result.seconds:.2f} s on {result.device}; mean wt%: {means}")
    summary = write_statistics_csv(outdir / SUMMARY_FILE, rows, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {summary} and maps for {len(paths)} cube(s) to {outdir}")
    return 0
