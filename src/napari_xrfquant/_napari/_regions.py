"""Regions of interest drawn in napari: Shapes and Labels layers -> core regions.

A region is a boolean mask on the pixel grid of a cube
(:class:`napari_xrfquant.results.Region`). Shapes and Labels layers may live on
any scale (a Labels layer made from the cube is even 3-D, with the energy axis
first), so their coordinates go through world space onto the cube's pixels;
rasterising and statistics are the core's (:mod:`napari_xrfquant.results.regions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._napari._layers import SpatialFrame
from napari_xrfquant.results import Region, label_regions, polygon_regions

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from napari.layers import Labels, Layer, Shapes

#: Vertices of the polygon that stands for an ellipse.
ELLIPSE_VERTICES = 72


def _world_to_target(coords_yx: np.ndarray, source: SpatialFrame, target: SpatialFrame) -> Any:
    """Map data coordinates of the source frame onto pixel coordinates of the target."""
    world = coords_yx * np.asarray(source.scale) + np.asarray(source.translate)
    return (world - np.asarray(target.translate)) / np.asarray(target.scale)


def labels_regions(layer: Labels, target: SpatialFrame, shape_hw: tuple[int, int]) -> list[Region]:
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
    index = np.round(_world_to_target(centres, target, SpatialFrame.from_layer(layer)))
    index = index.astype(np.int64)
    inside = (
        (index[:, 0] >= 0)
        & (index[:, 0] < data.shape[0])
        & (index[:, 1] >= 0)
        & (index[:, 1] < data.shape[1])
    )
    sampled = np.zeros(centres.shape[0], dtype=np.int64)
    sampled[inside] = data[index[inside, 0], index[inside, 1]]
    names = list((getattr(layer, "metadata", None) or {}).get("region_names") or ())
    return label_regions(sampled.reshape(shape_hw), names, prefix=f"{layer.name} label")


def _ellipse(vertices: np.ndarray) -> np.ndarray:
    """The polygon of an ellipse given by napari's four bounding-box corners."""
    centre = vertices.mean(axis=0)
    half_a = (vertices[1] - vertices[0]) / 2.0
    half_b = (vertices[3] - vertices[0]) / 2.0
    t = np.linspace(0.0, 2.0 * np.pi, ELLIPSE_VERTICES, endpoint=False)[:, None]
    return centre + np.cos(t) * half_a + np.sin(t) * half_b


def shapes_regions(layer: Shapes, target: SpatialFrame, shape_hw: tuple[int, int]) -> list[Region]:
    """One region per closed shape (rectangle, polygon, ellipse) of a Shapes layer.

    Lines and paths enclose nothing and are left out. Shapes are named from a
    ``name`` or ``label`` feature when the layer has one, else ``"<layer> #<n>"``.
    """
    source = SpatialFrame.from_layer(layer)
    names = _shape_names(layer)
    polygons, kept = [], []
    for index, (vertices, kind) in enumerate(zip(layer.data, layer.shape_type, strict=True)):
        if kind not in ("rectangle", "polygon", "ellipse"):
            continue
        points = _world_to_target(np.asarray(vertices, dtype=np.float64)[:, -2:], source, target)
        polygons.append(_ellipse(points) if kind == "ellipse" else points)
        kept.append(names[index])
    return polygon_regions(polygons, shape_hw, kept)


def _shape_names(layer: Any) -> list[str]:
    count = len(layer.data)
    features = getattr(layer, "features", None)
    for column in ("name", "label", "region"):
        if features is not None and column in getattr(features, "columns", ()):
            values = [str(v) for v in features[column]]
            if len(values) == count and all(values):
                return values
    return [f"{layer.name} #{i + 1}" for i in range(count)]


def region_kind(layer: Layer) -> str | None:
    """``"Shapes"`` or ``"Labels"`` for a layer that can hold regions, else None.

    ``isinstance`` sees through the proxy napari hands docked widgets
    (``PublicOnlyProxy`` forwards ``__class__``), where ``type(layer).__name__``
    says "PublicOnlyProxy": every widget asks here, not by the type's name.
    """
    from napari.layers import Labels, Shapes

    if isinstance(layer, Labels):
        return "Labels"
    if isinstance(layer, Shapes):
        return "Shapes"
    return None


def region_layer_names(layers: Iterable[Layer]) -> list[str]:
    """Names of the Shapes and Labels layers among ``layers``, in order."""
    return [layer.name for layer in layers if region_kind(layer) is not None]


def regions_from_layer(layer: Layer, target: SpatialFrame,
                       shape_hw: tuple[int, int]) -> list[Region]:
    """Regions of a Shapes or Labels layer on the target grid; ``[]`` for other layers."""
    kind = region_kind(layer)
    if kind == "Labels":
        return labels_regions(layer, target, shape_hw)
    if kind == "Shapes":
        return shapes_regions(layer, target, shape_hw)
    return []


def chosen_regions(layer: Layer, regions: list[Region]) -> list[Region]:
    """Selected shapes (all if none), or the selected label's region (all if absent)."""
    kind = region_kind(layer)
    if kind == "Shapes":
        selected = sorted(getattr(layer, "selected_data", set()) or ())
        picked = [regions[i] for i in selected if i < len(regions)]
        return picked or regions
    if kind == "Labels":
        names = list(layer.metadata.get("region_names") or ())
        label = int(getattr(layer, "selected_label", 0))
        wanted = names[label] if label < len(names) else f"{layer.name} label {label}"
        picked = [r for r in regions if r.name == wanted]
        return picked or regions
    return regions
