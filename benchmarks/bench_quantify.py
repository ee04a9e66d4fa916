"""Time quantify() on a full CXC frame: 264 x 264 pixels x 1024 channels.

Prints wall time, spectra per second and peak memory for concentrations,
uncertainty and fit quality together, for the bundled model (or ``--model``).
Counts are Poisson draws around a realistic gold-alloy spectrum at about 3e3
counts per pixel (the common case on the reference instrument).

With PyMca5 installed (the ``bench`` extra) it also times PyMca's
``FastXRFLinearFit`` on the same cube in the same run -- a linear fit of peak
areas (no matrix correction, no wt%), the fast classical method -- and prints
the ratio. Its configuration is PyMca's own ``Steel.cfg`` with the model's
elements, the cube's calibration and the beam energy of the model's instrument.
``--physics`` times the quantification without a network instead (the model's
elements with the simulator of its instrument; issue 25 asks for 30 s a frame).

Usage::

    .venv/bin/python benchmarks/bench_quantify.py [--threads 2] [--repeats 3] [--model DIR]
        [--device cpu|cuda] [--physics]
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


#: PyMca peak families for the elements the model knows (keV lines in its range).
PYMCA_PEAKS = {"Au": ["L", "M"], "Pb": ["L", "M"], "Pt": ["L", "M"], "Ag": "K", "Cu": "K",
               "Ni": "K", "Zn": "K", "Fe": "K", "Cr": "K", "Mn": "K", "Sn": ["K", "L"]}


def time_pymca(model, cube: np.ndarray, repeats: int) -> float | None:
    """Median seconds of PyMca's FastXRFLinearFit on ``cube``; None without PyMca5."""
    try:
        from PyMca5.PyMcaDataDir import PYMCA_DATA_DIR
        from PyMca5.PyMcaIO import ConfigDict
        from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
    except ImportError:
        return None
    import os

    energy = np.asarray(model.energy_keV, dtype=np.float64)
    config = ConfigDict.ConfigDict()
    config.read(os.path.join(PYMCA_DATA_DIR, "Steel.cfg"))
    config["peaks"] = {e: PYMCA_PEAKS.get(e, "K") for e in model.elements}
    config["detector"]["zero"] = float(energy[0])
    config["detector"]["gain"] = float(energy[1] - energy[0])
    first, stop = model.network.input_spec.channel_range
    config["fit"]["xmin"], config["fit"]["xmax"] = int(first), int(stop - 1)
    beam = float(max(model.instrument.beam.energies_keV))
    config["fit"]["energy"] = [beam] + [None] * (len(config["fit"]["energy"]) - 1)
    config["fit"]["stripalgorithm"] = 1  # SNIP background, PyMca's fast one
    fit = FastXRFLinearFit()
    fit.setFitConfiguration(config)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fit.fitMultipleSpectra(y=cube, weight=0, refit=1, concentrations=0, save=False)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model bundle (default: bundled)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--counts", type=float, default=3e3, help="counts per pixel")
    parser.add_argument("--size", type=int, default=264, help="frame side in pixels")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--no-pymca", action="store_true", help="skip the PyMca timing")
    parser.add_argument("--physics", action="store_true",
                        help="quantify without a network (quantify_physics: the model's "
                        "elements with the simulator of its instrument, detector refined)")
    args = parser.parse_args(argv)

    import torch

    import napari_xrfquant as xq
    from napari_xrfquant.models.bundle import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    cube = frame_counts(model, (args.size, args.size), args.counts, seed=0)
    n = args.size * args.size
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.physics:
        from napari_xrfquant.inference.physics_quantify import quantify_physics

        def run(counts: np.ndarray):
            return quantify_physics(counts, model.energy_keV, model.elements,
                                    model.instrument, device=args.device)[0]
    else:
        def run(counts: np.ndarray):
            return xq.quantify(counts, model=model, device=args.device,
                               batch_size=args.batch_size)
    run(cube[:8])  # warm-up: tables, allocations
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = run(cube)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = min(times)
    print(f"model            {model.model_id} ({model.metadata['architecture']})"
          + (": its elements and instrument, fitted with the simulator (no network)"
             if args.physics else ""))
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
    print(f"device           {result.device}")
    pymca = None if args.no_pymca else time_pymca(model, cube, args.repeats)
    if pymca is None:
        print("PyMca5           not installed (pip install 'napari-xrfquant[bench]')"
              if not args.no_pymca else "PyMca5           skipped")
    else:
        median = float(np.median(times))
        ratio = (f"xrfquant is {pymca / median:.1f}x faster" if pymca >= median
                 else f"xrfquant takes {median / pymca:.1f}x as long")
        print(f"PyMca5           FastXRFLinearFit median {pymca:.3f} s (peak areas, no wt%); "
              + ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
