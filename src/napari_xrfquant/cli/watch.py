"""``xrfquant watch DIR -o OUTDIR``: quantify each new cube file in DIR as it arrives.

A file is taken once it is complete: unchanged for ``--settle`` seconds and,
for HDF5, closed by its writer (:mod:`napari_xrfquant.campaign.watch`). Each
frame's maps go into OUTDIR as ``xrfquant quantify`` writes them, and
``summary.csv`` is rewritten with every frame so far; a restarted watch skips
frames it did. Ctrl-C stops it cleanly between frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from napari_xrfquant.cli.quantify import add_frame_options, frame_settings
from napari_xrfquant.errors import XRFQuantError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``watch`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "watch",
        help="quantify each new cube file in a folder as it arrives",
        description="Watch a folder and quantify every cube file that appears in it once "
        "it is complete; write its maps and keep a summary of all frames.",
    )
    parser.add_argument("folder", metavar="DIR", help="the folder new cube files appear in")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_frame_options(parser)
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between looks at the folder (default 1)")
    parser.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                        help="a file unchanged this long is complete (default 2; more than "
                        "the writer's longest pause)")
    parser.add_argument("--give-up", type=float, default=30.0, metavar="SECONDS",
                        help="an unreadable file unchanged this long is reported as failed "
                        "(default 30)")
    parser.add_argument("--once", action="store_true",
                        help="quantify what is complete now, then stop")
    parser.add_argument("--quiet", action="store_true", help="print errors only")
    return parser


def run(args: argparse.Namespace) -> int:
    """Watch ``args.folder`` until Ctrl-C (or, with ``--once``, until it is done)."""
    from napari_xrfquant.campaign import cached_model
    from napari_xrfquant.campaign.watch import iter_watch
    from napari_xrfquant.inference import resolve_device

    for name in ("poll", "settle", "give_up"):
        value = getattr(args, name)
        if not value >= 0:
            raise XRFQuantError(f"--{name.replace('_', '-')} {value}: need seconds >= 0")
    settings = frame_settings(args)
    resolve_device(settings.device)
    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    model = cached_model(settings.model)
    if not args.quiet:
        print(f"watching {folder} -> {args.output} (Ctrl-C stops)", flush=True)
    watcher = iter_watch(folder, args.output, settings, model=model, poll_s=args.poll,
                         settle_s=args.settle, give_up_s=args.give_up, once=args.once)
    done = failed = 0
    try:
        for outcome in watcher:
            if outcome is None:
                continue
            if outcome.status == "failed":
                failed += 1
                print(f"xrfquant watch: error: {outcome.describe()}", file=sys.stderr, flush=True)
            else:
                done += outcome.status == "done"
                for note in outcome.notes:
                    print(f"xrfquant watch: warning: {note}", file=sys.stderr, flush=True)
                if not args.quiet:
                    print(outcome.describe(), flush=True)
    except KeyboardInterrupt:
        watcher.close()
        if not args.quiet:
            print(f"stopped: {done} frames quantified, {failed} failed", flush=True)
        return 0
    if not args.quiet:
        print(f"{done} frames quantified, {failed} failed", flush=True)
    return 1 if failed else 0
