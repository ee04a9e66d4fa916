"""``xrfquant quantify CUBE -o OUT --instrument FILE --elements LIST``: no network.

Every pixel is fitted with the simulator of the instrument file
(:func:`napari_xrfquant.inference.physics_quantify.quantify_physics`), for any
element list; the outputs are those of a model's quantification (the one
export path), in wt% for a bulk sample (with oxide maps for ``--matrix
oxides``) or in µg/cm² for a thin one (the instrument's ``[sample]``), whose
scale comes from the ``--standard`` film on the map.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from napari_xrfquant.errors import XRFQuantError


def add_physics_options(parser: argparse.ArgumentParser) -> None:
    """The options of the quantification without a network."""
    parser.add_argument(
        "--elements", default=None, metavar="LIST",
        help="quantify these elements with the simulator of --instrument, no network "
        "(e.g. Si,Ca,Fe,Cu,Pb); with --instrument and no --model, default: the elements "
        "each cube shows (xrfquant elements)",
    )
    parser.add_argument(
        "--matrix", default="elements", metavar="elements|oxides|COMPOUND",
        help="with --elements: the elements make 100 wt%%, or their oxides do (oxygen by "
        "stoichiometry; oxide maps beside the elements'), or a balance COMPOUND the "
        "detector does not see makes the rest (a formula such as C5H8NO2 or H2O, or an "
        "xraylib NIST compound; the elements in absolute wt%% from the Compton scatter, "
        "the compound's map beside them)",
    )
    parser.add_argument(
        "--fit-range", default=None, metavar="KEV-KEV",
        help="with --elements: energy range fitted (default: 1 keV to 1 keV above the beam)",
    )
    parser.add_argument(
        "--standard", default=None, metavar="NAME|FILE.csv",
        help="with --elements and a thin sample: the film of known areal densities the map "
        "shows; its elements that are fitted set the counts per µg/cm²",
    )


def check_physics_request(args: argparse.Namespace) -> None:
    """Refuse option combinations the physics path does not take, before any work."""
    if args.instrument is None:
        raise XRFQuantError("--elements quantifies with the simulator of --instrument FILE: "
                            "give one")
    clashes = [option for option, given in (
        ("--model", args.model is not None), ("--refine", bool(args.refine)),
        ("--cluster", getattr(args, "cluster", None) is not None),
        ("--counts-scale", args.counts_scale is not None)) if given]
    if clashes:
        raise XRFQuantError(f"--elements fits without a network: {', '.join(clashes)} "
                            "do not apply")


def run_physics(args: argparse.Namespace) -> int:
    """Quantify ``args.cubes`` with the simulator; return the exit status."""
    from napari_xrfquant.calibration.session import parse_range
    from napari_xrfquant.cli._cube_options import checked_mask_below, open_cube
    from napari_xrfquant.cli.elements import found_elements
    from napari_xrfquant.inference.devices import resolve_device
    from napari_xrfquant.inference.physics_quantify import iter_quantify_physics
    from napari_xrfquant.instrument import load_instrument
    from napari_xrfquant.io.detectors import instrument_for_cube
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.physics.lines import parse_elements
    from napari_xrfquant.physics.standards import parse_standard
    from napari_xrfquant.results import (
        DEFAULT_MASK_BELOW_COUNTS,
        export_plan,
        export_result,
        poor_fit_message,
        region_statistics,
        safe_stem,
        whole_map,
    )

    check_physics_request(args)
    instrument = load_instrument(args.instrument)
    given = parse_elements(args.elements, light=True) if args.elements else None
    fit_keV = parse_range(args.fit_range, "--fit-range") if args.fit_range else None
    standard = parse_standard(args.standard) if args.standard else None
    mask = (DEFAULT_MASK_BELOW_COUNTS if args.mask_below is None
            else checked_mask_below(args.mask_below))
    device = resolve_device(args.device)  # refused before any work
    outdir = Path(args.output)
    for path in args.cubes:
        stem = safe_stem(Path(path).stem)
        if not args.overwrite:
            slug = "ug_per_cm2" if instrument.sample is not None else "wt_percent"
            plan = export_plan(outdir, stem, [], args.layout, True, args.preview, slug)
            clash = [item.path for item in plan if item.path.exists()]
            if clash:
                raise FileExistsError(f"{clash[0]}: exists; use --overwrite to replace outputs")
        cube = open_cube(args, path, lazy=False)
        matched = instrument_for_cube(instrument, cube.metadata)
        elements = given if given is not None else found_elements(args, cube,
                                                                  "xrfquant quantify", matched)
        result, notes = drive(iter_quantify_physics(
            np.asarray(cube.data), cube.energy_keV, elements, matched, matrix=args.matrix,
            fit_keV=fit_keV, standard=standard, mask_below_counts=mask, device=device),
            spectra_bar(args))
        rows, cols = result.image_shape
        statistics = region_statistics(result, [whole_map((rows, cols))],
                                       source=Path(path).name)
        export_result(outdir, result, stem, layout=args.layout,
                      pixel_size_um=cube.metadata.get("pixel_size_um"), statistics=statistics,
                      source=Path(path).name, preview=args.preview, overwrite=args.overwrite)
        poor_fit = poor_fit_message(result, Path(path).name)
        if poor_fit is not None:
            print(f"xrfquant quantify: warning: {poor_fit}", file=sys.stderr)
        if not args.quiet:
            means = ", ".join(f"{s.element} {s.mean_wt_percent:.4g}" for s in statistics)
            scale = "" if notes.scale is None else f"; film scale {notes.scale:.4g} ± " \
                f"{notes.scale_sigma:.2g} counts per unit intensity (every {result.unit} value " \
                f"shares its {result.calibration_sigma_percent:.1f} %)"
            print(f"{Path(path).name}: {result.unit}: {means}; median fit quality "
                  f"{np.nanmedian(result.fit_quality):.2f} (sum spectrum "
                  f"{notes.fit_quality_before:.3g} -> {notes.fit_quality_after:.3g} with the "
                  f"detector refined{'; sum peaks fitted' if notes.pile_up else ''})"
                  f"{scale}; {result.seconds:.1f} s on {result.device}; outputs in {outdir}")
    return 0


def spectra_bar(args: argparse.Namespace) -> Any:
    """A tqdm bar of spectra for the frame being quantified in this process."""
    bars: list[Any] = []

    def advance(event: Any) -> None:
        if bars and event.done < bars[0].n:  # the next frame
            bars.pop().close()
        if not bars:  # only once work runs: an early error prints its line alone
            bars.append(tqdm(total=event.total, desc="spectra", unit=" spectra",
                             disable=args.quiet, leave=False, file=sys.stderr))
        bars[0].update(event.done - bars[0].n)
        if event.done >= event.total:
            bars.pop().close()

    return advance
