"""``xrfquant``: the headless command line for batch work.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``
and ``run(args) -> int``. Errors the user can fix (:class:`XRFQuantError`,
missing files) are printed as one line and give a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from napari_xrfquant.errors import XRFQuantError

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = (
    "info", "elements", "sample", "simulate", "quantify", "watch", "calibrate", "train", "compare",
    "generator",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``xrfquant`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="xrfquant",
        description="Quantitative element maps from X-ray fluorescence cubes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"napari_xrfquant.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"napari_xrfquant.cli.{name}":
                continue  # subcommand not built yet
            raise
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xrfquant`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Warnings are printed as one line each, like errors: ``xrfquant CMD:
    warning: ...`` (each distinct message once), not Python's file-and-line form.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    shown: set[str] = set()

    def one_line_warning(message: Warning | str, *_ignored: object, **_kw: object) -> None:
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            print(f"xrfquant {args.command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = one_line_warning  # restored when the block ends
        try:
            return int(args._run(args) or 0)
        except (XRFQuantError, FileExistsError, FileNotFoundError, PermissionError) as exc:
            _close_progress_bars()
            print(f"xrfquant {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            _close_progress_bars()
            print(f"xrfquant {args.command}: interrupted", file=sys.stderr)
            return 130


def _close_progress_bars() -> None:
    """Close the progress bars a failed command left open, so that its error line
    is printed after them: a bar closed later (at exit) would clear the line the
    error shares with it."""
    from tqdm import tqdm

    for bar in list(tqdm._instances):  # tqdm's own registry of open bars
        bar.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
