"""The Quantify dock's checks of what it is about to run: cube against model, Live settings.

A mixin of :class:`~napari_xrfquant._napari.widgets.quantify.QuantifyWidget`
(which supplies the combos, the mask field and the labels).
"""

from __future__ import annotations

from typing import Any

from napari_xrfquant._napari._layers import cube_counts
from napari_xrfquant._napari._registry import model_registry


class QuantifyInputs:
    """Checks of the dock's inputs before any work."""

    viewer: Any
    worker: Any
    cube_combo: Any
    model_combo: Any
    device_combo: Any
    refine_spin: Any
    mask_spin: Any
    run_button: Any
    controls: Any
    _inputs_ok: bool
    input_info: Any
    calibration_panel: Any
    physics_panel: Any
    _told_problem: str | None

    @property
    def mask_below_counts(self) -> float:  # supplied by the results panel
        raise NotImplementedError

    def selected_cube_layer(self) -> Any:  # supplied by the widget
        raise NotImplementedError

    def load_selected_model(self, notify: bool = True) -> Any:  # supplied by the widget
        raise NotImplementedError

    def field_problem(self) -> str | None:
        """``"<field>: <why>"`` for the first refused number field of the dock, or None."""
        from napari_xrfquant._napari.widgets._number_edit import edit_problems

        refused = edit_problems({"Mask below": self.mask_spin, "Refine": self.refine_spin})
        return refused[0] if refused else None

    def check_inputs(self, notify: bool = False) -> str | None:
        """Whether the chosen model can read the chosen cube; Quantify is enabled only then.

        Asked when the cube or the model changes, so an energy range the model
        does not cover is said at once (in the dock, and as a warning when
        ``notify``), not when Quantify is pressed.
        """
        from napari.utils.notifications import show_warning

        from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
        from napari_xrfquant.inference.resample import input_problem

        layer = self.selected_cube_layer()
        model = model_registry.loaded(self.model_combo.currentText())
        problem = None
        self.calibration_panel.show_layer(layer)
        if self.model_combo.currentText() == PHYSICS_ITEM:
            problem = self.physics_panel.problem()
        elif layer is not None and model is not None:
            data, energy_keV = cube_counts(layer)
            problem = input_problem(model, energy_keV, int(data.shape[-1]))
            if notify:  # a cube without calibration, another channel count: ask
                self.calibration_panel.ask_about_channels(layer, model)
        self.input_info.setText(problem or "")
        self.input_info.setVisible(problem is not None)
        self._inputs_ok = layer is not None and problem is None
        self.controls.refresh()
        self.run_button.setToolTip(problem or "Quantify every pixel of the cube layer")
        if problem and notify and problem != self._told_problem:
            show_warning(f"Quantify {layer.name}: {problem}")
        self._told_problem = problem
        return problem

    def _calibration_edited(self, name: str) -> None:
        """A new energy axis for the chosen cube: check it against the model again."""
        from napari_xrfquant._napari._qt import alive

        if alive(self) and name == self.cube_combo.currentText():
            self.check_inputs(notify=True)

    def _live_settings(self) -> tuple[Any, Any]:
        """The model and frame settings the Live switch quantifies with: the dock's."""
        from napari.utils.notifications import show_error

        from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
        from napari_xrfquant.campaign import FrameSettings

        if (problem := self.field_problem()) is not None:
            show_error(f"Live: {problem}")
            return None, None
        if self.model_combo.currentText() == PHYSICS_ITEM:
            show_error("Live: choose a model (the physics fit does not run live)")
            return None, None
        model = self.load_selected_model(notify=True)
        settings = FrameSettings(device=self.device_combo.currentText(),
                                 mask_below=self.mask_below_counts,
                                 refine=int(self.refine_spin.value()))
        return model, settings
