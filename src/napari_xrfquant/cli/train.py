"""``xrfquant train CONFIG.toml [-o BUNDLE_DIR]``: train a model from a TrainingConfig file.

Prints one line per epoch and the test metrics at the end, then writes the model
bundle (``model.safetensors`` + ``model.json``) that ``xrfquant quantify --model``
and the napari widgets load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from napari_xrfquant.errors import XRFQuantError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on the ``xrfquant`` subparsers."""
    parser = subparsers.add_parser(
        "train",
        help="train a quantification model on simulated spectra",
        description="Train a model from a TrainingConfig TOML file and write a model bundle.",
    )
    parser.add_argument("config", metavar="CONFIG.toml", help="training configuration (TOML)")
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="BUNDLE_DIR",
        help="bundle folder (default: the config's name beside the config file)",
    )
    parser.add_argument("--device", default=None, help="override the config's device")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    axs = parser.add_argument_group(
        "analysis by synthesis (AXS, napari_xrfquant.training.axs); overrides the [axs] section"
    )
    axs.add_argument(
        "--axs",
        default=None,
        metavar="CUBE",
        help="learn the instrument from this cube's unlabelled pixels while training",
    )
    axs.add_argument(
        "--beta", type=float, default=None, help="weight of the reconstruction loss (default 1)"
    )
    axs.add_argument(
        "--learn",
        default=None,
        metavar="PARAMS",
        help="comma-separated instrument parameters the decoder learns (default: "
        "calibration, resolution, tail, shelf, continuum power and the optic)",
    )
    axs.add_argument(
        "--labels", default=None, metavar="LABELS",
        help="label image (TIFF or .npy) of the cube marking standards (0: none)",
    )
    axs.add_argument(
        "--standard", action="append", default=[], metavar="LABEL=STANDARD",
        help="a standard region: LABEL=ERM-EB506 or LABEL=Au=75,Ag=12.5,Cu=12.5 (repeatable)",
    )
    search = parser.add_argument_group(
        "hyperparameter search (optuna TPE, median pruning; see napari_xrfquant.training.search)"
    )
    search.add_argument(
        "--search",
        action="store_true",
        help="search layers, neurons, batch size and learning rate instead of training once",
    )
    search.add_argument("--trials", type=int, default=20, metavar="N", help="search trials")
    search.add_argument(
        "--best-config",
        default=None,
        metavar="BEST.toml",
        help="write the config with the best parameters here (with --search)",
    )
    search.add_argument(
        "--storage", default=None, metavar="URL|FILE.db",
        help="keep the study in an RDB storage (an SQLite file, or a URL such as "
        "postgresql://user@host/db) that other processes and machines share; --trials "
        "is then the study's total",
    )
    search.add_argument("--study", default=None, metavar="NAME",
                        help="the study's name in --storage (default xrfquant-search)")
    search.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="start N local worker processes on the --storage study (default: search here)",
    )
    search.add_argument(
        "--trial-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-time limit per trial (tiny batch sizes are slow on a CPU)",
    )
    return parser


def run_search(args: argparse.Namespace, config: Any) -> int:
    """``--search``: print each trial and the best parameters; write the best config."""
    from napari_xrfquant.training.config import save_config
    from napari_xrfquant.training.search import rdb_storage, search

    if args.trials < 1:
        raise XRFQuantError(f"--trials {args.trials}: need at least one trial")
    if args.workers is not None and args.workers < 1:
        raise XRFQuantError(f"--workers {args.workers}: need at least one worker")
    if args.workers is not None and args.storage is None:
        raise XRFQuantError("--workers share a study: give --storage (an SQLite file will do)")
    target = Path(args.best_config) if args.best_config else None
    if target is not None and target.exists() and not args.overwrite:
        raise FileExistsError(f"{target}: exists; use --overwrite to replace it")
    if args.storage is not None:
        rdb_storage(args.storage)  # a bad URL is refused before any work
    where = f" in {args.storage}" if args.storage else ""
    print(f"searching {args.trials} trials for {', '.join(config.elements)}{where}", flush=True)
    if args.workers is not None:
        from napari_xrfquant.training.search_workers import run_search_workers

        result = run_search_workers(
            config, args.trials, args.storage, args.workers, study_name=args.study,
            trial_timeout_s=args.trial_timeout,
            on_line=lambda line: print(line, flush=True),
        )
    else:
        result = search(
            config,
            args.trials,
            progress=lambda trial: print(trial.describe(), flush=True),
            trial_timeout_s=args.trial_timeout,
            storage=args.storage,
            study_name=args.study,
        )
    if result.best is None or result.best_config is None:
        raise XRFQuantError("no search trial finished with a validation loss")
    params = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in result.best.params.items()
    )
    print(f"best trial {result.best.number}: val loss {result.best.value:.4g}; {params}")
    if target is not None:
        save_config(result.best_config, target, overwrite=args.overwrite)
        print(f"wrote best config {target}")
    return 0


def with_axs_options(config: Any, args: argparse.Namespace) -> Any:
    """``config`` with ``--axs``, ``--beta`` and ``--learn`` applied.

    Raises
    ------
    XRFQuantError
        For ``--beta``/``--learn`` without a cube, or settings AXS refuses.
    """
    from napari_xrfquant._schema import one_line
    from napari_xrfquant.training.config import AXSConfig

    cube, beta, learn, labels = (
        getattr(args, k, None) for k in ("axs", "beta", "learn", "labels")
    )
    standards = list(getattr(args, "standard", None) or [])
    if cube is None and config.axs is None:
        if beta is not None or learn is not None or labels is not None or standards:
            raise XRFQuantError(
                "--beta, --learn, --labels and --standard need --axs CUBE (or an [axs] section)"
            )
        return config
    settings = config.axs.model_dump() if config.axs is not None else {}
    if cube is not None:
        settings["unlabelled"] = str(Path(cube).resolve())
        if not Path(cube).exists():
            raise XRFQuantError(f"{cube}: no such file")
    if beta is not None:
        settings["beta"] = beta
    if learn is not None:
        settings["learn"] = [name.strip() for name in learn.split(",") if name.strip()]
    if labels is not None:
        settings["labels"] = str(Path(labels).resolve())
    for entry in standards:
        label, sep, text = entry.partition("=")
        if not sep or not label.strip().isdigit() or int(label) < 1:
            raise XRFQuantError(f"--standard {entry!r}: give LABEL=STANDARD with a label >= 1")
        settings.setdefault("standards", {})[str(int(label))] = text
    try:
        return config.replace(axs=AXSConfig(**settings))
    except ValidationError as error:
        raise XRFQuantError(one_line(error, "--axs settings")) from None


def format_event(event: Any) -> str | None:
    """One progress line for a training event (None for events not worth a line)."""
    from napari_xrfquant.jobs import Progress
    from napari_xrfquant.training.events import EpochEnd

    if isinstance(event, Progress) and event.epoch is None:
        return f"simulating spectra: {event.done}/{event.total}"
    if isinstance(event, EpochEnd):
        mark = " *" if event.improved else ""
        reconstruction = (
            f"  reconstruction {event.reconstruction_loss:6.2f} (held out "
            f"{event.val_reconstruction:6.2f})"
            if event.val_reconstruction
            else ""
        )
        return (
            f"epoch {event.epoch:4d}  train loss {event.train_loss:9.4f}  "
            f"val loss {event.val_loss:9.4f}  val MAE {event.val_mae:7.3f} wt%{reconstruction}  "
            f"lr {event.lr:.2e}  {event.seconds:6.1f} s{mark}"
        )
    return None


def format_metrics(metrics: dict[str, Any]) -> list[str]:
    """Lines summarising test MAE and 1-sigma coverage per count level."""
    levels = metrics.get("test", {}).get("levels", {})
    return [
        f"test {label:>9}: MAE {level['mae_wt']:.3f} wt%, "
        f"1-sigma coverage {100 * level['coverage_1sigma']:.1f} %"
        for label, level in levels.items()
    ]


def run(args: argparse.Namespace) -> int:
    """Train from ``args.config``; return the exit status."""
    from napari_xrfquant.training.config import load_config
    from napari_xrfquant.training.loop import train

    config_path = Path(args.config)
    config = load_config(config_path)
    if args.device:
        config = config.replace(device=args.device)
    config = with_axs_options(config, args)
    if getattr(args, "search", False):
        return run_search(args, config)
    search_only = [flag for flag, value in (("--storage", args.storage), ("--study", args.study),
                                            ("--workers", args.workers)) if value is not None]
    if search_only:
        raise XRFQuantError(f"{search_only[0]} belongs to a hyperparameter search: add --search")
    output = Path(args.output) if args.output else config_path.resolve().parent / config.name
    if output.exists() and not output.is_dir():
        raise XRFQuantError(f"{output}: exists and is not a folder")
    if (output / "model.json").exists() and not args.overwrite:
        raise FileExistsError(f"{output}: holds a model bundle; use --overwrite to replace it")

    def progress(event: Any) -> None:
        line = format_event(event)
        if line:
            print(line, flush=True)

    result = train(config, progress=progress)
    for line in format_metrics(result.metrics):
        print(line)
    result.save(output, overwrite=args.overwrite)
    axs = result.model.metadata["training"].get("axs")
    if axs:
        learned = ", ".join(f"{name} {value:.5g}" for name, value in axs["learned"].items())
        print(f"learned instrument: {learned}")
    print(f"best epoch {result.best_epoch}; wrote model bundle {output}", file=sys.stdout)
    return 0
