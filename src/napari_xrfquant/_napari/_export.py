"""Export a quantification (maps, 1-sigma, fit quality, region statistics) to a folder.

All files are first written into a hidden staging folder inside the target
folder, then moved into place one rename each, so a failure part-way leaves no
half-written or partial set behind, and an existing file is replaced only after
``confirm_overwrite`` agreed.

Pixels masked as background (total counts below the Quantify widget's
threshold) are NaN in the concentration and uncertainty TIFFs (float32 NaN,
which Fiji leaves out of its measurements); the fit-quality TIFF keeps every
pixel, and the CSV statistics are over the unmasked pixels. The threshold is stored
in each TIFF's description (``extra["mask_below_counts"]``, 0 = no mask).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._napari._layers import (
    KIND_CONCENTRATION,
    KIND_FIT_QUALITY,
    KIND_UNCERTAINTY,
    layer_kind,
    result_layers,
)
from napari_xrfquant._napari._regions import RegionStatistics, write_statistics_csv

LAYOUTS = ("stack", "per-element")

#: Asked with the paths that already exist; True means replace them.
ConfirmOverwrite = Callable[[list[Path]], bool]


@dataclass
class QuantExport:
    """Everything one export writes, taken from the result layers of one cube.

    Attributes
    ----------
    stem
        File-name stem (the cube layer's name, made safe for file systems).
    elements
        Element symbols of ``maps``.
    maps
        Concentrations ``(E, H, W)`` in wt%.
    sigma
        1-sigma ``(E, H, W)`` in wt%, or None.
    fit_quality
        ``(H, W)``, or None.
    pixel_size_um
        Pixel size written into the TIFF resolution tags, or None.
    statistics
        Region statistics for the CSV (may be empty).
    extra
        Facts stored in each TIFF's description: ``model_id``, ``source_layer``
        and ``mask_below_counts`` (background threshold in counts, 0 = none).
    """

    stem: str
    elements: list[str]
    maps: np.ndarray
    sigma: np.ndarray | None = None
    fit_quality: np.ndarray | None = None
    pixel_size_um: float | None = None
    statistics: list[RegionStatistics] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def safe_stem(name: str) -> str:
    """A file-name stem from a layer name: letters, digits, ``-`` and ``_`` only."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return stem or "xrfquant"


def collect_export(
    layers: Iterable[Any], source_layer: str, statistics: Sequence[RegionStatistics] = ()
) -> QuantExport | None:
    """The export of the results of cube layer ``source_layer``, or None if there are none.

    Concentration maps keep the order of the layer list; sigma maps are taken
    for exactly those elements, or left out if any is missing.
    """
    found = result_layers(layers, source_layer)
    concentration = [lyr for lyr in found if layer_kind(lyr) == KIND_CONCENTRATION]
    if not concentration:
        return None
    elements = [str(lyr.metadata["element"]) for lyr in concentration]
    maps = np.stack([np.asarray(lyr.data, dtype=np.float32) for lyr in concentration])
    by_element = {
        lyr.metadata.get("element"): lyr for lyr in found if layer_kind(lyr) == KIND_UNCERTAINTY
    }
    sigma = None
    if all(element in by_element for element in elements):
        sigma = np.stack([np.asarray(by_element[e].data, dtype=np.float32) for e in elements])
    fit_layers = [lyr for lyr in found if layer_kind(lyr) == KIND_FIT_QUALITY]
    fit_quality = np.asarray(fit_layers[0].data, dtype=np.float32) if fit_layers else None
    first = concentration[0].metadata
    pixel_size = first.get("pixel_size_um")
    extra = {
        "model_id": str(first.get("model_id") or ""),
        "source_layer": source_layer,
        "mask_below_counts": float(first.get("mask_below_counts") or 0.0),
    }
    return QuantExport(
        stem=safe_stem(source_layer),
        elements=elements,
        maps=maps,
        sigma=sigma,
        fit_quality=fit_quality,
        pixel_size_um=None if pixel_size is None else float(pixel_size),
        statistics=list(statistics),
        extra=extra,
    )


def _write_stack(
    path: Path,
    maps: np.ndarray,
    names: Sequence[str],
    unit: str,
    pixel_size_um: float | None,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    from napari_xrfquant.io import write_element_maps

    written = write_element_maps(
        path,
        maps,
        list(names),
        unit=unit,
        pixel_size_um=pixel_size_um,
        layout="stack",
        overwrite=False,
        extra=extra or None,
    )
    return [Path(p) for p in written]


def _stage(export: QuantExport, staging: Path, layout: str) -> list[Path]:
    """Write every file of ``export`` into ``staging``; return their paths."""
    stem, px, extra = export.stem, export.pixel_size_um, export.extra
    files: list[Path] = []
    if layout == "stack":
        files += _write_stack(staging / f"{stem}_wt_percent.tif", export.maps, export.elements,
                              "wt%", px, extra)
        if export.sigma is not None:
            files += _write_stack(staging / f"{stem}_sigma_wt_percent.tif", export.sigma,
                                  export.elements, "wt%", px, extra)
    else:
        for index, element in enumerate(export.elements):
            files += _write_stack(staging / f"{stem}_{element}_wt_percent.tif",
                                  export.maps[index : index + 1], [element], "wt%", px, extra)
            if export.sigma is not None:
                files += _write_stack(staging / f"{stem}_{element}_sigma_wt_percent.tif",
                                      export.sigma[index : index + 1], [element], "wt%", px,
                                      extra)
    if export.fit_quality is not None:
        files += _write_stack(staging / f"{stem}_fit_quality.tif", export.fit_quality[None],
                              ["fit quality"], "1", px, extra)
    if export.statistics:
        files.append(write_statistics_csv(staging / f"{stem}_regions.csv", export.statistics))
    return files


def export_results(
    folder: str | os.PathLike[str],
    export: QuantExport,
    layout: str = "stack",
    confirm_overwrite: ConfirmOverwrite | None = None,
) -> list[Path]:
    """Write maps, 1-sigma, fit quality (TIFF) and region statistics (CSV) into ``folder``.

    Parameters
    ----------
    folder
        Destination folder (created if missing).
    export
        What to write (see :func:`collect_export`).
    layout
        ``"stack"``: one multi-page TIFF for all element maps (and one for their
        sigma); ``"per-element"``: one TIFF per element.
    confirm_overwrite
        Called with the files that already exist; they are replaced only if it
        returns True. None refuses to replace anything.

    Returns
    -------
    list of Path
        The files written, or ``[]`` if overwriting was declined.

    Raises
    ------
    ValueError
        For an unknown layout.
    FileExistsError
        If files exist and ``confirm_overwrite`` is None.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown export layout {layout!r} (use {' or '.join(LAYOUTS)})")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".xrfquant-export-", dir=target))
    try:
        staged = _stage(export, staging, layout)
        finals = [target / path.relative_to(staging) for path in staged]
        existing = [path for path in finals if path.exists()]
        if existing:
            if confirm_overwrite is None:
                raise FileExistsError(
                    f"{existing[0]}: exists; choose another folder or allow overwriting"
                )
            if not confirm_overwrite(existing):
                return []
        for source, final in zip(staged, finals, strict=True):
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, final)
        return finals
    finally:
        shutil.rmtree(staging, ignore_errors=True)
