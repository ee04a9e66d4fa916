"""Matrices the detector cannot see: light elements that absorb and scatter, and oxides.

The light elements are checked against fisx, an independent FP code (as
``test_physics_fisx.py`` does for the gold alloys): a basalt glass of the
USGS BHVO-2G certificate (44 wt% oxygen) and a biological section (C, H, N, O
with traces), line families primary and primary + secondary within 3 %.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import fisx_family_intensities
from napari_xrfquant.errors import SimulationError
from napari_xrfquant.physics.oxides import (
    elements_from_oxides,
    oxide_formula,
    oxide_wt_percent,
    oxygen_wt_percent,
)

#: BHVO-2G, wt% (sample_data/pixl_breadboard/BHVO-2G_composition.csv), majors and O.
BASALT = {"O": 44.2582, "Na": 1.7804, "Mg": 4.2997, "Al": 7.1979, "Si": 23.0458,
          "K": 0.4270, "Ca": 8.1475, "Ti": 1.6722, "Mn": 0.1317, "Fe": 8.7836}
#: A dried biological section: an organic matrix with traces.
TISSUE = {"H": 7.0, "C": 50.0, "N": 10.0, "O": 30.0, "P": 1.0, "S": 1.0, "K": 0.6,
          "Ca": 0.3, "Fe": 0.05, "Zn": 0.05}


def test_oxides_close_to_100_and_back():
    oxides = {"SiO2": 49.9, "Al2O3": 13.5, "FeO": 11.3, "CaO": 11.4, "MgO": 7.13,
              "Na2O": 2.40, "TiO2": 2.79, "K2O": 0.52, "MnO": 0.17, "P2O5": 0.27}
    total = sum(oxides.values())
    elements = elements_from_oxides(oxides)
    assert sum(elements.values()) == pytest.approx(total, rel=1e-12)  # closure
    assert oxide_wt_percent(elements) == pytest.approx(oxides, rel=1e-12)
    assert elements["O"] == pytest.approx(oxygen_wt_percent(elements), rel=1e-12)


def test_the_basalt_certificate_s_oxygen_lies_between_ferrous_and_ferric_iron():
    cations = {e: w for e, w in BASALT.items() if e != "O"}
    ferrous = oxygen_wt_percent(cations)  # total iron as FeO, the default
    ferric = oxygen_wt_percent(cations, {"Fe": "Fe2O3"})
    assert ferrous < BASALT["O"] < ferric
    assert ferrous == pytest.approx(43.12, abs=0.01)  # the majors above; all 26 elements: 43.26


@pytest.mark.parametrize(("call", "message"), [
    (lambda: oxide_formula("SiO2Al"), "no oxide formula"),
    (lambda: oxygen_wt_percent({"Au": 1.0}), "no oxide formula for Au"),
    (lambda: oxygen_wt_percent({"Fe": 1.0}, {"Fe": "Al2O3"}), "not an oxide of Fe"),
])
def test_bad_oxides_are_one_line(call, message):
    with pytest.raises(SimulationError, match=message):
        call()


def test_light_elements_have_no_lines_and_are_no_quantified_elements():
    from napari_xrfquant.physics import _xraydata as xd
    from napari_xrfquant.physics.lines import parse_elements
    from napari_xrfquant.physics.tables import lines_of_element

    assert lines_of_element(8, 0, np.array([30.0])) == []
    assert xd.parse_elements(["O", "Fe"], light=True)[1] == (8, 26)
    with pytest.raises(SimulationError, match="outside the supported range Na-U"):
        parse_elements(["O", "Fe"])  # what a model quantifies still starts at Na


def _fisx_families(composition: dict[str, float], families: dict[str, list[str]],
                   name: str, density: float):
    fisx = pytest.importorskip("fisx")
    elements = fisx.Elements()
    elements.initializeAsPyMca()
    total = sum(composition.values())
    material = fisx.Material(name, 1.0, 1.0)
    material.setComposition({e: w / total for e, w in composition.items()})
    elements.addMaterial(material)
    xrf = fisx.XRF()
    xrf.setBeam(30.0)
    xrf.setGeometry(45.0, 45.0)
    xrf.setSample([[name, density, 1.0]])
    out = {}
    for family, fisx_names in families.items():
        out[family] = fisx_family_intensities(xrf, elements, fisx_names)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("name", "composition", "density"),
                         [("basalt", BASALT, 2.8), ("tissue", TISSUE, 1.1)])
def test_light_matrix_against_fisx(name, composition, density):
    torch = pytest.importorskip("torch")
    from napari_xrfquant.physics.simulator import XRFSimulator

    families = {f"{e} K": [f"{e} K"] for e in ("Si", "K", "Ca", "Ti", "Fe", "Zn")
                if e in composition}
    reference = _fisx_families(composition, families, name, density)
    elements = list(composition)
    sim = XRFSimulator(elements, dtype=torch.float64, scatter_excitation=("rayleigh",))
    w = torch.tensor([[composition[e] / sum(composition.values()) for e in elements]],
                     dtype=torch.float64)
    primary = sim.line_intensities(w, secondary=False)[0].numpy()
    total = sim.line_intensities(w)[0].numpy()
    for family, (fp, fs) in reference.items():
        element = family.split()[0]
        rows = [k for k, line in enumerate(sim.tables.lines)
                if line.symbol == element and line.shell == "K"]
        assert primary[rows].sum() / fp == pytest.approx(1.0, abs=0.03), family
        assert total[rows].sum() / (fp + fs) == pytest.approx(1.0, abs=0.03), family
