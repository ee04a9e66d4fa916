"""Which secondary-fluorescence pairs are worth computing (numpy, at table build).

A pair is an exciting row j (a fluorescence line, or the scattered beam) and an
excited line i of lower energy. A rock under a tube has millions of candidates
(BHVO-2G's 27 elements under 72 beam energies: 4,348 exciting rows, its 460 lines
and their Rayleigh and Compton rows, times the 460 lines: 2.0 million), so they
are bounded and selected with array operations, one excited element at a time,
from the line cross sections of :func:`._xraydata.fluor_line_cs_table`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_xrfquant.physics import _xraydata as xd

#: Secondary-fluorescence pairs are dropped, weakest first, while the sum of their
#: largest possible contributions stays below this fraction of the excited
#: element's strongest primary line.
SECONDARY_DROP_BUDGET = 1e-3


def secondary_pairs(
    line_element: np.ndarray,
    line_energy: np.ndarray,
    line_macro: Sequence[int],
    zs: Sequence[int],
    exciting_source: np.ndarray,
    row_energy: np.ndarray,
    mu_row: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Secondary-fluorescence pairs worth computing.

    Parameters
    ----------
    line_element, line_energy, line_macro
        ``(F,)`` element index, energy (keV) and xraylib macro of the fluorescence
        lines (rows ``0 .. F-1``), the excited candidates.
    exciting_source
        ``(B, R)`` production of each row at the beam energies: every fluorescence
        line, and the scattered beam (Rayleigh and Compton rows) whose source is
        the total scatter cross section, emitted isotropically; 0 for a row that
        excites nothing.
    row_energy
        ``(R,)`` each row's energy E_j (keV).
    mu_row
        ``(E, R)`` attenuation of each element at each row's energy.

    Returns
    -------
    exciting, excited, cross_section
        Row j, row i, and the production cross section of i by photons of E_j.

    Notes
    -----
    A pair's largest possible contribution, relative to the strongest primary
    line of the excited element, is ``sigma_j(E0) tau_i(E_j) / mu_i(E_j) /
    max sigma``: at most a fraction ``W_i tau_i / mu(E_j) <= tau_i / mu_i`` of the
    j photons become i photons. The weakest pairs are dropped while their
    bounds sum to less than :data:`SECONDARY_DROP_BUDGET` per element.
    """
    peak = exciting_source.max(axis=0)  # (R,)
    # each element's strongest line by its peak source (the lines are rows 0 .. F-1)
    strongest = np.zeros(len(zs))
    np.maximum.at(strongest, line_element, peak[: line_element.size])
    ex_row = np.flatnonzero(peak > 0)
    ex_energy, ex_peak = row_energy[ex_row], peak[ex_row]
    energies, energy_of_exciter = np.unique(ex_energy, return_inverse=True)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for element in np.unique(line_element).tolist():
        top = strongest[element]
        mine = np.flatnonzero(line_element == element)
        # only energies above one of the element's lines excite any of them
        above = energies > line_energy[mine].min()
        table = np.zeros((energies.size, mine.size))
        table[above] = xd.fluor_line_cs_table(
            zs[element], [line_macro[i] for i in mine.tolist()], energies[above]
        )
        cs = table[energy_of_exciter]  # (exciters, the element's lines)
        mu = mu_row[element, ex_row]  # mu 0: below xraylib's tables (Na-Al L, 0.05 keV)
        ok = (line_energy[mine][None, :] < ex_energy[:, None]) & (cs > 0) & (mu > 0)[:, None]
        # candidates in (exciter, line) order, as the stable sort below expects
        on_exciter, on_line = np.nonzero(ok)
        cross = cs[on_exciter, on_line]
        bound = ex_peak[on_exciter] * cross / mu[on_exciter] / top
        order = np.argsort(bound, kind="stable")
        dropped = np.cumsum(bound[order])
        first_kept = int(np.searchsorted(dropped, SECONDARY_DROP_BUDGET, side="right"))
        keep = order[first_kept:]
        kept.append((ex_row[on_exciter[keep]], mine[on_line[keep]], cross[keep]))
    if not kept:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    exciting, excited, cross_section = (
        np.concatenate(column) for column in zip(*kept, strict=True)
    )
    order = np.lexsort((excited, exciting))
    return exciting[order], excited[order], cross_section[order]

