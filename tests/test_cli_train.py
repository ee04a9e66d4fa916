"""``xrfquant train``: a tiny config trains, prints epochs and writes a loadable bundle."""

from __future__ import annotations

import pytest

from napari_xrfquant.cli import main
from napari_xrfquant.models.bundle import load_model

TINY = """
name = "tiny-cli"
simulator = "peaks"
n_spectra = 600
epochs = 2
batch_size = 128
device = "cpu"
eval_counts = [1e3]

[model]
hidden_layers = 1
neurons = 16
decoder_neurons = 16
"""


def test_train_writes_bundle(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    assert main(["train", str(config), "-o", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "epoch    1" in out and "epoch    2" in out and "1e+03: MAE" in out
    model = load_model(tmp_path / "bundle")
    assert model.metadata["name"] == "tiny-cli"
    assert model.metadata["training"]["config"]["n_spectra"] == 600
    # a second run refuses to replace the bundle unless asked
    assert main(["train", str(config), "-o", str(tmp_path / "bundle")]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [("epochs = -1\n", "epochs"), ("bogus = 1\n", "bogus: unknown setting")],
)
def test_bad_config_exits_with_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_config(tmp_path, capsys):
    assert main(["train", str(tmp_path / "none.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err
