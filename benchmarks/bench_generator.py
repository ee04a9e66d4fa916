"""The spectrum-generator network against the simulator: agreement and speed.

Trains the generator (20000 noise-free simulated spectra of the reference
instrument, 40 epochs, hidden layers 50 and 500), then prints the training time,
the mean absolute difference to the simulator per spectrum over its maximum at
2000 held-out compositions and at the three CRMs, and spectra per minute of the
generator and of the simulator on this CPU.

Usage::

    .venv/bin/python benchmarks/bench_generator.py [--spectra 20000] [--epochs 40]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectra", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.physics.standards import library
    from napari_xrfquant.training.datasets import SimulatorSpectra
    from napari_xrfquant.training.generator import GeneratorSpectra, agreement, train_generator

    elements = ["Au", "Ag", "Cu", "Ni", "Zn"]
    started = time.perf_counter()
    net, held_out = train_generator(elements, n_spectra=args.spectra, epochs=args.epochs)
    seconds = time.perf_counter() - started
    generator = GeneratorSpectra(net, elements, reference_instrument().energy_axis_keV())
    simulator = SimulatorSpectra(elements)
    crms = torch.as_tensor(
        np.array([library()[n].vector(elements) for n in ("ERM-EB506", "ERM-EB507",
                                                          "ERM-EB508")]), dtype=torch.float32)
    on_crms = agreement(generator.expected(crms), simulator.expected(crms))
    wt = torch.as_tensor(np.random.default_rng(1).dirichlet(np.ones(5), size=20_000) * 100,
                         dtype=torch.float32)
    start = time.perf_counter()
    for i in range(0, len(wt), 4096):
        simulator.expected(wt[i : i + 4096])
    simulator_rate = 60.0 * len(wt) / (time.perf_counter() - start)
    print(f"trained on {args.spectra} spectra, {args.epochs} epochs: {seconds:.0f} s")
    print(f"held-out compositions ({held_out.n_spectra}): mean |generated - simulated| "
          f"{100 * held_out.mean_abs_over_max:.3f} % of the spectrum's maximum "
          f"(worst {100 * held_out.worst_abs_over_max:.3f} %)")
    print(f"ERM-EB506/507/508: mean {100 * on_crms.mean_abs_over_max:.3f} %, worst "
          f"{100 * on_crms.worst_abs_over_max:.3f} %")
    print(f"generator {generator.generate_per_minute():.3g} spectra/min; simulator "
          f"{simulator_rate:.3g} spectra/min (noise-free, 1024 channels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
