"""The spectrum-generator network: trained on the simulator, saved, a training data source."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_xrfquant.cli import main
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.training.generator import load_generator

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generator") / "gen"
    assert main(["generator", "-o", str(folder), "--spectra", "3000", "--epochs", "12"]) == 0
    return folder


def test_generator_agrees_with_the_simulator(generator_dir, capsys):
    from napari_xrfquant.physics import simulate

    meta = json.loads((generator_dir / "generator.json").read_text())
    assert meta["elements"] == ELEMENTS and meta["hidden"] == [50, 500]
    assert meta["agreement"]["mean_abs_over_max"] < 0.01  # the published target: 1 %
    generator = load_generator(generator_dir)
    wt = np.random.default_rng(7).dirichlet(np.ones(5), size=50) * 100  # fresh compositions
    generated = generator.expected(torch.as_tensor(wt, dtype=torch.float32)).numpy()
    simulated = simulate(wt, ELEMENTS)
    per_spectrum = np.abs(generated - simulated).mean(axis=1) / simulated.max(axis=1)
    assert per_spectrum.mean() < 0.01
    np.testing.assert_allclose(generated.sum(axis=1), 1.0, rtol=1e-5)


def test_a_training_config_takes_the_generator(generator_dir, tmp_path):
    from napari_xrfquant.models.bundle import load_model

    config = tmp_path / "gen.toml"
    config.write_text(f"""
name = "from-generator"
simulator = "generator"
generator = "{generator_dir}"
n_spectra = 600
epochs = 2
batch_size = 128
device = "cpu"
eval_counts = [1e3]

[model]
hidden_layers = 1
neurons = 16
decoder_neurons = 16
""")
    assert main(["train", str(config), "-o", str(tmp_path / "bundle")]) == 0
    assert load_model(tmp_path / "bundle").metadata["training"]["config"]["simulator"] == (
        "generator")


def test_a_generator_of_other_elements_is_refused(generator_dir, tmp_path, capsys):
    from napari_xrfquant.training.config import TrainingConfig
    from napari_xrfquant.training.generator import spectrum_source

    config = TrainingConfig(elements=["Fe", "Ni", "Cr"], simulator="generator",
                            generator=str(generator_dir))
    with pytest.raises(XRFQuantError, match="the config asks for Fe, Ni, Cr"):
        spectrum_source(config)
    with pytest.raises(ValueError, match="needs the generator folder"):
        TrainingConfig(simulator="generator")
    with pytest.raises(XRFQuantError, match="no readable spectrum generator"):
        load_generator(tmp_path)
