"""``xrfquant quantify --instrument FILE --elements LIST``: maps without a network, in wt%
(elements or oxides) or µg/cm² (a thin sample with a standard film), through the one
export path, and the refusals."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
import torch

from napari_xrfquant.cli import main
from napari_xrfquant.instrument import instrument_to_toml, reference_instrument
from napari_xrfquant.io import write_cxc_hdf5
from napari_xrfquant.physics import XRFSimulator, simulate
from napari_xrfquant.physics.oxides import OXIDES, oxygen_per_element
from napari_xrfquant.physics.standards import library


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["element"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def alloy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("physics")
    standard = library()["ERM-EB507"]
    elements = list(standard.wt_percent)
    counts = simulate(np.tile(standard.vector(elements), (16, 1)), elements, counts=3e5, seed=5)
    write_cxc_hdf5(folder / "alloy.h5", counts.reshape(4, 4, -1),
                   reference_instrument().energy_axis_keV())
    (folder / "reference.toml").write_text(instrument_to_toml(reference_instrument()))
    return folder, standard, elements


def test_an_alloy_without_a_network(alloy, tmp_path, capsys):
    folder, standard, elements = alloy
    out = tmp_path / "out"
    argv = ["quantify", str(folder / "alloy.h5"), "-o", str(out), "--instrument",
            str(folder / "reference.toml"), "--elements", ",".join(elements)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wt%: Au 75." in printed
    assert " s on cpu; outputs in " in printed or " s on cuda; outputs in " in printed
    assert {p.name for p in out.iterdir()} == {"alloy_wt_percent.tif",
                                              "alloy_sigma_wt_percent.tif",
                                              "alloy_fit_quality.tif", "alloy_statistics.csv"}
    rows = _rows(out / "alloy_statistics.csv")
    for element in elements:
        assert float(rows[element]["mean_wt_percent"]) == pytest.approx(
            standard.wt_percent[element], abs=0.3)
    assert rows["Au"]["model_id"] == "physics (no network)"
    assert 0.8 < float(rows["Au"]["median_fit_quality"]) < 1.3
    assert main(argv) == 2  # outputs exist: refused without --overwrite
    assert "use --overwrite" in capsys.readouterr().err


def test_spectra_the_element_list_cannot_explain_are_said_to_be(alloy, tmp_path, capsys):
    folder, _, elements = alloy
    argv = ["quantify", str(folder / "alloy.h5"), "-o", str(tmp_path / "out"), "--instrument",
            str(folder / "reference.toml"), "--elements", ",".join(e for e in elements
                                                                  if e != "Au"), "--quiet"]
    assert main(argv) == 0  # written, and said: gold's lines are left unexplained
    err = capsys.readouterr().err
    assert "warning: alloy.h5: median fit quality" in err and "does not explain" in err


def test_oxides_get_rows_of_their_own(tmp_path):
    elements = ["Si", "K", "Ca", "Ti", "Fe"]
    oxide_wt = {"SiO2": 60.0, "K2O": 5.0, "CaO": 15.0, "TiO2": 5.0, "FeO": 15.0}
    wt = [oxide_wt[OXIDES[e]] / (1 + oxygen_per_element(OXIDES[e])) for e in elements]
    counts = simulate(np.tile([*wt, 100.0 - sum(wt)], (4, 1)), [*elements, "O"], counts=5e6,
                      seed=6)
    write_cxc_hdf5(tmp_path / "glass.h5", counts.reshape(2, 2, -1),
                   reference_instrument().energy_axis_keV())
    (tmp_path / "reference.toml").write_text(instrument_to_toml(reference_instrument()))
    assert main(["quantify", str(tmp_path / "glass.h5"), "-o", str(tmp_path / "out"),
                 "--instrument", str(tmp_path / "reference.toml"), "--elements",
                 ",".join(elements), "--matrix", "oxides", "--quiet"]) == 0
    rows = _rows(tmp_path / "out" / "glass_statistics.csv")
    assert float(rows["SiO2"]["mean_wt_percent"]) == pytest.approx(60.0, rel=0.03)
    assert float(rows["Si"]["mean_wt_percent"]) == pytest.approx(wt[0], rel=0.03)
    assert sum(float(rows[OXIDES[e]]["mean_wt_percent"]) for e in elements) == \
        pytest.approx(100.0, abs=0.01)  # the oxides close


def test_a_film_in_ug_per_cm2_with_its_standard(tmp_path, capsys):
    """A map of a film of known Ca, Fe and Cu: those set the scale, Zn and Pb come out
    in µg/cm² (TIFFs and CSV named after the unit). The standard's 5 % certificate
    sigma make the scale's own 5 % / sqrt(3), which every value shares."""
    film = reference_instrument().replace(sample={"areal_density_ug_cm2": 10.0})
    elements = ["Ca", "Fe", "Cu", "Zn", "Pb"]
    fractions = torch.tensor([[0.30, 0.20, 0.15, 0.10, 0.25]], dtype=torch.float64)
    sim = XRFSimulator(elements, instrument=film, dtype=torch.float64)
    with torch.no_grad():
        expected = (sim.line_intensities(fractions) @ sim.response_matrix()).numpy()[0]
    rng = np.random.default_rng(7)
    cube = rng.poisson(np.tile(2e8 * expected, (3, 3, 1))).astype(np.float64)
    write_cxc_hdf5(tmp_path / "film.h5", cube, film.energy_axis_keV())
    (tmp_path / "film.toml").write_text(instrument_to_toml(film))
    (tmp_path / "standard.csv").write_text(
        "element,ug_per_cm2,sigma_ug_per_cm2\nCa,3.0,0.15\nFe,2.0,0.1\nCu,1.5,0.075\n")
    argv = ["quantify", str(tmp_path / "film.h5"), "-o", str(tmp_path / "out"), "--instrument",
            str(tmp_path / "film.toml"), "--elements", ",".join(elements)]
    assert main(argv) == 2
    assert "need a standard film" in capsys.readouterr().err
    assert main([*argv, "--standard", str(tmp_path / "standard.csv")]) == 0
    rows = _rows(tmp_path / "out" / "film_statistics.csv")
    assert float(rows["Zn"]["mean_ug_per_cm2"]) == pytest.approx(1.0, rel=0.05)
    assert float(rows["Pb"]["mean_ug_per_cm2"]) == pytest.approx(2.5, rel=0.05)
    shared = float(rows["Zn"]["calibration_sigma_percent"])
    assert shared == pytest.approx(5 / 3**0.5, rel=0.1)
    assert f"shares its {shared:.1f} %" in capsys.readouterr().out
    with tifffile.TiffFile(tmp_path / "out" / "film_ug_per_cm2.tif") as tif:
        assert "µg/cm²" in tif.pages[0].description or tif.imagej_metadata


@pytest.mark.parametrize(("extra", "message"), [
    ([], "give one"),  # no --instrument
    (["--instrument", "{folder}/reference.toml", "--model", "x"], "--model do not apply"),
    (["--instrument", "{folder}/reference.toml", "--refine", "3"], "--refine do not apply"),
    (["--instrument", "{folder}/reference.toml", "--fit-range", "9-2"], "LOW must be below"),
    (["--instrument", "{folder}/reference.toml", "--standard", "nothing.csv"], "cannot read"),
    (["--instrument", "{folder}/reference.toml", "--mask-below", "-3"],
     "--mask-below -3.0: input should be greater than or equal to 0"),  # as the network path
    (["--instrument", "{folder}/reference.toml", "--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_requests_are_one_line_and_write_nothing(alloy, tmp_path, capsys, extra, message):
    folder, _, elements = alloy
    out = tmp_path / "out"
    argv = ["quantify", str(folder / "alloy.h5"), "-o", str(out), "--elements",
            ",".join(elements), *[a.replace("{folder}", str(folder)) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_error_after_the_progress_bar_started_is_its_last_line(alloy, tmp_path, capsys):
    """A range above the detector's is found once the spectra's bar has started: the
    bar is closed (its line cleared) before the error is printed, not after it, which
    on a terminal would wipe the error out."""
    folder, _, elements = alloy
    argv = ["quantify", str(folder / "alloy.h5"), "-o", str(tmp_path / "out"), "--elements",
            ",".join(elements), "--instrument", str(folder / "reference.toml"),
            "--fit-range", "40-50"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "spectra" in err  # the bar had started
    last = err.rstrip("\n").split("\r")[-1]  # what the terminal's last line shows
    assert last.startswith("xrfquant quantify: error: fewer than 10 channels lie in 40-50 keV")
