"""Many frames: plan what is left to do, run it here or on a dask cluster, record it.

:func:`plan_campaign` decides, before any work, which frames are done already
(their manifest record matches, :mod:`.manifest`), which are to do, and refuses
outputs it would overwrite without being asked. :func:`iter_campaign` runs the
frames in this process, or as one task per frame on a ``dask.distributed``
client (:func:`connect`), yielding a :class:`~.frames.FrameReport` as each
finishes; the manifest and ``summary.csv`` are written here, by the one process
that gathers the outcomes. A failed frame is reported and the others go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
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
from napari_xrfquant.campaign.manifest import (
    FrameRecord,
    Manifest,
    SourceFingerprint,
    load_manifest,
)
from napari_xrfquant.errors import XRFQuantError

SUMMARY_FILE = "summary.csv"
#: The extra that brings dask.distributed (and bokeh for its dashboard).
CLUSTER_EXTRA = "pip install 'napari-xrfquant[cluster]'"


@dataclass
class CampaignPlan:
    """What a campaign will do: frames to quantify, frames done before."""

    outdir: Path
    settings: FrameSettings
    key: str
    paths: list[Path]
    todo: list[Path]
    skipped: list[Path]
    fingerprints: dict[Path, SourceFingerprint]
    manifest: Manifest
    overwrite: bool = False


@dataclass
class CampaignSummary:
    """How a campaign ended."""

    done: list[FrameReport] = field(default_factory=list)
    skipped: list[FrameReport] = field(default_factory=list)
    failed: list[FrameReport] = field(default_factory=list)
    summary_path: Path | None = None


def plan_campaign(
    paths: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    settings: FrameSettings,
    model: Any = None,
    overwrite: bool = False,
) -> CampaignPlan:
    """Check the inputs and the output folder; sort the frames into to-do and done.

    Parameters
    ----------
    paths
        Cube files; their stems name the outputs and must differ.
    outdir
        The output folder (made when the first frame is written).
    settings
        How every frame is read, quantified and written.
    model
        The loaded bundle (its id is part of what makes an output current);
        None: ``settings.model``.
    overwrite
        Quantify every frame again and replace outputs that exist.

    Raises
    ------
    FileNotFoundError
        For a cube file that does not exist.
    FileExistsError
        For outputs that exist but were not made from this file with these
        settings (or ``summary.csv`` of another run), unless ``overwrite``.
    XRFQuantError
        For two cubes with the same stem, or an output path that is a file.
    """
    files = [Path(p).resolve() for p in paths]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    stems = [frame_stem(p) for p in files]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise XRFQuantError(f"several cubes are named {repeated[0]!r}; their outputs would clash")
    folder = Path(outdir).resolve()
    if folder.exists() and not folder.is_dir():
        raise XRFQuantError(f"{folder}: exists and is not a folder")
    model = model if model is not None else cached_model(settings.model)
    key = settings_key(settings, str(model.model_id))
    manifest = load_manifest(folder)
    if manifest is None:
        summary = folder / SUMMARY_FILE
        if summary.exists() and not overwrite:
            raise FileExistsError(f"{summary}: exists; use --overwrite to replace outputs")
        manifest = Manifest(folder)
    todo, skipped, fingerprints = [], [], {}
    for path, stem in zip(files, stems, strict=True):
        fingerprints[path] = SourceFingerprint.of(path)
        record = manifest.frames.get(stem)
        if not overwrite and record is not None and record.is_current(
                fingerprints[path], key, folder):
            skipped.append(path)
            continue
        clash = existing_outputs(folder, stem, model, settings)
        if clash and not overwrite:
            raise FileExistsError(
                f"{clash[0]}: exists (not made from {path.name} with these settings and "
                f"model); use --overwrite to replace outputs"
            )
        todo.append(path)
    return CampaignPlan(folder, settings, key, files, todo, skipped, fingerprints, manifest,
                        overwrite)


def iter_campaign(
    plan: CampaignPlan,
    model: Any = None,
    client: Any = None,
    progress: Callable[[Any], Any] | None = None,
) -> Generator[FrameReport, None, CampaignSummary]:
    """Run a planned campaign, yielding each frame's outcome as it finishes.

    Parameters
    ----------
    plan
        From :func:`plan_campaign`.
    model
        The loaded bundle for frames run here (None: ``plan.settings.model``).
    client
        A ``dask.distributed.Client``: every frame is a task on its workers, each
        of which loads the model once. None: one frame after another, here.
    progress
        Here only: called with each frame's quantification
        :class:`~napari_xrfquant.jobs.Progress`.

    Returns
    -------
    CampaignSummary
        As the generator's value; ``summary.csv`` then holds every frame done now
        or before, in the order of ``plan.paths``.
    """
    ended = CampaignSummary()
    for path in plan.skipped:
        outcome = skipped_outcome(path, plan.manifest.frames[frame_stem(path)], plan.outdir)
        ended.skipped.append(outcome)
        yield outcome
    outcomes = (
        _run_here(plan, model, progress) if client is None else _run_on(client, plan)
    )
    for outcome in outcomes:
        if outcome.status == "done":
            _record(plan, outcome)
            ended.done.append(outcome)
        else:
            ended.failed.append(outcome)
        yield outcome
    ended.summary_path = write_summary(plan.manifest, [frame_stem(p) for p in plan.paths])
    return ended


def _run_here(plan: CampaignPlan, model: Any,
              progress: Callable[[Any], Any] | None) -> Iterator[FrameReport]:
    for path in plan.todo:
        yield quantify_frame(path, plan.outdir, plan.settings, model=model,
                             overwrite=plan.overwrite, progress=progress)


def _run_on(client: Any, plan: CampaignPlan) -> Iterator[FrameReport]:
    from distributed import as_completed

    futures = {
        client.submit(quantify_frame, path, plan.outdir, plan.settings,
                      overwrite=plan.overwrite, pure=False, key=f"frame-{i}-{path.name}"): path
        for i, path in enumerate(plan.todo)
    }
    for future in as_completed(list(futures)):
        path = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # the worker died or the task was lost: this frame failed
            outcome = FrameReport(path, frame_stem(path), "failed",
                                   message=f"worker lost: {' '.join(str(exc).split())}")
        future.release()
        yield outcome


def _record(plan: CampaignPlan, outcome: FrameReport) -> None:
    record_frame(plan.manifest, outcome, plan.fingerprints.get(outcome.path), plan.key)


def record_frame(manifest: Manifest, outcome: FrameReport,
                 fingerprint: SourceFingerprint | None, key: str) -> None:
    """Add a finished frame to the manifest and save it (one process is its writer).

    ``fingerprint`` is the source as it was when the frame was planned (None:
    as it is now); a file changed since then is not current next time.
    """
    manifest.frames[outcome.stem] = FrameRecord(
        fingerprint or SourceFingerprint.of(outcome.path),
        key,
        [Path(f).name for f in outcome.files],
        [asdict(row) for row in outcome.statistics],
    )
    manifest.folder.mkdir(parents=True, exist_ok=True)
    manifest.save()


def skipped_outcome(path: Path, record: FrameRecord, folder: Path) -> FrameReport:
    """The outcome of a frame done by an earlier run: its files and statistics, recorded."""
    from napari_xrfquant.results import RegionStatistics

    rows = [RegionStatistics(**row) for row in record.statistics]
    return FrameReport(path, frame_stem(path), "skipped", [folder / f for f in record.files],
                        rows)


def write_summary(manifest: Manifest, stems: Sequence[str] | None = None) -> Path | None:
    """``summary.csv`` of the frames ``stems`` (default: all) the manifest holds.

    Rewritten whole, atomically, in the order of ``stems`` (default: by name);
    None when there is nothing to write.
    """
    from napari_xrfquant.results import RegionStatistics, write_statistics_csv

    order = sorted(manifest.frames) if stems is None else list(stems)
    rows = [RegionStatistics(**row) for stem in order if stem in manifest.frames
            for row in manifest.frames[stem].statistics]
    if not rows:
        return None
    return write_statistics_csv(manifest.folder / SUMMARY_FILE, rows, overwrite=True)


@contextmanager
def connect(spec: str) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``--cluster``: ``local``, ``local:N`` or an address.

    ``local:N`` starts N worker processes of one thread each on this machine
    (``local``: one per core); anything else is the address of a running
    scheduler (``tcp://host:8786``). The client and a local cluster are closed
    when the block ends.

    Raises
    ------
    XRFQuantError
        When dask.distributed is not installed, ``N`` is not a positive
        integer, or the scheduler cannot be reached.
    """
    try:
        import distributed
    except ImportError:
        raise XRFQuantError(f"--cluster needs dask.distributed, which is not installed: "
                            f"{CLUSTER_EXTRA}") from None
    cluster = None
    if spec == "local" or spec.startswith("local:"):
        count = spec.partition(":")[2] or str(os.cpu_count() or 1)
        if not count.isdigit() or int(count) < 1:
            raise XRFQuantError(f"--cluster {spec}: give local:N with N a positive integer")
        cluster = distributed.LocalCluster(
            n_workers=int(count), threads_per_worker=1, processes=True,
            dashboard_address=":0", silence_logs=logging.ERROR,
        )
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(spec, timeout=30)
        except (OSError, ValueError, TimeoutError) as exc:
            raise XRFQuantError(f"--cluster {spec}: no scheduler there ({exc})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


__all__ = [
    "CLUSTER_EXTRA",
    "SUMMARY_FILE",
    "CampaignPlan",
    "CampaignSummary",
    "connect",
    "iter_campaign",
    "plan_campaign",
    "record_frame",
    "skipped_outcome",
    "write_summary",
]
