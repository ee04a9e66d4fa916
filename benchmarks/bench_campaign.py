"""Many frames: the same 50 cubes in-process and on a dask.distributed LocalCluster.

Writes ``--frames`` variants of the sample cube (rolled and mirrored copies, CXC
HDF5, 264 x 259 x 1024 each), quantifies them with ``xrfquant quantify`` in this
process and with ``--cluster local:N``, and prints the wall time of each, how
many outputs are bit-identical and the largest difference, then the time of a
rerun on the cluster's folder (every frame done before: skipped).

Usage::

    .venv/bin/python benchmarks/bench_campaign.py [--frames 50] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_frames(folder: Path, count: int) -> list[str]:
    """``count`` variants of the sample cube: rolled along x, every other one mirrored."""
    from napari_xrfquant.io import read_cube, write_cxc_hdf5
    from napari_xrfquant.sample import sample_cube_path

    with read_cube(sample_cube_path()) as cube:
        data = np.asarray(cube.data)
        energy = cube.energy_keV
    paths = []
    for i in range(count):
        variant = np.roll(data, 5 * i, axis=1)
        if i % 2:
            variant = variant[::-1]
        path = folder / f"frame_{i:03d}.h5"
        write_cxc_hdf5(path, np.ascontiguousarray(variant), energy)
        paths.append(str(path))
    return paths


def timed(argv: list[str]) -> float:
    from napari_xrfquant.cli import main

    started = time.perf_counter()
    status = main(argv)
    if status != 0:
        raise SystemExit(f"xrfquant {' '.join(argv[:1])} exited with {status}")
    return time.perf_counter() - started


def compare(here: Path, there: Path) -> tuple[int, int, float]:
    """(files compared, bit-identical files, largest absolute difference)."""
    import tifffile

    names = sorted(p.name for p in here.glob("*.tif"))
    if names != sorted(p.name for p in there.glob("*.tif")):
        raise SystemExit("the two runs wrote different files")
    identical, largest = 0, 0.0
    for name in names:
        a, b = tifffile.imread(here / name), tifffile.imread(there / name)
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        if not same_nan:
            raise SystemExit(f"{name}: masked pixels differ")
        diff = np.nanmax(np.abs(a - b)) if np.isfinite(a).any() else 0.0
        identical += bool(np.array_equal(a, b, equal_nan=True))
        largest = max(largest, float(diff))
    return len(names), identical, largest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default=None, help="write everything here and keep it")
    args = parser.parse_args(argv)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    try:
        (root / "frames").mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = write_frames(root / "frames", args.frames)
        print(f"frames           {args.frames} x 264 x 259 x 1024 written in "
              f"{time.perf_counter() - started:.0f} s")
        common = ["--device", "cpu", "--quiet"]
        here = timed(["quantify", *paths, "-o", str(root / "here"), *common])
        print(f"in-process       {here:.1f} s ({here / args.frames:.2f} s per frame)")
        cluster = ["--cluster", f"local:{args.workers}"]
        there = timed(["quantify", *paths, "-o", str(root / "there"), *common, *cluster])
        print(f"local:{args.workers}          {there:.1f} s ({there / args.frames:.2f} s per "
              "frame, with the cluster's start)")
        files, identical, largest = compare(root / "here", root / "there")
        print(f"outputs          {files} TIFFs; {identical} bit-identical; largest difference "
              f"{largest:.2g} (wt% or fit quality)")
        rerun = timed(["quantify", *paths, "-o", str(root / "there"), *common, *cluster])
        print(f"rerun            {rerun:.1f} s (every frame done before: skipped)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
