"""Instrument terms a real set-up needs: optic transmission and quadratic calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.physics import XRFSimulator

SIGMOIDS = {"model": "sigmoids", "low_keV": 1.0, "low_width_keV": 0.3,
            "high_keV": 18.0, "high_width_keV": 3.0}


def _peak_area(spectrum: np.ndarray, energy: np.ndarray, centre: float, half: float = 0.25):
    window = np.abs(energy - centre) < half
    return float(spectrum[window].sum())


def test_the_optic_scales_each_line_by_its_transmission():
    plain = XRFSimulator(["Cu", "Ag"], dtype=torch.float64, secondary=False)
    inst = reference_instrument().replace(optic=SIGMOIDS)
    optic = XRFSimulator(["Cu", "Ag"], instrument=inst, dtype=torch.float64, secondary=False)
    wt = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    energy = inst.energy_axis_keV()
    with torch.no_grad():
        a = plain.line_intensities(wt) @ plain.response_matrix()
        b = optic.line_intensities(wt) @ optic.response_matrix()
    ratio_cu = _peak_area(b[0].numpy(), energy, 8.05) / _peak_area(a[0].numpy(), energy, 8.05)
    ratio_ag = _peak_area(b[0].numpy(), energy, 22.16) / _peak_area(a[0].numpy(), energy, 22.16)
    t = inst.optic.transmission(np.array([8.05, 22.16]))
    assert ratio_cu == pytest.approx(t[0], rel=0.01)
    assert ratio_ag == pytest.approx(t[1], rel=0.02)


def test_a_quadratic_term_moves_peaks_to_the_right_channels():
    inst = reference_instrument().replace(**{"detector.quadratic_keV": 2e-6})
    sim = XRFSimulator(["Cu"], instrument=inst, dtype=torch.float64, secondary=False)
    with torch.no_grad():
        spectrum = sim(torch.tensor([[1.0]], dtype=torch.float64))[0].numpy()
    energy = inst.energy_axis_keV()
    peak = int(np.argmax(np.where(np.abs(energy - 8.05) < 0.5, spectrum, 0)))
    assert abs(energy[peak] - 8.047) < 0.035  # Cu Ka1 within a channel
    np.testing.assert_allclose(sim.energy_keV.numpy(), energy)


@pytest.mark.parametrize(
    ("name", "eps"),
    # quadratic_keV multiplies k^2 (up to 6.5e4 here): a small step keeps the
    # finite difference within a fraction of a channel
    [("optic_high_keV", 1e-6), ("optic_high_width_keV", 1e-6), ("quadratic_keV", 1e-10)],
)
def test_gradients_reach_the_new_parameters(name, eps):
    inst = reference_instrument().replace(optic=SIGMOIDS, **{"detector.n_channels": 256,
                                                              "detector.gain_keV": 0.12})
    sim = XRFSimulator(["Cu", "Ag"], instrument=inst, dtype=torch.float64)
    parameter = getattr(sim, name)
    parameter.requires_grad_(True)
    wt = torch.tensor([[0.6, 0.4]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda value: sim(wt, {name: value}).sum(dim=0)[100:140],
        (parameter.detach().clone().requires_grad_(True),), eps=eps, atol=1e-6, rtol=1e-3,
    )


def test_knot_transmission_is_differentiable_in_its_values():
    optic = {"model": "knots", "knots_keV": [2.0, 10.0, 30.0],
             "log_transmission": [0.0, -0.1, -1.2]}
    inst = reference_instrument().replace(optic=optic)
    sim = XRFSimulator(["Cu", "Ag"], instrument=inst, dtype=torch.float64)
    sim.optic_log_transmission.requires_grad_(True)
    out = sim(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    energy = torch.as_tensor(inst.energy_axis_keV())
    ag = (energy > 21.5) & (energy < 22.8)
    out[0, ag].sum().backward()
    grad = sim.optic_log_transmission.grad
    assert grad is not None and grad[2] > 0  # more transmission at 30 keV: more Ag K


def test_a_tabulated_transmission_equals_the_attenuator_it_tabulates(tmp_path):
    """A 100 um Al filter as an attenuator (xraylib) and as a table read from a file."""
    from napari_xrfquant.instrument import load_instrument, reference_instrument, save_instrument
    from napari_xrfquant.physics import _xraydata as xd
    from napari_xrfquant.physics import simulate

    base = reference_instrument()
    energies = np.geomspace(1.0, 40.0, 400)
    mu = xd.material("Al").cs_total(energies)
    transmission = np.exp(-mu * 2.699 * 0.01)
    lines = "\n".join(f"{e:.6f}, {t:.8e}" for e, t in zip(energies, transmission, strict=True))
    (tmp_path / "al_filter.csv").write_text("# E (keV), T\n" + lines + "\n")
    filtered = base.replace(attenuators=[*(a.model_dump() for a in base.attenuators),
                                         {"name": "Al", "material": "Al",
                                          "density_g_cm3": 2.699, "thickness_cm": 0.01}])
    text = (tmp_path / "with_table.toml")
    save_instrument(base, text)
    text.write_text(text.read_text() + '\n[[transmission_tables]]\nfile = "al_filter.csv"\n')
    tabulated = load_instrument(text)
    assert tabulated.transmission_tables[0].name == "al_filter"
    wt = [[58.5, 9.0, 32.5, 0.0, 0.0]]
    elements = ["Au", "Ag", "Cu", "Ni", "Zn"]
    a = simulate(wt, elements, instrument=filtered)[0]
    b = simulate(wt, elements, instrument=tabulated)[0]
    assert np.abs(a - b).sum() < 2e-3  # interpolation error only
    plain = simulate(wt, elements, instrument=base)[0]
    assert np.abs(plain - a).sum() > 0.05  # the filter matters
    # a saved instrument holds the values, not the file name
    save_instrument(tabulated, tmp_path / "saved.toml")
    assert "al_filter.csv" not in (tmp_path / "saved.toml").read_text()
    assert load_instrument(tmp_path / "saved.toml") == tabulated


def test_bad_transmission_tables_are_refused(tmp_path):
    from napari_xrfquant.errors import InstrumentError
    from napari_xrfquant.instrument import reference_instrument

    base = reference_instrument()
    for table, reason in [
        ({"name": "t", "energies_keV": [5.0, 2.0], "transmission": [1.0, 0.5]}, "must increase"),
        ({"name": "t", "energies_keV": [2.0, 5.0], "transmission": [1.0, 0.0]}, "greater than 0"),
        ({"name": "t", "energies_keV": [2.0], "transmission": [1.0]}, ">= 2 energies"),
    ]:
        with pytest.raises(InstrumentError, match=reason):
            base.replace(transmission_tables=[table])
    from napari_xrfquant.instrument import load_instrument, save_instrument

    path = save_instrument(base, tmp_path / "inst.toml")
    (tmp_path / "bad.csv").write_text("1.0 0.5\n2.0 x\n")
    path.write_text(path.read_text() + '\n[[transmission_tables]]\nfile = "bad.csv"\n')
    with pytest.raises(InstrumentError, match=r"bad\.csv, line 2: need two numbers"):
        load_instrument(path)


def test_pileup_puts_sum_peaks_at_the_sum_energy():
    from napari_xrfquant.physics.detector import pileup

    n = 512
    spectrum = torch.zeros(1, n, dtype=torch.float64)
    spectrum[0, 100] = 0.7
    spectrum[0, 150] = 0.3
    gain = torch.tensor(0.035, dtype=torch.float64)
    piled = pileup(spectrum, torch.tensor(0.01, dtype=torch.float64),
                   torch.tensor(0.0, dtype=torch.float64), gain)[0]
    assert float(piled.sum()) == pytest.approx(1.0)
    # sum peaks: 100 + 100, 100 + 150 (twice: either order), 150 + 150
    assert float(piled[200]) == pytest.approx(0.01 * 0.49, rel=1e-6)
    assert float(piled[250]) == pytest.approx(0.01 * 0.42, rel=1e-6)
    assert float(piled[300]) == pytest.approx(0.01 * 0.09, rel=1e-6)
    assert float(piled[100]) == pytest.approx(0.99 * 0.7, rel=1e-6)
    # an offset of 0.1 keV puts E_i + E_j 0.1 / 0.035 = 2.86 channels further up
    shifted = pileup(spectrum, torch.tensor(0.01, dtype=torch.float64),
                     torch.tensor(0.1, dtype=torch.float64), gain)[0]
    window = torch.arange(195, 210, dtype=torch.float64)
    centroid = float((shifted[195:210] * window).sum() / shifted[195:210].sum())
    assert centroid == pytest.approx(200 + 0.1 / 0.035, abs=1e-6)


def test_pileup_is_differentiable_and_off_by_default():
    from napari_xrfquant.physics.detector import pileup

    spectrum = torch.softmax(torch.randn(2, 64, dtype=torch.float64), dim=1)
    fraction = torch.tensor(0.02, dtype=torch.float64, requires_grad=True)
    offset = torch.tensor(0.013, dtype=torch.float64, requires_grad=True)
    gain = torch.tensor(0.035, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda f, o: pileup(spectrum, f, o, gain), (fraction, offset), eps=1e-7
    )
    elements = ["Au", "Ag", "Cu"]
    plain = XRFSimulator(elements, dtype=torch.float64)
    w = torch.tensor([[0.75, 0.125, 0.125]], dtype=torch.float64)
    piled = plain(w, {"pileup_fraction": 0.01})
    assert torch.equal(plain(w), plain(w, {"pileup_fraction": 0.0}))
    assert float((piled - plain(w)).abs().sum()) > 0.01
    inst = reference_instrument().replace(**{"detector.pileup_fraction": 0.01})
    assert torch.allclose(XRFSimulator(elements, instrument=inst, dtype=torch.float64)(w), piled)


def test_the_setups_own_lines_add_argon_k_of_the_air_path():
    from napari_xrfquant.physics import simulate

    elements = ["Au", "Ag", "Cu", "Ni", "Zn"]
    wt = [[75.0, 12.5, 12.5, 0.0, 0.0]]
    base = reference_instrument()
    with_argon = base.replace(setup_lines={"elements": ["Ar"], "fraction": 0.01})
    energy = base.energy_axis_keV()
    extra = simulate(wt, elements, instrument=with_argon)[0] - 0.99 * simulate(
        wt, elements, instrument=base)[0]
    assert extra.sum() == pytest.approx(0.01, rel=1e-6)
    # xraylib: Ar Ka 2.957 keV, Kb 3.19 keV; almost all of it within the Ar K region
    assert abs(energy[np.argmax(extra)] - 2.957) < 0.035
    assert extra[(energy > 2.7) & (energy < 3.4)].sum() > 0.95 * 0.01
    sim = XRFSimulator(elements, instrument=with_argon, dtype=torch.float64)
    share = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    noise = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(wt, dtype=torch.float64) / 100.0
    assert torch.autograd.gradcheck(
        lambda s, n: sim(w, {"setup_fraction": s, "noise_keV": n})[:, 70:100], (share, noise)
    )


#: A transmission-anode tube as the PIXL breadboard's, with coarse continuum bins (fast).
RH_TUBE = {"anode": "Rh", "voltage_kV": 28.0, "takeoff_deg": 90.0, "step_keV": 2.0,
           "transmission_thickness_cm": 1.5e-4,
           "window": {"material": "Be", "density_g_cm3": 1.848, "thickness_cm": 0.015}}


@pytest.mark.parametrize(("name", "key", "value", "layer"), [
    ("anode_thickness_cm", "transmission_thickness_cm", 1e-4, None),
    ("anode_thickness_cm", "transmission_thickness_cm", 1e-4, 2e-3),
    ("l_lines_scale", "l_lines_scale", 0.5, None),
    ("l2_lines_scale", "l2_lines_scale", 0.5, None),
], ids=["anode-bulk", "anode-layer", "l-lines", "l2-lines"])
def test_a_tube_parameter_moved_is_the_set_up_with_that_tube(name, key, value, layer):
    """An override of the anode's thickness or of its L lines' factors gives the spectra
    of the instrument whose tube has that value (its beam made again), bulk and thin
    layer, with secondary fluorescence; its gradient is the finite difference's."""
    inst = reference_instrument().replace(tube=RH_TUBE)
    thin = {} if layer is None else {"layer_thickness_cm": layer, "layer_density_g_cm3": 2.7}
    elements = ["Si", "K", "Ca", "Fe"]
    sim = XRFSimulator(elements, instrument=inst, dtype=torch.float64, **thin)
    other = XRFSimulator(elements, dtype=torch.float64, **thin,
                         instrument=inst.replace(**{f"tube.{key}": value}))
    wt = torch.tensor([[0.55, 0.05, 0.15, 0.25], [0.4, 0.0, 0.1, 0.5]], dtype=torch.float64)
    start = getattr(inst.tube, key)
    with torch.no_grad():
        moved, rebuilt = sim(wt, {name: value}), other(wt)
        assert torch.equal(sim(wt, {name: start}), sim(wt))
    assert float((moved - rebuilt).abs().max() / rebuilt.max()) < 1e-12
    assert float((moved - sim(wt).detach()).abs().max() / rebuilt.max()) > 1e-3
    middle = 0.5 * (start + value)
    at = torch.tensor(middle, dtype=torch.float64, requires_grad=True)
    channel = 100 if name == "anode_thickness_cm" else int(2.83 / inst.detector.gain_keV)
    sim(wt, {name: at})[0, channel].backward()
    step = 1e-6 * middle
    with torch.no_grad():
        up, down = (sim(wt, {name: middle + s})[0, channel] for s in (step, -step))
    assert float(at.grad) == pytest.approx(float(up - down) / (2 * step), rel=1e-5)


def test_a_thinner_anode_passes_more_of_the_band_that_excites_k_and_not_fe():
    inst = reference_instrument().replace(tube=RH_TUBE)
    sim = XRFSimulator(["Si", "K", "Ca", "Fe"], instrument=inst, dtype=torch.float64)
    wt = torch.tensor([[0.6, 0.05, 0.15, 0.2]], dtype=torch.float64)
    energy = inst.energy_axis_keV()
    with torch.no_grad():
        k_over_fe = [_peak_area(s[0].numpy(), energy, 3.31) / _peak_area(s[0].numpy(), energy,
                                                                          6.40)
                     for s in (sim(wt), sim(wt, {"anode_thickness_cm": 1e-4}))]
    assert k_over_fe[1] > 1.05 * k_over_fe[0]


def test_scatter_tables_are_kept_per_set_up_and_not_shared_with_another():
    """A second table build of the same set-up takes its scatter tables from the first;
    a set-up with another geometry or polarisation gets its own."""
    from napari_xrfquant.physics.scatter import acceptance_cone, scatter_tables

    inst = reference_instrument()
    first = scatter_tables(29, 20.0, inst)
    assert scatter_tables(29, 20.0, inst, acceptance_cone(inst)) is first
    assert not first.sub_weight.flags.writeable  # shared: nobody may change it
    turned = scatter_tables(29, 20.0, inst.replace(**{"geometry.scattering_deg": 120.0}))
    assert turned.compton_by_direction[0] != first.compton_by_direction[0]
    assert turned.sub_energy_keV.mean() < first.sub_energy_keV.mean()  # larger shift
    unpolarised = scatter_tables(29, 20.0, inst.replace(**{"beam.polarisation": 0.0}))
    assert unpolarised.rayleigh > 2.0 * first.rayleigh  # 90 degrees in the plane
