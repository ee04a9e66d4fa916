"""Retraining on a calibrated instrument: fine-tune a model's weights in minutes,
or train a new one when the calibration started from an instrument file.

A fine-tune reuses the model's own training configuration (same elements, input
bins, layout, augmentations and count range); the spectra are simulated for the
calibrated instrument, training starts from the model's weights
(``TrainingConfig.init_from``) at a lower learning rate and stops when its time
budget is spent. A new model (:func:`fresh_config`) gets the default network
for the calibration's elements. Either way ``minutes`` bounds the whole run,
simulation included, and the bundle records where it came from.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from napari_xrfquant.models.description import ModelConfig
from napari_xrfquant.training.config import TrainingConfig

#: Spectra simulated for a fine-tune: enough for the instrument's change, quick to make.
RETRAIN_SPECTRA = 20_000
#: Learning rate of a fine-tune: a tenth of a fresh run's, so the start is not forgotten.
RETRAIN_LR = 3e-4
#: Spectra simulated for a new model (fewer when its budget is short: :mod:`..training.budget`).
FRESH_SPECTRA = 200_000


def retrain_config(
    model: Any,
    instrument_file: str | os.PathLike[str],
    minutes: float,
    n_spectra: int = RETRAIN_SPECTRA,
    seed: int = 0,
) -> TrainingConfig:
    """The fine-tuning run of ``model`` for the instrument in ``instrument_file``.

    Parameters
    ----------
    model
        A loaded bundle (:class:`~napari_xrfquant.models.bundle.QuantModel`) with a path.
    instrument_file
        The calibrated instrument.
    minutes
        Wall-time budget of the training epochs.
    """
    stored = dict(model.metadata.get("training", {}).get("config") or {})
    base = TrainingConfig.from_dict(stored) if stored else TrainingConfig(elements=model.elements)
    if model.path is None:
        raise ValueError("a model to fine-tune must be saved as a bundle first")
    return base.replace(
        name=f"{model.metadata['name']}-calibrated",
        elements=list(model.elements),
        init_from=str(Path(model.path).resolve()),
        n_spectra=int(n_spectra),
        training_set=None,
        cache=None,
        lr=RETRAIN_LR,
        schedule="constant",
        patience=25,
        **_budgeted(instrument_file, minutes, seed),
    )


def _budgeted(
    instrument_file: str | os.PathLike[str], minutes: float, seed: int
) -> dict[str, Any]:
    """What every retraining on a calibrated set-up shares: its instrument file, a
    time budget that ends it (no epoch count), its seed, the best device."""
    return {"instrument": str(Path(instrument_file).resolve()), "epochs": 100_000,
            "max_minutes": float(minutes), "seed": int(seed), "device": "auto"}


def fresh_config(
    elements: Sequence[str],
    instrument_file: str | os.PathLike[str],
    minutes: float,
    name: str,
    seed: int = 0,
) -> TrainingConfig:
    """A new model of ``elements`` for the instrument in ``instrument_file``, trained
    from random weights within ``minutes`` (simulation included).

    The bundled model's recipe (a two-layer MLP of 343 neurons, Adam at 2e-3,
    batches of 1024, the default augmentations) with its cosine schedule paced
    to end with the budget (:func:`~napari_xrfquant.training.budget.pace_to_budget`)
    and no early stop before it.
    """
    return TrainingConfig(
        name=name,
        elements=list(elements),
        n_spectra=FRESH_SPECTRA,
        lr=2e-3,
        batch_size=1024,
        schedule="cosine",
        patience=100_000,
        model=ModelConfig(type="mlp", hidden_layers=2, neurons=343),
        **_budgeted(instrument_file, minutes, seed),
    )


def stated_energy_grid(energy_keV: Any) -> dict[str, Any]:
    """``model.json["energy"]`` for the channel axis a cube's file states.

    A model retrained on a calibrated instrument reads the cube's channels as
    they are: channel k of the cube is channel k of the model. Its grid is
    therefore the axis the file states, while its instrument holds the fitted
    calibration the training spectra were simulated with; other cubes of the
    same set-up, stating the same axis, are then not resampled.
    """
    import numpy as np

    energy = np.asarray(energy_keV, dtype=np.float64)
    k = np.arange(energy.size, dtype=np.float64)
    quadratic, gain, offset = np.polyfit(k, energy, 2)
    if abs(quadratic) * energy.size**2 < 1e-6:  # a linear axis stays exactly linear
        quadratic, (gain, offset) = 0.0, np.polyfit(k, energy, 1)
    return {
        "n_channels": int(energy.size),
        "offset_keV": float(offset),
        "gain_keV": float(gain),
        "quadratic_keV": float(quadratic),
        "formula": "E_keV(k) = offset_keV + gain_keV * k + quadratic_keV * k^2 as the "
        "calibrated cube's file states it; the instrument holds the fitted calibration",
    }


def provenance(
    cube: str, standards: Mapping[int, Any], result: Any, model_id: str | None
) -> dict[str, Any]:
    """``model.json["training"]["provenance"]`` of a model retrained after a calibration."""
    import torch
    import xraylib

    from napari_xrfquant import __version__

    return {
        "source_cube": cube,
        "standards": {str(label): standard.name for label, standard in standards.items()},
        "calibration": {
            name: {"value": result.values[name], "sigma": result.sigma[name]}
            for name in result.names
        },
        "fine_tuned_from": model_id,  # None: trained from random weights
        "versions": {
            "napari_xrfquant": __version__,
            "torch": torch.__version__,
            "xraylib": getattr(xraylib, "__version__", "unknown"),
            "python": platform.python_version(),
        },
    }
