"""Regions of interest on a map and the statistics of each element over them.

A region is a boolean mask on the pixel grid of the maps. It comes from a
label image (every non-zero label one region) or from polygons in pixel
coordinates ``(row, col)`` (rasterised with :func:`skimage.draw.polygon2mask`),
so scripts, the CLI and the napari widgets share one definition. Statistics are
NaN-aware: masked or empty pixels are left out and counted in neither ``n``
nor the moments.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import XRFQuantError

WHOLE_MAP = "whole map"

#: Degrees of freedom subtracted in the standard deviation: the sample sd.
SD_DDOF = 1


@dataclass(frozen=True)
class Region:
    """A named set of pixels: ``mask`` is boolean ``(H, W)``."""

    name: str
    mask: np.ndarray

    @property
    def n_pixels(self) -> int:
        """Number of pixels in the region."""
        return int(np.count_nonzero(self.mask))


def whole_map(shape_hw: tuple[int, int]) -> Region:
    """The region covering every pixel."""
    return Region(WHOLE_MAP, np.ones(shape_hw, dtype=bool))


def label_regions(
    labels: np.ndarray, names: Sequence[str] = (), prefix: str = "label"
) -> list[Region]:
    """One region per non-zero label of a label image ``(H, W)``.

    Parameters
    ----------
    labels
        Integer labels; 0 is no region.
    names
        Region names by label value (``names[3]`` names label 3); missing or
        empty entries give ``"<prefix> <n>"``.
    prefix
        Start of the fallback names.
    """
    data = np.asarray(labels)
    if data.ndim != 2:
        raise XRFQuantError(f"a label image must be 2-D (rows, cols), got shape {data.shape}")
    if data.dtype.kind not in "biu":
        raise XRFQuantError(f"labels must be integers, got {data.dtype}")
    regions = []
    for value in np.unique(data):
        if value == 0:
            continue
        index = int(value)
        known = 0 <= index < len(names) and names[index]
        regions.append(Region(str(names[index]) if known else f"{prefix} {index}", data == value))
    return regions


def polygon_regions(
    polygons: Iterable[Any], shape_hw: tuple[int, int], names: Sequence[str] | None = None
) -> list[Region]:
    """One region per polygon, vertices ``(K, 2)`` in pixel coordinates ``(row, col)``.

    A pixel belongs to a polygon when its centre lies inside
    (:func:`skimage.draw.polygon2mask`).
    """
    from skimage.draw import polygon2mask

    regions = []
    for index, vertices in enumerate(polygons):
        points = np.asarray(vertices, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise XRFQuantError(
                f"polygon {index + 1} needs at least 3 (row, col) vertices, "
                f"got shape {points.shape}"
            )
        name = names[index] if names is not None and index < len(names) else f"shape {index + 1}"
        regions.append(Region(str(name), polygon2mask(shape_hw, points)))
    return regions


@dataclass(frozen=True)
class RegionStatistics:
    """One element's wt% over one region (NaN-aware).

    Attributes
    ----------
    source
        The cube (file or layer name) the maps come from.
    region, element
        Names.
    n_pixels
        Pixels with a finite value (masked pixels and pixels without counts are left out).
    mean_wt_percent, sd_wt_percent, median_wt_percent
        Mean, standard deviation (ddof = :data:`SD_DDOF`) and median over those pixels.
    mean_sigma_wt_percent
        Mean of the per-pixel 1-sigma over them; NaN if unknown.
    calibration_sigma_percent
        Relative 1-sigma (%) every value shares beside its own: the scale a
        standard set (a thin film's); 0 where none did. The sigma of the
        region's mean is at least ``mean * calibration_sigma_percent / 100``.
    median_fit_quality
        Median fit quality over the region's pixels; NaN if unknown.
    model_id
        The model that made the maps.
    unit_slug
        The maps' unit: the ``*_wt_percent`` values are in it (``"ug_per_cm2"``
        for a thin sample), and the CSV names its columns after it.
    """

    source: str
    region: str
    element: str
    n_pixels: int
    mean_wt_percent: float
    sd_wt_percent: float
    median_wt_percent: float
    mean_sigma_wt_percent: float = math.nan
    calibration_sigma_percent: float = 0.0
    median_fit_quality: float = math.nan
    model_id: str = ""
    unit_slug: str = "wt_percent"


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def region_statistics(
    result: Any, regions: Sequence[Region], source: str = ""
) -> list[RegionStatistics]:
    """Mean, sd, median and n of each element over each region.

    Parameters
    ----------
    result
        A :class:`~napari_xrfquant.results.QuantResult` of an image: maps
        ``(H, W, E)`` (its uncertainty and fit quality are used when present).
    regions
        Masks ``(H, W)``.
    source
        Name of the cube, written into every row.

    Returns
    -------
    list of RegionStatistics
        Region-major order: all elements of the first region, then the next.
    """
    maps = np.asarray(result.concentrations)
    if maps.ndim != 3 or maps.shape[-1] != len(result.elements):
        raise XRFQuantError(
            f"maps of shape {maps.shape} do not hold {len(result.elements)} element images"
        )
    sigma = getattr(result, "uncertainty", None)
    fit = getattr(result, "fit_quality", None)
    stats = []
    for region in regions:
        mask = np.asarray(region.mask, dtype=bool)
        if mask.shape != maps.shape[:2]:
            raise XRFQuantError(
                f"region {region.name!r} has shape {mask.shape}, the maps {maps.shape[:2]}"
            )
        fit_values = _finite(np.asarray(fit)[mask]) if fit is not None else np.zeros(0)
        fit_median = float(np.median(fit_values)) if fit_values.size else math.nan
        for index, element in enumerate(result.elements):
            values = _finite(maps[..., index][mask])
            n = int(values.size)
            mean_sigma = math.nan
            if sigma is not None:
                sig = _finite(np.asarray(sigma)[..., index][mask])
                mean_sigma = float(sig.mean()) if sig.size else math.nan
            stats.append(
                RegionStatistics(
                    source=source,
                    region=region.name,
                    element=str(element),
                    n_pixels=n,
                    mean_wt_percent=float(values.mean()) if n else math.nan,
                    sd_wt_percent=float(values.std(ddof=SD_DDOF)) if n > SD_DDOF else math.nan,
                    median_wt_percent=float(np.median(values)) if n else math.nan,
                    mean_sigma_wt_percent=mean_sigma,
                    calibration_sigma_percent=float(
                        getattr(result, "calibration_sigma_percent", 0.0) or 0.0),
                    median_fit_quality=fit_median,
                    model_id=str(getattr(result, "model_id", "")),
                    unit_slug=str(getattr(result, "unit_slug", "wt_percent")),
                )
            )
    return stats


@dataclass(frozen=True)
class RegionHistogram:
    """How one element's wt% is distributed over one region's pixels.

    Attributes
    ----------
    region, element
        Names.
    edges
        Bin edges in wt% ``(bins + 1,)``, the same for every region of one call.
    counts
        Pixels per bin ``(bins,)`` (finite values only).
    """

    region: str
    element: str
    edges: np.ndarray
    counts: np.ndarray


def region_histograms(
    result: Any, regions: Sequence[Region], element: str, bins: int = 40
) -> list[RegionHistogram]:
    """Histograms of ``element``'s wt% in each region, on shared bin edges.

    The edges span the finite values of all the regions together, so the
    regions' histograms can be compared bin by bin.

    Raises
    ------
    XRFQuantError
        For an element the result does not hold, or a region of another shape.
    """
    elements = [str(e) for e in result.elements]
    if element not in elements:
        raise XRFQuantError(f"no {element} map: the result holds {', '.join(elements)}")
    plane = np.asarray(result.concentrations)[..., elements.index(element)]
    values = []
    for region in regions:
        mask = np.asarray(region.mask, dtype=bool)
        if mask.shape != plane.shape:
            raise XRFQuantError(
                f"region {region.name!r} has shape {mask.shape}, the maps {plane.shape}")
        values.append(_finite(plane[mask]))
    pooled = np.concatenate(values) if values else np.zeros(0)
    low, high = (float(pooled.min()), float(pooled.max())) if pooled.size else (0.0, 1.0)
    if high <= low:  # one value everywhere: a bin around it
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, int(bins) + 1)
    return [RegionHistogram(region.name, element, edges, np.histogram(v, bins=edges)[0])
            for region, v in zip(regions, values, strict=True)]


CSV_COLUMNS = (
    "source",
    "region",
    "element",
    "n_pixels",
    "mean_wt_percent",
    "sd_wt_percent",
    "median_wt_percent",
    "mean_sigma_wt_percent",
    "calibration_sigma_percent",
    "median_fit_quality",
    "model_id",
)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return value


def write_statistics_csv(
    path: str | os.PathLike[str], stats: Sequence[RegionStatistics], overwrite: bool = False
) -> Path:
    """Write statistics as CSV (one row per region and element, :data:`CSV_COLUMNS`).

    Written atomically; NaN is an empty cell. The value columns are named after
    the rows' unit (``mean_ug_per_cm2`` for a thin sample).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            slug = stats[0].unit_slug if stats else "wt_percent"
            writer.writerow([column.replace("wt_percent", slug) for column in CSV_COLUMNS])
            for row in stats:
                writer.writerow([_fmt(getattr(row, column)) for column in CSV_COLUMNS])
    return target
