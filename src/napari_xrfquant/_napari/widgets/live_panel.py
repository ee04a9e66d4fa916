"""The Quantify dock's Live switch: watch a folder, add each new frame's maps along a frame axis.

The watching is the core's (:func:`napari_xrfquant.campaign.watch.iter_watch`,
the same as ``xrfquant watch``) in a napari thread worker: each complete new
cube file is quantified with the dock's model, device and background mask and
written to the output folder, and its maps are appended as the next plane of
``"<El> [wt%] · live"`` layers (frame, y, x); the viewer steps to the newest
frame. Switching Live off stops the worker between polls. Frames of another
size than the first are written to disk but not stacked (a notification says so).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
)

from napari_xrfquant._napari._layers import SpatialFrame
from napari_xrfquant._napari._qt import alive, browse_row
from napari_xrfquant._napari._result_layers import result_layer_data
from napari_xrfquant._napari.widgets._job_controls import JobRunner

if TYPE_CHECKING:  # pragma: no cover
    from napari import Viewer

    from napari_xrfquant.results import QuantResult

#: Appended to the name of every live layer.
LIVE_SUFFIX = " · live"
#: ``metadata["live"]`` marks the stacked layers of the Live switch.
LIVE_KEY = "live"

#: The dock's current choice: the loaded model (or None after a notification) and
#: the :class:`~napari_xrfquant.campaign.FrameSettings` of device and mask.
SettingsSource = Callable[[], tuple[Any, Any]]


class LivePanel(QGroupBox):
    """Watch folder, output folder and the Live switch.

    Parameters
    ----------
    viewer
        The viewer the live layers go to.
    settings_source
        Called when Live is switched on: the model and frame settings to use.

    Attributes
    ----------
    worker
        The running watch worker, or None.
    poll_s, settle_s
        The watcher's poll interval and settle time (seconds).
    frames
        Frames stacked into the live layers so far.
    """

    def __init__(self, viewer: Viewer, settings_source: SettingsSource) -> None:
        super().__init__("Live: quantify new files as they arrive")
        self.viewer = viewer
        self.settings_source = settings_source
        self.runner = JobRunner("Live", say=self._say, parent=self)
        self.runner.state_changed.connect(self._state_changed)
        self.poll_s = 1.0
        self.settle_s = 2.0
        self.frames = 0
        # the live layers' growing stacks, by layer name (see _grown)
        self._buffers: dict[str, np.ndarray] = {}
        form = QFormLayout(self)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder the camera writes cubes into")
        form.addRow("Watch", browse_row(self.folder_edit, self._browse))
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("default: <watch folder>_xrfquant beside it")
        form.addRow("Write to", self.output_edit)
        self.live_check = QCheckBox("Live")
        self.live_check.setToolTip(
            "Quantify every complete new cube file in the watched folder (unchanged for a "
            "few seconds; HDF5 closed by its writer), write its maps, and add them as the "
            "next frame of the live layers. Files already there are quantified first; "
            "frames done before (same model and settings) are read back, not redone."
        )
        self.live_check.toggled.connect(self._toggled)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form.addRow(self.live_check, self.status)

    # -- folders -----------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to watch")
        if folder:
            self.folder_edit.setText(folder)

    def output_folder(self, folder: Path) -> Path:
        """The output folder: as typed, else ``<folder>_xrfquant`` beside the watched one."""
        text = self.output_edit.text().strip()
        return Path(text) if text else folder.with_name(f"{folder.name}_xrfquant")

    # -- the switch --------------------------------------------------------
    def _toggled(self, on: bool) -> None:
        if on:
            if self.start() is None:
                self.live_check.blockSignals(True)
                self.live_check.setChecked(False)
                self.live_check.blockSignals(False)
        else:
            self.stop()

    def start(self) -> Any:
        """Start watching; returns the worker, or None (with a notification) if it cannot."""
        from napari.utils.notifications import show_error

        from napari_xrfquant.campaign.watch import iter_watch

        if self.worker is not None:
            return self.worker
        text = self.folder_edit.text().strip()
        folder = Path(text) if text else None
        if folder is None or not folder.is_dir():
            show_error(f"Live: choose a folder to watch ({text or 'none given'} is not one)")
            return None
        outdir = self.output_folder(folder)
        if outdir.resolve() == folder.resolve():
            show_error("Live: write the maps to another folder than the watched one")
            return None
        model, settings = self.settings_source()
        if model is None:
            return None
        watch = iter_watch(folder, outdir, settings, model=model, poll_s=self.poll_s,
                           settle_s=self.settle_s, keep_result=True)
        worker = self.runner.start(watch, f"Live {folder.name}", lambda outcome: None,
                                   on_event=self._on_frame, cancelled_text="stopped")
        self.status.setText(f"watching {folder} -> {outdir}")
        return worker

    @property
    def worker(self) -> Any:
        """The running watch worker, or None."""
        return self.runner.worker

    def stop(self) -> None:
        """Stop watching at the watcher's next poll."""
        self.runner.cancel("stopping...")

    def _say(self, text: str) -> None:
        if alive(self):
            self.status.setText(text)

    # -- frames ------------------------------------------------------------
    def _on_frame(self, outcome: Any) -> None:
        # the runner hands frames over one after another, in order, even when adding
        # a layer runs the event loop and the next frame arrives meanwhile
        if outcome is not None and alive(self):
            self._show(outcome)

    def _show(self, outcome: Any) -> None:
        from napari.utils.notifications import show_warning

        if outcome.status == "failed":
            show_warning(f"Live: {outcome.describe()}")
            return
        for note in outcome.notes:
            show_warning(f"Live: {note}")
        result = outcome.result
        if result is None:  # done by an earlier run: its maps are on disk, not here
            result = _read_back(outcome)
            if result is None:
                return
        if not self.add_frame(result, outcome.path.name):
            show_warning(f"Live: {outcome.path.name} is {result.image_shape[:2]} pixels, the "
                         "live stack another size; written to disk, not stacked")
        self.runner.advance()
        self.status.setText(f"{self.frames} frames; last {outcome.describe()}")

    def add_frame(self, result: QuantResult, name: str) -> bool:
        """Append one frame's maps to the live layers (made at the first); False if mis-sized."""
        frame = SpatialFrame()
        layers = result_layer_data(result, f"live:{name}", frame)
        live = {lyr.name: lyr for lyr in self.viewer.layers
                if (getattr(lyr, "metadata", None) or {}).get(LIVE_KEY)}
        shape = np.shape(layers[0][0])
        if any(tuple(lyr.data.shape[1:]) != shape for lyr in live.values()):
            return False
        for data, kwargs, _kind in layers:
            layer_name = kwargs["name"] + LIVE_SUFFIX
            existing = live.get(layer_name)
            if existing is not None:
                existing.data = self._grown(layer_name, existing.data, data)
                continue
            options = {**kwargs, "name": layer_name,
                       "metadata": {**kwargs["metadata"], LIVE_KEY: True}}
            options["scale"] = (1.0, *frame.scale)
            options["translate"] = (0.0, *frame.translate)
            options["units"] = ("pixel", *frame.units)
            options["axis_labels"] = ("frame", "y", "x")
            self.viewer.add_image(data[None], **options)
        self.frames += 1
        self.viewer.dims.set_current_step(0, self.frames - 1)
        return True

    def _grown(self, name: str, shown: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """``shown`` with ``frame`` appended, as a view of a buffer that doubles when full.

        Concatenating copied the whole stack at every frame (quadratic in the
        campaign's length); a doubling buffer copies it O(log n) times.
        """
        buffer = self._buffers.get(name)
        n = len(shown)
        if buffer is None or shown.base is not buffer or buffer.shape[1:] != frame.shape:
            buffer = np.empty((max(2 * n, 4), *frame.shape), dtype=frame.dtype)
            buffer[:n] = shown
        elif n == len(buffer):
            bigger = np.empty((2 * n, *frame.shape), dtype=buffer.dtype)
            bigger[:n] = buffer
            buffer = bigger
        buffer[n] = frame
        self._buffers[name] = buffer
        return buffer[: n + 1]

    def _state_changed(self, state: str) -> None:
        if self.runner.running or not alive(self):
            return
        self.live_check.blockSignals(True)
        self.live_check.setChecked(False)
        self.live_check.blockSignals(False)
        if state != "failed":  # a failure's line stays
            self.status.setText(f"stopped; {self.frames} frames")


def _read_back(outcome: Any) -> Any:
    """A frame done by an earlier run, from its TIFFs (None when they cannot be read)."""
    from napari_xrfquant.io import read_element_maps
    from napari_xrfquant.results import QuantResult

    files = {Path(f).name: Path(f) for f in outcome.files}
    stem = outcome.stem
    try:
        wt = read_element_maps(files[f"{stem}_wt_percent.tif"])
        sigma = read_element_maps(files[f"{stem}_sigma_wt_percent.tif"])
        fit = read_element_maps(files[f"{stem}_fit_quality.tif"])
    except (KeyError, OSError, ValueError):
        return None  # the per-element layout, or files gone: shown on disk only
    return QuantResult(
        concentrations=np.moveaxis(wt.maps, 0, -1),
        uncertainty=np.moveaxis(sigma.maps, 0, -1),
        fit_quality=fit.maps[0],
        elements=list(wt.elements),
        model_id=str(wt.extra.get("model_id", "")),
    )
