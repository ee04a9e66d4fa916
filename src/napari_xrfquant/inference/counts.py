"""What the numbers in a cube are: counts, or something to turn back into counts.

The network reads ``log10`` of a spectrum's total counts as its noise level, and
sigma and the fit quality assume Poisson counts, so data that are not raw
counts must be scaled back before quantifying: ``counts = data * counts_scale``.

The rule when no scale is given (:func:`infer_counts_scale`, on a sample of the
data):

1. integer-valued data are counts (scale 1);
2. spectra that sum to 1 (within 1 %) are noise-free expectations, read as
   :data:`~napari_xrfquant.models.features.NOISELESS_COUNTS` counts, the count
   level the network learnt noise-free spectra at (so sigma is that of a
   noise-free spectrum);
3. other non-integer data are quantified as they are, as if they were counts.

Cases 2 and 3 warn (:class:`CountsWarning`). :func:`resolve_counts_scale` adds
what a file provides: a per-pixel map (``Cube.metadata["maps"]``) named by the
user (``"I0"``, ``"live_time"``), or, for non-integer data, the file's map named
``I0`` or ``i0`` (the data are taken as counts divided by it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.models.features import NOISELESS_COUNTS

#: Names of a per-pixel map that undoes I0 normalisation of non-integer data.
NORMALISER_NAMES = ("I0", "i0")
#: Spectra whose totals lie this close to 1 are taken as normalised to sum 1.
SUM_ONE_TOLERANCE = 0.01
#: Spectra looked at to decide (the first ones of the data).
SAMPLE_SPECTRA = 4096


class CountsWarning(UserWarning):
    """The data are not raw counts, and how they were turned into counts."""


def counts_sample(data: Any, n: int = SAMPLE_SPECTRA) -> np.ndarray:
    """Up to ``n`` spectra ``(n, C)`` from the start of ``data`` (numpy or dask)."""
    flat = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data.reshape(1, -1)
    sample = flat[:n]
    if hasattr(sample, "compute"):
        sample = sample.compute()
    sample = np.asarray(sample)
    # integer types stay as they are (whole numbers by their type); others as float64
    return sample if sample.dtype.kind in "uib" else sample.astype(np.float64)


def is_integer_valued(sample: np.ndarray) -> bool:
    """Whether every value is a whole number (counts, whatever the dtype)."""
    if sample.dtype.kind in "uib":
        return True
    return bool(np.all(np.isfinite(sample)) and np.all(sample == np.round(sample)))


def infer_counts_scale(sample: np.ndarray) -> float:
    """The scale that turns data like ``sample`` into counts (see the module rule).

    Warns
    -----
    CountsWarning
        For data that are not integer-valued.
    """
    scale, message = counts_rule(sample)
    if message:
        warnings.warn(message, CountsWarning, stacklevel=3)
    return scale


def counts_rule(sample: np.ndarray) -> tuple[float, str | None]:
    """The module rule on ``sample``: the scale, and what to tell the user (or None)."""
    if is_integer_valued(sample):
        return 1.0, None
    totals = sample.sum(axis=-1)
    totals = totals[totals > 0]
    if totals.size and np.all(np.abs(totals - 1.0) <= SUM_ONE_TOLERANCE):
        return float(NOISELESS_COUNTS), (
            f"the spectra sum to 1: read as noise-free expectations ({NOISELESS_COUNTS:.0e} "
            "counts each; sigma is that of a noise-free spectrum); give counts_scale "
            "(--counts-scale) if they are counts divided by something"
        )
    return 1.0, (
        "the data are not integer counts: quantified as if they were counts (sigma and fit "
        "quality assume Poisson counts at this scale); give counts_scale (--counts-scale "
        "VALUE or the name of a per-pixel map such as I0) to turn them back into counts"
    )


def check_counts_scale(scale: Any, lead_shape: tuple[int, ...]) -> np.ndarray | float:
    """A positive number, or an array of one value per spectrum (``lead_shape``).

    Raises
    ------
    XRFQuantError
        For a scale that is not positive and finite, or of another shape.
    """
    array = np.asarray(scale, dtype=np.float64)
    if array.ndim == 0:
        if not (np.isfinite(array) and array > 0):
            raise XRFQuantError(f"counts_scale must be a positive number, not {scale!r}")
        return float(array)
    if array.shape != lead_shape:
        raise XRFQuantError(
            f"counts_scale has shape {array.shape}; the data have {lead_shape} spectra"
        )
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise XRFQuantError(
            f"counts_scale holds a negative or non-finite value at {where}: {array[where]!r}"
        )
    return array


def resolve_counts_scale(
    spec: str | float | None, data: Any, maps: Mapping[str, np.ndarray] | None = None
) -> np.ndarray | float | None:
    """The ``counts_scale`` for :func:`~napari_xrfquant.inference.quantify` of a cube.

    :func:`decide_counts_scale`, its message as a :class:`CountsWarning`.
    """
    scale, message = decide_counts_scale(spec, data, maps)
    if message:
        warnings.warn(message, CountsWarning, stacklevel=2)
    return scale


def decide_counts_scale(
    spec: str | float | None, data: Any, maps: Mapping[str, np.ndarray] | None = None
) -> tuple[np.ndarray | float | None, str | None]:
    """The ``counts_scale`` of a cube, and what to tell the user about it (or None).

    Parameters
    ----------
    spec
        None (the rule, with the file's I0 map for non-integer data), a number,
        or the name of a per-pixel map of ``maps`` (text that is a number is a
        number).
    data
        The cube ``(H, W, C)``.
    maps
        Per-pixel maps the file holds (``Cube.metadata["maps"]``).

    Returns
    -------
    scale : float, numpy.ndarray or None
        None leaves the decision to :func:`infer_counts_scale` inside quantify.
    message : str or None

    Raises
    ------
    XRFQuantError
        For a name that is no map of the file.
    """
    maps = dict(maps or {})
    if spec is None:
        found = [name for name in NORMALISER_NAMES if name in maps]
        if not found or is_integer_valued(counts_sample(data)):
            return None, None
        message = (
            f"the data are not integer counts: multiplied by the file's {found[0]} map to "
            "turn them back into counts (give counts_scale to say otherwise)"
        )
        return np.asarray(maps[found[0]], dtype=np.float64), message
    if isinstance(spec, str):
        try:
            return float(spec), None
        except ValueError:
            pass
        if spec not in maps:
            known = ", ".join(maps) or "none"
            raise XRFQuantError(f"counts scale {spec!r}: no such per-pixel map (the file has: "
                                f"{known}); give a number or one of those")
        return np.asarray(maps[spec], dtype=np.float64), None
    return float(spec), None
