"""Train the bundled default model (reference CXC instrument, Au/Ag/Cu/Ni/Zn).

Runs the standard trainer (:mod:`napari_xrfquant.training`) on the physics
simulator within a wall-time budget: it times a few optimiser steps first and
sizes the cosine schedule so that it ends inside the budget, then trains and
writes the best-on-validation model as a bundle whenever validation improves
(at most every ``--save-every`` seconds), so a usable bundle exists whenever the
run is cut short.

Usage::

    .venv/bin/python scripts/train_bundled_model.py --minutes 60 \
        --out src/napari_xrfquant/models/bundled
    .venv/bin/python scripts/train_bundled_model.py --quick       # a few minutes
    # continue the bundled network on fresh compositions (another seed), lower rate
    .venv/bin/python scripts/train_bundled_model.py --minutes 70 --seed 1 --lr 5e-4 \
        --init-from src/napari_xrfquant/models/bundled --out /tmp/continued
    # the same without the background augmentation (benchmarks/bench_network_counts.py)
    .venv/bin/python scripts/train_bundled_model.py --minutes 30 --n-spectra 100000 \
        --seed 2 --lr 5e-4 --background-probability 0 \
        --init-from src/napari_xrfquant/models/bundled --out /tmp/no-background

Afterwards ``scripts/evaluate_bundled_model.py`` measures the test figures from
scratch and writes them into ``model.json`` and ``docs/crm_table.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from napari_xrfquant.jobs import Progress
from napari_xrfquant.training.config import TrainingConfig
from napari_xrfquant.training.loop import EpochEnd, Trainer

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "src" / "napari_xrfquant" / "models" / "bundled"
MODEL_NAME = "cxc-gold-5el"


def bundled_config(args: argparse.Namespace) -> TrainingConfig:
    """The TrainingConfig of the bundled model (also stored in its model.json)."""
    config = TrainingConfig(
        name=MODEL_NAME,
        elements=["Au", "Ag", "Cu", "Ni", "Zn"],
        sum_to_100=True,
        n_spectra=args.n_spectra,
        refresh_fraction=args.refresh,
        counts_min=3e2,
        counts_max=1e6,
        noiseless_fraction=0.1,
        absent_probability=0.3,
        loss="mae",
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=1000,  # replaced below once the step time is known
        patience=1000,
        schedule="cosine",
        steps_per_epoch=args.steps_per_epoch,
        seed=args.seed,
        device="cpu",
        cache=args.cache,
        eval_counts=[1e3, 1e4, 1e5],
        init_from=str(args.init_from) if args.init_from else None,
    )
    if args.background_probability is not None:
        config.augment.background_probability = args.background_probability
    config.model.type = "mlp"
    config.model.hidden_layers = args.layers
    config.model.neurons = args.neurons
    config.model.decoder_layers = 2
    config.model.decoder_neurons = args.decoder_neurons
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-time budget")
    parser.add_argument("--out", type=Path, default=BUNDLED, help="bundle directory")
    parser.add_argument("--n-spectra", type=int, default=200_000)
    parser.add_argument("--refresh", type=float, default=0.0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--neurons", type=int, default=343)
    parser.add_argument("--decoder-neurons", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps-per-epoch", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=None, help="HDF5 cache of simulated spectra")
    parser.add_argument(
        "--init-from", type=Path, default=None,
        help="a bundle whose network starts the run (continue training on fresh compositions)",
    )
    parser.add_argument(
        "--background-probability", type=float, default=None,
        help="share of training spectra given a random background (default: the "
        "augmentation's own, 0.5; 0 to study what the background augmentation does)",
    )
    parser.add_argument("--save-every", type=float, default=300.0, help="seconds between saves")
    parser.add_argument("--quick", action="store_true", help="a preliminary model in minutes")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = min(args.minutes, 6.0)
        args.n_spectra = min(args.n_spectra, 30_000)
        args.steps_per_epoch = 100
        args.save_every = 0.0
    torch.set_num_threads(args.threads)
    # tiny spectrum values must not fall into slow denormal arithmetic
    torch.set_flush_denormal(True)
    started = time.perf_counter()
    deadline = started + 60.0 * args.minutes
    config = bundled_config(args)
    trainer = Trainer(config)
    events = trainer.events()
    last_save = 0.0
    sized = False
    for event in events:
        now = time.perf_counter()
        if isinstance(event, Progress) and event.epoch is None:
            print(f"[{now - started:7.0f} s] simulated {event.done}/{event.total}", flush=True)
            continue
        if not isinstance(event, EpochEnd):
            continue
        # Size the cosine schedule to the time left from the recent pace, after
        # every epoch: the CPU is shared and the pace drifts (the trainer's cosine
        # reads config.epochs at every step, so the schedule stretches smoothly).
        recent = [e.seconds for e in trainer.history[-5:]]
        pace = sum(recent) / len(recent)
        config.epochs = max(event.epoch + int((deadline - now) / max(pace, 1e-3)), event.epoch + 1)
        config.patience = config.epochs
        if not sized:
            sized = True
            print(f"pace {pace:.1f} s/epoch -> {config.epochs} epochs", flush=True)
        print(
            f"[{now - started:7.0f} s] epoch {event.epoch:4d} train {event.train_loss:8.4f} "
            f"val {event.val_loss:8.4f} MAE {event.val_mae:7.4f} wt% decoder "
            f"{event.decoder_loss:.2e} lr {event.lr:.2e}{' *' if event.improved else ''}",
            flush=True,
        )
        if event.improved and now - last_save >= args.save_every:
            _save(trainer, args.out)
            last_save = time.perf_counter()
        if now >= deadline:
            print("time budget reached", flush=True)
            events.close()
            break
    _save(trainer, args.out)
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


def _save(trainer: Trainer, out: Path) -> None:
    result = trainer.current_result()
    result.save(out, overwrite=True)
    levels = result.metrics.get("test", {}).get("levels", {})
    summary = {k: round(v["mae_wt"], 4) for k, v in levels.items()}
    coverage = {k: round(v["coverage_1sigma"], 3) for k, v in levels.items()}
    print(
        f"saved {out} (epoch {result.best_epoch}): test MAE {json.dumps(summary)} "
        f"coverage {json.dumps(coverage)}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
