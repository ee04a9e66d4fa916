"""The Quantify dock widget: cube layer + model + device -> element-map layers.

The work is :func:`napari_xrfquant._napari._jobs.quantify_job` (over the core's
``iter_quantify``) run by the dock's :class:`~._job_controls.JobControls`, so the
viewer stays responsive and Cancel takes effect at the next chunk. Layers are
added or replaced only with the job's result, on the main thread, for the cube
layer the run started from (:class:`~._quantify_maps.ResultMaps`); a cancelled
or failed run adds nothing.

Pixels whose total counts are below the "Mask below" threshold (air around
the sample: scattered beam only) get NaN in the concentration and uncertainty
maps, so they drop out of the picture, the statistics and the exported TIFFs.
The widget keeps the unmasked result of the last run on each cube, so changing
the threshold re-masks at once without quantifying again.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from qtpy.QtGui import QStandardItemModel
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from napari_xrfquant import results as core_results
from napari_xrfquant._napari._calibration_edit import calibration_edits
from napari_xrfquant._napari._jobs import physics_job, quantify_job
from napari_xrfquant._napari._layers import (
    cube_counts,
    cube_layers,
    cube_metadata,
    file_maps,
    is_cube_layer,
)
from napari_xrfquant._napari._qt import (
    alive,
    fit_narrow_column,
    one_line,
    present,
    scrolled_layout,
    tabify_when_docked,
)
from napari_xrfquant._napari._reader import install_readout
from napari_xrfquant._napari._reader_preference import claim_hdf5_reader
from napari_xrfquant._napari._registry import describe_model, model_registry
from napari_xrfquant._napari.widgets._calibration_panel import CalibrationPanel
from napari_xrfquant._napari.widgets._find_elements import ChosenCube
from napari_xrfquant._napari.widgets._job_controls import LATER, JobControls
from napari_xrfquant._napari.widgets._number_edit import NumberEdit
from napari_xrfquant._napari.widgets._physics_panel import PHYSICS_INFO, PHYSICS_ITEM, PhysicsPanel
from napari_xrfquant._napari.widgets._quantify_inputs import InputsCheck
from napari_xrfquant._napari.widgets._quantify_maps import ResultMaps
from napari_xrfquant._napari.widgets._quantify_results import (
    ResultsPanel,
)
from napari_xrfquant._napari.widgets.live_panel import LivePanel
from napari_xrfquant.inference.devices import resolve_device
from napari_xrfquant.jobs import Outcome
from napari_xrfquant.results import (
    poor_fit_message,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

DEVICES = ("auto", "cpu", "cuda")
#: Spectra per chunk in the GUI: ~9 progress steps for a 264 x 264 map and a
#: Cancel that answers within a fraction of a second, at little cost in speed.
GUI_BATCH_SPECTRA = 8192
#: Default background threshold (total counts per pixel), shared with the CLI.
#: The CXC sample's air pixels hold ~10-55 counts of scattered beam, its metal
#: >2000; at 200 counts the model's 1-sigma is several wt%, too poor to show as a
#: composition anyway.
DEFAULT_MASK_BELOW_COUNTS = int(core_results.DEFAULT_MASK_BELOW_COUNTS)
MASK_TOOLTIP = (
    "Pixels with fewer counts in total (summed over the whole spectrum, as in the "
    "'total counts' layer) get no composition: NaN in the wt% and ±1σ maps, left out "
    "of the statistics and written as NaN in exports. Air around a sample gives only "
    "scattered beam (a few tens of counts), from which the model returns noise. "
    "Fit quality keeps every pixel. 0 = off."
)


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    return resolve_device("auto") == "cuda"


class QuantifyWidget(QWidget):
    """Dock widget that quantifies a cube layer into element maps (wt%).

    Parameters
    ----------
    napari_viewer
        The viewer (npe2 injects it).

    Attributes
    ----------
    worker
        The running quantification's worker, or None.
    controls
        Run, Cancel, the progress bar and the status line (:class:`~._job_controls.JobControls`).
    input_info
        Why the inputs cannot run, if they cannot (:class:`~._quantify_inputs.InputsCheck`).
    maps
        The maps as layers (:class:`~._quantify_maps.ResultMaps`).
    results
        Their statistics and export (:class:`~._quantify_results.ResultsPanel`).
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        tabify_when_docked(self)  # beside the plugin's other docks, not squeezed under
        self.viewer = napari_viewer
        self._run_source: str | None = None
        self._run_mask_below_counts = 0.0
        claim_hdf5_reader()  # File > Open of an .h5 cube: no "Choose reader" dialog
        install_readout()  # units under the mouse for the maps it adds, however the cube came
        self._built = False  # no notifications while the dock is being made
        self.model_error = ""
        self.maps = ResultMaps(self.viewer)
        self._build()
        self._connect()
        self.refresh_cube_layers()
        self.refresh_models()
        self.refresh_region_layers()
        self._built = True

    # -- construction ------------------------------------------------------
    def _build(self) -> None:
        layout = scrolled_layout(self)
        self.controls = JobControls("Quantify", "")
        self.progress, self.status = self.controls.progress, self.controls.status
        self.cancel_button = self.controls.cancel_button
        form = QFormLayout()
        self.cube_combo = QComboBox()
        self.cube_combo.setToolTip("Image layer holding an XRF cube (energy axis in keV)")
        form.addRow("Cube layer", self.cube_combo)

        model_row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Bundled default or a model bundle added with 'Add...'")
        self.model_browse = QPushButton("Add...")
        self.model_browse.setToolTip("Add a model bundle (model.json or its folder)")
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.model_browse)
        form.addRow("Model", model_row)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        form.addRow("", self.model_info)
        self.physics_panel = PhysicsPanel(self._chosen_counts, self.progress, self.check_inputs)
        form.addRow(self.physics_panel)

        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        if not cuda_available():
            model = cast(QStandardItemModel, self.device_combo.model())
            item = present(model.item(DEVICES.index("cuda")))
            item.setEnabled(False)
            item.setToolTip("torch sees no CUDA GPU on this machine")
        self.device_info = QLabel("")
        device_row = QHBoxLayout()
        device_row.addWidget(self.device_combo)
        device_row.addWidget(self.device_info, 1)
        form.addRow("Device", device_row)

        # re-masks once an entry is finished (Enter or focus out), not at every digit
        self.mask_spin = NumberEdit(DEFAULT_MASK_BELOW_COUNTS, integer=True, low=0,
                                    unit="counts", special="off")
        self.mask_spin.setToolTip(MASK_TOOLTIP)
        form.addRow("Mask below", self.mask_spin)
        self.refine_spin = NumberEdit(0, integer=True, low=0, high=50, unit="steps",
                                      special="off")
        self.refine_spin.setToolTip(
            "Physics refinement: the network's composition starts a Poisson maximum-likelihood "
            "fit of each spectrum with the simulator on the model's instrument (slower: about "
            "600 spectra/s on 2 CPU cores); sigma and fit quality then come from that fit"
        )
        form.addRow("Refine", self.refine_spin)
        layout.addLayout(form)
        self.calibration_panel = CalibrationPanel(self.viewer)
        layout.addWidget(self.calibration_panel)
        self.input_info = InputsCheck(
            self.selected_cube_layer, self.model_combo.currentText, self.physics_panel,
            self.calibration_panel, {"Mask below": self.mask_spin, "Refine": self.refine_spin})
        layout.addWidget(self.input_info)

        self.run_button = self.controls.add_run_button("Quantify", ready=lambda: self.input_info.ok)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout.addWidget(self.controls)
        self.grid_check = QCheckBox("All maps side by side")
        self.grid_check.setToolTip("The chosen cube's maps of the current model in napari's "
                                   "grid, each named (element, unit, model) with its colour bar")
        layout.addWidget(self.grid_check)

        self.results = ResultsPanel(self.viewer, self.selected_cube_layer)
        layout.addWidget(self.results)
        self.live = LivePanel(self.viewer, self._live_settings)
        layout.addWidget(self.live)
        layout.addStretch(1)
        fit_narrow_column(self)  # a long model or layer name must not widen the dock

    def _connect(self) -> None:
        self.run_button.clicked.connect(self.run)
        self.model_browse.clicked.connect(self._browse_model)
        self.model_combo.currentTextChanged.connect(self._model_chosen)
        self.device_combo.currentTextChanged.connect(self._update_device_info)
        self.mask_spin.valueChanged.connect(self._mask_changed)
        self.cube_combo.currentTextChanged.connect(lambda _t: self.results.update_statistics())
        self.cube_combo.currentTextChanged.connect(lambda _t: self.check_inputs(notify=True))
        calibration_edits.changed.connect(self._calibration_edited)
        edited = self._calibration_edited
        self.destroyed.connect(lambda *_: calibration_edits.changed.disconnect(edited))
        self.grid_check.toggled.connect(
            lambda on: self.maps.show_side_by_side(self.selected_cube_layer(), on))
        events = self.viewer.layers.events
        events.inserted.connect(self._layers_changed)
        events.removed.connect(self._layers_changed)
        events.reordered.connect(self._layers_changed)
        self.viewer.layers.selection.events.active.connect(self._active_changed)
        # psygnal holds the slot weakly; a deleted widget must also stop hearing it
        model_registry.changed.connect(self._registry_changed)
        slot = self._registry_changed
        self.destroyed.connect(lambda *_: model_registry.changed.disconnect(slot))

    def _registry_changed(self) -> None:
        if not alive(self):  # the Qt side is gone (widget closed)
            model_registry.changed.disconnect(self._registry_changed)
            return
        self.refresh_models()

    # -- layer and model lists --------------------------------------------
    def _layers_changed(self, event: Any = None) -> None:
        if not alive(self):
            return  # the dock was closed; the viewer lives on
        layer = getattr(event, "value", None)
        if layer is not None and hasattr(layer, "events") and hasattr(layer.events, "name"):
            # keep combo boxes right when a layer is renamed
            layer.events.name.disconnect(self._layers_changed)
            layer.events.name.connect(self._layers_changed)
        self.refresh_cube_layers()
        self.refresh_region_layers()
        present = {lyr.name for lyr in cube_layers(self.viewer.layers)}
        kept = self.maps.last_results
        for name in [n for n in kept if n not in present]:
            del kept[name]  # the cube layer is gone (or renamed): free its maps

    def _active_changed(self, event: Any = None) -> None:
        if not alive(self) or self.maps.adding_layers:
            return
        active = self.viewer.layers.selection.active
        if active is not None and is_cube_layer(active):
            self.cube_combo.setCurrentText(active.name)
        elif active is not None and active.metadata.get("model_id") and (
                active.metadata.get("source_layer") == self.cube_combo.currentText()):
            self.results.update_statistics()  # another model's maps of this cube

    def refresh_cube_layers(self) -> None:
        """Refill the cube list; keep the choice, else prefer the active cube layer."""
        names = [layer.name for layer in cube_layers(self.viewer.layers)]
        current = self.cube_combo.currentText()
        active = self.viewer.layers.selection.active
        self.cube_combo.blockSignals(True)
        self.cube_combo.clear()
        self.cube_combo.addItems(names)
        if current in names:
            self.cube_combo.setCurrentText(current)
        elif active is not None and active.name in names:
            self.cube_combo.setCurrentText(active.name)
        elif names:
            self.cube_combo.setCurrentIndex(len(names) - 1)
        self.cube_combo.blockSignals(False)
        self.check_inputs(notify=self._built)

    def refresh_region_layers(self) -> None:
        """Refill the results panel's region list."""
        self.results.refresh_region_layers()

    def refresh_models(self) -> None:
        """Refill the model list from the shared registry (other widgets may add to it)."""
        labels = model_registry.labels()
        current = self.model_combo.currentText() or model_registry.selected
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems([*labels, PHYSICS_ITEM])
        self.model_combo.setCurrentText(current if current in [*labels, PHYSICS_ITEM]
                                        else labels[0])
        self.model_combo.blockSignals(False)
        self._model_chosen(self.model_combo.currentText())

    def _model_chosen(self, label: str) -> None:
        physics = label == PHYSICS_ITEM
        self.physics_panel.setVisible(physics)
        self.refine_spin.setEnabled(not physics)
        if physics or not label:
            self.model_info.setText(PHYSICS_INFO if physics else "")
            self.check_inputs()  # what a physics run lacks is said in the dock
            return
        model_registry.select(label)
        # at start-up a missing model is told in the label; a user's choice gets a notification
        model = self.load_selected_model(notify=self.isVisible())
        self.model_info.setText(
            describe_model(model) if model is not None else f"not loadable: {self.model_error}"
        )
        self._update_device_info()
        self.check_inputs(notify=self._built)

    def load_selected_model(self, notify: bool = True) -> Any:
        """The selected model (loaded once, cached), or None after an error notification."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError

        label = self.model_combo.currentText()
        try:
            model = model_registry.load(label)
        except (XRFQuantError, OSError, KeyError) as exc:
            self.model_error = one_line(exc)
            if notify:
                show_error(f"model {label!r}: {self.model_error}")
            return None
        self.model_error = ""
        return model

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model bundle (model.json)", "", "Model bundle (model.json);;All files (*)"
        )
        if path:
            self.add_model(path)

    def add_model(self, path: str | Path) -> str:
        """Register a model bundle and select it; returns its label."""
        entry = model_registry.register_path(path)
        self.model_combo.setCurrentText(entry.label)
        return entry.label

    def _update_device_info(self, *_args: Any) -> None:
        device = self.device_combo.currentText()
        if device == "auto":
            device = "cuda" if cuda_available() else "cpu"
        self.device_info.setText(f"runs on: {device}")

    # -- the run ---------------------------------------------------------
    def _chosen_counts(self) -> ChosenCube | None:
        layer = self.selected_cube_layer()
        return None if layer is None else ChosenCube(*cube_counts(layer), layer.name,
                                                     cube_metadata(layer))

    def _mask_changed(self, _value: object = None) -> None:
        """Re-mask the chosen cube's maps at the new threshold (no new run)."""
        layer = self.selected_cube_layer()
        if layer is not None and self.worker is None and self.maps.remask(
                layer, self.mask_below_counts):
            self.results.update_statistics()

    @property
    def mask_below_counts(self) -> float:
        """The background threshold in counts (0 = no mask)."""
        return float(self.mask_spin.value())

    def check_inputs(self, notify: bool = False) -> str | None:
        """Whether the chosen model can read the chosen cube (:class:`InputsCheck`);
        Quantify is enabled only then."""
        problem = self.input_info.check(notify)
        self.controls.refresh()
        self.run_button.setToolTip(problem or "Quantify every pixel of the cube layer")
        return problem

    def field_problem(self) -> str | None:
        """``"<field>: <why>"`` for the first refused number field of the dock, or None."""
        return self.input_info.field_problem()

    def _calibration_edited(self, name: str) -> None:
        """A new energy axis for the chosen cube: check it against the model again."""
        if alive(self) and name == self.cube_combo.currentText():
            self.check_inputs(notify=True)

    def _live_settings(self) -> tuple[Any, Any]:
        """The model and frame settings the Live switch quantifies with: the dock's."""
        from napari.utils.notifications import show_error

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

    def selected_cube_layer(self) -> Any:
        """The cube layer chosen in the list, or None."""
        name = self.cube_combo.currentText()
        for layer in cube_layers(self.viewer.layers):
            if layer.name == name:
                return layer
        return None

    def run(self) -> Any:
        """Start quantifying the selected cube layer; returns the worker (or None).

        The worker is started here; results arrive in :meth:`_on_returned`.
        """
        from napari.utils.notifications import show_error

        from napari_xrfquant.errors import XRFQuantError

        if self.worker is not None:
            return self.worker
        layer = self.selected_cube_layer()
        if layer is None:
            show_error("Quantify: open an XRF cube first (no image layer with an energy axis)")
            return None
        if (problem := self.field_problem()) is not None:
            show_error(f"Quantify: {problem}")
            return None
        data, energy_keV = cube_counts(layer)
        job: Generator[Any, None, Any]
        if self.model_combo.currentText() == PHYSICS_ITEM:
            try:
                job = physics_job(self.physics_panel.job(data, energy_keV,
                                                         self.mask_below_counts,
                                                         cube_metadata(layer),
                                                         self.device_combo.currentText()))
            except XRFQuantError as exc:
                show_error(f"Quantify: {one_line(exc)}")
                return None
        elif (model := self.load_selected_model(notify=True)) is None:
            return None
        else:
            job = quantify_job(data, energy_keV, model, self.device_combo.currentText(),
                               GUI_BATCH_SPECTRA, int(self.refine_spin.value()), file_maps(layer))
        n_spectra = int(np.prod(data.shape[:-1]))
        self._run_source = layer.name
        self._run_mask_below_counts = self.mask_below_counts
        return self.controls.runner.start(
            job, f"Quantify {layer.name} ({n_spectra} spectra)", self._on_returned,
            total=n_spectra, cancelled_text="cancelled; no layers added")

    @property
    def worker(self) -> Any:
        """The running quantification's worker (until its layers are added), or None."""
        return self.controls.runner.worker

    def cancel(self) -> None:
        """Ask the running job to stop at its next chunk (no layers are added)."""
        self.controls.runner.cancel()

    def _on_returned(self, outcome: Outcome[Any]) -> bool | None:
        from napari.utils.notifications import show_error

        source = self._run_source or ""
        result = outcome.unwrap()
        layer = next((lyr for lyr in cube_layers(self.viewer.layers) if lyr.name == source), None)
        if layer is None:
            show_error(f"Quantify: the cube layer {source!r} was removed during the run")
            return None
        self.maps.last_results[source] = result
        device = str(getattr(result, "device", "cpu"))
        self.maps.add_result_layers_stepwise(  # the job ends once its layers exist
            result, layer, self._run_mask_below_counts,
            then=lambda _added: self._results_shown(source, result, device))
        return LATER

    def _results_shown(self, source: str, result: Any, device: str) -> None:
        from napari.utils.notifications import show_info, show_warning

        self.controls.runner.finish()
        if not alive(self):
            return
        seconds = float(getattr(result, "seconds", 0.0))
        self.status.setText(f"{source}: {len(result.elements)} elements on {device} in "
                            f"{seconds:.2f} s")
        show_info(f"Quantified {source} on {device} in {seconds:.2f} s")
        poor_fit = poor_fit_message(self.maps.shown_result or result, f"Quantify {source}")
        if poor_fit:
            show_warning(poor_fit)
        self.cube_combo.setCurrentText(source)
        self.results.update_statistics()
