"""Element identification (``find_elements``, ``xrfquant elements``): a likelihood-ratio
search over Na-U with the simulator, overlaps fitted together, clusters for elements in
a few pixels only, and the command's table, JSON and refusals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_xrfquant.cli import main
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.element_search import (
    candidate_elements,
    find_elements,
    search_range,
)
from napari_xrfquant.instrument import instrument_to_toml, load_instrument, reference_instrument
from napari_xrfquant.io import write_cxc_hdf5
from napari_xrfquant.physics import simulate


def _spectrum(composition: dict[str, float], counts: float, seed: int = 1) -> np.ndarray:
    elements = list(composition)
    return np.asarray(simulate(np.array([list(composition.values())]), elements,
                               counts=counts, seed=seed))


@pytest.mark.parametrize("counts", [1e4, 1e6])
def test_a_steel_shows_its_elements_and_no_other(counts):
    steel = {"Fe": 70.0, "Cr": 18.0, "Ni": 10.0, "Mo": 2.0}
    search = find_elements(_spectrum(steel, counts), reference_instrument(), refine=False,
                           clusters=0)
    assert set(search.symbols) == set(steel)
    fe = next(f for f in search.found if f.symbol == "Fe")
    assert fe.line == "Fe Ka" and abs(fe.line_keV - 6.40) < 0.01
    assert search.fit_quality < 1.3
    # the approximate amounts are the closure of the fitted amounts
    assert fe.wt_percent == pytest.approx(70.0, abs=5.0)
    json.dumps(search.to_dict())  # plain data
    assert search.instrument == reference_instrument()  # not refined: the one given


@pytest.mark.parametrize(("present", "absent"), [("Pb", "As"), ("As", "Pb")])
def test_pb_l_and_as_k_are_told_apart(present, absent):
    # Pb La (10.55 keV) and As Ka (10.54 keV) coincide; the other lines decide
    sample = {"Si": 95.0, present: 5.0}
    search = find_elements(_spectrum(sample, 1e5), reference_instrument(), refine=False,
                           clusters=0)
    assert present in search.symbols
    assert absent not in search.symbols


def test_an_element_in_a_few_pixels_is_found_in_its_cluster():
    rng_counts = 2e4
    matrix = _spectrum({"Si": 80.0, "Fe": 20.0}, rng_counts)[0]
    pixels = np.stack([np.random.default_rng(k).poisson(matrix.astype(float))
                       for k in range(64)]).astype(float)
    spot = _spectrum({"Si": 78.0, "Fe": 20.0, "Zn": 2.0}, rng_counts, seed=3)[0]
    pixels[:6] = np.stack([np.random.default_rng(100 + k).poisson(spot) for k in range(6)])
    inst = reference_instrument()
    only_sum = find_elements(pixels, inst, refine=False, clusters=0)
    with_clusters = find_elements(pixels, inst, refine=False, clusters=2)
    assert "Zn" in with_clusters.symbols
    zn = next(f for f in with_clusters.found if f.symbol == "Zn")
    assert zn.where.startswith("cluster") or "Zn" in only_sum.symbols
    assert {"Si", "Fe"} <= set(with_clusters.symbols)


def test_candidates_follow_the_beam_and_leave_out_the_set_up():
    inst = reference_instrument()
    candidates, excluded = candidate_elements(inst, search_range(inst))
    assert {"Na", "Fe", "Pb", "U"} <= set(candidates)
    assert not {"Tc", "Pm", "Kr"} & set(candidates)
    low_beam = inst.replace(**{"beam.energies_keV": (8.0,)})
    # Zn K (edge 9.66 keV) is dark; its L lines (1.01 keV) lie below the range
    assert "Zn" not in candidate_elements(low_beam, (1.2, 9.0))[0]
    axo = load_instrument("sample_data/aps_2ide/instrument.toml")
    candidates, excluded = candidate_elements(axo, search_range(axo))
    assert "Ar" not in candidates and "set-up" in excluded["Ar"]
    # a monochromatic beam: searched up to 3 FWHM below its Compton peak
    assert 9.0 < search_range(axo)[1] < 9.5


def test_bad_spectra_are_refused():
    inst = reference_instrument()
    with pytest.raises(XRFQuantError, match="channels"):
        find_elements(np.ones((1, 10)), inst)
    with pytest.raises(XRFQuantError, match="no counts"):
        find_elements(np.zeros((1, inst.detector.n_channels)), inst)


@pytest.mark.parametrize(("options", "message"), [
    ({"fit_keV": (40.0, 50.0)}, r"fewer than 10 channels lie in 40-50 keV \(the detector's "
                                r"channels span 0\.\d\d-\d+\.\d\d keV\)"),
    ({"threshold": -1.0}, "threshold -1: give a significance in sigma above 0"),
    ({"threshold": float("nan")}, "threshold nan"),
])
def test_a_range_without_channels_or_a_threshold_of_no_sigma_is_one_line(
        tmp_path, capsys, options, message):
    """Before any work (no tables built), in the API and the CLI (exit 2, no output)."""
    inst = reference_instrument()
    spectra = np.ones((1, inst.detector.n_channels))
    with pytest.raises(XRFQuantError, match=message):
        find_elements(spectra, inst, **options)
    path = _steel_cube(tmp_path / "steel.h5", seed=3)
    flag = ["--fit-range", "40-50"] if "fit_keV" in options else [
        "--threshold", str(options["threshold"])]
    assert main(["elements", str(path), *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xrfquant elements: error:")


def _steel_cube(path, seed):
    """A 2 x 2 CXC file of a steel (Fe 70, Cr 18, Ni 10, Mo 2 wt%), 5e4 counts a pixel."""
    steel = simulate(np.tile([70.0, 18.0, 10.0, 2.0], (4, 1)), ["Fe", "Cr", "Ni", "Mo"],
                     counts=5e4, seed=seed)
    return write_cxc_hdf5(path, steel.reshape(2, 2, -1), reference_instrument().energy_axis_keV())


def test_the_command_prints_a_table_and_json(tmp_path, capsys):
    cube = _steel_cube(tmp_path / "steel.h5", seed=2)
    assert main(["elements", str(cube), "--no-clusters"]) == 0
    table = capsys.readouterr().out
    assert "4 element(s) found" in table and "Fe Ka" in table
    assert main(["elements", str(cube), "--no-clusters", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {e["symbol"] for e in found["elements"]} == {"Fe", "Cr", "Ni", "Mo"}
    assert set(found["elements"][0]) >= {"symbol", "line", "significance", "wt_percent"}
    assert main(["elements", str(tmp_path / "missing.h5")]) == 2
    assert "error" in capsys.readouterr().err


def test_quantify_and_calibrate_use_the_elements_found(tmp_path, capsys):
    cube = _steel_cube(tmp_path / "steel.h5", seed=4)
    setup = tmp_path / "reference.toml"
    setup.write_text(instrument_to_toml(reference_instrument()))
    assert main(["quantify", str(cube), "-o", str(tmp_path / "out"), "--instrument",
                 str(setup), "--quiet"]) == 0
    said = capsys.readouterr().err
    assert "no --elements: using those steel.h5 shows" in said
    with open(tmp_path / "out" / "steel_statistics.csv", encoding="utf-8") as handle:
        rows = {row["element"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"Fe", "Cr", "Ni", "Mo"}
    assert float(rows["Fe"]["mean_wt_percent"]) == pytest.approx(70.0, abs=1.5)
    assert main(["calibrate", str(cube), "-o", str(tmp_path / "cal"), "--instrument",
                 str(setup), "--max-seconds", "2", "--quiet"]) == 0
    assert "xrfquant calibrate: no --elements: using those" in capsys.readouterr().err
    report = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert set(report["elements"]) == {"Fe", "Cr", "Ni", "Mo"}


def test_a_cube_is_searched_a_slab_of_rows_at_a_time_with_the_same_result(monkeypatch):
    """A lazy cube is read in slabs of whole rows, twice (sum and shapes, then the
    clusters' sums), never whole, and is found to show what the same pixels in
    memory show, cluster by cluster."""
    from conftest import RowCountingCube
    from napari_xrfquant.inference import pixel_groups
    from napari_xrfquant.inference.element_search import iter_find_elements_in_cube
    from napari_xrfquant.jobs import drive

    monkeypatch.setattr(pixel_groups, "row_slabs", _slabs_of(16))  # 2 rows of 8 pixels
    matrix = _spectrum({"Si": 80.0, "Fe": 20.0}, 2e4)[0]
    pixels = np.stack([np.random.default_rng(k).poisson(matrix.astype(float))
                       for k in range(64)]).astype(float)
    spot = _spectrum({"Si": 78.0, "Fe": 20.0, "Zn": 2.0}, 2e4, seed=3)[0]
    pixels[:6] = np.stack([np.random.default_rng(100 + k).poisson(spot) for k in range(6)])
    inst = reference_instrument()
    lazy = RowCountingCube(pixels.reshape(8, 8, -1))
    from_slabs = drive(iter_find_elements_in_cube(lazy, inst.energy_axis_keV(), inst,
                                                  refine=False, clusters=2))
    in_memory = find_elements(pixels, inst, refine=False, clusters=2)
    assert max(lazy.rows_read) == 2 and sum(lazy.rows_read) == 16  # 8 rows, read twice
    assert [(f.symbol, f.where) for f in from_slabs.found] == \
        [(f.symbol, f.where) for f in in_memory.found]
    assert [f.significance for f in from_slabs.found] == pytest.approx(
        [f.significance for f in in_memory.found], rel=1e-9)
    with pytest.raises(XRFQuantError, match=r"counts of shape \(64, \d+\): give a cube"):
        drive(iter_find_elements_in_cube(pixels, inst.energy_axis_keV(), inst))


def _slabs_of(pixels: int):
    from napari_xrfquant.inference.slabs import row_slabs

    def slabs(counts, energy_keV, target_keV):
        return row_slabs(counts, energy_keV, target_keV, pixels)

    return slabs


def test_an_element_whose_lines_all_sit_under_a_stronger_ones_is_uncertain():
    """Bi found beside Pb with only its M lines, each within one FWHM of a Pb M line, is
    set aside with the reason; one line of its own keeps an element; an element that is
    itself set aside hides nothing."""
    from napari_xrfquant.inference.element_overlaps import judge_overlaps
    from napari_xrfquant.inference.element_search import FoundElement

    lines = {  # (family, keV, photons)
        "Pb": [("Pb Ma", 2.345, 1000.0), ("Pb La", 10.55, 3000.0)],
        "Bi": [("Bi Ma", 2.42, 50.0)],
        "Zr": [("Zr La", 2.04, 100.0), ("Zr Ka", 15.77, 300.0)],
        "Y": [("Y La", 1.92, 20.0)],
        "Au": [("Au Ma", 2.12, 40.0)],
        "Hg": [("Hg Ma", 2.195, 30.0)],
    }
    ordered = [FoundElement("Pb", "Pb La", 10.55, 300.0, 50.0),
               FoundElement("Bi", "Bi Ma", 2.42, 50.0, 10.0),
               FoundElement("Zr", "Zr Ka", 15.77, 40.0, 10.0),
               FoundElement("Au", "Au Ma", 2.12, 20.0, 5.0),
               FoundElement("Hg", "Hg Ma", 2.195, 15.0, 5.0),
               FoundElement("Y", "Y La", 1.92, 10.0, 5.0)]

    def fwhm(energy_keV: float) -> float:  # an SDD's: 0.12 keV at 2 keV
        return float(np.sqrt(0.1**2 + 2.355**2 * 0.114 * 0.00385 * energy_keV))

    judged = {f.symbol: j for f, j in zip(ordered, judge_overlaps(ordered, lines, fwhm),
                                          strict=True)}
    assert judged["Pb"].uncertain is None and judged["Zr"].uncertain is None
    assert judged["Bi"].uncertain is not None and "Pb Ma" in judged["Bi"].uncertain
    assert "cannot separate" in judged["Bi"].uncertain
    # Au Ma (2.12) sits under Zr La (2.04, kept) and Pb Ma is 0.23 keV away: set aside
    assert judged["Au"].uncertain is not None and "Zr La" in judged["Au"].uncertain
    # Hg Ma (2.195) lies under Au Ma only, which is set aside itself: Hg stays
    assert judged["Hg"].uncertain is None
    # Y La (1.92) lies within one FWHM of Zr La (kept): set aside too
    assert judged["Y"].uncertain is not None
    assert judged["Pb"].overlaps == () and "Bi" not in judged["Zr"].overlaps


def test_a_weak_line_of_a_stronger_element_hides_nothing_with_more_photons():
    """On the AXO film Pb Ma (2.345 keV) lies 64 eV from Au Mg, a few % of Au's M
    photons: Pb is kept (a misfit of Au Mg cannot make Pb's counts), and S Ka, with
    more photons than Au Mg but a fifth of Pb Ma's, is set aside under Pb Ma."""
    from napari_xrfquant.inference.element_overlaps import judge_overlaps
    from napari_xrfquant.inference.element_search import FoundElement

    lines = {"Au": [("Au Ma", 2.123, 1000.0), ("Au Mg", 2.409, 50.0)],
             "Pb": [("Pb Ma", 2.345, 400.0)], "S": [("S Ka", 2.307, 80.0)]}
    ordered = [FoundElement("Au", "Au Ma", 2.123, 17.0, 5.0),
               FoundElement("Pb", "Pb Ma", 2.345, 12.0, 10.0),
               FoundElement("S", "S Ka", 2.307, 6.0, 1.0)]

    def fwhm(energy_keV: float) -> float:
        return float(np.sqrt(0.149**2 + 2.355**2 * 0.114 * 0.00385 * energy_keV))

    judged = dict(zip("Au Pb S".split(), judge_overlaps(ordered, lines, fwhm), strict=True))
    assert judged["Au"].uncertain is None and judged["Pb"].uncertain is None
    assert judged["S"].uncertain is not None and "Pb Ma" in judged["S"].uncertain


def test_a_faint_line_of_a_dominant_element_stands_for_a_phantom_ten_times_fainter():
    """The bundled sample's sum (photons as its search measured them): Ag La, 0.5 %
    of Ag's photons, is 11 times Ar Ka beside it, so the Ar found at 5.9 sigma is set
    aside; Au Ll, 2 % of Au's L photons, is 3 times Zn Ka beside it, too few for a
    misfit of it to make Zn, and Zn (real) stays. Neither faint family counts as a
    line Ag or Au shows, under which another hides."""
    from napari_xrfquant.inference.element_overlaps import judge_overlaps
    from napari_xrfquant.inference.element_search import FoundElement

    lines = {"Au": [("Au Lb", 11.477, 1.3e-2), ("Au La", 9.704, 1.04e-2),
                    ("Au Ll", 8.494, 5.4e-4)],
             "Ag": [("Ag Ka", 22.103, 1.0e-2), ("Ag La", 2.984, 5.7e-5)],
             "Zn": [("Zn Ka", 8.631, 1.8e-4)], "Ar": [("Ar Ka", 2.957, 5.2e-6)]}
    ordered = [FoundElement("Au", "Au Lb", 11.477, 3405.0, 60.0),
               FoundElement("Ag", "Ag Ka", 22.103, 2724.0, 11.0),
               FoundElement("Zn", "Zn Ka", 8.631, 113.5, 0.7),
               FoundElement("Ar", "Ar Ka", 2.957, 5.9, 4.6)]

    def fwhm(energy_keV: float) -> float:
        return float(np.sqrt(0.1**2 + 2.355**2 * 0.114 * 0.00385 * energy_keV))

    judged = dict(zip("Au Ag Zn Ar".split(), judge_overlaps(ordered, lines, fwhm), strict=True))
    assert judged["Ar"].uncertain is not None and "Ag La" in judged["Ar"].uncertain
    assert judged["Zn"].uncertain is None


def test_a_line_in_the_high_shoulder_of_a_far_brighter_one_is_uncertain():
    """BHVO-2G's sum as its search measured it (photons at the found shares): Ho La
    2.3 FWHM above Fe Ka, which carries 379 times its photons, is set aside with the
    distance and the ratio in the reason; the real P Ka 2.9 FWHM above Si Ka (x217)
    stays, as does a line below a bright one (the low tail is modelled: Mn Ka under
    Fe Ka) and Ho itself beside an Fe Ka only 50 times as bright."""
    from napari_xrfquant.inference.element_overlaps import judge_overlaps
    from napari_xrfquant.inference.element_search import FoundElement

    lines = {"Fe": [("Fe Ka", 6.40, 1.53e-2), ("Fe Kb", 7.06, 2.1e-3)],
             "Si": [("Si Ka", 1.74, 2.0e-2)],
             "Ho": [("Ho La", 6.716, 4.04e-5), ("Ho Lb", 7.641, 2.35e-5)],
             "P": [("P Ka", 2.013, 9.2e-5)], "Mn": [("Mn Ka", 5.895, 2.13e-4)]}
    ordered = [FoundElement("Fe", "Fe Ka", 6.40, 1324.0, 10.0),
               FoundElement("Si", "Si Ka", 1.74, 570.0, 25.0),
               FoundElement("Mn", "Mn Ka", 5.895, 45.0, 0.2),
               FoundElement("Ho", "Ho La", 6.716, 19.1, 0.01),
               FoundElement("P", "P Ka", 2.013, 10.2, 0.1)]

    def fwhm(energy_keV: float) -> float:  # the breadboard's: 84 eV at Si Ka, 135 at Fe Ka
        return float(np.sqrt(0.002885 + 0.002397 * energy_keV))

    judged = dict(zip([f.symbol for f in ordered], judge_overlaps(ordered, lines, fwhm),
                      strict=True))
    reason = judged["Ho"].uncertain or ""
    assert "2.3 FWHM above Fe Ka, 379 times as bright" in reason
    assert all(judged[e].uncertain is None for e in ("Fe", "Si", "Mn", "P"))
    lines["Fe"] = [("Fe Ka", 6.40, 50 * 4.04e-5)]
    assert judge_overlaps(ordered, lines, fwhm)[3].uncertain is None


def test_argon_found_is_put_down_to_air_in_the_path():
    """Ar found in a set-up whose path names no argon is uncertain, with the way to
    name it in the set-up; the other elements are as the search found them."""
    from napari_xrfquant.inference.element_search import AIR_ARGON

    sample = {"Ca": 60.0, "Ar": 2.0, "Si": 38.0}
    search = find_elements(_spectrum(sample, 1e5), reference_instrument(), refine=False,
                           clusters=0, candidates=list(sample))
    found = {f.symbol: f.uncertain for f in search.found}
    assert found == {"Ca": None, "Si": None, "Ar": AIR_ARGON}


@pytest.mark.slow
def test_the_real_axo_maps_sum_shows_its_film_and_no_phantom_uranium():
    """The AXO film (APS 2-ID-E, real): its sum spectrum shows the certified Ca, Fe,
    Cu and La. The air path's Ar Kb sits about 6 % above xraylib's ratio to Ka; with
    the set-up's line families fitted apart that is not a U M line (found at 25 sigma
    with one set-up component), and the fit of the amounts reaches its optimum."""
    import warnings

    from napari_xrfquant.inference.element_search import on_cube_axis
    from napari_xrfquant.io import read_cube

    setup = load_instrument("sample_data/aps_2ide/instrument.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stored calibrations' warning
        cube = read_cube("sample_data/aps_2ide/axo_std.mda")
    spectra, instrument = on_cube_axis(cube.data, cube.energy_keV, setup)
    search = find_elements(spectra, instrument, clusters=0)
    assert {"Ca", "Fe", "Cu", "La"} <= set(search.symbols)
    assert "U" not in search.symbols and "Ar" not in search.candidates
    assert search.fit_quality < 2.5  # measured 1.99 (3.7 before the fit's projected steps)
    # Ag La lies 27 eV from the air's Ar Ka: their amounts correlate at -0.88 in the sum's
    # fit; the certified Pd, whose L lines lie as near Ar K's, correlates at -0.40 and stays
    uncertain = {f.symbol: f.uncertain or "" for f in search.found}
    assert "set-up's own Ar K" in uncertain["Ag"] and uncertain["Pd"] == ""
    # Os Ma stands 1.2 FWHM above the window's Si Ka, 189 times as bright
    assert "FWHM above Si Ka" in uncertain["Os"]
    # Rh, at 8.5 sigma beside the elements set aside, is not in the sum without them
    assert "left out of the sum's fit" in uncertain["Rh"]
    # the set-up of its final fits comes with it: the detector refined on the sum
    assert search.instrument is not None
    assert search.instrument.detector != instrument.detector
    assert search.instrument.beam == instrument.beam


def test_an_element_the_fit_cannot_tell_from_a_set_up_line_is_uncertain():
    """The third rule: an element whose amount the fit ties to a set-up line family's
    (correlation -0.8 or beyond) is set aside with the family named; -0.4 is no tie,
    nor is a positive correlation; without the correlations no element is set aside for one."""
    from napari_xrfquant.inference.element_overlaps import judge_overlaps
    from napari_xrfquant.inference.element_search import FoundElement

    lines = {"Ag": [("Ag La", 2.984, 100.0)], "Pd": [("Pd La", 2.838, 300.0)],
             "K": [("K Ka", 3.314, 50.0)], "Fe": [("Fe Ka", 6.40, 1e4)]}
    ordered = [FoundElement("Fe", "Fe Ka", 6.40, 700.0, 50.0),
               FoundElement("Pd", "Pd La", 2.838, 16.0, 1.0),
               FoundElement("K", "K Ka", 3.314, 10.0, 1.0),
               FoundElement("Ag", "Ag La", 2.984, 6.0, 1.0)]
    with_setup = {"Ag": ("Ar Kb", -0.88), "Pd": ("Ar Ka", -0.40), "K": ("Ar Ka", 0.44),
                  "Fe": None}

    def fwhm(energy_keV: float) -> float:
        return float(np.sqrt(0.149**2 + 2.355**2 * 0.114 * 0.00385 * energy_keV))

    judged = dict(zip("Fe Pd K Ag".split(), judge_overlaps(ordered, lines, fwhm, with_setup),
                      strict=True))
    assert judged["Ag"].uncertain is not None and "Ar Kb" in judged["Ag"].uncertain
    assert "-0.88" in judged["Ag"].uncertain
    assert all(judged[e].uncertain is None for e in ("Fe", "Pd", "K"))
    assert "set-up" not in (judge_overlaps(ordered, lines, fwhm)[3].uncertain or "")


def test_an_element_only_a_cluster_shows_sets_aside_none_of_the_sums():
    """S Ka found at 30 sigma in one cluster's sum and Pb M at 10 in the map's sum lie
    within one FWHM of each other: Pb stays (the cluster's significance comes from
    another spectrum); an element of the sum still sets a cluster's aside."""
    from napari_xrfquant.inference.element_overlaps import judge_overlaps
    from napari_xrfquant.inference.element_search import FoundElement

    lines = {"S": [("S Ka", 2.307, 500.0)], "Pb": [("Pb Ma", 2.345, 100.0)],
             "Ca": [("Ca Ka", 3.69, 1e4)], "Sb": [("Sb La", 3.60, 1e4)]}
    ordered = [FoundElement("Ca", "Ca Ka", 3.69, 800.0, 50.0),
               FoundElement("S", "S Ka", 2.307, 30.0, 1.0, where="cluster 2 (20 pixels)"),
               FoundElement("Pb", "Pb Ma", 2.345, 10.0, 1.0),
               FoundElement("Sb", "Sb La", 3.60, 9.0, 1.0, where="cluster 1 (9 pixels)")]

    def fwhm(energy_keV: float) -> float:
        return float(np.sqrt(0.149**2 + 2.355**2 * 0.114 * 0.00385 * energy_keV))

    judged = dict(zip("Ca S Pb Sb".split(), judge_overlaps(ordered, lines, fwhm), strict=True))
    assert judged["Pb"].uncertain is None and judged["S"].uncertain is None
    assert judged["Sb"].uncertain is not None and "Ca Ka" in judged["Sb"].uncertain


def test_a_file_without_a_set_up_is_searched_under_the_beam_it_states(capsys):
    """A GSECARS file states its 21 keV mono energy: searched without --instrument
    under the reference's 30 keV, its Compton and Rayleigh peaks passed for Ru and
    Rh Ka at a fit quality of 625; under the file's beam they are scatter."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "sample_data" / "gsecars" / \
        "axorf4_21kev_i050.xrf"
    assert main(["elements", str(path), "--json"]) == 0
    said = capsys.readouterr()
    assert "no --instrument: the reference set-up under the file's 21 keV beam stood" in said.err
    found = json.loads(said.out)
    lines = {e["symbol"]: e["line"] for e in found["elements"]}
    assert {"Pb", "Fe", "Cu", "Ca", "La", "Mo"} <= set(lines)  # the AXO film's, K/L excited
    assert lines.get("Ru") != "Ru Ka" and "Rh" not in lines
    assert found["fit_quality"] < 30.0


def test_the_assumed_set_up_takes_only_a_beam_energy_an_xrf_beam_has():
    from napari_xrfquant.io.detectors import assumed_instrument, assumed_setup

    axis = reference_instrument().energy_axis_keV()
    assert assumed_instrument(axis, {"beam_keV": 11.8}).beam.energies_keV == (11.8,)
    for metadata in ({}, {"beam_keV": 11800.0}, {"beam_keV": "11.8"}):
        assert assumed_instrument(axis, metadata).beam == reference_instrument().beam
        assert assumed_setup(metadata) == "the reference set-up (30 keV beam)"
