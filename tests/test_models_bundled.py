"""The bundled default model: loads, documents itself, and quantifies the gold CRMs."""

from __future__ import annotations

import numpy as np
import pytest

import napari_xrfquant as xq
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.models.bundle import BUNDLED_DIR, list_bundled_models

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]
#: Certified values of the BAM gold CRMs (reference-instrument.md), wt%.
CRMS = {
    "ERM-EB506": [58.56, 3.90, 35.65, 0.0, 1.891],
    "ERM-EB507": [75.10, 3.02, 14.69, 4.99, 2.107],
    "ERM-EB508": [75.12, 24.90, 0.0, 0.0, 0.0],
}


@pytest.fixture(scope="module")
def model():
    return xq.load_model()


def test_bundled_model_describes_itself(model):
    assert model.elements == ELEMENTS and model.sum_to_100
    assert model.instrument == reference_instrument()
    assert model.metadata["name"] in list_bundled_models()
    assert (BUNDLED_DIR / "model.safetensors").stat().st_size < 5 * 2**20  # ships in git
    levels = model.metadata["metrics"]
    levels = levels.get("test", levels.get("training_test", {})).get("levels", {})
    assert {"noiseless", "1e+03", "1e+04", "1e+05"} <= set(levels)


def test_crms_at_1e5_counts(model):
    from napari_xrfquant.physics import simulate

    certified = np.array(list(CRMS.values()))
    certified = 100.0 * certified / certified.sum(axis=1, keepdims=True)
    spectra = simulate(np.repeat(certified, 50, axis=0), ELEMENTS, counts=1e5, seed=11)
    result = xq.quantify(spectra, model=model, device="cpu")
    mean = result.concentrations.reshape(3, 50, 5).mean(axis=1)
    sigma = np.median(result.uncertainty.reshape(3, 50, 5), axis=1)
    # the published network reached 0.7 wt% on measured CRMs; on simulated
    # spectra of its own instrument the model must do at least as well
    assert np.abs(mean - certified).max() < 1.5
    assert np.abs(mean - certified).mean() < 0.7
    assert np.all(sigma < 3.0)
