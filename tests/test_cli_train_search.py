"""`xrfquant train CONFIG.toml --search --trials N`: trials, best parameters, best config."""

from __future__ import annotations

import re

import pytest

from napari_xrfquant.cli import main
from napari_xrfquant.training.config import load_config

TINY = """
name = "tiny-search"
elements = ["Fe", "Ni"]
n_spectra = 400
epochs = 2
patience = 5
steps_per_epoch = 2
eval_counts = [10000.0]
device = "cpu"
seed = 5
"""


def test_search_refuses_zero_trials(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    assert main(["train", str(config), "--search", "--trials", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--trials 0" in err


def test_search_will_not_overwrite_a_best_config(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    best = tmp_path / "best.toml"
    best.write_text("keep me")
    assert main(["train", str(config), "--search", "--trials", "1", "--best-config",
                 str(best)]) == 2
    assert best.read_text() == "keep me"
    assert "exists" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_search_prints_trials_and_writes_the_best_config(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    best = tmp_path / "out" / "best.toml"
    status = main(["train", str(config), "--search", "--trials", "2", "--best-config", str(best)])
    out = capsys.readouterr().out
    assert status == 0, out
    trial_lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert len(trial_lines) == 2
    match = re.search(r"best trial (\d+): val loss ([0-9.e+-]+); hidden_layers=(\d+), "
                      r"neurons=(\d+), batch_size=(\d+), lr=([0-9.e+-]+)", out)
    assert match, out
    written = load_config(best)
    assert written.model.hidden_layers == int(match.group(3))
    assert written.model.neurons == int(match.group(4))
    assert written.batch_size == int(match.group(5))
    assert written.lr == pytest.approx(float(match.group(6)), rel=1e-2)
    assert written.elements == ["Fe", "Ni"] and written.n_spectra == 400
    assert 2 <= written.model.hidden_layers <= 4 and 25 <= written.model.neurons <= 500
