"""Physics quantification without a network: bulk alloys, thin films in µg/cm², oxides
with stoichiometric oxygen, the detector refined on a sum spectrum, and the refusals.

Spectra are simulated with the forward simulator (absolute intensities for the
films) and fitted back; the real measurements are in benchmarks/bench_real_setups.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import RowCountingCube
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.inference.physics_setup import refine_detector, scale_from_standard
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.physics import XRFSimulator, simulate
from napari_xrfquant.physics.oxides import OXIDES, oxygen_per_element
from napari_xrfquant.physics.standards import library


def test_an_alloy_comes_back_with_honest_sigma_and_fit_quality():
    standard = library()["ERM-EB507"]
    elements = list(standard.wt_percent)
    truth = np.array(standard.vector(elements))
    spectra = simulate(np.tile(truth, (60, 1)), elements, counts=1e6, seed=1)
    fit = PhysicsQuantifier(elements, reference_instrument()).fit(spectra)
    assert fit.unit == "wt_percent" and fit.values.shape == (60, 5)
    assert np.abs(fit.values.mean(axis=0) - truth).max() < 0.15  # measured: Au +0.07
    assert np.allclose(fit.values.sum(axis=1), 100.0)
    # sigma says how far single spectra scatter (within a factor 2 for every element)
    ratio = fit.values.std(axis=0) / fit.sigma.mean(axis=0)
    assert np.all((ratio > 0.5) & (ratio < 2.0))
    assert 0.85 < np.median(fit.fit_quality) < 1.2


def _film_counts(instrument, elements, fractions, scale, seed):
    """Absolute counts of a film: scale x (line and scatter intensities through the detector)."""
    sim = XRFSimulator(elements, instrument=instrument, dtype=torch.float64)
    with torch.no_grad():
        expected = sim.line_intensities(torch.as_tensor(fractions)) @ sim.response_matrix()
    return np.random.default_rng(seed).poisson(scale * expected.numpy()).astype(np.float64)


def test_a_film_in_ug_per_cm2_from_a_standard_film():
    """A standard film sets the counts per unit intensity; another film of the same mass
    comes back in µg/cm² (the films' intensities are linear at 10 µg/cm²)."""
    film = reference_instrument().replace(sample={"areal_density_ug_cm2": 10.0})
    elements = ["Ca", "Fe", "Cu", "Zn", "Pb"]
    scale = 4e9
    standard = np.array([[0.30, 0.20, 0.15, 0.10, 0.25]])
    unknown = np.array([[0.10, 0.35, 0.05, 0.20, 0.30]])
    quantifier = PhysicsQuantifier(elements, film)
    counts = _film_counts(film, elements, standard, scale, 0)[0]
    known = {e: 10.0 * w for e, w in zip(elements[:3], standard[0][:3], strict=True)}
    found, sigma = scale_from_standard(quantifier, counts, known)
    assert found == pytest.approx(scale, rel=0.01) and sigma < 0.01 * scale
    quantifier.scale = found
    fit = quantifier.fit(_film_counts(film, elements, unknown, scale, 1))
    assert fit.unit == "ug_per_cm2"
    assert fit.values[0] == pytest.approx(10.0 * unknown[0], rel=0.03)
    assert np.all(np.abs(fit.values[0] - 10.0 * unknown[0]) < 3 * fit.sigma[0] + 0.01)


def test_each_material_of_a_map_gets_the_line_shapes_of_its_own_matrix():
    """A Cu-rich gold (ERM-EB506-like) beside four times as many pixels of Cu-free
    yellow gold: its Cu absorbs Au La (above the Cu K edge) and not Au Ll, which lies
    under Zn Ka. Shapes from the map's mean matrix put Zn 0.32 wt% too high and Au 0.28
    too low there; shapes per composition group get both within 0.02."""
    elements = ["Au", "Ag", "Cu", "Ni", "Zn"]
    copper_rich = np.array([58.56, 3.90, 35.65, 0.0, 1.89])
    yellow = np.array([75.1, 24.9, 0.0, 0.0, 0.0])
    spectra = simulate(np.vstack([np.tile(copper_rich, (20, 1)), np.tile(yellow, (80, 1))]),
                       elements, counts=1e6, seed=2)
    fit = PhysicsQuantifier(elements, reference_instrument()).fit(spectra)
    assert np.abs(fit.values[:20].mean(axis=0) - copper_rich).max() < 0.02
    assert np.abs(fit.values[20:].mean(axis=0) - yellow).max() < 0.02


def test_a_scale_whose_standard_elements_disagree_is_only_as_sure_as_they_agree():
    """A certificate 30 % off for one of three elements: the spread widens the scale's
    sigma beyond counting (the Birge ratio); the certificate's own sigma weighs the
    doubtful element down and the scale comes back to the truth."""
    film = reference_instrument().replace(sample={"areal_density_ug_cm2": 10.0})
    elements = ["Ca", "Fe", "Cu", "Zn", "Pb"]
    scale = 4e9
    standard = np.array([0.30, 0.20, 0.15, 0.10, 0.25])
    quantifier = PhysicsQuantifier(elements, film)
    counts = _film_counts(film, elements, standard[None], scale, 2)[0]
    certified = {e: 10.0 * w for e, w in zip(elements[:3], standard[:3], strict=True)}
    consistent, counting = scale_from_standard(quantifier, counts, certified)
    assert consistent == pytest.approx(scale, rel=0.01) and counting < 0.005 * scale
    certified["Ca"] *= 1.3  # a wrong certificate: Ca alone implies a 23 % lower scale
    spread_scale, spread_sigma = scale_from_standard(quantifier, counts, certified)
    assert spread_sigma > 10 * counting
    assert abs(spread_scale - scale) < 2 * spread_sigma  # sigma covers the error
    sigma = {"Ca": 0.3 * certified["Ca"], "Fe": 0.02, "Cu": 0.015}  # Ca known to be doubtful
    weighted, weighted_sigma = scale_from_standard(quantifier, counts, certified, sigma)
    assert abs(weighted - scale) < abs(spread_scale - scale) / 3
    assert abs(weighted - scale) < 2 * weighted_sigma
    # an element certified at 0 sets nothing (it would be 0 / 0)
    with_zero = scale_from_standard(quantifier, counts, {**certified, "Zn": 0.0}, sigma)
    assert with_zero == pytest.approx((weighted, weighted_sigma))


def test_oxides_close_with_their_oxygen():
    """A glass simulated with its stoichiometric oxygen: every element back within 2 %
    relative, and elements plus oxygen make 100 wt%. (The reference set-up's optic
    passes almost nothing below 2 keV: Mg and Al would be a few counts.)"""
    elements = ["Si", "K", "Ca", "Ti", "Fe"]
    oxide_wt = {"SiO2": 60.0, "K2O": 5.0, "CaO": 15.0, "TiO2": 5.0, "FeO": 15.0}
    wt = {e: oxide_wt[OXIDES[e]] / (1 + oxygen_per_element(OXIDES[e])) for e in elements}
    oxygen = 100.0 - sum(wt.values())
    spectra = simulate([[*wt.values(), oxygen]], [*elements, "O"], counts=2e7, seed=2)
    fit = PhysicsQuantifier([*elements, "O"], reference_instrument(), matrix="oxides",
                            fit_keV=(1.0, 31.0)).fit(spectra)
    assert fit.values[0] == pytest.approx(np.array(list(wt.values())), rel=0.02)
    assert np.all(np.abs(fit.values[0] - np.array(list(wt.values()))) < 3 * fit.sigma[0])
    assert fit.oxygen_wt_percent is not None
    assert fit.values[0].sum() + fit.oxygen_wt_percent[0] == pytest.approx(100.0)
    assert fit.oxygen_wt_percent[0] == pytest.approx(oxygen, rel=0.01)


def test_the_detector_is_refined_on_a_sum_spectrum():
    """A spectrum measured 12 eV off and 15 eV wider than the instrument file says: the
    refined calibration puts the lines back and the fit quality falls to about 1."""
    standard = library()["ERM-EB506"]
    elements = [e for e, v in standard.wt_percent.items() if v > 0]
    truth = reference_instrument()
    measured = truth.replace(**{"detector.offset_keV": 0.012, "detector.noise_keV":
                                truth.detector.noise_keV + 0.015})
    spectrum = simulate([standard.vector(elements)], elements, instrument=measured,
                        counts=5e6, seed=4)[0]
    refined, before, after = refine_detector(PhysicsQuantifier(elements, truth), spectrum,
                                             names=("offset_keV", "gain_keV", "noise_keV"))
    assert refined.detector.offset_keV == pytest.approx(0.012, abs=0.003)
    assert refined.detector.noise_keV == pytest.approx(measured.detector.noise_keV, abs=0.005)
    assert before > 5.0 and after < 1.3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"elements": ["Fe", "O"]}, "O show no line to fit"),
    ({"elements": ["Fe", "C"], "matrix": "oxides"}, "C show no line to fit"),
    ({"elements": ["Fe"], "matrix": "granite"}, "matrix 'granite'"),
    ({"elements": ["Fe"], "fit_keV": (5.0, 5.1)}, "fewer than 10 channels"),
])
def test_bad_requests_are_one_line(kwargs, message):
    elements = kwargs.pop("elements")
    with pytest.raises(XRFQuantError, match=message):
        PhysicsQuantifier(elements, reference_instrument(), **kwargs)


def test_a_film_without_a_scale_or_the_wrong_spectra_is_refused():
    film = reference_instrument().replace(sample={"areal_density_ug_cm2": 1.0})
    quantifier = PhysicsQuantifier(["Fe"], film)
    with pytest.raises(XRFQuantError, match="calibrate the scale on a standard"):
        quantifier.fit(np.ones((1, 1024)))
    quantifier.scale = 1.0
    with pytest.raises(XRFQuantError, match="the instrument has 1024 channels"):
        quantifier.fit(np.ones((1, 512)))
    with pytest.raises(XRFQuantError, match="needs a thin sample"):
        scale_from_standard(PhysicsQuantifier(["Fe"], reference_instrument()), np.ones(1024),
                            {"Fe": 1.0})


def test_a_salts_chlorine_stays_an_element_among_oxides():
    """Sylvite in a silicate: Cl has no oxide and carries no oxygen."""
    composition = {"K": 20.0, "Cl": 18.0, "Si": 23.4, "Ca": 10.0}
    oxygen = sum(composition[e] * oxygen_per_element(OXIDES[e]) for e in ("K", "Si", "Ca"))
    total = sum(composition.values()) + oxygen
    quantifier = PhysicsQuantifier([*composition, "O"], reference_instrument(), matrix="oxides")
    assert quantifier.oxygen is not None
    assert quantifier.oxygen[list(composition).index("Cl")] == 0.0
    spectra = simulate([[*(100 * v / total for v in composition.values()), 100 * oxygen / total]],
                       [*composition, "O"], counts=2e7, seed=9)
    fit = quantifier.fit(spectra)
    cl = fit.values[0, fit.elements.index("Cl")]
    assert cl == pytest.approx(100 * 18.0 / total, rel=0.03)


def test_a_map_is_fitted_chunk_by_chunk_with_progress_and_can_be_cancelled():
    from napari_xrfquant.inference.physics_quantify import iter_quantify_physics
    from napari_xrfquant.jobs import drive

    standard = library()["ERM-EB507"]
    elements = list(standard.wt_percent)
    truth = np.array(standard.vector(elements))
    inst = reference_instrument()
    cube = simulate(np.tile(truth, (48, 1)), elements, counts=1e5, seed=3).reshape(6, 8, -1)
    events = []
    result, _ = drive(iter_quantify_physics(cube, inst.energy_axis_keV(), elements, inst,
                                            refine=False, chunk=20), events.append)
    stages = [(e.stage, e.done, e.total) for e in events]
    assert stages[0] == ("set-up", 0, 48)
    assert [s for s in stages if s[0] == "quantify"] == [
        ("quantify", 0, 48), ("quantify", 20, 48), ("quantify", 40, 48), ("quantify", 48, 48)]
    means = np.nanmean(result.concentrations.reshape(48, -1), axis=0)
    assert np.abs(means - truth).max() < 0.3
    # the device "auto" resolved and said (CI and this CPU: no CUDA GPU)
    assert result.device == ("cuda" if torch.cuda.is_available() else "cpu")
    # a worker's cancel closes the generator between chunks: nothing more is fitted
    job = iter_quantify_physics(cube, inst.energy_axis_keV(), elements, inst, refine=False,
                                chunk=20)
    next(job), next(job)
    job.close()
    with pytest.raises(StopIteration):
        next(job)


def test_a_tube_voltage_below_the_lines_asked_for_is_refused(tmp_path):
    from napari_xrfquant.cli import main
    from napari_xrfquant.instrument import instrument_to_toml, load_instrument

    pixl = load_instrument("sample_data/pixl_breadboard/instrument.toml")
    low = pixl.replace(**{"tube.voltage_kV": 12.0})
    # Mo K (edge 20.0 keV) is dark at 12 kV; its L lines (2.3 keV) lie below 3 keV
    with pytest.raises(XRFQuantError, match=r"no line to fit of Mo: the tube \(12 kV\) is "
                                            r"below its K edge \(20 keV\); its lines"):
        PhysicsQuantifier(["Fe", "Mo"], low, fit_keV=(3.0, 11.0))
    PhysicsQuantifier(["Fe", "Mo"], pixl, fit_keV=(3.0, 25.0))  # at 28 kV Mo K shows
    setup = tmp_path / "low.toml"
    setup.write_text(instrument_to_toml(low))
    cube = tmp_path / "cube.npy"
    np.save(cube, np.ones((2, 2, 4096)))
    out = tmp_path / "out"
    assert main(["quantify", str(cube), "-o", str(out), "--instrument", str(setup),
                 "--elements", "Fe,Mo", "--fit-range", "3-11", "--calibration",
                 "0,0.0100449"]) == 2
    assert not out.exists() or not any(out.iterdir())


def test_secondary_fluorescence_follows_each_alloy_of_a_map():
    """Ag K lines enhance Au L by several % in a 25 % Ag alloy, not in a 3 % one: a map
    of both keeps each alloy's enhancement (one mean matrix put Au 1 wt% off in each)."""
    lib = library()
    elements = ["Au", "Ag", "Cu", "Ni", "Zn"]
    high_ag, low_ag = (np.array(lib[name].vector(elements)) for name in ("ERM-EB508", "ERM-EB507"))
    spectra = simulate(np.vstack([np.tile(high_ag, (20, 1)), np.tile(low_ag, (20, 1))]),
                       elements, counts=1e6, seed=8)
    fit = PhysicsQuantifier(elements, reference_instrument()).fit(spectra)
    assert abs(fit.values[:20, 0].mean() - high_ag[0]) < 0.3
    assert abs(fit.values[20:, 0].mean() - low_ag[0]) < 0.3


def test_sum_peaks_are_fitted_where_the_data_call_for_them():
    from napari_xrfquant.inference.physics_quantify import quantify_physics

    inst = reference_instrument()
    elements, steel = ["Fe", "Cr", "Ni", "Mo"], [70.0, 18.0, 10.0, 2.0]
    for pile_up, expected in ((0.03, True), (0.0, False)):
        made = inst.replace(**{"detector.pileup_fraction": pile_up})
        cube = simulate(np.tile(steel, (16, 1)), elements, instrument=made, counts=3e5,
                        seed=1).reshape(4, 4, -1)
        result, notes = quantify_physics(cube, inst.energy_axis_keV(), elements, inst,
                                         refine=False)
        assert notes.pile_up is expected
        means = np.nanmean(result.concentrations.reshape(16, -1), axis=0)
        assert np.abs(means - steel).max() < 0.1  # without the component: Fe +0.32, Ni -0.22
        assert np.nanmedian(result.fit_quality) < 1.3  # without it: 21.5


def test_a_lazy_cube_is_read_in_slabs_of_rows_with_the_same_result(monkeypatch):
    """A cube over 2 GB opens lazily; the physics fit reads slabs of whole rows (the
    totals and sum spectrum, then each chunk's rows), never the whole cube, and gives
    what the cube in memory gives, bit for bit."""
    from napari_xrfquant.inference import physics_quantify
    from napari_xrfquant.inference.physics_quantify import quantify_physics

    monkeypatch.setattr(physics_quantify, "SLAB_PIXELS", 30)  # 3 rows of 10 pixels
    inst = reference_instrument()
    elements = ["Au", "Ag", "Cu"]
    rng = np.random.default_rng(3)
    compositions = np.array([70.0, 20.0, 10.0]) + rng.uniform(-4, 4, (120, 3))
    counts = simulate(compositions, elements, counts=2e3, seed=4).reshape(12, 10, -1)
    lazy = RowCountingCube(counts)
    shifted = inst.energy_axis_keV() + 0.01  # another grid: resampled slab by slab
    in_memory, _ = quantify_physics(counts, shifted, elements, inst, chunk=25)
    from_slabs, _ = quantify_physics(lazy, shifted, elements, inst, chunk=25)
    assert max(lazy.rows_read) <= 4 < counts.shape[0]  # a chunk of 25 pixels spans 4 rows
    np.testing.assert_array_equal(from_slabs.concentrations, in_memory.concentrations)
    np.testing.assert_array_equal(from_slabs.fit_quality, in_memory.fit_quality)


def test_counts_that_are_not_a_cube_are_refused_in_one_line():
    from napari_xrfquant.inference.physics_quantify import quantify_physics

    inst = reference_instrument()
    spectra = np.ones((5, len(inst.energy_axis_keV())))
    with pytest.raises(XRFQuantError, match=r"counts of shape \(5, \d+\): give a cube"):
        quantify_physics(spectra, inst.energy_axis_keV(), ["Fe"], inst)


def test_the_setups_line_families_fit_apart_where_their_ratio_is_off():
    """Ar Kb 30 % above xraylib's ratio to Ka (a path whose absorption the file gives
    roughly): one set-up component leaves it as a misfit at 3.19 keV, where the element
    search would find a line; a component per family explains it."""
    standard = library()["ERM-EB507"]
    elements = list(standard.wt_percent)
    truth = np.array(standard.vector(elements))
    instrument = reference_instrument().replace(setup_lines={"elements": ["Ar"],
                                                             "fraction": 0.02})
    apart = PhysicsQuantifier(elements, instrument, setup_families=True)
    together = PhysicsQuantifier(elements, instrument)
    assert apart.components[-2:] == ["set-up Ar Ka", "set-up Ar Kb"]
    assert together.components[-1] == "set-up lines"
    shapes = apart.shapes(truth / 100.0)
    ka, kb = shapes[-2], shapes[-1]
    # the one component is the families in xraylib's ratio
    one = together.shapes(truth / 100.0)[-1]
    mix, *_ = np.linalg.lstsq(np.stack([ka, kb]).T, one, rcond=None)
    assert np.abs(mix @ np.stack([ka, kb]) - one).max() < 1e-9 * one.max()
    expected = simulate(truth[None, :], elements, instrument=instrument)[0] * 1e8
    expected = expected + 0.3 * mix[1] / mix.sum() * 0.02 * 1e8 * kb
    spectra = np.random.default_rng(5).poisson(np.tile(expected, (4, 1))).astype(np.float64)
    assert np.median(apart.fit(spectra).fit_quality) < 1.2
    assert np.median(together.fit(spectra).fit_quality) > 1.5
    assert np.abs(apart.fit(spectra).values.mean(axis=0) - truth).max() < 0.15


def test_each_components_atoms_are_the_sum_of_its_own_rows():
    """The components' detector atoms come from one sparse product over the rows of each
    element's lines and of the Rayleigh and Compton scatter: each is the intensity-
    weighted sum of its own rows alone, in the components' order."""
    q = PhysicsQuantifier(["Fe", "Cu", "Au"], reference_instrument())
    intensity = np.random.default_rng(1).uniform(0.5, 2.0, q._row_atoms.shape[0])
    dense = q._row_atoms.toarray()
    groups = [*q._line_rows, np.flatnonzero(q._rayleigh), np.flatnonzero(q._compton)]
    expected = np.stack([intensity[rows] @ dense[rows] for rows in groups])
    np.testing.assert_allclose(q.component_atoms(intensity).toarray(), expected, rtol=1e-14)
    shapes = q.component_shapes(q.component_atoms(intensity), q._atoms, q._continuum)
    assert shapes.shape == (len(q.components), q._atoms.shape[1])
    np.testing.assert_allclose(shapes.sum(axis=1), 1.0, rtol=1e-12)
