"""The CPU fast path equals the general path of quantification within float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_xrfquant as xq
from napari_xrfquant.inference.engine import _quantify_chunk
from napari_xrfquant.inference.fused import FUSED_BLOCK, FusedCPUPass, supports
from napari_xrfquant.inference.resample import ModelInput
from napari_xrfquant.models.bundle import load_model

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def spectra():
    """Alloys at 30 to 3e5 counts, a spectrum without counts, more than one block."""
    rng = np.random.default_rng(4)
    wt = rng.dirichlet(np.ones(5), size=FUSED_BLOCK + 300) * 100
    counts = 10 ** rng.uniform(1.5, 5.5, size=len(wt))
    spectra = np.stack([xq.simulate(w[None], ELEMENTS, counts=c, seed=i)[0]
                        for i, (w, c) in enumerate(zip(wt[:64], counts[:64], strict=True))])
    spectra = np.concatenate([spectra] * (len(wt) // 64 + 1))[: len(wt)].astype(np.uint16)
    spectra[7] = 0
    return spectra


def _general(model, input_map, raw):
    return _quantify_chunk(model, input_map, raw, "cpu")


def _assert_same(fast, general):
    mean, sigma, fit, total = fast
    expected_mean, expected_sigma, expected_fit, expected_total = general
    np.testing.assert_allclose(total, expected_total, rtol=1e-6)  # equal for integer counts
    np.testing.assert_allclose(mean, expected_mean, atol=2e-3, equal_nan=True)  # wt%
    np.testing.assert_allclose(sigma, expected_sigma, rtol=1e-4, equal_nan=True)
    # at 3e5 counts a float32 deviance is good to about 2e-4 (either path, against float64)
    np.testing.assert_allclose(fit, expected_fit, rtol=5e-4, equal_nan=True)


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_pass_equals_the_general_path(model, spectra, threads):
    assert supports(model, "cpu", 0) and not supports(model, "cuda", 0)
    input_map = ModelInput(model, None, spectra.shape[1])
    fused = FusedCPUPass(model, input_map, threads=threads)
    try:
        got = fused(spectra)
    finally:
        fused.close()
    _assert_same(got, _general(model, input_map, spectra))
    assert np.isnan(got[0][7]).all() and np.isnan(got[2][7])


def test_scaled_and_resampled_data(model, spectra):
    """Float data (counts times a scale) and another energy grid take the same formulas."""
    energy = model.energy_keV
    finer = np.linspace(energy[0], energy[-1], 1500)
    edges = np.concatenate([[energy[0] - 0.5 * (energy[1] - energy[0])],
                            0.5 * (energy[1:] + energy[:-1]),
                            [energy[-1] + 0.5 * (energy[-1] - energy[-2])]])
    resampled = np.stack([np.diff(np.interp(
        np.concatenate([[finer[0]], 0.5 * (finer[1:] + finer[:-1]), [finer[-1]]]),
        edges, np.concatenate([[0], np.cumsum(s)]))) for s in spectra[:300]]).astype(np.float32)
    with pytest.warns(UserWarning, match="resampled"):
        input_map = ModelInput(model, finer, resampled.shape[1])
    fused = FusedCPUPass(model, input_map)
    _assert_same(fused(resampled), _general(model, input_map, resampled))
    scaled = spectra[:300].astype(np.float32) * np.float32(0.37)
    grid = ModelInput(model, None, spectra.shape[1])
    _assert_same(FusedCPUPass(model, grid)(scaled), _general(model, grid, scaled))


@pytest.mark.parametrize("sum_to_100", [True, False])
def test_numpy_head_equals_the_network_head(model, sum_to_100):
    head = model.network.head
    raw = torch.randn(50, 2 * head.n_elements) * 3
    original = head.sum_to_100
    head.sum_to_100 = sum_to_100
    try:
        expected = [t.numpy() for t in head.outputs(raw)]
        got = FusedCPUPass(model, ModelInput(model, None, len(model.energy_keV)))._head_outputs(
            raw.numpy())
    finally:
        head.sum_to_100 = original
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_quantify_uses_it_and_gives_the_general_numbers(model, spectra, monkeypatch):
    from napari_xrfquant.inference import engine

    fast = xq.quantify(spectra, model=model, device="cpu")
    monkeypatch.setattr(engine, "supports", lambda *args: False)
    general = xq.quantify(spectra, model=model, device="cpu")
    np.testing.assert_allclose(fast.concentrations, general.concentrations, atol=2e-3,
                               equal_nan=True)
    np.testing.assert_allclose(fast.fit_quality, general.fit_quality, rtol=5e-4, equal_nan=True)
