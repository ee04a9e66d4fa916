"""Read-outs with units: the energy of a cube's slice, a map's value under the mouse.

napari's dims slider shows the slice index; the cube layer's world axis is in
keV (scale = gain, translate = offset), so the status bar reads keV under the
mouse, and this read-out puts the exact channel energy (from the layer's
``energy_keV`` metadata, correct also for a non-linear calibration) in the
viewer's text overlay whenever the slider moves.

napari's status bar gives a pixel's value without its unit (``[2440.0, 2440.0]:
59.8``); every layer that names its unit in ``metadata["unit"]`` (the maps of a
quantification, however they were added: the Quantify dock, File > Open of an
exported map, the Live switch) reads ``59.8 wt%``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._napari._layers import cube_layers

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from napari import Viewer
    from napari.components.overlays import TextOverlay
    from napari.layers import Image, Layer

#: Viewers whose text overlay we drive, by id; weak so closed viewers go away.
_INSTALLED: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def current_channel(layer: Image, world_point: Sequence[float]) -> int | None:
    """Channel index of ``layer`` (a cube layer) at the viewer's world point."""
    point = np.asarray(world_point, dtype=np.float64)
    if point.size < layer.ndim:
        return None
    data_point = np.asarray(layer.world_to_data(point[-layer.ndim :]), dtype=np.float64)
    channel = int(np.round(data_point[0]))
    n_channels = int(layer.data.shape[0])
    return channel if 0 <= channel < n_channels else None


def energy_readout_text(viewer: Viewer) -> str | None:
    """Text for the overlay: energy and channel of the top visible cube layer.

    Returns None when the viewer shows no cube or the energy axis is not a
    slider (e.g. when the energy axis is displayed).
    """
    cubes = [layer for layer in cube_layers(viewer.layers) if layer.visible]
    if not cubes:
        return None
    layer = cubes[-1]
    energy_axis_world = viewer.dims.ndim - layer.ndim
    if energy_axis_world in viewer.dims.displayed:
        return None
    channel = current_channel(layer, viewer.dims.point)
    if channel is None:
        return None
    energy_keV = float(np.asarray(layer.metadata["energy_keV"])[channel])
    return f"{layer.name}: E = {energy_keV:.3f} keV (channel {channel})"


def text_overlay(viewer: Viewer) -> TextOverlay:
    """The viewer's canvas text overlay (``viewer.canvas.overlays`` since napari 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    if overlays is not None and "text" in overlays:
        return overlays["text"]
    return viewer.text_overlay


def update_energy_readout(viewer: Viewer) -> None:
    """Refresh the text overlay of ``viewer`` from its current slider position."""
    text = energy_readout_text(viewer)
    overlay = text_overlay(viewer)
    if text is None:
        if overlay.text.endswith(")") and " keV (channel " in overlay.text:
            overlay.visible = False
            overlay.text = ""
        return
    overlay.text = text
    overlay.visible = True


def install_energy_readout(viewer: Viewer) -> None:
    """Keep ``viewer``'s text overlay showing the cube energy; safe to call repeatedly."""
    if viewer is None or _INSTALLED.get(id(viewer)) is viewer:
        return
    _INSTALLED[id(viewer)] = viewer
    ref = weakref.ref(viewer)

    def refresh(_event: object = None) -> None:
        target = ref()
        if target is not None:
            update_energy_readout(target)

    for layer in viewer.layers:
        show_value_unit(layer)

    def inserted(event: object) -> None:
        target = ref()
        layer = getattr(event, "value", None)
        show_value_unit(layer)
        if target is not None and layer is not None:
            start_at_brightest_slice(target, layer)

    viewer.layers.events.inserted.connect(inserted)
    viewer.dims.events.current_step.connect(refresh)
    viewer.dims.events.ndisplay.connect(refresh)
    viewer.layers.events.inserted.connect(refresh)
    viewer.layers.events.removed.connect(refresh)
    viewer.layers.events.reordered.connect(refresh)
    # the layer list re-emits its layers' events: hiding a cube changes the read-out
    viewer.layers.events.connect(
        lambda event: refresh() if getattr(event, "type", "") == "visible" else None
    )
    refresh()


def show_value_unit(layer: Layer) -> None:
    """Let napari's status bar give ``layer``'s values with ``metadata["unit"]``, if any."""
    metadata = getattr(layer, "metadata", None) or {}
    unit = metadata.get("unit")
    if not unit or getattr(layer, "_xrfquant_unit", None) is not None:
        return
    plain = layer.get_status

    def get_status(*args: Any, **kwargs: Any) -> dict[str, Any]:
        status = plain(*args, **kwargs)
        value = str(status.get("value", ""))
        unit_now = (getattr(layer, "metadata", None) or {}).get("unit") or ""
        if value and unit_now and not value.endswith(unit_now):
            status["value"] = f"{value} {unit_now}"
            status["coordinates"] = f"{status.get('coords', '')}: {status['value']}"
        return status

    # napari has no unit for a layer's values; its status bar calls this method
    layer.get_status = get_status
    layer._xrfquant_unit = unit


def start_at_brightest_slice(viewer: Viewer, layer: Layer) -> None:
    """Move the energy slider to a new cube layer's brightest channel
    (``metadata["start_channel"]``) when it is the viewer's only cube: napari starts
    in the middle of the range, often a channel of noise."""
    channel = (getattr(layer, "metadata", None) or {}).get("start_channel")
    cubes = cube_layers(viewer.layers)
    if channel is None or len(cubes) != 1 or cubes[0] is not layer or viewer.dims.ndim != 3:
        return
    viewer.dims.set_current_step(0, int(channel))
