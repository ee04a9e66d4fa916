"""Layer data for cubes and quantification results, and finding them again.

Everything here builds napari "layer data" tuples ``(data, kwargs, layer_type)``
or inspects existing layers through their ``metadata``; it needs no napari
import, so the reader, the sample data and the widgets share one definition of
what a cube layer and a concentration layer look like.

Layer ``metadata["kind"]`` tells the plugin's layers apart:

- ``"xrf_cube"``: the counts cube shown as ``(C, H, W)`` with the energy axis
  first, carrying ``energy_keV``, ``calibration_source``, ``source_path``,
  ``pixel_size_um`` and ``cube`` (the :class:`~napari_xrfquant.io.Cube`, for
  one-pixel reads);
- ``"total_counts"``: the counts summed over energy, ``(H, W)``;
- ``"truth_regions"``: labels of the known regions of a simulated cube (CXC
  ``/truth/regions``), hidden, with ``region_names`` (index = label);
- ``"concentration"``, ``"uncertainty"``, ``"fit_quality"``: maps from a
  quantification, with ``unit``, ``element``, ``model_id``, ``source_layer``
  (the name of the cube layer they were computed from) and
  ``mask_below_counts`` (the background threshold in counts, 0 = no mask:
  concentration and uncertainty are NaN where the cube's total counts are
  below it; fit quality keeps its values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.io.calibration import fit_linear_calibration

if TYPE_CHECKING:  # pragma: no cover
    import dask.array as da
    from napari.layers import Image, Layer

    from napari_xrfquant.io.cube import Cube

    #: Counts ``(H, W, C)``: in memory, or a lazy cube read block by block.
    Counts = np.ndarray | da.Array

KIND_CUBE = "xrf_cube"
KIND_TOTAL = "total_counts"
KIND_CONCENTRATION = "concentration"
KIND_UNCERTAINTY = "uncertainty"
KIND_FIT_QUALITY = "fit_quality"
KIND_TRUTH_REGIONS = "truth_regions"
RESULT_KINDS = (KIND_CONCENTRATION, KIND_UNCERTAINTY, KIND_FIT_QUALITY)

ENERGY_AXIS_LABEL = "energy (keV)"
FIT_QUALITY_NAME = "fit quality"

#: Colormaps chosen so the alloy's main elements mix legibly under additive
#: blending (Au + Ag + Cu = yellow + cyan + magenta -> white where all are high).
PREFERRED_COLORMAPS = {
    "Au": "yellow",
    "Ag": "cyan",
    "Cu": "magenta",
    "Ni": "green",
    "Zn": "blue",
    "Fe": "red",
    "Pb": "gray",
}
FALLBACK_COLORMAPS = (
    "red",
    "green",
    "blue",
    "bop orange",
    "bop purple",
    "bop blue",
    "cyan",
    "magenta",
    "yellow",
    "gray",
)

LayerData = tuple[Any, dict[str, Any], str]


# -- names -----------------------------------------------------------------
def truth_regions_layer_name(cube_name: str) -> str:
    """Layer name of the truth-region labels of the cube layer ``cube_name``."""
    return f"{cube_name} truth regions"


def total_counts_layer_name(cube_name: str) -> str:
    """Layer name of the total-counts image of the cube layer ``cube_name``."""
    return f"{cube_name} total counts"


def element_colormaps(elements: Sequence[str]) -> dict[str, str]:
    """A distinct napari colormap name for each element.

    Known alloy elements get a fixed colour so maps look the same from run to
    run; others take the first unused colour of a fallback cycle.
    """
    chosen: dict[str, str] = {}
    for element in elements:
        preferred = PREFERRED_COLORMAPS.get(element)
        if preferred is not None and preferred not in chosen.values():
            chosen[element] = preferred
    for element in elements:
        if element in chosen:
            continue
        unused = [c for c in FALLBACK_COLORMAPS if c not in chosen.values()]
        chosen[element] = unused[0] if unused else FALLBACK_COLORMAPS[len(chosen) % 10]
    return chosen


def robust_contrast_limits(
    values: np.ndarray, upper_percentile: float = 99.8, floor: float = 1e-6
) -> tuple[float, float]:
    """Contrast limits ``(0, high)`` from a high percentile, ignoring NaN.

    A few hot pixels (noise at low counts) would otherwise set the top of the
    scale; the lower limit stays at 0 so that 0 wt% is black.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    high = float(np.percentile(finite, upper_percentile))
    if high <= floor:
        high = float(finite.max())
    if high <= floor:
        high = 1.0
    return 0.0, high


# -- spatial frame ---------------------------------------------------------
@dataclass(frozen=True)
class SpatialFrame:
    """Scale, translation and units of the two image axes (row, column).

    Results and regions are placed in the world frame of the cube they come
    from, so maps line up with the cube whatever its pixel size.
    """

    scale: tuple[float, float] = (1.0, 1.0)
    translate: tuple[float, float] = (0.0, 0.0)
    units: tuple[str, str] = ("pixel", "pixel")

    @classmethod
    def from_pixel_size(cls, pixel_size_um: float | None) -> SpatialFrame:
        """A frame in micrometres when the pixel size is known, else in pixels."""
        if pixel_size_um is None or not math.isfinite(pixel_size_um) or pixel_size_um <= 0:
            return cls()
        size = float(pixel_size_um)
        return cls(scale=(size, size), units=("micrometer", "micrometer"))

    @classmethod
    def from_layer(cls, layer: Layer) -> SpatialFrame:
        """The frame of the last two axes of a napari layer."""
        scale = tuple(float(s) for s in layer.scale[-2:])
        translate = tuple(float(t) for t in layer.translate[-2:])
        units = tuple(str(u) for u in layer.units[-2:])
        return cls(scale=scale, translate=translate, units=units)  # type: ignore[arg-type]

    @property
    def pixel_size_um(self) -> float | None:
        """Pixel size in micrometres, if the frame is in a length unit."""
        if self.units[0] in ("micrometer", "µm", "um") and self.scale[0] == self.scale[1]:
            return self.scale[0]
        return None

    def layer_kwargs(self) -> dict[str, Any]:
        """``scale``, ``translate`` and ``units`` for a 2D layer in this frame."""
        return {"scale": self.scale, "translate": self.translate, "units": self.units}


def pixel_size_um_of(cube: Cube) -> float | None:
    """The cube's pixel size in micrometres, from its metadata, or None."""
    metadata = getattr(cube, "metadata", None) or {}
    for key in ("pixel_size_um", "pixel_size", "pixel_pitch_um"):
        value = metadata.get(key)
        if value is None:
            continue
        try:
            values = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            continue
        if values.size and np.all(np.isfinite(values)) and values[0] > 0:
            return float(values[0])
    return None


# -- cube layers -----------------------------------------------------------
def channel_first(data: Counts) -> Counts:
    """``(H, W, C)`` counts as a ``(C, H, W)`` view: no copy, lazy for dask."""
    return data.transpose(2, 0, 1)


def spectra_sample(data: Counts, max_pixels: int = 4096) -> np.ndarray:
    """At most ``max_pixels`` whole spectra ``(N, C)`` of a cube: a strided grid in
    memory, a central block of a lazy cube (a grid would touch every chunk of
    its file; one block costs a chunk or two and is typical)."""
    height, width = int(data.shape[0]), int(data.shape[1])
    if not isinstance(data, np.ndarray):
        side = max(1, int(math.sqrt(max_pixels)))
        r0, c0 = max(0, (height - side) // 2), max(0, (width - side) // 2)
        sample = np.asarray(data[r0 : r0 + side, c0 : c0 + side, :], dtype=np.float64)
    else:
        step = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
        sample = np.asarray(data[::step, ::step, :], dtype=np.float64)
    return sample.reshape(-1, int(data.shape[-1]))


def cube_contrast_limits(sample: np.ndarray) -> tuple[float, float]:
    """Contrast limits for energy slices from a sample of whole spectra (:func:`spectra_sample`)."""
    if sample.size == 0:
        return 0.0, 1.0
    high = float(np.quantile(sample, 0.999))
    return 0.0, max(high, 1.0)


def brightest_channel(sample: np.ndarray) -> int:
    """The channel where a sample of spectra holds most counts: the slice the energy
    slider starts at, so that a cube opens showing its strongest line, not a channel
    in the middle of its range."""
    return int(np.argmax(np.nan_to_num(sample).sum(axis=0))) if sample.size else 0


def cube_layer_data(cube: Cube, name: str) -> list[LayerData]:
    """The cube as an energy-sliced image layer plus a total-counts image.

    Parameters
    ----------
    cube
        A :class:`napari_xrfquant.io.Cube` (counts ``(H, W, C)``, ``energy_keV``).
    name
        Name of the cube layer; the total-counts layer is named after it.

    Returns
    -------
    list of LayerData
        ``[(cube (C, H, W) view, kwargs, "image"), (total counts (H, W), kwargs, "image")]``,
        plus a hidden truth-regions Labels layer when the cube is simulated and
        its file stores the regions.
    """
    energy_keV = np.asarray(cube.energy_keV, dtype=np.float64)
    # napari places slices on a linear world axis; the exact per-channel energy
    # stays in the layer metadata for the read-out and the plots
    offset_keV, gain_keV = fit_linear_calibration(energy_keV)
    pixel_size_um = pixel_size_um_of(cube)
    frame = SpatialFrame.from_pixel_size(pixel_size_um)
    source_path = str(cube.path) if getattr(cube, "path", None) is not None else None
    shared = {
        "energy_keV": energy_keV,
        "calibration_source": getattr(cube, "calibration_source", "unknown"),
        "source_path": source_path,
        "pixel_size_um": pixel_size_um,
        "cube": cube,
        "source_layer": name,
    }
    sample = spectra_sample(cube.data)
    cube_kwargs = {
        "name": name,
        "scale": (gain_keV, *frame.scale),
        "translate": (offset_keV, *frame.translate),
        "units": ("keV", *frame.units),
        "axis_labels": (ENERGY_AXIS_LABEL, "y", "x"),
        "colormap": "inferno",
        "contrast_limits": cube_contrast_limits(sample),
        "metadata": {"kind": KIND_CUBE, "start_channel": brightest_channel(sample), **shared},
    }
    total = np.asarray(cube.total_counts(), dtype=np.float64)
    total_kwargs = {
        "name": total_counts_layer_name(name),
        **frame.layer_kwargs(),
        "axis_labels": ("y", "x"),
        "colormap": "gray",
        "contrast_limits": _total_counts_limits(total),
        "visible": False,  # the cube's slices show until Quantify (the masks read it hidden)
        "metadata": {"kind": KIND_TOTAL, "unit": "counts", **shared},
    }
    layers: list[LayerData] = [
        (channel_first(cube.data), cube_kwargs, "image"),
        (total, total_kwargs, "image"),
    ]
    truth = (getattr(cube, "metadata", None) or {}).get("truth")
    regions = getattr(truth, "regions", None)
    if truth is not None and regions is not None:
        layers.append(truth_regions_layer_data(regions, truth.region_names, name, frame))
    return layers


def truth_regions_layer_data(
    regions: np.ndarray, region_names: Sequence[str], source_layer: str, frame: SpatialFrame
) -> LayerData:
    """A hidden Labels layer of a simulated cube's known regions (one label each).

    The quantify widget offers it as a region layer, so its table shows the
    mean wt% of each reference material next to the known composition.
    """
    kwargs = {
        "name": truth_regions_layer_name(source_layer),
        **frame.layer_kwargs(),
        "axis_labels": ("y", "x"),
        "opacity": 0.35,
        "visible": False,
        "metadata": {
            "kind": KIND_TRUTH_REGIONS,
            "region_names": [str(n) for n in region_names],
            "source_layer": source_layer,
        },
    }
    return (np.asarray(regions).astype(np.int32, copy=False), kwargs, "labels")


def _total_counts_limits(total: np.ndarray) -> tuple[float, float]:
    finite = total[np.isfinite(total)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, (0.5, 99.5)))
    return (low, high) if high > low else (low, low + 1.0)


# -- result layers ---------------------------------------------------------
# -- finding layers again --------------------------------------------------
def layer_kind(layer: Layer) -> str | None:
    """The plugin kind of a layer (``metadata["kind"]``), or None."""
    metadata = getattr(layer, "metadata", None)
    if isinstance(metadata, Mapping):
        kind = metadata.get("kind")
        return str(kind) if kind is not None else None
    return None


def is_cube_layer(layer: Layer) -> bool:
    """True for an image layer holding a spectral cube with an energy axis."""
    metadata = getattr(layer, "metadata", None)
    return (
        layer_kind(layer) == KIND_CUBE
        and isinstance(metadata, Mapping)
        and metadata.get("energy_keV") is not None
    )


def cube_counts(layer: Layer) -> tuple[Counts, np.ndarray]:
    """Channel-last counts ``(H, W, C)`` (numpy or dask) and channel energies of a cube layer."""
    cube = layer.metadata.get("cube")
    data = cube.data if cube is not None else np.moveaxis(layer.data, 0, -1)
    return data, np.asarray(layer.metadata["energy_keV"], dtype=np.float64)


def cube_metadata(layer: Layer) -> dict[str, Any]:
    """What the cube layer's reader found in its file (detector elements, maps, ...)."""
    cube = layer.metadata.get("cube")
    return dict(getattr(cube, "metadata", {}) or {})


def file_maps(layer: Layer) -> dict[str, np.ndarray]:
    """The per-pixel maps (live time, scalers, I0) the cube layer's file holds."""
    return dict(cube_metadata(layer).get("maps") or {})


def cube_layers(layers: Iterable[Layer]) -> list[Image]:
    """The cube layers among ``layers``, in order."""
    return [layer for layer in layers if is_cube_layer(layer)]


def result_layers(
    layers: Iterable[Layer],
    source_layer: str,
    kinds: Sequence[str] = RESULT_KINDS,
    model_id: str | None = None,
) -> list[Image]:
    """Result layers of one model computed from the cube layer named ``source_layer``.

    Several models may have quantified the same cube, side by side. ``model_id``
    None means the current one: the model of the active layer when it is one of
    this cube's results, else of the top-most of them (the latest run).
    """
    found = [
        layer
        for layer in layers
        if layer_kind(layer) in RESULT_KINDS and layer.metadata.get("source_layer") == source_layer
    ]
    if model_id is None:
        model_id = current_model_id(layers, found)
    return [
        layer for layer in found
        if layer_kind(layer) in kinds and layer.metadata.get("model_id", "") == model_id
    ]


def current_model_id(layers: Iterable[Layer], found: Sequence[Layer]) -> str | None:
    """The model of the active result layer among ``found``, else of the top-most one."""
    if not found:
        return None
    active = getattr(getattr(layers, "selection", None), "active", None)
    # by name: through napari's proxy viewer the active layer is another object
    if active is not None and any(active.name == layer.name for layer in found):
        return str(active.metadata.get("model_id", ""))
    return str(found[-1].metadata.get("model_id", ""))


def result_key(layer: Layer) -> tuple[str, str | None]:
    """What a result layer shows: ``(kind, element)``; equal keys replace each other."""
    return (str(layer_kind(layer)), layer.metadata.get("element"))


def layer_data_key(layer_data: LayerData) -> tuple[str, str | None]:
    """:func:`result_key` for a layer-data tuple that is not a layer yet."""
    metadata = layer_data[1]["metadata"]
    return (str(metadata["kind"]), metadata.get("element"))
