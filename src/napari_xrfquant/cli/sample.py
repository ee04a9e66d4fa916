"""``xrfquant sample``: the simulated CXC gold sample cube, made on first use.

Prints the path of the sample file (:mod:`napari_xrfquant.sample`: simulated once
with a fixed seed, about 10 s, then kept in the user cache folder), so scripts
can run ``xrfquant quantify "$(xrfquant sample)" -o out``. ``-o FILE`` writes a
copy elsewhere instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sample`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "sample",
        help="print the path of the simulated sample cube (made on first use)",
        description="Make (once) and print the simulated CXC gold sample cube, or write it to -o.",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE.h5")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE.h5")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the sample's path (or write it to ``args.output``); return 0."""
    from napari_xrfquant.sample import sample_cube_path, write_sample

    if args.output is not None:
        print(write_sample(args.output, overwrite=args.overwrite))
    else:
        print(sample_cube_path())
    return 0
