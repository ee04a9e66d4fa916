"""One frame of a campaign: a cube file quantified and exported, as a task that cannot fail.

:func:`quantify_frame` is what ``xrfquant quantify``, ``xrfquant quantify
--cluster`` and ``xrfquant watch`` run for every file, in this process or on a
dask worker: read the cube, quantify it, mask the background, export it through
the one export path (:func:`napari_xrfquant.results.export_result`). It
returns a :class:`FrameReport` rather than raising for a bad frame, so one
broken file among many is reported and the others go on.

:class:`FrameSettings` holds everything that decides a frame's outputs except
the model bundle; it is plain data (it travels to workers) and :func:`settings_key`
hashes it with the model's id, so a resumed campaign knows whether an existing
output was made the same way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from napari_xrfquant.results.result import DEFAULT_MASK_BELOW_COUNTS


class FrameSettings(BaseModel):
    """How every frame of a campaign is read, quantified and written.

    Attributes
    ----------
    model
        Model bundle folder; None: the bundled model.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size
        Spectra per chunk (None: the engine's default).
    refine, instrument
        Steps of the Poisson fit after the network, and the instrument file it
        fits with (None: the model's).
    counts_scale
        ``--counts-scale``: a number, a per-pixel map's name, or None (the rule).
    mask_below
        Pixels with fewer counts are background (0: no mask).
    layout, preview
        Export layout and whether a PNG preview is written.
    dataset, energy_axis, calibration, pyxrf_parameters
        Where a file keeps its cube (:func:`napari_xrfquant.io.read_cube`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None
    device: str = "auto"
    batch_size: int | None = Field(default=None, ge=1)
    refine: int = Field(default=0, ge=0)
    instrument: str | None = None
    counts_scale: str | None = None
    mask_below: float = Field(default=DEFAULT_MASK_BELOW_COUNTS, ge=0, allow_inf_nan=False)
    layout: Literal["stack", "per-element"] = "stack"
    preview: bool = False
    dataset: str | None = None
    energy_axis: Literal["first", "last"] | None = None
    calibration: str | list[float] | None = None
    pyxrf_parameters: str | None = None


def settings_key(settings: FrameSettings, model_id: str) -> str:
    """A short hash of the settings and the model: equal keys make equal outputs."""
    text = json.dumps({"settings": settings.model_dump(), "model": model_id}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class FrameReport:
    """What became of one frame: an event of a campaign or a watch (a job of
    :mod:`napari_xrfquant.jobs`), not how the job ended.

    Attributes
    ----------
    path
        The cube file.
    stem
        Start of its output names.
    status
        ``"done"`` (quantified now), ``"skipped"`` (done by an earlier run) or ``"failed"``.
    files
        Outputs written (or found, when skipped).
    statistics
        Whole-map statistics (:class:`~napari_xrfquant.results.RegionStatistics`).
    seconds
        Wall time of the quantification.
    device
        Where it ran.
    message
        Why it failed (one line), empty otherwise.
    notes
        Warnings about a frame that was done (e.g. a poor fit), one line each.
    result
        The :class:`~napari_xrfquant.results.QuantResult` when asked to keep it.
    """

    path: Path
    stem: str
    status: str
    files: list[Path] = field(default_factory=list)
    statistics: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""
    message: str = ""
    notes: list[str] = field(default_factory=list)
    result: Any = None

    def describe(self) -> str:
        """One line for a log: the frame, its time and mean wt%, or why it failed."""
        if self.status == "failed":
            name = self.path.name
            return self.message if self.message.startswith(name) else f"{name}: {self.message}"
        if self.status == "skipped":
            return f"{self.path.name}: done before, skipped"
        means = ", ".join(f"{r.element} {r.mean_wt_percent:.2f}" for r in self.statistics)
        return f"{self.path.name}: {self.seconds:.2f} s on {self.device}; mean wt%: {means}"


def frame_stem(path: str | Path) -> str:
    """The start of a cube file's output names (its stem, made safe)."""
    from napari_xrfquant.results import safe_stem

    return safe_stem(Path(path).stem)


def existing_outputs(folder: Path, stem: str, model: Any, settings: FrameSettings) -> list[Path]:
    """The outputs a frame ``stem`` would write into ``folder`` that exist already."""
    from napari_xrfquant.results import export_plan

    plan = export_plan(folder, stem, model.elements, settings.layout, True, settings.preview)
    return [item.path for item in plan if item.path.exists()]


@functools.lru_cache(maxsize=4)
def cached_model(spec: str | None) -> Any:
    """The model bundle ``spec`` (None: bundled), loaded once per process.

    A dask worker runs many frames: it reads the bundle for the first and keeps it.
    """
    from napari_xrfquant.models.bundle import load_model

    return load_model(spec)


@functools.lru_cache(maxsize=4)
def _cached_instrument(path: str) -> Any:
    from napari_xrfquant.instrument import load_instrument

    return load_instrument(path)


def open_frame(path: Path, settings: FrameSettings, lazy: bool | None = None) -> Any:
    """:func:`~napari_xrfquant.io.read_cube` of ``path`` as ``settings`` say."""
    from napari_xrfquant.io import read_cube

    return read_cube(
        path,
        dataset=settings.dataset,
        energy_axis=settings.energy_axis,
        lazy=lazy,
        calibration=settings.calibration,
        pyxrf_parameters=settings.pyxrf_parameters,
    )


def quantify_frame(
    path: str | Path,
    outdir: str | Path,
    settings: FrameSettings,
    *,
    model: Any = None,
    overwrite: bool = False,
    progress: Callable[[Any], Any] | None = None,
    keep_result: bool = False,
) -> FrameReport:
    """Quantify the cube file ``path`` and export its outputs into ``outdir``.

    Parameters
    ----------
    path, outdir
        The cube file and the output folder.
    settings
        How to read, quantify and write it.
    model
        A loaded bundle; None: ``settings.model`` through :func:`cached_model`.
    overwrite
        Replace existing outputs of this frame.
    progress
        Called with every :class:`~napari_xrfquant.jobs.Progress` of the quantification.
    keep_result
        Keep the :class:`~napari_xrfquant.results.QuantResult` in the outcome
        (for the GUI; a cluster task leaves it on the worker).

    Returns
    -------
    FrameReport
        ``status="failed"`` with a one-line message for a frame that could not be
        done (unreadable file, energy range the model does not cover, outputs
        that exist); the export is all-or-nothing either way.
    """
    from napari_xrfquant.errors import XRFQuantError

    source = Path(path)
    outcome = FrameReport(source, frame_stem(source), "failed")
    try:
        model = model if model is not None else cached_model(settings.model)
        return _quantify(source, Path(outdir), settings, model, overwrite, progress, keep_result)
    except (XRFQuantError, OSError, ValueError) as exc:
        outcome.message = " ".join(str(exc).split()) or type(exc).__name__
    except Exception as exc:  # a bug in one frame must not stop the campaign
        outcome.message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return outcome


def _quantify(
    source: Path,
    outdir: Path,
    settings: FrameSettings,
    model: Any,
    overwrite: bool,
    progress: Callable[[Any], Any] | None,
    keep_result: bool,
) -> FrameReport:
    from napari_xrfquant.inference import iter_quantify
    from napari_xrfquant.inference.counts import resolve_counts_scale
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.results import (
        background_mask,
        export_result,
        mask_background,
        poor_fit_message,
        region_statistics,
        whole_map,
    )

    start = time.perf_counter()
    instrument = _cached_instrument(settings.instrument) if settings.instrument else None
    with open_frame(source, settings) as cube:
        scale = resolve_counts_scale(settings.counts_scale, cube.data, cube.metadata.get("maps"))
        generator = iter_quantify(
            cube.data,
            cube.energy_keV,
            model=model,
            device=settings.device,
            batch_size=settings.batch_size,
            refine=settings.refine,
            instrument=instrument,
            counts_scale=scale,
        )
        result = drive(generator, progress)
        if settings.mask_below > 0 and math.isfinite(settings.mask_below):
            mask = background_mask(cube.total_counts() * result.counts_scale,
                                   settings.mask_below)
            result = mask_background(result, mask, settings.mask_below)
        pixel_size = cube.metadata.get("pixel_size_um")
    rows, cols = result.image_shape[:2]
    statistics = region_statistics(result, [whole_map((rows, cols))], source=source.name)
    poor_fit = poor_fit_message(result, source.name)
    stem = frame_stem(source)
    written = export_result(
        outdir,
        result,
        stem,
        layout=settings.layout,
        pixel_size_um=pixel_size,
        statistics=statistics,
        source=source.name,
        preview=settings.preview,
        overwrite=overwrite,
    )
    return FrameReport(
        source, stem, "done", written, statistics, float(getattr(result, "seconds", 0.0)
                                                        or time.perf_counter() - start),
        str(result.device), notes=[poor_fit] if poor_fit else [],
        result=result if keep_result else None,
    )


__all__ = [
    "FrameReport",
    "FrameSettings",
    "cached_model",
    "existing_outputs",
    "frame_stem",
    "open_frame",
    "quantify_frame",
    "settings_key",
]
