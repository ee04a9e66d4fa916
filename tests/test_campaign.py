"""Campaigns: many frames in-process and on a dask.distributed LocalCluster; resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from napari_xrfquant.campaign import MANIFEST_FILE
from napari_xrfquant.cli import main
from napari_xrfquant.io import write_cxc_hdf5
from napari_xrfquant.models.bundle import load_model

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory, alloy_frames):
    """The four alloy frames as CXC files."""
    energy = load_model().energy_keV
    folder = tmp_path_factory.mktemp("frames")
    return [str(write_cxc_hdf5(folder / f"frame_{i:02d}.h5", cube, energy))
            for i, cube in enumerate(alloy_frames)]


def _outputs(folder):
    return {p.name: tifffile.imread(p) for p in sorted(folder.glob("*.tif"))}


def test_local_cluster_of_two_processes_equals_in_process_and_resumes(frames, tmp_path, capsys):
    here, there = tmp_path / "here", tmp_path / "there"
    assert main(["quantify", *frames, "-o", str(here), "--device", "cpu"]) == 0
    capsys.readouterr()
    argv = ["quantify", *frames, "-o", str(there), "--device", "cpu", "--cluster", "local:2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cluster: 2 workers; dashboard http" in out and "4 quantified" in out
    expected, got = _outputs(here), _outputs(there)
    assert sorted(got) == sorted(expected) and len(got) == 4 * 3
    for name, values in expected.items():
        # 1-thread BLAS on the workers, 2 threads here: float32 rounding; a float32 deviance
        # is good to about 2e-4 (tests/test_inference_fused.py)
        rtol = 2e-4 if "fit_quality" in name else 1e-5
        np.testing.assert_allclose(got[name], values, rtol=rtol, atol=1e-5, err_msg=name)
    assert (here / "summary.csv").read_text().count("\n") == (there / "summary.csv").read_text(
    ).count("\n") == 1 + 4 * len(ELEMENTS)
    # a rerun finds every frame done: nothing is quantified or rewritten
    stamps = {p.name: p.stat().st_mtime_ns for p in there.glob("*.tif")}
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 quantified, 4 done before" in out
    assert {p.name: p.stat().st_mtime_ns for p in there.glob("*.tif")} == stamps
    manifest = json.loads((there / MANIFEST_FILE).read_text())
    assert sorted(manifest["frames"]) == [f"frame_{i:02d}" for i in range(4)]


def test_a_frame_that_fails_on_a_worker_is_reported(frames, tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(40))  # an HDF5 signature, nothing after it
    out = tmp_path / "out"
    argv = ["quantify", str(bad), frames[0], "-o", str(out), "--quiet", "--cluster", "local:2"]
    assert main(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "broken.h5" in err[0]
    with open(out / "summary.csv", newline="") as handle:
        assert {row["source"] for row in csv.DictReader(handle)} == {"frame_00.h5"}


def test_a_changed_frame_is_quantified_again(frames, tmp_path, capsys):
    import shutil

    source = tmp_path / "frame.h5"
    shutil.copy(frames[0], source)
    out = tmp_path / "out"
    argv = ["quantify", str(source), "-o", str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    first = tifffile.imread(out / "frame_wt_percent.tif")
    shutil.copy(frames[3], source)  # new content under the old name: not current any more
    assert main(argv) == 2  # its old outputs are not replaced without being asked
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert not np.allclose(tifffile.imread(out / "frame_wt_percent.tif"), first)


@pytest.mark.parametrize("spec", ["local:0", "local:two"])
def test_bad_cluster_spec_is_one_line(frames, tmp_path, capsys, spec):
    assert main(["quantify", frames[0], "-o", str(tmp_path / "o"), "--cluster", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert "local:N" in err and len(err.splitlines()) == 1
