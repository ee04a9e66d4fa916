"""The sample cube, made from the simulator on first use (:mod:`napari_xrfquant.sample`)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xrfquant import sample as sample_module
from napari_xrfquant.io import read_cube, read_truth
from napari_xrfquant.sample import sample_cube_path

SAMPLE = sample_cube_path()


@pytest.fixture(scope="module")
def script():
    """The sample generator module (layout, illumination, build_sample)."""
    return sample_module
ELEMENTS = ("Au", "Ag", "Cu", "Ni", "Zn")

#: BAM certificates (shared/reference-instrument.md), wt% of Au, Ag, Cu, Ni, Zn.
CERTIFIED = {
    "ERM-EB506": (58.56, 3.90, 35.65, 0.0, 1.891),
    "ERM-EB507": (75.10, 3.02, 14.69, 4.99, 2.107),
    "ERM-EB508": (75.12, 24.90, 0.0, 0.0, 0.0),
}


@pytest.fixture(scope="module")
def cube():
    return read_cube(SAMPLE, lazy=False)


@pytest.fixture(scope="module")
def truth():
    return read_truth(SAMPLE)


def _label(truth, prefix: str) -> int:
    matches = [i for i, name in enumerate(truth.region_names) if name.startswith(prefix)]
    assert len(matches) == 1, f"{prefix!r} in {truth.region_names}"
    return matches[0]


def test_reads_as_full_cxc_frame(cube) -> None:
    assert cube.data.shape == (264, 264, 1024)
    assert cube.data.dtype == np.uint16
    assert cube.calibration_source == "file"
    # reference instrument: E = 0.0 keV + 0.035 keV * k
    np.testing.assert_allclose(cube.energy_keV, 0.035 * np.arange(1024), atol=1e-9)
    assert cube.metadata["pixel_size_um"] == pytest.approx(48.0)
    assert "instrument" in cube.metadata


def test_truth_maps_and_region_names(truth) -> None:
    assert truth is not None
    assert truth.elements == ELEMENTS
    assert truth.wt_percent.shape == (264, 264, 5)
    assert truth.wt_percent.dtype == np.float32
    assert truth.regions.shape == (264, 264)
    assert truth.region_names[0] == "background"
    for name in ("ERM-EB506", "ERM-EB507", "ERM-EB508", "gradient", "white-gold"):
        _label(truth, name)
    assert set(np.unique(truth.regions)) == set(range(len(truth.region_names)))


@pytest.mark.parametrize("crm", sorted(CERTIFIED))
def test_crm_regions_hold_the_certified_composition(truth, crm: str) -> None:
    mask = truth.regions == _label(truth, crm)
    rows, cols = np.nonzero(mask)
    # a uniform block of at least 40 x 40 pixels
    assert rows.max() - rows.min() + 1 >= 40 and cols.max() - cols.min() + 1 >= 40
    assert mask.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    np.testing.assert_allclose(
        truth.wt_percent[mask], np.broadcast_to(CERTIFIED[crm], (mask.sum(), 5)), atol=1e-4
    )


def test_gradient_moves_from_yellow_to_rose_gold(truth) -> None:
    mask = truth.regions == _label(truth, "gradient")
    cols = np.nonzero(mask.any(axis=0))[0]
    row = np.nonzero(mask.any(axis=1))[0][0]
    cu = truth.wt_percent[row, cols, ELEMENTS.index("Cu")]
    ag = truth.wt_percent[row, cols, ELEMENTS.index("Ag")]
    assert np.all(np.diff(cu) > 0) and np.all(np.diff(ag) < 0)
    sums = truth.wt_percent[mask].sum(axis=1)
    np.testing.assert_allclose(sums, 100.0, atol=1e-3)


def test_white_gold_inlay_has_nickel_and_no_silver(truth) -> None:
    wt = truth.wt_percent[truth.regions == _label(truth, "white-gold")]
    assert np.all(wt[:, ELEMENTS.index("Ni")] >= 10.0)
    assert np.all(wt[:, ELEMENTS.index("Au")] >= 75.0)


def test_background_is_air(cube, truth) -> None:
    air = truth.regions == 0
    assert air.sum() > 1000
    assert np.all(truth.wt_percent[air] == 0.0)
    totals = cube.total_counts()
    assert np.median(totals[air]) < 100


def test_counts_per_pixel_in_stated_range(cube, truth, script) -> None:
    totals = np.asarray(cube.total_counts(), dtype=np.float64)
    plate = truth.regions > 0
    # 2000-5000 expected counts; Poisson spread of a 5000-count total is +-71 (1 sigma)
    lo, hi = script.EDGE_COUNTS, script.PEAK_COUNTS
    assert totals[plate].min() >= lo - 5 * np.sqrt(lo)
    assert totals[plate].max() <= hi + 5 * np.sqrt(hi)
    assert totals[plate].max() - totals[plate].min() > 1000  # a real illumination profile


def test_pixels_follow_poisson_statistics(cube, truth, script) -> None:
    """In a uniform CRM region, totals scatter as Poisson around the illumination."""
    mask = truth.regions == _label(truth, "ERM-EB508")
    expected = script.illumination((264, 264))[mask]
    totals = np.asarray(cube.total_counts(), dtype=np.float64)[mask]
    z = (totals - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 0.1
    assert 0.9 < z.std() < 1.1


def test_crm_spectrum_shows_its_lines(cube, truth) -> None:
    """Summed EB506 spectrum: Cu K-alpha (8.05 keV) and Au L-alpha (9.71 keV) are peaks."""
    mask = truth.regions == _label(truth, "ERM-EB506")
    summed = cube.data[mask].sum(axis=0, dtype=np.int64)
    energy = cube.energy_keV
    for line_keV in (8.05, 9.71):
        k = int(np.argmin(np.abs(energy - line_keV)))
        window = summed[k - 2 : k + 3].max()
        base = np.median(summed[(energy > 4.0) & (energy < 6.0)])
        assert window > 50 * max(base, 1)
    # no nickel in EB506: nothing at Ni K-alpha above the neighbouring continuum
    ni = int(np.argmin(np.abs(energy - 7.48)))
    assert summed[ni] < 0.05 * summed[int(np.argmin(np.abs(energy - 8.05)))]


def test_cached_file_is_named_after_the_simulator(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(sample_module.SAMPLE_ENV, raising=False)
    monkeypatch.setenv(sample_module.CACHE_ENV, str(tmp_path))
    path = sample_cube_path(make=False)
    assert path.parent.parent == tmp_path and not path.exists()
    assert path.parent.name == f"sample-{sample_module.simulator_fingerprint()}"
    assert path.name == "cxc_gold_sample.h5"


def test_script_is_deterministic(script) -> None:
    a = script.build_sample((24, 24), seed=7)
    b = script.build_sample((24, 24), seed=7)
    np.testing.assert_array_equal(a["counts"], b["counts"])
    assert a["counts"].shape == (24, 24, 1024)
