"""TrainingConfig: TOML round trip and one-line errors for bad settings."""

from __future__ import annotations

import pytest

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.training.config import TrainingConfig, load_config, save_config


def test_toml_round_trip(tmp_path):
    config = TrainingConfig(name="x", elements=["Fe", "Cu"], epochs=3)
    config.model.hidden_layers = 2
    config.model.neurons = 343
    path = save_config(config, tmp_path / "c.toml")
    loaded = load_config(path)
    assert loaded == config
    with pytest.raises(FileExistsError):
        save_config(config, path)


def test_minimal_file_uses_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('elements = ["Au", "Ag"]\nepochs = 5\n[model]\nneurons = 12\n')
    config = load_config(path)
    assert config.elements == ["Au", "Ag"] and config.epochs == 5
    assert config.model.neurons == 12 and config.model.hidden_layers == 3


def test_relative_instrument_path(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('instrument = "inst.toml"\n')
    assert load_config(path).instrument_path() == tmp_path / "inst.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense = 1\n", r"c\.toml: nonsense: unknown setting"),
        ("[model]\nwidth = 3\n", r"c\.toml: model\.width: unknown setting"),
        ("epochs = 0\n", "epochs"),
        ('loss = "mse"\n', "loss"),
        ("counts_min = 10\ncounts_max = 1\n", "counts range"),
        ("elements = [\n", "not a valid TOML"),
    ],
)
def test_bad_settings(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(XRFQuantError, match=message):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(XRFQuantError, match="cannot read"):
        load_config(tmp_path / "none.toml")
