"""Physics refinement at quantify time: the network's answer starts a Poisson fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_xrfquant as xq
from napari_xrfquant.calibration.hidden import hidden_cube, hidden_instrument
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.refine import profile_amounts
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.models import load_model
from napari_xrfquant.physics import simulate


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def cube():
    return hidden_cube((4, 4), 2e4, seed=5)


def _region_mae(concentrations, labels, truth) -> float:
    means = np.array([concentrations[labels == k].mean(axis=0) for k in range(1, 8)])
    return float(np.abs(means - truth).mean())


def test_refinement_on_the_measuring_instrument_recovers_the_truth(model, cube):
    network = xq.quantify(cube.counts, cube.energy_keV, model=model, device="cpu")
    refined = xq.quantify(cube.counts, cube.energy_keV, model=model, device="cpu", refine=4,
                          instrument=hidden_instrument())
    assert _region_mae(network.concentrations, cube.labels, cube.wt_percent) > 3.0
    assert _region_mae(refined.concentrations, cube.labels, cube.wt_percent) < 0.3
    assert 0.8 < float(np.median(refined.fit_quality)) < 1.3
    assert np.median(network.fit_quality) > 3.0  # the network's own misfit, flagged
    assert refined.concentrations.sum(axis=-1) == pytest.approx(100.0, abs=1e-3)


def test_refined_sigma_covers_the_errors(model):
    rng = np.random.default_rng(0)
    truth = np.array([[75.0, 12.5, 12.5, 0, 0], [37.5, 55.0, 7.5, 0, 0], [58.5, 9, 32.5, 0, 0]])
    spectra = simulate(truth, list(model.elements), instrument=reference_instrument())
    rows = np.repeat(np.arange(3), 64)
    counts = rng.poisson(spectra[rows] * 3e4).astype(np.float32)
    result = xq.quantify(counts, None, model=model, device="cpu", refine=3)
    major = slice(0, 3)  # absent elements sit at the simplex edge: no Gaussian there
    z = (result.concentrations - truth[rows])[:, major] / result.uncertainty[:, major]
    assert 0.55 < float((np.abs(z) < 1).mean()) < 0.85
    assert float(np.median(result.fit_quality)) == pytest.approx(1.0, abs=0.1)


def test_profiled_amounts_are_the_poisson_optimum():
    rng = np.random.default_rng(0)
    peaks = torch.as_tensor(rng.dirichlet(np.ones(50), size=3))
    continuum = torch.full((50,), 1 / 50, dtype=torch.float64)
    truth = torch.tensor([[900.0, 100.0], [500.0, 500.0], [1000.0, 0.0]], dtype=torch.float64)
    expected = truth[:, :1] * peaks + truth[:, 1:] * continuum
    amounts = profile_amounts(expected, peaks, continuum, steps=2000)
    assert amounts.numpy() == pytest.approx(truth.numpy(), abs=2.0)
    assert amounts.sum(dim=1).numpy() == pytest.approx(expected.sum(dim=1).numpy())


def test_bad_refinement_requests_are_refused(model, cube):
    with pytest.raises(XRFQuantError, match="refine must be 0 or a positive"):
        xq.quantify(cube.counts[:1], cube.energy_keV, model=model, device="cpu", refine=-1)
    shorter = hidden_instrument().replace(**{"detector.n_channels": 512})
    with pytest.raises(XRFQuantError, match="has 512 channels, the data 1024"):
        xq.quantify(cube.counts[:1], cube.energy_keV, model=model, device="cpu", refine=1,
                    instrument=shorter)


def test_cli_refine_options(tmp_path, cube, capsys):
    from napari_xrfquant.cli import main
    from napari_xrfquant.instrument import save_instrument
    from napari_xrfquant.models.bundle import BUNDLED_DIR

    path = tmp_path / "hidden.npy"
    np.save(path, cube.counts[:, :8])
    instrument = save_instrument(hidden_instrument(), tmp_path / "instrument.toml")
    # with a model, --instrument is the instrument of --refine (without a model it
    # quantifies with the simulator: tests/test_element_search.py)
    assert main(["quantify", str(path), "-o", str(tmp_path / "a"), "--model",
                 str(BUNDLED_DIR), "--instrument", str(instrument), "--quiet"]) == 2
    assert "give --refine N too" in capsys.readouterr().err
    assert main(["quantify", str(path), "-o", str(tmp_path / "b"), "--refine", "2",
                 "--instrument", str(instrument), "--quiet"]) == 0
    assert (tmp_path / "b" / "hidden_fit_quality.tif").exists()
