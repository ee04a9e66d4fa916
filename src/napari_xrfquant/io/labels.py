"""Label images: integer region maps the size of a cube's map (standards, regions)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_xrfquant.errors import XRFQuantError


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Integer region labels ``(H, W)`` (0: none) from a TIFF or ``.npy`` file.

    Raises
    ------
    XRFQuantError
        For a missing or unreadable file, or one that is no 2-D integer image.
    """
    file = Path(path)
    if not file.is_file():
        raise XRFQuantError(f"{file}: no such labels file")
    try:
        if file.suffix.lower() == ".npy":
            labels = np.load(file, allow_pickle=False)
        else:
            import tifffile

            labels = tifffile.imread(file)
    except Exception as exc:  # numpy and tifffile raise many types for damaged files
        raise XRFQuantError(f"{file.name}: not a readable label image ({exc})") from None
    # single-sample axes go (a TIFF page axis), the map's own axes stay even when 1 x 1
    while labels.ndim > 2 and 1 in labels.shape:
        labels = np.squeeze(labels, axis=labels.shape.index(1))
    if labels.ndim != 2 or labels.dtype.kind not in "iub":
        raise XRFQuantError(f"{file.name}: labels must be a 2-D integer image, got {labels.shape}")
    return labels.astype(np.int64)
