"""quantify(): chunking, dask, resampling, fit quality and input errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch

import napari_xrfquant as xq
from napari_xrfquant.errors import ModelBundleError, XRFQuantError
from napari_xrfquant.inference import (
    channel_edges_keV,
    iter_quantify,
    poisson_fit_quality,
    resample_counts,
)
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.models.architectures import (
    InputSpec,
    QuantNet,
    make_bin_edges,
)
from napari_xrfquant.models.bundle import (
    UncertaintyCalibration,
    build_metadata,
    load_model,
    save_bundle,
)
from napari_xrfquant.models.description import ModelConfig

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    energy = reference_instrument().energy_axis_keV()
    spec = InputSpec(make_bin_edges(energy, [(1.2, 14.5, 2), (14.5, 31.5, 8)]))
    torch.manual_seed(0)
    network = QuantNet(spec, ModelConfig(hidden_layers=2, neurons=32), 5, True)
    calibration = UncertaintyCalibration([0.0, 3.0, 9.0], [[1.5] * 5, [0.7] * 5])
    meta = build_metadata(
        name="random-test-model",
        elements=ELEMENTS,
        sum_to_100=True,
        instrument=reference_instrument(),
        network=network,
        calibration=calibration,
    )
    return load_model(save_bundle(tmp_path_factory.mktemp("m") / "b", network, meta))


@pytest.fixture(scope="module")
def cube():
    rng = np.random.default_rng(0)
    level = rng.uniform(0.2, 20.0, size=(9, 7, 1))
    return rng.poisson(level * np.ones((9, 7, 1024))).astype(np.uint16)


def test_shapes_and_closure(model, cube):
    result = xq.quantify(cube, model=model, device="cpu")
    assert result.concentrations.shape == (9, 7, 5)
    assert result.uncertainty.shape == (9, 7, 5)
    assert result.fit_quality.shape == (9, 7)
    assert result.elements == ELEMENTS and result.model_id == model.model_id
    np.testing.assert_allclose(result.concentrations.sum(axis=-1), 100.0, rtol=1e-4)
    assert np.all(result.uncertainty > 0) and np.all(np.isfinite(result.fit_quality))


def test_one_chunk_equals_many_chunks_and_dask(model, cube):
    whole = xq.quantify(cube, model=model, device="cpu")
    chunked = xq.quantify(cube, model=model, device="cpu", batch_size=5)
    lazy = xq.quantify(
        da.from_array(cube, chunks=(2, 3, 256)), model=model, device="cpu", batch_size=10
    )
    for other in (chunked, lazy):
        np.testing.assert_allclose(other.concentrations, whole.concentrations, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(other.uncertainty, whole.uncertainty, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(other.fit_quality, whole.fit_quality, rtol=1e-4)


def test_single_spectrum_and_list(model, cube):
    one = xq.quantify(cube[2, 3], model=model, device="cpu")
    assert one.concentrations.shape == (5,)
    full = xq.quantify(cube, model=model, device="cpu")
    np.testing.assert_allclose(one.concentrations, full.concentrations[2, 3], rtol=1e-5)
    assert xq.quantify(cube[0].tolist(), model=model, device="cpu").concentrations.shape == (7, 5)


def test_calibration_factor_applied_by_count_bin(model):
    low = np.full((1, 1024), 0.5)  # ~500 counts in the input range: first bin
    raw = model.predict(low, calibrated=False)[1]
    result = xq.quantify(low, model=model, device="cpu")
    np.testing.assert_allclose(result.uncertainty, raw * 1.5, rtol=1e-5)


def test_iter_quantify_reports_progress_and_returns_result(model, cube):
    events = []
    generator = iter_quantify(cube, model=model, device="cpu", batch_size=14)
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            result = stop.value
            break
    assert (events[-1].done, events[-1].total, events[-1].stage) == (63, 63, "quantify")
    assert len(events) == 5
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert result.concentrations.shape == (9, 7, 5)


def test_empty_pixels_give_nan(model):
    data = np.zeros((2, 1024))
    data[1] = 5
    result = xq.quantify(data, model=model, device="cpu")
    assert np.all(np.isnan(result.concentrations[0])) and np.all(
        np.isfinite(result.concentrations[1])
    )


def test_resampling_conserves_counts():
    rng = np.random.default_rng(1)
    counts = rng.poisson(50.0, size=(3, 1024)).astype(float)
    source = 0.035 * np.arange(1024)
    target = -0.1 + 0.0213 * np.arange(1700)  # finer grid covering more than the source
    resampled = resample_counts(counts, source, target)
    np.testing.assert_allclose(resampled.sum(axis=1), counts.sum(axis=1), rtol=1e-10)
    # counts of a narrow window move with their energy: channel 300 is 10.5 keV
    spike = np.zeros(1024)
    spike[300] = 1000.0
    moved = resample_counts(spike, source, target)
    centre = float(np.sum(moved * target) / moved.sum())
    assert centre == pytest.approx(10.5, abs=0.01)


def test_channel_edges():
    edges = channel_edges_keV(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(edges, [0.5, 1.5, 2.5, 3.5])
    with pytest.raises(XRFQuantError, match="increasing"):
        channel_edges_keV(np.array([1.0, 1.0, 3.0]))


def test_other_calibration_is_resampled_with_warning(model):
    rng = np.random.default_rng(2)
    fine = 0.0175 * np.arange(2048)  # twice as many channels over the same range
    data = rng.poisson(3.0, size=(4, 2048)).astype(float)
    on_model_grid = resample_counts(data, fine, model.energy_keV)
    with pytest.warns(UserWarning, match="resampled"):
        result = xq.quantify(data, energy_keV=fine, model=model, device="cpu")
    direct = xq.quantify(on_model_grid, model=model, device="cpu")
    assert result.resampled
    np.testing.assert_allclose(result.concentrations, direct.concentrations, rtol=1e-3, atol=1e-3)


def test_data_not_covering_model_range_are_refused(model):
    short = 0.02 * np.arange(1024)  # ends at 20.5 keV; the model reads up to 31.5 keV
    with pytest.raises(ModelBundleError, match="cannot quantify"):
        xq.quantify(np.ones((2, 1024)), energy_keV=short, model=model, device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": np.ones((3, 512))}, "512 channels"),
        ({"data": np.ones((3, 1024)), "energy_keV": np.arange(5.0)}, "5 values"),
        ({"data": np.ones((3, 1024)), "device": "tpu"}, "unknown device"),
        ({"data": np.ones((3, 1024)), "batch_size": 0}, "batch_size"),
        ({"data": np.array(["a", "b"])}, "not counts|hold no spectra"),
    ],
)
def test_bad_input(model, kwargs, message):
    with pytest.raises(XRFQuantError, match=message):
        xq.quantify(model=model, **kwargs)


def test_fit_quality_is_about_one_for_poisson_noise():
    generator = torch.Generator().manual_seed(0)
    shape = torch.softmax(torch.randn(1, 300, generator=generator) * 2.0, dim=1)
    for total in (3e2, 1e4, 1e6):
        expected = shape.expand(4000, -1) * total
        observed = torch.poisson(expected, generator=generator)
        quality = poisson_fit_quality(observed, expected, n_parameters=0)
        assert float(quality.mean()) == pytest.approx(1.0, abs=0.03)
    # a spectrum with a line the model does not know fits badly
    expected = shape * 1e5
    observed = expected.clone()
    observed[0, 150] += 2000.0
    assert float(poisson_fit_quality(torch.poisson(observed), expected, 0)) > 2.0


def test_expected_deviance_table_equals_the_poisson_mean_deviance():
    """The lookup table against E[D] summed over every count up to far in the tail."""
    from scipy.special import gammaln, xlogy

    from napari_xrfquant.inference.fit_quality import (
        _LOG_LAMBDA_MAX,
        _LOG_LAMBDA_MIN,
        _TABLE_SIZE,
        expected_deviance_table,
    )

    table = expected_deviance_table()
    grid = np.linspace(_LOG_LAMBDA_MIN, _LOG_LAMBDA_MAX, _TABLE_SIZE)
    for index in (0, 400, 800, 1000, 1300, _TABLE_SIZE - 1):
        lam = 10.0 ** grid[index]
        x = np.arange(int(lam + 40 * np.sqrt(lam) + 100), dtype=np.float64)
        pmf = np.exp(xlogy(x, lam) - lam - gammaln(x + 1.0))
        deviance = 2.0 * (xlogy(x, x / lam) - (x - lam))
        assert table[index] == pytest.approx(float(np.sum(pmf * deviance)), rel=1e-9)
    assert table[-1] == pytest.approx(1.0, abs=1e-3)  # E[D] -> 1 at high counts
