"""Quantification results and everything made from them, without napari.

- :class:`QuantResult`, :func:`background_mask`, :func:`mask_background`;
- regions from label images or polygons (:func:`label_regions`,
  :func:`polygon_regions`) and NaN-aware statistics over them
  (:func:`region_statistics`, :func:`region_histograms`,
  :func:`write_statistics_csv`);
- spectra as CSV (:func:`write_spectra_csv`, the inspector's export);
- the one export of maps, uncertainty, fit quality and statistics that the CLI
  and the napari widgets share (:func:`export_result`).
"""

from __future__ import annotations

from napari_xrfquant.results.export import (
    LAYOUTS,
    PlannedFile,
    export_plan,
    export_result,
    safe_stem,
)
from napari_xrfquant.results.regions import (
    CSV_COLUMNS,
    WHOLE_MAP,
    Region,
    RegionHistogram,
    RegionStatistics,
    label_regions,
    polygon_regions,
    region_histograms,
    region_statistics,
    whole_map,
    write_statistics_csv,
)
from napari_xrfquant.results.result import (
    CONCENTRATION_UNIT,
    DEFAULT_MASK_BELOW_COUNTS,
    FIT_QUALITY_UNIT,
    POOR_FIT_THRESHOLD,
    QuantResult,
    background_mask,
    mask_background,
    poor_fit_message,
)
from napari_xrfquant.results.spectra import write_spectra_csv

__all__ = [
    "CONCENTRATION_UNIT",
    "CSV_COLUMNS",
    "DEFAULT_MASK_BELOW_COUNTS",
    "FIT_QUALITY_UNIT",
    "LAYOUTS",
    "POOR_FIT_THRESHOLD",
    "WHOLE_MAP",
    "PlannedFile",
    "QuantResult",
    "Region",
    "RegionHistogram",
    "RegionStatistics",
    "background_mask",
    "export_plan",
    "export_result",
    "label_regions",
    "mask_background",
    "polygon_regions",
    "poor_fit_message",
    "region_histograms",
    "region_statistics",
    "safe_stem",
    "whole_map",
    "write_spectra_csv",
    "write_statistics_csv",
]
