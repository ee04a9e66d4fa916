"""CXC HDF5: write, read back, lazy access, ground truth."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import SYNTH_GAIN_KEV, SYNTH_OFFSET_KEV, synthetic_counts
from napari_xrfquant.errors import CubeReadError, XRFQuantError
from napari_xrfquant.instrument import instrument_to_toml, reference_instrument
from napari_xrfquant.io import Cube, GroundTruth, read_cube, read_truth, write_cxc_hdf5


@pytest.fixture
def cxc_file(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    rows, cols, _ = counts.shape
    wt = np.zeros((rows, cols, 3), np.float32)
    wt[..., 0], wt[..., 1], wt[..., 2] = 75.0, 12.5, 12.5
    regions = np.zeros((rows, cols), np.uint8)
    regions[:, cols // 2 :] = 1
    path = write_cxc_hdf5(
        tmp_path / "scan.h5", counts, energy,
        metadata={"pixel_size_um": 48.0, "instrument": reference_instrument(), "operator": "ab"},
        truth_wt_percent=wt, truth_elements=["Au", "Ag", "Cu"],
        regions=regions, region_names=["left", "right"],
    )
    return path, counts, energy, wt, regions


def test_round_trip_counts_energy_and_metadata(cxc_file):
    path, counts, energy, _, _ = cxc_file
    with read_cube(path) as cube:
        assert isinstance(cube, Cube) and not cube.lazy
        assert cube.data.dtype == np.uint16
        np.testing.assert_array_equal(cube.data, counts)
        np.testing.assert_allclose(cube.energy_keV, energy, rtol=0, atol=1e-12)
        assert cube.calibration_source == "file"
        assert cube.offset_keV == pytest.approx(SYNTH_OFFSET_KEV, abs=1e-12)
        assert cube.gain_keV == pytest.approx(SYNTH_GAIN_KEV, rel=1e-12)
        assert cube.format == cube.metadata["format"] == "CXC HDF5"
        assert cube.metadata["pixel_size_um"] == 48.0
        assert cube.metadata["units"] == "counts"
        assert cube.metadata["attrs"]["operator"] == "ab"
        assert cube.metadata["instrument"] == instrument_to_toml(reference_instrument())
        assert cube.path == path


def test_layout_on_disk_matches_the_documented_format(cxc_file):
    path, counts, _, _, _ = cxc_file
    with h5py.File(path, "r") as file:
        assert file.attrs["format"] == "CXC" and int(file.attrs["format_version"]) == 1
        spectra = file["spectra"]
        assert spectra.shape == counts.shape and spectra.chunks is not None
        assert spectra.chunks[2] == counts.shape[2]  # a pixel's spectrum is in one chunk
        assert spectra.compression == "gzip"
        assert spectra.attrs["units"] == "counts"
        assert json.loads(file["truth/regions"].attrs["names"]) == ["left", "right"]


def test_total_counts_spectrum_and_region_agree_with_numpy(cxc_file):
    path, counts, _, _, _ = cxc_file
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.total_counts(), counts.sum(axis=-1, dtype=np.int64))
    np.testing.assert_array_equal(cube.spectrum(3, 7), counts[3, 7])
    mask = np.zeros(counts.shape[:2], bool)
    mask[2:5, 1:4] = True
    mask[9, 8] = True
    np.testing.assert_array_equal(cube.region_spectrum(mask), counts[mask].sum(axis=0))
    assert not cube.region_spectrum(np.zeros_like(mask)).any()
    with pytest.raises(IndexError):
        cube.spectrum(counts.shape[0], 0)


def test_lazy_cube_reads_the_same_numbers(cxc_file):
    path, counts, _, _, _ = cxc_file
    cube = read_cube(path, lazy_threshold_bytes=1024)
    try:
        assert cube.lazy
        assert cube.data.shape == counts.shape
        np.testing.assert_array_equal(np.asarray(cube.data), counts)
        np.testing.assert_array_equal(cube.total_counts(), counts.sum(axis=-1))
        np.testing.assert_array_equal(cube.spectrum(11, 0), counts[11, 0])
        mask = np.zeros(counts.shape[:2], bool)
        mask[5:, 6:] = True
        np.testing.assert_array_equal(cube.region_spectrum(mask), counts[mask].sum(axis=0))
    finally:
        cube.close()
    assert not read_cube(path, lazy=False, lazy_threshold_bytes=1024).lazy


def test_lazy_spectrum_reads_only_that_pixel(cxc_file):
    """Spectrum-on-click must not go through dask (which would read whole chunks)."""
    import dask.array as da

    path, counts, _, _, _ = cxc_file
    with read_cube(path, lazy=True) as cube:

        def refuse(block):
            raise AssertionError("a dask chunk was computed for one pixel")

        cube.data = da.map_blocks(refuse, cube.data, dtype=cube.data.dtype)
        np.testing.assert_array_equal(cube.spectrum(4, 9), counts[4, 9])


def test_lazy_cube_keeps_the_file_open_until_closed(cxc_file):
    path, counts, _, _, _ = cxc_file
    with read_cube(path, lazy=True) as cube:
        assert cube.spectrum(0, 0).shape == (counts.shape[2],)
    with pytest.raises(Exception):  # noqa: B017 - h5py raises its own error on a closed file
        cube.spectrum(0, 0)


def test_truth_is_exposed_without_reading_spectra(cxc_file):
    path, _, _, wt, regions = cxc_file
    truth = read_truth(path)
    assert isinstance(truth, GroundTruth)
    assert truth.elements == ("Au", "Ag", "Cu")
    assert truth.region_names == ("left", "right")
    np.testing.assert_array_equal(truth.wt_percent, wt)
    np.testing.assert_array_equal(truth.regions, regions)
    with read_cube(path, lazy=True) as cube:
        assert cube.metadata["truth"].elements == ("Au", "Ag", "Cu")


def test_file_without_truth(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "plain.h5", counts, energy)
    assert read_truth(path) is None
    assert "truth" not in read_cube(path).metadata


def test_whole_number_floats_are_stored_as_integers(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "f.h5", counts.astype(np.float64), energy)
    cube = read_cube(path)
    assert cube.data.dtype.kind == "u"
    np.testing.assert_array_equal(cube.data, counts)


def test_refuses_to_overwrite_unless_asked(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "a.h5", counts, energy)
    with pytest.raises(FileExistsError):
        write_cxc_hdf5(path, counts + 1, energy)
    np.testing.assert_array_equal(read_cube(path).data, counts)
    write_cxc_hdf5(path, counts + 1, energy, overwrite=True)
    np.testing.assert_array_equal(read_cube(path).data, counts + 1)


@pytest.mark.parametrize(
    "change",
    [
        {"counts": -np.ones((2, 2, 4))},
        {"counts": np.full((2, 2, 4), 1.5)},
        {"counts": np.ones((2, 4))},
        {"energy_keV": np.array([0.0, 1.0, 3.0, 3.5])},
        {"energy_keV": np.array([3.0, 2.0, 1.0, 0.0])},
        {"energy_keV": np.arange(3.0)},
        {"truth_wt_percent": np.ones((2, 2, 2)), "truth_elements": ["Au"]},
        {"regions": np.full((2, 2), 300)},
    ],
)
def test_writer_refuses_inconsistent_input_and_leaves_no_file(tmp_path, change):
    arguments = {"counts": np.ones((2, 2, 4), np.uint16), "energy_keV": np.arange(4) * 0.035}
    arguments.update(change)
    with pytest.raises(XRFQuantError):
        write_cxc_hdf5(tmp_path / "bad.h5", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_newer_format_version_is_refused(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "v2.h5", counts, energy)
    with h5py.File(path, "r+") as file:
        file.attrs["format_version"] = 2
    with pytest.raises(CubeReadError, match=r"^v2\.h5: .*version 2"):
        read_cube(path)


def test_calibration_from_instrument_text_when_spectra_has_none(tmp_path):
    counts, _ = synthetic_counts(4, 3, 64)
    inst = reference_instrument().replace(**{"detector.offset_keV": 0.1, "detector.gain_keV": 0.02})
    path = tmp_path / "inst.h5"
    with h5py.File(path, "w") as file:
        file.attrs["format"] = "CXC"
        file.attrs["format_version"] = 1
        file.attrs["instrument"] = instrument_to_toml(inst)
        file["spectra"] = counts
    cube = read_cube(path)
    assert cube.calibration_source == "file"
    np.testing.assert_allclose(cube.energy_keV, 0.1 + 0.02 * np.arange(64))
