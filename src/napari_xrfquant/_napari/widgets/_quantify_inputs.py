"""The Quantify dock's check of what it is about to run: the cube against the model.

:class:`InputsCheck` is the dock's orange line that says why Quantify cannot run
(hidden when it can): a number field refused, a model that does not read the
cube's energy range, a physics fit that lacks its instrument or elements. The
dock is built from it as from its other panels; it reads the dock's choices
through the callables it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel

from napari_xrfquant._napari._layers import cube_counts
from napari_xrfquant._napari._registry import model_registry

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Image

    from napari_xrfquant._napari.widgets._calibration_panel import CalibrationPanel
    from napari_xrfquant._napari.widgets._number_edit import NumberEdit
    from napari_xrfquant._napari.widgets._physics_panel import PhysicsPanel


class InputsCheck(QLabel):
    """Why the chosen cube and model cannot be quantified, or nothing (hidden).

    Parameters
    ----------
    cube_layer
        The chosen cube layer, or None.
    model_label
        The chosen entry of the model list.
    physics_panel, calibration_panel
        The dock's "Physics (no model)" and energy-calibration panels.
    fields
        The dock's number fields, by the label they show.

    Attributes
    ----------
    ok
        Whether a cube is chosen and nothing stands in the way.
    """

    def __init__(self, cube_layer: Callable[[], Image | None], model_label: Callable[[], str],
                 physics_panel: PhysicsPanel, calibration_panel: CalibrationPanel,
                 fields: Mapping[str, NumberEdit]) -> None:
        super().__init__("")
        self.setWordWrap(True)
        self.setStyleSheet("color: #e0a040")
        self.setVisible(False)
        self._cube_layer = cube_layer
        self._model_label = model_label
        self._physics = physics_panel
        self._calibration = calibration_panel
        self._fields = dict(fields)
        self._told: str | None = None
        self.ok = False

    def field_problem(self) -> str | None:
        """``"<field>: <why>"`` for the first refused number field of the dock, or None."""
        from napari_xrfquant._napari.widgets._number_edit import edit_problems

        refused = edit_problems(self._fields)
        return refused[0] if refused else None

    def check(self, notify: bool = False) -> str | None:
        """Whether the chosen model can read the chosen cube: the reason it cannot, or None.

        Asked when the cube or the model changes, so an energy range the model
        does not cover is said at once (here, and as a warning when ``notify``),
        not when Quantify is pressed.
        """
        from napari.utils.notifications import show_warning

        from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_ITEM
        from napari_xrfquant.inference.resample import input_problem

        layer = self._cube_layer()
        label = self._model_label()
        model = model_registry.loaded(label)
        problem = None
        self._calibration.show_layer(layer)
        if label == PHYSICS_ITEM:
            problem = self._physics.problem()
        elif layer is not None and model is not None:
            data, energy_keV = cube_counts(layer)
            problem = input_problem(model, energy_keV, int(data.shape[-1]))
            if notify:  # a cube without calibration, another channel count: ask
                self._calibration.ask_about_channels(layer, model)
        self.setText(problem or "")
        self.setVisible(problem is not None)
        self.ok = layer is not None and problem is None
        if layer is not None and problem and notify and problem != self._told:
            show_warning(f"Quantify {layer.name}: {problem}")
        self._told = problem
        return problem
