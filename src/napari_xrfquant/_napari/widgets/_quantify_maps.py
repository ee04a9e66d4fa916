"""A quantification's maps in the viewer: added as layers, re-masked, shown side by side.

A part the Quantify dock (:class:`~napari_xrfquant._napari.widgets.quantify.QuantifyWidget`)
is built from. :meth:`ResultMaps.add_result_layers_stepwise` adds one layer per
turn of the Qt event loop (a new layer costs napari 0.1-0.3 s; eleven at once
kept the window from repainting for seconds); a re-run replaces only that
model's layers; the first view shows one map with its name and colour bar.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._napari._layers import (
    KIND_CONCENTRATION,
    KIND_TOTAL,
    RESULT_KINDS,
    SpatialFrame,
    layer_data_key,
    layer_kind,
    result_key,
    result_layers,
    total_counts_layer_name,
)
from napari_xrfquant._napari._result_layers import (
    label_on_canvas,
    result_layer_data,
    show_maps_side_by_side,
)
from napari_xrfquant.results import background_mask, mask_background

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer
    from napari.layers import Image

    from napari_xrfquant.results import QuantResult

#: Pause between two steps of adding result layers: input and paint events get in (ms).
STEP_PAUSE_MS = 1


class ResultMaps:
    """The maps of the quantifications the dock ran, as layers of ``viewer``.

    Attributes
    ----------
    last_results
        The unmasked result of the last run on each cube layer (by name), kept
        so a new background threshold re-masks the maps without a new run.
    shown_result
        The last result as the layers show it (masked).
    adding_layers
        True while layers are being added (each becomes the active layer for a
        moment: the dock's statistics wait).
    """

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.last_results: dict[str, QuantResult] = {}
        self.shown_result: QuantResult | None = None
        self.adding_layers = False

    def show_side_by_side(self, cube_layer: Image | None, on: bool) -> None:
        """``cube_layer``'s concentration maps of the current model in a labelled grid
        (``on``), or its first map alone."""
        maps = [] if cube_layer is None else result_layers(self.viewer.layers, cube_layer.name,
                                                           (KIND_CONCENTRATION,))
        show_maps_side_by_side(self.viewer, maps, on)

    # -- background mask ---------------------------------------------------
    def total_counts_of(self, cube_layer: Image) -> np.ndarray | None:
        """Total counts ``(H, W)`` of a cube layer: its total-counts layer, else None."""
        name = total_counts_layer_name(cube_layer.name)
        for layer in self.viewer.layers:
            metadata = getattr(layer, "metadata", None) or {}
            if metadata.get("kind") == KIND_TOTAL and (
                metadata.get("source_layer") == cube_layer.name or layer.name == name
            ):
                return np.asarray(layer.data)
        return None

    def remask(self, cube_layer: Image, mask_below_counts: float) -> bool:
        """Mask ``cube_layer``'s maps again at a new threshold from its last result (no
        new run); False when it has none on show."""
        result = self.last_results.get(cube_layer.name)
        if result is None or not result_layers(self.viewer.layers, cube_layer.name):
            return False
        self.add_result_layers(result, cube_layer, mask_below_counts)
        return True

    def add_result_layers(
        self, result: QuantResult, cube_layer: Image, mask_below_counts: float = 0.0
    ) -> list[Image]:
        """Add (or replace) the concentration, sigma and fit-quality layers of a result.

        A run on the same cube layer replaces the data of existing result
        layers in place (keeping the user's colormap and contrast choices
        only where the element is unchanged) instead of adding duplicates.
        Pixels with fewer than ``mask_below_counts`` total counts (from the
        cube's total-counts layer, else the counts the model read) become NaN
        in the concentration and uncertainty layers.
        """
        from napari_xrfquant.jobs import drive

        return list(drive(self.result_layer_steps(result, cube_layer, mask_below_counts)))

    def add_result_layers_stepwise(self, result: QuantResult, cube_layer: Image,
                                   mask_below_counts: float,
                                   then: Callable[[list[Image]], None]) -> None:
        """:meth:`add_result_layers` one layer per turn of the Qt event loop, then ``then``.

        A new layer costs napari 0.1-0.3 s (its controls, its vispy visual);
        eleven at once kept the window from repainting for seconds.
        """
        from qtpy.QtCore import QTimer

        steps = self.result_layer_steps(result, cube_layer, mask_below_counts)

        def step() -> None:
            try:
                next(steps)
            except StopIteration as done:
                added = list(done.value)
                # the rest in the next turn too: the statistics take another 50-100 ms
                QTimer.singleShot(STEP_PAUSE_MS, lambda: then(added))
                return
            QTimer.singleShot(STEP_PAUSE_MS, step)

        step()

    def result_layer_steps(self, result: QuantResult, cube_layer: Image,
                           mask_below_counts: float) -> Generator[None, None, list[Image]]:
        """The work of :meth:`add_result_layers`, pausing after each new layer."""
        frame = SpatialFrame.from_layer(cube_layer)
        total = self.total_counts_of(cube_layer)
        expected_hw = tuple(np.shape(result.concentrations)[:2])
        if total is None or total.shape != expected_hw:
            total = result.total_counts  # the counts the model read
        else:
            total = total * result.counts_scale  # the layer holds the data's own totals
        threshold = float(mask_below_counts) if total is not None else 0.0
        if threshold > 0:
            mask = background_mask(total, threshold)
            result = mask_background(result, mask, threshold)
        self.shown_result = result
        new_layers = result_layer_data(result, cube_layer.name, frame)
        # a re-run replaces this model's layers only: another model's stay beside them
        old = {result_key(lyr): lyr for lyr in result_layers(
            self.viewer.layers, cube_layer.name, model_id=str(result.model_id))}
        added: list[Any] = []
        first_run = not old
        for data, kwargs, layer_type in new_layers:
            existing = old.pop(layer_data_key((data, kwargs, layer_type)), None)
            if existing is not None:
                existing.data = data
                existing.metadata = kwargs["metadata"]
                existing.contrast_limits = kwargs["contrast_limits"]
                added.append(existing)
                continue
            kwargs = {**kwargs}
            # the result-layer names are per element; a second cube gets its own
            if any(lyr.name == kwargs["name"] for lyr in self.viewer.layers):
                kwargs["name"] = f"{kwargs['name']} ({cube_layer.name})"
            # each new layer becomes the active one; the statistics follow once, after
            with self._statistics_held():
                added.append(self.viewer.add_image(data, **kwargs))
            yield
        for stale in old.values():
            self.viewer.layers.remove(stale)
        if first_run:  # a rerun keeps what the user has shown or hidden since
            yield from self._readable_view(added, cube_layer, str(result.model_id))
        return added

    @contextmanager
    def _statistics_held(self) -> Iterator[None]:
        """Changes of the active layer inside leave the statistics as they are."""
        self.adding_layers = True
        try:
            yield
        finally:
            self.adding_layers = False

    def _readable_view(self, added: list[Any], cube_layer: Any,
                       model_id: str) -> Generator[None, None, None]:
        """The first view of a result: one map with its colour bar, the cube hidden.

        ``result_layer_data`` shows the element whose map varies most; the cube
        and its total counts go under it and would wash it out, so they are
        hidden (the layer list shows them again); a scale bar is switched on.
        """
        total = total_counts_layer_name(cube_layer.name)
        yield
        for layer in self.viewer.layers:
            if layer.name in (cube_layer.name, total):
                layer.visible = False
            elif (layer_kind(layer) in RESULT_KINDS
                  and layer.metadata.get("source_layer") == cube_layer.name
                  and layer.metadata.get("model_id") != model_id):
                layer.visible = False  # another model's maps of this cube: one view at a time
        shown = [lyr for lyr in added if lyr.visible]
        for layer in shown:
            yield  # a colour bar's first drawing costs napari 0.2-0.5 s
            label_on_canvas(layer)
        yield
        self.viewer.canvas.overlays["scale_bar"].visible = True  # viewer.scale_bar: deprecated
        if shown:
            yield
            with self._statistics_held():  # the statistics follow once, after
                self.viewer.layers.selection.active = shown[0]
