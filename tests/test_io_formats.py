"""NeXus, generic HDF5, TIFF stacks and .npy: axis order, calibration, laziness."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
import tifffile

from conftest import SYNTH_GAIN_KEV, SYNTH_OFFSET_KEV
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.io import CalibrationWarning, read_cube


def _sidecar(path, offset_keV=SYNTH_OFFSET_KEV, gain_keV=SYNTH_GAIN_KEV):
    sidecar = path.with_name(f"{path.stem}.calib.json")
    sidecar.write_text(json.dumps({"offset_keV": offset_keV, "gain_keV": gain_keV}))


def _check(cube, counts, energy, source):
    np.testing.assert_array_equal(np.asarray(cube.data), counts)
    np.testing.assert_allclose(cube.energy_keV, energy, atol=1e-9)
    assert cube.calibration_source == source
    np.testing.assert_array_equal(cube.spectrum(5, 2), counts[5, 2])
    np.testing.assert_array_equal(cube.total_counts(), counts.sum(axis=-1))


# -- NeXus ---------------------------------------------------------------------
def _nexus(path, signal, axes, energy, units):
    with h5py.File(path, "w") as file:
        file.attrs["default"] = "entry"
        entry = file.create_group("entry")
        entry.attrs.update({"NX_class": "NXentry", "default": "xrf"})
        entry.create_group("other").attrs["NX_class"] = "NXdata"
        group = entry.create_group("xrf")
        group.attrs.update({"NX_class": "NXdata", "signal": "counts", "axes": axes})
        group.create_dataset("counts", data=signal, chunks=True)
        group["energy"] = energy
        group["energy"].attrs["units"] = units
        group["y"] = np.arange(signal.shape[axes.index("y")]) * 48.0
    return path


@pytest.mark.parametrize("lazy", [False, True])
def test_nexus_energy_last_in_keV(tmp_path, xrf_counts, lazy):
    counts, energy = xrf_counts
    path = _nexus(tmp_path / "last.nxs", counts, ["y", "x", "energy"], energy, "keV")
    with read_cube(path, lazy=lazy) as cube:
        assert cube.format == "NeXus" and cube.lazy == lazy
        assert cube.metadata["dataset"] == "/entry/xrf/counts"
        _check(cube, counts, energy, "file")


@pytest.mark.parametrize("lazy", [False, True])
def test_nexus_energy_first_in_eV(tmp_path, xrf_counts, lazy):
    counts, energy = xrf_counts
    signal = np.moveaxis(counts, -1, 0)
    path = _nexus(tmp_path / "first.h5", signal, ["energy", "y", "x"], energy * 1000, "eV")
    with read_cube(path, lazy=lazy) as cube:
        assert cube.metadata["energy_axis_in_file"] == "first"
        _check(cube, counts, energy, "file")


def test_nexus_indices_attributes_and_bin_edges(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    signal = np.moveaxis(counts, -1, 0)
    edges = np.append(energy - SYNTH_GAIN_KEV / 2, energy[-1] + SYNTH_GAIN_KEV / 2)
    path = tmp_path / "idx.nxs"
    with h5py.File(path, "w") as file:
        entry = file.create_group("scan")
        entry.attrs["NX_class"] = "NXentry"
        group = entry.create_group("data")
        group.attrs.update({"NX_class": "NXdata", "signal": "spectra", "energy_indices": 0})
        group["spectra"] = signal
        group["energy"] = edges
        group["energy"].attrs["units"] = "keV"
    _check(read_cube(path), counts, energy, "file")


# -- generic HDF5 --------------------------------------------------------------
def test_generic_hdf5_takes_largest_3d_dataset(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = tmp_path / "generic.hdf5"
    with h5py.File(path, "w") as file:
        file["small/cube"] = np.ones((2, 2, 4), np.uint16)
        file["image"] = np.ones((100, 100), np.uint16)
        node = file.create_dataset("measurement/xrf", data=counts)
        node.attrs["offset_keV"] = SYNTH_OFFSET_KEV
        node.attrs["gain_keV"] = SYNTH_GAIN_KEV
        node.attrs["pixel_size_um"] = 20.0
    cube = read_cube(path)
    assert cube.format == "HDF5" and cube.metadata["dataset"] == "/measurement/xrf"
    assert cube.metadata["pixel_size_um"] == 20.0
    _check(cube, counts, energy, "file")
    with pytest.warns(CalibrationWarning, match="reference instrument"):
        small = read_cube(path, dataset="small/cube", energy_axis="last")
    assert small.shape == (2, 2, 4) and small.calibration_source == "reference"


def test_generic_hdf5_energy_first_from_energy_attribute(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = tmp_path / "attr.h5"
    with h5py.File(path, "w") as file:
        node = file.create_dataset("data", data=np.moveaxis(counts, -1, 0))
        node.attrs["energy_keV"] = energy
    _check(read_cube(path), counts, energy, "file")


def test_generic_hdf5_sidecar_and_energy_axis_override(tmp_path):
    # 16 x 16 x 16: the shape cannot tell the axes apart, the argument does.
    rng = np.random.default_rng(3)
    counts = rng.poisson(5.0, (16, 16, 16)).astype(np.uint32)
    path = tmp_path / "square.h5"
    with h5py.File(path, "w") as file:
        file["data"] = counts
    _sidecar(path)
    energy = SYNTH_OFFSET_KEV + SYNTH_GAIN_KEV * np.arange(16)
    _check(read_cube(path, energy_axis="last"), counts, energy, "sidecar")
    first = read_cube(path, energy_axis="first")
    np.testing.assert_array_equal(first.data, np.moveaxis(counts, 0, -1))


# -- TIFF ----------------------------------------------------------------------
@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("lazy", [False, True])
def test_tiff_energy_first_stack_is_detected(tmp_path, xrf_counts, compression, lazy):
    counts, energy = xrf_counts
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.moveaxis(counts, -1, 0), compression=compression)
    _sidecar(path)
    with read_cube(path, lazy=lazy) as cube:
        assert cube.lazy == lazy and cube.metadata["energy_axis_in_file"] == "first"
        _check(cube, counts, energy, "sidecar")


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("lazy", [False, True])
def test_tiff_energy_last(tmp_path, xrf_counts, compression, lazy):
    counts, energy = xrf_counts
    path = tmp_path / "last.tiff"
    tifffile.imwrite(path, counts, compression=compression, photometric="minisblack",
                     planarconfig="contig")
    _sidecar(path)
    with read_cube(path, lazy=lazy) as cube:
        assert cube.metadata["energy_axis_in_file"] == "last"
        _check(cube, counts, energy, "sidecar")


def test_tiff_lazy_spectrum_does_not_compute_dask_chunks(tmp_path, xrf_counts):
    import dask.array as da

    counts, _ = xrf_counts
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.moveaxis(counts, -1, 0), compression="zlib")
    _sidecar(path)
    with read_cube(path, lazy=True) as cube:
        cube.data = da.map_blocks(_refuse, cube.data, dtype=cube.data.dtype)
        np.testing.assert_array_equal(cube.spectrum(7, 3), counts[7, 3])


def _refuse(block):
    raise AssertionError("a dask chunk was computed for one pixel")


def test_tiff_imagej_axes_beat_the_shape_rule(tmp_path):
    # (E, Y, X) = (8, 64, 6): by lengths alone X looks least like Y, so the shape
    # rule would take the last axis for energy; the ImageJ axes say T first.
    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, (64, 6, 8)).astype(np.uint16)  # (Y, X, E)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.moveaxis(counts, -1, 0)[:, None, None], imagej=True,
                     metadata={"axes": "TZCYX"})
    _sidecar(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, counts)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.moveaxis(counts, -1, 0))
    _sidecar(plain)
    assert read_cube(plain).metadata["energy_axis_in_file"] == "last"  # the rule, fooled


def test_tiff_energy_axis_override(tmp_path):
    rng = np.random.default_rng(2)
    stored = rng.poisson(3.0, (9, 9, 9)).astype(np.uint16)
    path = tmp_path / "cube.tif"
    tifffile.imwrite(path, stored)
    _sidecar(path)
    np.testing.assert_array_equal(read_cube(path, energy_axis="last").data, stored)
    np.testing.assert_array_equal(
        read_cube(path, energy_axis="first").data, np.moveaxis(stored, 0, -1)
    )


def test_tiff_calibration_in_our_json_description(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    path = tmp_path / "described.tif"
    tifffile.imwrite(path, np.moveaxis(counts, -1, 0),
                     metadata={"offset_keV": SYNTH_OFFSET_KEV, "gain_keV": SYNTH_GAIN_KEV,
                               "pixel_size_um": 48.0})
    cube = read_cube(path)
    assert cube.metadata["pixel_size_um"] == 48.0
    _check(cube, counts, energy, "file")


# -- npy -------------------------------------------------------------------------
@pytest.mark.parametrize("lazy", [False, True])
def test_npy_both_axis_orders(tmp_path, xrf_counts, lazy):
    counts, energy = xrf_counts
    np.save(tmp_path / "last.npy", counts)
    np.save(tmp_path / "first.npy", np.moveaxis(counts, -1, 0))
    for name in ("last", "first"):
        _sidecar(tmp_path / f"{name}.npy")
        with read_cube(tmp_path / f"{name}.npy", lazy=lazy) as cube:
            assert cube.lazy == lazy
            assert cube.metadata["energy_axis_in_file"] == name
            _check(cube, counts, energy, "sidecar")


def test_npy_lazy_by_threshold_and_reference_calibration(tmp_path, xrf_counts):
    counts, _ = xrf_counts
    path = tmp_path / "big.npy"
    np.save(path, counts)
    with pytest.warns(CalibrationWarning, match="reference instrument"):
        cube = read_cube(path, lazy_threshold_bytes=counts.nbytes - 1)
    assert cube.lazy
    det = reference_instrument().detector
    expected = det.offset_keV + det.gain_keV * np.arange(counts.shape[2])
    np.testing.assert_allclose(cube.energy_keV, expected)
    assert cube.calibration_source == "reference"
    with pytest.warns(CalibrationWarning):
        assert not read_cube(path, lazy_threshold_bytes=counts.nbytes).lazy


def test_eager_npy_does_not_hold_the_file(tmp_path, xrf_counts):
    counts, _ = xrf_counts
    path = tmp_path / "c.npy"
    np.save(path, counts)
    _sidecar(path)
    cube = read_cube(path)
    path.unlink()
    np.testing.assert_array_equal(cube.data, counts)


@pytest.mark.parametrize(
    "layout",
    [
        {"energy_first": True, "tile": (16, 16), "compression": "zlib"},
        {"energy_first": False, "tile": (16, 16), "compression": "zlib"},
        {"energy_first": False, "rowsperstrip": 3, "compression": "zlib"},
        {"energy_first": True, "planarconfig": "separate", "compression": "zlib"},
        {"energy_first": True, "byteorder": ">"},
        {"energy_first": False, "byteorder": ">"},
    ],
    ids=["tiled-first", "tiled-last", "strips-last", "separate", "big-endian-first",
         "big-endian-last"],
)
def test_tiff_layouts_read_lazily_and_eagerly(tmp_path, layout):
    from conftest import synthetic_counts

    counts, energy = synthetic_counts(40, 36, 64)
    options = dict(layout)
    energy_first = options.pop("energy_first")
    data = np.moveaxis(counts, -1, 0) if energy_first else counts
    if not energy_first or "planarconfig" in options:
        options.setdefault("planarconfig", "contig")
        options["photometric"] = "minisblack"
    path = tmp_path / "layout.tif"
    tifffile.imwrite(path, data, **options)
    _sidecar(path)
    for lazy in (False, True):
        with read_cube(path, lazy=lazy) as cube:
            _check(cube, counts, energy, "sidecar")
            np.testing.assert_array_equal(cube.spectrum(33, 17), counts[33, 17])


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".h5", "-contiguous.h5"])
def test_lazy_open_does_not_load_the_cube(tmp_path, suffix):
    """A lazy open reads a small sample only (dask would copy or hash a whole memmap)."""
    import tracemalloc

    counts = np.ones((128, 128, 1024), np.uint16)  # 32 MiB
    path = tmp_path / f"big{suffix}"
    if suffix == ".npy":
        np.save(path, counts)
    elif suffix == ".tif":
        tifffile.imwrite(path, np.moveaxis(counts, -1, 0))
    else:
        chunks = None if "contiguous" in suffix else (8, 128, 1024)
        with h5py.File(path, "w") as file:
            file.create_dataset("data", data=counts, chunks=chunks)
    _sidecar(path)
    import dask.array  # noqa: F401 - imported before measuring

    tracemalloc.start()
    try:
        cube = read_cube(path, lazy_threshold_bytes=counts.nbytes // 2)
        spectrum = cube.spectrum(100, 50)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cube.lazy
    np.testing.assert_array_equal(spectrum, counts[100, 50])
    assert peak_bytes < counts.nbytes // 4, f"peak {peak_bytes / 2**20:.1f} MiB"
    cube.close()


def test_nexus_energy_in_the_middle(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    signal = np.moveaxis(counts, -1, 1)  # (y, energy, x), e.g. a line-scan detector layout
    path = _nexus(tmp_path / "middle.nxs", signal, ["y", "energy", "x"], energy, "keV")
    for lazy in (False, True):
        with read_cube(path, lazy=lazy) as cube:
            _check(cube, counts, energy, "file")


def test_cubic_shape_warns_and_takes_the_first_axis(tmp_path):
    from napari_xrfquant.io import EnergyAxisWarning

    stored = np.ones((8, 8, 8), np.uint16)
    np.save(tmp_path / "cubic.npy", stored)
    _sidecar(tmp_path / "cubic.npy")
    with pytest.warns(EnergyAxisWarning, match="cannot tell the energy axis"):
        cube = read_cube(tmp_path / "cubic.npy")
    assert cube.metadata["energy_axis_in_file"] == "first"
