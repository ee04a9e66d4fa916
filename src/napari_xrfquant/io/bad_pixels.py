"""Pixels whose counts cannot be counts: masked, counted and reported, never refusing the cube.

Real files carry them: rows a scan never reached (NaN), a dead or saturated
element (inf, negative values), exports from other tools that write NaN for
missing points. A pixel with any NaN, infinite or negative count is *masked*:
its spectrum reads as zeros, so every pixel-wise result (maps, sigma, fit
quality) is NaN there (a spectrum without counts has no composition), and
:data:`MASK_KEY` in ``Cube.metadata`` holds the ``(H, W)`` mask. A
:class:`BadPixelWarning` says how many. A lazy cube is masked as it is read,
chunk by chunk, and not counted at open: that would read the whole file.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from napari_xrfquant.io.cube import Cube

#: ``Cube.metadata`` key of the ``(H, W)`` boolean mask of masked pixels.
MASK_KEY = "masked_pixels"


class BadPixelWarning(UserWarning):
    """Pixels with NaN, infinite or negative counts were masked."""


def bad_pixel_mask(counts: np.ndarray) -> np.ndarray:
    """``(..., )`` True where a spectrum ``(..., C)`` holds a NaN, infinite or negative count."""
    values = np.asarray(counts)
    if values.dtype.kind == "u" or values.dtype.kind == "b":
        return np.zeros(values.shape[:-1], dtype=bool)
    if values.dtype.kind == "f":
        return np.asarray(~(np.isfinite(values) & (values >= 0)).all(axis=-1))
    return np.asarray((values < 0).any(axis=-1))


def _zero_bad(block: np.ndarray) -> np.ndarray:
    bad = bad_pixel_mask(block)
    if not bad.any():
        return block
    clean = np.array(block, copy=True)
    clean[bad] = 0
    return clean


def mask_bad_pixels(cube: Cube) -> Cube:
    """Mask the bad pixels of ``cube`` in place (see the module) and return it.

    Warns
    -----
    BadPixelWarning
        ``"<file>: 23 of 441 pixels masked (NaN, infinite or negative counts);
        they are NaN in the maps"`` when any pixel was masked.
    """
    if cube.dtype.kind in "ub":
        return cube
    if cube.lazy:
        _mask_lazy(cube)
    else:
        bad = bad_pixel_mask(cube.data)
        if bad.any():
            data = np.array(cube.data, copy=True)
            data[bad] = 0
            cube.data = data
            cube.metadata[MASK_KEY] = bad
    message = masked_message(cube)
    if message:
        warnings.warn(message, BadPixelWarning, stacklevel=4)
    return cube


def _mask_lazy(cube: Cube) -> None:
    data: Any = cube.data
    if data.chunks[-1] != (data.shape[-1],):
        data = data.rechunk({2: -1})
    cube.data = data.map_blocks(_zero_bad, dtype=data.dtype)
    reader = cube._read_pixel
    if reader is not None:
        cube._read_pixel = lambda r, c: _zero_bad(np.asarray(reader(r, c))[None])[0]


def masked_message(cube: Cube) -> str | None:
    """One line saying how many pixels were masked, or None when none were."""
    name = cube.path.name if cube.path is not None else "the cube"
    mask = cube.metadata.get(MASK_KEY)
    if mask is not None and np.any(mask):
        n, total = int(np.count_nonzero(mask)), int(np.size(mask))
        return (f"{name}: {n} of {total} pixels masked (NaN, infinite or negative counts); "
                "they are NaN in the maps")
    return None
