"""AXS: a reconstruction loss through the simulator whose instrument learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_xrfquant.calibration.hidden import ELEMENTS, hidden_cube, hidden_instrument
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.instrument_parameters import parameter_values
from napari_xrfquant.training import REFERENCE_PEAKS, PeakSpectra, TrainingConfig
from napari_xrfquant.training.axs import Reconstruction, sample_unlabelled
from napari_xrfquant.training.config import AXSConfig, config_to_toml, load_config
from napari_xrfquant.training.loop import Trainer


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cube():
    return hidden_cube((4, 4), 2e4, seed=3)


def _config(**axs) -> TrainingConfig:
    settings = AXSConfig(unlabelled="memory", batch_size=16, **axs) if axs else None
    return TrainingConfig(
        name="tiny-axs",
        elements=list(ELEMENTS),
        n_spectra=300,
        epochs=2,
        steps_per_epoch=4,
        batch_size=32,
        device="cpu",
        eval_counts=[1e4],
        model={"hidden_layers": 1, "neurons": 32},
        axs=settings,
    )


def _run(config: TrainingConfig, cube) -> Trainer:
    trainer = Trainer(
        config,
        generator=PeakSpectra(list(ELEMENTS), REFERENCE_PEAKS, reference_instrument()),
        unlabelled=(cube.counts, cube.energy_keV) if config.axs else None,
    )
    for _event in trainer.events():
        pass
    return trainer


def test_beta_zero_reproduces_supervised_training(cube):
    supervised = _run(_config(), cube)
    axs = _run(_config(beta=0.0, follow=0.0), cube)
    plain, zero = supervised.current_result(), axs.current_result()
    for name, weights in plain.model.network.state_dict().items():
        assert torch.equal(weights, zero.model.network.state_dict()[name]), name
    assert [e.val_mae for e in supervised.history] == [e.val_mae for e in axs.history]
    record = zero.model.metadata["training"]["axs"]
    # the decoder was evaluated every step but nothing moved it
    assert all(e.reconstruction_loss > 0 for e in axs.history)
    for name, value in record["learned"].items():
        if name != "continuum_fraction":
            assert value == pytest.approx(record["start"][name], rel=1e-6), name
    assert plain.model.metadata["training"]["axs"] is None


def test_beta_positive_trains_the_instrument_and_saves_it(cube):
    trainer = _run(_config(beta=1.0), cube)
    result = trainer.current_result()
    record = result.model.metadata["training"]["axs"]
    assert record["beta"] == 1.0 and record["unlabelled_spectra"] == cube.counts[..., 0].size
    assert record["learned"]["gain_keV"] != record["start"]["gain_keV"]
    assert record["instrument"]["optic"]["model"] == "sigmoids"
    assert all(
        np.isfinite(e.val_reconstruction) and e.val_reconstruction > 0 for e in trainer.history
    )


def test_the_decoder_learns_the_hidden_instrument_from_unlabelled_spectra(cube):
    """The bundled network as a fixed encoder: only the instrument learns."""
    from napari_xrfquant.models import load_model

    network = load_model().network
    network.requires_grad_(False)
    spectra = sample_unlabelled(cube.counts, 1000.0, 10_000, seed=0)
    settings = AXSConfig(
        unlabelled="memory",
        batch_size=64,
        instrument_lr=0.1,
        learn=["gain_keV", "offset_keV", "noise_keV", "tail_fraction"],
    )
    decoder = Reconstruction(
        settings,
        ELEMENTS,
        reference_instrument(),
        spectra,
        cube.energy_keV,
        cube.energy_keV,
        "cpu",
        seed=0,
    )
    before = decoder.held_out_loss(network)
    for _ in range(60):
        decoder.loss(network).backward()
        decoder.step()
    after = decoder.held_out_loss(network)
    assert after < 0.8 * before
    learned = decoder.values()
    hidden = parameter_values(hidden_instrument(), decoder.names)
    start = parameter_values(reference_instrument(), decoder.names)
    for name in ("gain_keV", "offset_keV", "noise_keV"):
        assert abs(learned[name] - hidden[name]) < 0.5 * abs(start[name] - hidden[name]), name



def test_axs_settings_round_trip_and_are_checked(tmp_path):
    config = _config(beta=0.5, learn=["calibration", "optic"], exclude_keV=[(2.8, 3.1)])
    path = tmp_path / "axs.toml"
    path.write_text(config_to_toml(config))
    assert load_config(path) == config
    with pytest.raises(XRFQuantError, match="unknown instrument parameter 'gian_keV'"):
        TrainingConfig.from_dict({"axs": {"unlabelled": "c.h5", "learn": ["gian_keV"]}})
    with pytest.raises(XRFQuantError, match="beta"):
        TrainingConfig.from_dict({"axs": {"unlabelled": "c.h5", "beta": -1}})


def test_an_unlabelled_cube_without_bright_pixels_is_refused():
    with pytest.raises(XRFQuantError, match="no pixel of the unlabelled cube holds 1000 counts"):
        sample_unlabelled(np.ones((3, 3, 1024)) * 0.5, 1000.0, 10, seed=0)


def test_cli_train_with_axs(tmp_path, cube, capsys):
    from napari_xrfquant.cli import main
    from napari_xrfquant.models import load_model

    cube_file = tmp_path / "hidden.npy"
    np.save(cube_file, cube.counts)
    config = _config().replace(simulator="peaks")
    (tmp_path / "tiny.toml").write_text(config_to_toml(config))
    out = tmp_path / "model"
    argv = [
        "train",
        str(tmp_path / "tiny.toml"),
        "-o",
        str(out),
        "--axs",
        str(cube_file),
        "--learn",
        "calibration,noise_keV",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "reconstruction" in printed and "learned instrument: gain_keV" in printed
    record = load_model(out).metadata["training"]["axs"]
    assert set(record["learned"]) == {"gain_keV", "offset_keV", "noise_keV", "continuum_fraction"}
    assert main(["train", str(tmp_path / "tiny.toml"), "--beta", "2"]) == 2
    assert "need --axs CUBE" in capsys.readouterr().err


def test_axs_learns_from_the_users_standards_too(cube, tmp_path):
    labels = tmp_path / "labels.npy"
    np.save(labels, cube.labels)
    config = _config(beta=1.0, labels=str(labels),
                     standards={"1": "ERM-EB506", "2": "Au=75,Ag=15,Cu=10"})
    trainer = _run(config, cube)
    record = trainer.current_result().model.metadata["training"]["axs"]
    assert record["standard_spectra"] == 2 * 16  # two 4 x 4 regions
    assert record["standards"] == {"1": "ERM-EB506", "2": "Au=75,Ag=15,Cu=10"}
    np.save(labels, cube.labels[:, :-1])
    with pytest.raises(XRFQuantError, match="labels have shape"):
        _run(config, cube)
    np.save(labels, cube.labels)
    with pytest.raises(XRFQuantError, match="ERM-XX"):
        _run(_config(beta=1.0, labels=str(labels), standards={"1": "ERM-XX"}), cube)
    with pytest.raises(XRFQuantError, match="standards need the label image"):
        TrainingConfig.from_dict({"axs": {"unlabelled": "c.h5", "standards": {"1": "ERM-EB506"}}})
