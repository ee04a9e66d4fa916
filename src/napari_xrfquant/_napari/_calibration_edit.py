"""Changing a cube layer's energy calibration in place, and telling the docks.

The Quantify dock edits it; the spectrum inspector and Quantify's input check
listen to :data:`calibration_edits`, so a new calibration shows at once.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_xrfquant.io.calibration import fit_linear_calibration

if TYPE_CHECKING:  # pragma: no cover
    from napari.components import LayerList
    from napari.layers import Image

#: ``calibration_source`` of a calibration typed in the Quantify dock.
EDITED = "edited"


class CalibrationEdits:
    """The signal a changed calibration emits (the cube layer's name)."""

    changed = Signal(str)


calibration_edits = CalibrationEdits()


def set_cube_calibration(layers: LayerList, layer: Image, energy_keV: np.ndarray,
                         source: str = EDITED) -> None:
    """Give ``layer`` (a cube layer) the channel energies ``energy_keV``.

    The layer's metadata and its :class:`~napari_xrfquant.io.Cube`, the energy
    axis of the canvas (scale and translate of the first axis) and the
    metadata of the layers made from it (total counts) all change together.
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    offset_keV, gain_keV = fit_linear_calibration(energy)
    cube = layer.metadata.get("cube")
    edited = cube
    if cube is not None and dataclasses.is_dataclass(cube) and not isinstance(cube, type):
        edited = dataclasses.replace(cube, energy_keV=energy, calibration_source=source)
    for other in layers:
        metadata = other.metadata
        if other.name == layer.name or (metadata.get("source_layer") == layer.name
                                        and "energy_keV" in metadata):
            metadata["energy_keV"] = energy
            metadata["calibration_source"] = source
            if metadata.get("cube") is cube:
                metadata["cube"] = edited
    layer.scale = (gain_keV, *tuple(layer.scale)[1:])
    layer.translate = (offset_keV, *tuple(layer.translate)[1:])
    calibration_edits.changed.emit(layer.name)
