"""The models the widgets offer, shared by all widgets and extendable at run time.

The Quantify widget lists :data:`model_registry`; another widget (e.g. one that
trains a model) calls ``model_registry.register("my model", "/path/to/bundle")``
and every open Quantify widget shows the new entry at once, through the
``changed`` signal, without a restart.

Loaded models are cached per entry, so switching back and forth does not
reload weights; :meth:`ModelRegistry.load` runs on the caller's thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psygnal import Signal

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.models.bundle import QuantModel

#: Label of the bundled default model entry.
DEFAULT_LABEL = "bundled default"


@dataclass(frozen=True)
class ModelEntry:
    """One choice in the model list.

    Attributes
    ----------
    label
        What the list shows; unique within the registry.
    source
        What :func:`napari_xrfquant.models.load_model` gets: None for the bundled
        default, a bundled model name, or a bundle directory / ``model.json`` path.
    """

    label: str
    source: str | None = None


class ModelRegistry:
    """Ordered, labelled model sources with a cache of loaded models.

    Signals
    -------
    changed
        Emitted (no arguments) after entries are added or removed.
    selection_changed
        Emitted with the label of the newly selected model.
    """

    changed = Signal()
    selection_changed = Signal(str)

    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {DEFAULT_LABEL: ModelEntry(DEFAULT_LABEL, None)}
        self._models: dict[str, Any] = {}
        self._selected = DEFAULT_LABEL
        self._lock = threading.Lock()

    # -- the model the widgets work with ---------------------------------
    @property
    def selected(self) -> str:
        """Label of the model chosen last in any widget (the inspector follows it)."""
        return self._selected if self._selected in self._entries else DEFAULT_LABEL

    def select(self, label: str) -> None:
        """Make ``label`` the selected model and tell listeners."""
        if label not in self._entries:
            raise KeyError(label)
        if label != self._selected:
            self._selected = label
            self.selection_changed.emit(label)

    def loaded(self, label: str) -> Any | None:
        """The model of entry ``label`` if it is loaded already (None otherwise; no loading)."""
        with self._lock:
            return self._models.get(label)

    def find_loaded(self, model_id: str) -> Any | None:
        """A loaded model whose ``model_id`` is ``model_id``, if any is cached."""
        with self._lock:
            models = list(self._models.values())
        for model in models:
            if getattr(model, "model_id", None) == model_id:
                return model
        return None

    # -- entries ---------------------------------------------------------
    def entries(self) -> list[ModelEntry]:
        """All entries, the bundled default first."""
        return list(self._entries.values())

    def labels(self) -> list[str]:
        """All entry labels, in order."""
        return list(self._entries)

    def get(self, label: str) -> ModelEntry:
        """The entry called ``label``.

        Raises
        ------
        KeyError
            If there is none.
        """
        return self._entries[label]

    def register(
        self, label: str, source: str | os.PathLike[str] | None, model: QuantModel | None = None
    ) -> ModelEntry:
        """Add (or replace) an entry and tell listeners.

        Parameters
        ----------
        label
            Name to show; an existing entry of that name is replaced.
        source
            Bundle directory, ``model.json`` path, bundled name, or None.
        model
            An already loaded model for this entry (skips loading it again).

        Returns
        -------
        ModelEntry
            The new entry.
        """
        entry = ModelEntry(str(label), None if source is None else str(source))
        with self._lock:
            self._entries[entry.label] = entry
            self._models.pop(entry.label, None)
            if model is not None:
                self._models[entry.label] = model
        self.changed.emit()
        return entry

    def register_path(self, path: str | os.PathLike[str]) -> ModelEntry:
        """Register a bundle file or directory under a label made from its path."""
        bundle = Path(path)
        directory = bundle.parent if bundle.is_file() else bundle
        label = f"{directory.name} ({directory.parent})"
        return self.register(label, directory)

    def unregister(self, label: str) -> None:
        """Remove an entry (the bundled default stays)."""
        if label == DEFAULT_LABEL:
            return
        with self._lock:
            removed = self._entries.pop(label, None)
            self._models.pop(label, None)
        if removed is not None:
            self.changed.emit()

    # -- models ----------------------------------------------------------
    def load(self, label: str) -> Any:
        """The loaded model of entry ``label`` (cached).

        Raises
        ------
        KeyError
            If there is no such entry.
        ModelBundleError
            If the bundle cannot be loaded.
        """
        with self._lock:
            cached = self._models.get(label)
            entry = self._entries[label]
        if cached is not None:
            return cached
        from napari_xrfquant.models import load_model

        model = load_model(entry.source)
        with self._lock:
            if self._entries.get(label) == entry:
                self._models[label] = model
        return model

    def cached(self, label: str) -> Any | None:
        """The model of ``label`` if it is already loaded, else None."""
        with self._lock:
            return self._models.get(label)


#: The registry every widget of the plugin uses.
model_registry = ModelRegistry()


def describe_model(model: QuantModel) -> str:
    """One line for the model list: elements, instrument and test error.

    Examples
    --------
    ``"Au, Ag, Cu, Ni, Zn · CXC pnCCD, 30 keV monochromatic, gold alloys · test MAE 0.12 wt%"``
    """
    parts = [", ".join(model.elements)]
    try:
        parts.append(str(model.instrument.name))
    except Exception:
        pass
    metadata = getattr(model, "metadata", {}) or {}
    level, level_mae = test_mae_at_level(metadata)
    mae = test_mae_wt_percent(metadata) if level_mae is None else level_mae
    if mae is None:
        parts.append("test MAE not recorded")
    elif level is not None:
        parts.append(f"test MAE {mae:.2f} wt% ({_level_text(level)})")
    else:
        parts.append(f"test MAE {mae:.2f} wt%")
    return " · ".join(parts)


#: The count level whose test MAE describes a model best: 1e4 counts per
#: spectrum is the upper end of the common case of the reference instrument.
PREFERRED_LEVELS = ("1e+04", "1e+03", "noiseless")
#: Where model.json keeps the simulated test set's figures, most trusted first.
TEST_SET_KEYS = ("test", "test_nominal", "training_test")


def test_mae_at_level(metadata: dict[str, Any]) -> tuple[str | None, float | None]:
    """The test MAE (wt%) at one count level of ``metrics["test"]["levels"]``.

    The trainer records the simulated test set per count level (``"noiseless"``,
    ``"1e+03"``, ...), each with ``mae_wt``, under ``"test"``;
    ``scripts/evaluate_bundled_model.py`` writes the same under ``"test_nominal"``
    (and the trainer's figures under ``"training_test"``). Returns ``(level, mae)``
    for the first of :data:`PREFERRED_LEVELS` present (else any level), or
    ``(None, None)``.
    """
    metrics = metadata.get("metrics") or {}
    if not isinstance(metrics, dict):
        return None, None
    test = next(
        (metrics[key] for key in TEST_SET_KEYS if isinstance(metrics.get(key), dict)), None
    )
    levels = test.get("levels") if isinstance(test, dict) else None
    if not isinstance(levels, dict) or not levels:
        return None, None
    ordered = [lvl for lvl in PREFERRED_LEVELS if lvl in levels] + sorted(levels)
    for level in ordered:
        entry = levels[level]
        value = entry.get("mae_wt") if isinstance(entry, dict) else entry
        mean = _as_mean(value)
        if mean is not None:
            return str(level), mean
    return None, None


def _level_text(level: str) -> str:
    try:
        return f"{float(level):.0e} counts".replace("e+0", "e")
    except ValueError:
        return level


def test_mae_wt_percent(metadata: dict[str, Any]) -> float | None:
    """The overall test-set mean absolute error (wt%) recorded in ``model.json``.

    Looks in ``metadata["metrics"]`` for a number whose key names a test MAE
    (e.g. ``test_mae_wt_percent``); a per-element mapping is averaged.
    """
    metrics = metadata.get("metrics") or {}
    if not isinstance(metrics, dict):
        return None
    candidates = [key for key in metrics if "mae" in key.lower()]
    # prefer the simulated test set's overall figure over per-CRM or validation ones
    candidates.sort(key=lambda k: ("test" not in k.lower(), "crm" in k.lower(), len(k)))
    for key in candidates:
        value = _as_mean(metrics[key])
        if value is not None:
            return value
    test = metrics.get("test")
    if isinstance(test, dict):
        return test_mae_wt_percent({"metrics": test})
    return None


def _as_mean(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        numbers = [float(v) for v in value.values() if isinstance(v, (int, float))]
        return sum(numbers) / len(numbers) if numbers else None
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return sum(float(v) for v in value) / len(value)
    return None
