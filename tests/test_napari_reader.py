"""The npe2 manifest, reader, writer and sample-data hooks, through a real napari viewer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_napari_fixtures import (
    REF_GAIN_KEV,
    sample_path,
    tiny_counts,
    write_tiny_cxc,
    write_tiny_generic_h5,
    write_tiny_nexus,
    write_tiny_npy,
    write_tiny_tiff,
)

PLUGIN = "napari-xrfquant"

WRITERS = {
    "cxc.h5": write_tiny_cxc,
    "nexus.nxs": write_tiny_nexus,
    "generic.hdf5": write_tiny_generic_h5,
    "stack.tif": write_tiny_tiff,
    "cube.npy": write_tiny_npy,
}


def error_messages() -> list[str]:
    """Text of every error/warning notification napari has received."""
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records]


def test_manifest_validates() -> None:
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()
    contributions = manifest.contributions
    assert {w.display_name for w in contributions.widgets} >= {"Quantify", "Spectrum inspector"}
    from napari_xrfquant.io import SUPPORTED_SUFFIXES

    # the manifest offers every format the core reads
    assert set(contributions.readers[0].filename_patterns) == {
        f"*{suffix}" for suffix in SUPPORTED_SUFFIXES
    }
    assert contributions.sample_data[0].display_name == "CXC gold sample (simulated)"


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_reader_opens_every_format_with_kev_axis(make_napari_viewer, tmp_path, name) -> None:
    path = WRITERS[name](tmp_path / name)
    counts, energy_keV, _ = tiny_counts()
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    stem = Path(name).stem
    cube = viewer.layers[stem]
    total = viewer.layers[f"{stem} total counts"]

    # energy first, as a slider, in keV; the per-channel energies ride along
    assert cube.data.shape == (counts.shape[2], *counts.shape[:2])
    assert cube.axis_labels[0] == "energy (keV)"
    assert str(cube.units[0]) in ("keV", "kiloelectron_volt")
    assert cube.scale[0] == pytest.approx(REF_GAIN_KEV)
    np.testing.assert_allclose(cube.metadata["energy_keV"], energy_keV, atol=1e-9)
    assert cube.metadata["calibration_source"] in ("file", "sidecar")
    assert Path(cube.metadata["source_path"]) == path
    # a view of the cube, not a copy: the Cube's (H, W, C) data underneath
    np.testing.assert_array_equal(np.asarray(cube.data)[:, 2, 3], counts[2, 3])
    assert np.shares_memory(np.asarray(cube.data), cube.metadata["cube"].data)
    np.testing.assert_array_equal(cube.metadata["cube"].spectrum(2, 3), counts[2, 3])
    np.testing.assert_array_equal(total.data, counts.sum(axis=-1))
    assert viewer.dims.axis_labels[0] == "energy (keV)"

    # the slider position read out in keV (channel 230 is Cu K-alpha at 8.05 keV)
    from napari_xrfquant._napari._energy_readout import text_overlay

    viewer.dims.set_current_step(0, 230)
    assert "E = 8.050 keV (channel 230)" in text_overlay(viewer).text
    cube.visible = False  # no visible cube, no energy read-out
    assert not text_overlay(viewer).visible


def test_cxc_truth_regions_become_a_labels_layer(make_napari_viewer, tmp_path) -> None:
    path = write_tiny_cxc(tmp_path / "sample.h5")
    _, _, regions = tiny_counts()
    viewer = make_napari_viewer()
    viewer.open(path, plugin=PLUGIN)
    labels = viewer.layers["sample truth regions"]
    np.testing.assert_array_equal(labels.data, regions)
    assert labels.metadata["region_names"][2] == "right alloy"
    assert labels.scale[-1] == pytest.approx(48.0)  # pixel size from the file, um


def test_reader_declines_plain_images_and_other_files(tmp_path) -> None:
    from napari_xrfquant._napari._reader import get_reader

    plain = tmp_path / "image.npy"
    np.save(plain, np.zeros((5, 5)))
    assert get_reader(str(plain)) is None
    assert get_reader(str(tmp_path / "notes.txt")) is None
    cube = write_tiny_npy(tmp_path / "cube.npy")
    assert get_reader(str(cube)) is not None


def test_bad_file_gives_a_notification_not_a_traceback(make_napari_viewer, tmp_path) -> None:
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"this is not an HDF5 file at all")
    viewer = make_napari_viewer()
    viewer.open(broken, plugin=PLUGIN)
    assert len(viewer.layers) == 0
    messages = [m for m in error_messages() if "broken.h5" in m]
    assert messages, "no notification names the bad file"
    assert all("Traceback" not in m and "\n" not in m for m in messages)


def test_writer_saves_selected_maps_with_unit_and_pixel_size(tmp_path) -> None:
    from napari_xrfquant import io
    from napari_xrfquant._napari._writer import write_element_map_layers

    au = np.arange(12, dtype=np.float32).reshape(3, 4)
    cu = 100.0 - au
    meta = {"scale": (48.0, 48.0), "units": ("micrometer", "micrometer")}
    layer_data = [
        (au, {**meta, "name": "Au [wt%]", "metadata": {"element": "Au", "unit": "wt%"}}, "image"),
        (cu, {**meta, "name": "Cu [wt%]", "metadata": {"element": "Cu", "unit": "wt%"}}, "image"),
    ]
    written = write_element_map_layers(str(tmp_path / "maps.tif"), layer_data)
    maps = io.read_element_maps(written[0])
    assert list(maps.elements) == ["Au", "Cu"]
    assert maps.unit == "wt%"
    assert maps.pixel_size_um == pytest.approx(48.0)
    np.testing.assert_array_equal(maps.maps[1], cu)


def test_sample_data_contribution_opens_the_sample(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "cxc_gold_sample")
    cube = viewer.layers["cxc_gold_sample"]
    assert cube.data.shape == (1024, 264, 264)
    assert Path(cube.metadata["source_path"]) == sample_path()
    assert "cxc_gold_sample total counts" in viewer.layers
    assert "cxc_gold_sample truth regions" in viewer.layers

    from napari_xrfquant._napari._energy_readout import text_overlay

    viewer.dims.set_current_step(0, 277)  # 277 x 0.035 keV = 9.695 keV, by Au L-alpha
    assert "E = 9.695 keV (channel 277)" in text_overlay(viewer).text


def test_the_real_axo_map_is_in_the_sample_menu(make_napari_viewer, monkeypatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_warning", shown.append)
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "axo_std")
    cube = viewer.layers["axo_std"]
    assert cube.data.shape == (2000, 11, 11)
    assert cube.metadata["calibration_source"] == "lines"
    assert any("misplace the lines" in message for message in shown)


def test_the_real_samples_missing_is_one_line(monkeypatch, tmp_path) -> None:
    from napari_xrfquant.errors import CubeReadError
    from napari_xrfquant.sample import REAL_SAMPLES_ENV, real_sample_path

    monkeypatch.setenv(REAL_SAMPLES_ENV, str(tmp_path))
    with pytest.raises(CubeReadError, match="the real samples are not at"):
        real_sample_path("aps_2ide/axo_std.mda")


def test_lazy_cube_stays_lazy_and_one_pixel_reads_are_exact(make_napari_viewer, tmp_path) -> None:
    from napari_xrfquant._napari._layers import cube_layer_data
    from napari_xrfquant.io import read_cube

    path = write_tiny_cxc(tmp_path / "lazy.h5")
    counts, _, _ = tiny_counts()
    cube = read_cube(path, lazy=True)
    try:
        layers = cube_layer_data(cube, "lazy")
        data = layers[0][0]
        assert type(data).__module__.startswith("dask")  # a lazy transpose, nothing loaded
        assert data.shape == (counts.shape[2], *counts.shape[:2])
        viewer = make_napari_viewer()
        for layer_data in layers:
            viewer._add_layer_from_data(*layer_data)
        np.testing.assert_array_equal(viewer.layers["lazy"].metadata["cube"].spectrum(4, 7),
                                      counts[4, 7])
        np.testing.assert_array_equal(viewer.layers["lazy total counts"].data, counts.sum(-1))
    finally:
        cube.close()


def test_docked_plugin_opens_hdf5_without_the_choose_reader_dialog(make_napari_viewer, tmp_path):
    """Problem 10: napari's GUI open (_open_or_raise_error) shows the dialog on
    MultipleReaderError; after the dock opens, .h5 has one preferred reader."""
    from napari.settings import get_settings

    from napari_xrfquant._napari._reader_preference import HDF5_PATTERNS
    from test_napari_fixtures import write_tiny_cxc

    viewer = make_napari_viewer()
    settings = get_settings().plugins
    settings.extension2reader = {"*.hdf": "some-other-plugin"}  # the user's choice stays
    viewer.window.add_plugin_dock_widget("napari-xrfquant", "Quantify")
    preferences = settings.extension2reader
    assert preferences["*.h5"] == preferences["*.hdf5"] == "napari-xrfquant"
    assert preferences["*.hdf"] == "some-other-plugin"
    assert set(HDF5_PATTERNS) <= set(preferences)
    added = viewer._open_or_raise_error([str(write_tiny_cxc(tmp_path / "tiny.h5"))])
    assert [layer.name for layer in added][:1] == ["tiny"]
