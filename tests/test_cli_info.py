"""``xrfquant info``: output, warnings, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_xrfquant.cli import main
from napari_xrfquant.io import write_cxc_hdf5


@pytest.fixture
def cxc(tmp_path, xrf_counts):
    counts, energy = xrf_counts
    regions = np.zeros(counts.shape[:2], np.uint8)
    wt = np.full((*counts.shape[:2], 2), 50.0, np.float32)
    path = write_cxc_hdf5(tmp_path / "scan.h5", counts, energy, metadata={"pixel_size_um": 48.0},
                          truth_wt_percent=wt, truth_elements=["Au", "Ag"], regions=regions,
                          region_names=["alloy"])
    return path, counts, energy


def _fields(text):
    return dict(line.split(":", 1) for line in text.strip().splitlines())


def test_describes_a_cxc_cube(cxc, capsys):
    path, counts, energy = cxc
    assert main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    fields = {key: value.strip() for key, value in _fields(captured.out).items()}
    assert fields["path"] == str(path)
    assert fields["format"].startswith("CXC HDF5")
    assert fields["shape"].startswith("12 x 10 x 256")
    assert fields["dtype"] == "uint16"
    assert fields["lazy"].startswith("no")
    assert f"{energy[0]:.4f} keV (channel 0)" in fields["energy"]
    assert f"{energy[-1]:.4f} keV (channel 255)" in fields["energy"]
    assert "offset -0.02 keV, gain 0.04 keV/channel; source: file" == fields["calibration"]
    total = counts.sum(axis=-1)
    assert fields["counts/pixel"] == (
        f"min {total.min()}, median {np.median(total):g}, max {total.max()}"
    )
    assert fields["pixel size"] == "48 µm"
    assert "Au, Ag" in fields["ground truth"] and "alloy" in fields["ground truth"]


def test_dataset_and_energy_axis_options(tmp_path, capsys):
    import h5py

    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as file:
        file["big"] = np.ones((6, 6, 6), np.uint16)
        file["small"] = np.full((3, 3, 3), 2, np.uint16)
    (tmp_path / "two.calib.json").write_text(json.dumps({"offset_keV": 1.0, "gain_keV": 0.5}))
    assert main(["info", str(path), "--dataset", "/small", "--energy-axis", "first"]) == 0
    fields = _fields(capsys.readouterr().out)
    assert "dataset /small" in fields["format"]
    assert "source: sidecar" in fields["calibration"]
    assert fields["counts/pixel"].strip() == "min 6, median 6, max 6"


def test_reference_calibration_is_a_warning_line(tmp_path, capsys):
    np.save(tmp_path / "bare.npy", np.ones((2, 3, 40), np.uint16))
    assert main(["info", str(tmp_path / "bare.npy"), "--energy-axis", "last"]) == 0
    captured = capsys.readouterr()
    assert "source: reference" in captured.out
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("xrfquant info: warning: bare.npy: no energy calibration")


@pytest.mark.parametrize("name, content", [
    ("missing.h5", None),
    ("notes.h5", "plain text"),
    ("table.csv", "a,b"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"xrfquant info: error: {name}: ")


def test_console_script(cxc):
    path, _, _ = cxc
    script = Path(sys.executable).with_name("xrfquant")  # installed by pip install -e
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "napari_xrfquant.cli"]
    done = subprocess.run(
        [*command, "info", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "12 x 10 x 256" in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "napari_xrfquant.cli", "info", str(path.with_name("no.h5"))],
        capture_output=True, text=True, timeout=120,
    )
    assert failed.returncode == 2
    assert failed.stderr.strip() == "xrfquant info: error: no.h5: no such file"
