"""Secondary fluorescence: lines of the sample excited by its own harder lines.

Functions of a simulator's tables (the registered buffers of an
:class:`~napari_xrfquant.physics.simulator.XRFSimulator`, :class:`SecondaryTables`),
for a bulk sample (Shiraiwa and Fujino 1966) and a single finite layer (de Boer
1990, as in fisx).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class SecondaryTables(Protocol):
    """What the formulas read of a simulator: its tables as tensors (see PhysicsTables)."""

    tables: Any
    mu_row: torch.Tensor
    row_onehot: torch.Tensor
    pair_exciting: torch.Tensor
    pair_excited: torch.Tensor
    pair_matrix: torch.Tensor
    pair_coefficient: torch.Tensor
    layer_mass_g_cm2: float | None


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

    with ``C_ij = sigma_j tau_i / (2 sin psi1)``. The first bracket term
    depends on j only, so its sum over j is one small dense matmul; only the
    second needs a log per pair. Work is done in a (rows, spectra) layout so
    pair gathers copy contiguous rows. Layers use :func:`secondary_layer`.
    """
    s1, s2 = sim.tables.sin_incidence, sin_takeoff
    wt = w.T  # (E, N)
    mu_t = (sim.mu_row.T @ wt).clamp_min(1e-12)  # (R, N)
    b_t = mu_t / s2
    w_rows = sim.row_onehot @ wt  # (R, N): mass fraction of each row's element
    j, i = sim.pair_exciting, sim.pair_excited
    log_b = torch.log1p(b_t.index_select(0, i) / mu_t.index_select(0, j))  # (P, N)
    log_b = log_b * w_rows.index_select(0, j)
    out = torch.zeros_like(mu_t)
    for beam in range(mu0.shape[1]):
        a = (mu0[:, beam] / s1)[None, :]  # (1, N)
        term_a = sim.pair_matrix[beam] @ (w_rows * torch.log1p(a / mu_t) / a)
        term_b = torch.zeros_like(mu_t).index_add_(
            0, i, log_b * sim.pair_coefficient[beam][:, None]
        )
        part = (term_a + term_b / b_t) / (a + b_t)
        out = out + (part if beam_scale is None else part * beam_scale[None, :, beam])
    return (out * w_rows).T


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
    from napari_xrfquant.physics._special import exp_e1

    d = sim.layer_mass_g_cm2
    assert d is not None  # only layers come here
    s1, s2 = sim.tables.sin_incidence, sin_takeoff
    wt = w.T
    mu_t = (sim.mu_row.T @ wt).clamp_min(1e-12)  # (R, N)
    w_rows = sim.row_onehot @ wt
    j, i = sim.pair_exciting, sim.pair_excited
    mu_j = mu_t.index_select(0, j)  # (P, N)
    b_i = mu_t.index_select(0, i) / s2
    weight = w_rows.index_select(0, j) * w_rows.index_select(0, i)

    def l0(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        pq = p + q
        near = (
            exp_e1((mu_j - q) * d) / (q * pq)
            - exp_e1(mu_j * d) / (p * q)
            + exp_e1((mu_j + p) * d) / (p * pq)
        )
        log_q = torch.log(torch.abs(1.0 - q / mu_j).clamp_min(1e-30))
        return (
            torch.log1p(p / mu_j) / (p * pq)
            + torch.exp(-(p + mu_j) * d) * near
            + torch.exp(-pq * d) * log_q / (q * pq)
        )

    out = torch.zeros_like(mu_t)
    for beam in range(mu0.shape[1]):
        a = (mu0[:, beam] / s1)[None, :].expand_as(b_i)
        per_pair = (l0(a, b_i) + l0(b_i, a)) * weight
        if beam_scale is not None:
            per_pair = per_pair * beam_scale[None, :, beam]
        out = out.index_add(0, i, per_pair * sim.pair_coefficient[beam][:, None])
    return out.T


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
