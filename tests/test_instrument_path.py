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


#: A helium path of 5 cm from sample to detector that holds 10 % air.
LEAKING = {"gas": "He", "emergent_cm": 5.0, "air_fraction": 0.1}


def test_another_air_share_is_the_instrument_built_with_it():
    """The simulator holds the tables at the file's air share; an override of
    ``air_fraction`` scales the detection efficiency exactly as rebuilding would."""
    import torch

    from napari_xrfquant.physics import XRFSimulator

    elements = ["K", "Ca", "Ti", "Fe", "O"]
    fractions = torch.tensor([[0.1, 0.3, 0.1, 0.1, 0.4]], dtype=torch.float64)
    leaking = XRFSimulator(elements, reference_instrument().replace(path=LEAKING),
                           dtype=torch.float64)
    tight = XRFSimulator(elements, reference_instrument().replace(
        path={**LEAKING, "air_fraction": 0.0}), dtype=torch.float64)
    built = leaking(fractions)
    moved = tight(fractions, instrument_overrides={"air_fraction": 0.1})
    assert torch.abs(moved - built).max() < 1e-12 * built.max()
    assert torch.abs(tight(fractions) - built).max() > 0.01 * built.max()  # the air matters


def test_a_calibration_finds_the_air_in_a_helium_path():
    """A basalt-like glass seen through a helium path with 10 % air, calibrated from a
    start without air (measured: 0.1006 +- 0.0029, fit quality 2.75 -> 1.03)."""
    from napari_xrfquant.calibration.fit import iter_calibrate
    from napari_xrfquant.calibration.groups import group_pixels
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.physics import simulate
    from napari_xrfquant.physics.standards import parse_standard

    glass = parse_standard("O=44.5,Na=1.8,Mg=4.3,Al=7.2,Si=23.1,K=0.5,Ca=8.2,Ti=1.7,Fe=8.7")
    elements = list(glass.wt_percent)
    truth = reference_instrument().replace(path=LEAKING)
    spectra = simulate(np.array([glass.vector(elements)]), elements, instrument=truth)
    labels = np.ones((2, 3), dtype=np.int64)
    counts = np.random.default_rng(0).poisson(spectra[labels - 1] * 1e6)
    groups = group_pixels(counts, elements, labels=labels, standards={1: glass})
    start = truth.replace(**{"path.air_fraction": 0.0})
    result = drive(iter_calibrate(groups, 0.035 * np.arange(1024), elements, start,
                                  free=["calibration", "air_fraction"], lbfgs_steps=5))
    assert abs(result.values["air_fraction"] - 0.1) < 3 * result.sigma["air_fraction"]
    assert result.sigma["air_fraction"] < 0.01
    assert result.fit_quality_before[0] > 2.0 and result.fit_quality_after[0] < 1.2


def test_the_air_share_is_freed_only_where_the_fit_can_follow_it():
    from napari_xrfquant.errors import XRFQuantError
    from napari_xrfquant.io.calibration import start_instrument

    energy = reference_instrument().energy_axis_keV()
    with pytest.raises(XRFQuantError, match="describe the path first"):
        start_instrument(reference_instrument(), energy, ["air_fraction"])
    crossing = load_instrument(PIXL).replace(path={**LEAKING, "incident_cm": 2.0})
    with pytest.raises(XRFQuantError, match="crosses the gas as well"):
        start_instrument(crossing, energy, ["air_fraction"])
    assert start_instrument(reference_instrument().replace(path=LEAKING), energy,
                            ["air_fraction"]).path == reference_instrument().replace(
                                path=LEAKING).path
