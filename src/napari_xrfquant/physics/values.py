"""The simulator's continuous parameters and their values in an instrument file.

One table (:data:`PARAMETER_NAMES`) names what the simulator holds as tensors
and lets a caller override per call; :func:`instrument_values` reads them from
an :class:`~napari_xrfquant.instrument.Instrument`.
"""

from __future__ import annotations

from napari_xrfquant.instrument import Instrument
from napari_xrfquant.physics import optic as optic_terms
from napari_xrfquant.physics.tube_beam import tube_beam_values

#: Continuous instrument parameters held as tensors (names as in reference.toml,
#: the continuum ones prefixed with ``continuum_``). The first twelve go to
#: :func:`.detector.atom_response`, the first sixteen make the response matrix.
PARAMETER_NAMES = (
    "gain_keV",
    "offset_keV",
    "noise_keV",
    "fano",
    "tail_fraction",
    "tail_slope_keV",
    "shelf_fraction",
    "quadratic_keV",
    "high_tail_fraction",
    "high_tail_slope_keV",
    "threshold_keV",
    "threshold_width_keV",
    "optic_low_keV",
    "optic_low_width_keV",
    "optic_high_keV",
    "optic_high_width_keV",
    "continuum_fraction",
    "continuum_power",
    "continuum_decay_keV",
    "pileup_fraction",
    "setup_fraction",
    "scatter_scale",
    "air_fraction",
    "anode_thickness_cm",
    "l_lines_scale",
    "l2_lines_scale",
)


def instrument_values(instrument: Instrument) -> dict[str, float]:
    """The value of every parameter of :data:`PARAMETER_NAMES` in ``instrument``
    (placeholders for an optic it lacks or holds as knots, or a side-window tube)."""
    d, c, lines = instrument.detector, instrument.continuum, instrument.setup_lines
    return {
        "gain_keV": d.gain_keV,
        "offset_keV": d.offset_keV,
        "noise_keV": d.noise_keV,
        "fano": d.fano,
        "tail_fraction": d.tail_fraction,
        "tail_slope_keV": d.tail_slope_keV,
        "shelf_fraction": d.shelf_fraction,
        "quadratic_keV": d.quadratic_keV,
        "high_tail_fraction": d.high_tail_fraction,
        "high_tail_slope_keV": d.high_tail_slope_keV,
        "threshold_keV": d.threshold_keV,
        "threshold_width_keV": d.threshold_width_keV,
        **optic_terms.optic_values(instrument),
        "continuum_fraction": c.fraction,
        "continuum_power": c.power,
        "continuum_decay_keV": c.decay_keV,
        "pileup_fraction": d.pileup_fraction,
        "setup_fraction": 0.0 if lines is None else lines.fraction,
        "scatter_scale": instrument.scatter.scale,
        "air_fraction": 0.0 if instrument.path is None else instrument.path.air_fraction,
        **tube_beam_values(instrument),
    }
