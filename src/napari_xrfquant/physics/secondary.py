"""Secondary fluorescence: lines of the sample excited by its own harder lines.

Functions of a simulator's tables (the registered buffers of an
:class:`~napari_xrfquant.physics.simulator.XRFSimulator`, :class:`SecondaryTables`),
for a bulk sample (Shiraiwa and Fujino 1966) and a single finite layer (de Boer
1990, as in fisx).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

if TYPE_CHECKING:
    from napari_xrfquant.physics.tables import PhysicsTables


class SecondaryTables(Protocol):
    """What the formulas read of a simulator: its tables as tensors (see PhysicsTables)
    and its :class:`BeamPairs` as ``beam_pair_*`` buffers."""

    tables: Any
    mu_row: torch.Tensor
    row_onehot: torch.Tensor
    beam_pair_offsets: tuple[int, ...]
    beam_pair_exciting: torch.Tensor
    beam_pair_excited: torch.Tensor
    beam_pair_coefficient: torch.Tensor
    layer_mass_g_cm2: float | None


@dataclass(frozen=True)
class BeamPairs:
    """The line pairs each beam energy drives, beam after beam.

    Pair ``p`` of beam ``b`` is entry ``offsets[b] <= p < offsets[b + 1]``. A pair
    (exciting row j, excited row i) counts for beam energy b only where the beam
    produces j there: a tube's continuum bin below j's edge produces none, so a
    rock of 27 elements under the breadboard's tube (72 beam energies, 1.24
    million pairs) drives 4.6 million pair-beam entries of the 89 million a dense
    ``(B, P)`` table holds.
    """

    offsets: tuple[int, ...]  #: (B + 1,)
    exciting: np.ndarray  #: row j of each entry
    excited: np.ndarray  #: row i of each entry
    coefficient: np.ndarray  #: ``sigma_j(E0) tau_i(E_j) / (2 sin psi1)``, beam weight in


def beam_pairs(tables: PhysicsTables) -> BeamPairs:
    """The :class:`BeamPairs` of a :class:`~.tables.PhysicsTables` (its beam weights,
    exciting sources and pairs)."""
    source = tables.exciting_source * tables.beam_weight[:, None]  # (B, R)
    exciting, excited = tables.pair_exciting, tables.pair_excited
    per_beam = [np.flatnonzero(row[exciting] > 0.0) for row in source]
    entries = np.concatenate([np.zeros(0, dtype=np.int64), *per_beam])
    beam = np.repeat(np.arange(len(per_beam)), [len(p) for p in per_beam])
    coefficient = (0.5 * source[beam, exciting[entries]] * tables.pair_cross_section[entries]
                   / tables.sin_incidence)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in per_beam])])
    return BeamPairs(tuple(int(k) for k in offsets), exciting[entries], excited[entries],
                     coefficient)


def secondary_bulk(
    sim: SecondaryTables, w: torch.Tensor, mu0: torch.Tensor, sin_takeoff: float,
    beam_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Secondary fluorescence per row towards a detector at ``sin_takeoff``, ``(N, R)``;
    ``beam_scale`` ``(N, B)``: factors on the tables' beam weights (None: 1).

    For exciting line j (production sigma_j at E0) and excited line i
    (production tau_i at E_j), with a = mu(E0)/sin psi1, b_i = mu(E_i)/sin psi2
    (Shiraiwa and Fujino 1966; de Boer 1990, bulk sample)::

        S_i = sum_j C_ij W_i W_j / (a + b_i) [ln(1 + a/mu_j)/a + ln(1 + b_i/mu_j)/b_i]

    with ``C_ij = sigma_j tau_i / (2 sin psi1)``, over the pairs each beam energy
    drives (:class:`BeamPairs`); the first bracket term depends on j only, so it
    is computed per row and gathered. Work is done in a (rows, spectra) layout so
    pair gathers copy contiguous rows. Layers use :func:`secondary_layer`.
    """
    wt = w.T  # (E, N)
    mu_t = (sim.mu_row.T @ wt).clamp_min(1e-12)  # (R, N)
    b_t = mu_t / sin_takeoff
    w_rows = sim.row_onehot @ wt  # (R, N): mass fraction of each row's element

    def beam_term(a: torch.Tensor, j: torch.Tensor, i: torch.Tensor, c: torch.Tensor,
                  mu_t: torch.Tensor, b_t: torch.Tensor, w_rows: torch.Tensor) -> torch.Tensor:
        first = w_rows * torch.log1p(a / mu_t) / a  # (R, N): the term of j alone
        log_b = torch.log1p(b_t.index_select(0, i) / mu_t.index_select(0, j))
        term_a = torch.zeros_like(mu_t).index_add_(0, i, first.index_select(0, j) * c)
        term_b = torch.zeros_like(mu_t).index_add_(0, i, log_b * w_rows.index_select(0, j) * c)
        return (term_a + term_b / b_t) / (a + b_t)

    out = _over_beams(sim, mu0, beam_scale, beam_term, mu_t, b_t, w_rows)
    return (out * w_rows).T


def _over_beams(
    sim: SecondaryTables, mu0: torch.Tensor, beam_scale: torch.Tensor | None,
    term: Callable[..., torch.Tensor], *inputs: torch.Tensor,
) -> torch.Tensor:
    """``sum_b term(a_b, j_b, i_b, c_b, *inputs)`` ``(R, N)`` over the beam energies that
    drive pairs (``a_b = mu0_b / sin psi1``; ``j_b, i_b, c_b``: their pairs'
    rows and coefficients), each times its ``beam_scale``.

    Under autograd each beam's term is checkpointed (recomputed in the backward
    pass): kept, the ``(pairs, spectra)`` temporaries of all 72 beam energies of
    a tube took 18.7 GB for 64 rock spectra.
    """
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (mu0, *inputs))
    out = torch.zeros_like(inputs[0])
    for beam, (start, stop) in enumerate(pairwise(sim.beam_pair_offsets)):
        if start == stop:
            continue
        args = ((mu0[:, beam] / sim.tables.sin_incidence)[None, :],
                sim.beam_pair_exciting[start:stop], sim.beam_pair_excited[start:stop],
                sim.beam_pair_coefficient[start:stop, None], *inputs)
        part = checkpoint(term, *args, use_reentrant=False) if grad else term(*args)
        out = out + (part if beam_scale is None else part * beam_scale[None, :, beam])
    return out


def secondary_layer(
    sim: SecondaryTables, w: torch.Tensor, mu0: torch.Tensor, sin_takeoff: float,
    beam_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Secondary fluorescence of a single layer of mass thickness d towards a
    detector at ``sin_takeoff``, ``(N, R)`` (``beam_scale``: as :func:`secondary_bulk`).

    de Boer (1990), as in fisx: ``S_i = sum_j C_ij W_i W_j [L0(a, b_i) +
    L0(b_i, a)]`` with, for p, q the incoming/outgoing attenuation per unit
    depth and ``D(x) = e^x E1(x)``::

        L0(p, q) = ln(1 + p/mu_j) / (p (p + q))
                 + e^{-(p + mu_j) d} [D((mu_j - q) d) / (q (p + q))
                                      - D(mu_j d) / (p q)
                                      + D((mu_j + p) d) / (p (p + q))]
                 + e^{-(p + q) d} ln|1 - q/mu_j| / (q (p + q))

    which tends to the bulk formula for large d. Every pair needs several
    ``D`` evaluations (series), so layers simulate several times slower
    than bulk samples.
    """
    from napari_xrfquant.physics._special import e1_log_small, exp_e1

    d = sim.layer_mass_g_cm2
    assert d is not None  # only layers come here
    wt = w.T
    mu_t = (sim.mu_row.T @ wt).clamp_min(1e-12)  # (R, N)
    w_rows = sim.row_onehot @ wt

    def l0(p: torch.Tensor, q: torch.Tensor, mu_j: torch.Tensor) -> torch.Tensor:
        pq = p + q
        x = (mu_j - q) * d
        close = x.abs() < 1.0
        deep = torch.exp(-(p + mu_j) * d)
        shallow = torch.exp(-pq * d)  # = deep e^x
        # the D((mu_j - q) d) and ln|1 - q/mu_j| terms have logarithms that cancel
        # where mu_j = q (a photon scattered at the beam energy meeting a beam at
        # normal incidence): near it, their sum e^{-(p + q) d} [E1(x) + ln|x|
        # - ln(mu_j d)]; apart, each as it is
        together = shallow * (e1_log_small(x) - torch.log(mu_j * d))
        apart = (deep * exp_e1(torch.where(close, 1.0, x))
                 + shallow * torch.log(torch.where(close, 1.0, (1.0 - q / mu_j).abs())))
        return (
            torch.log1p(p / mu_j) / (p * pq)
            + torch.where(close, together, apart) / (q * pq)
            + deep * (exp_e1((mu_j + p) * d) / (p * pq) - exp_e1(mu_j * d) / (p * q))
        )

    def beam_term(a: torch.Tensor, j: torch.Tensor, i: torch.Tensor, c: torch.Tensor,
                  mu_t: torch.Tensor, w_rows: torch.Tensor) -> torch.Tensor:
        mu_j = mu_t.index_select(0, j)  # (P_b, N)
        b_i = mu_t.index_select(0, i) / sin_takeoff
        a = a.expand_as(b_i)
        per_pair = ((l0(a, b_i, mu_j) + l0(b_i, a, mu_j))
                    * w_rows.index_select(0, j) * w_rows.index_select(0, i))
        return torch.zeros_like(mu_t).index_add_(0, i, per_pair * c)

    return _over_beams(sim, mu0, beam_scale, beam_term, mu_t, w_rows).T


def layer_mass_g_cm2(
    thickness_cm: float | None, density_g_cm3: float | None, instrument: Any
) -> float | None:
    """Mass per area of the sample layer: the arguments' (both needed), else the
    instrument's ``[sample]``, else None for a bulk sample.

    Raises
    ------
    SimulationError
        For one of the two arguments without the other, or either not positive.
    """
    from napari_xrfquant.errors import SimulationError

    if (thickness_cm is None) != (density_g_cm3 is None):
        raise SimulationError("a layer needs both layer_thickness_cm and layer_density_g_cm3")
    if thickness_cm is not None and density_g_cm3 is not None:
        if not (thickness_cm > 0 and density_g_cm3 > 0):
            raise SimulationError(f"layer thickness ({thickness_cm} cm) and density "
                                  f"({density_g_cm3} g/cm3) must be positive")
        return float(thickness_cm * density_g_cm3)
    sample = getattr(instrument, "sample", None)
    return None if sample is None else float(sample.mass_g_cm2)
