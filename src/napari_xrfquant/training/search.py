"""Hyperparameter search with optuna: TPE sampling, median pruning per epoch.

The search space is the published one: 2-4 hidden layers, 25-500 neurons per
layer (one width for all layers, as :class:`~napari_xrfquant.models.description.ModelConfig`
describes the network), batch size 1-64 and learning rate 1e-5 to 1e-1, both
sampled on a log scale. Each trial trains a network with the training core
(early stopping with the config's patience) and is judged by its best
validation loss; optuna's :class:`~optuna.pruners.MedianPruner` stops a trial
whose validation loss after an epoch is worse than the median of earlier trials
at the same epoch.

Batch sizes near 1 make an epoch take thousands of optimiser steps: on a CPU a
trial with batch size 1 can be 50-100 times slower than one with 64. Use
``steps_per_epoch`` in the base config or ``trial_timeout_s`` to bound them.

:func:`iter_search` is a generator yielding one :class:`TrialResult` per
finished trial (a :class:`~napari_xrfquant.jobs.CancelToken` ends the
search between trials and, within a trial, at its next training event);
:func:`search` runs it to the end and returns the :class:`SearchResult`.

Examples
--------
>>> from napari_xrfquant.training.config import TrainingConfig
>>> from napari_xrfquant.training.search import search
>>> result = search(TrainingConfig(elements=["Fe", "Ni"], n_spectra=2000, epochs=5), n_trials=3)
...  # doctest: +SKIP
>>> result.best_config.model.neurons  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.jobs import Cancelled, CancelToken, drive
from napari_xrfquant.training.config import TrainingConfig

#: Signature of the training entry point: ``train(config, progress=, cancel=)``.
TrainFunction = Callable[..., Any]


@dataclass(frozen=True)
class SearchSpace:
    """Ranges the sampler draws from (bounds inclusive).

    Attributes
    ----------
    hidden_layers
        Number of hidden layers (integers).
    neurons
        Neurons per hidden layer (integers).
    batch_size
        Batch size, log scale (integers).
    lr_range
        Adam learning rate, log scale.
    """

    hidden_layers: tuple[int, int] = (2, 4)
    neurons: tuple[int, int] = (25, 500)
    batch_size: tuple[int, int] = (1, 64)
    lr_range: tuple[float, float] = (1e-5, 1e-1)

    def __post_init__(self) -> None:
        for name in ("hidden_layers", "neurons", "batch_size", "lr_range"):
            low, high = getattr(self, name)
            if not (low > 0 and high >= low):
                raise XRFQuantError(f"search range {name}={low}-{high}: need 0 < low <= high")


@dataclass(frozen=True)
class TrialResult:
    """One finished trial.

    Attributes
    ----------
    number
        Trial number (0-based).
    params
        Sampled values: ``hidden_layers``, ``neurons``, ``batch_size``, ``lr``.
    value
        Best validation loss of the trial (None when it failed before an epoch).
    state
        ``"complete"``, ``"pruned"`` or ``"failed"``.
    epochs
        Epochs the trial ran.
    seconds
        Wall time of the trial.
    message
        Why a trial failed (empty otherwise).
    """

    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    epochs: int
    seconds: float
    message: str = ""

    def describe(self) -> str:
        """One line for a log: ``trial 3 complete  val 0.812  2x343 bs 32 lr 1.2e-03 (41 s)``."""
        p = self.params
        value = f"val {self.value:.4g}" if self.value is not None else "val -"
        text = (
            f"trial {self.number} {self.state:<8} {value}  {p['hidden_layers']}x{p['neurons']} "
            f"bs {p['batch_size']} lr {p['lr']:.2e}  ({self.epochs} epochs, {self.seconds:.0f} s)"
        )
        return text + (f"  {self.message}" if self.message else "")


@dataclass
class SearchResult:
    """All trials and the best one.

    Attributes
    ----------
    trials
        Every finished trial, in order.
    best
        The complete (or pruned, if none completed) trial with the lowest value.
    best_config
        ``base`` with the best trial's parameters filled in.
    """

    trials: list[TrialResult]
    best: TrialResult | None
    best_config: TrainingConfig | None


def apply_params(base: TrainingConfig, params: dict[str, Any]) -> TrainingConfig:
    """``base`` with sampled (or user-chosen) hyperparameters filled in.

    Parameters
    ----------
    base
        The config the search starts from; its model type is kept.
    params
        Any of ``hidden_layers``, ``neurons``, ``batch_size``, ``lr``.
    """
    model = base.model.model_copy(
        update={
            "hidden_layers": int(params.get("hidden_layers", base.model.hidden_layers)),
            "neurons": int(params.get("neurons", base.model.neurons)),
        }
    )
    return base.replace(
        model=model,
        batch_size=int(params.get("batch_size", base.batch_size)),
        lr=float(params.get("lr", base.lr)),
    )


def suggest_params(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Draw one set of hyperparameters from ``space`` with an optuna trial."""
    return {
        "hidden_layers": trial.suggest_int("hidden_layers", *space.hidden_layers),
        "neurons": trial.suggest_int("neurons", *space.neurons),
        "batch_size": trial.suggest_int("batch_size", *space.batch_size, log=True),
        "lr": trial.suggest_float("lr", *space.lr_range, log=True),
    }


def make_study(
    seed: int | None = None,
    n_startup_trials: int = 2,
    n_warmup_steps: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
) -> Any:
    """An optuna study: minimise, TPE sampler, median pruner; in memory or shared.

    Parameters
    ----------
    seed
        Seeds the TPE sampler, so a search is reproducible.
    n_startup_trials
        Trials that run to the end before the pruner acts (the median needs them).
    n_warmup_steps
        Epochs of every trial that are never pruned.
    storage
        An RDB URL (``sqlite:///search.db``, ``postgresql://...``) or an SQLite
        file's path: the study lives there and every process that opens it with
        the same ``study_name`` adds its trials to it (:func:`storage_url`).
        None: in memory.
    study_name
        The study's name in the storage (default :data:`DEFAULT_STUDY`).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shared = None if storage is None else rdb_storage(storage)
    return optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        ),
        storage=shared,
        study_name=(study_name or DEFAULT_STUDY) if shared is not None else None,
        load_if_exists=True,
    )


#: The study name when none is given.
DEFAULT_STUDY = "xrfquant-search"


def storage_url(text: str) -> str:
    """An RDB URL as given, or ``sqlite:///<absolute path>`` for a file path."""
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def rdb_storage(text: str) -> Any:
    """optuna's RDB storage at ``text`` (:func:`storage_url`).

    SQLite waits up to a minute for a lock, so several processes can share a file.

    Raises
    ------
    XRFQuantError
        When the storage cannot be opened (bad URL, missing driver, no server).
    """
    import optuna

    url = storage_url(text)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as exc:  # SQLAlchemy raises many kinds for a URL it cannot use
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XRFQuantError(f"--storage {text}: cannot open it ({first})") from None


def default_train_function() -> TrainFunction:
    """The training core's ``train(config, progress=None, cancel=None)``."""
    from napari_xrfquant.training import loop as trainer

    return trainer.train


def _validation_loss(event: Any) -> float | None:
    value = getattr(event, "val_loss", None)
    if value is None and isinstance(event, dict):
        value = event.get("val_loss")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def run_trial(
    trial: Any,
    base: TrainingConfig,
    space: SearchSpace,
    train_fn: TrainFunction,
    cancel: CancelToken | None = None,
    trial_timeout_s: float | None = None,
    on_epoch: Callable[[Any], None] | None = None,
) -> TrialResult:
    """Train one sampled config, reporting each epoch's validation loss to optuna.

    The trial is stopped early (at an epoch boundary) when the pruner says so,
    when it runs longer than ``trial_timeout_s`` (then it counts as complete
    with its best loss so far), or when ``cancel`` is set.
    """
    params = suggest_params(trial, space)
    config = apply_params(base, params)
    losses: list[float] = []
    flags = {"pruned": False}
    start = time.perf_counter()
    stop = CancelToken()  # this trial's: the pruner, its time limit or the search's cancel

    def progress(event: Any) -> None:
        loss = _validation_loss(event)
        if loss is not None:
            losses.append(loss)
            trial.report(loss, step=len(losses))
            flags["pruned"] = flags["pruned"] or trial.should_prune()
            if on_epoch is not None:
                on_epoch(event)
        timed_out = trial_timeout_s is not None and time.perf_counter() - start > trial_timeout_s
        if flags["pruned"] or timed_out or (cancel is not None and cancel.cancelled):
            stop.cancel()

    try:
        result = train_fn(config, progress=progress, cancel=stop)
    except (XRFQuantError, Cancelled) as exc:
        return TrialResult(
            trial.number, params, None, "failed", len(losses), time.perf_counter() - start, str(exc)
        )
    best = min(losses) if losses else _result_loss(result)
    state = "pruned" if flags["pruned"] else ("complete" if best is not None else "failed")
    message = "" if best is not None else "no validation loss was reported"
    return TrialResult(
        trial.number, params, best, state, len(losses), time.perf_counter() - start, message
    )


def _result_loss(result: Any) -> float | None:
    for name in ("best_val_loss", "val_loss"):
        value = getattr(result, name, None)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    return None


def iter_search(
    base: TrainingConfig,
    n_trials: int,
    space: SearchSpace | None = None,
    seed: int | None = None,
    train_fn: TrainFunction | None = None,
    cancel: CancelToken | None = None,
    trial_timeout_s: float | None = None,
    on_epoch: Callable[[Any], None] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
) -> Generator[TrialResult, None, SearchResult]:
    """Run a search trial by trial, yielding each :class:`TrialResult`.

    Parameters
    ----------
    base
        Everything that is not searched (elements, instrument, data set, epochs,
        patience, model type).
    n_trials
        Number of trials.
    space
        The ranges (default: the published ones).
    seed
        Seeds the sampler (default: ``base.seed``). Every trial trains on the same
        simulated data (``base.seed``), so trials differ only by hyperparameters.
    train_fn
        ``train(config, progress=, cancel=)``; default: the training core.
    cancel
        Ends the current trial at its next training event, and the search.
    trial_timeout_s
        Wall-time limit per trial (its best loss so far counts).
    on_epoch
        Called with every epoch event of every trial (live plots).
    storage, study_name
        A shared study (:func:`make_study`): ``n_trials`` is then the study's
        total, counted over every process that works on it (one more each may
        start while the last ones finish), and the best trial is the study's.

    Returns
    -------
    SearchResult
        As the generator's return value (``StopIteration.value``).
    """
    if n_trials < 1:
        raise XRFQuantError(f"number of trials must be positive (got {n_trials})")
    space = space or SearchSpace()
    train_fn = train_fn or default_train_function()
    study = make_study(base.seed if seed is None else seed, storage=storage,
                       study_name=study_name)
    trials: list[TrialResult] = []
    with tempfile.TemporaryDirectory(prefix="xrfquant-search-") as scratch:
        # Trials share one simulated set: without a cache each would simulate it again.
        trial_base = (
            base if base.cache else base.replace(cache=str(Path(scratch) / "search-set.h5"))
        )
        for _ in range(n_trials):
            if cancel is not None and cancel.cancelled:
                break
            if storage is not None and len(study.get_trials(deepcopy=False)) >= n_trials:
                break  # the other processes have asked for the rest
            trial = study.ask()
            # who ran it: several processes or machines may share the study
            trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
            outcome = run_trial(
                trial, trial_base, space, train_fn, cancel, trial_timeout_s, on_epoch
            )
            _tell(study, trial, outcome)
            trials.append(outcome)
            try:
                yield outcome
            except Cancelled:  # the trials so far are the search's result
                break
    best = best_trial(trials if storage is None else study_trials(study))
    best_config = None
    if best is not None:
        best_config = with_absolute_instrument(apply_params(base, best.params))
    return SearchResult(trials, best, best_config)


def with_absolute_instrument(config: TrainingConfig) -> TrainingConfig:
    """``config`` with its instrument file as an absolute path.

    A config read from a file names its instrument relative to that file; a copy
    saved elsewhere (the best config of a search) must still find it.
    """
    path = config.instrument_path()
    if path is None or Path(config.instrument or "").is_absolute():
        return config
    return config.replace(instrument=str(path.resolve()))


def _tell(study: Any, trial: Any, outcome: TrialResult) -> None:
    import optuna

    if outcome.state == "complete":
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def study_trials(study: Any) -> list[TrialResult]:
    """Every finished trial of a (shared) study, as :class:`TrialResult` s."""
    import optuna

    states = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
    }
    found = []
    for trial in study.get_trials(deepcopy=False, states=tuple(states)):
        steps = trial.intermediate_values
        value = trial.value if trial.value is not None else (
            min(steps.values()) if steps else None)
        seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
        found.append(TrialResult(trial.number, dict(trial.params), value, states[trial.state],
                                 len(steps), seconds))
    return found


def best_trial(trials: list[TrialResult]) -> TrialResult | None:
    """The complete trial with the lowest value (a pruned one if none completed)."""
    for states in (("complete",), ("complete", "pruned")):
        candidates = [t for t in trials if t.state in states and t.value is not None]
        if candidates:
            return min(candidates, key=lambda t: float(t.value or 0.0))
    return None


def search(
    base: TrainingConfig,
    n_trials: int,
    space: SearchSpace | None = None,
    seed: int | None = None,
    train_fn: TrainFunction | None = None,
    progress: Callable[[TrialResult], Any] | None = None,
    cancel: CancelToken | None = None,
    trial_timeout_s: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
) -> SearchResult:
    """Run :func:`iter_search` to the end, calling ``progress`` with every trial.

    See :func:`iter_search` for the parameters.
    """
    return drive(
        iter_search(base, n_trials, space, seed, train_fn, cancel, trial_timeout_s,
                    storage=storage, study_name=study_name),
        progress,
    )


__all__ = [
    "SearchResult",
    "SearchSpace",
    "TrialResult",
    "apply_params",
    "best_trial",
    "iter_search",
    "make_study",
    "rdb_storage",
    "search",
    "storage_url",
    "study_trials",
    "suggest_params",
]
