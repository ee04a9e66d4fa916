"""Regions of interest from Shapes and Labels layers, and statistics over them.

A region is a boolean mask on the pixel grid of a cube. Shapes and Labels
layers may live on any scale (a Labels layer made from the cube is even 3D,
with the energy axis first), so masks are built through world coordinates of
the two image axes: every shape becomes one region, every label value of a
Labels layer one region.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant._napari._layers import SpatialFrame

WHOLE_MAP = "whole map"


@dataclass(frozen=True)
class Region:
    """A named set of pixels: ``mask`` is boolean ``(H, W)``."""

    name: str
    mask: np.ndarray

    @property
    def n_pixels(self) -> int:
        """Number of pixels in the region."""
        return int(np.count_nonzero(self.mask))


@dataclass(frozen=True)
class RegionStatistics:
    """Mean and spread of one element's wt% over one region.

    Attributes
    ----------
    region, element
        Names.
    n_pixels
        Pixels with a finite value (pixels without counts give NaN and are left out).
    mean_wt_percent, sd_wt_percent
        Mean and standard deviation (ddof=1) of the map over the region.
    mean_sigma_wt_percent
        Mean of the per-pixel 1-sigma over the region, NaN if unknown.
    """

    region: str
    element: str
    n_pixels: int
    mean_wt_percent: float
    sd_wt_percent: float
    mean_sigma_wt_percent: float = math.nan


def whole_map(shape_hw: tuple[int, int]) -> Region:
    """The region covering every pixel."""
    return Region(WHOLE_MAP, np.ones(shape_hw, dtype=bool))


# -- masks from layers ---------------------------------------------------
def _layer_frame(layer: Any) -> SpatialFrame:
    return SpatialFrame.from_layer(layer)


def _world_to_target(coords_yx: np.ndarray, source: SpatialFrame, target: SpatialFrame):
    """Map data coordinates of the source frame onto pixel coordinates of the target."""
    world = coords_yx * np.asarray(source.scale) + np.asarray(source.translate)
    return (world - np.asarray(target.translate)) / np.asarray(target.scale)


def labels_regions(layer: Any, target: SpatialFrame, shape_hw: tuple[int, int]) -> list[Region]:
    """One region per non-zero label of a Labels layer, on the target pixel grid.

    Regions are named from ``layer.metadata["region_names"]`` (index = label)
    when present, else ``"<layer> label <n>"``. A Labels layer with more than
    two axes (e.g. made from the cube, so with an energy axis) is projected: a
    pixel belongs to the largest label painted on it in any slice.
    """
    data = np.asarray(layer.data)
    if data.ndim > 2:
        data = data.reshape((-1, *data.shape[-2:])).max(axis=0)
    rows, cols = np.indices(shape_hw, dtype=np.float64)
    centres = np.stack([rows.ravel(), cols.ravel()], axis=1)
    # target pixel centres -> world -> nearest pixel of the labels layer
    label_idx = np.round(_world_to_target(centres, target, _layer_frame(layer)))
    label_idx = label_idx.astype(np.int64)
    inside = (
        (label_idx[:, 0] >= 0)
        & (label_idx[:, 0] < data.shape[0])
        & (label_idx[:, 1] >= 0)
        & (label_idx[:, 1] < data.shape[1])
    )
    sampled = np.zeros(centres.shape[0], dtype=data.dtype)
    sampled[inside] = data[label_idx[inside, 0], label_idx[inside, 1]]
    sampled = sampled.reshape(shape_hw)
    names = list((getattr(layer, "metadata", None) or {}).get("region_names") or ())
    regions = []
    for value in np.unique(sampled):
        if value == 0:
            continue
        index = int(value)
        known = index < len(names) and names[index]
        name = names[index] if known else f"{layer.name} label {index}"
        regions.append(Region(str(name), sampled == value))
    return regions


def shapes_regions(layer: Any, target: SpatialFrame, shape_hw: tuple[int, int]) -> list[Region]:
    """One region per shape of a Shapes layer, rasterised on the target pixel grid.

    Shapes are named from a ``name`` or ``label`` feature when the layer has one,
    else ``"<layer> #<n>"``.
    """
    from napari.layers import Shapes

    if len(layer.data) == 0:
        return []
    source = _layer_frame(layer)
    moved = [
        _world_to_target(np.asarray(vertices, dtype=np.float64)[:, -2:], source, target)
        for vertices in layer.data
    ]
    flat = Shapes(moved, shape_type=list(layer.shape_type))
    masks = np.asarray(flat.to_masks(mask_shape=shape_hw), dtype=bool)
    names = _shape_names(layer)
    return [Region(names[i], masks[i]) for i in range(masks.shape[0])]


def _shape_names(layer: Any) -> list[str]:
    count = len(layer.data)
    features = getattr(layer, "features", None)
    for column in ("name", "label", "region"):
        if features is not None and column in getattr(features, "columns", ()):
            values = [str(v) for v in features[column]]
            if len(values) == count and all(values):
                return values
    return [f"{layer.name} #{i + 1}" for i in range(count)]


def regions_from_layer(layer: Any, target: SpatialFrame, shape_hw: tuple[int, int]) -> list[Region]:
    """Regions of a Shapes or Labels layer on the target grid; ``[]`` for other layers."""
    kind = type(layer).__name__
    if kind == "Labels":
        return labels_regions(layer, target, shape_hw)
    if kind == "Shapes":
        return shapes_regions(layer, target, shape_hw)
    return []


# -- statistics ------------------------------------------------------------
def region_statistics(
    maps: np.ndarray,
    elements: Sequence[str],
    regions: Sequence[Region],
    sigma_maps: np.ndarray | None = None,
) -> list[RegionStatistics]:
    """Mean ± standard deviation of each element over each region.

    Parameters
    ----------
    maps
        Concentrations ``(E, H, W)`` in wt%.
    elements
        Names of the ``E`` maps.
    regions
        Masks ``(H, W)``.
    sigma_maps
        Optional 1-sigma maps ``(E, H, W)`` in wt%.

    Returns
    -------
    list of RegionStatistics
        Region-major order: all elements of the first region, then the next.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or maps.shape[0] != len(elements):
        raise ValueError(f"maps of shape {maps.shape} do not hold {len(elements)} element maps")
    stats = []
    for region in regions:
        mask = np.asarray(region.mask, dtype=bool)
        if mask.shape != maps.shape[1:]:
            raise ValueError(
                f"region {region.name!r} has shape {mask.shape}, maps have {maps.shape[1:]}"
            )
        for index, element in enumerate(elements):
            values = maps[index][mask]
            values = values[np.isfinite(values)]
            n = int(values.size)
            mean = float(values.mean()) if n else math.nan
            sd = float(values.std(ddof=1)) if n > 1 else math.nan
            mean_sigma = math.nan
            if sigma_maps is not None:
                sig = np.asarray(sigma_maps[index], dtype=np.float64)[mask]
                sig = sig[np.isfinite(sig)]
                mean_sigma = float(sig.mean()) if sig.size else math.nan
            stats.append(RegionStatistics(region.name, str(element), n, mean, sd, mean_sigma))
    return stats


CSV_COLUMNS = (
    "region",
    "element",
    "n_pixels",
    "mean_wt_percent",
    "sd_wt_percent",
    "mean_sigma_wt_percent",
)


def write_statistics_csv(
    path: str | os.PathLike[str],
    stats: Sequence[RegionStatistics],
    overwrite: bool = False,
) -> Path:
    """Write region statistics as CSV (one row per region and element), atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for s in stats:
                writer.writerow(
                    [
                        s.region,
                        s.element,
                        s.n_pixels,
                        _fmt(s.mean_wt_percent),
                        _fmt(s.sd_wt_percent),
                        _fmt(s.mean_sigma_wt_percent),
                    ]
                )
    return target


def _fmt(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}"
