"""Element-map TIFFs: exact round trip, ImageJ metadata, safe writing."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.io import ElementMaps, read_element_maps, write_element_maps

ELEMENTS = ["Au", "Ag", "Cu"]


@pytest.fixture
def maps():
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 100, (3, 9, 11)).astype(np.float32)
    values[0, 0, 0] = np.nan  # a masked pixel stays masked
    values[1, 2, 3] = 1e-30  # float32 values survive bit for bit
    return values


def test_stack_round_trip(tmp_path, maps):
    written = write_element_maps(tmp_path / "run.tif", maps, ELEMENTS, pixel_size_um=48.0,
                                 extra={"model_id": "cxc-au-v1", "source": "scan.h5"})
    assert written == [tmp_path / "run.tif"]
    back = read_element_maps(written[0])
    assert isinstance(back, ElementMaps)
    assert back.maps.dtype == np.float32 and back.maps.shape == maps.shape
    np.testing.assert_array_equal(back.maps, maps)  # NaN == NaN for array_equal positions
    assert np.isnan(back.maps[0, 0, 0])
    assert back.elements == ELEMENTS and back.labels == ELEMENTS
    assert back.unit == "wt%" and back.kind == "concentration"
    assert back.pixel_size_um == 48.0
    assert back.extra == {"model_id": "cxc-au-v1", "source": "scan.h5"}


def test_plain_tifffile_and_imagej_see_the_same(tmp_path, maps):
    (path,) = write_element_maps(tmp_path / "run.tif", maps, ELEMENTS, pixel_size_um=48.0)
    np.testing.assert_array_equal(tifffile.imread(path), maps)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "CYX"
        meta = tif.imagej_metadata
        assert meta["Labels"] == ELEMENTS
        assert meta["unit"] == "um" and meta["channels"] == 3
        x_per_um, y_per_um = tif.pages.first.resolution
        assert 1 / x_per_um == pytest.approx(48.0, rel=1e-6)
        assert 1 / y_per_um == pytest.approx(48.0, rel=1e-6)
        assert tif.pages.first.dtype == np.float32


def test_without_pixel_size(tmp_path, maps):
    (path,) = write_element_maps(tmp_path / "nopx", maps, ELEMENTS)
    assert path.name == "nopx.tif"
    assert read_element_maps(path).pixel_size_um is None


def test_per_element_files_beside_a_stem(tmp_path, maps):
    written = write_element_maps(tmp_path / "out" / "run1.tif", maps, ELEMENTS,
                                 pixel_size_um=12.5, layout="per-element")
    assert [p.name for p in written] == ["run1_Au.tif", "run1_Ag.tif", "run1_Cu.tif"]
    for index, path in enumerate(written):
        single = read_element_maps(path)
        assert single.elements == [ELEMENTS[index]]
        np.testing.assert_array_equal(single.maps[0], maps[index])
        np.testing.assert_array_equal(tifffile.imread(path), maps[index])
    folder = read_element_maps(tmp_path / "out")
    assert folder.elements == ELEMENTS  # written order, not alphabetical
    np.testing.assert_array_equal(folder.maps, maps)
    assert folder.pixel_size_um == 12.5


def test_per_element_into_a_folder(tmp_path, maps):
    written = write_element_maps(tmp_path / "maps", maps, ELEMENTS, layout="per-element")
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "maps/maps_Au.tif", "maps/maps_Ag.tif", "maps/maps_Cu.tif"
    ]


def test_uncertainty_and_fit_quality(tmp_path, maps):
    (sigma,) = write_element_maps(tmp_path / "s.tif", maps, ELEMENTS, kind="uncertainty")
    back = read_element_maps(sigma)
    assert back.kind == "uncertainty" and back.elements == ELEMENTS
    assert back.labels == ["Au ±1σ", "Ag ±1σ", "Cu ±1σ"]
    with tifffile.TiffFile(sigma) as tif:
        assert tif.imagej_metadata["Labels"] == back.labels
    files = write_element_maps(tmp_path / "s", maps, ELEMENTS, kind="uncertainty",
                               layout="per-element")
    assert files[0].name == "s_Au_sigma.tif"
    (fit,) = write_element_maps(tmp_path / "fit.tif", maps[0], ["fit quality"],
                                unit="chi2/dof", kind="fit-quality")
    back = read_element_maps(fit)
    assert back.unit == "chi2/dof" and back.maps.shape == (1, 9, 11)
    np.testing.assert_array_equal(back.maps[0], maps[0])


def test_refuses_to_overwrite_any_target_before_writing_any(tmp_path, maps):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "run_Ag.tif").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=r"run_Ag\.tif"):
        write_element_maps(folder / "run.tif", maps, ELEMENTS, layout="per-element")
    assert sorted(p.name for p in folder.iterdir()) == ["run_Ag.tif"]
    assert (folder / "run_Ag.tif").read_bytes() == b"keep me"
    write_element_maps(folder / "run.tif", maps, ELEMENTS, layout="per-element", overwrite=True)
    np.testing.assert_array_equal(read_element_maps(folder / "run_Ag.tif").maps[0], maps[1])


def test_no_partial_files_when_a_write_fails_midway(tmp_path, maps, monkeypatch):
    import napari_xrfquant.io.maps as module

    real = module._write_one
    calls = []

    def fail_on_third(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, *args, **kwargs)

    monkeypatch.setattr(module, "_write_one", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        write_element_maps(tmp_path / "run.tif", maps, ELEMENTS, layout="per-element")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arguments",
    [
        {"elements": ["Au", "Ag"]},
        {"elements": ["Au", "Au", "Cu"]},
        {"maps": np.ones((2, 3, 4, 5))},
        {"maps": np.full((3, 2, 2), "x")},
        {"layout": "zip"},
        {"kind": "density"},
        {"pixel_size_um": -1.0},
        {"path_name": "maps.png"},
        {"extra": {"not json": object()}},
    ],
)
def test_bad_arguments(tmp_path, maps, arguments):
    options = {"maps": maps, "elements": ELEMENTS, **arguments}
    path = tmp_path / options.pop("path_name", "maps.tif")
    with pytest.raises(XRFQuantError):
        write_element_maps(path, **options)
    assert list(tmp_path.iterdir()) == []


def test_foreign_tiff_and_missing_file(tmp_path):
    path = tmp_path / "fiji.tif"
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    tifffile.imwrite(path, data, imagej=True, resolution=(0.5, 0.5),
                     metadata={"axes": "CYX", "Labels": ["Fe", "Zn"], "unit": "micron"})
    back = read_element_maps(path)
    assert back.elements == ["Fe", "Zn"] and back.pixel_size_um == pytest.approx(2.0)
    np.testing.assert_array_equal(back.maps, data)
    with pytest.raises(XRFQuantError, match=r"^gone\.tif: no such file"):
        read_element_maps(tmp_path / "gone.tif")
    (tmp_path / "junk.tif").write_text("no tiff")
    with pytest.raises(XRFQuantError, match=r"^junk\.tif: not a readable TIFF"):
        read_element_maps(tmp_path / "junk.tif")
