"""Several local processes on one shared optuna study (``xrfquant train --search --workers N``).

Each worker is a fresh process (``spawn``: no forked torch or thread state) that
runs :func:`~napari_xrfquant.training.search.iter_search` on the study in the
RDB storage, with a sampler seed of its own, so the processes propose
different trials and learn from each other's. The study is created here first,
and the simulated training set is made once here and shared through a cache
file, so the workers neither race to create the study nor simulate the same
set side by side. Processes on other machines join the same study by running
``xrfquant train --search --storage URL --study NAME`` there.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.training.config import TrainingConfig
from napari_xrfquant.training.search import (
    DEFAULT_STUDY,
    SearchResult,
    apply_params,
    best_trial,
    make_study,
    study_trials,
    with_absolute_instrument,
)


def _worker(
    config: TrainingConfig,
    n_trials: int,
    storage: str,
    study_name: str,
    seed: int,
    trial_timeout_s: float | None,
    label: str,
) -> None:
    """One worker process: trials on the shared study until it has ``n_trials``."""
    from napari_xrfquant.training.search import iter_search

    for trial in iter_search(config, n_trials, seed=seed, trial_timeout_s=trial_timeout_s,
                             storage=storage, study_name=study_name):
        print(f"[{label}] {trial.describe()}", flush=True)


def _prepare_shared_set(config: TrainingConfig, scratch: Path) -> TrainingConfig:
    """``config`` with a cache file holding its simulated set, simulated here once."""
    if config.training_set or config.cache:
        return config
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.training.loop import Trainer

    shared = config.replace(cache=str(scratch / "search-set.h5"))
    drive(Trainer(shared).prepare_data())
    return shared


def run_search_workers(
    base: TrainingConfig,
    n_trials: int,
    storage: str,
    workers: int,
    study_name: str | None = None,
    seed: int | None = None,
    trial_timeout_s: float | None = None,
    on_line: Callable[[str], Any] | None = print,
) -> SearchResult:
    """Run ``workers`` local processes on the study in ``storage``; the study's best.

    Parameters
    ----------
    base, n_trials, seed, trial_timeout_s
        As :func:`~napari_xrfquant.training.search.iter_search`; ``n_trials`` is the
        study's total, ``seed`` the first worker's sampler seed (the next ones add 1).
    storage, study_name
        The shared study (:func:`~napari_xrfquant.training.search.make_study`).
    workers
        Processes to start.
    on_line
        Called with one line per event here (the workers print their trials).

    Raises
    ------
    XRFQuantError
        For fewer than one worker or trial, or when a worker fails.
    """
    if workers < 1 or n_trials < 1:
        raise XRFQuantError(f"need at least one worker and one trial (got {workers}, {n_trials})")
    name = study_name or DEFAULT_STUDY
    make_study(storage=storage, study_name=name)  # created once, before the workers race
    first_seed = base.seed if seed is None else seed
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="xrfquant-search-") as scratch:
        config = _prepare_shared_set(base, Path(scratch))
        processes = [
            context.Process(
                target=_worker,
                args=(config, n_trials, storage, name, first_seed + i, trial_timeout_s,
                      f"worker {i + 1}"),
                name=f"xrfquant-search-{i + 1}",
            )
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        if on_line is not None:
            on_line(f"{workers} workers on study {name!r} in {storage}")
        for process in processes:
            process.join()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise XRFQuantError(f"search worker(s) {', '.join(failed)} failed; see their output")
    trials = study_trials(make_study(storage=storage, study_name=name))
    best = best_trial(trials)
    best_config = None if best is None else with_absolute_instrument(
        apply_params(base, best.params))
    return SearchResult(trials, best, best_config)


__all__ = ["run_search_workers"]
