"""Time quantify() on a full CXC frame: 264 x 264 pixels x 1024 channels.

Prints wall time, spectra per second and peak memory for concentrations,
uncertainty and fit quality together, for the bundled model (or ``--model``).
Counts are Poisson draws around a realistic gold-alloy spectrum at about 3e3
counts per pixel (the common case on the reference instrument).

Usage::

    .venv/bin/python benchmarks/bench_quantify.py [--threads 2] [--repeats 3] [--model DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np


def frame_counts(model, shape: tuple[int, int], counts_per_pixel: float, seed: int) -> np.ndarray:
    """A uint16 cube of Poisson counts around one alloy spectrum (decoder or simulator)."""
    import torch

    wt = torch.tensor([[58.56, 3.90, 35.65, 0.0, 1.891]])[:, : len(model.elements)]
    try:
        from napari_xrfquant.physics import simulate

        spectrum = np.asarray(simulate(wt.numpy(), model.elements, model.instrument))[0]
    except ImportError:
        # no simulator: a flat spectrum gives the same arithmetic cost
        spectrum = np.full(len(model.energy_keV), 1.0 / len(model.energy_keV))
    rng = np.random.default_rng(seed)
    rate = spectrum / spectrum.sum() * counts_per_pixel
    cube = np.empty((*shape, len(rate)), dtype=np.uint16)
    for row in range(shape[0]):  # row by row: no int64 frame in memory
        cube[row] = rng.poisson(rate, size=(shape[1], len(rate)))
    return cube


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model bundle (default: bundled)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--counts", type=float, default=3e3, help="counts per pixel")
    parser.add_argument("--size", type=int, default=264, help="frame side in pixels")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    import napari_xrfquant as xq
    from napari_xrfquant.models.bundle import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    cube = frame_counts(model, (args.size, args.size), args.counts, seed=0)
    n = args.size * args.size
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    xq.quantify(cube[:8], model=model, device="cpu")  # warm-up: tables, first allocations
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = xq.quantify(cube, model=model, device="cpu", batch_size=args.batch_size)
        times.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = min(times)
    print(f"model            {model.model_id} ({model.metadata['architecture']})")
    print(
        f"frame            {args.size} x {args.size} x {cube.shape[-1]} uint16, "
        f"{args.counts:.0e} counts/pixel, torch threads {args.threads}"
    )
    print(
        f"seconds          best {best:.3f}, median {float(np.median(times)):.3f} "
        f"(of {args.repeats})"
    )
    print(f"spectra/s        {n / best:,.0f}")
    print(f"per spectrum     {1e6 * best / n:.1f} us")
    print(
        f"peak RSS         {peak_mb:,.0f} MB (input cube {cube.nbytes / 2**20:,.0f} MB, "
        f"before quantify {before_mb:,.0f} MB)"
    )
    print(f"fit quality      median {float(np.nanmedian(result.fit_quality)):.2f}")
    means = ", ".join(
        f"{e} {float(np.nanmean(result.concentrations[..., i])):.2f}"
        for i, e in enumerate(result.elements)
    )
    print(f"mean wt%         {means}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
