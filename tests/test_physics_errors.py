"""Bad input to the simulator: one clear SimulationError (or warning) each."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("xraylib")

from napari_xrfquant.errors import SimulationError
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.physics import XRFSimulator, element_lines, simulate

GOOD = [[75.0, 25.0]]


def test_unknown_element_symbol():
    with pytest.raises(SimulationError, match="unknown element symbol 'Xx'"):
        simulate(GOOD, ["Au", "Xx"])
    with pytest.raises(SimulationError, match="unknown element"):
        element_lines("Au,Qq")


def test_element_outside_supported_range():
    with pytest.raises(SimulationError, match=r"outside the supported range H-U"):
        simulate(GOOD, ["Au", "Pu"])
    # H to F are a matrix (they absorb and scatter, no lines): a sample may hold them
    assert simulate(GOOD, ["Au", "C"]).shape == (1, 1024)


def test_duplicate_element():
    with pytest.raises(SimulationError, match="listed twice"):
        XRFSimulator(["Au", "au"])


def test_negative_fraction():
    with pytest.raises(SimulationError, match="negative wt%"):
        simulate([[110.0, -10.0]], ["Au", "Ag"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_fraction(bad):
    with pytest.raises(SimulationError, match="NaN or infinite"):
        simulate([[75.0, bad]], ["Au", "Ag"])


def test_wrong_number_of_columns():
    with pytest.raises(SimulationError, match=r"expected \(N, 3\)"):
        simulate(GOOD, ["Au", "Ag", "Cu"])


def test_all_zero_composition():
    with pytest.raises(SimulationError, match="sum to 0"):
        simulate([[0.0, 0.0]], ["Au", "Ag"])


def test_sum_not_100_is_normalised_with_warning():
    with pytest.warns(UserWarning, match="normalised to 100 wt%"):
        halved = simulate([[37.5, 12.5]], ["Au", "Ag"])
    np.testing.assert_allclose(halved, simulate(GOOD, ["Au", "Ag"]), rtol=1e-12)


def test_beam_below_every_edge():
    soft = reference_instrument().replace(**{"beam.energies_keV": (0.1,)})
    with pytest.raises(
        SimulationError, match=r"beam energy 0.1 keV is below every absorption edge"
    ):
        simulate(GOOD, ["Au", "Ag"], instrument=soft)
    with pytest.raises(SimulationError, match="below every absorption edge"):
        element_lines(["Au"], instrument=soft)


def test_bad_counts():
    with pytest.raises(SimulationError, match="counts must be finite and non-negative"):
        simulate(GOOD, ["Au", "Ag"], counts=-5)
    with pytest.raises(SimulationError, match="one value per spectrum"):
        simulate(GOOD, ["Au", "Ag"], counts=[1e3, 1e4])


def test_bad_layer_and_override():
    with pytest.raises(SimulationError, match="needs both"):
        XRFSimulator(["Au"], layer_thickness_cm=1e-4)
    with pytest.raises(SimulationError, match="must be positive"):
        XRFSimulator(["Au"], layer_thickness_cm=-1e-4, layer_density_g_cm3=19.3)
    import torch

    sim = XRFSimulator(["Au"])
    with pytest.raises(SimulationError, match="unknown instrument override 'gain'"):
        sim(torch.ones(1, 1), instrument_overrides={"gain": 0.035})
