"""Frames as they arrive: quantify each new cube file in a folder once it is complete.

:func:`iter_watch` polls a folder. A file counts as complete when its size and
modification time have not changed for ``settle_s`` seconds and, for HDF5,
when it can be opened for reading (HDF5's file locking refuses that while a
writer holds it). A file that still cannot be read is tried again at the next
polls -- a slow writer may pause longer than ``settle_s`` -- and reported as
failed only when it has stayed unchanged and unreadable for ``give_up_s``. No
output is ever made from a file that could not be read whole.

Every finished frame goes into the output folder's manifest and
``summary.csv`` at once (:mod:`.manifest`), so a watcher stopped and started
again skips what it did; a file rewritten later (other size or time) is
quantified again and its outputs replaced.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_xrfquant.campaign.frames import (
    FrameReport,
    FrameSettings,
    cached_model,
    existing_outputs,
    frame_stem,
    quantify_frame,
    settings_key,
)
from napari_xrfquant.campaign.manifest import Manifest, SourceFingerprint, load_manifest
from napari_xrfquant.campaign.run import record_frame, skipped_outcome, write_summary
from napari_xrfquant.jobs import CancelToken

#: HDF5 suffixes: complete only once h5py can open them.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5")


@dataclass
class _FileState:
    fingerprint: SourceFingerprint
    stable_since: float
    finished: bool = False


def _cube_suffixes() -> tuple[str, ...]:
    from napari_xrfquant.io import SUPPORTED_SUFFIXES

    return tuple(SUPPORTED_SUFFIXES)


def _hdf5_is_closed(path: Path) -> bool:
    """Whether h5py can open ``path`` now (not locked by a writer, not truncated)."""
    import h5py

    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def iter_watch(
    folder: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    settings: FrameSettings,
    *,
    model: Any = None,
    poll_s: float = 1.0,
    settle_s: float = 2.0,
    give_up_s: float = 30.0,
    once: bool = False,
    cancel: CancelToken | None = None,
    keep_result: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> Generator[FrameReport | None, None, int]:
    """Quantify the cube files of ``folder`` as they become complete.

    Parameters
    ----------
    folder
        Where new cube files appear (files of every suffix ``read_cube`` knows;
        names starting with ``.`` are skipped: writers' temporary files).
    outdir
        Output folder: each frame's files, ``xrfquant-manifest.json``, ``summary.csv``.
    settings, model
        How each frame is quantified (:func:`~.frames.quantify_frame`).
    poll_s, settle_s, give_up_s
        Seconds between looks at the folder; unchanged for how long a file
        counts as complete; how long an unreadable unchanged file is retried.
    once
        Quantify what is complete now and return (a cron job, a test); with
        files still settling it waits for them first.
    cancel
        Read between frames and polls: once set, the watch ends.
    keep_result
        Keep each frame's :class:`~napari_xrfquant.results.QuantResult` (the GUI).

    Yields
    ------
    FrameReport or None
        One outcome per frame (``"done"``, ``"skipped"`` for frames done by an
        earlier run, ``"failed"``); None after a poll that found nothing new, so
        a caller can stop or cancel between polls.

    Returns
    -------
    int
        The number of frames quantified.
    """
    source, target = Path(folder), Path(outdir).resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder")
    model = model if model is not None else cached_model(settings.model)
    key = settings_key(settings, str(model.model_id))
    manifest = load_manifest(target) or Manifest(target)
    suffixes = _cube_suffixes()
    states: dict[Path, _FileState] = {}
    quantified = 0
    while not (cancel is not None and cancel.cancelled):
        now = clock()
        waiting = False
        for path in sorted(source.iterdir()):
            if path.name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            if cancel is not None and cancel.cancelled:
                return quantified
            try:
                fingerprint = SourceFingerprint.of(path)
            except FileNotFoundError:  # gone between the listing and the look
                continue
            state = states.get(path)
            if state is None or state.fingerprint != fingerprint:
                state = states[path] = _FileState(fingerprint, now)
                record = manifest.frames.get(frame_stem(path))
                if record is not None and record.is_current(fingerprint, key, target):
                    state.finished = True
                    yield skipped_outcome(path, record, target)
                    continue
            if state.finished:
                continue
            if now - state.stable_since < settle_s or (
                    path.suffix.lower() in HDF5_SUFFIXES and not _hdf5_is_closed(path)):
                waiting = True
                continue
            ours = frame_stem(path) in manifest.frames  # recorded: may be replaced
            clash = [] if ours else existing_outputs(target, frame_stem(path), model, settings)
            if clash:  # a user's files under our names: never replaced unasked
                state.finished = True
                yield FrameReport(path, frame_stem(path), "failed", message=(
                    f"{clash[0]}: exists and is not this watcher's output; move it away"))
                continue
            outcome = quantify_frame(path, target, settings, model=model,
                                     overwrite=ours,
                                     keep_result=keep_result)
            if outcome.status == "done":
                record_frame(manifest, outcome, fingerprint, key)
                write_summary(manifest)
                state.finished = True
                quantified += 1
                yield outcome
            elif now - state.stable_since >= give_up_s:
                state.finished = True  # tried again when the file changes
                yield outcome
            else:
                waiting = True  # perhaps a writer's pause: look again at the next poll
        if once and not waiting:
            return quantified
        yield None
        sleep(poll_s)
    return quantified


__all__ = ["HDF5_SUFFIXES", "iter_watch"]
