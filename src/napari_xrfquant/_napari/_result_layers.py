"""Result layers: a quantification as napari image layers, one per element and map kind.

:func:`result_layer_data` turns a :class:`~napari_xrfquant.results.QuantResult`
into layer data for the Quantify dock and the Live switch, and
:func:`maps_layer_data` the map TIFFs written from one back into the same layers: names carry the
element and the model, the first view shows one map (:func:`featured_element`),
sigma maps share one colormap and fit-quality contrast comes from the sample's
pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._napari._layers import (
    FIT_QUALITY_NAME,
    KIND_CONCENTRATION,
    KIND_FIT_QUALITY,
    KIND_UNCERTAINTY,
    LayerData,
    SpatialFrame,
    element_colormaps,
    robust_contrast_limits,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer
    from napari.layers import Image

    from napari_xrfquant.io.maps import ElementMaps
    from napari_xrfquant.results import QuantResult


def model_label(model_id: str) -> str:
    """The model's name in layer names: its id without the hash, ``"cxc-gold-5el"``."""
    return str(model_id).split("@", 1)[0]


def _with_model(name: str, model_id: str) -> str:
    return f"{name} · {model_label(model_id)}" if model_id else name


def concentration_layer_name(element: str, model_id: str = "", unit: str = "wt%") -> str:
    """Layer name of an element's concentration map, e.g. ``"Au [wt%] · cxc-gold-5el"``."""
    return _with_model(f"{element} [{unit}]", model_id)


def uncertainty_layer_name(element: str, model_id: str = "", unit: str = "wt%") -> str:
    """Layer name of an element's 1-sigma map, e.g. ``"Au ±1σ [wt%] · cxc-gold-5el"``."""
    return _with_model(f"{element} ±1σ [{unit}]", model_id)


def fit_quality_layer_name(model_id: str = "") -> str:
    """Layer name of the fit-quality map, e.g. ``"fit quality · cxc-gold-5el"``."""
    return _with_model(FIT_QUALITY_NAME, model_id)


#: The colormap of every ±1σ layer.
UNCERTAINTY_COLORMAP = "magma"


def featured_element(concentrations: np.ndarray, elements: Sequence[str]) -> str:
    """The element whose map varies most (largest standard deviation of wt%, NaN-aware).

    It is the one map shown after Quantify: the structure of the sample, not the
    main element's near-uniform plate.
    """
    values = np.asarray(concentrations, dtype=np.float64).reshape(-1, len(elements))
    finite = np.isfinite(values).all(axis=1)
    if not finite.any():
        return str(elements[0])
    spread = values[finite].std(axis=0)
    return str(elements[int(np.argmax(spread))])


#: Pixel units, no offset: the frame of a cube whose pixel size is unknown.
PIXEL_FRAME = SpatialFrame()


def result_layer_data(
    result: QuantResult | _MapsAsResult, source_layer: str,
    frame: SpatialFrame = PIXEL_FRAME,
) -> list[LayerData]:
    """Concentration, uncertainty and fit-quality layers from a quantification.

    The layers show ``result`` as it is: masking background pixels is the
    core's (:func:`napari_xrfquant.results.mask_background`), done before, and
    ``result.mask_below_counts`` is recorded in every layer's metadata.

    Parameters
    ----------
    result
        A :class:`~napari_xrfquant.results.QuantResult` with maps ``(H, W, E)``
        (``concentrations``, ``uncertainty``) and ``fit_quality (H, W)``.
    source_layer
        Name of the cube layer the result was computed from.
    frame
        Spatial frame of that cube, so the maps overlay it.

    Returns
    -------
    list of LayerData
        One ``"<El> [wt%]"`` layer per element (additive, own colormap), one
        hidden ``"<El> ±1σ [wt%]"`` layer per element, and a hidden fit-quality
        layer when the result has one.

    Raises
    ------
    ValueError
        If the maps are not ``(H, W, E)``.
    """
    elements = [str(e) for e in result.elements]
    concentrations = np.asarray(result.concentrations, dtype=np.float32)
    if concentrations.ndim != 3 or concentrations.shape[-1] != len(elements):
        raise ValueError(
            f"expected concentration maps of shape (H, W, {len(elements)}), "
            f"got {concentrations.shape}"
        )
    model_id = str(getattr(result, "model_id", "") or "")
    threshold = float(getattr(result, "mask_below_counts", 0.0) or 0.0)
    calibration_sigma = float(getattr(result, "calibration_sigma_percent", 0.0) or 0.0)
    colormaps = element_colormaps(elements)
    featured = featured_element(concentrations, elements)
    layers: list[LayerData] = []
    common = {**frame.layer_kwargs(), "axis_labels": ("y", "x")}
    unit = str(getattr(result, "unit", "wt%"))  # µg/cm² for a thin film

    def metadata(kind: str, element: str | None, unit: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "unit": unit,
            "element": element,
            "model_id": model_id,
            "source_layer": source_layer,
            "pixel_size_um": frame.pixel_size_um,
            "mask_below_counts": threshold,
            "calibration_sigma_percent": calibration_sigma,
        }

    def masked(values: np.ndarray) -> np.ndarray:
        return np.array(values, dtype=np.float32, order="C")  # a copy: the result stays whole

    for index, element in enumerate(elements):
        values = masked(concentrations[..., index])
        layers.append(
            (
                values,
                {
                    **common,
                    "name": concentration_layer_name(element, model_id, unit),
                    "colormap": colormaps[element],
                    "blending": "additive",
                    # one map shown: five additive maps over each other are a white plate
                    "visible": element == featured,
                    "contrast_limits": robust_contrast_limits(values),
                    "metadata": metadata(KIND_CONCENTRATION, element, unit),
                },
                "image",
            )
        )
    uncertainty = getattr(result, "uncertainty", None)
    if uncertainty is not None:
        sigma = np.asarray(uncertainty, dtype=np.float32)
        for index, element in enumerate(elements):
            values = masked(sigma[..., index])
            layers.append(
                (
                    values,
                    {
                        **common,
                        "name": uncertainty_layer_name(element, model_id, unit),
                        # not the element's colour: a sigma map must not pass for the wt% map
                        "colormap": UNCERTAINTY_COLORMAP,
                        "blending": "additive",
                        "visible": False,
                        "contrast_limits": robust_contrast_limits(values),
                        "metadata": metadata(KIND_UNCERTAINTY, element, unit),
                    },
                    "image",
                )
            )
    fit_quality = getattr(result, "fit_quality", None)
    if fit_quality is not None:
        values = np.ascontiguousarray(np.asarray(fit_quality, dtype=np.float32))
        # contrast from the sample's pixels: masked air pixels (NaN wt%) fit worst of all
        sample = np.isfinite(concentrations).all(axis=-1)
        reference = values[sample] if sample.any() else values
        layers.append(
            (
                values,
                {
                    **common,
                    "name": fit_quality_layer_name(model_id),
                    "colormap": "viridis",
                    "blending": "translucent",
                    "visible": False,
                    "contrast_limits": robust_contrast_limits(reference, 99.5),
                    "metadata": metadata(KIND_FIT_QUALITY, None, ""),
                },
                "image",
            )
        )
    return layers


@dataclass(frozen=True)
class _MapsAsResult:
    """A map file seen as the part of a quantification it was written from."""

    elements: list[str]
    concentrations: np.ndarray
    uncertainty: np.ndarray | None
    fit_quality: np.ndarray | None
    model_id: str


def maps_layer_data(maps: ElementMaps, source: str) -> list[LayerData]:
    """The layers a map TIFF of this package came from (names, units, colormaps, scale).

    Parameters
    ----------
    maps
        :class:`~napari_xrfquant.io.ElementMaps` read from the file.
    source
        What the layers record as their source (the file's name).

    Returns
    -------
    list of LayerData
        What :func:`result_layer_data` makes of that kind of map (wt% maps, their
        sigma, or the fit quality), with the first layer shown.
    """
    values = np.moveaxis(np.asarray(maps.maps, dtype=np.float32), 0, -1)  # (H, W, E)
    model_id = str(maps.extra.get("model_id", "") or "")
    elements = [str(e) for e in maps.elements]
    kind = {"concentration": KIND_CONCENTRATION, "uncertainty": KIND_UNCERTAINTY,
            "fit-quality": KIND_FIT_QUALITY}.get(maps.kind, KIND_CONCENTRATION)
    blank = np.zeros((*values.shape[:2], 1), dtype=np.float32)
    as_result = _MapsAsResult(
        elements=elements if kind != KIND_FIT_QUALITY else ["fit quality"],
        concentrations=values if kind != KIND_FIT_QUALITY else blank,
        uncertainty=values if kind == KIND_UNCERTAINTY else None,
        fit_quality=values[..., 0] if kind == KIND_FIT_QUALITY else None,
        model_id=model_id,
    )
    frame = SpatialFrame.from_pixel_size(maps.pixel_size_um)
    layers = [layer for layer in result_layer_data(as_result, source, frame)
              if layer[1]["metadata"]["kind"] == kind]
    for index, (_, kwargs, _) in enumerate(layers):
        kwargs["visible"] = index == 0 if kind != KIND_CONCENTRATION else kwargs["visible"]
        if maps.unit:
            kwargs["metadata"]["unit"] = maps.unit
    return layers


def label_on_canvas(layer: Image) -> None:
    """Draw a map's colour bar and its name (element, unit, model) on the canvas.

    napari's colour bar has ticks but no unit; the layer's name beside it says
    ``Au [wt%] · cxc-gold-5el``. Both are drawn in each panel of a grid.
    """
    layer.name_overlay.position = "bottom_left"  # the colour bar is top right
    for overlay in (layer.colorbar, layer.name_overlay):
        overlay.gridded = True
        overlay.visible = True


def show_maps_side_by_side(viewer: Viewer, maps: Sequence[Image], side_by_side: bool) -> None:
    """One model's maps at once in napari's grid, each panel named and with its colour
    bar (``side_by_side``), or back to the first map alone in one view."""
    viewer.grid.enabled = bool(side_by_side) and len(maps) > 1
    for index, layer in enumerate(maps):
        layer.visible = side_by_side or index == 0
        if layer.visible:
            label_on_canvas(layer)
    viewer.reset_view()
