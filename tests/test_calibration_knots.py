"""A knots optic: smooth (PCHIP) log-transmission, fitted as drops, optionally monotone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_xrfquant.calibration.hidden import (
    ELEMENTS,
    STANDARDS,
    hidden_instrument,
    standard_groups,
)
from napari_xrfquant.calibration.session import with_knots_optic
from napari_xrfquant.errors import InstrumentError, SimulationError, XRFQuantError
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.instrument_parameters import (
    expand_free,
    knots_optic,
    parameter_values,
    with_values,
)
from napari_xrfquant.physics import XRFSimulator

KNOTS = [2.0, 6.0, 10.0, 15.0, 22.0, 30.0]
#: A polycapillary-like fall above a few keV (log T at KNOTS).
LOG_T = [0.0, -0.03, -0.1, -0.45, -1.2, -2.0]


def knots_instrument(monotone: bool = True):
    optic = {"model": "knots", "knots_keV": KNOTS, "log_transmission": LOG_T,
             "monotone": monotone}
    return hidden_instrument().replace(optic=optic)


def test_knot_curve_is_scipys_pchip_in_numpy_and_torch():
    from scipy.interpolate import PchipInterpolator

    from napari_xrfquant.physics.optic import pchip

    optic = knots_instrument().optic
    energy = np.linspace(0.5, 35.0, 700)
    expected = np.exp(PchipInterpolator(KNOTS, LOG_T)(np.clip(energy, 2.0, 30.0)))
    np.testing.assert_allclose(optic.transmission(energy), expected, rtol=1e-12)
    sim = XRFSimulator(["Cu"], instrument=knots_instrument(), dtype=torch.float64)
    torch_curve = sim.optic_transmission(torch.as_tensor(energy))
    np.testing.assert_allclose(torch_curve.numpy(), expected, rtol=1e-12)
    assert np.all(np.diff(expected) <= 1e-15)  # monotone knots: a monotone curve
    # a knot of zero slope next to a falling one keeps finite gradients
    fp = torch.tensor([0.0, 0.0, -0.5, -0.5], dtype=torch.float64, requires_grad=True)
    pchip(torch.linspace(1, 9, 50, dtype=torch.float64),
          torch.tensor([1.0, 3.0, 5.0, 9.0], dtype=torch.float64), fp).sum().backward()
    assert fp.grad is not None and torch.isfinite(fp.grad).all()


def test_a_monotone_optic_must_not_rise():
    with pytest.raises(InstrumentError, match="must not increase"):
        reference_instrument().replace(optic={"model": "knots", "knots_keV": [2.0, 10.0],
                                              "log_transmission": [-0.5, 0.0],
                                              "monotone": True})


def test_drop_overrides_are_the_instrument_with_those_knots():
    base = knots_instrument(monotone=False)
    wt = torch.tensor([[0.6, 0.3, 0.1, 0.0, 0.0]], dtype=torch.float64)
    sim = XRFSimulator(list(ELEMENTS), instrument=base, dtype=torch.float64)
    drops = {"optic_drop_3": 0.6, "optic_drop_5": 0.2}
    moved = with_values(base, drops)
    assert moved.optic.log_transmission[3] == pytest.approx(-0.1 - 0.6)
    assert parameter_values(moved, list(drops)) == pytest.approx(drops)
    direct = XRFSimulator(list(ELEMENTS), instrument=moved, dtype=torch.float64)(wt)
    torch.testing.assert_close(sim(wt, drops), direct)
    torch.testing.assert_close(sim(wt), XRFSimulator(list(ELEMENTS), instrument=base,
                                                     dtype=torch.float64)(wt))  # cache
    with pytest.raises(SimulationError, match="no knot 6"):
        sim(wt, {"optic_drop_6": 0.1})
    with pytest.raises(SimulationError, match="must be a scalar"):
        sim(wt, {"optic_drop_1": torch.tensor([0.1])})
    with pytest.raises(SimulationError, match="no knot 1"):
        XRFSimulator(["Cu"], dtype=torch.float64)(wt[:, :1], {"optic_drop_1": 0.1})


def test_optic_stands_for_the_knots_drops():
    inst = knots_instrument()
    assert expand_free(["calibration", "optic"], inst) == [
        "gain_keV", "offset_keV", *(f"optic_drop_{i}" for i in range(1, 6))]
    with pytest.raises(XRFQuantError, match="no parameter of this knots optic"):
        expand_free(["optic_high_keV"], inst)
    with pytest.raises(XRFQuantError, match="increasing energies"):
        knots_optic(inst, [5.0, 5.0])
    # starting knots take the shape of the instrument's optic, made monotone on request
    log_t = np.log(hidden_instrument().optic.transmission(np.array(KNOTS)))
    shaped = knots_optic(hidden_instrument(), KNOTS)
    np.testing.assert_allclose(shaped["log_transmission"], log_t, rtol=1e-12)
    monotone = knots_optic(hidden_instrument(), KNOTS, monotone=True)
    np.testing.assert_allclose(-np.diff(monotone["log_transmission"]),
                               np.maximum(-np.diff(log_t), 1e-3), rtol=1e-9)


@pytest.mark.parametrize("monotone", [True, False])
def test_calibration_fits_the_knots_within_their_sigma(monotone):
    """Standards of a set-up whose optic is a knots curve, fitted from a flat start."""
    from napari_xrfquant.calibration.fit import iter_calibrate
    from napari_xrfquant.jobs import drive

    truth = knots_instrument(monotone)
    groups = standard_groups(truth, seed=2)
    start = with_knots_optic(truth.replace(optic=None, **{"detector.offset_keV": 0.0}),
                             KNOTS, monotone)
    result = drive(iter_calibrate(groups, 0.035 * np.arange(1024), ELEMENTS, start,
                                  free=["calibration", "optic"], lbfgs_steps=30))
    hidden = parameter_values(truth, result.names)
    for name in result.names:
        assert abs(result.values[name] - hidden[name]) < 2.0 * result.sigma[name], name
        assert result.sigma[name] < 0.05
    fitted = result.instrument.optic
    assert fitted.model == "knots" and fitted.monotone == monotone
    assert np.median(result.fit_quality_after) < 1.2


@pytest.mark.slow
def test_cli_fits_a_monotone_knots_optic(tmp_path):
    from napari_xrfquant.calibration.hidden import hidden_cube
    from napari_xrfquant.cli import main
    from napari_xrfquant.instrument import load_instrument
    from napari_xrfquant.io import write_cxc_hdf5

    cube = hidden_cube((4, 4), counts_per_pixel=5e4)
    write_cxc_hdf5(tmp_path / "hidden.h5", cube.counts, cube.energy_keV)
    np.save(tmp_path / "labels.npy", cube.labels)
    out = tmp_path / "out"
    argv = ["calibrate", str(tmp_path / "hidden.h5"), "-o", str(out), "--labels",
            str(tmp_path / "labels.npy"), "--clusters", "4", "--quiet",
            "--free", "calibration,noise_keV,optic", "--optic-knots", ",".join(map(str, KNOTS)),
            "--monotone", "--max-seconds", "25",  # the knots stop moving within 10 s
            *(f"--standard={i + 1}={n}" for i, n in enumerate(STANDARDS))]
    assert main(argv) == 0
    fitted = load_instrument(out / "instrument.toml").optic
    assert fitted.model == "knots" and fitted.monotone and fitted.knots_keV == tuple(KNOTS)
    # the knots follow the hidden two-sigmoid optic's fall from 6 keV on (its rise
    # from 2 to 6 keV is what a monotone optic cannot follow)
    hidden = hidden_instrument().optic.transmission(np.array(KNOTS[1:]))
    curve = fitted.transmission(np.array(KNOTS[1:]))
    np.testing.assert_allclose(curve / curve[0], hidden / hidden[0], atol=0.05)
    record = json.loads((out / "calibration.json").read_text())
    assert "optic_drop_5" in record["parameters"]
    assert (out / "calibration.png").stat().st_size > 10_000
