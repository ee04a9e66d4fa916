"""Time cube reading on a full CXC frame: 264 x 264 pixels x 1024 channels, uint16.

For each format (CXC HDF5 gzip, NeXus energy-first uncompressed, TIFF energy-first
plain and zlib, ``.npy``) prints the file size, the time of an eager
``read_cube``, of a lazy open, of one pixel's spectrum on the lazy cube (median
of many random pixels), and of the element-map TIFF round trip. Counts are
Poisson draws around two Gaussian lines on a flat background, about 2.4e3
counts per pixel.

Usage::

    .venv/bin/python benchmarks/bench_io.py [--folder /tmp/xrfquant-bench] [--clicks 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import tifffile

from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.io import read_cube, read_element_maps, write_cxc_hdf5, write_element_maps


def frame(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 264 x 264 x 1024 uint16 cube and the reference energy axis (keV)."""
    det = reference_instrument().detector
    energy_keV = det.offset_keV + det.gain_keV * np.arange(det.n_channels)
    expected = 2.0 + 50 * np.exp(-0.5 * ((energy_keV - 9.71) / 0.1) ** 2)
    expected += 30 * np.exp(-0.5 * ((energy_keV - 8.05) / 0.09) ** 2)
    rng = np.random.default_rng(seed)
    rows, cols = det.pixels
    return rng.poisson(expected, (rows, cols, len(expected))).astype(np.uint16), energy_keV


def write_all(folder: Path, counts: np.ndarray, energy_keV: np.ndarray) -> dict[str, Path]:
    """The same cube in every format read_cube supports."""
    files = {"CXC HDF5 (gzip)": folder / "cube.h5"}
    t0 = time.perf_counter()
    write_cxc_hdf5(files["CXC HDF5 (gzip)"], counts, energy_keV, overwrite=True)
    print(f"write_cxc_hdf5: {time.perf_counter() - t0:.2f} s")
    first = np.ascontiguousarray(np.moveaxis(counts, -1, 0))
    files["NeXus (E, Y, X)"] = folder / "cube.nxs"
    with h5py.File(files["NeXus (E, Y, X)"], "w") as file:
        entry = file.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "counts", "axes": ["energy", "y", "x"]})
        data["counts"] = first
        data["energy"] = energy_keV
        data["energy"].attrs["units"] = "keV"
    calib = json.dumps({"offset_keV": float(energy_keV[0]),
                        "gain_keV": float(energy_keV[1] - energy_keV[0])})
    for label, name, compression in (("TIFF (E, Y, X)", "plain.tif", None),
                                     ("TIFF zlib (E, Y, X)", "zlib.tif", "zlib")):
        files[label] = folder / name
        tifffile.imwrite(files[label], first, compression=compression)
        (folder / f"{Path(name).stem}.calib.json").write_text(calib)
    files[".npy (Y, X, E)"] = folder / "cube.npy"
    np.save(files[".npy (Y, X, E)"], counts)
    (folder / "cube.calib.json").write_text(calib)
    return files


def time_reads(path: Path, counts: np.ndarray, clicks: int) -> str:
    t0 = time.perf_counter()
    cube = read_cube(path, lazy=False)
    eager_s = time.perf_counter() - t0
    assert np.array_equal(cube.data, counts)
    del cube
    t0 = time.perf_counter()
    cube = read_cube(path, lazy=True)
    open_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, counts.shape[:2], size=(clicks, 2))
    click_s = []
    for row, col in pixels:
        t0 = time.perf_counter()
        spectrum = cube.spectrum(int(row), int(col))
        click_s.append(time.perf_counter() - t0)
        assert np.array_equal(spectrum, counts[row, col])
    cube.close()
    size_mb = path.stat().st_size / 1e6
    return (f"{size_mb:8.1f} MB  eager {eager_s:6.2f} s  lazy open {open_s * 1e3:7.1f} ms  "
            f"spectrum median {statistics.median(click_s) * 1e3:6.2f} ms, "
            f"max {max(click_s) * 1e3:6.1f} ms")


def time_maps(folder: Path) -> str:
    rng = np.random.default_rng(2)
    maps = rng.uniform(0, 100, (5, 264, 264)).astype(np.float32)
    t0 = time.perf_counter()
    (path,) = write_element_maps(folder / "maps.tif", maps, ["Au", "Ag", "Cu", "Ni", "Zn"],
                                 pixel_size_um=48.0, overwrite=True)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = read_element_maps(path)
    read_s = time.perf_counter() - t0
    assert np.array_equal(back.maps, maps)
    return f"element maps 5 x 264 x 264: write {write_s * 1e3:.1f} ms, read {read_s * 1e3:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="where to write the files")
    parser.add_argument("--clicks", type=int, default=200, help="pixels read on each lazy cube")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    import dask.array  # noqa: F401 - imported once here so no lazy open pays for it

    print(f"import dask.array: {time.perf_counter() - t0:.2f} s (first lazy open only)")
    counts, energy_keV = frame()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        files = write_all(folder, counts, energy_keV)
        for label, path in files.items():
            print(f"{label:22s} {time_reads(path, counts, args.clicks)}")
        print(time_maps(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
