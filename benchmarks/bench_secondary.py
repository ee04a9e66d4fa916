"""Secondary fluorescence under an X-ray tube: memory and speed of the simulator.

A tube's beam is many energies (the PIXL breadboard's: 72 lines and continuum
bins), and a rock has many elements (BHVO-2G's certificate: 27, with 460 lines
and 4348 rows between them, the Rayleigh and Compton rows included), so the
pairs of an exciting and an excited line, per beam energy, are what secondary
fluorescence costs. Printed: the simulator's build
time, the size of its buffers (all, and those of the pairs), the peak resident
memory, and the time of the line intensities with secondary fluorescence
(forward, and forward with a gradient through the composition) for 1 and 64
spectra: 1 is a calibration's sum spectrum, 64 a batch of composition groups
or of simulated training spectra.

Usage: python benchmarks/bench_secondary.py   (about 3 minutes)
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch

from napari_xrfquant.instrument import load_instrument
from napari_xrfquant.physics.simulator import XRFSimulator
from napari_xrfquant.physics.standards import library

SETUP = (Path(__file__).resolve().parents[1] / "sample_data" / "pixl_breadboard"
         / "instrument_calibrated.toml")


def _megabytes(tensors: list[torch.Tensor]) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6


def _best_seconds(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    certificate = library()["BHVO-2G"].wt_percent
    elements = list(certificate)
    started = time.perf_counter()
    sim = XRFSimulator(elements, load_instrument(SETUP), dtype=torch.float64)
    build = time.perf_counter() - started
    buffers = dict(sim.named_buffers())
    pairs = [t for name, t in buffers.items() if "pair" in name]
    print(f"BHVO-2G ({len(elements)} elements, {len(sim.row_labels)} rows) under the "
          f"breadboard's tube ({len(sim.tables.beam_energy_keV)} beam energies): built in "
          f"{build:.1f} s; buffers {_megabytes(list(buffers.values())):,.0f} MB, of which "
          f"the line pairs' {_megabytes(pairs):,.0f} MB; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    w = torch.tensor([certificate[e] for e in elements], dtype=torch.float64) / 100.0
    for n in (1, 64):
        batch = (w[None, :] * torch.exp(0.05 * torch.randn(n, len(elements),
                                                          generator=torch.Generator().manual_seed(0),
                                                          dtype=torch.float64)))
        batch = batch / batch.sum(dim=1, keepdim=True)

        def forward(batch: torch.Tensor = batch) -> None:
            with torch.no_grad():
                sim.line_intensities(batch)

        def with_gradient(batch: torch.Tensor = batch) -> None:
            x = batch.clone().requires_grad_(True)
            sim.line_intensities(x).sum().backward()

        primary = _best_seconds(lambda batch=batch: sim.line_intensities(batch, secondary=False))
        print(f"  {n:3d} spectra: line intensities {_best_seconds(forward):.3f} s "
              f"(primary alone {primary:.3f} s), with the gradient "
              f"{_best_seconds(with_gradient):.3f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
