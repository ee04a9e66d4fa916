"""A tube's parameters as factors on the tables' beam: its anode's thickness and L lines.

The simulator's tables hold the beam the instrument file's ``[tube]`` makes
(:mod:`napari_xrfquant.xray_tube`, Ebel's model). Three of the tube's parameters
change that beam by a factor per beam energy known in closed form, so a fit can
move them without building the tables again, exactly and differentiably:

- ``anode_thickness_cm``, a transmission anode's thickness: it enters every line and
  continuum energy only as ``exp(-tau(E) rho t / sin alpha_x)``
  (:meth:`~napari_xrfquant.xray_tube.Tube.thickness_attenuation`), a filter of the
  anode's own element. Its strongest effect is on the continuum just above the
  anode's L edges (Rh: 3.0-3.4 keV), the band that excites K, Ca and Ti but not the
  heavier elements; set-up files rarely give it, and a standard's spectrum pins it;
- ``l_lines_scale``, a factor on the anode's L lines (Ebel's L constants are the
  model's least certain part);
- ``l2_lines_scale``, a further factor on those of its L2 subshell (Lβ1, Lγ1, Lη).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from napari_xrfquant.instrument import Instrument

#: The simulator parameters (:data:`.values.PARAMETER_NAMES`) that scale the beam.
TUBE_BEAM_NAMES = ("anode_thickness_cm", "l_lines_scale", "l2_lines_scale")
#: The per-energy arrays of :class:`TubeBeamTerms` that :func:`beam_scale` reads.
TERM_NAMES = ("per_cm", "l_lines", "l2_lines")


@dataclass(frozen=True)
class TubeBeamTerms:
    """How each beam energy of an instrument depends on its tube's parameters."""

    per_cm: np.ndarray  #: (B,) -d ln(weight) / d thickness (per cm of anode)
    l_lines: np.ndarray  #: (B,) 1 where the energy is one of the anode's L lines
    l2_lines: np.ndarray  #: (B,) 1 where it is one of its L2 subshell's
    start: dict[str, float]  #: the tables' values of :data:`TUBE_BEAM_NAMES`


def tube_beam_terms(instrument: Instrument) -> TubeBeamTerms:
    """The beam terms of ``instrument``: zeros without a tube (nothing depends on it), the
    thickness's zero for a side window; the L-line masks are empty where the file's factor
    is 0 (the beam keeps no line of 0 photons)."""
    energies = np.asarray(instrument.beam.energies_keV, dtype=np.float64)
    zeros = np.zeros_like(energies)
    tube = instrument.tube
    if tube is None:
        return TubeBeamTerms(zeros, zeros, zeros, tube_beam_values(instrument))
    physics = tube.physics()
    widths = np.asarray(instrument.beam.widths_keV or zeros, dtype=np.float64)
    lines = physics.l_lines()

    def at(wanted: list[float]) -> np.ndarray:
        """1 at the beam's lines (no band) of one of the ``wanted`` energies."""
        found = np.isclose(energies[:, None], np.asarray(wanted)[None, :], rtol=1e-12, atol=0.0)
        return (found.any(axis=1) & (widths == 0)).astype(np.float64)

    l_all = at([line.energy_keV for line in lines])
    l2 = at([line.energy_keV for line in lines if line.name.split()[-1].startswith("L2")])
    return TubeBeamTerms(physics.thickness_attenuation(energies), l_all, l2,
                         tube_beam_values(instrument))


def tube_beam_values(instrument: Instrument) -> dict[str, float]:
    """The values of :data:`TUBE_BEAM_NAMES` in ``instrument``: the thickness 0 without a
    transmission anode, the factors 1 without a tube (placeholders nothing depends on)."""
    tube = instrument.tube
    if tube is None:
        return {"anode_thickness_cm": 0.0, "l_lines_scale": 1.0, "l2_lines_scale": 1.0}
    thickness = tube.transmission_thickness_cm
    return {"anode_thickness_cm": 0.0 if thickness is None else float(thickness),
            "l_lines_scale": float(tube.l_lines_scale),
            "l2_lines_scale": float(tube.l2_lines_scale)}


def beam_scale(
    terms: Mapping[str, torch.Tensor], start: Mapping[str, float],
    values: Mapping[str, torch.Tensor],
) -> torch.Tensor | None:
    """The beam's weights relative to the tables' at ``values``: ``(1, B)``, or ``(N, B)``
    with one value per spectrum; None while every value is the tables' and takes no
    gradient (nothing to do). ``terms``: the :data:`TERM_NAMES` arrays of
    :class:`TubeBeamTerms` as tensors. The spectra are normalised afterwards, so the
    overall level does not matter.
    """
    moved = [n for n in TUBE_BEAM_NAMES
             if values[n].requires_grad or bool((values[n] != start[n]).any())]
    if not moved:
        return None

    def column(name: str) -> torch.Tensor:
        return values[name].reshape(-1, 1)

    thickness = column("anode_thickness_cm") - start["anode_thickness_cm"]
    log_scale = -thickness * terms["per_cm"][None, :]
    for name, mask in (("l_lines_scale", "l_lines"), ("l2_lines_scale", "l2_lines")):
        if name in moved and start[name] > 0:
            factor = torch.log(column(name).clamp_min(1e-12) / start[name])
            log_scale = log_scale + factor * terms[mask][None, :]
    return torch.exp(log_scale)
