"""npe2 writer: selected 2D image layers (element maps) -> one TIFF stack.

"File > Save Selected Layers..." with concentration layers selected and a
``.tif`` name writes them through :func:`napari_xrfquant.io.write_element_maps`,
which keeps element names, the unit and the pixel size (napari's own TIFF
writer drops them). napari's save dialog asks before replacing a file, so the
writer overwrites what the dialog agreed to replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_xrfquant._napari._layers import SpatialFrame

FullLayerData = tuple[Any, dict[str, Any], str]


def _element_name(meta: dict[str, Any]) -> str:
    metadata = meta.get("metadata") or {}
    element = metadata.get("element")
    if element:
        return str(element)
    name = str(meta.get("name") or "map")
    # "Au [wt%]" -> "Au": the unit lives in the file's own tag
    return name.split(" [", 1)[0].strip() or name


def _unit(metas: Sequence[dict[str, Any]]) -> str:
    units = {str((m.get("metadata") or {}).get("unit", "")) for m in metas}
    units.discard("")
    if len(units) > 1:
        from napari_xrfquant.errors import XRFQuantError

        raise XRFQuantError(
            f"cannot save maps with different units ({', '.join(sorted(units))}) in one TIFF; "
            "select layers of one unit"
        )
    return units.pop() if units else "wt%"


def _pixel_size_um(meta: dict[str, Any]) -> float | None:
    metadata = meta.get("metadata") or {}
    if metadata.get("pixel_size_um") is not None:
        return float(metadata["pixel_size_um"])
    scale = meta.get("scale")
    units = meta.get("units")
    if scale is None or units is None:
        return None
    frame = SpatialFrame(
        scale=tuple(float(s) for s in scale[-2:]),  # type: ignore[arg-type]
        units=tuple(str(u) for u in units[-2:]),  # type: ignore[arg-type]
    )
    return frame.pixel_size_um


def write_element_map_layers(path: str, layer_data: list[FullLayerData]) -> list[str]:
    """Write 2D image layers of one shape as an element-map TIFF stack.

    Parameters
    ----------
    path
        Destination ``.tif``/``.tiff`` file.
    layer_data
        napari's ``(data, meta, layer_type)`` for each selected layer.

    Returns
    -------
    list of str
        The written file(s).

    Raises
    ------
    XRFQuantError
        If the layers are not 2D images of one shape and one unit.
    """
    from napari_xrfquant.errors import XRFQuantError
    from napari_xrfquant.io import write_element_maps

    images = [(np.asarray(data), meta) for data, meta, kind in layer_data if kind == "image"]
    if not images:
        raise XRFQuantError(f"{path}: no image layers selected to save as element maps")
    shapes = {data.shape for data, _ in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        described = ", ".join(f"{m.get('name')} {d.shape}" for d, m in images)
        raise XRFQuantError(
            f"{path}: element maps must be 2D images of one shape, got {described}"
        )
    metas = [meta for _, meta in images]
    maps = np.stack([data.astype(np.float32, copy=False) for data, _ in images])
    written = write_element_maps(
        path,
        maps,
        [_element_name(meta) for meta in metas],
        unit=_unit(metas),
        pixel_size_um=_pixel_size_um(metas[0]),
        layout="stack",
        overwrite=True,
    )
    return [str(p) for p in written]
