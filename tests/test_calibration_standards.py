"""Standards that are real: the library's certified materials, CSV files of elements or
oxides in wt% or µg/cm², a standard for a whole single-spectrum file, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_xrfquant.calibration.session import check_sample_form
from napari_xrfquant.cli import main
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.io import write_cxc_hdf5
from napari_xrfquant.physics.oxides import oxygen_per_element
from napari_xrfquant.physics.standards import library, parse_standard, read_standard_csv

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def test_the_library_holds_the_real_examples_certificates():
    bhvo, axo = library()["BHVO-2G"], library()["AXO-2IDE"]
    assert bhvo.unit == "wt_percent"
    assert sum(bhvo.wt_percent.values()) == pytest.approx(100, abs=0.01)
    assert bhvo.wt_percent["O"] == pytest.approx(44.2582) and bhvo.sigma["Si"] == 0.0467
    assert axo.unit == "ug_per_cm2" and axo.mass_ug_cm2 == pytest.approx(4.893)
    assert axo.ug_per_cm2 is not None and axo.ug_per_cm2["Mo"] == 0.132
    assert axo.wt_percent["La"] == pytest.approx(100 * 1.101 / 4.893)  # the film's shares
    assert "XRF-Maps" in axo.source and "GeoReM" in bhvo.source
    # the files beside the data read the same as the library's entries
    assert read_standard_csv(SAMPLES / "aps_2ide" / "AXO_composition.csv").ug_per_cm2 == \
        axo.ug_per_cm2
    assert parse_standard(str(SAMPLES / "pixl_breadboard" / "BHVO-2G_composition.csv")
                          ).wt_percent == pytest.approx(bhvo.wt_percent)


def _csv(tmp_path, text: str, name: str = "std.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_oxides_in_wt_percent_close_with_stoichiometric_oxygen(tmp_path):
    path = _csv(tmp_path, "# a glass\nelement,wt_percent,sigma_wt_percent\n"
                          "SiO2,60.0,0.3\nAl2O3,15.0,\nCaO,10.0,0.1\nNa2O,15.5,\n")  # sum 100.5
    standard = read_standard_csv(path)
    scale = 100.0 / 100.5  # an analysis within 1.5 wt% of 100 is scaled to 100
    assert sum(standard.wt_percent.values()) == pytest.approx(100.0)
    si = standard.wt_percent["Si"]
    assert si == pytest.approx(60.0 * scale / (1 + oxygen_per_element("SiO2")))
    # closure: every element plus the oxygen its oxide carries is the whole
    oxygen = sum(standard.wt_percent[e] * oxygen_per_element(f)
                 for e, f in (("Si", "SiO2"), ("Al", "Al2O3"), ("Ca", "CaO"), ("Na", "Na2O")))
    assert standard.wt_percent["O"] == pytest.approx(oxygen)
    assert standard.sigma["Si"] == pytest.approx(0.3 / (1 + oxygen_per_element("SiO2")))
    assert standard.source == "a glass" and standard.name == "std"


def test_a_film_of_oxides_in_ug_per_cm2(tmp_path):
    standard = read_standard_csv(_csv(tmp_path, "element,ug_per_cm2\nFe2O3,1.0\nCaO,0.5\n"))
    assert standard.ug_per_cm2 is not None and standard.mass_ug_cm2 == pytest.approx(1.5)
    assert standard.ug_per_cm2["Fe"] == pytest.approx(1.0 / (1 + oxygen_per_element("Fe2O3")))


@pytest.mark.parametrize(("text", "message"), [
    ("element,wt_percent\nFe,70\nNi,20\n", "sums to 90 wt%, not 100"),
    ("element,wt_percent\nSiO2,60\nCaO,30\n", "oxides sum to 90 wt%"),
    ("element,wt_percent,ug_per_cm2\nFe,100,1\n", "give one value column"),
    ("element,mass\nFe,100\n", "give one value column, wt_percent or ug_per_cm2"),
    ("symbol,wt_percent\nFe,100\n", "needs an 'element' column"),
    ("element,wt_percent\nFe,-5\nNi,105\n", "must be a non-negative number"),
    ("element,wt_percent\nFe,lots\n", "'lots' is not a number"),
    ("element,wt_percent\nXx,100\n", "Xx"),
    ("element,wt_percent\nSiO2,50\nFe,50\n", "mixes elements and oxides"),
    ("element,wt_percent\nFe,50\nFe,50\n", "Fe is listed twice"),
    ("element,ug_per_cm2\nFe,0\n", "sum to 0 µg/cm²"),
    ("# nothing\nelement,wt_percent\n", "lists no element"),
])
def test_a_csv_whose_sums_or_units_do_not_add_up_is_one_line(tmp_path, text, message):
    with pytest.raises(XRFQuantError, match=message) as caught:
        read_standard_csv(_csv(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_a_thin_film_standard_needs_that_film_as_the_sample():
    axo = library()["AXO-2IDE"]
    with pytest.raises(XRFQuantError, match=r"add \[sample\] with areal_density_ug_cm2 = 4\.893"):
        check_sample_form(axo, reference_instrument())
    other = reference_instrument().replace(sample={"areal_density_ug_cm2": 10.0})
    with pytest.raises(XRFQuantError, match=r"film of 4\.893 µg/cm² and the instrument's"):
        check_sample_form(axo, other)
    check_sample_form(axo, reference_instrument().replace(sample={"areal_density_ug_cm2": 4.893}))
    check_sample_form(library()["ERM-EB506"], reference_instrument())  # bulk on bulk


@pytest.fixture(scope="module")
def one_spectrum(tmp_path_factory):
    """A single spectrum of ERM-EB507 (the reference set-up) as a 1 x 1 cube."""
    from napari_xrfquant.physics import simulate

    standard = library()["ERM-EB507"]
    elements = list(standard.wt_percent)
    counts = simulate([standard.vector(elements)], elements, counts=2e6, seed=3)
    folder = tmp_path_factory.mktemp("one")
    write_cxc_hdf5(folder / "one.h5", counts.reshape(1, 1, -1),
                   reference_instrument().energy_axis_keV())
    (folder / "eb507.csv").write_text(
        "element,wt_percent\n" + "".join(f"{e},{v}\n" for e, v in standard.wt_percent.items()))
    return folder, elements


def test_a_standard_without_a_label_is_the_whole_file(one_spectrum, tmp_path, capsys):
    folder, elements = one_spectrum
    reference = tmp_path / "reference.toml"
    from napari_xrfquant.instrument import instrument_to_toml

    reference.write_text(instrument_to_toml(reference_instrument()))
    out = tmp_path / "out"
    argv = ["calibrate", str(folder / "one.h5"), "-o", str(out), "--instrument", str(reference),
            "--elements", ",".join(elements), "--standard", str(folder / "eb507.csv"),
            "--free", "gain_keV,offset_keV", "--max-seconds", "5", "--quiet"]
    assert main(argv) == 0
    import json

    groups = json.loads((out / "calibration.json").read_text())["groups"]
    assert [g["name"] for g in groups] == ["eb507"] and groups[0]["standard"]
    assert groups[0]["fit_quality_after"] < 1.5
    # a whole-file standard stands alone
    assert main([*argv[:-1], "--standard", "1=ERM-EB506", "--overwrite"]) == 2
    assert "give it alone" in capsys.readouterr().err
    np.save(tmp_path / "labels.npy", np.ones((1, 1), dtype=np.int64))
    assert main([*argv, "--labels", str(tmp_path / "labels.npy"), "--overwrite"]) == 2
    assert "give it its label" in capsys.readouterr().err
