"""Gather a cube's result layers back into a :class:`~napari_xrfquant.results.QuantResult`.

The Quantify dock's statistics table and its Export use the maps as they are in
the viewer (masked as the user chose). Everything after that, statistics and the
files written, is the core's (:mod:`napari_xrfquant.results`): the napari layer
only turns layers into a result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant._napari._layers import (
    KIND_CONCENTRATION,
    KIND_FIT_QUALITY,
    KIND_UNCERTAINTY,
    layer_kind,
    result_layers,
)
from napari_xrfquant.results import QuantResult

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Layer


def result_from_layers(layers: Iterable[Layer], source_layer: str) -> QuantResult | None:
    """The result shown by the layers of cube layer ``source_layer``; None if it has none.

    Concentration maps keep the order of the layer list; missing sigma or
    fit-quality layers become NaN maps of the same shape.
    """
    found = result_layers(layers, source_layer)
    concentration = [lyr for lyr in found if layer_kind(lyr) == KIND_CONCENTRATION]
    if not concentration:
        return None
    elements = [str(lyr.metadata["element"]) for lyr in concentration]
    maps = np.stack([np.asarray(lyr.data, dtype=np.float32) for lyr in concentration], axis=-1)
    by_element = {
        lyr.metadata.get("element"): lyr for lyr in found if layer_kind(lyr) == KIND_UNCERTAINTY
    }
    sigma = np.full_like(maps, np.nan)
    for index, element in enumerate(elements):
        if element in by_element:
            sigma[..., index] = np.asarray(by_element[element].data, dtype=np.float32)
    fit_layers = [lyr for lyr in found if layer_kind(lyr) == KIND_FIT_QUALITY]
    fit_quality = (
        np.asarray(fit_layers[0].data, dtype=np.float32)
        if fit_layers
        else np.full(maps.shape[:2], np.nan, dtype=np.float32)
    )
    first = concentration[0].metadata
    return QuantResult(
        concentrations=maps,
        uncertainty=sigma,
        fit_quality=fit_quality,
        elements=elements,
        model_id=str(first.get("model_id") or ""),
        mask_below_counts=float(first.get("mask_below_counts") or 0.0),
        unit=str(first.get("unit") or "wt%"),
        calibration_sigma_percent=float(first.get("calibration_sigma_percent") or 0.0),
    )


def pixel_size_of_results(layers: Iterable[Layer], source_layer: str) -> float | None:
    """Pixel size (µm) recorded on the result layers of ``source_layer``, if any."""
    for layer in result_layers(layers, source_layer):
        value = layer.metadata.get("pixel_size_um")
        if value is not None:
            return float(value)
    return None
