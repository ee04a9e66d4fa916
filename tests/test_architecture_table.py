"""Adding an architecture touches one file: it registers its trunk in the table, and
the configuration, the trainer, the bundle loader and the Train dock all find it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_xrfquant.models.description import (
    ModelConfig,
    architectures,
    register_architecture,
    unregister_architecture,
)
from napari_xrfquant.training import REFERENCE_PEAKS, PeakSpectra, TrainingConfig, train

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


class GatedTrunk(nn.Module):
    """A test architecture with a setting of its own (``options["gates"]``)."""

    def __init__(self, n_features: int, neurons: int, gates: int) -> None:
        super().__init__()
        self.value = nn.Linear(n_features + 1, neurons)
        self.gate = nn.Linear(n_features + 1, neurons)
        self.mix = nn.Linear(neurons, gates)
        self.out_features = gates

    def forward(self, features: torch.Tensor, counts_input: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, counts_input], dim=1)
        return torch.relu(self.mix(torch.tanh(self.value(x)) * torch.sigmoid(self.gate(x))))


@pytest.fixture
def gated():
    @register_architecture("gated", "a gated layer, then a mix (test architecture)")
    def build(n_features: int, config: ModelConfig) -> nn.Module:
        return GatedTrunk(n_features, config.neurons, int(config.options.get("gates", 8)))

    yield "gated"
    unregister_architecture("gated")


def test_the_built_in_architectures_are_in_the_table():
    assert list(architectures())[:2] == ["mlp", "cnn"]
    with pytest.raises(ValueError, match="unknown architecture 'gated' \\(known: mlp, cnn"):
        ModelConfig(type="gated")
    with pytest.raises(ValueError, match="lower-case word"):
        register_architecture("Bad Name", "")


def test_a_registered_architecture_trains_saves_and_loads(gated, tmp_path):
    from napari_xrfquant.models import load_model

    config = TrainingConfig(name="gated-test", elements=ELEMENTS, n_spectra=1500, epochs=2,
                            batch_size=128, device="cpu", eval_counts=[1e4],
                            model={"type": gated, "neurons": 24, "options": {"gates": 12}})
    result = train(config, generator=PeakSpectra(ELEMENTS, REFERENCE_PEAKS))
    trunk = result.model.network.trunk
    assert isinstance(trunk, GatedTrunk) and trunk.out_features == 12
    directory = result.save(tmp_path / "gated")
    loaded = load_model(directory)
    assert loaded.metadata["architecture"]["type"] == "gated"
    assert loaded.metadata["architecture"]["options"] == {"gates": 12}
    spectra = 1e4 * PeakSpectra(ELEMENTS, REFERENCE_PEAKS).expected(
        torch.tensor([[60.0, 20, 20, 0, 0]])).numpy()
    np.testing.assert_allclose(loaded.predict(spectra)[0], result.model.predict(spectra)[0],
                               rtol=1e-5)


def test_the_train_dock_lists_a_registered_architecture(gated, make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xrfquant", "Train model")
    combo = widget.form.model_combo
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == list(architectures()) and "gated" in items
