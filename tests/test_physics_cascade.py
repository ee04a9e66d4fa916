"""The vacancy cascade and its two documented corrections to xraylib's data.

- Without corrections the cascade is xraylib's own ``CS_FluorLine_Kissel_Cascade``
  (an independent implementation in C), line by line.
- Coster-Kronig spectators obey energy conservation and move only M-line
  intensity; K and L lines are untouched.
- xraylib's M2 fluorescence yield has a spike at Z = 77-82 running into a
  plateau up to U; the override removes it for every element where it occurs
  and nowhere else.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

xraylib = pytest.importorskip("xraylib")

from napari_xrfquant.physics import _cascade  # noqa: E402
from napari_xrfquant.physics import _xraydata as xd  # noqa: E402

ELEMENTS_Z = (13, 26, 29, 30, 47, 50, 56, 74, 79, 82, 92)


def _k_edge(z: int) -> float:
    return xraylib.EdgeEnergy(z, xraylib.K_SHELL)


@pytest.mark.parametrize("z", ELEMENTS_Z)
def test_uncorrected_cascade_is_xraylib(z):
    """Every line xraylib produces, at energies above L edges and below K.

    Above the K edge xraylib's K -> M1 Auger sum stops at M partners (its
    generated code omits K-M1N, K-M1O); ours takes every tabulated channel, a
    0.3 % difference on M1 lines only, so K-ionising energies are left out here.
    """
    energies = [e for e in (5.0, 12.0, 18.3, 30.0, 45.0) if e < _k_edge(z)] or [5.0]
    compared = 0
    for macro in xd.transition_macros():
        if macro.initial_shell not in _cascade.SHELLS:
            continue
        for energy in energies:
            expected = xd.safe(xraylib.CS_FluorLine_Kissel_Cascade, z, macro.macro, energy)
            if expected <= 0:
                continue
            ours = _cascade.line_cross_section(
                z, macro.initial_shell, macro.macro, energy, corrected=False
            )
            assert ours == pytest.approx(expected, rel=1e-9), (z, macro.iupac, energy)
            compared += 1
    assert compared > 0


def test_intra_m_lines_are_produced():
    """Radiative M-M transitions (Au M2M4 at 0.86 keV: 15 % of M2 decays) exist.

    xraylib's ``CS_FluorLine`` returns nothing for them, yet its ``RadRate``
    table normalises the M2 branching ratios including them; fisx counts them.
    """
    cs = _cascade.line_cross_section(79, "M2", xraylib.M2M4_LINE, 30.0)
    assert xd.safe(xraylib.CS_FluorLine_Kissel_Cascade, 79, xraylib.M2M4_LINE, 30.0) == 0.0
    assert cs > 0
    assert xraylib.RadRate(79, xraylib.M2M4_LINE) > 0.1


@pytest.mark.parametrize("z", ELEMENTS_Z)
def test_spectators_obey_energy_conservation(z):
    """A Coster-Kronig origin -> destination + spectator needs E_spectator < E_o - E_d.

    The spectator table comes from EADL97; the binding energies here are
    xraylib's (a different compilation), hence a 50 eV allowance.
    """
    table = _cascade.corrections()["coster_kronig_spectators"].get(str(z), {})
    for group, fractions in table.items():
        origin, destination = group.split("-")
        available = xd.edge_energy_keV(z, origin) - xd.edge_energy_keV(z, destination)
        assert sum(fractions.values()) <= 1.0 + 1e-4  # rounded to 5 digits
        for shell in fractions:
            assert xd.edge_energy_keV(z, shell) < available + 0.050, (z, group, shell)


def test_spectators_change_only_m_shells_of_gold():
    """Au at 30 keV: K and L vacancies identical; M4/M5 up by about 10 %."""
    with_spectators = _cascade.shell_vacancies(79, 30.0, True)
    without = _cascade.shell_vacancies(79, 30.0, False)
    index = {s: i for i, s in enumerate(_cascade.SHELLS)}
    for shell in ("K", "L1", "L2", "L3", "M1", "M2", "M3"):
        assert with_spectators[index[shell]] == pytest.approx(without[index[shell]], rel=1e-12)
    # the extra M4+M5 vacancies are exactly the L1 -> L3 Coster-Kronig events
    # times their spectator share (plus the M4 -> M5 Coster-Kronig of the new M4s)
    f13 = xraylib.CosKronTransProb(79, xraylib.FL13_TRANS)
    share = sum(_cascade.spectator_fractions(79, "L1", "L3").values())
    extra = (with_spectators - without)[[index["M4"], index["M5"]]].sum()
    assert extra == pytest.approx(f13 * share * without[index["L1"]], rel=0.05)
    for shell in ("M4", "M5"):
        gain = with_spectators[index[shell]] / without[index[shell]]
        assert 1.05 < gain < 1.15, shell


def test_k_and_l_lines_unchanged_by_corrections():
    for z, macro, shell in ((29, xraylib.KL3_LINE, "K"), (79, xraylib.L3M5_LINE, "L3")):
        corrected = _cascade.line_cross_section(z, shell, macro, 30.0)
        raw = _cascade.line_cross_section(z, shell, macro, 30.0, corrected=False)
        assert corrected == pytest.approx(raw, rel=1e-12)


def _xraylib_yield(z: int, shell: int) -> float:
    try:
        return xraylib.FluorYield(z, shell)
    except ValueError:
        return 0.0


def test_xraylib_m2_yield_has_an_isolated_spike():
    """Why the override exists: omega_M2(Au) is 10x omega_M3(Au) and 5x its neighbours.

    Theory and experiment put omega_M2 at or below omega_M3 for heavy elements
    (the M2 hole decays mostly by M2-M4 Coster-Kronig); xraylib's value rises
    12-fold from Os (76) to Au (79) and falls back by Bi (83), while omega_M1 and
    omega_M3 grow smoothly.
    """
    m2 = {z: _xraylib_yield(z, xraylib.M2_SHELL) for z in range(70, 90)}
    m3 = {z: _xraylib_yield(z, xraylib.M3_SHELL) for z in range(70, 90)}
    assert m2[79] / m3[79] > 5
    assert m2[79] > 5 * max(m2[74], m2[84])
    # M3 is smooth over the same range: no neighbour-to-neighbour jump above 25 %
    assert all(0.8 < m3[z + 1] / m3[z] < 1.25 for z in range(70, 89))


def test_m2_override_removes_the_spike_everywhere():
    """Corrected omega_M2 is smooth in Z (no step above 25 %) from Z = 60 to 92."""
    corrected = np.array([_cascade.fluorescence_yield(z, "M2") for z in range(60, 93)])
    steps = corrected[1:] / corrected[:-1]
    assert np.all((steps > 0.75) & (steps < 1.33)), steps
    overridden = {int(z) for z in _cascade.corrections()["fluorescence_yield"]["M2"]}
    assert overridden == set(range(77, 93))
    for z in range(11, 93):
        if z not in overridden:
            assert _cascade.fluorescence_yield(z, "M2") == _xraylib_yield(z, xraylib.M2_SHELL)


def test_au_m2_yield_below_m3_after_override():
    for z in range(77, 93):
        assert _cascade.fluorescence_yield(z, "M2") < _cascade.fluorescence_yield(z, "M3")
        assert not math.isclose(
            _cascade.fluorescence_yield(z, "M2"), _xraylib_yield(z, xraylib.M2_SHELL)
        )


@pytest.mark.parametrize("z", (14, 26, 57, 79, 82))
def test_line_table_is_the_scalar_cross_section_to_the_bit(z):
    """The table build's vectorised cross sections (one cascade per energy for all
    of an element's lines) are the scalar function's values exactly, below and
    above the edges, for every line xraylib lists, cascade shells or not."""
    macros = [m.macro for m in xd.transition_macros()]
    energies = np.array([1.0, 2.9, 3.6, 8.0, 13.1, 17.3, 30.0, 88.0])
    table = xd.fluor_line_cs_table(z, macros, energies)
    scalar = np.array([[xd.fluor_line_cs(z, m, float(e)) for m in macros] for e in energies])
    assert table.shape == (energies.size, len(macros))
    assert (table > 0).sum() > 20
    np.testing.assert_array_equal(table, scalar)
