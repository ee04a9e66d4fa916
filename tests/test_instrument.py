import math

import numpy as np
import pytest

from napari_xrfquant.errors import InstrumentError
from napari_xrfquant.instrument import load_instrument, reference_instrument, save_instrument


def test_reference_instrument_matches_the_set_up_document():
    inst = reference_instrument()
    assert inst.beam.energies_keV == (30.0,)
    assert inst.geometry.incidence_deg == 45.0 and inst.geometry.takeoff_deg == 45.0
    energy = inst.energy_axis_keV()
    assert energy.shape == (1024,)
    assert energy[0] == 0.0 and math.isclose(energy[100], 3.5)
    # FWHM at Mn K-alpha (5.899 keV) is about 160 eV for this pnCCD
    assert inst.fwhm_keV(5.899) == pytest.approx(0.160, abs=0.005)


def test_round_trip_through_toml_and_json(tmp_path):
    changes = {"detector.gain_keV": 0.036, "beam.energies_keV": (20.0,)}
    inst = reference_instrument().replace(**changes)
    for name in ("inst.toml", "inst.json"):
        path = save_instrument(inst, tmp_path / name)
        back = load_instrument(path)
        assert back == inst
        np.testing.assert_allclose(back.energy_axis_keV(), inst.energy_axis_keV())


def test_save_refuses_to_overwrite(tmp_path):
    path = save_instrument(reference_instrument(), tmp_path / "inst.toml")
    with pytest.raises(FileExistsError):
        save_instrument(reference_instrument(), path)
    save_instrument(reference_instrument(), path, overwrite=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"detector.gain_keV": -0.01}, "increase with channel"),
        ({"beam.energies_keV": (-5.0,)}, r"beam\.energies_keV\[0\]: must be greater than 0"),
        ({"detector.n_channels": 1}, "n_channels: must be at least 2"),
        ({"geometry.takeoff_deg": 0.0}, "takeoff_deg"),
        ({"detector.shelf_start": "edge"}, r"detector\.shelf_start: .*'zero' or 'k_edge'"),
    ],
)
def test_impossible_set_ups_are_refused(change, message):
    with pytest.raises(InstrumentError, match=message):
        reference_instrument().replace(**change)


def test_file_errors_name_the_file_and_the_field(tmp_path):
    text = reference_instrument().to_dict()
    text["detector"]["colour"] = "blue"
    path = tmp_path / "inst.json"
    import json

    path.write_text(json.dumps(text))
    with pytest.raises(InstrumentError, match=r"inst\.json: detector\.colour: unknown setting"):
        load_instrument(path)
    del text["detector"]["colour"], text["detector"]["fano"]
    path.write_text(json.dumps(text))
    with pytest.raises(InstrumentError, match=r"inst\.json: detector\.fano: missing"):
        load_instrument(path)


def test_reference_toml_is_the_only_source_of_instrument_numbers():
    from napari_xrfquant.instrument import Detector

    # the schema declares no numbers of the set-up: every detector field comes from a
    # file, except terms that are absent unless a file says otherwise (a quadratic
    # calibration term, pile-up, the tail above the peaks, whose decay length is
    # where a fit starts and does nothing while its share is 0, a pulse processor's
    # threshold, whose width likewise does nothing while it is 0) and the shelf's
    # start, 0 keV unless a file says "k_edge"
    optional = {name for name, f in Detector.model_fields.items() if not f.is_required()}
    assert optional == {"quadratic_keV", "pileup_fraction", "high_tail_fraction",
                        "high_tail_slope_keV", "threshold_keV", "threshold_width_keV",
                        "shelf_start"}
    assert all(Detector.model_fields[name].default == 0.0
               for name in optional - {"shelf_start", "high_tail_slope_keV",
                                       "threshold_width_keV"})
    assert Detector.model_fields["shelf_start"].default == "zero"


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("beam = [unclosed")
    with pytest.raises(InstrumentError, match=r"broken\.toml"):
        load_instrument(bad)


def test_atomic_path_gives_normal_permissions(tmp_path):
    import os

    from napari_xrfquant._files import atomic_path

    target = tmp_path / "out.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert not list(tmp_path.glob("*.part"))


def test_quadratic_calibration_and_its_monotonicity():
    inst = reference_instrument().replace(**{"detector.quadratic_keV": 1e-6})
    k = np.arange(1024)
    np.testing.assert_allclose(inst.energy_axis_keV(), 0.035 * k + 1e-6 * k**2)
    # dE/dk = 0.035 - 2e-5 k turns negative before the last channel
    with pytest.raises(InstrumentError, match="quadratic_keV=-2e-05 makes the energy axis"):
        reference_instrument().replace(**{"detector.quadratic_keV": -2e-5})


def test_optic_transmission_models():
    sig = reference_instrument().replace(optic={
        "model": "sigmoids", "low_keV": 1.0, "low_width_keV": 0.3,
        "high_keV": 20.0, "high_width_keV": 3.0,
    })
    t = sig.optic.transmission(np.array([20.0]))
    assert t[0] == pytest.approx(0.5 / (1 + np.exp(-19.0 / 0.3)))
    knots = reference_instrument().replace(optic={
        "model": "knots", "knots_keV": [5.0, 25.0], "log_transmission": [0.0, -1.0]})
    np.testing.assert_allclose(knots.optic.transmission([1.0, 15.0, 30.0]),
                               np.exp([0.0, -0.5, -1.0]))
    with pytest.raises(InstrumentError, match="optic: a sigmoids optic needs high_keV"):
        reference_instrument().replace(optic={"model": "sigmoids", "low_keV": 1.0,
                                              "low_width_keV": 0.3, "high_width_keV": 3.0})
