"""``xrfquant generator -o DIR``: train the spectrum-generator network on the simulator.

Writes ``DIR/generator.safetensors`` and ``DIR/generator.json`` (with the
agreement to the simulator on held-out compositions); a training config then
takes it with ``simulator = "generator"`` and ``generator = "DIR"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``generator`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "generator",
        help="train the composition -> spectrum network (a fast source of training spectra)",
        description="Train the spectrum-generator network on noise-free simulated spectra of "
        "one instrument and save it; prints its agreement with the simulator and its speed.",
    )
    parser.add_argument("-o", "--output", required=True, metavar="DIR")
    parser.add_argument("--elements", default="Au,Ag,Cu,Ni,Zn", help="default: %(default)s")
    parser.add_argument("--instrument", default=None, metavar="FILE",
                        help="instrument file (default: the reference instrument)")
    parser.add_argument("--spectra", type=int, default=20_000, metavar="N",
                        help="simulated spectra to learn from (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=40, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing generator")
    return parser


def run(args: argparse.Namespace) -> int:
    """Train, save, report; return the exit status."""
    from napari_xrfquant.errors import XRFQuantError
    from napari_xrfquant.instrument import load_instrument, reference_instrument
    from napari_xrfquant.physics.lines import parse_elements
    from napari_xrfquant.training.generator import (
        METADATA,
        GeneratorSpectra,
        save_generator,
        train_generator,
    )

    target = Path(args.output)
    if (target / METADATA).exists() and not args.overwrite:
        raise FileExistsError(f"{target / METADATA}: exists; use --overwrite to replace it")
    if args.spectra < 100 or args.epochs < 1:
        raise XRFQuantError("--spectra must be at least 100 and --epochs at least 1")
    elements = parse_elements(args.elements)
    instrument = load_instrument(args.instrument) if args.instrument else reference_instrument()
    net, agreement = train_generator(elements, instrument, args.spectra, args.epochs,
                                     seed=args.seed)
    energy = instrument.energy_axis_keV()
    save_generator(target, net, elements, energy, agreement, overwrite=args.overwrite)
    rate = GeneratorSpectra(net, elements, energy).generate_per_minute()
    print(f"generator for {', '.join(elements)}: mean |generated - simulated| = "
          f"{100 * agreement.mean_abs_over_max:.3f} % of each spectrum's maximum "
          f"(worst {100 * agreement.worst_abs_over_max:.3f} %, {agreement.n_spectra} held-out "
          f"compositions); {rate:.3g} spectra/min; wrote {target}")
    return 0
