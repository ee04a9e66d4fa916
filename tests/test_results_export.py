"""One export path: the CLI and the napari Quantify dock write the same files.

The dock is added the way a user reaches it (``add_plugin_dock_widget``, so
napari hands it a proxy viewer) and the cube is opened through the plugin's
reader, as File > Open does.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_xrfquant.cli import main
from napari_xrfquant.io import read_element_maps, write_cxc_hdf5
from napari_xrfquant.models.bundle import load_model
from napari_xrfquant.results import FIT_QUALITY_UNIT

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]
PLUGIN = "napari-xrfquant"


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    """A 6 x 8 CXC file: rose gold left, yellow gold right, 4e3 counts/pixel, 48 um pixels."""
    from napari_xrfquant.physics import simulate

    model = load_model()
    rose = [58.56, 3.90, 35.65, 0.0, 1.891]
    yellow = [75.12, 24.90, 0.0, 0.0, 0.0]
    wt = np.array([rose if col < 4 else yellow for _ in range(6) for col in range(8)])
    counts = simulate(wt, ELEMENTS, counts=4e3, seed=5).reshape(6, 8, -1)
    path = tmp_path_factory.mktemp("cubes") / "alloy.h5"
    write_cxc_hdf5(path, counts.astype(np.uint16), model.energy_keV,
                   metadata={"pixel_size_um": 48.0})
    return path


def _gui_export(viewer, qtbot, cube_file, folder):
    viewer.open(cube_file, plugin=PLUGIN)
    from napari_xrfquant._napari._registry import DEFAULT_LABEL

    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    # the model list is shared by all docks of the session: pick what the CLI uses
    widget.model_combo.setCurrentText(DEFAULT_LABEL)
    widget.device_combo.setCurrentText("cpu")
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    return widget.results.export(folder, layout="stack")


def _records(folder):
    out = {}
    for path in sorted(folder.glob("*.tif")):
        maps = read_element_maps(path)
        out[path.name] = maps
    return out


def test_cli_and_gui_export_the_same_files_and_metadata(make_napari_viewer, qtbot, cube_file,
                                                          tmp_path):
    cli_dir, gui_dir = tmp_path / "cli", tmp_path / "gui"
    assert main(["quantify", str(cube_file), "-o", str(cli_dir), "--quiet", "--device", "cpu"]) == 0
    gui_written = _gui_export(make_napari_viewer(), qtbot, cube_file, gui_dir)

    cli_names = {p.name for p in cli_dir.iterdir()} - {"summary.csv", "xrfquant-manifest.json"}
    assert cli_names == {p.name for p in gui_written}
    assert cli_names == {"alloy_wt_percent.tif", "alloy_sigma_wt_percent.tif",
                         "alloy_fit_quality.tif", "alloy_statistics.csv"}
    cli, gui = _records(cli_dir), _records(gui_dir)
    for name in cli:
        a, b = cli[name], gui[name]
        assert (a.kind, a.unit, a.labels, a.elements, a.pixel_size_um) == (
            b.kind, b.unit, b.labels, b.elements, b.pixel_size_um)
        assert a.extra == b.extra
        np.testing.assert_allclose(a.maps, b.maps, rtol=1e-4, atol=1e-4, equal_nan=True)

    sigma = cli["alloy_sigma_wt_percent.tif"]
    assert sigma.kind == "uncertainty"
    assert sigma.labels == [f"{e} ±1σ" for e in ELEMENTS]
    assert sigma.unit == "wt%"
    fit = cli["alloy_fit_quality.tif"]
    assert (fit.kind, fit.unit, fit.labels) == ("fit-quality", FIT_QUALITY_UNIT, ["fit quality"])
    assert cli["alloy_wt_percent.tif"].extra["source"] == "alloy.h5"

    rows = {}
    for folder in (cli_dir, gui_dir):
        with open(folder / "alloy_statistics.csv", newline="") as handle:
            rows[folder.name] = list(csv.DictReader(handle))
    assert [r["element"] for r in rows["cli"]] == ELEMENTS
    for a, b in zip(rows["cli"], rows["gui"], strict=True):
        assert (a["source"], a["region"], a["n_pixels"], a["model_id"]) == (
            b["source"], b["region"], b["n_pixels"], b["model_id"])
        assert float(a["mean_wt_percent"]) == pytest.approx(float(b["mean_wt_percent"]), abs=1e-3)
        assert float(a["sd_wt_percent"]) == pytest.approx(float(b["sd_wt_percent"]), abs=1e-3)


def test_exported_maps_open_back_as_the_layers_they_were(make_napari_viewer, cube_file,
                                                         tmp_path):
    """Quantify, export, then File > Open through the plugin: the same layers come back
    (names, data, unit, colormap, pixel size), and read_cube refuses them as cubes."""
    from napari_xrfquant import quantify
    from napari_xrfquant._napari._layers import SpatialFrame
    from napari_xrfquant._napari._result_layers import result_layer_data
    from napari_xrfquant.errors import CubeReadError
    from napari_xrfquant.io import read_cube
    from napari_xrfquant.results import export_result

    cube = read_cube(cube_file)
    result = quantify(cube.data, cube.energy_keV, device="cpu")
    written = export_result(tmp_path, result, "alloy", pixel_size_um=48.0, source="alloy")
    expected = {kwargs["name"]: (data, kwargs) for data, kwargs, _ in
                result_layer_data(result, "alloy", SpatialFrame.from_pixel_size(48.0))}
    viewer = make_napari_viewer()
    opened = []
    for path in (p for p in written if p.suffix == ".tif"):
        opened += viewer.open(path, plugin=PLUGIN)
        with pytest.raises(CubeReadError, match="written by napari-xrfquant, not a spectrum"):
            read_cube(path)
    assert sorted(layer.name for layer in opened) == sorted(expected)
    for layer in opened:
        data, kwargs = expected[layer.name]
        np.testing.assert_array_equal(layer.data, data)
        assert tuple(layer.scale) == (48.0, 48.0)
        assert layer.metadata["kind"] == kwargs["metadata"]["kind"]
        colormap = kwargs["colormap"]
        assert layer.colormap.name == getattr(colormap, "name", colormap)
    units = {layer.metadata["kind"]: layer.metadata["unit"] for layer in opened}
    assert units["concentration"] == "wt%" and units["fit_quality"] == FIT_QUALITY_UNIT
    for layer in opened:  # napari's status bar gives each value with its unit
        layer.visible = True  # (napari reads no value from a hidden layer)
        value = layer.get_status((1.0, 1.0), world=False)["value"]
        assert value.endswith(f" {layer.metadata['unit']}"), value
