"""Physics checks of training settings, run before anything is simulated.

The Train dock, ``xrfquant train`` and anyone building a
:class:`~napari_xrfquant.training.config.TrainingConfig` by hand call
:func:`settings_problems` to refuse settings that cannot give a working model:
elements outside Na-U, a beam that excites none of an element's shells, an
energy calibration or input range that misses an element's strongest line,
non-positive sizes. The physics comes from :mod:`napari_xrfquant.physics.lines`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from napari_xrfquant.errors import XRFQuantError

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.training.config import TrainingConfig

#: Sizes that must be positive, as (attribute path, what the user calls it).
POSITIVE_SIZES = (
    ("n_spectra", "data set size"),
    ("batch_size", "batch size"),
    ("epochs", "epochs"),
    ("patience", "patience"),
    ("model.hidden_layers", "hidden layers"),
    ("model.neurons", "neurons per layer"),
    ("lr", "learning rate"),
    ("counts_min", "minimum counts"),
    ("counts_max", "maximum counts"),
)


def parse_element_list(text: str | Sequence[str]) -> list[str]:
    """Element symbols from ``"Fe, Ni, Cr"`` (commas, semicolons or spaces), usual case.

    Raises
    ------
    XRFQuantError
        For an empty list, an unknown symbol, an element outside Na-U, or a
        symbol listed twice.
    """
    from napari_xrfquant.physics import parse_elements

    return parse_elements(text)


def input_ranges_keV(config: TrainingConfig, instrument: Instrument) -> list[tuple[float, float]]:
    """Energy ranges the model reads: its input segments clipped to the channels."""
    energy = instrument.energy_axis_keV()
    low, high = float(energy[0]), float(energy[-1])
    ranges = []
    for start, stop, _ in config.input.segments:
        lo, hi = max(float(start), low), min(float(stop), high)
        if hi > lo:
            ranges.append((lo, hi))
    return ranges


def _format_ranges(ranges: Iterable[tuple[float, float]]) -> str:
    merged: list[list[float]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return ", ".join(f"{lo:.2f}-{hi:.2f} keV" for lo, hi in merged) or "nothing"


def _get(config: Any, dotted: str) -> Any:
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def size_problems(values: dict[str, Any]) -> list[str]:
    """Messages for sizes that are not positive, from plain form values.

    Parameters
    ----------
    values
        Mapping of the dotted names in :data:`POSITIVE_SIZES` (e.g.
        ``"model.neurons"``) to numbers; missing names are skipped.
    """
    problems = []
    for key, label in POSITIVE_SIZES:
        if key not in values:
            continue
        value = values[key]
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            problems.append(f"{label} must be positive (got {value})")
    if "counts_min" in values and "counts_max" in values and not problems:
        if values["counts_min"] > values["counts_max"]:
            problems.append(
                f"counts range {values['counts_min']:g}-{values['counts_max']:g}: "
                "the minimum exceeds the maximum"
            )
    return problems


def physics_problems(
    elements: Sequence[str], config: TrainingConfig, instrument: Instrument
) -> list[str]:
    """Messages for elements the beam cannot excite or the model cannot see.

    Parameters
    ----------
    elements
        Validated element symbols.
    config
        Supplies the model's input segments (the energy range it reads).
    instrument
        Supplies the beam energies and the energy calibration.
    """
    from napari_xrfquant.physics.lines import edge_above_beam, lowest_emitting_edge, strongest_line

    problems = []
    beam_keV = max(instrument.beam.energies_keV)
    ranges = input_ranges_keV(config, instrument)
    if not ranges:
        energy = instrument.energy_axis_keV()
        return [
            f"the model's input segments miss the channels' energy range "
            f"({energy[0]:.2f}-{energy[-1]:.2f} keV)"
        ]
    not_excited = []
    for element in elements:
        line = strongest_line(element, instrument)
        if line is None:
            shell, edge = lowest_emitting_edge(element)
            not_excited.append(f"{element} (lowest edge {shell} {edge:.2f} keV)")
            continue
        if not any(lo <= line.energy_keV <= hi for lo, hi in ranges):
            dark = edge_above_beam(element, line.energy_keV, beam_keV)
            note = (
                ""
                if dark is None
                else (f" (the {element} {dark[0]} edge, {dark[1]:.2f} keV, lies above the beam)")
            )
            problems.append(
                f"the calibration and input range ({_format_ranges(ranges)}) miss "
                f"{line.label} at {line.energy_keV:.2f} keV, the strongest line a "
                f"{beam_keV:g} keV beam excites{note}"
            )
    if not_excited:
        problems.insert(
            0,
            f"beam energy {beam_keV:g} keV lies below every absorption edge of "
            + ", ".join(not_excited),
        )
    return problems


def settings_problems(config: TrainingConfig, instrument: Instrument) -> list[str]:
    """Every reason why ``config`` with ``instrument`` cannot be trained (empty: fine).

    Covers what :class:`TrainingConfig` itself does not know: the physics of the
    chosen elements under this beam and calibration, and positive sizes.
    """
    problems = size_problems({key: _get(config, key) for key, _ in POSITIVE_SIZES})
    try:
        elements = parse_element_list(config.elements)
    except XRFQuantError as exc:
        return [str(exc), *problems]
    return physics_problems(elements, config, instrument) + problems


def check_settings(config: TrainingConfig, instrument: Instrument) -> None:
    """Raise :class:`XRFQuantError` with the first reason ``config`` cannot be trained."""
    problems = settings_problems(config, instrument)
    if problems:
        raise XRFQuantError(problems[0])
