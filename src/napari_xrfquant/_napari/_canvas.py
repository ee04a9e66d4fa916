"""Where a world position is drawn on napari's canvas (for pointers and scripted mice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer


def world_to_canvas(viewer: Viewer, world_yx: tuple[float, float]) -> tuple[float, float]:
    """Canvas pixel ``(x, y)`` of a displayed world position ``(y, x)`` in a 2D view.

    The inverse of napari's canvas-to-world mapping (``VispyCanvas._map_canvas2world``:
    the view's transform times its scene's), so a mouse event at the returned pixel
    reaches napari at ``world_yx``.
    """
    view = viewer.window._qt_viewer.canvas.view
    mapped = (view.transform * view.scene.transform).map([world_yx[1], world_yx[0]])
    return float(mapped[0]), float(mapped[1])
