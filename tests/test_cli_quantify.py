"""``xrfquant quantify``: TIFFs, CSV and preview from cube files; one-line errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_xrfquant.cli import main
from napari_xrfquant.io import read_element_maps, write_cxc_hdf5
from napari_xrfquant.models.bundle import load_model

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    """A 4 x 5 pixel CXC file: left half rose gold, right half yellow gold, 2e4 counts/pixel."""
    from napari_xrfquant.physics import simulate

    model = load_model()
    rose = [58.56, 3.90, 35.65, 0.0, 1.891]
    yellow = [75.12, 24.90, 0.0, 0.0, 0.0]
    wt = np.array([rose if col < 2 else yellow for _ in range(4) for col in range(5)])
    counts = simulate(wt, ELEMENTS, counts=2e4, seed=3).reshape(4, 5, -1)
    path = tmp_path_factory.mktemp("cubes") / "alloy.h5"
    write_cxc_hdf5(path, counts.astype(np.uint16), model.energy_keV)
    return path


def test_writes_maps_csv_and_preview(cube_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["quantify", str(cube_file), "-o", str(out), "--preview", "--device", "cpu"]) == 0
    maps = read_element_maps(out / "alloy_wt_percent.tif")
    assert list(maps.elements) == ELEMENTS and maps.maps.shape == (5, 4, 5)
    np.testing.assert_allclose(np.nansum(maps.maps, axis=0), 100.0, rtol=1e-3)
    # a trained model separates the two alloys: Cu high on the left, Ag high on the right
    assert maps.maps[2, :, :2].mean() > 25 and maps.maps[2, :, 3:].mean() < 5
    assert maps.maps[1, :, 3:].mean() > 15
    sigma = tifffile.imread(out / "alloy_sigma_wt_percent.tif")
    assert sigma.shape == (5, 4, 5) and np.all(sigma > 0)
    assert tifffile.imread(out / "alloy_fit_quality.tif").shape == (4, 5)
    assert (out / "alloy_preview.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["element"] for r in rows] == ELEMENTS
    au = float(rows[0]["mean_wt_percent"])
    assert au == pytest.approx(np.mean(maps.maps[0]), rel=1e-4)
    assert "alloy.h5" in capsys.readouterr().out


def test_background_pixels_are_masked(cube_file, tmp_path):
    """Pixels below --mask-below counts are NaN in element and sigma maps, not in the CSV."""
    from napari_xrfquant.io import read_cube

    with read_cube(cube_file) as cube:
        total = cube.total_counts()
    # a threshold between the pixels' own totals: the dimmer half is background
    threshold = float(np.median(total))
    weak = total < threshold
    assert weak.any() and (~weak).any()
    out = tmp_path / "out"
    argv = ["quantify", str(cube_file), "-o", str(out), "--quiet", "--device", "cpu",
            "--mask-below", str(threshold)]
    assert main(argv) == 0
    maps = read_element_maps(out / "alloy_wt_percent.tif")
    assert np.isnan(maps.maps[:, weak]).all() and np.isfinite(maps.maps[:, ~weak]).all()
    assert maps.extra["mask_below_counts"] == threshold
    sigma = read_element_maps(out / "alloy_sigma_wt_percent.tif")
    assert np.isnan(sigma.maps[:, weak]).all()
    assert np.isfinite(tifffile.imread(out / "alloy_fit_quality.tif")).all()
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[0]["n_pixels"]) == int((~weak).sum())
    assert float(rows[0]["mean_wt_percent"]) == pytest.approx(
        np.mean(maps.maps[0][~weak]), rel=1e-4
    )


def test_negative_mask_threshold_is_refused(cube_file, tmp_path, capsys):
    argv = ["quantify", str(cube_file), "-o", str(tmp_path / "o"), "--mask-below", "-5"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--mask-below" in err and len(err.splitlines()) == 1


def test_per_element_layout_and_overwrite(cube_file, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["quantify", str(cube_file), "-o", str(out), "--layout", "per-element", "--quiet"]
    assert main(args) == 0
    for element in ELEMENTS:
        assert (out / f"alloy_{element}_wt_percent.tif").exists()
        assert (out / f"alloy_{element}_sigma_wt_percent.tif").exists()
    made = (out / "alloy_Au_wt_percent.tif").stat().st_mtime_ns
    # the same run again: done before, skipped (resume), nothing rewritten
    capsys.readouterr()
    assert main([a for a in args if a != "--quiet"]) == 0
    assert "1 done before" in capsys.readouterr().out
    assert (out / "alloy_Au_wt_percent.tif").stat().st_mtime_ns == made
    # other settings would replace them: refused without --overwrite, in one line
    assert main([*args, "--mask-below", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err
    assert main([*args, "--mask-below", "0", "--overwrite"]) == 0
    assert (out / "alloy_Au_wt_percent.tif").stat().st_mtime_ns != made


def test_a_bad_frame_is_reported_and_the_others_go_on(cube_file, tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5 at all")
    out = tmp_path / "out"
    assert main(["quantify", str(bad), str(cube_file), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.h5" in err
    assert (out / "alloy_wt_percent.tif").exists() and not list(out.glob("broken*"))
    with open(out / "summary.csv", newline="") as handle:
        assert {row["source"] for row in csv.DictReader(handle)} == {"alloy.h5"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["quantify", "missing.h5", "-o", "out"], "no such file"),
        (["quantify", "{cube}", "-o", "out", "--model", "no-such-model"], "no such model"),
        (["quantify", "{cube}", "-o", "out", "--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_exits_with_one_line(cube_file, tmp_path, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{cube}", str(cube_file)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_not_a_cube(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    assert main(["quantify", str(bad), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert "bad.h5" in err and len(err.splitlines()) == 1
