"""Data that are not raw counts: normalised to sum 1, I0-normalised, scaled (inference.counts)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

import napari_xrfquant as xq
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.counts import CountsWarning, resolve_counts_scale

WT = [[58.56, 3.90, 35.65, 0.0, 1.891], [75.10, 3.02, 14.69, 4.99, 2.107],
      [75.12, 24.90, 0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def campaign():
    """10 x 12 pixels of the three CRMs, 2e4 counts times an I0 between 0.5 and 1.5."""
    shape = xq.simulate(WT, ["Au", "Ag", "Cu", "Ni", "Zn"])
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    i0 = rng.uniform(0.5, 1.5, labels.size)
    counts = rng.poisson(shape[labels] * 2e4 * i0[:, None]).astype(np.uint32)
    counts, i0 = counts.reshape(10, 12, -1), i0.reshape(10, 12)
    truth = np.asarray(WT)[labels].reshape(10, 12, 5)
    return counts, i0, truth, xq.quantify(counts, device="cpu")


def test_counts_are_counts_without_a_warning(campaign):
    counts = campaign[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CountsWarning)
        result = xq.quantify(counts.astype(np.float32), device="cpu")  # whole numbers as floats
    np.testing.assert_allclose(result.concentrations, campaign[3].concentrations, atol=1e-4)
    assert result.counts_scale == 1.0


def test_spectra_normalised_to_sum_one_are_read_as_noise_free(campaign):
    counts, _, truth, as_counts = campaign
    normalised = counts / counts.sum(axis=-1, keepdims=True)
    with pytest.warns(CountsWarning, match="sum to 1: read as noise-free"):
        result = xq.quantify(normalised, device="cpu")
    # within noise of the counts: the mean difference is below the mean sigma
    difference = np.abs(result.concentrations - as_counts.concentrations)
    assert difference.mean() < 0.5 * as_counts.uncertainty.mean()
    assert np.abs(result.concentrations - truth).mean() < 0.25
    # read as counts of 1 in total, as before the rule, they are far off
    plain = xq.quantify(normalised, device="cpu", counts_scale=1.0)
    assert np.abs(plain.concentrations - truth).mean() > 2 * np.abs(
        result.concentrations - truth).mean()


def test_i0_normalised_floats_with_their_i0_are_the_counts(campaign):
    counts, i0, _, as_counts = campaign
    data = counts / i0[..., None]
    result = xq.quantify(data, device="cpu", counts_scale=i0)
    np.testing.assert_allclose(result.concentrations, as_counts.concentrations, atol=1e-3)
    np.testing.assert_allclose(result.fit_quality, as_counts.fit_quality, rtol=1e-3)
    with pytest.warns(CountsWarning, match="file's I0 map"):
        scale = resolve_counts_scale(None, data, {"I0": i0, "SRcurrent": np.ones_like(i0)})
    np.testing.assert_array_equal(scale, i0)
    assert resolve_counts_scale(None, counts, {"I0": i0}) is None  # counts stay counts
    assert resolve_counts_scale("2.5", data, {}) == 2.5
    with pytest.raises(XRFQuantError, match=r"no such per-pixel map .*I0"):
        resolve_counts_scale("us_ic", data, {"I0": i0})


def test_bad_counts_scales_are_refused(campaign):
    counts = campaign[0]
    with pytest.raises(XRFQuantError, match="positive number"):
        xq.quantify(counts, device="cpu", counts_scale=0.0)
    with pytest.raises(XRFQuantError, match="shape"):
        xq.quantify(counts, device="cpu", counts_scale=np.ones((3, 3)))
    with pytest.raises(XRFQuantError, match="negative or non-finite value at"):
        xq.quantify(counts, device="cpu", counts_scale=-np.ones(counts.shape[:2]))


def test_cli_turns_an_i0_normalised_file_back_into_counts(tmp_path, campaign, capsys):
    from napari_xrfquant.cli import main
    from napari_xrfquant.io import read_element_maps

    counts, i0, _, as_counts = campaign
    path = tmp_path / "normalised.h5"
    with h5py.File(path, "w") as h5:  # XRF-Maps' layout, the spectra divided by I0
        h5["/MAPS/Spectra/mca_arr"] = np.moveaxis(counts / i0[..., None], -1, 0)
        h5["/MAPS/Spectra/Energy_Calibration"] = [0.0, 0.035, 0.0]
        h5["/MAPS/Scalers/Names"] = np.array([b"I0", b"SRcurrent"])
        h5["/MAPS/Scalers/Values"] = np.stack([i0, np.full_like(i0, 100.0)])
    assert main(["quantify", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xrfquant quantify: warning: the data are not integer counts: multiplied by "
                   "the file's I0 map to turn them back into counts (give counts_scale to say "
                   "otherwise)"]
    maps = read_element_maps(tmp_path / "out" / "normalised_wt_percent.tif")
    np.testing.assert_allclose(np.moveaxis(maps.maps, 0, -1), as_counts.concentrations,
                               atol=1e-3)
    # a scale by name, and a name the file lacks
    assert main(["quantify", str(path), "-o", str(tmp_path / "two"), "--quiet",
                 "--counts-scale", "I0"]) == 0
    # a frame-level error: exit status 1, the frame's one line (other frames would go on)
    assert main(["quantify", str(path), "-o", str(tmp_path / "bad"), "--quiet",
                 "--counts-scale", "us_ic"]) == 1
    assert "no such per-pixel map" in capsys.readouterr().err


def test_quantify_dock_warns_and_uses_the_files_i0(make_napari_viewer, qtbot, tmp_path,
                                                    campaign):
    from napari.utils.notifications import notification_manager

    counts, i0, _, as_counts = campaign
    path = tmp_path / "normalised.h5"
    with h5py.File(path, "w") as h5:
        h5["/MAPS/Spectra/mca_arr"] = np.moveaxis(counts / i0[..., None], -1, 0)
        h5["/MAPS/Spectra/Energy_Calibration"] = [0.0, 0.035, 0.0]
        h5["/MAPS/Scalers/Names"] = np.array([b"I0"])
        h5["/MAPS/Scalers/Values"] = i0[None]
    viewer = make_napari_viewer()
    viewer.open(path, plugin="napari-xrfquant")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xrfquant", "Quantify")
    widget.device_combo.setCurrentText("cpu")
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    messages = [str(n.message) for n in notification_manager.records]
    assert any("multiplied by the file's I0 map" in m for m in messages), messages
    au = next(layer for layer in viewer.layers if layer.metadata.get("element") == "Au"
              and layer.metadata.get("kind") == "concentration")
    np.testing.assert_allclose(au.data, as_counts.concentrations[..., 0], atol=1e-3)
