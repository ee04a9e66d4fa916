"""AXS: fine-tune the bundled model on unlabelled spectra of a hidden instrument.

The cube is :func:`napari_xrfquant.calibration.hidden.hidden_cube` (three BAM
standards and four unknown alloys, simulated with a set-up that is not the
reference one); no label and no standard is used, only its pixels. The run
fine-tunes the bundled network for ``--minutes`` with labelled spectra of the
reference instrument plus ``beta`` times the reconstruction loss of the cube's
pixels through the simulator, whose instrument learns. Prints:

- each learned parameter: start (reference), learned, hidden, and the share of
  the way from start to hidden it went;
- region-mean MAE (wt%) of the four unknown alloys and median per-pixel fit
  quality, for the bundled model, the same fine-tune with ``beta = 0``
  (reference instrument only) and the AXS model.

Usage::

    .venv/bin/python benchmarks/bench_axs.py [--minutes 4] [--beta 1] [--counts 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def region_mae(concentrations, labels, truth) -> float:
    """MAE (wt%) of the unknown regions' mean compositions (labels 4-7)."""
    means = np.array([np.nanmean(concentrations[labels == k], axis=0) for k in range(4, 8)])
    return float(np.abs(means - truth[3:]).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="fine-tune budget per run")
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--counts", type=float, default=5000.0, help="counts per pixel")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-supervised", action="store_true", help="no beta = 0 run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import napari_xrfquant as xq
    from napari_xrfquant.calibration.hidden import hidden_cube, hidden_instrument
    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.instrument_parameters import parameter_values
    from napari_xrfquant.models import load_model
    from napari_xrfquant.training.config import AXSConfig, TrainingConfig
    from napari_xrfquant.training.loop import Trainer, train  # noqa: F401

    cube = hidden_cube((64, 16), args.counts, seed=1)
    model = load_model()
    truth = cube.wt_percent
    stored = model.metadata["training"]["config"]
    base = TrainingConfig.from_dict(stored).replace(
        name="axs-benchmark", init_from=str(Path(model.path).resolve()), n_spectra=20_000,
        training_set=None, cache=None, lr=3e-4, schedule="constant", epochs=100_000,
        patience=25, max_minutes=args.minutes, device="cpu", steps_per_epoch=100,
    )
    print(f"cube {cube.counts.shape}, {args.counts:g} counts/pixel, hidden instrument; "
          f"{args.minutes:g} min per fine-tune")

    def evaluate(m):
        r = xq.quantify(cube.counts, cube.energy_keV, model=m, device="cpu")
        return region_mae(r.concentrations, cube.labels, truth), float(np.nanmedian(r.fit_quality))

    rows = [("bundled", *evaluate(model))]
    runs = [(f"AXS beta={args.beta:g}", args.beta)]
    if not args.skip_supervised:
        runs.insert(0, ("fine-tune beta=0 (reference only)", 0.0))
    for title, beta in runs:
        # beta = 0 and follow = 0: the supervised fine-tune on the reference instrument alone
        follow = 0.5 if beta > 0 else 0.0
        config = base.replace(
            axs=AXSConfig(unlabelled="hidden cube (memory)", beta=beta, follow=follow)
        )
        started = time.perf_counter()
        trainer = Trainer(config, unlabelled=(cube.counts, cube.energy_keV))
        for _event in trainer.events():
            pass
        seconds = time.perf_counter() - started
        result = trainer.current_result()
        with tempfile.TemporaryDirectory() as folder:
            bundle = result.save(Path(folder) / "model")
            rows.append((f"{title} ({seconds / 60:.1f} min, {len(result.history)} ep)",
                         *evaluate(load_model(bundle))))
        if beta > 0:
            axs = result.model.metadata["training"]["axs"]
            learned, start = axs["learned"], axs["start"]
            hidden = parameter_values(hidden_instrument(), list(learned))
            reference = parameter_values(reference_instrument(), list(learned))
            print(f"\n{title}: learned instrument (start -> learned, hidden)")
            for name, value in learned.items():
                s, h = start.get(name, reference[name]), hidden[name]
                way = (value - s) / (h - s) if abs(h - s) > 1e-6 * abs(h) else float("nan")
                print(f"  {name:22s} {s:10.5g} -> {value:10.5g}  hidden {h:10.5g}  "
                      f"way {way:+.2f}")
            last = result.history[-1]
            first = result.history[0].val_reconstruction
            print(f"  held-out reconstruction fit quality {first:.2f}"
                  f" (epoch 1) -> {last.val_reconstruction:.2f} (epoch {last.epoch})")
    print("\nmodel                                         region MAE   median fit quality")
    for title, mae, quality in rows:
        print(f"  {title:44s} {mae:7.3f} wt%   {quality:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
