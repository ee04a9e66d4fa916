"""Bad input: every case is a CubeReadError "<file name>: <problem>"."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
import tifffile

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io import read_cube, write_cxc_hdf5


def _expect(path, pattern, **options):
    with pytest.raises(CubeReadError) as info:
        read_cube(path, **options)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message
    assert "\n" not in message
    assert re.search(pattern, message), message
    return message


def _plain_h5(path, data, **attrs):
    with h5py.File(path, "w") as file:
        node = file.create_dataset("cube", data=data)
        for key, value in attrs.items():
            node.attrs[key] = value
    return path


def test_missing_file(tmp_path):
    _expect(tmp_path / "nowhere.h5", "no such file")


@pytest.mark.parametrize("name", ["spectra.txt", "cube.zarr", "README"])
def test_unsupported_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("x")
    _expect(path, "unsupported file type")


def test_truncated_hdf5(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "cut.h5", counts, energy)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _expect(path, "truncated|damaged")


def test_text_file_with_h5_suffix(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("rows,cols\n1,2\n")
    _expect(path, "not an HDF5 file")


def test_text_file_with_tif_and_npy_suffix(tmp_path):
    for name in ("stack.tif", "cube.npy"):
        path = tmp_path / name
        path.write_text("this is not binary data at all\n")
        _expect(path, "not a readable")


@pytest.mark.parametrize("shape", [(6, 64), (2, 3, 4, 64)])
def test_wrong_rank_hdf5(tmp_path, shape):
    path = _plain_h5(tmp_path / "rank.h5", np.ones(shape, np.uint16))
    _expect(path, "no 3-D numeric dataset")
    _expect(path, rf"{len(shape)}-D", dataset="/cube")


@pytest.mark.parametrize("shape", [(6, 64), (2, 3, 4, 64)])
def test_wrong_rank_npy_and_tiff(tmp_path, shape):
    np.save(tmp_path / "rank.npy", np.ones(shape, np.uint16))
    _expect(tmp_path / "rank.npy", rf"{len(shape)}-D")
    if len(shape) == 2:
        tifffile.imwrite(tmp_path / "rank.tif", np.ones(shape, np.uint16))
        _expect(tmp_path / "rank.tif", "2-D")


def test_string_data(tmp_path):
    path = tmp_path / "text.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("cube", data=np.full((2, 2, 8), "abc", dtype="S3"))
    _expect(path, "string", dataset="/cube")
    _expect(path, "no 3-D numeric dataset")


def test_compound_data(tmp_path):
    path = tmp_path / "compound.h5"
    record = np.zeros((2, 2, 8), dtype=[("counts", "u2"), ("live", "f4")])
    with h5py.File(path, "w") as file:
        file.create_dataset("cube", data=record)
    _expect(path, "compound", dataset="/cube")


def test_cxc_with_string_spectra(tmp_path):
    path = tmp_path / "strcxc.h5"
    with h5py.File(path, "w") as file:
        file.attrs["format"] = "CXC"
        file.create_dataset("spectra", data=np.full((2, 2, 8), "a", dtype="S1"))
    _expect(path, "string")


def test_object_npy_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.empty((2, 2, 8), dtype=object), allow_pickle=True)
    _expect(path, "Python objects")


@pytest.mark.parametrize("lazy", [False, True])
def test_negative_counts_are_masked_not_refused(tmp_path, lazy):
    from napari_xrfquant.io.bad_pixels import BadPixelWarning

    data = np.ones((4, 5, 32), np.int32)
    data[0, 1, 7] = -3
    path = _plain_h5(tmp_path / "neg.h5", data, offset_keV=0.0, gain_keV=0.035)
    with pytest.warns(BadPixelWarning, match="1 of 20 pixels masked") if not lazy else \
            _no_warning():
        cube = read_cube(path, lazy=lazy)
    counts = np.asarray(cube.data if not lazy else cube.data.compute())
    assert counts[0, 1].sum() == 0 and counts[0, 0].sum() == 32
    cube.close()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("lazy", [False, True])
def test_nan_or_inf_counts_are_masked_not_refused(tmp_path, bad, lazy):
    data = np.ones((4, 5, 32), np.float32)
    data[1, 0, 3] = bad
    tifffile.imwrite(tmp_path / "nan.tif", np.moveaxis(data, -1, 0))
    (tmp_path / "nan.calib.json").write_text(json.dumps({"offset_keV": 0, "gain_keV": 0.035}))
    with read_cube(tmp_path / "nan.tif", lazy=lazy) as cube:
        counts = np.asarray(cube.data if not lazy else cube.data.compute())
        assert np.isfinite(counts).all()
        assert counts[1, 0].sum() == 0
        assert cube.spectrum(1, 0).sum() == 0


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.parametrize("gain", [0.0, -0.035])
def test_gain_not_positive(tmp_path, gain):
    path = _plain_h5(tmp_path / "gain.h5", np.ones((3, 3, 16), np.uint16),
                     offset_keV=1.0, gain_keV=gain)
    _expect(path, "does not increase with channel")


def test_cxc_gain_not_positive(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "cxcgain.h5", counts, energy)
    with h5py.File(path, "r+") as file:
        file["spectra"].attrs["gain_keV"] = -0.01
    _expect(path, "does not increase with channel")


def test_non_monotonic_energy_axis(tmp_path):
    energy = np.arange(16) * 0.035
    energy[5] = energy[3]
    path = _plain_h5(tmp_path / "mono.h5", np.ones((3, 3, 16), np.uint16), energy_keV=energy)
    _expect(path, "does not increase with channel")


def test_non_monotonic_nexus_axis(tmp_path):
    path = tmp_path / "mono.nxs"
    energy_eV = np.arange(16) * 35.0
    energy_eV[[7, 8]] = energy_eV[[8, 7]]
    with h5py.File(path, "w") as file:
        entry = file.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "counts",
                           "axes": ["y", "x", "energy"]})
        data["counts"] = np.ones((3, 4, 16), np.uint16)
        data["energy"] = energy_eV
        data["energy"].attrs["units"] = "eV"
    _expect(path, "does not increase with channel")


def test_bad_sidecar(tmp_path):
    np.save(tmp_path / "side.npy", np.ones((3, 3, 16), np.uint16))
    sidecar = tmp_path / "side.calib.json"
    sidecar.write_text(json.dumps({"offset_keV": 0.0, "gain_keV": -1}))
    with pytest.raises(CubeReadError, match=r"^side\.calib\.json: .*does not increase"):
        read_cube(tmp_path / "side.npy", energy_axis="last")
    sidecar.write_text("{not json")
    with pytest.raises(CubeReadError, match=r"^side\.calib\.json: not a readable"):
        read_cube(tmp_path / "side.npy", energy_axis="last")


def test_missing_dataset_and_bad_energy_axis_argument(tmp_path):
    path = _plain_h5(tmp_path / "ds.h5", np.ones((3, 3, 16), np.uint16), gain_keV=0.035,
                     offset_keV=0.0)
    _expect(path, "no dataset '/elsewhere'", dataset="/elsewhere")
    _expect(path, "energy_axis must be 'first' or 'last'", energy_axis="middle")


def test_truncated_npy_and_tiff(tmp_path):
    np.save(tmp_path / "cut.npy", np.ones((8, 8, 64), np.uint16))
    raw = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) // 2])
    _expect(tmp_path / "cut.npy", "truncated|not a readable")
    tifffile.imwrite(tmp_path / "cut.tif", np.ones((64, 8, 8), np.uint16))
    raw = (tmp_path / "cut.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 3])  # inside the image data
    _expect(tmp_path / "cut.tif", "truncated|not a readable|cannot decode", energy_axis="first")


@pytest.mark.parametrize("lazy", [False, True])
def test_damaged_compressed_chunk(tmp_path, xrf_counts, lazy):
    counts, energy = xrf_counts
    path = write_cxc_hdf5(tmp_path / "damaged.h5", counts, energy)
    with h5py.File(path, "r") as file:
        chunk = file["spectra"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[chunk.byte_offset : chunk.byte_offset + chunk.size] = b"\xff" * chunk.size
    path.write_bytes(bytes(raw))
    _expect(path, "damaged or truncated", lazy=lazy)
