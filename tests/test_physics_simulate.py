"""The simulator against independent computations from xraylib and the instrument."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
xrl = pytest.importorskip("xraylib")

from napari_xrfquant.instrument import reference_instrument  # noqa: E402
from napari_xrfquant.physics import XRFSimulator, element_lines, simulate  # noqa: E402

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]
CRMS = np.array(
    [
        [58.56, 3.90, 35.65, 0.0, 1.891],
        [75.10, 3.02, 14.69, 4.99, 2.107],
        [75.12, 24.90, 0.0, 0.0, 0.0],
    ]
)
CRMS = CRMS / CRMS.sum(axis=1, keepdims=True) * 100.0


@pytest.fixture(scope="module")
def inst():
    return reference_instrument()


@pytest.fixture(scope="module")
def sim64():
    return XRFSimulator(ELEMENTS, dtype=torch.float64)


def _rows(sim, prefix):
    return [k for k, label in enumerate(sim.row_labels) if label.startswith(prefix)]


def _efficiency(inst, energy_keV):
    """Attenuator transmission x Si absorption, straight from xraylib."""
    t = 1.0
    for att in inst.attenuators:
        try:
            data = xrl.GetCompoundDataNISTByName(att.material)
        except ValueError:
            data = xrl.CompoundParser(att.material)
        mu = sum(
            w * xrl.CS_Total(z, energy_keV)
            for z, w in zip(data["Elements"], data["massFractions"], strict=True)
        )
        t *= math.exp(-mu * att.density_g_cm3 * att.thickness_cm)
    det = inst.detector
    mu_si = xrl.CS_Total(14, energy_keV)
    return t * (1.0 - math.exp(-mu_si * det.density_g_cm3 * det.thickness_cm))


def test_shapes_sum_and_types(inst):
    spectra = simulate(CRMS, ELEMENTS)
    assert isinstance(spectra, np.ndarray)
    assert spectra.shape == (3, inst.detector.n_channels)
    np.testing.assert_allclose(spectra.sum(axis=1), 1.0, rtol=1e-9)
    assert spectra.min() >= 0.0
    tensor = simulate(torch.tensor(CRMS, dtype=torch.float64), ELEMENTS)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64
    np.testing.assert_allclose(tensor.numpy(), spectra, rtol=1e-6, atol=1e-12)


def test_torch_input_is_differentiable():
    x = torch.tensor(CRMS[:1], dtype=torch.float64, requires_grad=True)
    spectra = simulate(x, ELEMENTS)
    spectra[0, 230].backward()  # Cu K-alpha channel
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[0, 2] > 0  # more copper, more Cu K-alpha


def test_poisson_counts_and_seed():
    a = simulate(CRMS, ELEMENTS, counts=1e4, seed=3)
    b = simulate(CRMS, ELEMENTS, counts=1e4, seed=3)
    np.testing.assert_array_equal(a, b)
    assert np.all(a == np.round(a)) and a.min() >= 0
    # the total of independent Poisson channels is Poisson: mean 1e4, sd 100
    assert np.all(np.abs(a.sum(axis=1) - 1e4) < 500)
    per = simulate(CRMS, ELEMENTS, counts=[100.0, 1e3, 1e5], seed=1)
    assert abs(per[2].sum() - 1e5) < 2000 and abs(per[0].sum() - 100) < 50
    t = simulate(torch.tensor(CRMS), ELEMENTS, counts=1e4, seed=3)
    assert isinstance(t, torch.Tensor) and abs(float(t.sum(dim=1).mean()) - 1e4) < 500


def test_element_lines_match_xraylib(inst):
    lines = {ln.label: ln for ln in element_lines(ELEMENTS)}
    # Au L-alpha: rate-weighted mean of L3M5 and L3M4 (xraylib energies)
    rates = [xrl.RadRate(79, xrl.L3M5_LINE), xrl.RadRate(79, xrl.L3M4_LINE)]
    energies = [xrl.LineEnergy(79, xrl.L3M5_LINE), xrl.LineEnergy(79, xrl.L3M4_LINE)]
    expected = np.dot(rates, energies) / sum(rates)
    assert lines["Au La"].energy_keV == pytest.approx(expected, abs=2e-3)
    assert lines["Cu Ka"].energy_keV == pytest.approx(xrl.LineEnergy(29, xrl.KA_LINE), abs=2e-3)
    assert lines["Ag Ka"].energy_keV == pytest.approx(22.16, abs=0.1)
    assert lines["Zn Kb"].energy_keV == pytest.approx(9.57, abs=0.02)
    assert lines["Au Lg"].energy_keV == pytest.approx(13.4, abs=0.2)
    assert lines["Au La"].relative_intensity == 1.0
    # Ag K-beta / K-alpha: RadRate ratio times the Si efficiency ratio (450 um of
    # Si absorbs markedly less at 25 keV than at 22 keV)
    kb = sum(xrl.RadRate(47, m) for m in (xrl.KM2_LINE, xrl.KM3_LINE, xrl.KN2_LINE, xrl.KN3_LINE))
    ka = xrl.RadRate(47, xrl.KL2_LINE) + xrl.RadRate(47, xrl.KL3_LINE)
    efficiency = _efficiency(inst, 24.94) / _efficiency(inst, 22.16)
    assert lines["Ag Kb"].relative_intensity == pytest.approx(kb / ka * efficiency, rel=0.03)
    assert all(ln.label.split()[0] in ELEMENTS for ln in lines.values())
    # asked again (the inspector does at each click): the same lines, in a list of its own
    again = element_lines(ELEMENTS)
    again.clear()
    assert [ln.label for ln in element_lines(ELEMENTS)] == list(lines)
    other = element_lines(ELEMENTS, inst.replace(**{"beam.energies_keV": (12.0,),
                                                    "beam.weights": (1.0,)}))
    assert "Ag Ka" not in {ln.label for ln in other}  # another beam: its own lines


def test_primary_copper_matches_sherman_with_xraylib_yields(inst):
    """Pure Cu K lines: tau_K(E0) omega_K p_line / (mu0 + mu_line sin1/sin2)."""
    sim = XRFSimulator(["Cu"], dtype=torch.float64)
    intensity = sim.line_intensities(torch.ones(1, 1, dtype=torch.float64), secondary=False)[0]
    e0 = inst.beam.energies_keV[0]
    s1 = math.sin(math.radians(inst.geometry.incidence_deg))
    s2 = math.sin(math.radians(inst.geometry.takeoff_deg))
    tau_k = xrl.CS_Photo_Partial(29, xrl.K_SHELL, e0)
    omega = xrl.FluorYield(29, xrl.K_SHELL)
    for macro, name in ((xrl.KL3_LINE, "Cu KL3"), (xrl.KM3_LINE, "Cu KM3")):
        energy = xrl.LineEnergy(29, macro)
        sigma = tau_k * omega * xrl.RadRate(29, macro)
        chi = xrl.CS_Total(29, e0) / s1 + xrl.CS_Total(29, energy) / s2
        expected = sigma / (s1 * chi)
        assert float(intensity[sim.row_labels.index(name)]) == pytest.approx(expected, rel=1e-6)


def test_secondary_enhancement_of_copper_in_rose_gold(sim64):
    """The reference set-up quotes about +40 % for Cu K in ERM-EB506."""
    w = torch.tensor(CRMS[:1] / 100.0)
    cu = _rows(sim64, "Cu K")
    primary = sim64.line_intensities(w, secondary=False)[0, cu].sum()
    total = sim64.line_intensities(w)[0, cu].sum()
    assert 1.3 < float(total / primary) < 1.5
    # nothing in the alloy emits above the Ag K edge: only the scattered beam
    # (Rayleigh + Compton, a few percent of the attenuation at 30 keV) enhances Ag K
    ag = _rows(sim64, "Ag K")
    ratio = sim64.line_intensities(w)[0, ag].sum() / sim64.line_intensities(w, False)[0, ag].sum()
    assert 1.005 < float(ratio) < 1.05


def test_response_area_is_detector_efficiency(sim64, inst):
    response = sim64.response_matrix()
    for label in ("Cu KL3", "Au L3M5", "Ag KL3"):
        row = sim64.row_labels.index(label)
        energy = float(sim64.row_energy_keV[row])
        assert float(response[row].sum()) == pytest.approx(_efficiency(inst, energy), rel=5e-3)


def test_peak_width_follows_noise_and_fano(sim64, inst):
    narrow = sim64.with_parameters(tail_fraction=0.0, shelf_fraction=0.0)
    response = narrow.response_matrix().numpy()
    energy_axis = inst.energy_axis_keV()
    row = sim64.row_labels.index("Cu KL3")
    e_line = float(sim64.row_energy_keV[row])
    window = np.abs(energy_axis - e_line) < 0.8
    r = response[row, window]
    mean = np.sum(r * energy_axis[window]) / r.sum()
    variance = np.sum(r * (energy_axis[window] - mean) ** 2) / r.sum()
    sigma = inst.fwhm_keV(e_line) / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    # binning adds gain^2 / 12 to the variance
    expected = math.sqrt(sigma**2 + inst.detector.gain_keV**2 / 12.0)
    assert math.sqrt(variance) == pytest.approx(expected, rel=0.01)
    assert mean == pytest.approx(e_line, abs=0.002)


def test_escape_peak_and_scatter_positions(inst):
    spectrum = simulate([[100.0]], ["Cu"])[0]
    energy = inst.energy_axis_keV()

    def local_max(e_keV, half=0.15):
        window = np.abs(energy - e_keV) < half
        return energy[window][np.argmax(spectrum[window])]

    ka = xrl.LineEnergy(29, xrl.KL3_LINE)
    si_ka = xrl.LineEnergy(14, xrl.KL3_LINE)
    # the Si escape peak of Cu K-alpha stands above its surroundings
    esc = ka - si_ka
    at = np.argmin(np.abs(energy - esc))
    assert spectrum[at] > 3 * spectrum[np.argmin(np.abs(energy - (esc - 0.5)))]
    assert local_max(esc) == pytest.approx(esc, abs=0.04)
    # Compton peak at the Klein-Nishina energy for 90 degrees
    e0 = inst.beam.energies_keV[0]
    compton = e0 / (1.0 + e0 / 510.999 * (1.0 - math.cos(math.radians(90.0))))
    assert local_max(compton, half=0.4) == pytest.approx(compton, abs=0.1)


def test_rayleigh_suppressed_by_polarisation(inst):
    polarised = XRFSimulator(["Cu"], instrument=inst, dtype=torch.float64)
    unpolarised_inst = inst.replace(**{"beam.polarisation": 0.0})
    unpolarised = XRFSimulator(["Cu"], instrument=unpolarised_inst, dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    row = polarised.row_labels.index("Cu Rayleigh")
    ratio = polarised.line_intensities(one)[0, row] / unpolarised.line_intensities(one)[0, row]
    # Thomson: 1 - sin^2(t) cos^2(phi) averaged over a +-12 deg cone around
    # (90 deg, 0) vs (1 + cos^2 t)/2 around 90 deg: a few percent
    assert 0.005 < float(ratio) < 0.1


def test_overrides_equal_with_parameters(sim64):
    w = torch.tensor(CRMS / 100.0)
    values = {"gain_keV": 0.0351, "noise_keV": 0.11, "continuum_fraction": 0.05}
    a = sim64(w, instrument_overrides=values)
    b = sim64.with_parameters(**values)(w)
    torch.testing.assert_close(a, b)
    c = sim64(
        w,
        instrument_overrides={
            "gain_keV": torch.full((3,), 0.0351, dtype=torch.float64),
            "noise_keV": 0.11,
            "continuum_fraction": torch.full((3,), 0.05, dtype=torch.float64),
        },
    )
    torch.testing.assert_close(a, c)
    assert not torch.allclose(a, sim64(w))


def test_layer_thins_to_bulk_and_scales_with_thickness():
    w = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    bulk = XRFSimulator(["Au", "Cu"], dtype=torch.float64, secondary=False)
    thick = XRFSimulator(
        ["Au", "Cu"],
        dtype=torch.float64,
        secondary=False,
        layer_thickness_cm=0.1,
        layer_density_g_cm3=15.0,
    )
    thin = XRFSimulator(
        ["Au", "Cu"],
        dtype=torch.float64,
        secondary=False,
        layer_thickness_cm=1e-10,
        layer_density_g_cm3=15.0,
    )
    torch.testing.assert_close(thick.line_intensities(w), bulk.line_intensities(w))
    # thin film: no absorption, intensity = W sigma rho t / sin(psi1)
    row = thin.row_labels.index("Cu KL3")
    sigma = xrl.CS_FluorLine_Kissel_Cascade(29, xrl.KL3_LINE, 30.0)
    expected = 0.5 * sigma * 1.5e-9 / math.sin(math.radians(45.0))
    assert float(thin.line_intensities(w)[0, row]) == pytest.approx(expected, rel=1e-4)


def test_exp_e1_matches_scipy():
    from scipy import special

    from napari_xrfquant.physics._special import exp_e1

    x = np.concatenate([-np.logspace(-6, 2.5, 200), np.logspace(-6, 2.5, 200)])
    expected = np.where(x > 0, np.exp(x) * special.exp1(np.abs(x)), -np.exp(x) * special.expi(-x))
    got = exp_e1(torch.tensor(x, dtype=torch.float64)).numpy()
    # a thin layer's formula subtracts terms far larger than its result
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_e1_with_its_logarithm_is_smooth_through_zero():
    from scipy import special

    from napari_xrfquant.physics._special import e1_log_small

    x = np.concatenate([-np.logspace(-8, 0, 50), np.logspace(-8, 0, 50)])
    e1 = np.where(x > 0, special.exp1(np.abs(x)), -special.expi(-x))
    expected = e1 + np.log(np.abs(x))
    got = e1_log_small(torch.tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    zero = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    value = e1_log_small(zero)
    value.backward()
    assert float(value.detach()) == pytest.approx(-0.5772156649015329, rel=1e-15)  # -gamma
    assert float(zero.grad) == pytest.approx(1.0, rel=1e-12)  # d/dx of -sum (-x)^n / (n n!)


def test_layer_secondary_at_normal_incidence_under_several_energies(inst):
    """The beam at 90 degrees: a photon scattered at a beam energy meets the beam's own
    attenuation (mu_j = mu0 / sin psi1), where two logarithms of de Boer's layer
    formula cancel. Each apart gave Fe K a secondary fluorescence of -1.3 times its
    bulk value in a 14 um rock layer under the breadboard's tube; together it is
    positive, grows with the thickness and reaches the bulk value."""
    setup = inst.replace(**{"beam.energies_keV": (12.0, 20.0, 28.0),
                            "beam.weights": (1.0, 1.0, 1.0), "geometry.incidence_deg": 90.0})
    elements = ["O", "Si", "Ca", "Fe"]
    w = torch.tensor([[0.45, 0.3, 0.1, 0.15]], dtype=torch.float64)

    def secondary(**layer: float) -> np.ndarray:
        sim = XRFSimulator(elements, instrument=setup, dtype=torch.float64, **layer)
        lines = [sim.row_labels.index(f"{e} KL3") for e in ("Si", "Ca", "Fe")]
        total, primary = sim.line_intensities(w), sim.line_intensities(w, secondary=False)
        return (total - primary)[0, lines].numpy()

    bulk = secondary()
    layers = np.stack([secondary(layer_thickness_cm=t, layer_density_g_cm3=2.8)
                       for t in (1e-4, 5e-4, 1e-2, 1.0)])
    assert (layers > 0).all()
    assert (np.diff(layers, axis=0) > 0).all()
    np.testing.assert_allclose(layers[-1], bulk, rtol=1e-6)


def test_secondary_pairs_are_kept_per_beam_energy_not_as_dense_matrices(inst):
    """Under a beam of many energies a pair of lines counts only where the beam
    produces the exciting line: 40 energies and 10 elements (882 rows) need 6 MB of
    buffers, where the dense (beam, row, row) matrices of the old tables took
    40 x 882^2 x 8 B = 249 MB."""
    energies = tuple(np.linspace(2.0, 28.0, 40))
    setup = inst.replace(**{"beam.energies_keV": energies, "beam.weights": (1.0,) * 40})
    sim = XRFSimulator(["O", "Na", "Mg", "Al", "Si", "K", "Ca", "Ti", "Fe", "Sr"],
                       instrument=setup, dtype=torch.float64)
    rows = len(sim.row_labels)
    megabytes = sum(b.numel() * b.element_size() for b in sim.buffers()) / 1e6
    assert rows > 800
    assert megabytes < 0.1 * 40 * rows**2 * 8 / 1e6


def test_float32_agrees_with_float64():
    w = CRMS / 100.0
    s32 = XRFSimulator(ELEMENTS, dtype=torch.float32)(torch.tensor(w, dtype=torch.float32))
    s64 = XRFSimulator(ELEMENTS, dtype=torch.float64)(torch.tensor(w, dtype=torch.float64))
    peak = s64.max()
    assert float((s32.double() - s64).abs().max() / peak) < 1e-4


def test_polychromatic_beam_is_weighted_sum(inst):
    """Fluorescence is linear in the beam: two energies = weighted sum of each alone."""
    w = torch.tensor([[0.6, 0.4]], dtype=torch.float64)

    def lines(energies, weights, secondary):
        beam = inst.replace(**{"beam.energies_keV": energies, "beam.weights": weights})
        sim = XRFSimulator(["Au", "Cu"], instrument=beam, dtype=torch.float64)
        values = sim.line_intensities(w, secondary=secondary)[0].numpy()
        return dict(zip(sim.row_labels, values, strict=True))

    for secondary, rel in ((False, 1e-9), (True, 1e-3)):
        # with secondary, the pairs pruned (below 0.1 % in total) differ per set-up
        both = lines((30.0, 20.0), (3.0, 1.0), secondary)
        high, low = lines((30.0,), (1.0,), secondary), lines((20.0,), (1.0,), secondary)
        for label in ("Au L3M5", "Au L2M4", "Cu KL3", "Cu KM3"):
            expected = 0.75 * high[label] + 0.25 * low[label]
            assert both[label] == pytest.approx(expected, rel=rel)


def test_every_line_energy_and_l3_yield_from_xraylib(sim64):
    for line, energy in zip(sim64.tables.lines, sim64.row_energy_keV.numpy(), strict=False):
        macro = getattr(xrl, f"{line.iupac}_LINE")
        assert energy == pytest.approx(xrl.LineEnergy(xrl.SymbolToAtomicNumber(line.symbol), macro))
    # lines of one shell share vacancy production (photo-ionisation, Coster-Kronig,
    # cascade) and yield: their ratio is the radiative-rate ratio times the
    # ratio of self-absorption factors
    labels = sim64.row_labels
    one = torch.tensor([[1.0, 0, 0, 0, 0]], dtype=torch.float64)
    primary = sim64.line_intensities(one, secondary=False)[0]
    la1 = float(primary[labels.index("Au L3M5")])
    lb2 = float(primary[labels.index("Au L3N5")])
    e_la1, e_lb2 = xrl.LineEnergy(79, xrl.L3M5_LINE), xrl.LineEnergy(79, xrl.L3N5_LINE)
    s1 = s2 = math.sin(math.radians(45.0))
    chi = [xrl.CS_Total(79, 30.0) / s1 + xrl.CS_Total(79, e) / s2 for e in (e_la1, e_lb2)]
    rate_ratio = xrl.RadRate(79, xrl.L3M5_LINE) / xrl.RadRate(79, xrl.L3N5_LINE)
    assert la1 / lb2 == pytest.approx(rate_ratio * chi[1] / chi[0], rel=1e-6)


def test_scatter_cross_sections_average_the_acceptance_cone(inst):
    """4 pi <dsigma/dOmega> over the +-12 deg cone, by Monte Carlo directions."""
    sim = XRFSimulator(["Cu"], dtype=torch.float64)
    rng = np.random.default_rng(5)
    half = math.radians(inst.geometry.acceptance_deg)
    # uniform directions on the sphere cap around the detector axis (x axis:
    # 90 deg from the beam along z, in the polarisation plane x-z)
    cos_r = rng.uniform(math.cos(half), 1.0, 4000)
    psi = rng.uniform(0.0, 2 * math.pi, 4000)
    sin_r = np.sqrt(1 - cos_r**2)
    d = np.stack([cos_r, sin_r * np.cos(psi), sin_r * np.sin(psi)], axis=1)
    theta = np.arccos(d[:, 2])
    phi = np.arctan2(d[:, 1], d[:, 0])
    for kind, func in (("Rayleigh", xrl.DCSP_Rayl), ("Compton", xrl.DCSP_Compt)):
        mc = 4 * math.pi * np.mean([func(29, 30.0, t, p) for t, p in zip(theta, phi, strict=True)])
        row = sim.row_labels.index(f"Cu {kind}")
        assert sim.tables.row_source[0, row] == pytest.approx(mc, rel=0.03), kind


def test_k_edge_shelf_runs_from_the_sensors_k_edge_to_the_peak(inst):
    """Scholze and Procop's shelf: above the Si K edge (1.839 keV, xraylib) a photon's
    shelf starts at the edge; below it, and with the flat model, at 0. Same area."""
    shapes = {}
    for start in ("zero", "k_edge"):
        setup = inst.replace(**{"detector.shelf_start": start, "detector.shelf_fraction": 0.05,
                                "detector.tail_fraction": 0.0})
        sim = XRFSimulator(["Al", "Cu"], setup, dtype=torch.float64)
        shapes[start] = sim.response_matrix().numpy(), sim.row_labels
    energy = inst.energy_axis_keV()
    (zero, labels), (k_edge, _) = shapes["zero"], shapes["k_edge"]
    cu, al = labels.index("Cu KL3"), labels.index("Al KL3")
    # (the flat shelf loses what falls below channel 0's edge: 1e-4 of the area)
    np.testing.assert_allclose(k_edge[cu].sum(), zero[cu].sum(), rtol=3e-4)
    below_edge = (energy > 0.5) & (energy < 1.4)
    assert k_edge[cu, below_edge].max() < 1e-6 * zero[cu, below_edge].max()
    # between the edge and the peak the same area over E - E_K instead of E
    shelf_band = (energy > 3.0) & (energy < 6.0)
    ratio = k_edge[cu, shelf_band] / zero[cu, shelf_band]
    cu_keV = xrl.LineEnergy(29, xrl.KL3_LINE)
    edge_keV = xrl.EdgeEnergy(14, xrl.K_SHELL)
    np.testing.assert_allclose(ratio, cu_keV / (cu_keV - edge_keV), rtol=2e-3)
    # Al K (1.49 keV) lies below the edge: its shelf still starts at 0
    np.testing.assert_allclose(k_edge[al], zero[al], rtol=1e-12, atol=1e-15)


def test_threshold_records_nothing_below_it_and_everything_above(inst):
    """A pulse processor's threshold: the spectrum (lines, shelves, tails, continuum)
    is halved at the threshold, gone well below it, untouched well above it, and
    differentiable in the threshold; without one the spectrum is the same to the bit."""
    elements = ["Si", "Fe", "Cu"]
    plain = XRFSimulator(elements, inst, dtype=torch.float64)
    w = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    energy = inst.energy_axis_keV()
    explicit_zero = XRFSimulator(elements, inst.replace(**{"detector.threshold_keV": 0.0,
                                                           "detector.threshold_width_keV": 0.2}),
                                 dtype=torch.float64)
    assert torch.equal(explicit_zero(w), plain(w))
    # without one nothing is multiplied: the set-ups before the threshold keep their values
    from napari_xrfquant.physics.detector import recorded_share

    assert recorded_share(torch.as_tensor(energy), 0.0, 0.2) is None
    cut = plain.with_parameters(threshold_keV=1.2, threshold_width_keV=0.05)
    base, thresholded = plain.response_matrix().numpy(), cut.response_matrix().numpy()
    above, below = energy > 1.2 + 0.3, energy < 1.2 - 0.3
    np.testing.assert_allclose(thresholded[:, above], base[:, above], rtol=1e-9, atol=1e-300)
    assert np.abs(thresholded[:, below]).max() < 1e-8 * np.abs(base[:, below]).max()
    at = int(np.argmin(np.abs(energy - 1.2)))
    share = 0.5 * math.erfc((1.2 - energy[at]) / (math.sqrt(2.0) * 0.05))
    np.testing.assert_allclose(thresholded[:, at], share * base[:, at], rtol=1e-12)
    continuum = cut.continuum().numpy()
    assert continuum.sum() == pytest.approx(1.0)
    assert continuum[below].max() < 1e-8 * continuum.max()
    # differentiable: raising the threshold takes counts from just above it
    threshold = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    spectrum = plain(w, {"threshold_keV": threshold})
    band = torch.as_tensor((energy > 1.1) & (energy < 1.4))
    spectrum[0, band].sum().backward()
    assert threshold.grad is not None and float(threshold.grad) < 0


def test_high_energy_tail_moves_its_share_above_the_peak(inst):
    """The tail above each peak keeps the area, carries its share above the peak with
    a mean excess equal to its decay length, and is differentiable in both."""
    plain = XRFSimulator(["Cu"], inst.replace(**{"detector.tail_fraction": 0.0,
                                                 "detector.shelf_fraction": 0.0,
                                                 "detector.escape": False}),
                         dtype=torch.float64, secondary=False)
    row = plain.row_labels.index("Cu KL3")
    e_line = float(plain.row_energy_keV[row])
    energy = inst.energy_axis_keV()
    base = plain.response_matrix().numpy()[row]
    tailed = plain.with_parameters(high_tail_fraction=0.04, high_tail_slope_keV=0.15)
    shifted = tailed.response_matrix().numpy()[row]
    np.testing.assert_allclose(shifted.sum(), base.sum(), rtol=1e-6)
    excess = shifted - 0.96 * base  # the tail alone
    assert excess.sum() == pytest.approx(0.04 * base.sum(), rel=1e-3)
    assert excess[energy < e_line - 0.3].sum() < 1e-4 * excess.sum()
    mean_excess = np.sum(excess * energy) / excess.sum() - e_line
    assert mean_excess == pytest.approx(0.15, abs=0.005)
    # differentiable: the calibration frees both
    fraction = torch.tensor(0.02, dtype=torch.float64, requires_grad=True)
    slope = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    spectrum = plain(torch.ones(1, 1, dtype=torch.float64),
                     {"high_tail_fraction": fraction, "high_tail_slope_keV": slope})
    above = torch.as_tensor((energy > e_line + 0.3) & (energy < e_line + 0.8))
    spectrum[0, above].sum().backward()
    assert fraction.grad is not None and float(fraction.grad) > 0
    assert slope.grad is not None and float(slope.grad) > 0


@pytest.mark.parametrize(("z", "energy_keV"), [(8, 10.0), (26, 28.0), (79, 30.0)])
def test_compton_profile_sums_the_open_shells(z, energy_keV):
    """The Doppler-broadened Compton spectrum, built from the summed profile of the
    shells the energy transfer opens, is the sum of the shells' own profiles (each
    only where the transfer exceeds its binding energy), with unit area."""
    from napari_xrfquant.physics import _xraydata as xd
    from napari_xrfquant.physics.scatter import _compton_profile_shape

    theta = np.radians([60.0, 90.0, 135.0])
    grid = np.linspace(0.5 * energy_keV, energy_keV, 4001)
    shape = _compton_profile_shape(z, energy_keV, theta, grid)
    pz = np.stack([xd.compton_pz_and_slope(energy_keV, grid, float(t))[0] for t in theta])
    by_shell = sum(
        np.where(energy_keV - grid > binding, np.interp(np.abs(pz), xd.PZ_GRID_AU, j, right=0.0), 0)
        for binding, j in xd.compton_shells(z)
    ) * np.abs(np.gradient(pz, grid, axis=1))
    by_shell = by_shell / np.trapezoid(by_shell, grid, axis=1)[:, None]
    # the shape takes d p_z / d E' exactly; the reference, by central differences
    # (one-sided, of first order, at the grid's two ends)
    np.testing.assert_allclose(shape[:, 1:-1], by_shell[:, 1:-1], rtol=1e-6,
                               atol=1e-9 * shape.max())
    np.testing.assert_allclose(np.trapezoid(shape, grid, axis=1), 1.0, rtol=1e-12)


def test_the_compton_jacobian_is_the_derivative_of_p_z():
    """d p_z / d E' of the impulse approximation, against central differences of
    p_z itself (per angle and for angles broadcast against the energies); p_z is 0
    at the Compton energy of an electron at rest."""
    from napari_xrfquant.physics import _xraydata as xd

    theta = np.radians([30.0, 90.0, 160.0])[:, None]
    grid = np.linspace(12.0, 17.0, 50_001)
    pz, slope = xd.compton_pz_and_slope(17.0, grid, theta)
    np.testing.assert_allclose(pz[1], xd.compton_pz_and_slope(17.0, grid, float(theta[1, 0]))[0],
                               rtol=1e-14)
    # p_z = 0 at the Compton energy of an electron at rest
    at_rest = xd.compton_energy_keV(17.0, theta[:, 0])
    zero = xd.compton_pz_and_slope(17.0, at_rest[:, None], theta)[0]
    np.testing.assert_allclose(zero, 0.0, atol=1e-10)
    numeric = np.gradient(pz, grid, axis=1)
    np.testing.assert_allclose(slope[:, 1:-1], numeric[:, 1:-1], rtol=1e-7)


def test_compton_sublines_share_out_onto_the_grid_keeping_area_and_mean_energy():
    """Each energy goes to the two grid atoms either side of it, shares summing to 1
    and keeping its mean energy; an energy on a grid point makes one atom, and a
    grid point is one atom however many energies reach it."""
    from napari_xrfquant.physics.scatter import COMPTON_SUBLINE_STEP_KEV as step
    from napari_xrfquant.physics.tables import _AtomGrid

    atoms = _AtomGrid()
    energies = np.array([[25.0131, 25.0179], [5 * step, 25.0151]])  # 0.5 / 0.1 is exact
    which, atom, share = atoms.on_grid(energies)
    grid = atoms.energies()
    assert which.tolist() == [0, 0, 1, 1, 2, 3, 3]  # the point on the grid: one atom
    np.testing.assert_allclose(np.bincount(which, weights=share), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.bincount(which, weights=share * grid[atom]),
                               energies.ravel(), rtol=1e-14)
    assert len(grid) == 3  # 25.0, 25.1 and 0.5 keV
