"""``xrfquant quantify CUBE... -o OUTDIR``: element maps for many cubes, headless.

For every cube this writes, into OUTDIR (float32 ImageJ TIFFs with element
labels, pixel size and the model id, see :mod:`napari_xrfquant.io.maps`):

- ``<name>_wt.tif``: the element maps in wt% (with ``--layout per-element``,
  ``<name>_Au.tif``, ``<name>_Ag.tif``, ...);
- ``<name>_sigma.tif``: the calibrated 1-sigma in wt% (``<name>_Au_sigma.tif``, ...);
- ``<name>_fit_quality.tif``: the fit-quality map (about 1 where the model
  explains the spectrum);
- ``<name>_preview.png`` with ``--preview``;

and one ``summary.csv`` over all cubes (mean and standard deviation of each
element map, mean 1-sigma, median fit quality). Cubes are processed one after
another, each chunk by chunk, so memory stays bounded however many there are.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
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
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--preview", action="store_true", help="also write a PNG preview")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


class ProgressBar:
    """A one-line text progress bar on a stream (stderr), redrawn at most 10 times a second."""

    def __init__(self, label: str, stream: Any = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {100 * done / max(total, 1):5.1f} %")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def output_files(
    outdir: Path, stem: str, layout: str, elements: list[str], preview: bool
) -> dict[str, list[Path]]:
    """The files written for one cube, by kind (naming rules of :mod:`napari_xrfquant.io.maps`).

    ``stack``: ``<stem>_wt.tif``, ``<stem>_sigma.tif``, ``<stem>_fit_quality.tif``;
    ``per-element``: ``<stem>_Au.tif``, ``<stem>_Au_sigma.tif``, ...,
    ``<stem>_fit_quality.tif``.
    """
    from napari_xrfquant.io.maps import file_label, map_label

    if layout == "stack":
        files = {
            "concentration": [outdir / f"{stem}_wt.tif"],
            "uncertainty": [outdir / f"{stem}_sigma.tif"],
        }
    else:
        files = {
            kind: [outdir / f"{stem}_{file_label(map_label(e, kind))}.tif" for e in elements]
            for kind in ("concentration", "uncertainty")
        }
    files["fit-quality"] = [outdir / f"{stem}_fit_quality.tif"]
    if preview:
        files["preview"] = [outdir / f"{stem}_preview.png"]
    return files


def _existing_outputs(
    outdir: Path, stems: list[str], layout: str, elements: list[str], preview: bool
) -> list[Path]:
    found = [
        path
        for stem in stems
        for paths in output_files(outdir, stem, layout, elements, preview).values()
        for path in paths
        if path.exists()
    ]
    if (outdir / SUMMARY_FILE).exists():
        found.append(outdir / SUMMARY_FILE)
    return found


def summary_rows(name: str, result: Any) -> list[dict[str, Any]]:
    """One CSV row per element: mean and sd of the map, mean 1-sigma, median fit quality."""
    rows = []
    fit = result.fit_quality[np.isfinite(result.fit_quality)]
    fit_median = float(np.median(fit)) if fit.size else float("nan")
    for index, element in enumerate(result.elements):
        values = result.concentrations[..., index]
        sigma = result.uncertainty[..., index]
        finite = np.isfinite(values)
        rows.append(
            {
                "file": name,
                "element": element,
                "mean_wt_percent": float(np.mean(values[finite])) if finite.any() else float("nan"),
                "sd_wt_percent": float(np.std(values[finite])) if finite.any() else float("nan"),
                "mean_sigma_wt_percent": float(np.mean(sigma[finite]))
                if finite.any()
                else float("nan"),
                "median_fit_quality": fit_median,
                "pixels": int(finite.sum()),
                "model": result.model_id,
            }
        )
    return rows


def write_summary(path: Path, rows: list[dict[str, Any]], overwrite: bool) -> Path:
    """Write the summary CSV atomically (numbers with 6 significant digits)."""
    fields = list(rows[0]) if rows else ["file", "element"]
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()}
                )
    return path


def write_preview(path: Path, result: Any, title: str, overwrite: bool) -> Path:
    """A PNG with one panel per element map (wt%) and the fit-quality map (matplotlib Agg)."""
    from matplotlib.figure import Figure

    maps = np.asarray(result.concentrations)
    if maps.ndim != 3:
        raise XRFQuantError(f"{title}: a preview needs 2-D maps, got shape {maps.shape[:-1]}")
    panels = [*result.elements, "fit quality"]
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.0 * columns, 3.4 * rows), dpi=100, layout="constrained")
    for index, label in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        image = maps[..., index] if index < len(result.elements) else result.fit_quality
        finite = image[np.isfinite(image)]
        high = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        shown = axes.imshow(
            image,
            cmap="magma" if index < len(result.elements) else "viridis",
            vmin=0.0,
            vmax=max(high, 1e-6),
            interpolation="nearest",
        )
        axes.set_title(f"{label} (wt%)" if index < len(result.elements) else label)
        axes.set_xticks([])
        axes.set_yticks([])
        figure.colorbar(shown, ax=axes, shrink=0.85)
    figure.suptitle(f"{title} - {result.model_id}")
    with atomic_path(path, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png")
    return path


def mask_threshold(args: argparse.Namespace) -> float:
    """The background threshold in counts: ``--mask-below``, else the shared default."""
    from napari_xrfquant.inference import DEFAULT_MASK_BELOW_COUNTS

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
) -> tuple[Any, list[Path]]:
    """Quantify one cube file and write its maps; return the result and the files written."""
    from napari_xrfquant.inference import background_mask, iter_quantify, mask_background
    from napari_xrfquant.io import read_cube, write_element_maps

    cube = read_cube(path)
    progress = None if args.quiet else ProgressBar(path.name)
    generator = iter_quantify(
        cube.data,
        cube.energy_keV,
        model=model,
        device=args.device,
        batch_size=args.batch_size,
        progress=progress,
    )
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            result = stop.value
            break
    if result.concentrations.ndim != 3:
        raise XRFQuantError(f"{path}: expected an image cube (H, W, channels)")
    threshold = mask_threshold(args)
    if threshold > 0:
        result = mask_background(result, background_mask(cube.total_counts(), threshold))
    metadata = cube.metadata if isinstance(cube.metadata, dict) else {}
    pixel_size = metadata.get("pixel_size_um")
    files = output_files(outdir, path.stem, args.layout, result.elements, args.preview)
    extra = {"model_id": result.model_id, "source": path.name, "mask_below_counts": threshold}
    written: list[Path] = []
    for kind, values, unit in (
        ("concentration", result.concentrations, "wt%"),
        ("uncertainty", result.uncertainty, "wt%"),
    ):
        target = files[kind][0] if args.layout == "stack" else outdir / f"{path.stem}.tif"
        written += write_element_maps(
            target,
            np.moveaxis(values, -1, 0),
            result.elements,
            unit=unit,
            pixel_size_um=pixel_size,
            layout=args.layout,
            overwrite=args.overwrite,
            kind=kind,
            extra=extra,
        )
    written += write_element_maps(
        files["fit-quality"][0],
        result.fit_quality,
        ["fit quality"],
        unit="deviance/dof",
        pixel_size_um=pixel_size,
        overwrite=args.overwrite,
        kind="fit-quality",
        extra=extra,
    )
    if args.preview:
        written.append(write_preview(files["preview"][0], result, path.name, args.overwrite))
    return result, written


def run(args: argparse.Namespace) -> int:
    """Quantify every cube in ``args.cubes``; return the exit status."""
    from napari_xrfquant.models.bundle import load_model

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
    mask_threshold(args)  # refuse a bad threshold before any work
    model = load_model(args.model)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise XRFQuantError(f"{outdir}: exists and is not a folder")
    if not args.overwrite:
        clash = _existing_outputs(outdir, stems, args.layout, model.elements, args.preview)
        if clash:
            raise FileExistsError(f"{clash[0]}: exists; use --overwrite to replace outputs")
    outdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for path in paths:
        result, _written = quantify_file(path, outdir, model, args)
        rows += summary_rows(path.name, result)
        if not args.quiet:
            means = ", ".join(
                f"{r['element']} {r['mean_wt_percent']:.2f}" for r in rows[-len(result.elements) :]
            )
            print(f"{path.name}: {result.seconds:.2f} s on {result.device}; mean wt%: {means}")
    summary = write_summary(outdir / SUMMARY_FILE, rows, args.overwrite)
    if not args.quiet:
        print(f"wrote {summary} and maps for {len(paths)} cube(s) to {outdir}")
    return 0
