"""Model bundles: round trip, checksum, and clear errors for corrupt or mismatched files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_xrfquant.errors import ModelBundleError
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.models.architectures import (
    InputSpec,
    QuantNet,
    make_bin_edges,
)
from napari_xrfquant.models.bundle import (
    METADATA_FILE,
    WEIGHTS_FILE,
    UncertaintyCalibration,
    build_metadata,
    load_model,
    save_bundle,
)
from napari_xrfquant.models.description import ModelConfig

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


def _network(arch: str = "mlp", sum_to_100: bool = True) -> QuantNet:
    energy = reference_instrument().energy_axis_keV()
    spec = InputSpec(make_bin_edges(energy, [(1.2, 14.5, 2), (14.5, 31.5, 8)]))
    torch.manual_seed(0)
    return QuantNet(spec, ModelConfig(type=arch, hidden_layers=2, neurons=16), 5, sum_to_100)


def _save(tmp_path, network: QuantNet, calibration=None):
    meta = build_metadata(
        name="test-model",
        elements=ELEMENTS,
        sum_to_100=network.sum_to_100,
        instrument=reference_instrument(),
        network=network,
        calibration=calibration,
    )
    return save_bundle(tmp_path / "bundle", network, meta)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_round_trip_gives_identical_predictions(tmp_path, arch):
    network = _network(arch)
    directory = _save(tmp_path, network)
    model = load_model(directory)
    assert model.elements == ELEMENTS
    np.testing.assert_allclose(model.energy_keV, reference_instrument().energy_axis_keV())
    assert model.instrument == reference_instrument()
    counts = torch.poisson(torch.full((7, 1024), 3.0), generator=torch.Generator().manual_seed(1))
    network.eval()
    with torch.no_grad():
        expected_mean, expected_sigma = network(counts)
    mean, sigma = model.predict(counts.numpy(), calibrated=False)
    np.testing.assert_allclose(mean, expected_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(sigma, expected_sigma.numpy(), rtol=1e-6)
    # loading through the model.json path works too
    assert load_model(directory / METADATA_FILE).model_id == model.model_id


def test_closure_and_non_negativity():
    counts = torch.poisson(torch.full((5, 1024), 2.0))
    closed = _network(sum_to_100=True).eval()
    open_ = _network(sum_to_100=False).eval()
    with torch.no_grad():
        mean, sigma = closed(counts)
        np.testing.assert_allclose(mean.sum(dim=1).numpy(), 100.0, rtol=1e-5)
        assert bool((sigma > 0).all())
        assert bool((open_(counts)[0] >= 0).all())


def test_calibration_scales_sigma(tmp_path):
    calibration = UncertaintyCalibration([0.0, 3.0, 9.0], [[2.0] * 5, [0.5] * 5])
    model = load_model(_save(tmp_path, _network(), calibration))
    low = np.full((1, 1024), 0.5)  # 512 counts: first bin
    high = np.full((1, 1024), 500.0)  # 5e5 counts: second bin
    for counts, factor in ((low, 2.0), (high, 0.5)):
        _, raw = model.predict(counts, calibrated=False)
        _, calibrated = model.predict(counts, calibrated=True)
        np.testing.assert_allclose(calibrated, raw * factor, rtol=1e-5)


def test_model_files_load_without_pickle(tmp_path):
    directory = _save(tmp_path, _network())
    assert (directory / WEIGHTS_FILE).read_bytes()[:8] != b"\x80\x02\x8a\x0a"  # no pickle magic
    meta = json.loads((directory / METADATA_FILE).read_text())
    assert meta["weights"]["sha256"] and meta["format_version"] == 1


def test_corrupt_weights_give_clear_error(tmp_path):
    directory = _save(tmp_path, _network())
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelBundleError, match="checksum"):
        load_model(directory)


def test_weights_from_another_architecture(tmp_path):
    directory = _save(tmp_path, _network())
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["architecture"]["neurons"] = 17
    meta["weights"]["sha256"] = ""
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="do not fit the architecture"):
        load_model(directory)


@pytest.mark.parametrize(("neurons", "message"), [
    (2_000_000_000, "neurons: must be at most 10000"),  # 16 EB of weights: never built
    (100_000, "neurons: must be at most 10000"),
    (5000, r"has shape \(16, \d+\), model.json describes \(5000, \d+\)"),  # 200 MB: no
    (8, r"model.json describes \(8, "),
])
def test_a_description_larger_or_smaller_than_the_weights_is_refused_unbuilt(
        tmp_path, monkeypatch, neurons, message):
    """The weights' header is compared with the described network on torch's meta device:
    nothing of the declared size is allocated."""
    import napari_xrfquant.models.architectures as architectures

    directory = _save(tmp_path, _network())
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["architecture"]["neurons"] = neurons  # the weights' checksum still matches
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    built_on = []
    build = architectures.build_network

    def spy(*args, **kwargs):
        network = build(*args, **kwargs)
        built_on.append(next(network.parameters()).device.type)
        return network

    monkeypatch.setattr(architectures, "build_network", spy)
    with pytest.raises(ModelBundleError, match=message) as info:
        load_model(directory)
    assert "\n" not in str(info.value)
    assert set(built_on) <= {"meta"}  # only the shape check was built


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, "not a napari-xrfquant model"),
        ({"format_version": 99}, "not supported"),
        ({"elements": ["Au", "Au", "Cu", "Ni", "Zn"]}, "elements: .*listed twice"),
        ({"elements": ["Au", "Xx", "Cu", "Ni", "Zn"]}, "elements: unknown element symbol 'Xx'"),
        ({"elements": ["gold", "Ag", "Cu", "Ni", "Zn"]}, "elements: unknown element symbol"),
        ({"elements": ["Au", "Ag"]}, "do not fit|shape"),
        ({"energy": {"n_channels": 1024, "offset_keV": 0.0}}, "energy.gain_keV: missing"),
        ({"weights": {"file": "../model.safetensors", "sha256": ""}}, "not a plain name"),
    ],
)
def test_bad_metadata(tmp_path, change, message):
    directory = _save(tmp_path, _network())
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta.update(change)
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match=message):
        load_model(directory)


def test_missing_and_not_json(tmp_path):
    with pytest.raises(ModelBundleError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    with pytest.raises(ModelBundleError, match="missing"):
        load_model(tmp_path / "x")
    (tmp_path / "x" / METADATA_FILE).write_text("{not json")
    with pytest.raises(ModelBundleError, match="not valid JSON"):
        load_model(tmp_path / "x")


def test_save_refuses_to_overwrite(tmp_path):
    network = _network()
    _save(tmp_path, network)
    with pytest.raises(FileExistsError):
        _save(tmp_path, network)


def test_make_bin_edges_cover_segments():
    energy = 0.035 * np.arange(1024)
    edges = make_bin_edges(energy, [(1.2, 14.5, 2), (14.5, 20.5, 8)])
    assert edges[0] == int(np.searchsorted(energy, 1.2))
    assert edges[-1] == int(np.searchsorted(energy, 20.5))
    widths = np.diff(edges)
    assert set(widths[:10].tolist()) == {2}
    assert np.all(widths > 0)
