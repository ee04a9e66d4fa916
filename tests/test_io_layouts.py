"""Files other XRF tools write (PyMca, XRF-Maps, PyXRF), quadratic calibrations, sidecars.

Every test file is written with h5py from the layout as its project documents
or writes it, not with our writer.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import napari_xrfquant as xq
from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io import CalibrationWarning, read_cube

#: A PyMca-style calibration with a quadratic term (keV).
CALIBRATION = (-0.012, 0.0349, 4.0e-7)


@pytest.fixture(scope="module")
def measured():
    """A 3 x 4 cube of the three CRMs and an alloy (Poisson counts, 2e4 per pixel),
    its quadratic energy axis and its quantification from memory."""
    wt = [[58.56, 3.90, 35.65, 0.0, 1.891], [75.10, 3.02, 14.69, 4.99, 2.107],
          [75.12, 24.90, 0.0, 0.0, 0.0], [37.5, 55.0, 7.5, 0.0, 0.0]]
    spectra = xq.simulate(wt, ["Au", "Ag", "Cu", "Ni", "Zn"], counts=2e4, seed=3)
    counts = np.stack([spectra[[0, 1, 2, 3]], spectra[[1, 2, 3, 0]], spectra[[2, 3, 0, 1]]])
    counts = counts.astype(np.uint32)
    k = np.arange(counts.shape[-1], dtype=np.float64)
    energy = CALIBRATION[0] + CALIBRATION[1] * k + CALIBRATION[2] * k**2
    result = xq.quantify(counts, energy, device="cpu")
    return counts, energy, result


def _same_result(cube, measured):
    counts, energy, expected = measured
    assert cube.shape == counts.shape
    np.testing.assert_allclose(cube.energy_keV, energy, atol=1e-3)  # within 1 eV
    np.testing.assert_array_equal(np.asarray(cube.data), counts)
    got = xq.quantify(np.asarray(cube.data), cube.energy_keV, device="cpu")
    np.testing.assert_allclose(got.concentrations, expected.concentrations, atol=1e-4)


def _pymca(path, counts, calibration=CALIBRATION, channels=None):
    """PyMca's "HDF5 XRF Stack" recipe, NeXus conventions included."""
    rows, cols, n = counts.shape
    with h5py.File(path, "w") as h5:
        h5["/entry/instrument/detector/calibration"] = np.asarray(calibration)
        h5["/entry/instrument/detector/channels"] = (
            np.arange(n) if channels is None else channels
        )
        h5["/entry/instrument/detector/data"] = counts
        h5["/entry/instrument/detector/live_time"] = np.linspace(0.9, 1.0, rows * cols)
        h5["/entry/title"] = "Dummy generated map"
        h5["/entry"].attrs["NX_class"] = "NXentry"
        h5["/entry/instrument"].attrs["NX_class"] = "NXinstrument"
        h5["/entry/instrument/detector/"].attrs["NX_class"] = "NXdetector"
        h5["/entry/instrument/detector/data"].attrs["interpretation"] = "spectrum"
        h5["/entry/measurement/data"] = h5py.SoftLink("/entry/instrument/detector/data")
        h5["/entry/measurement"].attrs["NX_class"] = "NXdata"
        h5["/entry/measurement"].attrs["signal"] = "data"
        h5["/entry"].attrs["default"] = "measurement"
    return path


def test_pymca_stack(tmp_path, measured):
    path = _pymca(tmp_path / "pymca.h5", measured[0])
    with read_cube(path) as cube:
        assert cube.format == "PyMca HDF5" and cube.calibration_source == "file"
        assert cube.metadata["dataset"] == "/entry/instrument/detector/data"
        assert cube.metadata["maps"]["live_time"].shape == (3, 4)
        assert cube.quadratic_keV == pytest.approx(CALIBRATION[2], rel=1e-9)
        _same_result(cube, measured)
    with read_cube(path, lazy=True) as cube:  # lazily, too
        assert cube.lazy
        np.testing.assert_array_equal(cube.spectrum(2, 3), measured[0][2, 3])


def test_pymca_calibration_that_turns_is_refused(tmp_path, measured):
    path = _pymca(tmp_path / "turns.h5", measured[0], calibration=(0.0, 0.035, -2e-5))
    with pytest.raises(CubeReadError, match=r"does not increase with channel k .*turns at"):
        read_cube(path)


def _xrf_maps(path, counts, energy_calibration=CALIBRATION):
    """XRF-Maps' layout: mca_arr (channels, rows, cols) and its neighbours."""
    rows, cols, _ = counts.shape
    with h5py.File(path, "w") as h5:
        spectra = h5.create_group("MAPS/Spectra")
        spectra.create_dataset("mca_arr", data=np.moveaxis(counts, -1, 0).astype(np.float32),
                               chunks=(counts.shape[-1], 1, 1))
        spectra["Energy_Calibration"] = np.asarray(energy_calibration, dtype=np.float64)
        spectra["Elapsed_Livetime"] = np.full((rows, cols), 0.95)
        spectra["Elapsed_Realtime"] = np.full((rows, cols), 1.0)
        h5["/MAPS/mca_arr"] = spectra["mca_arr"]  # the hard link XRF-Maps adds
        scalers = h5.create_group("MAPS/Scalers")
        scalers["Names"] = np.array([b"SRcurrent", b"us_ic"])
        scalers["Values"] = np.stack([np.full((rows, cols), 100.0), np.arange(rows * cols,
                                      dtype=np.float64).reshape(rows, cols)])
    return path


def test_xrf_maps_file(tmp_path, measured):
    path = _xrf_maps(tmp_path / "2xfm_0001.h5", measured[0])
    with read_cube(path) as cube:
        assert cube.format == "XRF-Maps HDF5"
        assert cube.metadata["energy_axis_in_file"] == "first"
        assert set(cube.metadata["maps"]) == {"live_time", "real_time", "SRcurrent", "us_ic", "I0"}
        assert cube.metadata["maps"]["us_ic"][2, 3] == 11.0
        _same_result(cube, measured)


def _pyxrf(path, counts, padded=4096):
    """PyXRF's layout: detector sum zero-padded to 4096 channels, scalers (rows, cols, n)."""
    rows, cols, n = counts.shape
    full = np.zeros((rows, cols, padded), dtype=np.float32)
    full[:, :, :n] = counts
    with h5py.File(path, "w") as h5:
        h5.create_dataset("xrfmap/detsum/counts", data=full, chunks=(1, 1, padded))
        h5["xrfmap/scalers/name"] = np.array([b"i0", b"time"])
        h5["xrfmap/scalers/val"] = np.ones((rows, cols, 2))
    return path


def _pyxrf_parameters(path, calibration=CALIBRATION):
    entries = {key: {"value": value, "default": value, "description": key}
               for key, value in zip(("e_offset", "e_linear", "e_quadratic"), calibration,
                                     strict=True)}
    path.write_text(json.dumps({**entries, "non_fitting_values": {"energy_bound_low": 1.0}}))
    return path


def test_pyxrf_file_takes_its_parameter_file(tmp_path, measured):
    counts = measured[0]
    folder = tmp_path / "scan"
    folder.mkdir()
    path = _pyxrf(folder / "scan2D_1234.h5", counts)
    parameters = _pyxrf_parameters(tmp_path / "pyxrf_model_parameters.json")
    with read_cube(path, pyxrf_parameters=parameters) as cube:
        assert cube.format == "PyXRF HDF5" and cube.shape == (3, 4, 4096)
        assert cube.metadata["maps"]["i0"].shape == (3, 4)
        np.testing.assert_allclose(cube.energy_keV[:1024], measured[1], atol=1e-3)
        np.testing.assert_array_equal(np.asarray(cube.data)[..., 1024:], 0)
        got = xq.quantify(np.asarray(cube.data), cube.energy_keV, device="cpu")
        np.testing.assert_allclose(got.concentrations, measured[2].concentrations, atol=1e-4)
    # the one parameter file beside the data is found
    _pyxrf_parameters(folder / "params.json")
    (folder / "notes.json").write_text(json.dumps({"comment": "not PyXRF's"}))
    with read_cube(path) as cube:
        assert cube.calibration_source == "file"
        assert cube.metadata["calibration_file"].endswith("params.json")


def test_pyxrf_file_without_parameters_warns_and_uses_the_reference(tmp_path, measured):
    path = _pyxrf(tmp_path / "scan.h5", measured[0])
    with pytest.warns(CalibrationWarning, match="PyXRF's parameter JSON"), read_cube(path) as cube:
        assert cube.calibration_source == "reference"


def test_sidecar_with_a_quadratic_term(tmp_path, measured):
    counts = measured[0]
    path = tmp_path / "plain.npy"
    np.save(path, counts)
    (tmp_path / "plain.calib.json").write_text(json.dumps(
        {"offset_keV": CALIBRATION[0], "gain_keV": CALIBRATION[1],
         "quadratic_keV": CALIBRATION[2]}))
    with read_cube(path) as cube:
        assert cube.calibration_source == "sidecar"
        assert cube.calibration_keV == pytest.approx(CALIBRATION, rel=1e-9, abs=1e-15)
        _same_result(cube, measured)


def test_file_and_sidecar_that_disagree_take_the_file(tmp_path, measured):
    path = _pymca(tmp_path / "stack.h5", measured[0])
    (tmp_path / "stack.calib.json").write_text(json.dumps({"offset_keV": 0.0, "gain_keV": 0.035}))
    with pytest.warns(CalibrationWarning, match="disagree .*using the file's"):
        cube = read_cube(path)
    np.testing.assert_allclose(cube.energy_keV, measured[1], atol=1e-9)


def test_generic_mapping_opens_a_vendor_layout(tmp_path, measured):
    """A layout we have never seen: dataset, axis order and calibration from the sidecar."""
    counts = measured[0]
    path = tmp_path / "vendor.h5"
    with h5py.File(path, "w") as h5:
        h5["/acq/frames"] = np.zeros((5, 5, 5))  # a decoy, larger than nothing
        h5["/acq/result/cube"] = np.moveaxis(counts, -1, 0)
        h5["/acq/result/energy_coefficients"] = np.asarray(CALIBRATION)
    (tmp_path / "vendor.calib.json").write_text(json.dumps({
        "dataset": "/acq/result/cube", "energy_axis": "first",
        "calibration_dataset": "/acq/result/energy_coefficients"}))
    with read_cube(path) as cube:
        assert cube.metadata["dataset"] == "/acq/result/cube"
        _same_result(cube, measured)
    # the same from the Python API, the calibration as numbers
    (tmp_path / "vendor.calib.json").unlink()
    with read_cube(path, dataset="/acq/result/cube", energy_axis="first",
                   calibration=CALIBRATION) as cube:
        assert cube.calibration_source == "argument"
        _same_result(cube, measured)


def test_info_prints_layout_calibration_and_maps(tmp_path, measured, capsys):
    from napari_xrfquant.cli import main

    path = _xrf_maps(tmp_path / "maps.h5", measured[0])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "XRF-Maps HDF5" in out
    assert "quadratic 4e-07 keV/channel^2" in out
    assert "live_time" in out and "us_ic" in out


# -- rosettasciio, fabio, silx (the formats extra) ---------------------------------
def _hyperspy_signal(counts, offset=CALIBRATION[0], scale=CALIBRATION[1]):
    """The dictionary HyperSpy hands rosettasciio's writers for an EDS spectrum image."""
    rows, cols, n = counts.shape
    return {
        "data": counts,
        "axes": [
            {"name": "y", "size": rows, "scale": 48.0, "offset": 0.0, "units": "µm",
             "navigate": True},
            {"name": "x", "size": cols, "scale": 48.0, "offset": 0.0, "units": "µm",
             "navigate": True},
            {"name": "Energy", "size": n, "scale": scale, "offset": offset, "units": "keV",
             "navigate": False},
        ],
        "metadata": {"General": {"title": "map"}, "Signal": {"signal_type": "EDS_SEM"}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
        "package_info": {"name": "hyperspy", "version": "2"}, "learning_results": {},
        "models": {},
    }


@pytest.mark.parametrize("suffix", [".hspy", ".zspy"])
def test_hyperspy_files_written_by_rosettasciio(tmp_path, measured, suffix):
    import importlib

    writer = importlib.import_module(f"rsciio.{suffix[1:]}")
    counts = measured[0]
    k = np.arange(counts.shape[-1])
    linear = CALIBRATION[0] + CALIBRATION[1] * k  # HyperSpy axes are linear
    path = tmp_path / f"map{suffix}"
    writer.file_writer(str(path), _hyperspy_signal(counts), show_progressbar=False)
    expected = xq.quantify(counts, linear, device="cpu")
    with read_cube(path) as cube:
        assert cube.format.startswith("HyperSpy") and cube.shape == counts.shape
        assert cube.metadata["pixel_size_um"] == 48.0
        np.testing.assert_allclose(cube.energy_keV, linear, atol=1e-6)
        got = xq.quantify(np.asarray(cube.data), cube.energy_keV, device="cpu")
        np.testing.assert_allclose(got.concentrations, expected.concentrations, atol=1e-4)


def test_a_bcf_rosettasciio_cannot_read_is_one_line(tmp_path, capsys):
    from napari_xrfquant.cli import main

    path = tmp_path / "broken.bcf"
    path.write_bytes(b"AAMVHFSS" + bytes(200))  # the SFS signature, nothing after it
    with pytest.raises(CubeReadError, match="rosettasciio cannot read it as Bruker BCF"):
        read_cube(path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot read it as Bruker BCF" in err


def test_a_missing_extra_is_named(tmp_path, monkeypatch):
    import importlib

    from napari_xrfquant.io import rosetta

    real_import = importlib.import_module

    def without_fabio(name, *args, **kwargs):
        if name == "fabio":
            raise ModuleNotFoundError("No module named 'fabio'", name="fabio")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(rosetta.importlib, "import_module", without_fabio)
    path = tmp_path / "x.edf"
    path.write_bytes(b"{}")
    with pytest.raises(CubeReadError, match=r"needs fabio, which is not installed: pip install "
                                            r"'napari-xrfquant\[formats\]'"):
        read_cube(path)


def test_edf_rows_written_by_fabio(tmp_path, measured):
    import fabio.edfimage

    counts = measured[0]
    header = {"MCA a": str(CALIBRATION[0]), "MCA b": str(CALIBRATION[1]),
              "MCA c": str(CALIBRATION[2])}
    image = fabio.edfimage.EdfImage(data=counts[0], header=header)
    for row in counts[1:]:
        image.append_frame(data=row, header=header)
    image.write(str(tmp_path / "map.edf"))
    with read_cube(tmp_path / "map.edf") as cube:
        assert cube.format == "EDF" and cube.calibration_source == "file"
        _same_result(cube, measured)
    with read_cube(tmp_path / "map.edf", lazy_threshold_bytes=1) as cube:
        assert cube.lazy and cube.data.chunks[0] == (1, 1, 1)  # a frame per chunk
        _same_result(cube, measured)


def _spec(path, counts, calibration=CALIBRATION):
    """A SPEC mesh scan, one MCA spectrum per point (#@MCA / #@CALIB / @A lines)."""
    rows, cols, n = counts.shape
    lines = ["#F map.spec", "#E 1700000000", "#D Thu Jan  1 00:00:00 2026", "",
             f"#S 1 mesh  samy 0 1 {cols - 1}  samz 0 1 {rows - 1}  0.5",
             "#D Thu Jan  1 00:00:01 2026", "#N 3", "#@MCA %16C",
             f"#@CHANN {n} 0 {n - 1} 1", "#@CALIB " + " ".join(f"{v:.10g}" for v in calibration),
             "#L samy  samz  I0"]
    for r in range(rows):
        for c in range(cols):
            values = counts[r, c]
            lines.append(f"{c} {r} 1000")
            chunks = [" ".join(str(int(v)) for v in values[i:i + 16])
                      for i in range(0, n, 16)]
            lines.append("@A " + "\\\n".join(chunks))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_spec_mesh_read_by_silx(tmp_path, measured):
    path = _spec(tmp_path / "map.spec", measured[0])
    with read_cube(path) as cube:
        assert cube.format == "SPEC" and cube.shape == measured[0].shape
        _same_result(cube, measured)
    with read_cube(path, lazy=True) as cube:
        assert cube.lazy and cube.data.chunks[0] == (1, 1, 1)  # a row per chunk
        _same_result(cube, measured)


def _spx(path, spectrum, offset, gain, live_time=28.0, real_time=30.0):
    """A Bruker micro-XRF ``.spx``: the XML of an M6 file, cut to what a reader needs.

    The tags and their nesting are those of the M6 and ESMA ``.spx`` files in
    rosettasciio's test data; the detector's layer table is the base64 of a
    zlib-packed XML, as there.
    """
    import base64
    import zlib

    layers = base64.b64encode(zlib.compress(b"<DetLayers><Layer0 Atom=\"14\"/></DetLayers>"))
    channels = ",".join(str(int(v)) for v in spectrum)
    path.write_text(f"""<?xml version="1.0" encoding="WINDOWS-1252" standalone="yes"?>
<TRTSpectrum>
  <RTHeader/>
  <ClassInstance Type="TRTSpectrum" Name="point 1">
    <TRTHeaderedClass>
      <ClassInstance Type="TRTSpectrumHardwareHeader">
        <RealTime>{real_time * 1000:g}</RealTime>
        <LifeTime>{live_time * 1000:g}</LifeTime>
        <Amplification>4E4</Amplification>
      </ClassInstance>
      <ClassInstance Type="TRTDetectorHeader">
        <Type>XFlash 430</Type>
        <DetLayers>{layers.decode("ascii")}</DetLayers>
      </ClassInstance>
      <ClassInstance Type="TRTXrfHeader">
        <Voltage>50</Voltage>
        <ExcitationAngle>90</ExcitationAngle>
      </ClassInstance>
    </TRTHeaderedClass>
    <ClassInstance Type="TRTSpectrumHeader">
      <Date>1.12.2026</Date>
      <Time>18:30:0</Time>
      <ChannelCount>{len(spectrum)}</ChannelCount>
      <CalibAbs>{offset!r}</CalibAbs>
      <CalibLin>{gain!r}</CalibLin>
    </ClassInstance>
    <Channels>{channels}</Channels>
  </ClassInstance>
</TRTSpectrum>
""", encoding="cp1252")


def test_bruker_spx_as_its_xml_is_laid_out(tmp_path, measured):
    counts = measured[0]
    spectrum = counts[1, 2]
    k = np.arange(spectrum.size)
    offset, gain = CALIBRATION[0], CALIBRATION[1]
    _spx(tmp_path / "point.spx", spectrum, offset, gain)
    expected = xq.quantify(spectrum[None, None], offset + gain * k, device="cpu")
    with read_cube(tmp_path / "point.spx") as cube:
        assert cube.format == "Bruker SPX" and cube.shape == (1, 1, spectrum.size)
        assert cube.calibration_source == "file"
        np.testing.assert_allclose(cube.energy_keV, offset + gain * k, atol=1e-3)
        np.testing.assert_array_equal(np.asarray(cube.data)[0, 0], spectrum)
        assert cube.metadata["live_time_s"] == 28.0 and cube.metadata["real_time_s"] == 30.0
        got = xq.quantify(np.asarray(cube.data), cube.energy_keV, device="cpu")
    np.testing.assert_allclose(got.concentrations, expected.concentrations, atol=1e-4)
