"""``xrfquant info CUBE``: what a cube file holds, without opening napari."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, TextIO

import numpy as np

from napari_xrfquant.cli._cube_options import add_cube_options, open_cube
from napari_xrfquant.io.bad_pixels import masked_message
from napari_xrfquant.io.calibration import polynomial_energy_axis


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``info`` on the ``xrfquant`` subcommand parser."""
    parser = subparsers.add_parser(
        "info",
        help="describe a cube file: shape, type, energy calibration, counts",
        description=(
            "Print a cube's format, shape (rows, cols, channels), data type, whether "
            "it opens lazily, its energy calibration and the counts per pixel."
        ),
    )
    parser.add_argument("cube", metavar="CUBE",
                        help="a cube file of any format read_cube reads (see the README)")
    add_cube_options(parser)
    return parser


def describe(cube: Any) -> list[str]:
    """Lines of text describing an open :class:`~napari_xrfquant.io.Cube`.

    Parameters
    ----------
    cube
        The cube; its counts are summed once (chunk by chunk when lazy).

    Returns
    -------
    list of str
        ``"label: value"`` lines, labels aligned.
    """
    rows, cols, channels = cube.shape
    energy = cube.energy_keV
    dataset = cube.metadata.get("dataset")
    fmt = cube.format + (f" (dataset {dataset})" if dataset else "")
    offset, gain, quadratic = cube.calibration_keV
    exact = np.allclose(polynomial_energy_axis(offset, gain, quadratic, channels), energy,
                        rtol=0.0, atol=1e-6)
    calibration = (
        f"offset {offset + 0.0:.6g} keV, gain {gain:.6g} keV/channel"
        + (f", quadratic {quadratic:.6g} keV/channel^2" if quadratic else "")
        + ("" if exact else " (least-squares; the axis is no polynomial of degree 2)")
    )
    total = cube.total_counts()
    entries: list[tuple[str, str]] = [
        ("path", str(cube.path)),
        ("format", fmt),
        ("shape", f"{rows} x {cols} x {channels} (rows, cols, channels)"),
        ("dtype", str(cube.dtype)),
        ("lazy", "yes (read from the file on demand)" if cube.lazy else "no (in memory)"),
        ("energy", f"{energy[0] + 0.0:.4f} keV (channel 0) to {energy[-1]:.4f} keV "
                   f"(channel {channels - 1})"),
        ("calibration", f"{calibration}; source: {_source(cube.calibration_source)}"),
        ("counts/pixel", f"min {_number(total.min())}, median {_number(np.median(total))}, "
                         f"max {_number(total.max())}"),
    ]
    for line in cube.metadata.get("detector_elements") or []:
        entries.append(("detector", line))
    resolution = cube.metadata.get("resolution_eV")
    if resolution:
        entries.append(("resolution", f"FWHM {resolution[1]:.0f} eV at {resolution[0]} "
                                      "(measured on the summed spectrum)"))
    masked = masked_message(cube)
    if masked:
        entries.append(("masked pixels", masked.partition(": ")[2]))
    maps = cube.metadata.get("maps") or {}
    if maps:
        entries.append(("per-pixel maps", ", ".join(
            f"{name} (median {np.median(values):.4g})" for name, values in maps.items())))
    times = [f"{label} {cube.metadata[key]:g} s" for key, label in
             (("live_time_s", "live"), ("real_time_s", "real")) if key in cube.metadata]
    if times:
        entries.append(("acquisition", ", ".join(times) + " (as the file states it)"))
    if cube.metadata.get("calibration_file"):
        entries.append(("calibration file", str(cube.metadata["calibration_file"])))
    pixel_size = cube.metadata.get("pixel_size_um")
    if pixel_size:
        entries.append(("pixel size", f"{pixel_size:g} µm"))
    truth = cube.metadata.get("truth")
    if truth is not None:
        parts = []
        if truth.elements:
            parts.append(f"wt% of {', '.join(truth.elements)}")
        if truth.region_names:
            parts.append(f"regions {', '.join(truth.region_names)}")
        entries.append(("ground truth", "; ".join(parts) or "present"))
    width = max(len(label) for label, _ in entries) + 1
    return [f"{label + ':':<{width}} {value}" for label, value in entries]


def _source(source: str) -> str:
    """The calibration source, explained where the word alone would not say it."""
    if source == "lines":
        return "lines (the file's, refined on the lines the spectrum shows)"
    return source


def _number(value: Any) -> str:
    number = float(value)
    return f"{number:.0f}" if number.is_integer() else f"{number:.6g}"


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the description of ``args.cube``; return 0.

    Warnings met while reading (e.g. the reference calibration was used) go to
    stderr as ``xrfquant info: warning: ...`` lines (:func:`.main`). Errors the user can fix
    are raised as :class:`~napari_xrfquant.errors.XRFQuantError` for
    :func:`napari_xrfquant.cli.main` to report.
    """
    from napari_xrfquant.io.calibration import CalibrationWarning
    from napari_xrfquant.io.detectors import check_cube_calibration

    out = sys.stdout if out is None else out
    with open_cube(args, args.cube) as cube:
        for line in describe(cube):
            print(line, file=out)
        misplaced = check_cube_calibration(cube)
        if misplaced:  # said like the reader's own warnings: on stderr
            warnings.warn(misplaced, CalibrationWarning, stacklevel=1)
    return 0
