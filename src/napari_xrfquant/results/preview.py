"""A PNG overview of a quantification: one panel per element map and the fit quality."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.results.result import CONCENTRATION_UNIT, FIT_QUALITY_UNIT


def write_preview(
    path: str | os.PathLike[str], result: Any, title: str, overwrite: bool = False
) -> Path:
    """Write a PNG with one panel per element map and the fit-quality map (matplotlib Agg).

    Colour scales run from 0 to the 99.5th percentile, so a few hot pixels do
    not wash a map out.
    """
    from matplotlib.figure import Figure

    maps = np.asarray(result.concentrations)
    if maps.ndim != 3:
        raise XRFQuantError(f"{title}: a preview needs 2-D maps, got shape {maps.shape[:-1]}")
    panels = [*result.elements, "fit quality"]
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.0 * columns, 3.4 * rows), dpi=100, layout="constrained")
    for index, label in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        is_map = index < len(result.elements)
        image = maps[..., index] if is_map else np.asarray(result.fit_quality)
        finite = image[np.isfinite(image)]
        high = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        shown = axes.imshow(
            image,
            cmap="magma" if is_map else "viridis",
            vmin=0.0,
            vmax=max(high, 1e-6),
            interpolation="nearest",
        )
        unit = CONCENTRATION_UNIT if is_map else FIT_QUALITY_UNIT
        axes.set_title(f"{label} ({unit})")
        axes.set_xticks([])
        axes.set_yticks([])
        figure.colorbar(shown, ax=axes, shrink=0.85)
    figure.suptitle(f"{title} - {result.model_id}")
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png")
    return target
