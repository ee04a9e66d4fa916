"""Thin samples: a ``[sample]`` layer's intensities, linear in areal density when thin and
the bulk's when thick (the de Boer single-layer form of the simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xrfquant.errors import InstrumentError
from napari_xrfquant.instrument import reference_instrument

torch = pytest.importorskip("torch")

#: A film as the AXO standard's: a few ug/cm2 of Fe and Ca in an organic binder.
ELEMENTS = ["C", "O", "Ca", "Fe"]
FILM = [60.0, 30.0, 6.0, 4.0]


def _fe_ca(instrument, thickness_cm=None, density=None):
    from napari_xrfquant.physics.simulator import XRFSimulator

    sim = XRFSimulator(ELEMENTS, instrument=instrument, dtype=torch.float64,
                       layer_thickness_cm=thickness_cm, layer_density_g_cm3=density)
    w = torch.tensor([[v / 100.0 for v in FILM]], dtype=torch.float64)
    total = sim.line_intensities(w)[0].numpy()
    return [float(total[[k for k, line in enumerate(sim.tables.lines)
                         if line.symbol == element and line.shell == "K"]].sum())
            for element in ("Fe", "Ca")]


def _film(ug_cm2: float):
    return reference_instrument().replace(sample={"areal_density_ug_cm2": ug_cm2})


def test_thin_films_are_linear_in_areal_density_below_1_ug_cm2():
    per_ug = np.array([np.array(_fe_ca(_film(m))) / m for m in (0.01, 0.1, 0.5, 1.0)])
    assert np.all(np.abs(per_ug / per_ug[0] - 1.0) < 0.01)  # Fe and Ca K per ug/cm2


def test_thick_layers_reach_the_bulk_and_intermediate_ones_lie_between():
    bulk = np.array(_fe_ca(reference_instrument()))
    thick = np.array(_fe_ca(_film(2e6)))  # 2 g/cm2
    middle = np.array(_fe_ca(_film(2e3)))  # 2 mg/cm2
    assert thick == pytest.approx(bulk, rel=0.01)
    assert np.all(middle < bulk)
    # Ca K, absorbed more than Fe K, comes from shallower: its bulk value is nearer
    assert middle[1] / bulk[1] > middle[0] / bulk[0]


def test_the_sample_table_and_the_layer_arguments_agree():
    by_table = _fe_ca(reference_instrument().replace(
        sample={"thickness_cm": 1e-4, "density_g_cm3": 1.5}))
    by_arguments = _fe_ca(reference_instrument(), 1e-4, 1.5)
    by_areal = _fe_ca(_film(150.0))
    assert by_table == pytest.approx(by_arguments, rel=1e-12)
    assert by_table == pytest.approx(by_areal, rel=1e-9)


@pytest.mark.parametrize(("sample", "message"), [
    ({"thickness_cm": 1e-4}, "needs areal_density_ug_cm2, or thickness_cm and density_g_cm3"),
    ({"areal_density_ug_cm2": 5.0, "thickness_cm": 1e-4}, "not both"),
    ({"areal_density_ug_cm2": -1.0}, "areal_density_ug_cm2"),
])
def test_a_thin_sample_without_its_mass_is_one_line(sample, message):
    with pytest.raises(InstrumentError, match=message) as info:
        reference_instrument().replace(sample=sample)
    assert "\n" not in str(info.value)
