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


def _study(db):
    import optuna

    return optuna.load_study(study_name="xrfquant-search", storage=f"sqlite:///{db}")


def test_two_worker_processes_share_one_sqlite_study(tmp_path, capfd):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    db = tmp_path / "search.db"
    best = tmp_path / "best.toml"
    argv = ["train", str(config), "--search", "--trials", "4", "--storage", str(db),
            "--workers", "2", "--best-config", str(best)]
    assert main(argv) == 0
    out = capfd.readouterr().out  # the workers print from their own processes
    assert "2 workers on study 'xrfquant-search'" in out
    assert "[worker 1] trial" in out and "[worker 2] trial" in out
    trials = _study(db).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished()]
    assert len(finished) >= 4
    assert len({t.user_attrs["process"] for t in finished}) == 2  # both processes' trials
    assert load_config(best).model.neurons == _study(db).best_trial.params["neurons"]


def test_a_search_resumes_a_stored_study(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    db = tmp_path / "search.db"
    base = ["train", str(config), "--search", "--storage", str(db)]
    assert main([*base, "--trials", "2"]) == 0
    assert len(_study(db).trials) == 2
    assert main([*base, "--trials", "3"]) == 0  # --trials is the study's total
    assert len(_study(db).trials) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--search", "--workers", "2"], "give --storage"),
        (["--workers", "2", "--storage", "x.db"], "add --search"),
        (["--search", "--storage", "nosuchdialect://x/y"], "cannot open it"),
    ],
)
def test_storage_options_refused_in_one_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    assert main(["train", str(config), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
