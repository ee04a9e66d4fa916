"""The options every subcommand that reads cubes shares: where a file keeps its cube."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_xrfquant.errors import XRFQuantError


def add_cube_options(parser: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--energy-axis``, ``--calibration``, ``--detector`` and
    ``--pyxrf-parameters``."""
    group = parser.add_argument_group("where a file keeps its cube (as read_cube's arguments)")
    group.add_argument("--dataset", metavar="PATH", help="HDF5 dataset to read")
    group.add_argument(
        "--energy-axis",
        choices=("first", "last"),
        help="where the channels are in the file (default: from the file or its shape)",
    )
    group.add_argument(
        "--calibration",
        metavar="A,B[,C]|DATASET",
        help="energy of channel k is A + B k + C k^2 (keV), over the file's; or the HDF5 "
        "dataset holding A, B(, C)",
    )
    group.add_argument(
        "--detector",
        metavar="sum|stored|N",
        default="sum",
        help="multi-element detectors (MDA, GSECARS, MSA): sum the elements after each "
        "one's calibration is refined on its own lines (sum, default), sum them as stored "
        "(stored), or read element N alone",
    )
    group.add_argument(
        "--pyxrf-parameters",
        metavar="JSON",
        help="PyXRF files: PyXRF's parameter file with the energy calibration "
        "(default: the one beside the file)",
    )


def checked_mask_below(value: float) -> float:
    """``--mask-below COUNTS`` as every command takes it: 0 or more, finite (the field
    of :class:`~napari_xrfquant.campaign.FrameSettings` checks it).

    Raises
    ------
    XRFQuantError
        Naming the option, as the quantify command's other options are named.
    """
    from pydantic import ValidationError

    from napari_xrfquant.campaign import FrameSettings

    try:
        return float(FrameSettings(mask_below=value).mask_below)
    except ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].lower()
        raise XRFQuantError(f"--mask-below {value}: {message}") from None


def parse_calibration(text: str | None) -> str | list[float] | None:
    """``"0,0.035"`` -> ``[0.0, 0.035]``; an HDF5 path stays text; None stays None.

    Raises
    ------
    XRFQuantError
        For two or three entries that are not all numbers.
    """
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 1 and not _is_number(parts[0]):
        return text  # a dataset path
    if len(parts) not in (2, 3) or not all(_is_number(p) for p in parts):
        raise XRFQuantError(f"--calibration {text!r}: give A,B or A,B,C in keV, or a dataset")
    return [float(p) for p in parts]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def open_cube(args: argparse.Namespace, path: str | Path, lazy: bool | None = None) -> Any:
    """:func:`~napari_xrfquant.io.read_cube` of ``path`` with the shared options of ``args``."""
    from napari_xrfquant.io import read_cube

    return read_cube(
        path,
        dataset=getattr(args, "dataset", None),
        energy_axis=getattr(args, "energy_axis", None),
        lazy=lazy,
        calibration=parse_calibration(getattr(args, "calibration", None)),
        pyxrf_parameters=getattr(args, "pyxrf_parameters", None),
        detector=getattr(args, "detector", "sum"),
    )
