"""An honest calibration: defaults that follow the set-up and the data, no sigma for
what the data did not measure, sigma widened by misfit, and a warning that says
where and why the calibrated set-up still misses the data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from napari_xrfquant.calibration.hidden import ELEMENTS, STANDARDS, UNKNOWN_WT_PERCENT
from napari_xrfquant.calibration.session import iter_calibration
from napari_xrfquant.instrument import Instrument, load_instrument, reference_instrument
from napari_xrfquant.jobs import drive
from napari_xrfquant.physics.standards import library

STANDARD_LABELS = {i + 1: library()[name] for i, name in enumerate(STANDARDS)}
TRUTH = np.array([*[library()[n].vector(list(ELEMENTS)) for n in STANDARDS],
                  *UNKNOWN_WT_PERCENT])


def _cube(truth: Instrument, elements=ELEMENTS, wt=TRUTH, seed=0):
    """Seven 2 x 2 regions (3 standards, 4 unknown alloys) of 2e5 counts a pixel."""
    from napari_xrfquant.physics import simulate

    spectra = simulate(wt, list(elements), instrument=truth)
    labels = np.repeat(np.arange(1, len(wt) + 1), 2)[None, :].repeat(2, axis=0)
    return np.random.default_rng(seed).poisson(spectra[labels - 1] * 2e5), labels


def _calibrate(counts, labels, **options):
    reference = reference_instrument()
    return drive(iter_calibration(counts, reference.energy_axis_keV(), ELEMENTS, reference,
                                  labels=labels, standards=STANDARD_LABELS, n_clusters=4,
                                  **options))


def _unknowns_error(result) -> float:
    """Largest wt% error of the clusters, each matched to its nearest unknown alloy."""
    unknown = np.asarray(UNKNOWN_WT_PERCENT)
    errors = []
    for row in result.groups.wt_percent[~result.groups.fixed]:
        nearest = unknown[np.abs(unknown - row).sum(axis=1).argmin()]
        errors.append(float(np.abs(nearest - row).max()))
    return max(errors)


def test_a_setup_the_data_agree_with_stays_as_it_is():
    """The reference set-up has no optic: the defaults free none, and "before" is the
    set-up exactly as it is, so before and after both score about 1."""
    counts, labels = _cube(reference_instrument())
    result = _calibrate(counts, labels, max_seconds=60.0)
    assert not any(name.startswith("optic") for name in result.names)
    assert "pileup_fraction" not in result.names  # no sum peaks in these data
    assert result.start.optic is None
    assert np.median(result.fit_quality_before) < 1.2
    assert np.median(result.fit_quality_after) < 1.2
    assert result.flags == {} and result.warning is None
    assert result.sigma_scale == pytest.approx(1.0, abs=0.1)


def test_the_defaults_find_pile_up_and_5x_scatter_and_keep_the_compositions():
    truth = reference_instrument().replace(
        **{"detector.pileup_fraction": 0.004, "scatter.scale": 5.0})
    counts, labels = _cube(truth)
    result = _calibrate(counts, labels, max_seconds=60.0)
    assert "pileup_fraction" in result.names  # the data called for it
    assert abs(result.values["pileup_fraction"] - 0.004) < 3 * result.sigma["pileup_fraction"]
    assert abs(result.values["scatter_scale"] - 5.0) < 3 * result.sigma["scatter_scale"]
    assert np.median(result.fit_quality_before) > 2.0  # the set-up as it was misses both
    assert np.all(result.fit_quality_after < 1.3)
    assert _unknowns_error(result) < 0.5  # wt%


def test_parameters_at_a_limit_or_outside_the_data_get_no_sigma(tmp_path):
    """An optic freed on data that end at 21 keV: its high edge runs off to the edge of
    its range, beyond the data; it is flagged, gets no sigma and is not "pinned"."""
    from napari_xrfquant.calibration.session import write_calibration

    counts, labels = _cube(reference_instrument())
    result = _calibrate(counts, labels, free=["calibration", "optic"], max_seconds=30.0)
    flagged = set(result.flags)
    assert flagged & {"optic_high_keV", "optic_high_width_keV"}
    for name in flagged:
        assert math.isnan(result.sigma[name]) and name in result.not_pinned
    for name in ("gain_keV", "offset_keV"):
        assert name not in flagged and result.sigma[name] > 0
    write_calibration(tmp_path, result, ELEMENTS, "test")
    record = json.loads((tmp_path / "calibration.json").read_text())
    for name in flagged:
        entry = record["parameters"][name]
        assert entry["sigma"] is None and entry["pinned"] is False and entry["flag"]


def test_a_missing_element_is_named_with_its_range_and_widens_sigma():
    """Fe in the sample, not in the list: the fit quality stays high, sigma is scaled by
    its square root, and the warning names 6.2-6.6 keV and Fe Ka."""
    from napari_xrfquant.calibration.diagnosis import MISFIT_QUALITY

    wt = np.concatenate([TRUTH * 0.97, np.full((len(TRUTH), 1), 3.0)], axis=1)
    counts, labels = _cube(reference_instrument(), elements=[*ELEMENTS, "Fe"], wt=wt)
    result = _calibrate(counts, labels, free=["calibration", "noise_keV"], max_seconds=30.0)
    assert result.fit_quality > MISFIT_QUALITY
    assert result.sigma_scale == pytest.approx(math.sqrt(result.fit_quality))
    assert result.warning is not None and "Fe Ka" in result.warning
    first = result.misfit[0]
    assert first.low_keV < 6.40 < first.high_keV and first.data_above
    assert first.share > 0.5


def test_the_cause_of_a_residual_is_told_apart():
    """Each usual suspect at its energy: scatter, the air's Ar, sum peaks, an own line."""
    from napari_xrfquant.calibration.diagnosis import likely_cause

    reference = reference_instrument()
    beam = reference.max_beam_energy_keV
    assert "scatter" in likely_cause(beam - 0.1, beam + 0.1, True, ELEMENTS, reference, [])
    assert "Ar K" in likely_cause(2.9, 3.0, True, ELEMENTS, reference, [])
    # Au La + Au La at 19.4 keV lies below the Compton peak of this beam: Cu Ka + Cu Ka
    sums = likely_cause(16.0, 16.2, True, ["Cu"], reference, [])
    assert "pile-up" in sums and "free pileup_fraction" in sums
    assert "Cu Ka" in likely_cause(7.95, 8.1, False, ["Cu"], reference, [])
    assert "exclude the range" in likely_cause(4.0, 4.1, False, ["Cu"], reference, [])
    # a rock's oxygen (listed as its matrix, no line) is no obstacle
    assert "Fe Ka" in likely_cause(6.3, 6.5, False, ["Si", "Fe", "O"], reference, [])
    # an Rh tube's scattered L lines lie beside the air's Ar Ka: both are named
    breadboard = load_instrument(Path(__file__).resolve().parents[1] / "sample_data"
                                 / "pixl_breadboard" / "instrument.toml")
    both = likely_cause(2.74, 3.04, False, ["Si", "Ca", "Fe"], breadboard, [])
    assert both.startswith("scatter of the") and "; or Ar K of the air path" in both


def test_the_cli_says_the_warning_and_writes_it(tmp_path, capsys):
    from napari_xrfquant.cli import main
    from napari_xrfquant.io import write_cxc_hdf5
    from napari_xrfquant.physics import simulate

    reference = reference_instrument()
    spectra = simulate(np.array([[60.0, 10.0, 27.0, 3.0]]), ["Au", "Ag", "Cu", "Fe"],
                       instrument=reference)
    cube = np.random.default_rng(2).poisson(np.broadcast_to(spectra[0] * 5e4, (4, 4, 1024)))
    path = write_cxc_hdf5(tmp_path / "cube.h5", cube.astype(np.uint32),
                          reference.energy_axis_keV())
    instrument = tmp_path / "reference.toml"
    from napari_xrfquant.instrument import save_instrument

    save_instrument(reference, instrument)
    code = main(["calibrate", str(path), "-o", str(tmp_path / "out"), "--instrument",
                 str(instrument), "--elements", "Au,Ag,Cu", "--free", "calibration",
                 "--clusters", "1", "--max-seconds", "20", "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "warning" in err and "Fe Ka" in err
    record = json.loads((tmp_path / "out" / "calibration.json").read_text())
    assert record["warnings"] and "Fe Ka" in record["warnings"][0]
    assert record["residual_ranges"][0]["low_keV"] < 6.4 < record["residual_ranges"][0]["high_keV"]
    assert record["sigma_scaled_by"] > 1.0


def test_calibrate_from_an_instrument_trains_a_new_model_in_its_budget(tmp_path):
    """``calibrate --instrument --elements --retrain``: no model to start from, so a new
    one is trained for the calibrated set-up; it reads spectra of that set-up."""
    from napari_xrfquant.cli import main
    from napari_xrfquant.inference import quantify
    from napari_xrfquant.instrument import save_instrument
    from napari_xrfquant.io import write_cxc_hdf5
    from napari_xrfquant.models.bundle import load_model
    from napari_xrfquant.physics import simulate

    reference = reference_instrument()
    rng = np.random.default_rng(0)
    wt = rng.dirichlet(np.ones(3), size=36) * 100
    spectra = simulate(wt, ["Au", "Ag", "Cu"], instrument=reference)
    cube = rng.poisson(spectra.reshape(6, 6, -1) * 2e4).astype(np.uint32)
    path = write_cxc_hdf5(tmp_path / "cube.h5", cube, reference.energy_axis_keV())
    save_instrument(reference, tmp_path / "set-up.toml")
    code = main(["calibrate", str(path), "-o", str(tmp_path / "out"), "--instrument",
                 str(tmp_path / "set-up.toml"), "--elements", "Au,Ag,Cu", "--free",
                 "calibration,noise_keV", "--clusters", "4", "--max-seconds", "10",
                 "--retrain", "--minutes", "0.25", "--quiet"])
    assert code == 0
    model = load_model(tmp_path / "out" / "model")
    assert list(model.elements) == ["Au", "Ag", "Cu"]
    assert model.metadata["training"]["provenance"]["fine_tuned_from"] is None
    truth = rng.dirichlet(np.ones(3), size=200) * 100
    counts = rng.poisson(simulate(truth, ["Au", "Ag", "Cu"], instrument=reference) * 1e5)
    found = quantify(counts, reference.energy_axis_keV(), model=model, device="cpu")
    guess = np.abs(truth.mean(axis=0) - truth).mean()  # the same answer for every pixel
    # 15 s of training (about 2 wt% here, 15 for the constant guess); loose for a slow CI
    assert np.abs(found.concentrations - truth).mean() < 0.5 * guess
