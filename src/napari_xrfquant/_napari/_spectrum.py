"""What the spectrum inspector plots, computed without Qt.

For one pixel (or a region) of a cube layer: the measured counts, the
composition (from existing concentration layers when the cube was quantified,
else from the model on just that spectrum) and the spectrum the physics
simulator expects for that composition, scaled to the measured counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._napari._layers import (
    KIND_CONCENTRATION,
    KIND_UNCERTAINTY,
    layer_kind,
    result_layers,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Layer

    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.models.bundle import QuantModel
    from napari_xrfquant.physics.lines import Line

#: Lines weaker than this (relative to the strongest line of their shell group)
#: are not marked: they would clutter the plot without helping to read it.
MIN_MARKED_INTENSITY = 0.05


@dataclass
class Composition:
    """wt% and 1-sigma per element, and where they came from."""

    elements: list[str]
    wt_percent: np.ndarray
    sigma_wt_percent: np.ndarray | None
    model_id: str
    source: str  # "layers" or "model"
    #: Background threshold (counts) of the maps it was read from; 0 = none.
    mask_below_counts: float = 0.0

    @property
    def masked(self) -> bool:
        """True when the maps hold no value here (pixels masked as background)."""
        return bool(np.all(np.isnan(np.asarray(self.wt_percent, dtype=np.float64))))


@dataclass
class InspectedSpectrum:
    """One plotted spectrum: measured and reconstructed counts on the cube's energy axis.

    Attributes
    ----------
    label
        ``"pixel (row, col)"`` or the region's name.
    energy_keV
        Channel energies ``(C,)``.
    measured
        Counts ``(C,)`` (summed over a region).
    reconstructed
        Expected counts ``(C,)`` for the composition, or None when no
        simulator is available.
    composition
        The composition, or None when it could not be obtained.
    n_pixels
        Pixels summed into ``measured``.
    """

    label: str
    energy_keV: np.ndarray
    measured: np.ndarray
    reconstructed: np.ndarray | None
    composition: Composition | None
    n_pixels: int = 1


def composition_from_layers(
    layers: Iterable[Layer], source_layer: str, mask: np.ndarray | tuple[int, int]
) -> Composition | None:
    """Mean wt% (and 1-sigma) of the existing result layers at a pixel or over a mask.

    Parameters
    ----------
    layers
        The viewer's layers.
    source_layer
        Name of the cube layer the maps were computed from.
    mask
        ``(row, col)`` of one pixel, or a boolean ``(H, W)`` mask.

    Returns
    -------
    Composition or None
        None when the cube has no concentration layers.
    """
    found = result_layers(layers, source_layer)
    conc = [lyr for lyr in found if layer_kind(lyr) == KIND_CONCENTRATION]
    if not conc:
        return None
    sig = {lyr.metadata.get("element"): lyr for lyr in found if layer_kind(lyr) == KIND_UNCERTAINTY}
    elements = [str(lyr.metadata["element"]) for lyr in conc]

    def value(layer: Any) -> float:
        data = np.asarray(layer.data)
        if isinstance(mask, tuple):
            return float(data[mask])
        selected = data[np.asarray(mask, dtype=bool)]
        return float(np.nanmean(selected)) if selected.size else float("nan")

    wt = np.array([value(lyr) for lyr in conc])
    sigma = None
    if all(e in sig for e in elements):
        sigma = np.array([value(sig[e]) for e in elements])
    return Composition(
        elements,
        wt,
        sigma,
        str(conc[0].metadata.get("model_id", "")),
        "layers",
        float(conc[0].metadata.get("mask_below_counts") or 0.0),
    )


def composition_from_model(
    counts: np.ndarray, energy_keV: np.ndarray, model: QuantModel
) -> Composition:
    """Quantify one spectrum with ``model`` (on the CPU: one spectrum needs no GPU)."""
    from napari_xrfquant.inference import quantify

    result = quantify(np.asarray(counts)[None, :], energy_keV, model=model, device="cpu")
    return Composition(
        list(result.elements),
        np.asarray(result.concentrations[0], dtype=np.float64),
        np.asarray(result.uncertainty[0], dtype=np.float64),
        str(result.model_id),
        "model",
    )


def reconstructed_counts(
    composition: Composition, model: QuantModel, energy_keV: np.ndarray, total_counts: float
) -> np.ndarray | None:
    """The simulator's spectrum for ``composition``, scaled to ``total_counts``, on ``energy_keV``.

    Uses the model's own instrument (its simulator is cached with the model).
    Returns None when the physics simulator is not available.
    """
    import torch

    from napari_xrfquant.inference import resample_counts, simulator_forward_model

    forward = simulator_forward_model(model, "cpu")
    order = [composition.elements.index(e) for e in model.elements]
    wt = np.nan_to_num(composition.wt_percent[order], nan=0.0).clip(min=0.0)
    with torch.inference_mode():
        wt_percent = torch.as_tensor(wt[None, :], dtype=torch.float32)
        spectrum = forward.spectrum(wt_percent)[0].double().cpu().numpy()
    model_energy = np.asarray(model.energy_keV, dtype=np.float64)
    target = np.asarray(energy_keV, dtype=np.float64)
    same = target.shape == model_energy.shape and np.allclose(target, model_energy, atol=1e-6)
    if not same:
        spectrum = resample_counts(spectrum, model_energy, target)
    norm = float(spectrum.sum())
    return spectrum * (float(total_counts) / norm) if norm > 0 else spectrum


def marked_lines(
    elements: Sequence[str], instrument: Instrument | None,
    energy_range_keV: tuple[float, float],
) -> list[Line]:
    """Element lines to mark on the plot: strong enough and inside the plotted range."""
    from napari_xrfquant.physics import element_lines

    low, high = energy_range_keV
    return [
        line
        for line in element_lines(list(elements), instrument)
        if low <= float(line.energy_keV) <= high
        and float(line.relative_intensity) >= MIN_MARKED_INTENSITY
    ]


#: Greek letters of the line families ``"Au La"`` -> ``"Au Lα"``.
_GREEK = {"a": "\u03b1", "b": "\u03b2", "g": "\u03b3"}


def line_label(line: Line) -> str:
    """A line's label as printed: ``"Cu Ka"`` -> ``"Cu Kα"`` (``"Au Ll"`` stays)."""
    text = str(line.label)
    last = text[-1:]
    return text[:-1] + _GREEK[last] if last in _GREEK and text[-2:-1] in "KLM" else text


def label_rows(energies_keV: Sequence[float], min_gap_keV: float, n_rows: int) -> list[int | None]:
    """A row for each label so that labels in one row are at least ``min_gap_keV`` apart.

    Labels are placed in the order given (put the strongest lines first): each
    goes to the top-most row where it keeps the gap to every label already
    there; None when no row has room.
    """
    rows: list[list[float]] = [[] for _ in range(max(1, n_rows))]
    placed: list[int | None] = []
    for energy in energies_keV:
        row = next((r for r, taken in enumerate(rows)
                    if all(abs(energy - other) >= min_gap_keV for other in taken)), None)
        if row is not None:
            rows[row].append(float(energy))
        placed.append(row)
    return placed


def composition_html(spectrum: InspectedSpectrum) -> str:
    """The inspector's text under the plot: counts, and wt% +- 1 sigma with their source."""
    composition = spectrum.composition
    counts = f"{spectrum.measured.sum():,.0f} counts"
    if composition is None:
        return f"{spectrum.label}: {counts}; no composition (no model)"
    if composition.masked:
        threshold = composition.mask_below_counts
        why = f"below {threshold:,.0f} counts" if threshold > 0 else "no value in the maps"
        return f"{spectrum.label}: {counts}; masked as background ({why}), no composition"
    source = "maps" if composition.source == "layers" else "model on this spectrum"
    rows = []
    for i, element in enumerate(composition.elements):
        wt = composition.wt_percent[i]
        sigma = composition.sigma_wt_percent
        err = f" ± {sigma[i]:.2f}" if sigma is not None and np.isfinite(sigma[i]) else ""
        rows.append(f"<tr><td><b>{element}</b></td><td align='right'>{wt:6.2f}{err}</td></tr>")
    return (
        f"{spectrum.label}, {counts}; wt% from the {source}:"
        f"<table cellspacing='4'>{''.join(rows)}</table>"
    )
