"""``quantify_physics``: a cube's maps from the simulator alone, for any element list.

The map's sum spectrum first refines the detector (calibration, resolution,
tails: :func:`~.physics_setup.refine_detector`); every sample pixel is then
fitted (:class:`~.physics_fit.PhysicsQuantifier`). A bulk sample gives wt%
(with oxide maps beside the elements' when the matrix is ``"oxides"``); a
thin one (the instrument's ``[sample]``) gives µg/cm², its scale set by a
standard film's certified areal densities on the same map (the elements of
the standard that are fitted; each pixel gets the map's scale over the
number of pixels, which holds for equal dwell times and a steady beam).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.devices import resolve_device
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.inference.physics_setup import (
    pile_up_significance,
    refine_detector,
    scale_from_standard,
)
from napari_xrfquant.inference.slabs import SLAB_PIXELS, RowReader, row_slabs
from napari_xrfquant.jobs import Progress, drive
from napari_xrfquant.results.result import DEFAULT_MASK_BELOW_COUNTS, QuantResult

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.physics.standards import Standard

#: Significance of sum peaks in a map's sum spectrum from which pixels fit them.
PILE_UP_SIGMA = 5.0
#: Pixels fitted between two progress events (and cancel points).
PHYSICS_CHUNK = 8192
#: What :attr:`QuantResult.model_id` says of a physics quantification.
PHYSICS_MODEL_ID = "physics (no network)"


@dataclass
class PhysicsNotes:
    """What the set-up step found, for the user: the sum spectrum's fit quality
    before and after the detector's refinement, a film's scale, and whether the
    pixels got a pile-up component (its amount in the sum spectrum at least
    :data:`PILE_UP_SIGMA` sigma)."""

    fit_quality_before: float
    fit_quality_after: float
    scale: float | None = None
    scale_sigma: float | None = None
    instrument: Instrument | None = None
    pile_up: bool = False


def quantify_physics(
    counts: ArrayLike,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    **options: Any,
) -> tuple[QuantResult, PhysicsNotes]:
    """:func:`iter_quantify_physics` run to its end (the same arguments)."""
    return drive(iter_quantify_physics(counts, energy_keV, elements, instrument, **options))


def iter_quantify_physics(
    counts: ArrayLike,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    *,
    matrix: str = "elements",
    fit_keV: tuple[float, float] | None = None,
    standard: Standard | None = None,
    refine: bool = True,
    mask_below_counts: float = DEFAULT_MASK_BELOW_COUNTS,
    chunk: int = PHYSICS_CHUNK,
    device: str = "auto",
) -> Generator[Progress, None, tuple[QuantResult, PhysicsNotes]]:
    """Quantify every pixel of ``counts`` ``(H, W, C)`` with the simulator, yielding
    :class:`~napari_xrfquant.jobs.Progress` (stage ``"set-up"``: the simulator
    built and the detector refined; ``"quantify"``: pixels fitted, a chunk at a
    time), so a worker can show it and cancel between chunks.

    Parameters
    ----------
    counts, energy_keV
        The cube and its channel energies (resampled onto the instrument's
        channels when they differ).
    elements
        The sample's elements (any list, Na-U).
    instrument
        The set-up; a ``[sample]`` makes it a thin sample (µg/cm²).
    matrix
        ``"elements"`` or ``"oxides"`` (bulk samples), or a balance compound (a
        formula or NIST compound; :mod:`.balance`), whose map comes last.
    fit_keV
        Energy range fitted (default: 1 keV to 1 keV above the beam).
    standard
        Thin samples: the film of known areal densities the map shows.
    refine
        Refine the detector on the map's sum spectrum first.
    mask_below_counts
        Pixels with fewer counts are background (NaN).
    chunk
        Pixels fitted between two progress events (each chunk's component
        shapes follow its own mean matrix).
    device
        Where the pixels' fits run: ``"auto"`` (a CUDA GPU when there is one),
        ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    QuantResult, PhysicsNotes

    Raises
    ------
    XRFQuantError
        For a thin sample without a µg/cm² standard, a standard with none of
        the elements, no pixel above the background threshold, or a device that
        is not there.
    """
    from napari_xrfquant.io.grid import same_grid
    from napari_xrfquant.physics.oxides import OXIDES, oxygen_per_element

    started = time.perf_counter()
    device = resolve_device(device)
    target = instrument.energy_axis_keV()
    resampled = not same_grid(np.asarray(energy_keV), target)
    shape = tuple(int(n) for n in np.shape(counts))
    if len(shape) != 3:
        raise XRFQuantError(f"counts of shape {shape}: give a cube (H, W, C)")
    rows, cols = shape[:2]

    # a slab of whole rows at a time: a lazy cube is never read whole, and an
    # in-memory one is never copied whole
    totals = np.empty(rows * cols)
    summed = np.zeros(len(target))
    for first, last, spectra in row_slabs(counts, energy_keV, target, SLAB_PIXELS):
        totals[first * cols:last * cols] = spectra.sum(axis=1)
        summed += spectra[totals[first * cols:last * cols] >= mask_below_counts].sum(axis=0)
    sample = totals >= mask_below_counts
    if not sample.any():
        raise XRFQuantError(f"no pixel holds {mask_below_counts:g} counts or more")
    thin = instrument.sample is not None
    if thin and (standard is None or standard.ug_per_cm2 is None):
        raise XRFQuantError("a thin sample's µg/cm² need a standard film of known areal "
                            "densities on the map (--standard NAME|FILE.csv)")
    n_sample = int(sample.sum())
    yield Progress(0, n_sample, "set-up")
    quantifier = PhysicsQuantifier(elements, instrument, matrix=matrix, fit_keV=fit_keV,
                                   device=device)
    notes = PhysicsNotes(np.nan, np.nan, instrument=instrument)
    if refine:
        refined, notes.fit_quality_before, notes.fit_quality_after = refine_detector(
            quantifier, summed)
        quantifier = quantifier.with_instrument(refined)
        notes.instrument = refined
    if pile_up_significance(quantifier, summed) >= PILE_UP_SIGMA:  # sum peaks: fitted
        quantifier, notes.pile_up = quantifier.with_pile_up(summed), True
    if thin:
        assert standard is not None and standard.ug_per_cm2 is not None
        known = {e: v for e, v in standard.ug_per_cm2.items() if e in quantifier.elements}
        if not known:
            raise XRFQuantError(f"standard {standard.name} holds none of "
                                f"{', '.join(quantifier.elements)}")
        scale, scale_sigma = scale_from_standard(quantifier, summed, known, standard.sigma)
        notes.scale, notes.scale_sigma = scale, scale_sigma
        quantifier.scale = scale / n_sample  # equal dwell: each pixel its share
    fitted = np.flatnonzero(sample)
    reader = RowReader(counts, energy_keV, target)
    fits = []
    for start in range(0, n_sample, chunk):
        yield Progress(start, n_sample, "quantify")
        pixels = fitted[start:start + chunk]  # the chunk's pixels lie in these rows
        first, last = int(pixels[0]) // cols, int(pixels[-1]) // cols + 1
        rows_read = reader.rows(first, last)
        fits.append(quantifier.fit(rows_read[pixels - first * cols]))
    yield Progress(n_sample, n_sample, "quantify")
    names = list(fits[0].elements)
    values = np.concatenate([f.values for f in fits])
    sigma = np.concatenate([f.sigma for f in fits])
    fit_quality = np.concatenate([f.fit_quality for f in fits])
    if matrix == "oxides":  # each element's oxide beside it, with its oxygen
        oxidised = [i for i, e in enumerate(names) if e in OXIDES]
        factor = np.array([1.0 + oxygen_per_element(OXIDES[names[i]]) for i in oxidised])
        values = np.concatenate([values, values[:, oxidised] * factor], axis=1)
        sigma = np.concatenate([sigma, sigma[:, oxidised] * factor], axis=1)
        names += [OXIDES[names[i]] for i in oxidised]
    elif quantifier.balance is not None:  # the compound the detector does not see
        balance = [np.concatenate([getattr(f, key) for f in fits])[:, None]
                   for key in ("balance_wt_percent", "balance_sigma")]
        values, sigma = np.hstack([values, balance[0]]), np.hstack([sigma, balance[1]])
        names.append(matrix)
    maps = np.full((rows * cols, len(names)), np.nan, dtype=np.float32)
    sigma_maps = np.full_like(maps, np.nan)
    quality = np.full(rows * cols, np.nan, dtype=np.float32)
    maps[sample], sigma_maps[sample], quality[sample] = values, sigma, fit_quality
    result = QuantResult(
        concentrations=maps.reshape(rows, cols, -1),
        uncertainty=sigma_maps.reshape(rows, cols, -1),
        fit_quality=quality.reshape(rows, cols),
        elements=names,
        model_id=PHYSICS_MODEL_ID,
        seconds=time.perf_counter() - started,
        resampled=resampled,
        total_counts=totals.reshape(rows, cols),
        device=device,
        mask_below_counts=mask_below_counts,
        unit="µg/cm²" if thin else "wt%",
        calibration_sigma_percent=0.0 if notes.scale is None or notes.scale_sigma is None
        else 100.0 * notes.scale_sigma / notes.scale,
    )
    return result, notes
