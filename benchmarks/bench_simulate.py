"""Simulator speed: expected spectra and Poisson counts per second on this CPU.

Prints spectra per second for 5 elements (Au, Ag, Cu, Ni, Zn) and 1024 channels
at the reference instrument: expected spectra (the training path), Poisson
counts, the response-matrix rebuild that instrument jitter costs, the
one-off table build, and the line intensities for a detector of two elements
at different take-off angles (one more pass through the absorption terms).
Target: >= 16,700 expected spectra/s (1e6 per minute).

Usage: python benchmarks/bench_simulate.py [--batch 4096] [--repeats 5] [--threads N]

On a shared 2-core machine, ``--threads 1`` gives the steadier figure: with two
threads, torch's workers wait on each other whenever another process takes a core.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from napari_xrfquant.physics import XRFSimulator

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


class Rate:
    """Best wall-clock rate and the CPU time it took (the machine is shared)."""

    def __init__(self, wall_s: float, cpu_s: float, n: int) -> None:
        self.per_s = n / wall_s
        self.per_cpu_s = n / max(cpu_s, 1e-9)

    def __format__(self, spec: str) -> str:
        return f"{self.per_s:10,.0f} spectra/s  ({self.per_cpu_s:10,.0f} per CPU-second)"


def _best_rate(fn, n_spectra: int, repeats: int) -> Rate:
    fn()  # warm-up (allocations, caches)
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        elapsed = (time.perf_counter() - start, time.process_time() - cpu)
        best = min(best, elapsed)
    return Rate(best[0], best[1], n_spectra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    sim = XRFSimulator(ELEMENTS, dtype=torch.float32)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    fractions = torch.as_tensor(rng.dirichlet(np.ones(5), size=args.batch), dtype=torch.float32)
    counts = torch.as_tensor(10 ** rng.uniform(2.5, 6.0, size=args.batch), dtype=torch.float32)

    with torch.no_grad():
        expected = _best_rate(lambda: sim(fractions), args.batch, args.repeats)
        primary_only = _best_rate(
            lambda: sim.line_intensities(fractions, secondary=False), args.batch, args.repeats
        )
        physics = _best_rate(lambda: sim.line_intensities(fractions), args.batch, args.repeats)

        def poisson() -> torch.Tensor:
            return torch.poisson(sim(fractions) * counts[:, None])

        poisson_rate = _best_rate(poisson, args.batch, args.repeats)
        generator = np.random.default_rng(1)
        counts_np = counts.numpy()[:, None]

        def poisson_numpy() -> np.ndarray:
            return generator.poisson(sim(fractions).numpy() * counts_np)

        poisson_np_rate = _best_rate(poisson_numpy, args.batch, args.repeats)
        group = fractions[:64]

        draws = iter(np.random.default_rng(2).uniform(0.0349, 0.0351, size=10_000))

        def jitter_group() -> torch.Tensor:
            # a new gain every call: no cached response can be reused
            return sim(group, instrument_overrides={"gain_keV": next(draws), "noise_keV": 0.105})

        jitter_rate = _best_rate(jitter_group, 64, args.repeats)
        # a two-element detector array (instrument [[geometry.detector_elements]])
        array = XRFSimulator(ELEMENTS, dtype=torch.float32, instrument=sim.instrument.replace(
            **{"geometry.detector_elements": [
                {"takeoff_deg": 15.0, "scattering_deg": 75.0, "solid_angle_sr": 1.0},
                {"takeoff_deg": 75.0, "scattering_deg": 105.0, "solid_angle_sr": 3.0}]}))
        two_elements = _best_rate(lambda: array.line_intensities(fractions), args.batch,
                                  args.repeats)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}")
    print(f"{sim}")
    print(f"table build (xraylib):                 {build_s:8.2f} s")
    print(f"line_intensities, primary only:       {primary_only}")
    print(f"line_intensities, with secondary:     {physics}")
    print(f"  the same, two detector elements:    {two_elements}")
    print(f"expected spectra (forward):           {expected}")
    print(f"  = {expected.per_s * 60 / 1e6:.2f} M/min wall (target 1.0)")
    print(f"Poisson counts (+ torch.poisson):     {poisson_rate}")
    print(f"Poisson counts (+ numpy Generator):   {poisson_np_rate}")
    print(f"jittered groups of 64 (new response): {jitter_rate}")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
