"""A whole calibration as ``xrfquant calibrate`` and the Calibrate dock run it.

:func:`iter_calibration` checks the request (standards against the elements
and the cube's energy range, excluded ranges), groups the pixels, starts the
clusters at the model's compositions and fits (:func:`.fit.iter_calibrate`).
:func:`write_calibration` writes ``instrument.toml``, ``calibration.json`` and
``calibration.png``; :func:`iter_retrain` fine-tunes the model on the
calibrated instrument and records where it came from. Every step is a
generator of events, so a caller can show progress and cancel between them.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant.calibration.fit import iter_calibrate
from napari_xrfquant.calibration.result import CalibrationResult
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.fit_quality import fit_channels
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.instrument_parameters import default_free, expand_free, knots_optic
from napari_xrfquant.jobs import Progress
from napari_xrfquant.physics.standards import Standard

#: What :func:`write_calibration` writes, and the retrained model's bundle file.
OUTPUTS = ("instrument.toml", "calibration.json", "calibration.png", "model/model.json")


def parse_range(text: str, what: str = "excluded range") -> tuple[float, float]:
    """``"2.8-3.1"`` -> ``(2.8, 3.1)`` keV; ``what`` names it in an error.

    Raises
    ------
    XRFQuantError
        For text that is not ``LOW-HIGH`` with ``LOW < HIGH``.
    """
    low, sep, high = text.strip().partition("-")
    try:
        if not sep:
            raise ValueError
        values = float(low), float(high)
    except ValueError:
        raise XRFQuantError(f"{what} {text!r}: give LOW-HIGH in keV") from None
    if not values[0] < values[1]:
        raise XRFQuantError(f"{what} {text!r}: LOW must be below HIGH")
    return values


def parse_ranges(text: str) -> list[tuple[float, float]]:
    """``"2.8-3.1, 2.9-3.0"`` -> ranges (an empty text: none)."""
    return [parse_range(part) for part in text.split(",") if part.strip()]


def check_lines_in_range(
    standard: Standard, energy_keV: np.ndarray, instrument: Instrument, label: int
) -> None:
    """Refuse a cube whose energy range misses the strongest line of a standard's element."""
    from napari_xrfquant.physics.lines import strongest_line
    from napari_xrfquant.physics.oxides import LIGHT_ELEMENTS

    low, high = float(energy_keV[0]), float(energy_keV[-1])
    for element, value in standard.wt_percent.items():
        if value <= 0 or element in LIGHT_ELEMENTS:
            continue  # H-F: a matrix with no line to see
        line = strongest_line(element, instrument)
        if line is None or not low <= line.energy_keV <= high:
            where = (
                "none is excited" if line is None else f"{line.label} at {line.energy_keV:.2f} keV"
            )
            raise XRFQuantError(
                f"standard {label} ({standard.name}): the cube covers {low:.2f}-{high:.2f} keV, "
                f"and {element}'s strongest line is outside it ({where})"
            )


def with_knots_optic(
    instrument: Instrument, optic_knots_keV: Sequence[float], monotone: bool = False
) -> Instrument:
    """``instrument`` with a knots optic at ``optic_knots_keV`` shaped as its own
    optic (:func:`~napari_xrfquant.instrument_parameters.knots_optic`); unchanged for no knots."""
    if not len(optic_knots_keV):
        return instrument
    return instrument.replace(optic=knots_optic(instrument, optic_knots_keV, monotone))


def parse_energies(text: str) -> list[float]:
    """``"4, 8, 14"`` -> ``[4.0, 8.0, 14.0]`` keV (an empty text: none).

    Raises
    ------
    XRFQuantError
        For an entry that is not a number.
    """
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise XRFQuantError(f"{text!r}: give energies in keV separated by commas") from None


def check_request(
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    standards: Mapping[int, Standard],
    free: Sequence[str] | None,
    exclude_keV: Sequence[tuple[float, float]],
) -> list[str]:
    """Refuse what cannot be calibrated before any work; return the free parameters
    (``free``, or for None
    :func:`~napari_xrfquant.instrument_parameters.default_free` of ``instrument``).

    Raises
    ------
    XRFQuantError
        For an unknown parameter, an empty excluded range, a standard with an
        element not in ``elements`` or with a line outside the cube's range.
    """
    names = expand_free(default_free(instrument) if free is None else free, instrument)
    if not names:
        raise XRFQuantError("no instrument parameter is free: nothing to calibrate")
    fit_channels(energy_keV, instrument.max_beam_energy_keV, exclude_keV)
    for label, standard in standards.items():
        standard.vector(elements)
        check_lines_in_range(standard, energy_keV, instrument, label)
        check_sample_form(standard, instrument)
    return names


def check_sample_form(standard: Standard, instrument: Instrument) -> None:
    """Refuse a thin-film standard (µg/cm²) on a set-up whose sample is not that film.

    Raises
    ------
    XRFQuantError
        For a thin-film standard and an instrument without ``[sample]``, or with
        a layer whose areal density is not the film's (within 1 %).
    """
    film = standard.mass_ug_cm2
    if film is None:
        return
    if instrument.sample is None:
        raise XRFQuantError(
            f"standard {standard.name} is a thin film ({film:.4g} µg/cm²) and the instrument's "
            f"sample is thick: add [sample] with areal_density_ug_cm2 = {film:.4g}"
        )
    layer = instrument.sample.mass_g_cm2 * 1e6
    if abs(layer / film - 1.0) > 0.01:
        raise XRFQuantError(
            f"standard {standard.name} is a film of {film:.4g} µg/cm² and the instrument's "
            f"[sample] one of {layer:.4g} µg/cm²: make them the same"
        )


def iter_calibration(
    counts: Any,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument,
    model: Any = None,
    *,
    labels: np.ndarray | None = None,
    standards: Mapping[int, Standard] | None = None,
    free: Sequence[str] | None = None,
    exclude_keV: Sequence[tuple[float, float]] = (),
    n_clusters: int = 16,
    mask_below_counts: float = 200.0,
    max_seconds: float = 100.0,
    optic_knots_keV: Sequence[float] = (),
    monotone: bool = False,
    started: float | None = None,
) -> Generator[Progress, None, CalibrationResult]:
    """Check, group, start and fit: the calibration of one cube as a generator.

    Parameters
    ----------
    counts
        The cube ``(H, W, C)``.
    energy_keV
        Its stated channel energies.
    elements, instrument
        What the fit starts from (a model's elements and instrument, or any).
    model
        A loaded model whose predictions start the clusters' compositions; None
        starts them at equal fractions.
    labels, standards
        Region labels ``(H, W)`` and the standard each labelled region holds.
    free
        The instrument parameters to fit; None: :func:`data_free`, what the
        set-up has and the data call for.
    exclude_keV, n_clusters, mask_below_counts
        As for :func:`.fit.iter_calibrate` and :func:`.groups.group_pixels`.
    max_seconds, started
        The time budget of the whole calibration (grouping, the model's start
        and the fit), counted from ``started`` (``time.perf_counter()``;
        default: now).
    optic_knots_keV, monotone
        Knot energies: start from a knots optic there (shaped as the
        instrument's optic, :func:`~napari_xrfquant.instrument_parameters.knots_optic`), whose drops
        ``"optic"`` in ``free`` then fits; ``monotone`` keeps it non-increasing.

    Yields
    ------
    Progress
        ``stage="group"`` once the pixels are grouped, then the fit's events.
    """
    import time

    from napari_xrfquant.calibration.groups import group_pixels

    started = time.perf_counter() if started is None else started
    standards = dict(standards or {})
    energy = np.asarray(energy_keV, dtype=np.float64)
    instrument = with_knots_optic(instrument, optic_knots_keV, monotone)
    names = check_request(energy, elements, instrument, standards, free, exclude_keV)
    groups = group_pixels(
        counts,
        elements,
        labels=labels,
        standards=standards,
        n_clusters=n_clusters,
        mask_below_counts=mask_below_counts,
    )
    yield Progress(1, 1, "group")
    if free is None:
        names = data_free(groups.counts.sum(axis=0), energy, elements, instrument)
        yield Progress(1, 1, "pile-up check")
    start_wt = None
    if model is not None:
        from napari_xrfquant.inference import quantify

        start_wt = quantify(groups.counts, energy, model=model, device="cpu").concentrations
    result = yield from iter_calibrate(
        groups,
        energy,
        elements,
        instrument,
        free=names,
        exclude_keV=exclude_keV,
        start_wt_percent=start_wt,
        max_seconds=max_seconds,
        started=started,
    )
    return result


def data_free(
    summed: np.ndarray, energy_keV: np.ndarray, elements: Sequence[str], instrument: Instrument
) -> list[str]:
    """The default free parameters for these data:
    :func:`~napari_xrfquant.instrument_parameters.default_free` of the set-up,
    plus the pile-up fraction when the summed spectrum holds sum peaks at
    :data:`~napari_xrfquant.inference.physics_quantify.PILE_UP_SIGMA` or
    more (a count rate high enough for them) and the set-up's own lines when it
    names them."""
    from napari_xrfquant.inference.element_search import on_cube_axis
    from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
    from napari_xrfquant.inference.physics_quantify import PILE_UP_SIGMA
    from napari_xrfquant.inference.physics_setup import pile_up_significance
    from napari_xrfquant.io.calibration import on_energy_axis
    from napari_xrfquant.physics.oxides import elements_with_lines

    names = expand_free(default_free(instrument), instrument)
    if instrument.setup_lines is not None:
        names.append("setup_fraction")
    if instrument.detector.pileup_fraction > 0:
        return [*names, "pileup_fraction"]  # the set-up has sum peaks: keep them free
    spectra, as_is = on_cube_axis(summed, energy_keV, on_energy_axis(instrument, energy_keV))
    quantifier = PhysicsQuantifier(elements_with_lines(elements), as_is)
    if pile_up_significance(quantifier, spectra[0]) >= PILE_UP_SIGMA:
        names.append("pileup_fraction")
    return names


def write_calibration(
    outdir: str | Path,
    result: CalibrationResult,
    elements: Sequence[str],
    source: str,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``instrument.toml``, ``calibration.json`` and ``calibration.png`` into ``outdir``.

    Each file is written under a temporary name and renamed.

    Raises
    ------
    FileExistsError
        If one of them exists and ``overwrite`` is False (then nothing is written).
    """
    from napari_xrfquant._files import atomic_path
    from napari_xrfquant.calibration.report import write_calibration_png
    from napari_xrfquant.instrument import save_instrument

    folder = Path(outdir)
    targets = [folder / name for name in OUTPUTS[:3]]
    if not overwrite:
        clash = [p for p in targets if p.exists()]
        if clash:
            raise FileExistsError(f"{clash[0]}: exists; use --overwrite to replace outputs")
    folder.mkdir(parents=True, exist_ok=True)
    save_instrument(result.instrument, targets[0], overwrite=overwrite)
    record = {"cube": source, "elements": list(elements), **result.to_dict()}
    with atomic_path(targets[1], overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    write_calibration_png(targets[2], result, overwrite=overwrite)
    return targets


def iter_retrain(
    model: Any,
    instrument_file: str | Path,
    minutes: float,
    result: CalibrationResult,
    energy_keV: np.ndarray,
    source: str,
    standards: Mapping[int, Standard] | None = None,
    n_spectra: int | None = None,
    elements: Sequence[str] | None = None,
) -> Generator[Any, None, Any]:
    """Fine-tune ``model`` on the calibrated instrument, or train a new model of
    ``elements`` for it when ``model`` is None; return the ``TrainResult``.

    Yields the training's events (:mod:`napari_xrfquant.training.events`);
    ``minutes`` bounds the whole run, simulation included. The model reads the
    cube's channels as its file states them (:func:`.retrain.stated_energy_grid`)
    and records its provenance. ``n_spectra`` simulated spectra at most (default
    :data:`.retrain.RETRAIN_SPECTRA` for a fine-tune, :data:`.retrain.FRESH_SPECTRA`
    for a new model).
    """
    from napari_xrfquant.calibration.retrain import (
        RETRAIN_SPECTRA,
        fresh_config,
        provenance,
        retrain_config,
        stated_energy_grid,
    )
    from napari_xrfquant.training.loop import Trainer

    if model is not None:
        config = retrain_config(model, instrument_file, minutes, n_spectra or RETRAIN_SPECTRA)
    elif elements:
        name = f"calibrated-{'-'.join(elements)}"
        config = fresh_config(elements, instrument_file, minutes, name)
        if n_spectra:
            config = config.replace(n_spectra=int(n_spectra))
    else:
        raise XRFQuantError("a new model needs its elements")
    trainer = Trainer(config)
    trained = yield from trainer.events()
    trained.model.metadata["training"]["provenance"] = provenance(
        source, dict(standards or {}), result, None if model is None else model.model_id
    )
    trained.model.metadata["energy"] = stated_energy_grid(energy_keV)
    return trained
