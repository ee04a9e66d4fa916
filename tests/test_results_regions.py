"""Regions from label images and polygons, and NaN-aware statistics over them (no Qt)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.results import (
    QuantResult,
    label_regions,
    polygon_regions,
    region_statistics,
    whole_map,
)


def _result(maps: np.ndarray) -> QuantResult:
    return QuantResult(
        concentrations=maps,
        uncertainty=np.full_like(maps, 0.5),
        fit_quality=np.arange(maps[..., 0].size, dtype=np.float32).reshape(maps.shape[:2]),
        elements=["Au", "Ag"],
        model_id="m@1",
    )


def test_polygon_rasterises_pixel_centres_inside():
    # a rectangle from (1.5, 1.5) to (4.5, 3.5) holds the centres of rows 2-4, cols 2-3
    (region,) = polygon_regions([[(1.5, 1.5), (1.5, 3.5), (4.5, 3.5), (4.5, 1.5)]], (6, 6), ["box"])
    expected = np.zeros((6, 6), bool)
    expected[2:5, 2:4] = True
    assert region.name == "box"
    np.testing.assert_array_equal(region.mask, expected)


def test_label_regions_are_named_by_label_value():
    labels = np.array([[0, 1, 1], [2, 2, 0]], dtype=np.uint8)
    regions = label_regions(labels, ["air", "rose", ""], prefix="truth label")
    assert [r.name for r in regions] == ["rose", "truth label 2"]
    assert [r.n_pixels for r in regions] == [2, 2]
    with pytest.raises(XRFQuantError, match="integers"):
        label_regions(labels.astype(float))


def test_statistics_are_nan_aware_with_sample_sd_and_median():
    rng = np.random.default_rng(0)
    maps = rng.normal(50, 5, size=(5, 4, 2)).astype(np.float32)
    maps[0, 0, :] = np.nan  # a masked pixel
    stats = region_statistics(_result(maps), [whole_map((5, 4))], source="cube.h5")
    au = next(s for s in stats if s.element == "Au")
    values = maps[..., 0].astype(np.float64).ravel()
    values = values[np.isfinite(values)]
    assert au.n_pixels == 19
    assert au.mean_wt_percent == pytest.approx(values.mean())
    assert au.sd_wt_percent == pytest.approx(np.std(values, ddof=1))
    assert au.median_wt_percent == pytest.approx(np.median(values))
    assert au.mean_sigma_wt_percent == pytest.approx(0.5)
    assert au.median_fit_quality == pytest.approx(np.median(np.arange(20)))
    assert (au.source, au.region, au.model_id) == ("cube.h5", "whole map", "m@1")


def test_empty_region_gives_nan_not_an_error():
    maps = np.ones((3, 3, 2), np.float32)
    (region,) = label_regions(np.array([[0, 0, 0], [0, 7, 0], [0, 0, 0]]))
    maps[1, 1] = np.nan
    stats = region_statistics(_result(maps), [region])
    assert stats[0].n_pixels == 0 and math.isnan(stats[0].mean_wt_percent)


def test_region_of_another_size_is_refused():
    (region,) = label_regions(np.ones((2, 2), np.int32))
    with pytest.raises(XRFQuantError, match="shape"):
        region_statistics(_result(np.ones((3, 3, 2), np.float32)), [region])


def test_region_histograms_share_edges_and_count_finite_pixels():
    from napari_xrfquant.results import QuantResult, Region, region_histograms

    wt = np.zeros((2, 4, 2), np.float32)
    wt[..., 0] = [[1, 2, 3, np.nan], [4, 5, 6, 7]]
    result = QuantResult(wt, wt, np.ones((2, 4), np.float32), ["Au", "Ag"], "m")
    left = np.zeros((2, 4), bool)
    left[:, :2] = True
    regions = [Region("left", left), Region("right", ~left)]
    hists = region_histograms(result, regions, "Au", bins=6)
    np.testing.assert_allclose(hists[0].edges, np.linspace(1, 7, 7))
    assert hists[1].edges is hists[0].edges or np.array_equal(hists[1].edges, hists[0].edges)
    assert hists[0].counts.tolist() == [1, 1, 0, 1, 1, 0]  # 1, 2, 4, 5
    assert hists[1].counts.sum() == 3  # 3, 6, 7 (the NaN is left out)
    flat = region_histograms(result, regions, "Ag")  # one value everywhere: a bin around it
    assert flat[0].counts.sum() == 4 and flat[0].edges[0] < 0 < flat[0].edges[-1]
    with pytest.raises(XRFQuantError, match="no Cu map"):
        region_histograms(result, regions, "Cu")
