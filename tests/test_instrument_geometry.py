"""Several detector elements with their own directions: ``[[geometry.detector_elements]]``.

The simulator sums the elements' spectra weighted by their solid angles; the
checks are that this sum is what simulating each element alone and adding
gives, that one listed element is the plain geometry, that an alloy measured by
two elements at very different take-off angles comes back only when they are
described, and that a file's elements are matched to the instrument's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_xrfquant.errors import CubeReadError, InstrumentError
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.instrument import (
    Instrument,
    load_instrument,
    reference_instrument,
    save_instrument,
)
from napari_xrfquant.io.detectors import instrument_for_cube
from napari_xrfquant.physics import XRFSimulator, simulate
from napari_xrfquant.physics.standards import library

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]

#: Two elements far apart: a low take-off (long exit path) and a steep one.
TWO_ELEMENTS = [
    {"takeoff_deg": 15.0, "scattering_deg": 75.0, "solid_angle_sr": 1.0},
    {"takeoff_deg": 75.0, "scattering_deg": 105.0, "azimuth_deg": 20.0, "solid_angle_sr": 3.0},
]


def _array(elements: list[dict] = TWO_ELEMENTS) -> Instrument:
    return reference_instrument().replace(**{"geometry.detector_elements": elements})


def _alone(instrument: Instrument, index: int) -> Instrument:
    return instrument.replace(geometry=instrument.geometry.of_element(index).model_dump())


def test_the_file_lists_elements_and_their_shares(tmp_path):
    array = _array()
    shares = [d.share for d in array.geometry.directions()]
    assert shares == pytest.approx([0.25, 0.75])
    assert reference_instrument().geometry.directions()[0].share == 1.0
    path = tmp_path / "array.toml"
    save_instrument(array, path)
    assert "detector_elements" in path.read_text()
    assert load_instrument(path).geometry == array.geometry
    save_instrument(reference_instrument(), tmp_path / "one.toml")
    assert "detector_elements" not in (tmp_path / "one.toml").read_text()
    with pytest.raises(InstrumentError, match="solid_angle_sr"):
        _array([{"takeoff_deg": 40.0, "scattering_deg": 90.0, "solid_angle_sr": 0.0}])
    with pytest.raises(ValueError, match="detector element 2"):
        array.geometry.of_element(2)


def test_the_array_is_the_sum_of_its_elements_simulated_alone():
    fractions = torch.tensor([[0.75, 0.03, 0.15, 0.05, 0.02], [0.2, 0.1, 0.5, 0.1, 0.1]],
                             dtype=torch.float64)
    array = XRFSimulator(ELEMENTS, _array(), dtype=torch.float64)
    alone = [XRFSimulator(ELEMENTS, _alone(_array(), k), dtype=torch.float64) for k in (0, 1)]
    with torch.no_grad():
        summed = sum(share * (sim.line_intensities(fractions) @ sim.response_matrix())
                     for share, sim in zip((0.25, 0.75), alone, strict=True))
        together = array.line_intensities(fractions) @ array.response_matrix()
    # measured 9e-5: the Compton rows mix the elements' profiles by cross section alone
    assert torch.abs(together - summed).max() < 1e-3 * together.max()
    lines = len(array.tables.lines)
    assert torch.allclose(array.line_intensities(fractions)[:, :lines],
                          sum(share * sim.line_intensities(fractions)[:, :lines]
                              for share, sim in zip((0.25, 0.75), alone, strict=True)),
                          rtol=1e-3)


def test_one_listed_element_is_the_plain_geometry():
    plain = reference_instrument()
    geo = plain.geometry
    one = _array([{"takeoff_deg": geo.takeoff_deg, "scattering_deg": geo.scattering_deg,
                   "solid_angle_sr": 0.3}])
    fractions = torch.tensor([[0.75, 0.03, 0.15, 0.05, 0.02]], dtype=torch.float64)
    a = XRFSimulator(ELEMENTS, plain, dtype=torch.float64)(fractions)
    b = XRFSimulator(ELEMENTS, one, dtype=torch.float64)(fractions)
    assert torch.allclose(a, b, rtol=1e-12, atol=0)


def test_an_alloy_seen_by_two_elements_comes_back_when_they_are_described():
    standard = library()["ERM-EB507"]
    truth = np.array(standard.vector(ELEMENTS))
    array = _array()
    spectra = simulate(np.tile(truth, (4, 1)), ELEMENTS, instrument=array, counts=1e8, seed=3)
    described = PhysicsQuantifier(ELEMENTS, array).fit(spectra)
    along_axis = PhysicsQuantifier(ELEMENTS, reference_instrument()).fit(spectra)
    # the fit's own bias on this alloy is +0.07 wt% Au with one detector as well
    assert np.abs(described.values.mean(axis=0) - truth).max() < 0.1
    assert 0.8 < np.median(described.fit_quality) < 1.25
    # one detector along the array's axis (45 deg): measured Cu +0.21, fit quality 36
    assert np.abs(along_axis.values.mean(axis=0) - truth).max() > 0.15
    assert np.median(along_axis.fit_quality) > 10


def test_a_file_is_matched_to_the_listed_elements():
    array = _array()
    assert instrument_for_cube(array, {"n_detector_elements": 2, "detector_choice": "sum"}) \
        is array
    second = instrument_for_cube(array, {"n_detector_elements": 2, "detector_choice": 1})
    assert [d.takeoff_deg for d in second.geometry.directions()] == [75.0]
    with pytest.raises(CubeReadError, match="lists 2 detector elements and the file holds 4"):
        instrument_for_cube(array, {"n_detector_elements": 4, "detector_choice": "sum"})
    plain = reference_instrument()
    assert instrument_for_cube(plain, {"n_detector_elements": 4, "detector_choice": 1}) is plain


def test_the_cli_refuses_a_file_of_other_elements_and_reads_one_element_alone(tmp_path, capsys):
    """The AXO map (four detector elements) against an instrument that lists two: one
    line, nothing written; listing four, element 1 read alone is quantified."""
    from pathlib import Path

    from napari_xrfquant.cli import main
    from napari_xrfquant.instrument import instrument_to_toml

    axo = Path(__file__).parents[1] / "sample_data" / "aps_2ide"
    file_instrument = load_instrument(axo / "instrument.toml")
    two = file_instrument.replace(**{"geometry.detector_elements": TWO_ELEMENTS})
    (tmp_path / "two.toml").write_text(instrument_to_toml(two))
    argv = ["quantify", str(axo / "axo_std.mda"), "-o", str(tmp_path / "out"),
            "--instrument", str(tmp_path / "two.toml"), "--elements", "Ca,Fe,Cu",
            "--fit-range", "1.5-10", "--standard", str(axo / "AXO_CaFeCu.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "lists 2 detector elements and the file holds 4" in err
    errors = [line for line in err.splitlines() if "error:" in line]  # (and the reader's
    assert len(errors) == 1 and not (tmp_path / "out").exists()       # calibration warning)
    assert main(["elements", str(axo / "axo_std.mda"), "--instrument",
                 str(tmp_path / "two.toml")]) == 2
    assert "lists 2 detector elements" in capsys.readouterr().err
    four = file_instrument.replace(**{"geometry.detector_elements": [
        {"takeoff_deg": 45.0, "scattering_deg": angle, "solid_angle_sr": 0.1}
        for angle in (85.0, 87.0, 89.0, 91.0)]})
    (tmp_path / "four.toml").write_text(instrument_to_toml(four))
    argv[argv.index(str(tmp_path / "two.toml"))] = str(tmp_path / "four.toml")
    assert main([*argv, "--detector", "1"]) == 0
    assert "µg/cm²: Ca" in capsys.readouterr().out
