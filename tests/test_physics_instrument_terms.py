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
