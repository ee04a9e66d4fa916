"""``xrfquant elements CUBE [--instrument FILE] [--json]``: which elements a cube shows.

A likelihood-ratio search over Na-U with the simulator of the instrument
(:func:`napari_xrfquant.inference.element_search.find_elements`): in the
map's sum spectrum and in the sums of its pixel clusters.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from napari_xrfquant.cli._cube_options import add_cube_options, open_cube

#: Fit quality above which the search's figures are said to be scaled by a misfit.
POOR_FIT = 1.5


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``elements`` on the ``xrfquant`` subcommand parser."""
    from napari_xrfquant.inference.element_search import DEFAULT_THRESHOLD

    parser = subparsers.add_parser(
        "elements",
        help="find the elements a cube shows (a likelihood-ratio search over Na-U)",
        description=(
            "Fit the cube's sum spectrum (and its pixel clusters' sums) with every element "
            "whose lines the beam excites, then remove elements the least significant "
            "first until each one left is significant; print each element found with "
            "its strongest line, its significance and an approximate amount."
        ),
    )
    parser.add_argument("cube", metavar="CUBE", help="a cube file of any format read_cube reads")
    parser.add_argument(
        "--instrument", default=None, metavar="FILE",
        help="the set-up (its beam decides what is excited; default: the reference "
        "instrument on the file's own energy calibration)",
    )
    parser.add_argument(
        "--fit-range", default=None, metavar="KEV-KEV",
        help="energies searched (default: 1 keV to 1 keV above the beam; under a "
        "monochromatic beam, to 3 FWHM below its Compton peak)",
    )
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="SIGMA",
        help="significance an element needs (default: %(default)s)",
    )
    parser.add_argument(
        "--no-clusters", action="store_true",
        help="search the sum spectrum only (not the pixel clusters' sums)",
    )
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON instead of a table")
    add_cube_options(parser)
    return parser


def search_cube(args: argparse.Namespace, path: str | Path) -> Any:
    """Open ``path`` and search it as ``args`` say (:func:`search_counts`)."""
    with open_cube(args, path, lazy=True) as cube:
        return search_counts(args, cube.data, cube.energy_keV, cube.metadata)


def search_counts(args: argparse.Namespace, counts: Any, energy_keV: Any,
                  metadata: dict[str, Any] | None = None, instrument: Any = None) -> Any:
    """Search a cube's counts ``(H, W, C)`` as ``args`` say (``--instrument``,
    ``--fit-range``, ``--threshold``, ``--no-clusters`` where the command has them;
    the reader's ``metadata`` matches the file's detector elements to the instrument's);
    return the :class:`~napari_xrfquant.inference.element_search.ElementSearch`.
    A command that has read its ``instrument`` (matched to the cube) passes it; with
    neither, the set-up is :func:`~napari_xrfquant.io.detectors.assumed_instrument`
    (the reference one under the beam the file states), said on stderr."""
    from napari_xrfquant.calibration.session import parse_range
    from napari_xrfquant.inference.element_search import (
        DEFAULT_THRESHOLD,
        iter_find_elements_in_cube,
    )
    from napari_xrfquant.instrument import load_instrument
    from napari_xrfquant.io.detectors import (
        assumed_instrument,
        assumed_setup,
        instrument_for_cube,
    )
    from napari_xrfquant.jobs import drive

    given = getattr(args, "instrument", None)
    assumed = None
    if instrument is None and given is not None:
        instrument = instrument_for_cube(load_instrument(given), metadata or {})
    elif instrument is None:
        instrument = assumed_instrument(np.asarray(energy_keV), metadata or {})
        assumed = assumed_setup(metadata or {})
    fit_range = getattr(args, "fit_range", None)
    search = drive(iter_find_elements_in_cube(
        counts, np.asarray(energy_keV), instrument,
        fit_keV=parse_range(fit_range, "--fit-range") if fit_range else None,
        threshold=getattr(args, "threshold", DEFAULT_THRESHOLD),
        clusters=0 if getattr(args, "no_clusters", False) else None))
    if assumed is not None:  # said once it ran: a refusal is its one line alone
        print(f"xrfquant elements: no --instrument: {assumed} stood for this "
              "measurement's set-up (give its file for its own beam, detector and "
              "geometry)", file=sys.stderr)
    return search


def found_elements(args: argparse.Namespace, cube: Any, command: str,
                   instrument: Any = None) -> list[str]:
    """The elements an open ``cube`` shows, for a command given no ``--elements``
    (``quantify``, ``calibrate``, which pass the ``instrument`` they read, matched to
    the cube): searched, said on stderr, and refused in one line when none is found."""
    from napari_xrfquant.errors import XRFQuantError

    name = Path(cube.path).name if cube.path is not None else "the cube"
    search = search_counts(args, cube.data, cube.energy_keV, cube.metadata, instrument)
    if not search.symbols:
        raise XRFQuantError(f"{name}: no element found (xrfquant elements): give --elements")
    print(f"{command}: no --elements: using those {name} shows "
          f"({', '.join(search.symbols)}; xrfquant elements, {search.seconds:.0f} s)",
          file=sys.stderr)
    return list(search.symbols)


def report(search: Any, name: str) -> list[str]:
    """The table ``xrfquant elements`` prints."""
    lines = [f"{name}: {len(search.symbols)} element(s) found among "
             f"{len(search.candidates)} candidates (sum spectrum fit quality "
             f"{search.fit_quality:.3g}; {search.seconds:.1f} s)"]
    if search.found:
        lines.append(f"  {'element':<8}{'line':<9}{'keV':>7}{'sigma':>9}{'~wt%':>9}  "
                     "found in; overlaps")
    for f in search.found:
        if f.uncertain is None:
            overlaps = f"; overlaps {', '.join(f.overlaps)}" if f.overlaps else ""
            lines.append(f"  {f.symbol:<8}{f.line:<9}{f.line_keV:>7.3f}{f.significance:>9.1f}"
                         f"{f.wt_percent:>9.3g}  {f.where}{overlaps}")
    for f in search.found:
        if f.uncertain is not None:
            lines.append(f"  uncertain: {f.symbol} ({f.significance:.1f} sigma; "
                         f"{f.uncertain})")
    if search.setup_elements:
        lines.append(f"  set-up lines, not tested: {', '.join(search.setup_elements)}")
    for symbol, why in search.excluded.items():
        if symbol not in search.setup_elements:
            lines.append(f"  not tested: {symbol} ({why})")
    return lines


def poor_fit_warning(search: Any, name: str) -> str | None:
    """What a user must know when the search's model misses part of the spectrum."""
    if not search.fit_quality > POOR_FIT:
        return None
    overlapping = [f.symbol for f in search.found if f.overlaps and f.uncertain is None]
    said = (f"; of the elements whose lines overlap ({', '.join(overlapping)}) some may "
            "stand for a line shape the model misses") if overlapping else ""
    return (f"{name}: the sum spectrum's fit quality is {search.fit_quality:.3g} (about 1 "
            f"when the model explains it): significances are scaled down by it{said}")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the elements ``args.cube`` shows; return 0."""
    out = sys.stdout if out is None else out
    name = Path(args.cube).name
    search = search_cube(args, args.cube)
    if args.json:
        print(json.dumps(search.to_dict(), indent=1), file=out)
    else:
        for line in report(search, name):
            print(line, file=out)
    warning = poor_fit_warning(search, name)
    if warning is not None:
        warnings.warn(warning, UserWarning, stacklevel=1)
    return 0
