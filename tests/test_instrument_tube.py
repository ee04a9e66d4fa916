"""An X-ray tube as the instrument's excitation: the ``[tube]`` table makes the beam."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_xrfquant.errors import InstrumentError
from napari_xrfquant.instrument import instrument_to_toml, load_instrument

PIXL = Path(__file__).resolve().parents[1] / "sample_data" / "pixl_breadboard" / "instrument.toml"


@pytest.fixture(scope="module")
def pixl():
    return load_instrument(PIXL)


def test_the_tube_makes_an_unpolarised_beam_through_its_optic(pixl):
    beam = pixl.beam
    energies, weights = np.asarray(beam.energies_keV), np.asarray(beam.weights)
    assert beam.polarisation == 0.0 and pixl.tube is not None and pixl.tube.anode == "Rh"
    assert energies.max() < 28.0 and energies.min() >= 1.0
    ka1 = weights[np.isclose(energies, 20.2161, atol=1e-3)]
    assert ka1.size == 1 and ka1[0] > 0  # the anode's Ka1, through window and optic
    # the optic table (zero below 1 keV, 0.4 % at 28 keV) shapes the beam
    assert pixl.tube.optic_transmission[0] == 0.0 and len(pixl.tube.optic_energies_keV) == 281


def test_saved_and_read_back_the_same_and_changed_through_the_tube(pixl, tmp_path):
    text = instrument_to_toml(pixl)
    assert "[tube]" in text and "[beam]" not in text  # the tube makes the beam again
    (tmp_path / "saved.toml").write_text(text)
    assert load_instrument(tmp_path / "saved.toml") == pixl
    lower = pixl.replace(**{"tube.voltage_kV": 22.0})
    assert max(lower.beam.energies_keV) < 22.0
    with pytest.raises(InstrumentError, match="change the tube instead"):
        pixl.replace(**{"beam.polarisation": 0.5})


def test_the_simulator_takes_a_tube_beam(pixl):
    from napari_xrfquant.physics import simulate

    coarse = pixl.replace(**{"tube.step_keV": 2.0, "detector.n_channels": 1024,
                             "detector.gain_keV": 0.03})
    spectrum = np.asarray(simulate([[70.0, 30.0]], ["Fe", "Ca"], instrument=coarse))[0]
    energy = coarse.energy_axis_keV()
    assert energy[np.argmax(spectrum)] == pytest.approx(6.40, abs=0.05)  # Fe Ka


def test_a_basalt_under_the_tube_scatters_a_smooth_continuum(pixl):
    """Each continuum bin of the tube scatters as a band of its width, not as a line
    (a comb every 0.5 keV otherwise), and the detector's atoms stay few although
    every element scatters every one of the tube's ~70 energies."""
    from scipy.signal import savgol_filter

    from napari_xrfquant.physics import XRFSimulator

    elements = ["O", "Mg", "Si", "Ca", "Fe"]
    small = pixl.replace(**{"detector.n_channels": 2048, "detector.gain_keV": 0.0141})
    sim = XRFSimulator(elements, instrument=small, dtype=torch.float64)
    assert sim.atom_energy_keV.numel() < 800
    with torch.no_grad():
        spectrum = sim(torch.tensor([[0.45, 0.05, 0.25, 0.10, 0.15]], dtype=torch.float64))
    spectrum = spectrum[0].numpy()
    energy = small.energy_axis_keV()
    band = (energy > 9.0) & (energy < 17.0)  # scatter only: no line of these elements
    smooth = savgol_filter(spectrum, 37, 2)  # over 0.5 keV, the bins' width
    assert np.max(np.abs(spectrum[band] / smooth[band] - 1.0)) < 0.01


@pytest.mark.parametrize(("edit", "message"), [
    (("voltage_kV = 28.0", "voltage_kV = 80.0"), "tube: voltage_kV: must be at most 60"),
    (('optic_file = "Efficiency', 'optic_file = "missing'), "cannot read the tube's optic"),
    (("[tube]", "[beam]\nenergies_keV = [20.0]\npolarisation = 0.0\n\n[tube]"),
     "give a \\[beam\\] or a \\[tube\\], not both"),
    (('anode = "Rh"', 'anode = "Xx"'), "not an element symbol"),
])
def test_bad_tubes_are_one_line(tmp_path, edit, message):
    text = PIXL.read_text().replace(*edit)
    path = tmp_path / "instrument.toml"
    path.write_text(text)
    (tmp_path / "Efficiency_profile_BB_new_2019_01_14_2020.txt").write_text(
        (PIXL.parent / "Efficiency_profile_BB_new_2019_01_14_2020.txt").read_text())
    with pytest.raises(InstrumentError, match=message) as info:
        load_instrument(path)
    assert "\n" not in str(info.value)


def _basalt_calibration(instrument, measured, free, seed):
    """A basalt simulated with ``measured`` (1e7 counts) calibrated from ``instrument``
    with its composition fixed and ``free`` fitted."""
    from napari_xrfquant.calibration.fit import iter_calibrate
    from napari_xrfquant.calibration.groups import group_pixels
    from napari_xrfquant.jobs import drive
    from napari_xrfquant.physics import simulate
    from napari_xrfquant.physics.oxides import oxygen_wt_percent
    from napari_xrfquant.physics.standards import Standard

    metals = {"Mg": 5.0, "Si": 25.0, "Ca": 8.0, "Fe": 10.0}
    oxygen = oxygen_wt_percent(metals)
    elements = [*metals, "O"]
    wt = [100.0 * v / (sum(metals.values()) + oxygen) for v in (*metals.values(), oxygen)]
    spectrum = simulate([wt], elements, instrument=measured, counts=1e7, seed=seed)
    basalt = Standard("basalt", dict(zip(elements, wt, strict=True)))
    groups = group_pixels(spectrum[None], elements, labels=np.ones((1, 1), dtype=int),
                          standards={1: basalt})
    return drive(iter_calibrate(groups, instrument.energy_axis_keV(), elements, instrument,
                                free=free, lbfgs_steps=5))


def test_the_tubes_l_lines_are_fitted_on_a_standard(pixl):
    """A basalt measured with half the anode's L lines that Ebel's constants give: the
    calibration with the composition fixed finds the factor again (the tables built
    once: the factor scales the beam's L lines, :mod:`.physics.tube_beam`)."""
    coarse = pixl.replace(**{"tube.step_keV": 1.0, "detector.n_channels": 1024,
                             "detector.gain_keV": 0.03})
    measured = coarse.replace(**{"tube.l_lines_scale": 0.5})
    result = _basalt_calibration(coarse, measured, ["l_lines_scale"], seed=8)
    scale, sigma = result.values["l_lines_scale"], result.sigma["l_lines_scale"]
    assert abs(scale - 0.5) < 3 * sigma < 0.05
    assert result.instrument.tube is not None and result.instrument.tube.l_lines_scale == scale


def test_the_l2_share_of_the_tubes_l_lines_is_fitted_on_a_standard(pixl):
    """A basalt measured with the anode's L2 lines (Lb1, Lg1) at half Ebel's: the
    calibration of ``l2_lines_scale`` with the composition fixed finds it again; Lb1
    moves, La not. A set-up without a tube cannot free it."""
    from napari_xrfquant.errors import XRFQuantError
    from napari_xrfquant.instrument import reference_instrument
    from napari_xrfquant.io.calibration import start_instrument

    coarse = pixl.replace(**{"tube.step_keV": 1.0, "detector.n_channels": 1024,
                             "detector.gain_keV": 0.03})
    measured = coarse.replace(**{"tube.l2_lines_scale": 0.5})
    lines = {line.name: line.photons for line in coarse.tube.physics().l_lines()}
    halved = {line.name: line.photons for line in measured.tube.physics().l_lines()}
    assert halved["Rh L2M4"] == pytest.approx(0.5 * lines["Rh L2M4"])
    assert halved["Rh L3M5"] == pytest.approx(lines["Rh L3M5"])
    result = _basalt_calibration(coarse, measured, ["l2_lines_scale"], seed=9)
    scale, sigma = result.values["l2_lines_scale"], result.sigma["l2_lines_scale"]
    assert abs(scale - 0.5) < 3 * sigma < 0.05
    assert result.instrument.tube.l2_lines_scale == scale
    assert result.instrument.tube.l_lines_scale == 1.0
    with pytest.raises(XRFQuantError, match="l2_lines_scale is a factor on the anode"):
        start_instrument(reference_instrument(), coarse.energy_axis_keV(), ["l2_lines_scale"])


def test_a_continuum_bin_over_an_edge_produces_its_mean():
    """A 0.5 keV bin holding Cu's K edge (8.98 keV) produces Cu Ka as the mean of the
    production over the bin, not as its centre's (9.0 keV: as if all of it lay above)."""
    import xraylib

    from napari_xrfquant.physics.tables import lines_of_element

    def ka1(widths):
        lines = dict((line.iupac, cs) for line, cs in
                     lines_of_element(29, 0, np.array([9.0, 12.0]), widths))
        return lines["KL3"]

    def production(energy):
        try:
            return xraylib.CS_FluorLine_Kissel_Cascade(29, xraylib.KL3_LINE, energy)
        except ValueError:  # below the edge
            return 0.0

    mean = np.mean([production(e) for e in np.linspace(8.75, 9.25, 2001)])
    banded, centred = ka1(np.array([0.5, 0.5])), ka1(None)
    assert banded[0] == pytest.approx(mean, rel=0.01)
    assert 0.45 < banded[0] / centred[0] < 0.6  # 0.27 keV of the 0.5 lie above the edge
    assert banded[1] == centred[1]  # no edge inside: the centre stands for the bin


def test_line_intensities_barely_depend_on_where_the_tube_bins_start(pixl):
    """Shifting the tube's 0.5 keV continuum bins by 0.3 keV puts Fe's K edge
    (7.11 keV) on the other side of a bin's centre: the centre alone moved Fe Ka of
    this basalt by 13.1 % (Ti Ka 10.5 %, Ca Ka 5.7 %, K Ka 5.1 %); the bins' mean
    production, by 4.0 % (Ti 1.6 %, Ca and K 0.5 %; with 16.5 wt% Fe the sample's
    absorption of the bin still jumps at the edge, which the bin's one energy does not
    see)."""
    from napari_xrfquant.physics import XRFSimulator

    elements = ["O", "Si", "K", "Ca", "Ti", "Fe"]
    w = torch.tensor([[0.47, 0.25, 0.005, 0.09, 0.02, 0.165]], dtype=torch.float64)
    intensities = []
    for low in (1.0, 1.3):
        sim = XRFSimulator(elements, pixl.replace(**{"tube.low_keV": low}),
                           dtype=torch.float64, secondary=False)
        rows = sim.line_intensities(w)[0].numpy()
        intensities.append({e: sum(rows[k] for k, line in enumerate(sim.tables.lines)
                                   if line.symbol == e and line.iupac == "KL3")
                            for e in ("K", "Ca", "Ti", "Fe")})
    for element, value in intensities[0].items():
        assert intensities[1][element] == pytest.approx(value, rel=0.05), element
