"""The one export of a quantification: element, uncertainty and fit-quality TIFFs,
the statistics CSV and an optional PNG preview.

``xrfquant quantify`` and the napari Quantify dock both call
:func:`export_result`, so the files, their names and their metadata are the same
whichever way a user gets there:

=====================================  ==================  ====================
file (``layout="stack"``)              ``kind``            channel labels
=====================================  ==================  ====================
``<stem>_wt_percent.tif``              concentration       ``Au``, ``Ag``, ...
``<stem>_sigma_wt_percent.tif``        uncertainty         ``Au ±1σ``, ...
``<stem>_fit_quality.tif``             fit-quality         ``fit quality``
``<stem>_statistics.csv``              (region statistics, :mod:`.regions`)
``<stem>_preview.png``                 (``preview=True`` only)
=====================================  ==================  ====================

With ``layout="per-element"`` the two map stacks become one file per element,
``<stem>_Au_wt_percent.tif`` and ``<stem>_Au_sigma_wt_percent.tif``. Units
(``wt%``, :data:`~.result.FIT_QUALITY_UNIT`) are in the ImageJ metadata and in
our JSON description (:mod:`napari_xrfquant.io.maps`), with ``model_id``,
``source`` and ``mask_below_counts``.

Every file is written into a hidden staging folder beside the targets first and
moved into place only when all are complete, so a failure part-way leaves no
partial set; existing files are replaced only when ``overwrite`` says so.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.results.regions import RegionStatistics, write_statistics_csv
from napari_xrfquant.results.result import FIT_QUALITY_UNIT, QuantResult

LAYOUTS = ("stack", "per-element")
FIT_QUALITY_LABEL = "fit quality"

#: Asked with the files that exist already; True replaces them.
ConfirmOverwrite = Callable[[list[Path]], bool]


@dataclass(frozen=True)
class PlannedFile:
    """One output file: where, what kind, which maps."""

    path: Path
    kind: str  #: "concentration", "uncertainty", "fit-quality", "statistics" or "preview"
    names: tuple[str, ...] = ()


def safe_stem(name: str) -> str:
    """A file-name stem from a cube or layer name: letters, digits, ``._-`` only."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return stem or "xrfquant"


def export_plan(
    folder: str | os.PathLike[str],
    stem: str,
    elements: Sequence[str],
    layout: str = "stack",
    statistics: bool = True,
    preview: bool = False,
    unit_slug: str = "wt_percent",
) -> list[PlannedFile]:
    """The files :func:`export_result` writes for these elements, in writing order
    (``unit_slug`` names the maps' unit: ``wt_percent`` or ``ug_per_cm2``)."""
    if layout not in LAYOUTS:
        raise XRFQuantError(f"unknown export layout {layout!r} (use {' or '.join(LAYOUTS)})")
    target = Path(folder)
    names = tuple(str(e) for e in elements)
    unit = unit_slug
    plan: list[PlannedFile] = []
    if layout == "stack":
        plan.append(PlannedFile(target / f"{stem}_{unit}.tif", "concentration", names))
        plan.append(PlannedFile(target / f"{stem}_sigma_{unit}.tif", "uncertainty", names))
    else:
        for element in names:
            plan.append(
                PlannedFile(target / f"{stem}_{element}_{unit}.tif", "concentration", (element,))
            )
            plan.append(
                PlannedFile(
                    target / f"{stem}_{element}_sigma_{unit}.tif", "uncertainty", (element,)
                )
            )
    plan.append(
        PlannedFile(target / f"{stem}_fit_quality.tif", "fit-quality", (FIT_QUALITY_LABEL,))
    )
    if statistics:
        plan.append(PlannedFile(target / f"{stem}_statistics.csv", "statistics"))
    if preview:
        plan.append(PlannedFile(target / f"{stem}_preview.png", "preview"))
    return plan


def _write_planned(
    item: PlannedFile,
    path: Path,
    result: QuantResult,
    pixel_size_um: float | None,
    extra: dict[str, Any],
    statistics: Sequence[RegionStatistics],
    title: str,
) -> None:
    from napari_xrfquant.io.maps import write_element_maps

    if item.kind == "statistics":
        write_statistics_csv(path, statistics)
        return
    if item.kind == "preview":
        from napari_xrfquant.results.preview import write_preview

        write_preview(path, result, title)
        return
    if item.kind == "fit-quality":
        values, unit = np.asarray(result.fit_quality)[None], FIT_QUALITY_UNIT
    else:
        source = result.concentrations if item.kind == "concentration" else result.uncertainty
        index = [result.elements.index(name) for name in item.names]
        values, unit = np.moveaxis(np.asarray(source)[..., index], -1, 0), result.unit
    write_element_maps(
        path,
        values,
        list(item.names),
        unit=unit,
        pixel_size_um=pixel_size_um,
        layout="stack",
        kind=item.kind,
        extra=extra,
    )


def export_result(
    folder: str | os.PathLike[str],
    result: QuantResult,
    stem: str,
    *,
    layout: str = "stack",
    pixel_size_um: float | None = None,
    statistics: Sequence[RegionStatistics] = (),
    source: str = "",
    preview: bool = False,
    overwrite: bool | ConfirmOverwrite = False,
) -> list[Path]:
    """Write a quantification's maps, uncertainty, fit quality, statistics (and preview).

    Parameters
    ----------
    folder
        Destination folder (created if missing).
    result
        The quantification of an image: maps ``(H, W, E)``.
    stem
        Start of every file name (made safe with :func:`safe_stem`).
    layout
        ``"stack"`` (one TIFF per kind) or ``"per-element"``.
    pixel_size_um
        Pixel size stored in the TIFFs (resolution and description); None: unknown.
    statistics
        Rows of the statistics CSV (no CSV when empty).
    source
        Name of the cube, stored in the TIFF descriptions.
    preview
        Also write a PNG with one panel per map.
    overwrite
        True replaces existing files, False refuses (``FileExistsError``), a
        callable is asked with the existing files and replaces them if it says so.

    Returns
    -------
    list of Path
        The files written; ``[]`` when a confirmation callable declined.

    Raises
    ------
    XRFQuantError
        For maps that are not an image, or an unknown layout.
    FileExistsError
        When files exist and ``overwrite`` is False.
    """
    if np.asarray(result.concentrations).ndim != 3:
        raise XRFQuantError(
            f"an export needs image maps (rows, cols, elements), got shape "
            f"{np.shape(result.concentrations)}"
        )
    stem = safe_stem(stem)
    plan = export_plan(folder, stem, result.elements, layout, bool(statistics), preview,
                       result.unit_slug)
    existing = [item.path for item in plan if item.path.exists()]
    if existing:
        allowed = overwrite(existing) if callable(overwrite) else bool(overwrite)
        if not allowed:
            if callable(overwrite):
                return []
            raise FileExistsError(
                f"{existing[0]}: exists; choose another folder or allow overwriting"
            )
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    extra = {
        "model_id": result.model_id,
        "source": source,
        "mask_below_counts": float(result.mask_below_counts),
        "calibration_sigma_percent": float(result.calibration_sigma_percent),
    }
    staging = Path(tempfile.mkdtemp(prefix=".xrfquant-export-", dir=target))
    try:
        staged = []
        for item in plan:
            path = staging / item.path.name
            _write_planned(item, path, result, pixel_size_um, extra, statistics, source or stem)
            staged.append(path)
        for path, item in zip(staged, plan, strict=True):
            os.replace(path, item.path)
        return [item.path for item in plan]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
