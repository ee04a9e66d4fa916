"""The gas path of an instrument file: density by the ideal gas law, attenuation on the
way to the detector and from a tube to the sample, Ar K lines of a gas with argon."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_xrfquant.errors import InstrumentError
from napari_xrfquant.instrument import (
    Attenuator,
    instrument_to_toml,
    load_instrument,
    reference_instrument,
)
from napari_xrfquant.instrument_path import GasPath
from napari_xrfquant.physics.tables import detector_efficiency

PIXL = Path(__file__).resolve().parents[1] / "sample_data" / "pixl_breadboard" / "instrument.toml"
ENERGIES = np.array([1.04, 1.25, 1.74, 2.96, 3.69, 6.40, 10.0])


def test_gas_densities_follow_the_ideal_gas_law():
    # NIST: dry air 1.2041e-3 g/cm3 and helium 1.6637e-4 at 20 C and 1013.25 mbar
    assert GasPath(gas="air", emergent_cm=1.0).density_g_cm3() == pytest.approx(1.2041e-3,
                                                                               rel=2e-3)
    assert GasPath(gas="He", emergent_cm=1.0).density_g_cm3() == pytest.approx(1.6637e-4,
                                                                              rel=2e-3)
    mars = GasPath(gas="CO2", pressure_mbar=7.0, temperature_K=210.0, emergent_cm=1.0)
    assert mars.density_g_cm3() == pytest.approx(7.0 * 44.01 / (83144.6 * 210.0), rel=1e-3)
    assert GasPath(gas="vacuum", emergent_cm=5.0).layer(5.0) is None


def test_the_emergent_path_attenuates_as_the_same_gas_layer_would():
    base = reference_instrument().replace(attenuators=())
    in_air = base.replace(path={"gas": "air", "emergent_cm": 2.0})
    as_layer = base.replace(attenuators=(Attenuator(
        name="air", material="Air, Dry (near sea level)", density_g_cm3=1.2041e-3,
        thickness_cm=2.0),))
    assert detector_efficiency(in_air, ENERGIES) == pytest.approx(
        detector_efficiency(as_layer, ENERGIES), rel=5e-3)
    # half the pressure, half the optical depth
    bare = detector_efficiency(base, ENERGIES)
    half = base.replace(path={"gas": "air", "emergent_cm": 2.0, "pressure_mbar": 506.625})
    depth = -np.log(detector_efficiency(in_air, ENERGIES) / bare)
    assert -np.log(detector_efficiency(half, ENERGIES) / bare) == pytest.approx(depth / 2,
                                                                                 rel=1e-6)
    # a helium flush that lets in 10 % air lies between helium and air
    helium = base.replace(path={"gas": "He", "emergent_cm": 2.0})
    leaky = base.replace(path={"gas": "He", "emergent_cm": 2.0, "air_fraction": 0.1})
    he, mixed, air = (detector_efficiency(i, ENERGIES)[2] for i in (helium, leaky, in_air))
    assert air < mixed < he
    assert np.log(mixed / he) == pytest.approx(0.1 * np.log(air / he), rel=0.05)


def test_a_gas_with_argon_adds_its_lines_once():
    in_air = reference_instrument().replace(path={"gas": "air", "emergent_cm": 1.0})
    assert in_air.setup_lines is not None and in_air.setup_lines.elements.count("Ar") == 1
    again = in_air.replace(**{"path.emergent_cm": 2.0})
    assert again.setup_lines is not None and again.setup_lines.elements.count("Ar") == 1
    helium = reference_instrument().replace(path={"gas": "He", "emergent_cm": 1.0},
                                            setup_lines=None)
    assert helium.setup_lines is None


def test_the_incident_path_filters_the_tube_and_the_file_reads_back(tmp_path):
    pixl = load_instrument(PIXL)
    through_air = pixl.replace(path={"gas": "air", "incident_cm": 2.0, "emergent_cm": 0.0})
    energies = np.asarray(pixl.beam.energies_keV)
    before, after = np.asarray(pixl.beam.weights), np.asarray(through_air.beam.weights)
    assert np.array_equal(energies, through_air.beam.energies_keV)
    ratio = (after / after.sum()) / (before / before.sum())
    # air absorbs the tube's low energies: 2.7 keV (Rh L) against 20 keV (Rh K)
    low, high = np.argmin(abs(energies - 2.697)), np.argmin(abs(energies - 20.216))
    mu_rho = np.log(ratio[high] / ratio[low]) / (1.2041e-3 * 2.0)
    assert 150.0 < mu_rho < 300.0  # air's cm2/g at 2.7 keV less that at 20 keV: ~230
    text = instrument_to_toml(through_air)
    assert "[path]" in text
    (tmp_path / "saved.toml").write_text(text)
    assert load_instrument(tmp_path / "saved.toml") == through_air  # added once, not twice


@pytest.mark.parametrize(("path", "message"), [
    ('gas = "Xq"\nemergent_cm = 1.0', "path: gas 'Xq' is neither air, vacuum nor a chemical"),
    ('gas = "He"\nemergent_cm = 1.0\npressure_mbar = -5.0', "path: pressure_mbar"),
    ('gas = "He"', "path: emergent_cm"),
])
def test_a_bad_path_is_one_line(tmp_path, path, message):
    text = instrument_to_toml(reference_instrument()) + f"\n[path]\n{path}\n"
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(InstrumentError, match=message) as info:
        load_instrument(tmp_path / "bad.toml")
    assert "\n" not in str(info.value)
