"""Real measurements from other instruments open with the right shape and calibration.

The files in ``sample_data/`` (see its README for sources and licences) are
what APS 2-ID-E (MDA, 4-element detector), GSECARS 13-ID (ASCII MCA) and the
PIXL breadboard (EMSA/MSA) wrote. The tabulated line energies are the truth
the calibration is judged by.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io import CalibrationWarning, read_cube
from napari_xrfquant.io.bad_pixels import BadPixelWarning
from napari_xrfquant.io.lines import fit_lines
from napari_xrfquant.io.peaks import elastic_channel, peak_keV

REAL = Path(__file__).resolve().parents[1] / "sample_data"
MDA = REAL / "aps_2ide" / "axo_std.mda"
XRF = REAL / "gsecars" / "axorf4_21kev_i050.xrf"
MCA = REAL / "gsecars" / "xrf_spectra.mca"
MSA = REAL / "pixl_breadboard" / "Calibration_box_BHVO-2G_28kV_230uA_03_28_2019_bulk_sum.msa"
PIXLISE = REAL / "pixl_breadboard" / "LagunaSalinasdataset.bin"
SETUP_MSA = REAL / "pixl_breadboard" / "Breadboard_Configuration_2019_01_14_2020.msa"
FE_KA, CA_KA = 6.4039, 3.6917


def _peak_keV(cube, near_keV, window_keV=0.25):
    """Where the highest peak near ``near_keV`` of the summed spectrum is (keV)."""
    spectrum = cube.region_spectrum(np.ones(cube.shape[:2], bool))
    return peak_keV(spectrum, cube.energy_keV, near_keV, window_keV)


def test_mda_map_aligns_its_four_elements_on_their_lines():
    with pytest.warns(CalibrationWarning, match=r"stored calibrations misplace the lines"):
        cube = read_cube(MDA)
    assert cube.format == "APS MDA"
    assert cube.shape == (11, 11, 2000)
    assert cube.calibration_source == "lines"
    assert abs(_peak_keV(cube, FE_KA) - FE_KA) < 0.020
    assert abs(_peak_keV(cube, CA_KA) - CA_KA) < 0.020
    assert len(cube.metadata["detector_elements"]) == 4
    maps = cube.metadata["maps"]
    # the sum has counted for the four elements' live times together (0.87 s each)
    assert maps["live_time"].shape == (11, 11) and 3.3 < np.median(maps["live_time"]) < 3.6
    assert 0.8 < np.median(read_cube(MDA, detector=1).metadata["maps"]["live_time"]) < 0.9
    # the counts of the four elements are all there (the sum conserves them)
    stored = read_cube(MDA, detector="stored")
    assert cube.total_counts().sum() == pytest.approx(stored.total_counts().sum(), rel=1e-3)


def test_mda_element_alone_keeps_its_stored_calibration_and_is_75_eV_low():
    cube = read_cube(MDA, detector=0)
    assert cube.calibration_keV[:2] == pytest.approx((0.05, 0.0094))
    shift = _peak_keV(cube, FE_KA) - FE_KA
    assert -0.12 < shift < -0.05  # what the issue measured: 75-160 eV low


@pytest.mark.parametrize("element", [0, 1, 2, 3])
def test_each_mda_element_alone_is_recalibrated_on_its_own_lines(element):
    cube = read_cube(MDA, detector=element)
    spectrum = cube.region_spectrum(np.ones(cube.shape[:2], bool))
    fit = fit_lines(spectrum, cube.calibration_keV)
    assert fit.refined
    stored_offset, stored_gain, _ = cube.calibration_keV
    fe_channel = (_peak_keV(cube, FE_KA - 0.12) - stored_offset) / stored_gain  # the peak itself
    offset, gain, _ = fit.calibration_keV
    assert abs(offset + gain * fe_channel - FE_KA) < 0.020


def test_mda_bad_detector_choice_is_one_line():
    with pytest.raises(CubeReadError, match=r"element 7 does not exist \(the file has 4"):
        read_cube(MDA, detector=7)


def test_interrupted_mda_scan_masks_the_points_never_measured(tmp_path):
    """A scan stopped in row 9 of 11, after 5 of its 11 points: 9 rows, 6 masked pixels."""
    raw = bytearray(MDA.read_bytes())
    outer_acquired = 32 + 8  # file header (8 ints), then the outer scan's rank and npts
    raw[outer_acquired : outer_acquired + 4] = (9).to_bytes(4, "big")
    row_offsets = np.frombuffer(bytes(raw[44 : 44 + 11 * 4]), ">i4")
    last_row = int(row_offsets[8]) + 8
    raw[last_row : last_row + 4] = (5).to_bytes(4, "big")
    path = tmp_path / "stopped.mda"
    path.write_bytes(bytes(raw))
    with pytest.warns(BadPixelWarning, match=r"6 of 99 pixels masked"):
        cube = read_cube(path)
    assert cube.shape == (9, 11, 2000)
    assert cube.total_counts()[8, 5:].sum() == 0 and cube.total_counts()[8, :5].min() > 0
    assert abs(_peak_keV(cube, FE_KA) - FE_KA) < 0.020


def test_truncated_mda_is_refused_in_one_line_and_writes_nothing(tmp_path, capsys):
    from napari_xrfquant.cli import main

    cut = tmp_path / "cut.mda"
    cut.write_bytes(MDA.read_bytes()[:200_000])
    with pytest.raises(CubeReadError, match=r"^cut.mda: truncated or damaged MDA file"):
        read_cube(cut)
    assert main(["info", str(cut)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xrfquant info: error: cut.mda: truncated") and len(err.splitlines()) == 1
    assert main(["quantify", str(cut), "-o", str(tmp_path / "out")]) != 0
    assert not (tmp_path / "out").exists()


def _elastic_keV(cube):
    """The elastic peak's centre, fitted beside the Compton peak it blends with."""
    spectrum = cube.region_spectrum(np.ones(cube.shape[:2], bool))
    channel = elastic_channel(spectrum, cube.calibration_keV, cube.metadata["beam_keV"])
    return float(np.interp(channel, np.arange(cube.shape[2]), cube.energy_keV))


def test_gsecars_four_elements_put_the_elastic_peak_on_the_beam():
    cube = read_cube(XRF)
    assert cube.format == "GSECARS MCA" and cube.shape == (1, 1, 2048)
    beam = cube.metadata["beam_keV"]
    assert beam == pytest.approx(21.0, abs=0.01)
    assert abs(_elastic_keV(cube) - beam) < 0.020
    assert abs(_peak_keV(cube, FE_KA) - FE_KA) < 0.020
    assert cube.metadata["live_time_s"] == pytest.approx(457.95, abs=0.1)


def test_a_multi_element_file_without_calibration_opens_with_the_reference_and_a_warning(
        tmp_path):
    """The GSECARS file with its CAL_ lines removed: the four elements are summed channel
    by channel (nothing to align them on) and the reference calibration is said."""
    text = "".join(line for line in XRF.read_text(encoding="latin-1").splitlines(True)
                   if not line.startswith("CAL_"))
    path = tmp_path / "nocal.xrf"
    path.write_text(text, encoding="latin-1")
    with pytest.warns(CalibrationWarning, match="using the reference instrument's"):
        cube = read_cube(path)
    assert cube.calibration_source == "reference" and cube.shape == (1, 1, 2048)
    elements = sum(read_cube(XRF, detector=i).total_counts().sum() for i in range(4))
    assert cube.total_counts().sum() == elements


def test_gsecars_mca_and_spec_share_a_suffix_told_apart_by_content():
    from napari_xrfquant.io.read import find_reader

    assert find_reader(MCA).name == "GSECARS MCA"
    stored = read_cube(MCA, detector="stored")
    assert stored.calibration_keV[:2] == pytest.approx((0.022052931, 0.013900329))
    assert stored.metadata["beam_keV"] == pytest.approx(11.80005, abs=1e-4)
    assert -0.060 < _elastic_keV(stored) - 11.80005 < -0.035  # the file's calibration: ~47 eV low
    # the elastic peak alone (no element named) corrects the gain
    with pytest.warns(CalibrationWarning, match=r"puts elastic \d+ eV low \(refined"):
        cube = read_cube(MCA)
    assert cube.calibration_source == "lines"
    assert abs(_elastic_keV(cube) - 11.80005) < 0.020


def test_msa_spectrum_in_eV_puts_ca_ka_on_its_line():
    cube = read_cube(MSA)
    assert cube.format == "EMSA/MSA" and cube.shape == (1, 1, 4096)
    assert cube.calibration_source == "lines"  # checked on its lines: a few eV changed
    stored = read_cube(MSA, detector="stored")
    assert stored.calibration_keV[:2] == pytest.approx((-0.0153063, 0.0100449))
    for each in (cube, stored):
        assert abs(_peak_keV(each, CA_KA) - CA_KA) < 0.020
        assert abs(_peak_keV(each, FE_KA) - FE_KA) < 0.020
    assert cube.metadata["live_time_s"] == pytest.approx(13973.4)
    fit = fit_lines(cube.region_spectrum(np.ones((1, 1), bool)), cube.calibration_keV)
    assert fit.refined and {"Fe Ka", "Ca Ka", "Si Ka"} <= {label for label, *_ in fit.matched}


def test_pixlise_dataset_is_a_map_of_its_two_detectors():
    cube = read_cube(PIXLISE)
    assert cube.format == "PIXLISE dataset" and cube.shape == (25, 25, 4096)
    assert cube.metadata["detector_ids"] == ["A", "B"]
    assert cube.metadata["pixel_size_um"] == pytest.approx(100.0)
    assert 20.0 < cube.metadata["live_time_s"] < 24.0  # two detectors of about 11 s
    assert abs(_peak_keV(cube, CA_KA) - CA_KA) < 0.020
    assert abs(_peak_keV(cube, FE_KA) - FE_KA) < 0.020
    assert cube.total_counts().min() > 1e5  # every point of the map was filled


def test_a_bin_file_of_something_else_is_not_taken(tmp_path):
    other = tmp_path / "weights.bin"
    other.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CubeReadError, match=r"unsupported file type \(.bin\)"):
        read_cube(other)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(PIXLISE.read_bytes()[:100_000])
    with pytest.raises(CubeReadError, match=r"^cut.bin: truncated or damaged PIXLISE"):
        read_cube(cut)


def _msa(counts, x=None, y=None, calibrated=True, end=True):
    lines = ["#FORMAT      : EMSA/MAS Spectral Data File", "#VERSION     : 1.0",
             f"#NPOINTS     : {len(counts)}", "#NCOLUMNS    : 1", "#XUNITS      : keV",
             "#DATATYPE    : Y"]
    if calibrated:
        lines += ["#XPERCHAN    : 0.02", "#OFFSET      : 0.0"]
    if x is not None:
        lines += [f"#XPOSITION   : {x}", f"#YPOSITION   : {y}"]
    lines += ["#SPECTRUM    :"] + [str(int(v)) for v in counts]
    if end:
        lines.append("#ENDOFDATA   :")
    return "\n".join(lines) + "\n"


def test_an_instrument_set_up_file_is_refused_as_no_measurement():
    with pytest.raises(CubeReadError, match=r"holds no spectrum \(#NPOINTS is 0: an instrument"):
        read_cube(SETUP_MSA)


def test_msa_folder_and_zip_with_positions_are_a_map(tmp_path):
    folder = tmp_path / "points"
    folder.mkdir()
    rng = np.random.default_rng(0)
    archive = zipfile.ZipFile(tmp_path / "points.zip", "w")
    for i, (y, x) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]):
        text = _msa(rng.poisson(5, 64) + i, x=0.1 * x, y=0.1 * y)
        (folder / f"p{i:02d}.msa").write_text(text)
        archive.writestr(f"p{i:02d}.msa", text)
    archive.close()
    for path in (folder, tmp_path / "points.zip"):
        cube = read_cube(path)
        assert cube.shape == (2, 3, 64)
        assert cube.gain_keV == pytest.approx(0.02)


def test_napari_offers_the_reader_for_msa_folders_and_zips_only(tmp_path):
    from napari_xrfquant._napari._reader import get_reader, read_xrf

    folder = tmp_path / "points"
    folder.mkdir()
    (folder / "a.msa").write_text(_msa(np.arange(64)))
    assert get_reader(str(folder)) is read_xrf
    assert get_reader(str(tmp_path / "empty")) is None
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "empty")) is None
    with zipfile.ZipFile(tmp_path / "pictures.zip", "w") as archive:
        archive.writestr("photo.txt", "not a spectrum")
    assert get_reader(str(tmp_path / "pictures.zip")) is None
    with zipfile.ZipFile(tmp_path / "spectra.zip", "w") as archive:
        archive.writestr("a.msa", _msa(np.arange(64)))
    assert get_reader(str(tmp_path / "spectra.zip")) is read_xrf


def test_msa_without_calibration_opens_with_a_warning(tmp_path):
    path = tmp_path / "plain.msa"
    path.write_text(_msa(np.arange(64), calibrated=False))
    with pytest.warns(CalibrationWarning, match="no #OFFSET/#XPERCHAN"):
        cube = read_cube(path)
    assert cube.calibration_source == "reference"


def test_truncated_msa_is_refused_and_a_renamed_one_is_found_by_content(tmp_path):
    cut = tmp_path / "cut.msa"
    cut.write_text(_msa(np.arange(64), end=False))
    with pytest.raises(CubeReadError, match=r"^cut.msa: truncated MSA file"):
        read_cube(cut)
    renamed = tmp_path / "spectrum.txt"
    renamed.write_text(_msa(np.arange(64)))
    assert read_cube(renamed).format == "EMSA/MSA"


def test_maps_layout_of_bionanoprobe_files(tmp_path):
    """The older MAPS layout: /MAPS/mca_arr, energy_calib, scalers with scaler_names."""
    rng = np.random.default_rng(1)
    counts = rng.poisson(3, (2000, 4, 5)).astype(np.float32)  # integer-valued float32
    path = tmp_path / "bnp_fly0001.h5"
    with h5py.File(path, "w") as h5:
        h5["/MAPS/mca_arr"] = counts
        h5["/MAPS/energy_calib"] = np.array([-0.00545, 0.012711, 0.0])
        h5["/MAPS/energy"] = -0.00545 + 0.012711 * np.arange(2000)
        h5["/MAPS/scaler_names"] = np.array([b"SRcurrent", b"us_ic", b"ds_ic", b"ELT1",
                                             b"ERT1"])
        h5["/MAPS/scalers"] = np.stack([np.full((4, 5), v) for v in (100, 5e4, 3e4, 0.9, 1.0)])
    cube = read_cube(path)
    assert cube.format == "MAPS HDF5"
    assert cube.calibration_keV[:2] == pytest.approx((-0.00545, 0.012711))
    maps = cube.metadata["maps"]
    assert maps["live_time"][0, 0] == pytest.approx(0.9)
    assert maps["I0"][0, 0] == pytest.approx(5e4)


def test_nan_rows_and_a_dead_pixel_are_masked_counted_and_nan_in_the_maps(tmp_path, capsys):
    from napari_xrfquant import quantify
    from napari_xrfquant._napari._reader import read_cube_with_warnings
    from napari_xrfquant.cli import main
    from napari_xrfquant.io import write_cxc_hdf5

    rng = np.random.default_rng(2)
    data = rng.poisson(4.0, (12, 10, 1024)).astype(np.float32)
    data[3] = np.nan
    data[7] = np.nan
    data[5, 5, 100] = -1.0  # a dead pixel
    path = tmp_path / "holes.npy"
    np.save(path, data)
    (tmp_path / "holes.calib.json").write_text('{"offset_keV": 0.0, "gain_keV": 0.035}')
    with pytest.warns(BadPixelWarning, match=r"21 of 120 pixels masked"):
        cube = read_cube(path, energy_axis="last")
    result = quantify(cube.data, cube.energy_keV)
    assert np.isnan(result.concentrations[3]).all() and np.isnan(result.concentrations[5, 5]).all()
    assert np.isfinite(result.concentrations[0]).all()
    # napari's reader says it as a notification line, the CLI on stderr
    _, messages = read_cube_with_warnings(path)
    assert any("21 of 120 pixels masked" in m for m in messages)
    assert main(["info", str(path), "--energy-axis", "last"]) == 0
    captured = capsys.readouterr()
    assert "21 of 120 pixels masked" in captured.out + captured.err
    del write_cxc_hdf5


def test_calibration_groups_take_integer_valued_float_counts():
    from napari_xrfquant.calibration.groups import group_pixels

    rng = np.random.default_rng(3)
    counts = rng.poisson(30.0, (6, 6, 256)).astype(np.float32)
    groups = group_pixels(counts, ["Fe", "Cu"], n_clusters=2, mask_below_counts=10)
    assert groups.counts.sum() > 0
    assert np.allclose(groups.counts, np.round(groups.counts))


@pytest.mark.parametrize("path", [MDA, XRF, MCA, MSA, PIXLISE], ids=lambda p: p.suffix)
def test_napari_reader_opens_each_real_file_and_says_what_it_found(path, monkeypatch):
    from napari_xrfquant._napari import _reader

    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", shown.append)
    assert _reader.get_reader(str(path)) is _reader.read_xrf
    layers = _reader.read_xrf(str(path))
    cube_data = layers[0][0]
    assert sorted(cube_data.shape) == sorted(read_cube(path).shape)  # channels first there
    if path == MDA:
        assert any("misplace the lines" in message for message in shown)


def test_info_says_where_the_calibration_came_from(capsys):
    from napari_xrfquant.cli import main

    assert main(["info", str(MDA)]) == 0
    out = capsys.readouterr().out
    assert "source: lines (the file's, refined on the lines the spectrum shows)" in out
    assert out.count("detector:") == 4 and "Fe Ka" in out
    assert "resolution:" in out
    assert main(["info", str(MDA), "--detector", "2"]) == 0
    assert "source: file" in capsys.readouterr().out
