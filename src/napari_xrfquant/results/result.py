"""The quantification result and the background mask applied to it.

:class:`QuantResult` is what :func:`napari_xrfquant.quantify` returns and what
every output is made from: the napari layers, the TIFF export, the statistics
and the CLI summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError

#: Default threshold (counts per pixel) below which a pixel is background: air
#: around the sample gives only scattered beam (tens of counts on the CXC sample,
#: against thousands on metal), and a composition fitted to it is noise.
DEFAULT_MASK_BELOW_COUNTS = 200.0

#: Unit of the fit-quality map, everywhere (layers, TIFFs, CSV): the Poisson
#: deviance of the measured spectrum against the re-simulated one, divided by its
#: expectation at the fitted degrees of freedom; about 1 for a spectrum the model
#: explains.
FIT_QUALITY_UNIT = "deviance/dof"

#: Unit of concentrations and their uncertainties (bulk samples).
CONCENTRATION_UNIT = "wt%"

#: Units a result may carry, and the slug that names its files and CSV columns
#: (``<stem>_wt_percent.tif``, ``mean_ug_per_cm2``): mass fractions of a bulk
#: sample, areal densities of a thin one.
UNIT_SLUGS = {"wt%": "wt_percent", "µg/cm²": "ug_per_cm2"}


@dataclass
class QuantResult:
    """Element maps from :func:`~napari_xrfquant.inference.quantify`.

    Attributes
    ----------
    concentrations
        ``[..., E]`` mass fractions in wt% (float32); NaN where a spectrum has no
        counts or is masked as background.
    uncertainty
        ``[..., E]`` calibrated 1-sigma in wt%.
    fit_quality
        ``[...]`` in :data:`FIT_QUALITY_UNIT`: about 1 when the model explains the spectrum.
    elements
        Element symbols, in the order of the last axis.
    model_id
        Name and weights checksum of the model used.
    device
        Torch device the network or the physics fit ran on (after any fallback).
    seconds
        Wall time of the computation.
    resampled
        Whether the input was resampled onto the model's energy grid.
    total_counts
        ``[...]`` counts each spectrum held in the channels the model reads.
    mask_below_counts
        Background threshold applied by :func:`mask_background` (0: none).
    counts_scale
        What turned the data into counts (a number, or ``[...]`` one per
        spectrum; :mod:`napari_xrfquant.inference.counts`): the data's own
        totals times this are counts.
    unit
        Unit of ``concentrations`` and ``uncertainty``: ``"wt%"`` (bulk) or
        ``"µg/cm²"`` (a thin sample); a key of :data:`UNIT_SLUGS`.
    calibration_sigma_percent
        Relative 1-sigma (%) every value shares beside its own ``uncertainty``:
        the scale a standard set (a thin film's µg/cm²); 0 where none did. It
        does not average down over pixels, so it is kept apart from the maps'.
    """

    concentrations: np.ndarray
    uncertainty: np.ndarray
    fit_quality: np.ndarray
    elements: list[str]
    model_id: str
    device: str = "cpu"
    seconds: float = 0.0
    resampled: bool = False
    total_counts: np.ndarray | None = field(default=None, repr=False)
    mask_below_counts: float = 0.0
    counts_scale: float | np.ndarray = field(default=1.0, repr=False)
    unit: str = CONCENTRATION_UNIT
    calibration_sigma_percent: float = 0.0

    @property
    def unit_slug(self) -> str:
        """The unit as file names and CSV columns write it (``"wt_percent"``)."""
        return UNIT_SLUGS[self.unit]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one map (``(H, W)`` for a cube)."""
        return tuple(int(s) for s in self.fit_quality.shape)

    def map(self, element: str) -> np.ndarray:
        """The concentration map (wt%) of one element."""
        return self.concentrations[..., self._index(element)]

    def sigma(self, element: str) -> np.ndarray:
        """The 1-sigma map (wt%) of one element."""
        return self.uncertainty[..., self._index(element)]

    def _index(self, element: str) -> int:
        try:
            return self.elements.index(element)
        except ValueError:
            raise XRFQuantError(
                f"element {element!r} is not quantified by {self.model_id} "
                f"(elements: {', '.join(self.elements)})"
            ) from None


def background_mask(total_counts: Any, mask_below_counts: float) -> np.ndarray | None:
    """Pixels too weak to quantify: total counts below ``mask_below_counts``.

    The network returns a composition for any spectrum, including the few tens
    of scattered counts of air beside the sample; masking those pixels keeps
    maps and region statistics about the sample.

    Parameters
    ----------
    total_counts
        Counts per pixel, any shape.
    mask_below_counts
        Threshold in counts; 0 (or less) switches masking off.

    Returns
    -------
    numpy.ndarray or None
        Boolean array shaped like ``total_counts``, True where masked; None when
        masking is off.
    """
    threshold = float(mask_below_counts)
    if not threshold > 0:
        return None
    counts = np.asarray(total_counts, dtype=np.float64)
    # a pixel whose counts are unknown (NaN) cannot pass the threshold either
    return ~(counts >= threshold)


def mask_background(
    result: QuantResult, mask: np.ndarray | None, mask_below_counts: float = 0.0
) -> QuantResult:
    """A copy of ``result`` with NaN concentrations and uncertainties where ``mask``.

    Fit quality keeps its values: it is what shows the masked pixels are not sample.

    Parameters
    ----------
    result
        The quantification of an image (or any batch of spectra).
    mask
        Boolean, shaped like ``result.fit_quality``; None returns ``result`` as is.
    mask_below_counts
        The threshold the mask came from, recorded in the copy.

    Returns
    -------
    QuantResult
        The masked copy.
    """
    if mask is None:
        return result
    if mask.shape != result.fit_quality.shape:
        raise XRFQuantError(
            f"background mask of shape {mask.shape} does not match the result "
            f"{result.fit_quality.shape}"
        )
    concentrations = result.concentrations.copy()
    uncertainty = result.uncertainty.copy()
    concentrations[mask] = np.nan
    uncertainty[mask] = np.nan
    return replace(
        result,
        concentrations=concentrations,
        uncertainty=uncertainty,
        mask_below_counts=float(mask_below_counts),
    )


#: Median fit quality above which a result is flagged: the model's spectra do not
#: explain the measured ones. On its own instrument the bundled model's median is
#: about 1.0; twice the Poisson deviance means systematic misfit.
POOR_FIT_THRESHOLD = 2.0


def poor_fit_message(result: QuantResult, where: str = "",
                     threshold: float = POOR_FIT_THRESHOLD) -> str | None:
    """A warning when the median fit quality of the quantified pixels exceeds ``threshold``.

    Pixels masked as background (NaN wt%) are left out. None when the fit is good
    or nothing was quantified.
    """
    fit = np.asarray(result.fit_quality, dtype=np.float64)
    quantified = np.isfinite(np.asarray(result.concentrations, dtype=np.float64)).all(axis=-1)
    values = fit[quantified & np.isfinite(fit)]
    if values.size == 0:
        return None
    median = float(np.median(values))
    if median <= threshold:
        return None
    prefix = f"{where}: " if where else ""
    return (
        f"{prefix}median fit quality {median:.3g} (above {threshold:g}): model "
        f"{result.model_id} does not explain these spectra (another instrument, other "
        "elements, a shifted energy calibration?); compare a pixel's spectrum with its "
        "reconstruction in the spectrum inspector, or calibrate the instrument "
        f"(xrfquant calibrate, the Calibrate dock) before trusting the {result.unit}"
    )
