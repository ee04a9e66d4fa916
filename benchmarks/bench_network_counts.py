"""What the bundled network's counts input does to a certified alloy's mean reading.

ERM-EB506 (rose gold) is simulated on the bundled model's instrument and drawn as
Poisson spectra at a few total counts (the bundled sample's pixels have about
3,500). For each count level the network reads the same spectra twice or more:
with the counts input it is trained with (log10 of each spectrum's total), and
with that input replaced by a fixed count level, so that the spectral features
stay as they are and only what the network learned to do at a count level
changes. Then spectra of 3,500 and 1e5 counts with a flat background added
over the network's input range, a share of their counts as the training's
background augmentation adds (up to 10 %, to half the spectra): what the network
expects under a spectrum it cannot see a background in. Prints the mean reading
minus the certificate, per element, in wt%.

Usage::

    .venv/bin/python benchmarks/bench_network_counts.py [--model BUNDLE] [--draws 4000]
        [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from napari_xrfquant.models.bundle import load_model
from napari_xrfquant.physics import simulate
from napari_xrfquant.physics.standards import library

COUNTS = (3.5e3, 1e4, 1e5)
#: The counts input given instead of each spectrum's own (log10 of a total).
STATED = {"own": None, "stated 1e3": 3.0, "stated 1e5": 5.0}
#: Shares of the counts in an added flat background.
BACKGROUNDS = (0.025, 0.05, 0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model bundle (default: bundled)")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = load_model(args.model)
    network = model.network
    elements = model.elements
    truth = np.asarray(library()["ERM-EB506"].vector(elements), dtype=np.float64)
    expected = simulate(truth[None, :], elements, instrument=model.instrument)
    rng = np.random.default_rng(args.seed)
    print(f"ERM-EB506, {args.draws} Poisson draws per count level; "
          f"mean reading - certificate (wt%): {', '.join(elements)}")
    for counts in COUNTS:
        drawn = rng.poisson(expected * counts, size=(args.draws, expected.shape[1]))
        binned = network.features.bin_counts(torch.as_tensor(drawn, dtype=torch.float32))
        features, log10_total = network.features.from_binned(binned)
        for label, stated in STATED.items():
            total = log10_total if stated is None else torch.full_like(log10_total, stated)
            with torch.no_grad():
                mean, _ = network.head(network.trunk(features,
                                                     network.features.counts_input(total)))
            bias = mean.double().mean(dim=0).numpy() - truth
            print(f"  {counts:8.0f} counts, counts input {label:10s}: " + _row(elements, bias))
    first, stop = network.input_spec.channel_range
    flat = np.zeros_like(expected[0])
    flat[first:stop] = 1.0 / (stop - first)
    inside = float(expected[0, first:stop].sum())
    for counts in (COUNTS[0], COUNTS[-1]):
        for share in BACKGROUNDS:
            spectrum = expected[0] * (1.0 - share) + flat * share * inside
            drawn = rng.poisson(spectrum * counts, size=(args.draws, spectrum.size))
            with torch.no_grad():
                mean, _ = network.forward_binned(
                    network.features.bin_counts(torch.as_tensor(drawn, dtype=torch.float32)))
            bias = mean.double().mean(dim=0).numpy() - truth
            print(f"  {counts:8.0f} counts, {100 * share:4.1f} % flat background added: "
                  + _row(elements, bias))
    return 0


def _row(elements: list[str], bias: np.ndarray) -> str:
    return "  ".join(f"{e} {b:+.2f}" for e, b in zip(elements, bias, strict=True))


if __name__ == "__main__":
    raise SystemExit(main())
