"""The physics simulator as the training-data generator: nominal spectra and jitter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_xrfquant.physics import simulate
from napari_xrfquant.training.datasets import SimulatorSpectra

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def generator():
    return SimulatorSpectra(ELEMENTS)


def test_nominal_matches_simulate(generator):
    wt = np.array([[58.56, 3.90, 35.65, 0.0, 1.891], [75.12, 24.90, 0.0, 0.0, 0.0]])
    ours = generator.expected(torch.as_tensor(wt, dtype=torch.float32)).numpy()
    reference = np.asarray(simulate(wt, ELEMENTS))
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-5)
    expected = reference / reference.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-7)


def test_gain_jitter_moves_lines_in_proportion_to_energy(generator):
    wt = torch.tensor([[0.0, 0.0, 100.0, 0.0, 0.0]])  # pure Cu: K-alpha at 8.05 keV
    energy = generator.energy_keV
    window = (energy > 7.6) & (energy < 8.4)

    def centroid(spectrum: np.ndarray) -> float:
        return float(np.sum(spectrum[window] * energy[window]) / spectrum[window].sum())

    nominal = centroid(generator.expected(wt)[0].numpy())
    stretched = centroid(generator.expected(wt, {"gain_rel": 0.01})[0].numpy())
    # a 1 % larger gain puts a line 1 % higher on the channel axis, i.e. the
    # channel of 8.05 keV now reads 1 % more: the line appears ~1 % lower in nominal keV
    assert stretched == pytest.approx(nominal / 1.01, rel=2e-3)


def test_continuum_level_jitter_mixes_in_more_continuum(generator):
    wt = torch.tensor([[75.0, 25.0, 0.0, 0.0, 0.0]])
    fraction = generator.instrument.continuum.fraction
    nominal = generator.expected(wt)[0].numpy().astype(np.float64)
    doubled = generator.expected(wt, {"continuum_level_log10": np.log10(2.0)})[0].numpy()
    # spectrum = (1 - f) peaks + f continuum, each part summing to 1: doubling f
    # adds f (continuum - peaks)
    continuum = generator.simulator.continuum().detach().numpy().astype(np.float64)
    peaks = (nominal - fraction * continuum) / (1.0 - fraction)
    np.testing.assert_allclose(doubled, nominal + fraction * (continuum - peaks), atol=2e-6)
